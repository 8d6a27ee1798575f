#!/usr/bin/env bash
# test_partition - two real gkxd nodes whose replication links run through a TCP proxy the test
# owns (link_proxy.py): the link is cut (reset both ways, blackholed, reset one way), one node is
# frozen with SIGSTOP, and the link turns bad (random delays, connections dropped at random),
# while both sides edit the offer and the advertiser takes postbacks. After each fault both nodes must reach the same
# offer digest, change log and report digest within CONVERGE_LIMIT seconds, and every edit and
# every conversion the nodes acknowledged must be on both, once (issue 7, "Partitions and slow
# links"). GKX_LONG=1 runs more and longer rounds.
# Part of gokart-exchange; MIT licence.
HERE=$(dirname "$0")
. "$HERE/../integration/lib.sh"
. "$HERE/../integration/nodes.sh"

plan 9
exec 3>&1  # converge's timings reach the TAP output from inside ok's redirection

# Under valgrind (tests/integration/lib.sh) waits are GKX_TIME_SCALE times longer and loads
# GKX_LOAD_DIVISOR times smaller; the defaults keep this test whole without that support.
: "${GKX_TIME_SCALE:=1}" "${GKX_LOAD_DIVISOR:=1}"
type scaled >/dev/null 2>&1 || scaled() { local n=$(($1 / GKX_LOAD_DIVISOR)); echo $((n > 0 ? n : 1)); }
PY=/usr/bin/python3
PROXY="$HERE/link_proxy.py"
POSTBACKS="$HERE/../integration/postbacks.py"
# Rounds and lengths (seconds). A blackhole lasts longer than ZeroMQ's heartbeat timeout (5 s),
# so the nodes must find the dead connections themselves; a SIGSTOP too.
if [ "${GKX_LONG:-}" = 1 ]; then
    CUT_ROUNDS=6 CUT_SECONDS=6 BLACKHOLE_SECONDS=12 STOP_ROUNDS=4 STOP_SECONDS=8
    BAD_SECONDS=60
else
    CUT_ROUNDS=3 CUT_SECONDS=3 BLACKHOLE_SECONDS=8 STOP_ROUNDS=2 STOP_SECONDS=6
    BAD_SECONDS=12
fi
# Postbacks while a fault lasts: batches of 100, a pause of 0.1 s between them.
POSTBACKS_BATCH=$(scaled 100) POSTBACKS_PAUSE=0.1
# The bad link: each chunk delayed 0 to 200 ms, each connection dropped after a random life of
# 1.5 s on average.
BAD_DELAY_MS=200 BAD_DROP_MEAN=1.5
# Convergence after a fault must take less than this: measured, a few seconds (a dead
# connection is given up after 5 s, heartbeat or handshake timeout); generous for the sanitizer
# build, yet below ZeroMQ's default handshake timeout of 30 s, which a connection opened into
# the blackhole would otherwise hold after the link is back.
CONVERGE_LIMIT=20

OFFER='{"name": "Puzzle Quest iOS US",
  "payout": {"model": "cpi", "amount": "2.50", "currency": "USD", "events": {"purchase": "10.00"}},
  "conversion_policy": {"hold_days": 30}}'
PID="" BASE="" SHORT="" TOKEN=""
PARTITIONS=0 EDIT_SEQ=0 SEED=100
: >"$T/converge.list"

# listen_port NAME: the port of NAME's [node] listen.
listen_port() { awk -F' = ' '/^\[/ {s = ($0 == "[node]")} s && $1 == "listen" {print $2; exit}' "$T/$1/gkx.conf" | sed 's/.*://'; }

# ctl COMMAND...: one proxy command; its JSON answer goes to $T/ctl.json.
ctl() { "$PY" "$PROXY" ctl "$T/proxy.port" "$@" >"$T/ctl.json"; }

# pstat EXPR: evaluates a Python expression over the proxy's stats (as j).
pstat() { ctl stats && "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/ctl.json" "$1"; }

