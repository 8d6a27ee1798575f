#!/usr/bin/env bash
# test_api - the tenant API and the gkx verbs that use it, on two real gkxd nodes: peers,
# share, edits both ways, pause, policy, proposals, change log, export and audit.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"

plan 30

A="$T/adv" P="$T/pub"
PY=/usr/bin/python3

# free_ports N: prints N distinct free TCP ports on 127.0.0.1 (free_port.py).
free_ports() { "$PY" "$(dirname "$0")/free_port.py" "$1"; }

# start_node DIR ROLE NAME: inits a node on free ports and starts gkxd, retrying with new
# ports if one was taken meanwhile; sets the node's API address in API_<role>.
start_node() {
    local dir=$1 role=$2 name=$3 try ports listen api postback pid
    for try in 1 2 3; do
        read -r listen api postback <<<"$(free_ports 3)"
        rm -rf "$dir"
        # an advertiser's postback endpoint on a free port too: the default, 7702, may be
        # another test's
        postback=$([ "$role" = advertiser ] && echo "--postback=127.0.0.1:$postback")
        "$GKX" init --dir "$dir" --role "$role" --name "$name" \
            --listen "tcp://127.0.0.1:$listen" --api "127.0.0.1:$api" $postback >/dev/null ||
            return 1
        "$GKXD" --dir "$dir" 2>"$dir.log" &
        pid=$!
        _pids+=($pid)
        if wait_for 10 grep -q "ready" "$dir.log" && kill -0 $pid 2>/dev/null; then
            eval "API_$role=127.0.0.1:$api"
            return 0
        fi
        kill $pid 2>/dev/null
        wait $pid 2>/dev/null
    done
    echo "gkxd did not start in $dir:"; cat "$dir.log"
    return 1
}

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# offer_is DIR EXPR: the offer on node DIR makes the Python expression over o true.
offer_is() {
    "$GKX" --dir "$1" offer show "$PID" --json >"$T/.offer.$$" 2>&1 &&
    [ "$(json "$T/.offer.$$" "(lambda o: bool($2))(j['offer'])")" = True ]
}

# same_digest: both nodes show the same offer digest.
same_digest() {
    local a p
    a=$("$GKX" --dir "$A" offer show "$PID" --digest) && p=$("$GKX" --dir "$P" offer show "$PID" --digest) &&
    [ -n "$a" ] && [ "$a" = "$p" ]
}

# api NODE_ADDRESS TOKEN_DIR METHOD PATH [CURL_ARGS...]: one request with curl; prints the
# status on the first line, then the body.
api() {
    local addr=$1 dir=$2 method=$3 path=$4; shift 4
    local auth=()
    [ -n "$dir" ] && auth=(-H "Authorization: Bearer $(cat "$dir/api.token")")
    curl -s -o "$T/.body" -w '%{http_code}\n' -X "$method" "${auth[@]}" "$@" "http://$addr$path" &&
    cat "$T/.body"
}

t_start() {
    start_node "$A" advertiser "Acme Ads" && start_node "$P" publisher "Pixel Pubs" &&
    run 0 "$T/s.out" "$GKX" --dir "$A" status && contains "$T/s.out" "role:          advertiser" &&
    contains "$T/s.out" "name:          Acme Ads" && contains "$T/s.out" "peers:         none" &&
    run 0 "$T/s.json" "$GKX" status --dir "$P" --json &&
    [ "$(json "$T/s.json" "j['role'], j['name'], j['peers'], j['partnerships']['total']")" = \
      "('publisher', 'Pixel Pubs', [], 0)" ]
}
ok "both nodes start; gkx status answers, table and --json" t_start

