#!/usr/bin/env bash
# test_crash - crash safety (issue 7): an advertiser and a publisher node share an offer; over and
# over, postbacks flood the advertiser's endpoint and both sides edit the offer while one node,
# chosen at random, is SIGKILLed at a random moment of the load and restarted. After each kill:
# every postback answered 2xx is held exactly once by both nodes (the ones left unanswered are sent
# again and then count once), every edit answered 2xx is in both change logs, the killed node's
# store as the kill left it exports a sound log that its later log extends, both nodes' exports
# pass gkx-audit verify and compare equal, and the offer and report digests match.
#
# 20 kills of 150 postbacks each; GKX_LONG=1: 100 kills. GKX_SEED=N replays the random choices
# (which node, after how many postbacks) of an earlier run, printed as "# seed: N".
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/nodes.sh"

PY=/usr/bin/python3
CRASH="$(dirname "$0")/crash.py"
POSTBACKS="$(dirname "$0")/../integration/postbacks.py"
if [ "${GKX_LONG:-}" = 1 ]; then ITERATIONS=100; else ITERATIONS=20; fi
# Under valgrind (lib.sh: GKX_LOAD_DIVISOR, GKX_TIME_SCALE) fewer kills of a smaller load, with
# longer deadlines.
DIVISOR=${GKX_LOAD_DIVISOR:-1} SCALE=${GKX_TIME_SCALE:-1}
ITERATIONS=${GKX_CRASH_ITERATIONS:-$((ITERATIONS / DIVISOR > 2 ? ITERATIONS / DIVISOR : 2))}
COUNT=${GKX_CRASH_POSTBACKS:-$((150 / DIVISOR > 10 ? 150 / DIVISOR : 10))}   # per iteration
REQUESTS=$((COUNT + (COUNT + 5) / 10))    # and 10% of them retried (postbacks.py rounds)
EDITS=3                                   # edits per side per iteration
SEED=${GKX_SEED:-$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')}
RANDOM=$SEED
START=$(date +%s.%N)

plan $((ITERATIONS + 4))
echo "# seed: $SEED (GKX_SEED=$SEED replays these choices), $ITERATIONS iterations of $COUNT postbacks"

OFFER='{"name": "Crash Course iOS", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD",
        "events": {"purchase": "10.00"}}, "conversion_policy": {"hold_days": 30}}'
PID="" BASE="" TOKEN=""
EXPECTED=0 KILLS_A=0 KILLS_P=0 RESENT=0 LOST=0 DUPLICATED=0 VERIFIED=0 CRASH_VERIFIED=0 DONE=0
: >"$T/acked" && : >"$T/edits.acked"

t_setup() {
    node_init a advertiser && node_init p publisher && node_start a && node_start p &&
    peer a p && peer p a &&
    PID=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id p)\", \"offer\": $OFFER}" |
          "$PY" -c 'import json, sys; print(json.load(sys.stdin)["id"])') &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && wait_for 10 same_digest a p "$PID" &&
    BASE="http://$(awk -F' = ' '/^\[/ {s = ($0 == "[postback]")} s && $1 == "listen" {print $2; exit}' "$T/a/gkx.conf")/postback" &&
    TOKEN=$(cat "$T/a/postback.token") &&
    wait_for 10 curl -s -o /dev/null "$BASE/appsflyer"
}
ok "an advertiser with a postback endpoint and a publisher share an offer" t_setup

# acked_up_to NAME ROLE SEQ: NAME's node says the other chain acknowledges ROLE's chain up to SEQ.
acked_up_to() {
    [ "$(api "$1" GET "/v1/partnerships/$PID" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["heads"][sys.argv[1] + "_acked_seq"])' "$2")" -ge "$3" ]
}