# edit_one NAME: one offer edit through NAME's API; each edit writes values no edit wrote
# before (so none is a no-op) and both sides write both fields (so concurrent edits conflict).
# The acknowledged entry's hash goes to $T/acked.edits, a refusal to $T/edit.errors.
edit_one() {
    EDIT_SEQ=$((EDIT_SEQ + 1))
    local n=$EDIT_SEQ op
    if [ $((n % 2)) -eq 0 ]; then op="payout.amount=$n.$([ "$1" = a ] && echo 10 || echo 20)"
    else op="caps.daily=$((100000 + n))"; fi
    api "$1" PATCH "/v1/partnerships/$PID/offer" "{\"edits\": [\"$op\"]}" >"$T/edit.$1.json" 2>&1
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["entry"]["hash"])' "$T/edit.$1.json" \
        >>"$T/acked.edits" 2>/dev/null || { echo "$1 $op: $(cat "$T/edit.$1.json")" >>"$T/edit.errors"; }
}

# edit_for SECONDS NAME...: edits through each NAME in turn until SECONDS have passed.
edit_for() {
    local until=$(($(date +%s%N) / 1000000 + $1 * 1000)) name; shift
    while [ $(($(date +%s%N) / 1000000)) -lt "$until" ]; do
        for name in "$@"; do edit_one "$name"; done
        sleep 0.05
    done
}

# postbacks SEED COUNT WHEN: one postback run against the advertiser (10% retried, 2% invalid);
# its summary goes to $T/pb.WHEN.SEED.json; fails unless every check of postbacks.py held.
postbacks() {
    "$PY" "$POSTBACKS" --url "$BASE" --short "$SHORT" --token="$TOKEN" --count "$2" \
        --retries 0.10 --invalid 0.02 --concurrency 4 --seed "$1" --out "$T/pb.$3.$1.json" \
        >"$T/pb.$3.$1.out" 2>&1 || { cat "$T/pb.$3.$1.out"; return 1; }
}

# postbacks_start SECONDS: runs of POSTBACKS_BATCH postbacks in the background, one after the
# other with a pause, until SECONDS have passed. Sets PB_PID.
postbacks_start() {
    SEED=$((SEED + 1))
    (
        until=$(($(date +%s%N) / 1000000 + $1 * 1000)) i=0
        while [ $(($(date +%s%N) / 1000000)) -lt "$until" ]; do
            i=$((i + 1))
            postbacks $((SEED * 1000 + i)) "$POSTBACKS_BATCH" during || exit 1
            sleep "$POSTBACKS_PAUSE"
        done
    ) >"$T/pb.run.$SEED.out" 2>&1 &
    PB_PID=$!
    _pids+=("$PB_PID")
}

# postbacks_wait: waits for the runs; fails unless each passed.
postbacks_wait() { wait "$PB_PID" || { cat "$T/pb.run.$SEED.out"; return 1; }; }

# same PATH: both nodes answer GET PATH with the same bytes, an object that is not an error.
same() {
    local x y
    x=$(api a GET "$1") && y=$(api p GET "$1") && [ "$x" = "$y" ] && [[ "$x" == "{"* ]] && [[ "$x" != *'"error"'* ]]
}

# converged: the same offer digest, change log and report (with its digest) on both nodes.
converged() {
    same "/v1/partnerships/$PID/offer?digest=1" && same "/v1/partnerships/$PID/changes" &&
    same "/v1/report?partnership=$PID"
}

# converge WHAT: waits until converged, at most CONVERGE_LIMIT seconds (times GKX_TIME_SCALE);
# records the time.
converge() {
    local start end
    start=$(date +%s%N)
    wait_for "$CONVERGE_LIMIT" converged || { echo "$1: not converged in time"; diff_state; return 1; }
    end=$(date +%s%N)
    "$PY" -c 'import sys; print("%.2f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9))' "$start" "$end" >>"$T/converge.list"
    echo "# $1: converged in $(tail -1 "$T/converge.list") s" >&3
}