t_down() {
    local D="$T/down" port
    port=$(free_ports 2)
    "$GKX" init --dir "$D" --role publisher --name Down --listen "tcp://127.0.0.1:${port% *}" \
        --api "127.0.0.1:${port#* }" >/dev/null &&
    run 1 "$T/d.out" "$GKX" --dir "$D" status && [ "$(wc -l <"$T/d.out")" -eq 1 ] &&
    contains "$T/d.out" "is not running" && contains "$T/d.out" "gkxd --dir $D"
}
ok "gkx status on a node that is not running: one line, exit 1" t_down

t_peer_add() {
    "$GKX" --dir "$A" card --json >"$T/a.card" && "$GKX" --dir "$P" card --json >"$T/p.card" &&
    run 0 "$T/pa.out" "$GKX" --dir "$A" peer add "$T/p.card" &&
    contains "$T/pa.out" 'added peer "Pixel Pubs" (publisher)' &&
    run 0 "$T/pb.out" "$GKX" --dir "$P" peer add "$T/a.card" --json &&
    [ "$(json "$T/pb.out" "j['role']")" = advertiser ]
}
ok "peer add on both nodes" t_peer_add

peers_connected() {
    local out="$T/.pl.${1##*/}"
    "$GKX" --dir "$1" peer list --json >"$out" 2>/dev/null &&
    [ "$(json "$out" "len(j) == 1 and j[0]['connected'] is True and j[0]['lag_entries'] == 0")" = True ]
}

t_peer_list() {
    wait_for 10 peers_connected "$A" && wait_for 10 peers_connected "$P" &&
    run 0 "$T/pl.out" "$GKX" --dir "$A" peer list && contains "$T/pl.out" "CONNECTED" &&
    grep -qE "^[0-9a-f]{64} +Pixel Pubs +publisher +tcp://127\.0\.0\.1:[0-9]+ +yes +0 " "$T/pl.out"
}
ok "peer list: the peer is connected with no lag, table and --json" t_peer_list

t_peer_bad_card() {
    sed 's/"Pixel Pubs"/"Evil Pubs"/' "$T/p.card" >"$T/evil.card" &&
    run 1 "$T/e.out" "$GKX" --dir "$A" peer add "$T/evil.card" && contains "$T/e.out" "not a valid signed tenant card" &&
    run 1 "$T/e2.out" "$GKX" --dir "$A" peer add "$T/a.card" && contains "$T/e2.out" "this node's own card"
}
ok "peer add refuses a tampered card (locally) and the node's own card" t_peer_bad_card

cat >"$T/offer.json" <<'EOF'
{"name": "Puzzle Quest iOS US", "status": "active",
 "payout": {"model": "cpi", "amount": "2.50", "currency": "USD", "events": {"purchase": "10.00"}},
 "caps": {"daily": 200, "weekly": null},
 "targeting": {"countries": ["US", "CA"], "platforms": ["ios"]}}
EOF
echo '{"payout": "advertiser", "caps": "propose"}' >"$T/policy.json"
PID=""

pub_has_it() { "$GKX" --dir "$P" partnerships --json 2>/dev/null | grep -q "$PID"; }

t_share() {
    local pub
    pub=$(json "$T/p.card" "j['id']") &&
    PID=$("$GKX" --dir "$A" share --publisher "$pub" --offer "$T/offer.json" --policy "$T/policy.json") &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 pub_has_it
}
ok "share prints the partnership id; the offer is on the publisher within 2 s" t_share

t_partnerships() {
    run 0 "$T/pp.out" "$GKX" --dir "$P" partnerships &&
    grep -qE "^$PID +Acme Ads +publisher +active +Puzzle Quest iOS US$" "$T/pp.out" &&
    run 0 "$T/pa.json" "$GKX" --dir "$A" partnerships --json &&
    [ "$(json "$T/pa.json" "j[0]['counterparty']['name'], j[0]['role'], j[0]['status'], j[0]['offer_name']")" = \
      "('Pixel Pubs', 'advertiser', 'active', 'Puzzle Quest iOS US')" ]
}
ok "partnerships lists counterparty, role, status and offer name on both" t_partnerships

