#!/usr/bin/env bash
# test_conversions - MMP postbacks on a real advertiser node become signed conversions that
# replicate to the publisher: a flood of 10,000 with retries and invalid ones, the endpoint's
# refusals, status changes, pause, caps, budgets and a SIGKILL in the middle of a flood
# (notes/contract-5.md, docs/postbacks.md, docs/conversions.md).
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 18

PY=/usr/bin/python3
POSTBACKS="$(dirname "$0")/postbacks.py"
# Under valgrind (lib.sh) the floods are GKX_LOAD_DIVISOR times smaller.
FLOOD=$(scaled 10000)
KILL_FLOOD=$(scaled 10000)
# The flood's sends: every valid one, 10% of them again as retries, 5% invalid ones (postbacks.py).
FLOOD_SENT=$("$PY" -c 'import sys; n = int(sys.argv[1]); print(n + int(round(n * 0.10)) + int(round(n * 0.05)))' "$FLOOD")
NOW=$(date +%s)
NOW_ISO=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
# Set by the cases, read by later ones (empty while an earlier case has failed).
PID="" PID_K="" BASE="" BASE_EXPECTED="" SHORT="" TOKEN="" DIGEST=""

# The flood's offer: no caps or budgets, so every conversion is approved; a hold of 30 days
# keeps approved conversions open to status changes (a hold of 0 locks them at once).
OFFER_MAIN='{"name": "Puzzle Quest iOS US",
  "payout": {"model": "cpi", "amount": "2.50", "currency": "USD", "events": {"purchase": "10.00"}},
  "conversion_policy": {"hold_days": 30}}'
OFFER_PLAIN='{"name": "Puzzle Quest Android", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"}}'

# postback_base NAME: sets BASE_EXPECTED to the base URL gkx postback-url should print for
# NAME: http://LISTEN/postback, LISTEN being the free port node_init gave [postback] listen.
postback_base() {
    local listen
    listen=$(awk -F' = ' '/^\[/ {s = ($0 == "[postback]")} s && $1 == "listen" {print $2; exit}' "$T/$1/gkx.conf") &&
    [ -n "$listen" ] && BASE_EXPECTED="http://$listen/postback"
}