# diff_state: what differs, for a failure's diagnostics.
diff_state() {
    echo "digests: $(digest a "$PID") $(digest p "$PID")"
    echo "heads a: $(heads a "$PID"); heads p: $(heads p "$PID")"
    pstat 'j["links"]'
    tail -3 "$T/a.log" "$T/p.log"
}

# partitioned: both sides hold changes the other lacks (the link really was down).
partitioned() { ! same_digest a p "$PID"; }

t_setup() {
    node_init a advertiser && node_init p publisher || return 1
    PORT_A=$(free_port) PORT_P=$(free_port)
    # Each node's card names its proxy port: the other node's DEALER connects through the proxy.
    sed -i "s|^# advertise = .*|advertise = tcp://127.0.0.1:$PORT_A|" "$T/a/gkx.conf" &&
    sed -i "s|^# advertise = .*|advertise = tcp://127.0.0.1:$PORT_P|" "$T/p/gkx.conf" &&
    "$GKX" --dir "$T/a" card --json >"$T/a.card" && "$GKX" --dir "$T/p" card --json >"$T/p.card" &&
    spawn "$PY" "$PROXY" serve --link "a=$PORT_A:127.0.0.1:$(listen_port a)" \
        --link "p=$PORT_P:127.0.0.1:$(listen_port p)" --control-file "$T/proxy.port" --seed 7 \
        2>"$T/proxy.log" && PROXY_PID=${_pids[-1]} &&
    wait_for 10 test -s "$T/proxy.port" &&
    node_start a && node_start p && peer a p && peer p a &&
    echo "$OFFER" >"$T/offer.json" &&
    PID=$("$GKX" --dir "$T/a" share --publisher "$(card_id p)" --offer "$T/offer.json") &&
    wait_for 10 same_digest a p "$PID" &&
    "$GKX" --dir "$T/a" postback-url "$PID" --mmp appsflyer --json >"$T/url.json" &&
    read -r BASE TOKEN <<<"$("$PY" -c '
import json, sys, urllib.parse
j = json.load(open(sys.argv[1]))
u = urllib.parse.urlsplit(j["url"] if isinstance(j, dict) else j)
print("%s://%s%s" % (u.scheme, u.netloc, u.path.rsplit("/", 1)[0]), dict(urllib.parse.parse_qsl(u.query))["t"])
' "$T/url.json")" && SHORT=${PID:0:16} && [ -n "$TOKEN" ]
}
ok "two nodes whose cards advertise the proxy's ports share an offer through it" t_setup

json_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

t_through_proxy() {
    [ "$(json_field "$T/a.card" endpoint)" = "tcp://127.0.0.1:$PORT_A" ] &&
    [ "$(json_field "$T/p.card" endpoint)" = "tcp://127.0.0.1:$PORT_P" ] &&
    [ "$(pstat 'j["links"]["a"]["accepted"] >= 1 and j["links"]["p"]["accepted"] >= 1 and j["links"]["a"]["bytes"] > 0 and j["links"]["p"]["bytes"] > 0')" = True ] &&
    postbacks 1 50 before && wait_for 10 converged
}
ok "the cards name the proxy's ports, both links carry the replication, postbacks reach both" t_through_proxy

# sinks_gone: how many connections the proxy sank have since been closed by the nodes.
sinks_gone() { pstat 'j["total"]["sunk"] - sum(l["sinks"] for l in j["links"].values())'; }

# One partition: the link goes down with MODE for SECONDS while both sides edit and the
# advertiser takes postbacks; then it comes back and both converge.
partition_round() {
    local mode=$1 seconds=$2 gone
    gone=$(sinks_gone) && ctl $mode || return 1
    PARTITIONS=$((PARTITIONS + 1))
    postbacks_start "$seconds"
    edit_for "$seconds" a p
    postbacks_wait || return 1
    partitioned || { echo "$mode: the nodes agreed while the link was down"; return 1; }
    if [ "$mode" = blackhole ]; then
        # The proxy never closes a sunk connection: the nodes must, their heartbeats having
        # noticed the silence (or their handshake timeout, for a connection opened since).
        wait_for 10 eval '[ "$(sinks_gone)" -gt "$gone" ]' ||
            { echo "no node closed a blackholed connection"; pstat 'j["links"]'; return 1; }
    fi
    ctl restore && converge "$mode round $PARTITIONS"
}