t_show() {
    same_digest && run 0 "$T/os.out" "$GKX" --dir "$P" offer show "$PID" &&
    grep -qE '^payout\.amount +2\.50$' "$T/os.out" && grep -qE '^targeting\.countries +CA, US$' "$T/os.out" &&
    grep -qE '^payout\.events\.purchase +10\.00$' "$T/os.out" && grep -qE '^caps\.weekly +\(none\)$' "$T/os.out" &&
    [ "$(grep -c "^digest: *$("$GKX" --dir "$A" offer show "$PID" --digest)$" "$T/os.out")" -eq 1 ]
}
ok "offer show: equal digests on both nodes; the table shows each field" t_show

t_set() {
    run 0 "$T/set.out" "$GKX" --dir "$A" offer set "$PID" payout.amount=3.00 targeting.countries+=FR &&
    contains "$T/set.out" "offer updated; digest" &&
    wait_for 10 offer_is "$P" "o['payout']['amount'] == '3.00' and 'FR' in o['targeting']['countries']" &&
    wait_for 10 same_digest
}
ok "offer set on the advertiser is seen by the publisher" t_set

t_pause() {
    run 0 "$T/pause.out" "$GKX" --dir "$P" pause "$PID" && contains "$T/pause.out" "paused $PID" &&
    wait_for 10 offer_is "$A" "o['status'] == 'paused'" &&
    run 0 "$T/pl.out" "$GKX" --dir "$A" partnerships && grep -qE "^$PID .* paused " "$T/pl.out"
}
ok "pause by the publisher is seen by the advertiser" t_pause

t_resume() {
    run 1 "$T/again.out" "$GKX" --dir "$P" pause "$PID" && contains "$T/again.out" "no changes: the offer is already paused" &&
    run 0 "$T/res.out" "$GKX" --dir "$A" resume "$PID" && wait_for 10 offer_is "$P" "o['status'] == 'active'"
}
ok "pausing twice says no changes; resume by the advertiser is seen by the publisher" t_resume

t_forbidden() {
    run 1 "$T/f.out" "$GKX" --dir "$P" offer set "$PID" payout.amount=9.00 &&
    [ "$(cat "$T/f.out")" = "gkx: payout.amount: only the advertiser may change this field" ] &&
    offer_is "$P" "o['payout']['amount'] == '3.00'"
}
ok "an edit the policy forbids: exit 1 with the policy's message, nothing written" t_forbidden

t_invalid() {
    run 1 "$T/i.out" "$GKX" --dir "$A" offer set "$PID" targeting.countries+=XX &&
    [ "$(cat "$T/i.out")" = 'gkx: targeting.countries: "XX" is not an ISO 3166-1 country code' ] &&
    run 1 "$T/i2.out" "$GKX" --dir "$A" offer set "$PID" payout.amount=2.5x &&
    contains "$T/i2.out" "payout.amount: " && [ "$(wc -l <"$T/i2.out")" -eq 1 ]
}
ok "an invalid edit: exit 1 with one line naming the field" t_invalid

t_bad_ids() {
    run 2 "$T/b.out" "$GKX" --dir "$A" offer show abc && contains "$T/b.out" "expected 64 hex digits" &&
    run 1 "$T/b2.out" "$GKX" --dir "$A" changes "$(printf '%064d' 0)" && contains "$T/b2.out" "no partnership" &&
    run 2 "$T/b3.out" "$GKX" --dir "$A" accept "$PID" zz && contains "$T/b3.out" "proposal id" &&
    run 2 "$T/b4.out" "$GKX" --dir "$A" offer frob "$PID" && contains "$T/b4.out" "expected show, set or propose"
}
ok "a malformed id is a usage error (2); an unknown partnership fails (1)" t_bad_ids

PROP=""
proposal_pending_on_adv() {
    "$GKX" --dir "$A" proposals "$PID" --json >"$T/.pr" 2>/dev/null &&
    [ "$(json "$T/.pr" "[p['status'] for p in j if p['id'] == '$PROP']")" = "['pending']" ]
}

