#!/usr/bin/env bash
# test_directory - partner discovery: a directory node lists the cards publishers publish to it,
# an advertiser finds a publisher with gkx publishers and shares an offer with it from the list;
# forged and stale cards are refused, a withdrawn card disappears, and no input on the
# directory's port stops it.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 14

CLIENT="$(dirname "$0")/directory_client.py"
OFFER='{"name": "Kart Rush Android FR", "payout": {"model": "cpi", "amount": "1.20", "currency": "EUR"},
        "targeting": {"countries": ["FR"], "platforms": ["android"]}}'

# set_list NAME KEY VALUE: sets "KEY = VALUE" in the [node] section of NAME's gkx.conf.
set_list() { sed -i "s/^$2 =\$/$2 = $3/" "$T/$1/gkx.conf"; }

# publish_to NAME: NAME publishes its card to the directory.
publish_to() { printf '\n[directory]\npublish_to = %s\n' "$ADDR" >>"$T/$1/gkx.conf"; }

# listing NAME [ARGS...]: gkx publishers --json on NAME, into $T/list.json.
listing() { "$GKX" --dir "$T/$1" publishers --json "${@:2}" >"$T/list.json" 2>"$T/list.err"; }

# listed NAME ID [ARGS...]: ID is among the publishers NAME lists.
listed() { listing "$1" "${@:3}" && grep -q "\"id\": \"$2\"" "$T/list.json"; }

# not_listed NAME ID: NAME's listing answers, without ID.
not_listed() { listing "$1" && grep -q '"ok": true' "$T/list.json" && ! grep -q "\"id\": \"$2\"" "$T/list.json"; }

t_setup() {
    node_init d publisher && node_init p1 publisher any && node_init p2 publisher &&
    node_init a advertiser || return 1
    DPORT=$(free_port)
    printf '\n[directory]\nserve = true\nlisten = tcp://127.0.0.1:%s\n' "$DPORT" >>"$T/d/gkx.conf"
    ADDR=$("$GKX" --dir "$T/d" directory-address) || return 1
    echo "$ADDR" >"$T/addr"
    local key; key=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["transport_key"])' "$T/d.card")
    [ "$ADDR" = "tcp://127.0.0.1:$DPORT@$key" ] || { echo "address $ADDR, key $key"; return 1; }
    set_list p1 verticals "Racing Games, Motorsport" && set_list p1 countries "FR, DE" &&
    set_list p2 verticals "Finance" && set_list p2 countries "US" &&
    publish_to p1 && publish_to p2 && publish_to a &&
    node_start d && node_start p1 && node_start p2 && node_start a
}
ok "gkx directory-address prints tcp://host:port@KEY with the node's transport key; nodes start" t_setup
ADDR=$(cat "$T/addr" 2>/dev/null)
P1=$(card_id p1)
P2=$(card_id p2)

t_listed() {
    wait_for 20 listed a "$P1" && wait_for 20 listed a "$P2" &&
    ! grep -q "\"id\": \"$(card_id a)\"" "$T/list.json" &&
    run 0 "$T/table.out" "$GKX" --dir "$T/a" publishers && contains "$T/table.out" "PUBLISHER" &&
    contains "$T/table.out" "Racing Games, Motorsport" && contains "$T/table.out" "${P2:0:16}"
}
ok "both publishers publish at start; gkx publishers lists them (not the advertiser), table and --json" t_listed

t_filters() {
    listed a "$P1" --vertical "racing games" && ! grep -q "\"id\": \"$P2\"" "$T/list.json" &&
    listed a "$P2" --country us && ! grep -q "\"id\": \"$P1\"" "$T/list.json" &&
    listed a "$P1" --vertical motorsport --country DE &&
    run 0 "$T/none.out" "$GKX" --dir "$T/a" publishers --vertical Finance --country FR &&
    contains "$T/none.out" "no publishers match" &&
    run 2 "$T/bad.out" "$GKX" --dir "$T/a" publishers --country FRA &&
    contains "$T/bad.out" "is not an ISO 3166-1 alpha-2 code"
}
ok "--vertical (any case) and --country filter the list; a bad country is a usage error" t_filters

t_share() {
    listing a --vertical motorsport && echo "$OFFER" >"$T/offer.json" &&
    PID=$("$GKX" --dir "$T/a" share --publisher "${P1:0:10}" --offer "$T/offer.json") &&
    echo "$PID" >"$T/pid" && wait_for 15 same_digest a p1 "$PID" &&
    "$GKX" --dir "$T/a" peer list --json | grep -q "\"id\": \"$P1\""
}
ok "share --publisher with an id prefix from the list: the peer is added and the offer reaches p1" t_share

