#!/usr/bin/env bash
# test_hostile_http - hostile HTTP clients against a real advertiser node's tenant API and
# postback endpoint: no token or a wrong one, bodies over the limit, huge targets and headers,
# ambiguous framing, unknown methods, invalid UTF-8, NUL bytes, duplicated parameters, path
# traversal and the export route, and slow clients (slowloris and friends) while normal
# requests are timed. Every refusal is the right 4xx with a message naming the problem, changes
# nothing, and the node stays up (issue 7, "Hostile peers"; notes/contract-7.md part E).
# hostile_http.py writes the requests byte by byte on raw sockets.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 14

PY=/usr/bin/python3
HOSTILE="$(dirname "$0")/hostile_http.py"
# Under valgrind (lib.sh) times stretch and loads shrink; hostile_http.py reads both.
export GKX_TIME_SCALE="${GKX_TIME_SCALE:-1}" GKX_LOAD_DIVISOR="${GKX_LOAD_DIVISOR:-1}"
STATS="$T/statuses"
OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"}}'
# Set by the cases, read by later ones.
PID="" BASE="" SHORT="" TOKEN="" BASELINE="" SLOW=""

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# conf NAME SECTION KEY: a key of NAME's gkx.conf.
conf() {
    awk -F' = ' -v s="[$2]" -v k="$3" '/^\[/ {in_s = ($0 == s)} in_s && $1 == k {print $2; exit}' "$T/$1/gkx.conf"
}

# postback QUERY: one GET of the appsflyer template; prints the status, the body to $T/pb.out.
postback() { curl -sS -o "$T/pb.out" -w '%{http_code}' "$BASE/appsflyer?p=$SHORT&t=$TOKEN&$1"; }

# conversions NAME: how many conversions NAME lists for the partnership.
conversions() {
    api "$1" GET "/v1/partnerships/$PID/conversions?limit=100000" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}

# has_conversions NAME N: NAME lists N conversions of the partnership.
has_conversions() { [ "$(conversions "$1")" = "$2" ]; }

# fingerprint: what a refused request must not change: both nodes' offer digests and
# conversion counts, the advertiser's secrets and config, and the files beside the test's.
fingerprint() {
    echo "$(digest a "$PID") $(digest p "$PID") $(conversions a) $(conversions p)" &&
    (cd "$T/a" && sha256sum gkx.conf api.token postback.token) &&
    ls "$T" | grep -v -e '^statuses$' -e '\.out$' -e '^got.log$' -e '^\.'
}

# unchanged: the fingerprint is the one taken after the setup.
unchanged() {
    local now; now=$(fingerprint)
    [ "$now" = "$BASELINE" ] || { echo "changed:"; diff <(echo "$BASELINE") <(echo "$now"); return 1; }
}

# alive: both gkxd processes run, the API answers its status and the postback endpoint
# answers a repeated postback (through the node's loop and store).
alive() {
    kill -0 "$(node_pid a)" && kill -0 "$(node_pid p)" &&
    api a GET /v1/status | grep -q '"role":"advertiser"' &&
    [ "$(postback "clickid=clk-setup&appsflyer_id=af-setup&event_name=install")" = 200 ] &&
    grep -q '"duplicate":true' "$T/pb.out"
}

# hostile GROUP: one group of hostile requests, each answered as expected; then nothing has
# changed and the node is up.
hostile() { "$PY" "$HOSTILE" cases "$1" "$T/ctx.json" && unchanged && alive; }

t_setup() {
    node_init a advertiser && node_init p publisher && node_start a && node_start p &&
    peer a p && peer p a && echo "$OFFER" >"$T/offer.json" &&
    PID=$("$GKX" --dir "$T/a" share --publisher "$(card_id p)" --offer "$T/offer.json") &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 same_digest a p "$PID" &&
    "$GKX" --dir "$T/a" postback-url "$PID" --mmp appsflyer --json >"$T/url.json" &&
    read -r BASE SHORT TOKEN <<<"$("$PY" - "$T/url.json" <<'PY'
import json, sys, urllib.parse
j = json.load(open(sys.argv[1]))
parts = urllib.parse.urlsplit(j["url"])
query = dict(urllib.parse.parse_qsl(parts.query))
print("%s://%s%s" % (parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0]), query["p"], query["t"])
PY
)" && [ -n "$TOKEN" ] &&
    [ "$(postback "clickid=clk-setup&appsflyer_id=af-setup&event_name=install")" = 200 ] &&
    wait_for 10 has_conversions p 1 &&
    "$PY" - "$T/ctx.json" "$(conf a api listen)" "$(head -1 "$T/a/api.token")" \
        "$(conf a postback listen)" "$TOKEN" "$SHORT" "$PID" "$T/a" "$T" "$STATS" <<'PY' &&
import json, sys
keys = ["api", "api_token", "pb", "pb_token", "short", "pid", "dir", "tmp", "stats"]
json.dump(dict(zip(keys, sys.argv[2:])), open(sys.argv[1], "w"))
PY
    : >"$STATS" && BASELINE=$(fingerprint) && alive
}
ok "an advertiser with a postback endpoint and a publisher share an offer; one postback" t_setup