t_propose_accept() {
    run 1 "$T/pe.out" "$GKX" --dir "$A" offer set "$PID" caps.daily=300 &&
    contains "$T/pe.out" "caps.daily: this field changes only by an accepted proposal" &&
    PROP=$("$GKX" --dir "$P" offer propose "$PID" caps.daily=300) && [[ "$PROP" =~ ^[0-9a-f]{64}$ ]] &&
    wait_for 10 proposal_pending_on_adv &&
    run 1 "$T/own.out" "$GKX" --dir "$P" accept "$PID" "$PROP" && contains "$T/own.out" "only the other side" &&
    run 0 "$T/acc.out" "$GKX" --dir "$A" accept "$PID" "${PROP:0:10}" && contains "$T/acc.out" "accepted proposal $PROP" &&
    offer_is "$A" "o['caps']['daily'] == 300" && wait_for 10 offer_is "$P" "o['caps']['daily'] == 300" &&
    wait_for 10 same_digest
}
ok "propose on the publisher, accept on the advertiser: the change applies on both" t_propose_accept

t_propose_decline() {
    local id
    id=$("$GKX" --dir "$A" offer propose "$PID" caps.weekly=1000) &&
    wait_for 10 eval '"$GKX" --dir "$P" proposals "$PID" | grep -q "^${id:0:12} .* pending "' &&
    run 0 "$T/dec.out" "$GKX" --dir "$P" decline "$PID" "$id" &&
    run 1 "$T/dec2.out" "$GKX" --dir "$P" decline "$PID" "$id" && contains "$T/dec2.out" "already declined" &&
    wait_for 10 eval '"$GKX" --dir "$A" proposals "$PID" | grep -q "^${id:0:12} .* declined "' &&
    offer_is "$A" "o['caps']['weekly'] is None" && offer_is "$P" "o['caps']['weekly'] is None"
}
ok "propose on the advertiser, decline on the publisher: nothing changes on either" t_propose_decline

changes_agree() {
    "$GKX" --dir "$A" changes "$PID" --json >"$T/ch.a" 2>&1 && "$GKX" --dir "$P" changes "$PID" --json >"$T/ch.p" 2>&1 &&
    cmp -s "$T/ch.a" "$T/ch.p" && [ "$(json "$T/ch.a" "all(r['final'] for r in j)")" = True ]
}

t_changes() {
    wait_for 10 changes_agree &&
    api "$API_advertiser" "$A" GET "/v1/partnerships/$PID/changes" >"$T/raw.a" &&
    api "$API_publisher" "$P" GET "/v1/partnerships/$PID/changes" >"$T/raw.p" &&
    [ "$(head -1 "$T/raw.a")" = 200 ] && cmp "$T/raw.a" "$T/raw.p" &&
    [ "$(json "$T/ch.a" "[r['op'] + ' ' + r.get('field', '') for r in j]")" = \
      "['set payout.amount', 'add targeting.countries', 'set status', 'set status', 'propose ', 'accept ', 'set caps.daily', 'propose ', 'decline ']" ] &&
    [ "$(json "$T/ch.a" "j[2]['author_name'], j[2]['author_role'], j[0]['old'], j[0]['new']")" = \
      "('Pixel Pubs', 'publisher', '2.50', '3.00')" ]
}
ok "changes: byte-identical on both nodes (API and --json) once final, in merge order" t_changes

t_changes_table() {
    run 0 "$T/ct.out" "$GKX" --dir "$P" changes "$PID" &&
    grep -qE '^TIME +AUTHOR +STATE +CHANGE$' "$T/ct.out" &&
    grep -qE 'Acme Ads \(advertiser\) +final +payout.amount: "2.50" -> "3.00"$' "$T/ct.out" &&
    grep -qE 'Pixel Pubs \(publisher\) +final +caps.daily: 200 -> 300 \(accepted proposal [0-9a-f]{12}\)$' "$T/ct.out"
}
ok "changes table for people: time, author, final, old -> new" t_changes_table

