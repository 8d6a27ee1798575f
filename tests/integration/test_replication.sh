#!/usr/bin/env bash
# test_replication - real gkxd nodes on 127.0.0.1 replicate a shared offer both ways, converge after
# partitions, keep third parties out and survive hostile input on the replication port.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 14

# same_changes A B PID: both nodes serve byte-identical change logs (each record's
# "final" flag settles once the acknowledgements in flight have arrived).
same_changes() {
    api "$1" GET "/v1/partnerships/$3/changes" >"$T/changes.$1" &&
    api "$2" GET "/v1/partnerships/$3/changes" >"$T/changes.$2" && cmp -s "$T/changes.$1" "$T/changes.$2"
}

OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"},
        "targeting": {"countries": ["US", "CA"], "platforms": ["ios"]}}'

t_setup() {
    node_init a advertiser && node_init p publisher && node_start a && node_start p &&
    peer a p && peer p a &&
    PID=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id p)\", \"offer\": $OFFER}" |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    echo "$PID" >"$T/pid" && wait_for 10 same_digest a p "$PID"
}
ok "share: the offer appears on the publisher with the same digest (latency: bench/propagation)" t_setup
PID=$(cat "$T/pid" 2>/dev/null)

t_acked() { wait_for 10 eval '[ "$(heads a "$PID" | cut -d" " -f2)" -ge 1 ]'; }
ok "the publisher's acknowledgement reaches the advertiser" t_acked

t_edit_both_ways() {
    edit a "$PID" payout.amount=3.00 && wait_for 10 same_digest a p "$PID" &&
    edit p "$PID" status=paused && wait_for 10 same_digest a p "$PID" &&
    api a GET "/v1/partnerships/$PID/offer" | grep -q '"status": *"paused"' &&
    api p GET "/v1/partnerships/$PID/offer" | grep -q '"amount": *"3.00"'
}
ok "edits both ways: the publisher's pause is seen by the advertiser" t_edit_both_ways

t_partition() {
    node_stop p && edit a "$PID" payout.amount=4.00 targeting.countries+=FR && node_stop a &&
    node_start p && sleep 0.05 && edit p "$PID" payout.amount=5.00 targeting.countries-=US &&
    node_start a && wait_for 10 same_digest a p "$PID" &&
    wait_for 10 same_changes a p "$PID" &&
    api a GET "/v1/partnerships/$PID/offer" >"$T/offer.a" &&
    /usr/bin/python3 - "$T/offer.a" <<'PY'
import json, sys
offer = json.load(open(sys.argv[1]))["offer"]
# The publisher's edit was made later (greater clock): it wins the register;
# the set edits touched different elements, so both apply.
assert offer["payout"]["amount"] == "5.00", offer["payout"]
assert sorted(offer["targeting"]["countries"]) == ["CA", "FR"], offer["targeting"]
PY
}
ok "edits made while the other node was down converge: same digest, same change log, merge rule's values" t_partition

t_third_node() {
    node_init c publisher && node_start c && peer a c && peer c a &&
    PID_C=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id c)\", \"offer\": $OFFER}" |
            /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    wait_for 10 same_digest a c "$PID_C" &&
    [ -z "$(heads c "$PID")" ] && [ -z "$(heads p "$PID_C")" ] &&
    api c GET "/v1/partnerships/$PID" | grep -q 'not_found\|no such\|unknown'
}
ok "a third node gets its own partnership and never the A-P one" t_third_node

# heads_settled NODE PID: the heads stay put over more than the ack delay (500 ms), so no ack
# owed from an earlier case lands during the next one.
heads_settled() {
    local h; h=$(heads "$1" "$2") && sleep 1.2 && [ "$(heads "$1" "$2")" = "$h" ]
}

t_third_node_cannot_write() {
    wait_for 10 heads_settled a "$PID" &&
    local before; before=$(heads a "$PID") &&
    "$GKX" --dir "$T/p" log export "$PID" "$T/ap.log" >/dev/null &&
    /usr/bin/python3 "$(dirname "$0")/hostile_peer.py" send "$(awk -F' = ' '$1 == "listen" {print $2; exit}' "$T/a/gkx.conf")" \
        "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transport_key"])' "$T/a.card")" \
        "$T/c" "$T/ap.log" &&
    wait_for 10 grep -q "not the connection's peer\|not a member" "$T/a.log" && [ "$(heads a "$PID")" = "$before" ]
}
ok "the third node cannot write into the A-P partnership (replayed entries refused)" t_third_node_cannot_write

