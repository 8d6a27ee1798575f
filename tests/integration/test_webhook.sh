#!/usr/bin/env bash
# test_webhook - a publisher node POSTs each replicated conversion and status change to its
# [webhook] url, signed the Standard Webhooks way, and retries until it is taken: a receiver
# failing its first requests, a receiver down across a restart of the publisher's node, replays
# (notes/contract-5.md, docs/webhooks.md).
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 9

PY=/usr/bin/python3
RECEIVER="$(dirname "$0")/webhook_receiver.py"
# A fresh secret for the run: whsec_ and the base64 of 32 random bytes.
SECRET="whsec_$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
# The receiver's port: chosen by the first receiver_start, kept by the next ones.
HOOK_PORT=0
HOOKS="$T/hooks.jsonl"
FIRST=50
MORE=20
# Set by the cases, read by later ones (empty while an earlier case has failed).
PID="" SHORT="" TEMPLATE=""

# A hold of 30 days keeps approved conversions open to status changes (0 locks them at once).
OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"},
  "conversion_policy": {"hold_days": 30}}'

# postback_listen NAME: puts NAME's postback endpoint on a free port (the default 7702 would
# collide with other tests).
postback_listen() {
    local conf="$T/$1/gkx.conf"
    awk '/^\[/ {skip = ($0 == "[postback]")} !skip' "$conf" >"$conf.new" &&
    printf '\n[postback]\nlisten = 127.0.0.1:%s\n' "$(free_port)" >>"$conf.new" && mv "$conf.new" "$conf"
}

# webhook_config NAME: sends NAME's deliveries to the receiver's port, signed with SECRET.
webhook_config() {
    printf '\n[webhook]\nurl = http://127.0.0.1:%s/hooks/gkx\nsecret = %s\n' "$HOOK_PORT" "$SECRET" \
        >>"$T/$1/gkx.conf" && chmod 600 "$T/$1/gkx.conf"
}

# receiver_start [FAIL_FIRST]: runs the receiver on HOOK_PORT (a free port the first time, then
# set), answering 500 to its first FAIL_FIRST requests; waits until it listens.
receiver_start() {
    rm -f "$T/receiver.port"
    "$PY" "$RECEIVER" serve --secret "$SECRET" --out "$HOOKS" --port "$HOOK_PORT" \
        --port-file "$T/receiver.port" --fail-first "${1:-0}" 2>>"$T/receiver.log" &
    local pid=$!
    _pids+=("$pid")
    echo "$pid" >"$T/receiver.pid"
    wait_for 10 test -s "$T/receiver.port" && HOOK_PORT=$(cat "$T/receiver.port")
}

# receiver_stop: ends the receiver and waits for it.
receiver_stop() {
    local pid; pid=$(cat "$T/receiver.pid")
    kill -TERM "$pid" && { wait "$pid"; true; }
}

# summary: the receiver's record so far (webhook_receiver.py summary) into $T/summary.json.
summary() { "$PY" "$RECEIVER" summary "$HOOKS" >"$T/summary.json"; }

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# unique_at_least N: the receiver has taken N distinct webhook-ids (or more).
unique_at_least() { summary && [ "$(json "$T/summary.json" 'j["unique"]')" -ge "$1" ]; }