t_401() {
    api "$API_advertiser" "" GET /v1/status >"$T/u.out" && [ "$(head -1 "$T/u.out")" = 401 ] &&
    contains "$T/u.out" '"code":"unauthorized"' &&
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(printf '%064d' 0)" \
        "http://$API_advertiser/v1/partnerships" | grep -qx 401
}
ok "401 without the bearer token, and with a wrong one" t_401

t_413() {
    head -c 2000000 /dev/zero | tr '\0' 'a' >"$T/big"
    api "$API_advertiser" "$A" PATCH "/v1/partnerships/$PID/offer" -H 'Content-Type: application/json' \
        --data-binary @"$T/big" >"$T/big.out" && [ "$(head -1 "$T/big.out")" = 413 ] &&
    same_digest
}
ok "413 for an oversized body" t_413

t_400_json() {
    api "$API_publisher" "$P" PATCH "/v1/partnerships/$PID/offer" -H 'Content-Type: application/json' \
        --data '{"edits": ["status=paused"' >"$T/m.out" && [ "$(head -1 "$T/m.out")" = 400 ] &&
    contains "$T/m.out" '"code":"malformed_json"' && contains "$T/m.out" "line 1, column" &&
    api "$API_publisher" "$P" PATCH "/v1/partnerships/$PID/offer" -H 'Content-Type: application/json' \
        --data '{"edits": ["status=paused"], "force": true}' >"$T/m2.out" && [ "$(head -1 "$T/m2.out")" = 400 ] &&
    contains "$T/m2.out" 'unknown member \"force\"' && offer_is "$P" "o['status'] == 'active'"
}
ok "400 for malformed JSON (line and column) and for an unknown member" t_400_json

t_api_patch() {
    api "$API_publisher" "$P" PATCH "/v1/partnerships/$PID/offer" -H 'Content-Type: application/json' \
        --data '{"patch": {"terms": "No incentivised traffic.", "targeting": {"platforms": ["ios", "android"]}}}' \
        >"$T/mp.out" && [ "$(head -1 "$T/mp.out")" = 200 ] &&
    wait_for 10 offer_is "$A" "o['terms'] == 'No incentivised traffic.' and o['targeting']['platforms'] == ['android', 'ios']" &&
    api "$API_publisher" "$P" PATCH "/v1/partnerships/$PID/offer" -H 'Content-Type: application/json' \
        --data '{"patch": {"terms": "No incentivised traffic."}}' >"$T/mp2.out" &&
    [ "$(head -1 "$T/mp2.out")" = 400 ] && contains "$T/mp2.out" '"code":"no_changes"'
}
ok "PATCH with a merge patch edits the offer; an empty change is 400 no_changes" t_api_patch

t_api_errors() {
    api "$API_advertiser" "$A" GET "/v1/partnerships/xyz/offer" >"$T/e1.out" && [ "$(head -1 "$T/e1.out")" = 400 ] &&
    contains "$T/e1.out" bad_partnership_id &&
    api "$API_advertiser" "$A" GET "/v1/partnerships/$(printf '%064d' 0)" >"$T/e2.out" && [ "$(head -1 "$T/e2.out")" = 404 ] &&
    api "$API_advertiser" "$A" GET "/v1/partnerships/$PID/offer?digest=1" >"$T/e3.out" && [ "$(head -1 "$T/e3.out")" = 200 ] &&
    [ "$(tail -1 "$T/e3.out")" = "{\"digest\":\"$("$GKX" --dir "$P" offer show "$PID" --digest)\"}" ] &&
    api "$API_advertiser" "$A" POST "/v1/partnerships/$PID/export" -H 'Content-Type: application/json' \
        --data '{"path": "relative.log"}' >"$T/e4.out" && [ "$(head -1 "$T/e4.out")" = 400 ] &&
    contains "$T/e4.out" "is relative"
}
ok "API: 400 for a malformed id, 404 for an unknown one, ?digest=1, relative export path 400" t_api_errors

