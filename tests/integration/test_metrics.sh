#!/usr/bin/env bash
# test_metrics - GET /metrics and gkx status on two real gkxd nodes: every line of /metrics is
# the Prometheus text format 0.0.4, the bearer token guards it, and its counters move with the
# work done (an edit, postbacks good and bad, webhook deliveries, a peer away); gkx status shows
# uptime, lag in entries and seconds, conversions today and the outbox (notes/contract-6.md,
# docs/api.md).
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 13

PY=/usr/bin/python3
RECEIVER="$(dirname "$0")/webhook_receiver.py"
SECRET="whsec_$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
HOOKS="$T/hooks.jsonl"
# The advertiser's name, with the characters a label value must escape.
A_NAME='Acme "Ads" \ Co'
# Good postbacks sent.
GOOD=3
# Set by the cases, read by later ones (empty while an earlier case has failed); REFUSED is
# gkx_postbacks_total{result="refused"} before the good postbacks (the setup's probe of the
# endpoint was one).
PID="" TEMPLATE="" P_ID="" REFUSED=""

OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"},
  "conversion_policy": {"hold_days": 30}}'

# The metric names notes/contract-6.md requires, with their types.
REQUIRED='gkx_entries_appended_total counter
gkx_entries_ingested_total counter
gkx_entries_refused_total counter
gkx_peers_connected gauge
gkx_replication_lag_entries gauge
gkx_replication_lag_seconds gauge
gkx_postbacks_total counter
gkx_conversions_total counter
gkx_webhook_deliveries_total counter
gkx_emails_sent_total counter
gkx_emails_failed_total counter
gkx_store_bytes gauge
gkx_uptime_seconds gauge'

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# api_addr NAME: the node's API address.
api_addr() { awk -F' = ' '/^\[api\]/ {s=1} s && $1 == "listen" {print $2; exit}' "$T/$1/gkx.conf"; }

# scrape NAME [TOKEN]: GET /metrics with the node's token (or TOKEN; "-" for none) into
# $T/NAME.metrics, the headers into $T/NAME.headers; prints the HTTP status.
scrape() {
    local name=$1 token=${2:-} auth=()
    [ -z "$token" ] && token=$(cat "$T/$name/api.token")
    [ "$token" != - ] && auth=(-H "Authorization: Bearer $token")
    curl -sS "${auth[@]}" -D "$T/$name.headers" -o "$T/$name.metrics" -w '%{http_code}' \
        "http://$(api_addr "$name")/metrics"
}

# check_format FILE: every line of FILE is a HELP, TYPE or sample line of the text format
# 0.0.4, by strict regular expressions; each family has one HELP and one TYPE before its
# samples, which follow it without a break; counters end in _total; no sample is given twice.
# Writes the samples as JSON {"name{labels}": value} to FILE.json.
check_format() {
    "$PY" - "$1" <<'PY'
import json, math, re, sys
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
VALUE = r"(?:NaN|[+-]Inf|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
HELP = re.compile(r"^# HELP (" + NAME + r") ((?:[^\\\n]|\\\\|\\n)*)$")
TYPE = re.compile(r"^# TYPE (" + NAME + r") (counter|gauge)$")
SAMPLE = re.compile(r"^(" + NAME + r")(\{" + LABEL + r"(?:," + LABEL + r")*\})? (" + VALUE + r")$")
text = open(sys.argv[1], encoding="utf-8").read()
assert text.endswith("\n"), "the text does not end with a newline"
helps, types, samples, closed = {}, {}, {}, set()
current = None
for n, line in enumerate(text[:-1].split("\n"), 1):
    m = HELP.match(line) or TYPE.match(line) or SAMPLE.match(line)
    assert m, "line %d does not match the format: %r" % (n, line)
    name = m.group(1)
    if line.startswith("# HELP "):
        assert name not in helps, "line %d: a second HELP for %s" % (n, name)
        assert name not in types, "line %d: HELP of %s after its TYPE" % (n, name)
        helps[name] = m.group(2)
    elif line.startswith("# TYPE "):
        assert name not in types, "line %d: a second TYPE for %s" % (n, name)
        assert name in helps, "line %d: TYPE of %s without HELP" % (n, name)
        types[name] = m.group(2)
        assert m.group(2) != "counter" or name.endswith("_total"), "counter %s: no _total" % name
    else:
        assert name in types, "line %d: sample of %s without a TYPE line" % (n, name)
        labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or "")
        assert len(labels) == len(set(labels)), "line %d: a label twice" % n
        key = name + (m.group(2) or "")
        assert key not in samples, "line %d: sample %s given twice" % (n, key)
        samples[key] = float(m.group(3))
    if current is not None and name != current:
        closed.add(current)
    assert name not in closed, "line %d: family %s is split" % (n, name)
    current = name