# Rounds in turn: both directions reset, both blackholed, one direction reset (the other
# still carries heads and acknowledgements), each direction in turn.
t_cut() {
    local r
    for r in $(seq 1 "$CUT_ROUNDS"); do
        case $((r % 3)) in
            1) partition_round "cut" "$CUT_SECONDS" ;;
            2) partition_round "blackhole" "$BLACKHOLE_SECONDS" ;;
            0) partition_round "cut $([ $((r % 2)) -eq 0 ] && echo a || echo p)" "$CUT_SECONDS" ;;
        esac || return 1
    done
}
ok "the link cut (reset both ways, blackholed, reset one way) while both sides edit and postbacks arrive: both converge within ${CONVERGE_LIMIT} s" t_cut

# One SIGSTOP round: NAME is frozen for STOP_SECONDS while the other node edits (and takes
# postbacks when it is the advertiser); then it is continued and both converge.
stop_round() {
    local name=$1 other=$2 pid
    pid=$(node_pid "$name")
    kill -STOP "$pid" || return 1
    PARTITIONS=$((PARTITIONS + 1))
    [ "$other" = a ] && postbacks_start "$STOP_SECONDS"
    edit_for "$STOP_SECONDS" "$other"
    [ "$other" = a ] && { postbacks_wait || { kill -CONT "$pid"; return 1; }; }
    kill -CONT "$pid" && converge "SIGSTOP of $name, round $PARTITIONS"
}