# An ack is written 500 ms after the entries it acknowledges arrive (docs/protocol.md): a node
# killed in between owes it after its restart, or those entries never become final (nothing
# else makes the node write it until the other side writes again). Kill the publisher right
# after it took an edit, and again if it was quicker than the kill.
t_owed_ack() {
    local try before after seq
    for try in 1 2 3 4 5; do
        before=$(heads p "$PID" | cut -d' ' -f2) &&
        edit a "$PID" "terms=acknowledged after a kill, try $try" &&
        seq=$(heads a "$PID" | cut -d' ' -f1) && wait_for 10 same_digest a p "$PID" || return 1
        kill -9 "$(node_pid p)"; wait "$(node_pid p)" 2>/dev/null
        after=$(heads p "$PID" | cut -d' ' -f2)
        [ "$after" = "$before" ] && break
        node_start p || return 1
    done
    [ "$after" = "$before" ] || { echo "# the ack came before the kill each time: nothing to check"; node_start p; return; }
    node_start p && wait_for 10 acked_up_to a advertiser "$seq" ||
        { echo "advertiser seq $seq never acknowledged: $(api a GET "/v1/partnerships/$PID")"; return 1; }
}
ok "a publisher killed before it wrote the ack it owed writes it after its restart" t_owed_ack

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() { "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# iteration I VICTIM AT: the load of iteration I with VICTIM (a or p) SIGKILLed once AT
# postbacks have been answered; its restart, the unanswered postbacks sent again, the checks.
iteration() {
    local i=$1 victim=$2 at=$3 process load_rc
    process=$(node_pid "$victim")
    "$PY" "$CRASH" load --node a="$T/a" --node p="$T/p" --pid "$PID" --count "$COUNT" \
        --seed $((SEED * 1000 + i)) --edits "$EDITS" --kill "$process" --kill-at "$at" \
        --log "$T/pb.$i.log" --out "$T/load.$i.json" --acked "$T/acked" \
        --edits-acked "$T/edits.acked" >"$T/load.$i.out" 2>&1
    load_rc=$?
    wait "$process" 2>/dev/null
    if kill -0 "$process" 2>/dev/null; then echo "gkxd $victim ($process) outlived its SIGKILL"; return 1; fi
    [ "$load_rc" -eq 0 ] || { echo "the load broke the contract:"; cat "$T/load.$i.out" "$T/load.$i.json"; return 1; }
    EXPECTED=$((EXPECTED + COUNT))
    # The store as the kill left it, read offline before the node opens it again.
    run 0 "$T/crash.$i.out" "$GKX" --dir "$T/$victim" log export "$PID" "$T/crash.$i.log" || return 1
    node_start "$victim" || return 1
    if [ "$victim" = a ]; then wait_for 10 curl -s -o /dev/null "$BASE/appsflyer" || return 1; fi
    "$PY" "$POSTBACKS" --url "$BASE" --short "${PID:0:16}" --token="$TOKEN" --resend "$T/pb.$i.log" \
        --resend-acknowledged 10 --concurrency 8 --out "$T/resend.$i.json" >"$T/resend.$i.out" 2>&1 ||
        { echo "sending the unanswered postbacks again:"; cat "$T/resend.$i.out"; return 1; }
    mkdir -p "$T/exports.$i"
    "$PY" "$CRASH" check --node a="$T/a" --node p="$T/p" --pid "$PID" --acked "$T/acked" \
        --resend "$T/resend.$i.json" --edits-acked "$T/edits.acked" --expected "$EXPECTED" \
        --exports "$T/exports.$i" \
        --known "$T/known.json" $([ "$i" -eq "$ITERATIONS" ] && echo --full) \
        --audit "$GKX_AUDIT" --crash-export "$T/crash.$i.log" --victim "$victim" \
        --deadline $((60 * SCALE)) --out "$T/check.$i.json" >"$T/check.$i.out" 2>&1
    local check_rc=$? resent=0 lost=1 duplicated=0 verified=0 crash_verified=0
    read -r resent lost duplicated verified crash_verified < <(json "$T/check.$i.json" \
        '"%d %d %d %d %d" % (j["resent"], j["lost"], j["duplicated"], j["audit_verified"], j["crash_export_verified"])' 2>/dev/null)
    RESENT=$((RESENT + resent)) LOST=$((LOST + lost)) DUPLICATED=$((DUPLICATED + duplicated))
    VERIFIED=$((VERIFIED + verified)) CRASH_VERIFIED=$((CRASH_VERIFIED + crash_verified))
    [ "$check_rc" -eq 0 ] || { cat "$T/check.$i.out"; echo "load: $(json "$T/load.$i.json" 'j["kill"]')"; return 1; }
    # Only what this iteration needs later: the logs of a failed one are in its output.
    rm -rf "$T/exports.$i" "$T/crash.$i.log"
}

failed_at=0
for i in $(seq 1 "$ITERATIONS"); do
    if [ $((RANDOM % 2)) -eq 0 ]; then victim=a; else victim=p; fi
    # One kill in six comes after the last postback's answer (up to 0.8 s later), while the
    # publisher catches up and the acks go out; the others during the flood.
    if [ $((RANDOM % 6)) -eq 0 ]; then at=$((REQUESTS + RANDOM % 40)); else at=$((RANDOM % REQUESTS)); fi
    if [ -z "$PID" ] || [ "$failed_at" -ne 0 ]; then
        _n=$((_n + 1)); echo "ok $_n # SKIP iteration $i: an earlier step failed"; continue
    fi
    [ "$victim" = a ] && KILLS_A=$((KILLS_A + 1)) || KILLS_P=$((KILLS_P + 1))
    if [ "$at" -lt "$REQUESTS" ]; then moment="after $at of $REQUESTS postback requests were answered"
    else moment="$(((at - REQUESTS) * 20)) ms after the last of $REQUESTS postbacks"; fi
    ok "iteration $i: $([ "$victim" = a ] && echo advertiser || echo publisher) SIGKILLed $moment; nothing lost or doubled, exports sound, digests equal" \
        iteration "$i" "$victim" "$at"
    if [ "$_failed" -ne 0 ]; then
        failed_at=$i
        echo "# replay: GKX_SEED=$SEED; advertiser log:"; tail -5 "$T/a.log" | sed 's/^/#   /'
        echo "# publisher log:"; tail -5 "$T/p.log" | sed 's/^/#   /'
    else
        DONE=$((DONE + 1))
    fi
done

t_stop() {
    [ -n "$PID" ] && node_stop a && node_stop p && ! grep -qF "$TOKEN" "$T/a.log" "$T/p.log"
}
ok "both nodes stop on SIGTERM with status 0 after $DONE kills; the postback token is in no log" t_stop

t_figures() {
    local acked edits seconds
    acked=$(sort -u "$T/acked" | wc -l) && edits=$(wc -l <"$T/edits.acked") &&
    seconds=$(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN {print e - s}') &&
    printf '# figures: {"suite": "crash", "iterations": %d, "kills": {"advertiser": %d, "publisher": %d}, "postbacks_acknowledged": %d, "postbacks_resent": %d, "edits_acknowledged": %d, "lost": %d, "duplicated": %d, "audit_verified": %d, "crash_exports_verified": %d, "seed": %d, "seconds": %.1f}\n' \
        "$DONE" "$KILLS_A" "$KILLS_P" "$acked" "$RESENT" "$edits" "$LOST" "$DUPLICATED" \
        "$VERIFIED" "$CRASH_VERIFIED" "$SEED" "$seconds" >"$T/figures" &&
    cat "$T/figures" >&3 &&
    [ "$DONE" -eq "$ITERATIONS" ] && [ "$LOST" -eq 0 ] && [ "$DUPLICATED" -eq 0 ] &&
    [ "$VERIFIED" -eq $((2 * ITERATIONS)) ]
}
exec 3>&1
ok "figures: every iteration passed, nothing lost or duplicated, 2 sound exports per iteration" t_figures

finish