assert set(helps) == set(types), "HELP without TYPE: %s" % (set(helps) - set(types))
json.dump({"samples": samples, "types": types}, open(sys.argv[1] + ".json", "w"))
PY
}

# metric NAME SAMPLE: the value of SAMPLE (name and labels, exactly as written) in NAME's last
# scrape; fails when it is absent.
metric() {
    "$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))["samples"]
v = s[sys.argv[2]]
print(int(v) if v == int(v) else v)' "$T/$1.metrics.json" "$2"
}

# fresh NAME: scrapes NAME (200) and checks the format.
fresh() { [ "$(scrape "$1")" = 200 ] && check_format "$T/$1.metrics"; }

# at_least NAME SAMPLE N: after a fresh scrape, SAMPLE is N or more.
at_least() { fresh "$1" >/dev/null 2>&1 && [ "$(metric "$1" "$2" | cut -d. -f1)" -ge "$3" ]; }

# equals NAME SAMPLE N: after a fresh scrape, SAMPLE is N.
equals() { fresh "$1" >/dev/null 2>&1 && [ "$(metric "$1" "$2")" = "$3" ]; }

# pb_url N [CLICK_ID]: the generic postback URL of click clk-N (or CLICK_ID, which may be
# empty) and transaction tx-N, time now.
pb_url() {
    local url=${TEMPLATE//\{click_id\}/${2-clk-$1}}
    url=${url//\{txid\}/tx-$1}
    url=${url//\{event\}/install}
    printf '%s' "${url//\{time\}/$(date +%s)}"
}

# postback URL: sends one postback; prints the HTTP status, the body goes to $T/pb.json.
postback() { curl -gsS -o "$T/pb.json" -w '%{http_code}' "$1"; }

t_setup() {
    "$PY" "$RECEIVER" serve --secret "$SECRET" --out "$HOOKS" --port 0 \
        --port-file "$T/receiver.port" 2>>"$T/receiver.log" &
    _pids+=($!)
    echo $! >"$T/receiver.pid"
    wait_for 10 test -s "$T/receiver.port" &&
    node_init a advertiser && node_init p publisher &&
    sed -i "s/^name = .*/name = $(printf '%s' "$A_NAME" | sed 's/[\\&/]/\\&/g')/" "$T/a/gkx.conf" &&
    printf '\n[webhook]\nurl = http://127.0.0.1:%s/hooks/gkx\nsecret = %s\n' \
        "$(cat "$T/receiver.port")" "$SECRET" >>"$T/p/gkx.conf" && chmod 600 "$T/p/gkx.conf" &&
    "$GKX" --dir "$T/a" card --json >"$T/a.card" &&
    node_start a && node_start p && peer a p && peer p a &&
    echo "$OFFER" >"$T/offer.json" && P_ID=$(card_id p) &&
    PID=$("$GKX" --dir "$T/a" share --publisher "$P_ID" --offer "$T/offer.json") &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 same_digest a p "$PID" &&
    "$GKX" --dir "$T/a" postback-url "$PID" --mmp generic --json >"$T/url.json" &&
    TEMPLATE=$(json "$T/url.json" 'j["url"]') && [[ "$TEMPLATE" == http://127.0.0.1:* ]] &&
    wait_for 10 curl -s -o /dev/null "${TEMPLATE%%\?*}"
}
ok "an advertiser (named with quotes and a backslash) and a publisher with a webhook share an offer" t_setup

t_token() {
    [ "$(scrape a -)" = 401 ] && contains "$T/a.metrics" '"unauthorized"' &&
    [ "$(scrape a wrong-token)" = 401 ] && [ "$(scrape p -)" = 401 ]
}
ok "GET /metrics without the bearer token, or with a wrong one, answers 401" t_token

t_format() {
    local node
    for node in a p; do
        [ "$(scrape "$node")" = 200 ] || { echo "$node: HTTP $(scrape "$node")"; return 1; }
        grep -qi '^Content-Type: text/plain; version=0\.0\.4; charset=utf-8' "$T/$node.headers" ||
            { cat "$T/$node.headers"; return 1; }
        check_format "$T/$node.metrics" || { cat "$T/$node.metrics"; return 1; }
        "$PY" - "$T/$node.metrics.json" "$REQUIRED" <<'PY' || return 1
import json, sys
j = json.load(open(sys.argv[1]))
types, samples = j["types"], j["samples"]
for line in sys.argv[2].splitlines():
    name, kind = line.split()
    assert types.get(name) == kind, "%s: %s, expected %s" % (name, types.get(name), kind)
    assert any(k == name or k.startswith(name + "{") for k in samples), "no sample of " + name
assert samples['gkx_entries_refused_total{reason="GKX_EGAP"}'] == 0, samples
PY
    done
}
ok "/metrics on both nodes: text/plain; version=0.0.4, every line in the format, every metric of the contract" t_format

t_escape() {
    fresh a && grep -qF 'name="Acme \"Ads\" \\ Co"' "$T/a.metrics" &&
    grep -qE '^gkx_node_info\{id="[0-9a-f]{64}",role="advertiser",name="Acme \\"Ads\\" \\\\ Co"\} 1$' \
        "$T/a.metrics"
}
ok "label values are escaped: the advertiser's name in gkx_node_info" t_escape

t_edit() {
    fresh a && fresh p &&
    local appended ingested
    appended=$(metric a gkx_entries_appended_total) && ingested=$(metric p gkx_entries_ingested_total) &&
    edit a "$PID" payout.amount=3.00 &&
    wait_for 10 at_least a gkx_entries_appended_total $((appended + 1)) &&
    wait_for 10 at_least p gkx_entries_ingested_total $((ingested + 1)) &&
    wait_for 10 equals a "gkx_replication_lag_entries{peer=\"$P_ID\"}" 0
}
ok "an edit raises gkx_entries_appended_total on the advertiser, gkx_entries_ingested_total on the publisher" t_edit

t_postbacks() {
    local i
    fresh a &&
    [ "$(metric a 'gkx_postbacks_total{result="committed"}')" = 0 ] &&
    REFUSED=$(metric a 'gkx_postbacks_total{result="refused"}') &&
    for ((i = 1; i <= GOOD; i++)); do
        [ "$(postback "$(pb_url "$i")")" = 200 ] || { cat "$T/pb.json"; return 1; }
    done &&
    [ "$(postback "$(pb_url 1)")" = 200 ] && [ "$(json "$T/pb.json" 'j["duplicate"]')" = True ] &&
    fresh a &&
    [ "$(metric a 'gkx_postbacks_total{result="committed"}')" = "$GOOD" ] &&
    [ "$(metric a 'gkx_postbacks_total{result="duplicate"}')" = 1 ] &&
    [ "$(metric a 'gkx_conversions_total{status="approved"}')" = "$GOOD" ] &&
    [ "$(metric a 'gkx_conversions{status="approved"}')" = "$GOOD" ] &&
    [ "$(metric a gkx_conversions_today)" = "$GOOD" ]
}
ok "$GOOD postbacks and a retry: gkx_postbacks_total committed $GOOD, duplicate 1; gkx_conversions_total approved $GOOD" t_postbacks

t_refused() {
    local bad_token
    bad_token=$(pb_url 9 | sed 's/\([?&]t=\)[^&]*/\1wrong/') &&
    [ "$(postback "$bad_token")" = 401 ] && contains "$T/pb.json" '"unauthorized"' &&
    [ "$(postback "$(pb_url 10 '')")" = 400 ] && contains "$T/pb.json" '"invalid"' &&
    fresh a && [ "$(metric a 'gkx_postbacks_total{result="refused"}')" = $((REFUSED + 2)) ] &&
    [ "$(metric a 'gkx_postbacks_total{result="committed"}')" = "$GOOD" ] &&
    [ "$(metric a 'gkx_postbacks_total{result="failed"}')" = 0 ]
}
ok "a postback with a wrong token and one without a click id raise gkx_postbacks_total refused by 2" t_refused

t_webhook() {
    wait_for 30 equals p 'gkx_webhook_deliveries_total{result="delivered"}' "$GOOD" &&
    wait_for 10 equals p gkx_webhook_deliveries_pending 0 &&
    [ "$(metric p 'gkx_webhook_deliveries_total{result="failed"}')" = 0 ] &&
    [ "$(metric p 'gkx_conversions_total{status="approved"}')" = "$GOOD" ] &&
    [ "$(metric p gkx_conversions_today)" = "$GOOD" ] &&
    [ "$(metric a 'gkx_webhook_deliveries_total{result="delivered"}')" = 0 ]
}
ok "the publisher: $GOOD webhook deliveries delivered, none pending, its ledger counts $GOOD conversions" t_webhook

t_status_json() {
    run 0 "$T/sa.json" "$GKX" --dir "$T/a" status --json &&
    run 0 "$T/sp.json" "$GKX" --dir "$T/p" status --json &&
    "$PY" - "$T/sa.json" "$T/sp.json" "$GOOD" "$P_ID" <<'PY'
import json, sys
a, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
good, p_id = int(sys.argv[3]), sys.argv[4]
for s, role in ((a, "advertiser"), (p, "publisher")):
    assert s["role"] == role, s["role"]
    assert isinstance(s["uptime_seconds"], int) and 0 <= s["uptime_seconds"] < 600, s["uptime_seconds"]
    assert s["partnerships"] == {"total": 1, "active": 1, "paused": 0, "frozen": 0}, s["partnerships"]
    assert s["conversions_today"] == good, (role, s["conversions_today"])
    assert s["outbox"] == {"deliveries_pending": 0, "emails_pending": 0}, s["outbox"]
    [peer] = s["peers"]
    assert peer["connected"] is True and peer["lag_entries"] == 0, peer
    assert isinstance(peer["lag_seconds"], (int, float)) and peer["lag_seconds"] == 0, peer
assert a["peers"][0]["id"] == p_id
PY
}
ok "gkx status --json: uptime, peers with lag in entries and seconds, partnerships, conversions today, outbox" t_status_json

t_status_table() {
    run 0 "$T/st.out" "$GKX" --dir "$T/p" status &&
    grep -qE '^uptime: +[0-9]+ (s|min [0-9]+ s)$' "$T/st.out" &&
    contains "$T/st.out" "partnerships:  1 (1 active, 0 paused, 0 frozen)" &&
    contains "$T/st.out" "conversions:   $GOOD today (UTC)" &&
    contains "$T/st.out" "outbox:        0 webhook deliveries, 0 e-mails waiting"
}
ok "gkx status: the table shows uptime, conversions today and the outbox" t_status_table

# lag_grows: the advertiser sees entries unacknowledged by the publisher, the oldest over 1 s old.
lag_grows() {
    "$GKX" --dir "$T/a" status --json >"$T/lag.json" 2>/dev/null &&
    [ "$(json "$T/lag.json" 'j["peers"][0]["lag_entries"] >= 1 and j["peers"][0]["lag_seconds"] > 1')" = True ]
}

t_lag() {
    node_stop p && edit a "$PID" payout.amount=3.50 &&
    wait_for 15 lag_grows &&
    wait_for 10 equals a gkx_peers_connected 0 &&
    at_least a "gkx_replication_lag_entries{peer=\"$P_ID\"}" 1 &&
    "$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) > 1)' \
        "$(metric a "gkx_replication_lag_seconds{peer=\"$P_ID\"}")" &&
    run 0 "$T/pl.out" "$GKX" --dir "$T/a" peer list && grep -qE ' no +[0-9]+ \([0-9]+\.[0-9] s\) ' "$T/pl.out"
}
ok "the publisher stopped, an edit: lag in entries and seconds grows in status, peer list and /metrics" t_lag

t_catch_up() {
    node_start p && wait_for 20 equals a "gkx_replication_lag_entries{peer=\"$P_ID\"}" 0 &&
    equals a "gkx_replication_lag_seconds{peer=\"$P_ID\"}" 0 && equals a gkx_peers_connected 1 &&
    wait_for 10 same_digest a p "$PID" &&
    fresh p && [ "$(metric p 'gkx_conversions{status="approved"}')" = "$GOOD" ] &&
    "$PY" - "$T/p.metrics.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["samples"]
assert 0 < s["gkx_store_bytes"] <= s["gkx_store_map_bytes"], (s["gkx_store_bytes"], s["gkx_store_map_bytes"])
assert 0 <= s["gkx_uptime_seconds"] < 600, s["gkx_uptime_seconds"]
# Restarted: the counters of this run start again; the store's counts do not.
assert s['gkx_webhook_deliveries_total{result="delivered"}'] == 0, s
assert s["gkx_emails_sent_total"] == 0 and s["gkx_emails_pending"] == 0, s
PY
}
ok "the publisher back: lag 0 again; store bytes, uptime; ledger counts kept across the restart" t_catch_up

t_stop() {
    local receiver; receiver=$(cat "$T/receiver.pid")
    node_stop a && node_stop p && kill -TERM "$receiver" && { wait "$receiver"; true; }
}
ok "both nodes stop cleanly" t_stop

finish