t_stop() {
    local r
    for r in $(seq 1 "$STOP_ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then stop_round p a || return 1
        else stop_round a p || return 1; fi
    done
}
ok "one node frozen with SIGSTOP while the other edits and takes postbacks, then SIGCONT: both converge within ${CONVERGE_LIMIT} s" t_stop

# report_count NAME: the number of conversions in NAME's report of the partnership.
report_count() {
    "$GKX" --dir "$T/$1" report --partnership "$PID" --json 2>/dev/null |
        "$PY" -c 'import json, sys; print(sum(t["count"] for t in json.load(sys.stdin)["totals"]))'
}

t_bad_link() {
    local before after held_before held_after start
    before=$(pstat 'j["total"]["dropped"]') && held_before=$(report_count p) &&
    ctl bad "$BAD_DELAY_MS" "$BAD_DROP_MEAN" || return 1
    start=$(date +%s)
    postbacks_start "$BAD_SECONDS"
    edit_for "$BAD_SECONDS" a p
    postbacks_wait || return 1
    BAD_LINK_SECONDS=$(($(date +%s) - start))
    after=$(pstat 'j["total"]["dropped"]') && DROPPED=$((after - before)) &&
    held_after=$(report_count p) &&
    echo "# bad link: $DROPPED connections dropped; the publisher took $((held_after - held_before)) of $(($(report_count a) - held_before)) new conversions before it turned good" >&3 &&
    ctl restore && converge "bad link" &&
    [ "$DROPPED" -gt 0 ] && [ "$held_after" -gt "$held_before" ] ||
        { echo "the bad link dropped no connection ($DROPPED) or carried nothing ($held_before, $held_after)"; return 1; }
}
ok "a bad link (0-${BAD_DELAY_MS} ms delays, connections dropped at random) under load, then good: both converge" t_bad_link

# conversions NAME FILE: every conversion of the partnership as NAME lists it.
conversions() { "$GKX" --dir "$T/$1" conversions "$PID" --limit 100000 --json >"$2"; }

t_nothing_lost() {
    wait_for 10 converged && conversions a "$T/conv.a" && conversions p "$T/conv.p" &&
    [ "$("$GKX" --dir "$T/a" report --partnership "$PID" --digest)" = \
      "$("$GKX" --dir "$T/p" report --partnership "$PID" --digest)" ] &&
    api a GET "/v1/partnerships/$PID/changes" >"$T/changes.a" &&
    api p GET "/v1/partnerships/$PID/changes" >"$T/changes.p" || return 1
    [ ! -s "$T/edit.errors" ] || { echo "edits refused:"; head "$T/edit.errors"; return 1; }
    "$PY" - "$T" >"$T/lost.out" <<'PY' || { cat "$T/lost.out"; return 1; }
import collections, glob, json, sys
t = sys.argv[1]
def convs(path):
    j = json.load(open(path))
    return j["conversions"] if isinstance(j, dict) else j
answered, during = set(), set()
for path in glob.glob(t + "/pb.*.json"):
    answered |= set(json.load(open(path))["conversion_ids"])
    if "/pb.during." in path:
        during |= set(json.load(open(path))["conversion_ids"])
edits = set(open(t + "/acked.edits").read().split())
lost = 0
for side in ("a", "p"):
    cs = convs("%s/conv.%s" % (t, side))
    ids = collections.Counter(c["id"] for c in cs)
    clicks = collections.Counter(c["click_id"] for c in cs)
    assert max(ids.values()) == 1 and max(clicks.values()) == 1, (side, "a conversion twice")
    missing = answered - set(ids)
    assert set(ids) == answered, (side, len(missing), "answered but missing;",
                                  len(set(ids) - answered), "never answered")
    held = collections.Counter(ch["entry"]["hash"] for ch in json.load(open("%s/changes.%s" % (t, side)))["changes"])
    missing_edits = [h for h in edits if held[h] != 1]
    assert not missing_edits, (side, len(missing_edits), "acknowledged edits not held once", missing_edits[:3])
    lost += len(missing) + len(missing_edits)
print(len(during), len(edits), lost)
PY
    read -r CONVERSIONS EDITS LOST <"$T/lost.out"
}
ok "every acknowledged edit and every conversion answered 2xx is held once by both nodes" t_nothing_lost

t_exports() {
    "$GKX" --dir "$T/a" log export "$PID" "$T/a.export" >/dev/null &&
    "$GKX" --dir "$T/p" log export "$PID" "$T/p.export" >/dev/null &&
    "$GKX_AUDIT" verify "$T/a.export" >"$T/va.out" && "$GKX_AUDIT" verify "$T/p.export" >"$T/vp.out" &&
    "$GKX_AUDIT" compare "$T/a.export" "$T/p.export" >"$T/cmp.out" ||
        { cat "$T/va.out" "$T/vp.out" "$T/cmp.out" 2>/dev/null; return 1; }
}
ok "both exports pass gkx-audit verify and compare" t_exports

t_bound() {
    MAX=$(sort -g "$T/converge.list" | tail -1)
    [ -n "$MAX" ] && "$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' \
        "$MAX" $((CONVERGE_LIMIT * GKX_TIME_SCALE))
}
ok "the slowest convergence took less than ${CONVERGE_LIMIT} s" t_bound

# Faults on the link may only delay entries: a refusal that is not a gap (a bad signature,
# an equivocation, an entry not stored) would mean the link damaged something.
t_stop_all() {
    node_stop a && node_stop p && ctl quit && wait_for 10 eval '! kill -0 "$PROXY_PID"' &&
    ! grep -E "entry refused|not stored|equivocat|frozen|error:" "$T/a.log" "$T/p.log"
}
ok "both nodes stop on SIGTERM with status 0, the proxy on quit; neither node logged a refused entry or an error" t_stop_all

echo "# figures: {\"suite\": \"partition\", \"partitions\": $PARTITIONS, \"edits_during\": ${EDITS:-0}, \"conversions_during\": ${CONVERSIONS:-0}, \"converge_seconds_max\": ${MAX:-null}, \"bad_link_seconds\": ${BAD_LINK_SECONDS:-0}, \"connections_dropped\": ${DROPPED:-0}, \"lost\": ${LOST:-null}}"
finish