t_forged() {
    listing a && /usr/bin/python3 -c '
import json, sys
cards = json.load(open(sys.argv[1]))["publishers"]
json.dump([c for c in cards if c["id"] == sys.argv[2]][0], open(sys.argv[3], "w"))' "$T/list.json" "$P2" "$T/p2.listed" &&
    run 0 "$T/genuine.out" /usr/bin/python3 "$CLIENT" publish "$ADDR" "$T/p2.listed" &&
    contains "$T/genuine.out" "ok" &&
    run 0 "$T/forged.out" /usr/bin/python3 "$CLIENT" publish "$ADDR" "$T/p2.listed" name="Totally Legit Media" &&
    contains "$T/forged.out" "error GKX_ESIGNATURE card: signature does not verify for its id" &&
    run 0 "$T/forged2.out" /usr/bin/python3 "$CLIENT" publish "$ADDR" "$T/p2.listed" countries=FR &&
    contains "$T/forged2.out" "error GKX_ETYPE" &&
    /usr/bin/python3 "$CLIENT" list "$ADDR" >"$T/raw.list" && ! grep -q "Totally Legit" "$T/raw.list" &&
    listing a && ! grep -q "Totally Legit" "$T/list.json" && contains "$T/d.log" "GKX_ESIGNATURE"
}
ok "a card with a broken signature, sent by a CURVE client, is refused and never listed" t_forged

t_stale() {
    # p1's card.json was issued at init, before the card its running node published.
    local old new
    old=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["timestamp"])' "$T/p1.card") &&
    run 0 "$T/stale.out" /usr/bin/python3 "$CLIENT" publish "$ADDR" "$T/p1.card" &&
    contains "$T/stale.out" "error GKX_EEXIST" && contains "$T/stale.out" "not after the card held" &&
    new=$(/usr/bin/python3 "$CLIENT" list "$ADDR" publisher | awk -v id="$P1" '$1 == id {print $NF}') &&
    [ -n "$new" ] && [ "$new" -gt "$old" ]
}
ok "an older card of a listed publisher does not replace the newer one" t_stale

t_withdraw() {
    run 0 "$T/w.out" "$GKX" --dir "$T/p2" card withdraw && contains "$T/w.out" "card withdrawn" &&
    contains "$T/w.out" "$ADDR: done" && not_listed a "$P2" && listed a "$P1" &&
    run 0 "$T/back.out" /usr/bin/python3 "$CLIENT" publish "$ADDR" "$T/p2.listed" &&
    contains "$T/back.out" "error GKX_EPOLICY" && not_listed a "$P2"
}
ok "gkx card withdraw removes the listing; the withdrawn card sent again is refused" t_withdraw

t_withdraw_kept() {
    node_stop p2 && node_start p2 && sleep 1 && not_listed a "$P2" &&
    run 0 "$T/st.out" "$GKX" --dir "$T/p2" card withdraw --json && contains "$T/st.out" '"listed": false'
}
ok "a withdrawn node does not publish its card again when it restarts" t_withdraw_kept

t_publish_again() {
    run 0 "$T/p.out" "$GKX" --dir "$T/p2" card publish && contains "$T/p.out" "card listed again" &&
    wait_for 10 listed a "$P2"
}
ok "gkx card publish lists the node again (a card newer than the withdrawal)" t_publish_again

t_hostile() {
    run 0 "$T/h.out" /usr/bin/python3 "$CLIENT" hostile "$ADDR" && contains "$T/h.out" "still answering" &&
    kill -0 "$(node_pid d)" && listed a "$P1" &&
    edit a "$(cat "$T/pid")" payout.amount=1.50 && wait_for 10 same_digest a p1 "$(cat "$T/pid")"
}
ok "garbage, oversized frames, extra frames and floods on the directory port: it keeps answering" t_hostile

t_directory_down() {
    node_stop d &&
    run 0 "$T/down.out" "$GKX" --dir "$T/a" publishers && contains "$T/down.out" "no publishers listed" &&
    contains "$T/down.out" "$ADDR: no answer within 3000 ms"
}
ok "a directory that is down: gkx publishers names it and lists nothing" t_directory_down

t_retry() {
    node_init p3 publisher && set_list p3 verticals "Racing Games" && publish_to p3 &&
    node_start p3 && sleep 2 && node_start d && wait_for 30 listed a "$(card_id p3)"
}
ok "a publisher started while the directory is down is listed once it is back (retry)" t_retry

t_kept_across_restart() {
    listed a "$P1" && listed a "$P2" && contains "$T/d.log" "serving 0 cards" &&
    grep -qE "serving [1-9][0-9]* cards" "$T/d.log"
}
ok "the directory keeps its cards in its store across a restart" t_kept_across_restart

t_config() {
    printf '[directory]\npublish_to = tcp://127.0.0.1:1\n' >>"$T/p3/gkx.conf" &&
    run 1 "$T/c.out" "$GKX" --dir "$T/p3" card && contains "$T/c.out" "[directory] publish_to: directory address" &&
    run 1 "$T/c2.out" "$GKX" --dir "$T/a" directory-address && contains "$T/c2.out" "serves no directory"
}
ok "a directory address without its key is refused naming the line; directory-address needs serve" t_config

finish