# share_offer JSON: NAME a shares the offer with p; prints the partnership id once p holds it.
share_offer() {
    local pid
    echo "$1" >"$T/share.json" &&
    pid=$("$GKX" --dir "$T/a" share --publisher "$(card_id p)" --offer "$T/share.json") &&
    [[ "$pid" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 same_digest a p "$pid" && echo "$pid"
}

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# conversions NAME PID FILE: every conversion of the partnership as NAME lists it, into FILE.
conversions() { "$GKX" --dir "$T/$1" conversions "$2" --limit 100000 --json >"$3"; }

# report_count NAME PID: the number of conversions in NAME's report of the partnership.
report_count() {
    "$GKX" --dir "$T/$1" report --partnership "$2" --json 2>/dev/null |
        "$PY" -c 'import json, sys; print(sum(t["count"] for t in json.load(sys.stdin)["totals"]))'
}

# has_count NAME PID N: NAME's report counts N conversions.
has_count() { local n; n=$(report_count "$1" "$2") && [ -n "$n" ] && [ "$n" -eq "$3" ]; }

# has_at_least NAME PID N: NAME's report counts N conversions or more.
has_at_least() { local n; n=$(report_count "$1" "$2") && [ -n "$n" ] && [ "$n" -ge "$3" ]; }

# conv NAME PID ID: prints "STATUS REASON INITIAL_STATUS FLAG" of one conversion on NAME.
conv() {
    conversions "$1" "$2" "$T/.conv.$1" 2>/dev/null &&
    "$PY" - "$T/.conv.$1" "$3" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for c in (j["conversions"] if isinstance(j, dict) else j):
    if c["id"] == sys.argv[2]:
        print(c["status"], c["reason"], c["initial_status"], c["flag"])
PY
}

# conv_is NAME PID ID TEXT: conv prints TEXT.
conv_is() { [ "$(conv "$1" "$2" "$3")" = "$4" ]; }

# same_report PID: both nodes print the same report JSON and digest.
same_report() {
    "$GKX" --dir "$T/a" report --partnership "$1" --json >"$T/report.a" 2>&1 &&
    "$GKX" --dir "$T/p" report --partnership "$1" --json >"$T/report.p" 2>&1 &&
    cmp -s "$T/report.a" "$T/report.p" &&
    [ "$("$GKX" --dir "$T/a" report --partnership "$1" --digest)" = \
      "$("$GKX" --dir "$T/p" report --partnership "$1" --digest)" ]
}

# offer_status NAME PID: the offer's status field as NAME serves it.
offer_status() { "$GKX" --dir "$T/$1" offer show "$2" --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["offer"]["status"])'; }

# pb FILE QUERY: one GET of BASE/appsflyer?QUERY; the body goes to FILE, the status to stdout.
pb() { curl -sS -o "$1" -w '%{http_code}' "$BASE/appsflyer?$2"; }

# af SHORT ID EVENT: a valid AppsFlyer query for the partnership with that short id; ID makes
# the click id and the AppsFlyer id (the transaction id) unique.
af() {
    echo "p=$1&t=$TOKEN&clickid=clk-$2&appsflyer_id=af-$2&event_name=$3&event_time=$NOW_ISO&country_code=US&platform=ios"
}

# answer FILE: prints "STATUS REASON DUPLICATE" of a postback's 200 answer.
answer() { json "$1" '"%s %s %s" % (j["status"], j["reason"], str(j["duplicate"]).lower())'; }

t_setup() {
    node_init a advertiser && postback_base a && node_init p publisher &&
    node_start a && node_start p && peer a p && peer p a &&
    wait_for 10 curl -s -o /dev/null "$BASE_EXPECTED/appsflyer" &&
    PID=$(share_offer "$OFFER_MAIN")
}
ok "an advertiser with a postback endpoint and a publisher share an offer" t_setup

# url_parts FILE: prints "BASE SHORT TOKEN" of the URL in gkx postback-url --json's output.
url_parts() {
    "$PY" - "$1" <<'PY'
import json, sys, urllib.parse
j = json.load(open(sys.argv[1]))
parts = urllib.parse.urlsplit(j["url"] if isinstance(j, dict) else j)
query = dict(urllib.parse.parse_qsl(parts.query))
print("%s://%s%s" % (parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0]), query["p"], query["t"])
PY
}

t_postback_url() {
    run 0 "$T/url.json" "$GKX" --dir "$T/a" postback-url "$PID" --mmp appsflyer --json &&
    read -r BASE SHORT TOKEN <<<"$(url_parts "$T/url.json")" &&
    [ "$BASE" = "$BASE_EXPECTED" ] && [ "$SHORT" = "${PID:0:16}" ] &&
    [ "$TOKEN" = "$(cat "$T/a/postback.token")" ] && [[ "$TOKEN" =~ ^[A-Za-z0-9_-]{43}$ ]] &&
    [ "$(stat -c %a "$T/a/postback.token")" = 600 ] ||
        { echo "base '$BASE' (want '$BASE_EXPECTED'), short '$SHORT', pid $PID"; return 1; }
    "$PY" - "$T/url.json" <<'PY'
import json, sys, urllib.parse
j = json.load(open(sys.argv[1]))
assert not isinstance(j, dict) or j.get("mmp") == "appsflyer", j
parts = urllib.parse.urlsplit(j["url"] if isinstance(j, dict) else j)
assert parts.path.endswith("/appsflyer"), parts.path
pairs = [pair.split("=", 1) for pair in parts.query.split("&")]
want = ["p", "t", "clickid", "appsflyer_id", "event_name", "event_time", "install_unix_ts",
        "attributed_touch_time", "event_revenue", "event_revenue_currency", "country_code",
        "platform", "af_sub1", "af_sub2", "af_sub3", "af_sub4", "af_sub5"]
assert [name for name, _ in pairs] == want, pairs
assert all(value == "{%s}" % name for name, value in pairs[2:]), pairs
PY
}
ok "postback-url --json: the base as configured, p= the short id, t= the 0600 token, docs/postbacks.md's AppsFlyer template" t_postback_url

t_flood() {
    "$PY" "$POSTBACKS" --url "$BASE" --short "$SHORT" --token="$TOKEN" --count "$FLOOD" \
        --mmp appsflyer,adjust --retries 0.10 --invalid 0.05 --concurrency 16 --seed 1 \
        --events install,purchase --out "$T/flood.json" --log "$T/flood.log" &&
    [ "$(json "$T/flood.json" 'j["sent"], j["valid_unique"], j["statuses"]')" = \
      "($FLOOD_SENT, $FLOOD, {'approved': $FLOOD})" ]
}
ok "10,000 postbacks, 10% retried, 5% invalid: first sends 200, retries duplicates, refusals 4xx" t_flood

t_replicated() {
    wait_for 60 has_count p "$PID" "$FLOOD" &&
    conversions a "$PID" "$T/conv.a" && conversions p "$PID" "$T/conv.p" &&
    "$PY" - "$T/flood.json" "$T/conv.a" "$T/conv.p" <<'PY'
import collections, json, sys
def convs(path):
    j = json.load(open(path))
    return j["conversions"] if isinstance(j, dict) else j
flood = set(json.load(open(sys.argv[1]))["conversion_ids"])
for path in sys.argv[2:]:
    cs = convs(path)
    ids = collections.Counter(c["id"] for c in cs)
    clicks = collections.Counter(c["click_id"] for c in cs)
    assert set(ids) == flood, (path, len(set(ids) ^ flood), "ids differ from the answers")
    assert max(ids.values()) == 1 and max(clicks.values()) == 1, (path, "a conversion twice")
    assert all(c["status"] == "approved" and c["reason"] is None for c in cs), path
    assert all(c["flag"] is None for c in cs), (path, [c for c in cs if c["flag"]][:3])
PY
}
ok "both nodes hold exactly the answered conversions, once each, unflagged by the publisher" t_replicated

t_reports() {
    wait_for 10 same_report "$PID" &&
    DIGEST=$("$GKX" --dir "$T/a" report --partnership "$PID" --digest) && [[ "$DIGEST" =~ ^[0-9a-f]{64}$ ]] &&
    "$PY" - "$T/report.a" "$T/flood.json" "$DIGEST" "$FLOOD" "$PID" <<'PY'
import decimal, json, sys
report, flood = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert report["digest"] == sys.argv[3], report["digest"]
assert report["partnership"] == sys.argv[5], report["partnership"]
[usd] = report["totals"]
events = flood["events"]
payout = decimal.Decimal("2.50") * events.get("install", 0) + decimal.Decimal("10.00") * events.get("purchase", 0)
assert usd["currency"] == "USD" and usd["count"] == int(sys.argv[4]), usd
assert decimal.Decimal(usd["payout"]) == payout, (usd, payout)
PY
}
ok "report --json equal on both nodes, digest equal, count and payout as sent" t_reports

t_wrong_token() {
    [ "$(pb "$T/c1.json" "$(af "$SHORT" wt-1 install | sed "s/t=$TOKEN/t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/")")" = 401 ] &&
    [ "$(json "$T/c1.json" 'j["error"]["code"]')" = unauthorized ] && ! grep -qF "$TOKEN" "$T/c1.json"
}
ok "a wrong token: 401 unauthorized" t_wrong_token

t_bad_revenue() {
    [ "$(pb "$T/c2.json" "$(af "$SHORT" br-1 purchase)&event_revenue=4.9x&event_revenue_currency=USD")" = 400 ] &&
    [ "$(json "$T/c2.json" 'j["error"]["code"]')" = invalid ] && contains "$T/c2.json" 'event_revenue'
}
ok "a malformed revenue: 400 invalid, the message names event_revenue" t_bad_revenue

t_unknown_short() {
    local other=0000000000000000
    [ "$SHORT" = "$other" ] && other=1111111111111111
    [ "$(pb "$T/c3.json" "$(af "$other" us-1 install)")" = 404 ] &&
    [ "$(json "$T/c3.json" 'j["error"]["code"]')" = not_found ] && contains "$T/c3.json" "$other"
}
ok "an unknown short id: 404 not_found naming it" t_unknown_short

t_status_change() {
    ID=$(json "$T/flood.json" 'j["conversion_ids"][0]') &&
    run 0 "$T/st.json" "$GKX" --dir "$T/a" conversion status "$PID" "${ID:0:12}" reversed --reason chargeback --json &&
    [ "$(json "$T/st.json" 'j["id"], j["status"], j["reason"]')" = "('$ID', 'reversed', 'chargeback')" ] &&
    wait_for 10 conv_is p "$PID" "$ID" "reversed chargeback approved None" &&
    conv_is a "$PID" "$ID" "reversed chargeback approved None" &&
    wait_for 10 same_report "$PID" &&
    [ "$("$GKX" --dir "$T/p" report --partnership "$PID" --digest)" != "$DIGEST" ]
}
ok "conversion status reversed on the advertiser: the publisher shows it, reports agree on a new digest" t_status_change

t_publisher_cannot() {
    local id2; id2=$(json "$T/flood.json" 'j["conversion_ids"][1]') &&
    run 1 "$T/pst.out" "$GKX" --dir "$T/p" conversion status "$PID" "$id2" rejected --reason fraud &&
    sleep 0.5 && conv_is p "$PID" "$id2" "approved None approved None" &&
    conv_is a "$PID" "$id2" "approved None approved None"
}
ok "the publisher cannot change a conversion's status" t_publisher_cannot

t_paused() {
    local id before
    run 0 "$T/pause.out" "$GKX" --dir "$T/a" pause "$PID" &&
    [ "$(pb "$T/c4.json" "$(af "$SHORT" pz-1 install)")" = 200 ] &&
    [ "$(answer "$T/c4.json")" = "rejected paused false" ] &&
    id=$(json "$T/c4.json" 'j["conversion"]') &&
    wait_for 10 conv_is p "$PID" "$id" "rejected paused rejected None" &&
    before=$((NOW - 60)) &&
    [ "$(pb "$T/c5.json" "$(af "$SHORT" pz-2 install)&attributed_touch_time=$before")" = 200 ] &&
    [ "$(answer "$T/c5.json")" = "approved None false" ] &&
    id=$(json "$T/c5.json" 'j["conversion"]') &&
    wait_for 10 conv_is p "$PID" "$id" "approved None approved None"
}
ok "a paused offer: a postback is 200 rejected \"paused\" on both nodes; a click from before the pause converts" t_paused

t_cap() {
    local pid i statuses=""
    pid=$(share_offer "$OFFER_PLAIN") && run 0 "$T/cap.out" "$GKX" --dir "$T/a" offer set "$pid" caps.daily=3 &&
    for i in 1 2 3 4 5; do
        [ "$(pb "$T/cap.$i.json" "$(af "${pid:0:16}" "cap-$i" install)")" = 200 ] || return 1
        statuses="$statuses$(answer "$T/cap.$i.json");"
    done
    [ "$statuses" = "approved None false;approved None false;approved None false;rejected cap false;rejected cap false;" ] ||
        { echo "answers: $statuses"; return 1; }
    wait_for 10 has_count p "$pid" 5 && conversions p "$pid" "$T/cap.p" &&
    [ "$(json "$T/cap.p" 'sorted((c["status"], c["reason"], c["flag"]) for c in (j["conversions"] if isinstance(j, dict) else j))')" = \
      "[('approved', None, None), ('approved', None, None), ('approved', None, None), ('rejected', 'cap', None), ('rejected', 'cap', None)]" ]
}
ok "caps.daily=3: five postbacks give 3 approved and 2 rejected \"cap\", on both nodes" t_cap

# A budget that two conversions of 2.50 nearly spend: the third would pass it, so it is rejected
# "budget", and the node then pauses the offer (a budget reached exactly pauses it at once, and
# the next conversion is rejected "paused" instead: docs/conversions.md).
t_budget() {
    local pid i statuses=""
    pid=$(share_offer "$OFFER_PLAIN") && run 0 "$T/bud.out" "$GKX" --dir "$T/a" offer set "$pid" budget.total=6.00 &&
    for i in 1 2 3; do
        [ "$(pb "$T/bud.$i.json" "$(af "${pid:0:16}" "bud-$i" install)")" = 200 ] || return 1
        statuses="$statuses$(answer "$T/bud.$i.json");"
    done
    [ "$statuses" = "approved None false;approved None false;rejected budget false;" ] ||
        { echo "answers: $statuses"; return 1; }
    wait_for 10 eval '[ "$(offer_status a "$pid")" = paused ]' &&
    wait_for 10 eval '[ "$(offer_status p "$pid")" = paused ]' ||
        { echo "offer status: advertiser $(offer_status a "$pid"), publisher $(offer_status p "$pid")"; return 1; }
    [ "$(pb "$T/bud.4.json" "$(af "${pid:0:16}" bud-4 install)")" = 200 ] &&
    [ "$(answer "$T/bud.4.json")" = "rejected paused false" ] &&
    wait_for 10 has_count p "$pid" 4 && wait_for 10 same_report "$pid"
}
ok "budget.total=6.00 at 2.50 each: the third is rejected \"budget\", the offer is paused on both, the fourth \"paused\"" t_budget

# A status changed twice: gkx names the status just before each change, not the first one; a
# reason with a control character is a 400 bad_request like every other bad reason.
t_status_twice() {
    local pid id
    pid=$(share_offer "$OFFER_MAIN") &&
    [ "$(pb "$T/tw.json" "$(af "${pid:0:16}" tw-1 install)")" = 200 ] &&
    id=$(json "$T/tw.json" 'j["conversion"]') &&
    run 0 "$T/tw.1" "$GKX" --dir "$T/a" conversion status "$pid" "$id" rejected --reason fraud &&
    contains "$T/tw.1" "conversion $id: approved -> rejected (fraud)" &&
    run 0 "$T/tw.2" "$GKX" --dir "$T/a" conversion status "$pid" "$id" approved &&
    contains "$T/tw.2" "conversion $id: rejected -> approved" &&
    api a POST "/v1/partnerships/$pid/conversions/$id/status" \
        '{"status": "reversed", "reason": "a\u0001b"}' >"$T/tw.3" &&
    [ "$(json "$T/tw.3" 'j["error"]["code"], j["error"]["message"][:24]')" = \
      "('bad_request', 'conversion_status.reason')" ]
}
ok "a status changed twice: gkx prints each change from the status before it; a bad reason is 400" \
    t_status_twice

t_kill() {
    PID_K=$(share_offer "$OFFER_PLAIN") || return 1
    "$PY" "$POSTBACKS" --url "$BASE" --short "${PID_K:0:16}" --token="$TOKEN" --count "$KILL_FLOOD" \
        --retries 0.10 --invalid 0 --concurrency 16 --seed 2 --tolerate-errors \
        --out "$T/kill.json" --log "$T/kill.log" >"$T/kill.out" 2>&1 &
    local flood=$! pid_a; pid_a=$(node_pid a)
    _pids+=("$flood")
    # Kill once the flood is under way, not before it began: as soon as a tenth
    # is held (with a pause after it, the valgrind run's small flood was once
    # answered in full before the kill).
    wait_for 20 has_at_least a "$PID_K" $((KILL_FLOOD / 10))
    kill -9 "$pid_a"
    wait "$pid_a" 2>/dev/null
    wait "$flood" || { cat "$T/kill.out"; return 1; }
    node_start a && wait_for 10 curl -s -o /dev/null "$BASE/appsflyer" &&
    [ "$(json "$T/kill.json" 'j["errors"] > 0 and len(j["conversion_ids"]) > 0')" = True ] ||
        { echo "the flood was not cut by the kill:"; cat "$T/kill.out"; return 1; }
    conversions a "$PID_K" "$T/kill.a" &&
    "$PY" - "$T/kill.json" "$T/kill.a" <<'PY'
import collections, json, sys
j = json.load(open(sys.argv[2]))
cs = j["conversions"] if isinstance(j, dict) else j
ids = collections.Counter(c["id"] for c in cs)
clicks = collections.Counter(c["click_id"] for c in cs)
answered = json.load(open(sys.argv[1]))["conversion_ids"]
missing = [i for i in answered if ids[i] != 1]
assert not missing, ("answered 2xx but not held once", len(missing), missing[:3])
assert max(clicks.values()) == 1, "one postback became two conversions"
PY
}
ok "SIGKILL mid-flood: after the restart every conversion answered 2xx is on the advertiser once" t_kill

t_resend() {
    "$PY" "$POSTBACKS" --url "$BASE" --short "${PID_K:0:16}" --token="$TOKEN" --resend "$T/kill.log" \
        --resend-acknowledged "$(scaled 500)" --concurrency 16 --out "$T/resend.json" &&
    wait_for 10 has_count a "$PID_K" "$KILL_FLOOD" && conversions a "$PID_K" "$T/kill.a2" &&
    "$PY" - "$T/kill.json" "$T/resend.json" "$T/kill.a2" "$KILL_FLOOD" <<'PY'
import json, sys
ids = set(json.load(open(sys.argv[1]))["conversion_ids"]) | set(json.load(open(sys.argv[2]))["conversion_ids"])
j = json.load(open(sys.argv[3]))
cs = j["conversions"] if isinstance(j, dict) else j
assert len(cs) == int(sys.argv[4]) == len(ids) == len({c["id"] for c in cs}), (len(cs), len(ids))
assert {c["id"] for c in cs} == ids
PY
}
ok "after the restart, retries: answered ones are duplicates, the rest make exactly one conversion per postback" t_resend

t_kill_caught_up() {
    wait_for 60 has_count p "$PID_K" "$KILL_FLOOD" && conversions p "$PID_K" "$T/kill.p" &&
    "$PY" - "$T/kill.a2" "$T/kill.p" <<'PY' && wait_for 10 same_report "$PID_K"
import json, sys
def convs(path):
    j = json.load(open(path))
    return j["conversions"] if isinstance(j, dict) else j
a, p = convs(sys.argv[1]), convs(sys.argv[2])
assert sorted(c["id"] for c in a) == sorted(c["id"] for c in p), "the publisher's ids differ"
assert all(c["flag"] is None for c in p), [c for c in p if c["flag"]][:3]
PY
}
ok "the publisher catches up: the same conversions, unflagged, the same report digest" t_kill_caught_up

t_stop() {
    node_stop a && node_stop p &&
    ! grep -qF "$TOKEN" "$T/a.log" && ! grep -qF "$TOKEN" "$T/p.log"
}
ok "both nodes stop on SIGTERM with status 0; the postback token is in no log" t_stop

finish