t_share_while_away() {
    node_stop c && node_stop a && node_start a &&
    local pid_c2; pid_c2=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id c)\", \"offer\": $OFFER}" |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    node_stop a && node_start a && node_start c && wait_for 10 same_digest a c "$pid_c2"
}
ok "an offer shared while the publisher was down arrives when it comes back, across restarts" t_share_while_away

t_accept_listed() {
    node_init d advertiser && node_start d && peer d p &&
    local pid_d; pid_d=$(api d POST /v1/partnerships "{\"publisher\": \"$(card_id p)\", \"offer\": $OFFER}" |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    sleep 1.5 && [ -z "$(heads p "$pid_d")" ] && grep -q "not a listed peer" "$T/p.log"
}
ok "under accept = listed an advertiser not listed is refused" t_accept_listed

t_accept_any() {
    node_init q publisher any && node_start q && peer a q &&
    local pid_q; pid_q=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id q)\", \"offer\": $OFFER}" |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    wait_for 10 same_digest a q "$pid_q"
}
ok "under accept = any a new advertiser's offer arrives with no setup on the publisher" t_accept_any

endpoint_of() { awk -F' = ' '$1 == "listen" {print $2; exit}' "$T/$1/gkx.conf"; }
key_of() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transport_key"])' "$T/$1.card"; }

t_hostile() {
    /usr/bin/python3 "$(dirname "$0")/hostile_peer.py" random "$(endpoint_of p)" &&
    /usr/bin/python3 "$(dirname "$0")/hostile_peer.py" frames "$(endpoint_of p)" "$(key_of p)" &&
    /usr/bin/python3 "$(dirname "$0")/hostile_peer.py" frames "$(endpoint_of p)" "$(key_of p)" "$T/a" &&
    kill -0 "$(node_pid p)" && api p GET /v1/status | grep -q '"role"' &&
    edit a "$PID" caps.daily=100 && wait_for 10 same_digest a p "$PID"
}
ok "random bytes, oversized and malformed frames: the node keeps serving and replicating" t_hostile

t_restore() {
    node_stop a && cp -a "$T/a" "$T/a.bak" && node_start a &&
    edit a "$PID" caps.daily=200 && edit a "$PID" caps.daily=300 && wait_for 10 same_digest a p "$PID" &&
    local want; want=$(heads p "$PID" | cut -d' ' -f1) &&
    node_stop a && rm -rf "$T/a" && mv "$T/a.bak" "$T/a" && node_start a &&
    wait_for 10 eval '[ "$(heads a "$PID" | cut -d" " -f1)" = "$want" ]' &&
    edit a "$PID" caps.daily=400 && wait_for 10 same_digest a p "$PID" &&
    [ "$(heads p "$PID" | cut -d' ' -f3)" = open ] && [ "$(heads a "$PID" | cut -d' ' -f3)" = open ]
}
ok "a node restored from an old copy takes its entries back and never equivocates" t_restore

t_exports() {
    "$GKX" --dir "$T/a" log export "$PID" "$T/a.export" >/dev/null &&
    "$GKX" --dir "$T/p" log export "$PID" "$T/p.export" >/dev/null &&
    "$GKX_AUDIT" verify "$T/a.export" >"$T/va.out" && "$GKX_AUDIT" verify "$T/p.export" >"$T/vp.out" &&
    "$GKX_AUDIT" compare "$T/a.export" "$T/p.export" >"$T/cmp.out" ||
        { cat "$T/va.out" "$T/vp.out" "$T/cmp.out" 2>/dev/null; return 1; }
}
ok "exports from both members pass gkx-audit verify and compare" t_exports

t_clean_stop() { node_stop a && node_stop p && node_stop c && node_stop d && node_stop q; }
ok "every node stops on SIGTERM with status 0" t_clean_stop

t_no_secrets_logged() {
    for n in a p c d q; do
        local sk; sk=$(awk -F' = ' '$1 == "curve" || $1 == "sign" {print $2}' "$T/$n/secret.key" | head -c 24)
        ! grep -qF "$sk" "$T/$n.log" && ! grep -qF "$(cat "$T/$n/api.token")" "$T/$n.log" || return 1
    done
}
ok "no secret key or API token appears in a node's log" t_no_secrets_logged

finish