# postbacks FROM TO: one generic postback per number, each answered 200 with a new conversion;
# the conversion ids go to $T/sent.
postbacks() {
    local i url
    for ((i = $1; i <= $2; i++)); do
        url=${TEMPLATE//\{click_id\}/clk-$i}
        url=${url//\{txid\}/tx-$i}
        url=${url//\{event\}/install}
        url=${url//\{time\}/$(date +%s)}
        curl -gsS -o "$T/pb.json" -w '%{http_code}' "$url" >"$T/pb.status" &&
        [ "$(cat "$T/pb.status")" = 200 ] &&
        [ "$(json "$T/pb.json" 'j["duplicate"]')" = False ] &&
        json "$T/pb.json" 'j["conversion"]' >>"$T/sent" ||
        { echo "postback $i: HTTP $(cat "$T/pb.status")"; cat "$T/pb.json"; return 1; }
    done
}

# publisher_holds N: the publisher's node has N conversions of the partnership.
publisher_holds() {
    "$GKX" --dir "$T/p" conversions "$PID" --limit 100000 --json >"$T/conv.p" 2>/dev/null &&
    [ "$(json "$T/conv.p" 'len(j["conversions"] if isinstance(j, dict) else j)')" -eq "$1" ]
}

# check_bodies: every taken request is a conversion.created or status change of a conversion
# in $T/sent, signed right, with the node's headers, and its webhook-id is SHORT-SEQ of data.
check_bodies() {
    "$PY" - "$HOOKS" "$T/sent" "$PID" "$SHORT" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
sent = set(open(sys.argv[2]).read().split())
pid, short = sys.argv[3], sys.argv[4]
taken = set()
for r in records:
    assert r["valid"], ("bad signature", r)
    assert r["path"] == "/hooks/gkx", r["path"]
    assert r["content_type"] == "application/json", r["content_type"]
    assert r["user_agent"].startswith("gkxd/"), r["user_agent"]
    body = json.loads(r["body"])
    assert r["body"] == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False), r["body"]
    assert set(body) == {"type", "timestamp", "data"}, body
    data = body["data"]
    assert data["partnership"] == pid, data
    assert r["id"] == "%s-%d" % (short, data["seq"]), (r["id"], data["seq"])
    assert data["id"] in sent, data["id"]
    if body["type"] == "conversion.created":
        assert data["seq"] > 1 and data["event"] == "install", data
        if 200 <= r["status"] <= 299:
            taken.add(data["id"])
    else:
        assert body["type"] == "conversion.status_changed", body["type"]
        assert data["conversion"] == data["id"] and set(data["change"]) == {"status", "reason"}, data
assert taken == sent, ("conversions never taken", sorted(sent - taken)[:5], len(sent - taken))
PY
}

t_setup() {
    receiver_start 3 &&
    node_init a advertiser && postback_listen a && node_init p publisher && webhook_config p &&
    node_start a && node_start p && peer a p && peer p a &&
    echo "$OFFER" >"$T/offer.json" &&
    PID=$("$GKX" --dir "$T/a" share --publisher "$(card_id p)" --offer "$T/offer.json") &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 same_digest a p "$PID" && SHORT=${PID:0:16} &&
    "$GKX" --dir "$T/a" postback-url "$PID" --mmp generic --json >"$T/url.json" &&
    TEMPLATE=$(json "$T/url.json" 'j["url"]') && [[ "$TEMPLATE" == http://127.0.0.1:*"p=$SHORT&"* ]] &&
    wait_for 10 curl -s -o /dev/null "${TEMPLATE%%\?*}"
}
ok "a publisher with [webhook] url and secret, its advertiser, a shared offer, the generic postback URL" t_setup

t_first() {
    postbacks 1 "$FIRST" && wait_for 60 unique_at_least "$FIRST" && summary &&
    [ "$(json "$T/summary.json" '(j["unique"], j["failed"], j["bad_signatures"])')" = "($FIRST, 3, 0)" ] &&
    check_bodies
}
ok "$FIRST postbacks: all $FIRST conversions reach the receiver, signed, after its first 3 answers of 500" t_first

t_down_across_restart() {
    receiver_stop && postbacks $((FIRST + 1)) $((FIRST + MORE)) &&
    wait_for 30 publisher_holds $((FIRST + MORE)) &&
    node_stop p && node_start p && sleep 1 && receiver_start 0 &&
    wait_for 120 unique_at_least $((FIRST + MORE)) && summary && check_bodies
}
ok "receiver down for $MORE more and a restart of the publisher's node: all $((FIRST + MORE)) arrive" t_down_across_restart
summary 2>/dev/null && echo "# webhook-ids taken more than once so far: $(json "$T/summary.json" 'j["duplicates"]')"

t_deliveries_json() {
    "$GKX" --dir "$T/p" deliveries --limit 1000 --json >"$T/deliveries.json" &&
    "$PY" - "$T/deliveries.json" "$((FIRST + MORE))" "$PID" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rows = j["deliveries"] if isinstance(j, dict) else j
n, pid = int(sys.argv[2]), sys.argv[3]
assert len(rows) == n, len(rows)
assert [r["id"] for r in rows] == list(range(n, 0, -1)), "not newest first"
keys = {"id", "partnership", "seq", "event_type", "conversion", "attempts", "last_status",
        "last_error", "created", "last_attempt", "next_attempt", "delivered"}
for r in rows:
    assert set(r) == keys, r
    assert r["partnership"] == pid and r["event_type"] == "conversion.created", r
    assert r["delivered"] and r["next_attempt"] is None and r["attempts"] >= 1, r
    assert 200 <= r["last_status"] <= 299 and r["last_error"] is None, r
# The first three met the receiver's 500s; the last ones its absence.
assert all(r["attempts"] >= 2 for r in rows if r["id"] <= 3), [r for r in rows if r["id"] <= 3]
assert all(r["attempts"] >= 2 for r in rows if r["id"] > n - 20), "the down receiver was not retried"
PY
}
ok "gkx deliveries --json: every delivery delivered, with its attempts, newest first" t_deliveries_json

t_deliveries_table() {
    run 0 "$T/deliveries.txt" "$GKX" --dir "$T/p" deliveries --limit 5 &&
    contains "$T/deliveries.txt" "conversion.created" && contains "$T/deliveries.txt" "delivered"
}
ok "gkx deliveries: the table" t_deliveries_table

# accepted_count ID: how many times the receiver took webhook-id ID.
accepted_count() { summary && json "$T/summary.json" "j[\"ids\"].get(\"$1\", 0)"; }

# delivery ID EXPR: evaluates a Python expression over delivery ID's record (as r) in
# gkx deliveries --json, prints it.
delivery() {
    "$GKX" --dir "$T/p" deliveries --limit 100000 --json >"$T/d.json" &&
    "$PY" - "$T/d.json" "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
[r] = [r for r in (j["deliveries"] if isinstance(j, dict) else j) if r["id"] == int(sys.argv[2])]
print(eval(sys.argv[3]))
PY
}

# Set by t_replay: delivery 1's webhook-id, times taken and attempts before the replay.
REPLAY_ID="" REPLAY_TAKEN="" REPLAY_ATTEMPTS=""
replay_taken() { [ "$(accepted_count "$REPLAY_ID")" -eq $((REPLAY_TAKEN + 1)) ]; }
replay_recorded() {
    [ "$(delivery 1 "r['next_attempt'] is None and r['attempts'] == $REPLAY_ATTEMPTS + 1")" = True ]
}

t_replay() {
    REPLAY_ID="$SHORT-$(delivery 1 'r["seq"]')" && REPLAY_ATTEMPTS=$(delivery 1 'r["attempts"]') &&
    REPLAY_TAKEN=$(accepted_count "$REPLAY_ID") && [ "$REPLAY_TAKEN" -ge 1 ] &&
    run 0 "$T/replay.json" "$GKX" --dir "$T/p" deliveries replay 1 --json &&
    [ "$(json "$T/replay.json" '(j["id"], j["delivered"] is not None, j["next_attempt"] is not None)')" = \
      "(1, True, True)" ] &&
    wait_for 10 replay_taken && wait_for 10 replay_recorded &&
    [ "$(delivery 1 'r["delivered"]')" = "$(json "$T/replay.json" 'j["delivered"]')" ]
}
ok "gkx deliveries replay 1: sent again under the same webhook-id, recorded, first delivery time kept" t_replay

t_replay_unknown() {
    run 1 "$T/replay.err" "$GKX" --dir "$T/p" deliveries replay 999999 && contains "$T/replay.err" "999999"
}
ok "gkx deliveries replay of an unknown id fails and names it" t_replay_unknown

# change_taken: the receiver has taken one more webhook-id than there are conversions.
change_taken() { unique_at_least $((FIRST + MORE + 1)); }

t_status_change() {
    local conversion; conversion=$(head -1 "$T/sent") &&
    "$GKX" --dir "$T/a" conversion status "$PID" "$conversion" rejected --reason fraud >/dev/null &&
    wait_for 30 change_taken &&
    "$PY" - "$HOOKS" "$conversion" <<'PY' &&
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
changes = [json.loads(r["body"]) for r in records if r["valid"] and 200 <= r["status"] <= 299
           and json.loads(r["body"])["type"] == "conversion.status_changed"]
assert len(changes) == 1, changes
data = changes[0]["data"]
assert data["conversion"] == sys.argv[2] and data["id"] == sys.argv[2], data
assert data["change"] == {"status": "rejected", "reason": "fraud"}, data["change"]
assert data["status"] == "rejected", data["status"]
PY
    check_bodies
}
ok "a status change on the advertiser arrives as conversion.status_changed with the change" t_status_change

t_stop() { node_stop p && node_stop a && receiver_stop; }
ok "both nodes stop cleanly (exit 0) with the delivery thread running" t_stop

finish