t_export() {
    mkdir -p "$T/out" && (cd "$T/out" && run 0 "$T/x.out" "$GKX" --dir "$A" export "$PID" adv.log) &&
    contains "$T/x.out" "exported $PID to $(cd "$T/out" && pwd -P)/adv.log" &&
    run 0 "$T/x2.out" "$GKX" --dir "$P" export "$PID" "$T/out/../out/pub.log" &&
    [ -s "$T/out/adv.log" ] && [ -s "$T/out/pub.log" ] &&
    run 1 "$T/x3.out" "$GKX" --dir "$P" export "$PID" "$T/nodir/pub.log" && contains "$T/x3.out" "No such file"
}
ok "export from both nodes (relative FILE made absolute)" t_export

t_audit() {
    run 0 "$T/va.out" "$GKX_AUDIT" verify "$T/out/adv.log" && contains "$T/va.out" "verdict:      sound" &&
    run 0 "$T/vp.out" "$GKX_AUDIT" verify "$T/out/pub.log" && contains "$T/vp.out" "verdict:      sound"
}
ok "gkx-audit verify: both exports are sound" t_audit

t_compare() {
    run 0 "$T/cmp.out" "$GKX_AUDIT" compare "$T/out/adv.log" "$T/out/pub.log" &&
    contains "$T/cmp.out" "the exports agree"
}
ok "gkx-audit compare: the two exports agree" t_compare

t_status_counts() {
    run 0 "$T/st.json" "$GKX" --dir "$A" status --json &&
    [ "$(json "$T/st.json" "j['partnerships'] == {'total': 1, 'active': 1, 'paused': 0, 'frozen': 0} \
        and j['peers'][0]['name'] == 'Pixel Pubs' and j['peers'][0]['connected']")" = True ] &&
    run 0 "$T/st.out" "$GKX" --dir "$A" status && contains "$T/st.out" "partnerships:  1 (1 active, 0 paused, 0 frozen)" &&
    grep -qE '^[0-9a-f]{12} +Pixel Pubs +publisher +yes ' "$T/st.out"
}
ok "status counts partnerships by status and shows the peer connected" t_status_counts

t_help() {
    local verb
    for verb in status peer share partnerships offer pause resume changes proposals accept decline withdraw export; do
        run 0 "$T/h.out" "$GKX" "$verb" --help && contains "$T/h.out" "usage: gkx $verb" || return 1
    done
    run 0 "$T/h.out" "$GKX" --help && contains "$T/h.out" "partnerships" && contains "$T/h.out" "proposals"
}
ok "every new verb has --help" t_help

t_usage() {
    run 2 "$T/u1.out" "$GKX" --dir "$A" share --offer "$T/offer.json" && contains "$T/u1.out" "--publisher and --offer are required" &&
    run 2 "$T/u2.out" "$GKX" --dir "$A" changes && contains "$T/u2.out" "missing arguments" &&
    run 2 "$T/u3.out" "$GKX" --dir "$A" status --bogus && contains "$T/u3.out" "unknown option '--bogus'" &&
    run 2 "$T/u4.out" "$GKX" --dir "$A" offer set "$PID" payout.amount=1 --digest && contains "$T/u4.out" "--digest goes with show"
}
ok "usage errors exit 2 with the problem" t_usage

t_stop() {
    local pid status=0
    for pid in "${_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" && wait "$pid" || status=1
    done
    _pids=()
    [ $status -eq 0 ] && contains "$A.log" "stopping" && contains "$P.log" "stopping" &&
    run 1 "$T/gone.out" "$GKX" --dir "$A" status && contains "$T/gone.out" "is not running"
}
ok "both nodes stop cleanly on SIGTERM; status then says not running" t_stop

finish