ok "no token, a wrong one, one in the wrong place: 401 on the API and the postback endpoint" \
    hostile auth

t_timing() {
    "$PY" "$HOSTILE" timing "$T/ctx.json" >"$T/timing.out" && cat "$T/timing.out" && alive
}
ok "a token wrong at its first byte and at its last: 401 in the same time (hashes compared in constant time)" t_timing

ok "bodies over the limit: 413 naming it, announced or chunked; lying Content-Lengths; nothing written" \
    hostile size
ok "targets and headers too large (414, 431), two of a header, CL with TE, bad Content-Type (415)" \
    hostile headers
ok "unknown methods: 405 with Allow; CONNECT, absolute-form and * targets: 404" hostile methods
ok "invalid UTF-8 in JSON bodies, path segments, query names and values: 400 naming it" hostile utf8
ok "NUL bytes (%00, raw in JSON, \\u0000): 400; a raw NUL cuts the request line (404)" hostile nul
ok "duplicated parameters, even encoded differently, and too many: 400 naming them" hostile params
ok "path traversal: .., %2e%2e, encoded slashes and backslashes, on both endpoints: 400" \
    hostile traversal

t_export() {
    "$PY" "$HOSTILE" cases export "$T/ctx.json" &&
    run 0 "$T/v1.out" "$GKX_AUDIT" verify "$T/a/exports/ok.log" && contains "$T/v1.out" "verdict:      sound" &&
    run 0 "$T/v2.out" "$GKX_AUDIT" verify "$T/got.log" && contains "$T/v2.out" "verdict:      sound" &&
    [ -z "$(ls -A "$T/outside")" ] && [ "$(cat "$T/victim")" = precious ] &&
    mkdir -p "$T/cli" && run 0 "$T/x.out" "$GKX" --dir "$T/a" export "$PID" "$T/cli/adv.log" &&
    run 0 "$T/v3.out" "$GKX_AUDIT" verify "$T/cli/adv.log" && contains "$T/v3.out" "verdict:      sound" &&
    rm -rf "$T/cli" "$T/outside" "$T/victim" && unchanged && alive
}
ok "export: the node writes only under DIR/exports (403 elsewhere, nothing written); GET answers the export" t_export

t_slow() {
    local rounds=1 i
    [ "${GKX_LONG:-}" = 1 ] && rounds=3
    for i in $(seq "$rounds"); do
        "$PY" "$HOSTILE" slow "$T/ctx.json" >"$T/slow.out" || { cat "$T/slow.out"; return 1; }
        cat "$T/slow.out"
        SLOW=$(head -1 "$T/slow.out")
    done
    unchanged && alive
}
ok "slow clients (slowloris, slow line and body, lying length, non-readers, one address's flood): cut in time; others answered promptly" t_slow

t_after() {
    alive && edit a "$PID" payout.amount=3.00 && wait_for 10 same_digest a p "$PID" &&
    [ "$(postback "clickid=clk-after&appsflyer_id=af-after&event_name=install")" = 200 ] &&
    grep -q '"duplicate":false' "$T/pb.out" && wait_for 10 has_conversions p 2
}
ok "after it all: both nodes run, an edit replicates, a new postback is written and replicated" t_after

# A node that died, did not stop cleanly or whose sanitizers spoke counts as a crash.
crashes=0
t_stop() {
    local n
    for n in a p; do
        if ! { [ -s "$T/$n.pid" ] && kill -0 "$(node_pid "$n")" && node_stop "$n"; }; then
            crashes=$((crashes + 1))
        fi
    done
    if grep -E 'AddressSanitizer|runtime error|LeakSanitizer' "$T/a.log" "$T/p.log"; then
        crashes=$((crashes + 1))
    fi
    [ "$crashes" -eq 0 ]
}
ok "both nodes stop cleanly on SIGTERM, with nothing from the sanitizers in their logs" t_stop

echo "# slow clients: $SLOW"
# The suite's figures (docs/security.md): every request's status (closed: cut off without an
# answer), the slow connections held at once and the normal requests' p99 meanwhile.
"$PY" - "$STATS" "$SLOW" "$crashes" <<'PY'
import collections, json, sys
statuses = [line.strip() for line in open(sys.argv[1]) if line.strip()]
slow = json.loads(sys.argv[2]) if sys.argv[2] else {}
by_status = collections.Counter("closed" if s == "0" else s for s in statuses)
print("# figures: " + json.dumps({
    "suite": "hostile_http", "requests": len(statuses),
    "by_status": dict(sorted(by_status.items(), key=lambda kv: kv[0])),
    "normal_requests_timed": slow.get("probes", 0),
    "slow_connections": slow.get("slow_connections", 0),
    "p99_ms_during_slowloris": slow.get("p99_ms", None),
    "crashes": int(sys.argv[3])}))
PY
finish
