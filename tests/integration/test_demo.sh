#!/usr/bin/env bash
# test_demo - scripts/demo, the newcomer's story (issue 9), run against this build
# (GKX_DEMO_BUILDDIR: no apt-get, no configure): it exits 0 and prints each step's evidence;
# --keep leaves a directory whose nodes start again as it says; a step whose check fails (an
# auditor that refuses every export) exits 1 naming the step; Ctrl-C stops it. Whatever the end,
# no process of the demo is left running and, without --keep, its directory is gone.
# Under valgrind (GKX_VALGRIND) the first run's gkxd, gkx and gkx-audit run under memcheck.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

SRC=${GKX_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DEMO="$SRC/scripts/demo"
PY=/usr/bin/python3
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "1..0 # SKIP python3-aiosmtpd is not installed (scripts/deps installs it)"
    exit 0
fi

plan 9

# demo RUN [ARGS...]: runs the demo against this build with its temporary directory under
# $T/RUN (so the test can see what it leaves), output in $T/RUN.out; returns its exit status.
# The programs are lib.sh's (under valgrind, wrappers that run them under memcheck); with
# NATIVE=1 the build's own, and DEMO_AUDIT replaces gkx-audit.
demo() {
    local run=$1 gkx=$GKX gkxd=$GKXD audit=$GKX_AUDIT; shift
    [ "${NATIVE:-0}" = 1 ] && gkx=$GKX_BUILDDIR/gkx gkxd=$GKX_BUILDDIR/gkxd audit=$GKX_BUILDDIR/gkx-audit
    mkdir -p "$T/$run"
    TMPDIR="$T/$run" GKX_DEMO_BUILDDIR="$GKX_BUILDDIR" GKX_DEMO_GKX="$gkx" GKX_DEMO_GKXD="$gkxd" \
        GKX_DEMO_AUDIT="${DEMO_AUDIT:-$audit}" GKX_TIME_SCALE="$GKX_TIME_SCALE" \
        "$DEMO" "$@" >"$T/$run.out" 2>&1
}

# nothing_left RUN: no process runs from RUN's directory (nodes, the SMTP sink).
nothing_left() {
    if pgrep -f "$T/$1/" >"$T/left.out"; then
        echo "still running:"; ps -o pid,args -p "$(paste -sd, "$T/left.out")"; return 1
    fi
}

# line OUT REGEX: OUT holds a line matching the extended REGEX (else shows OUT's last lines).
line() { grep -qE -- "$2" "$T/$1.out" || { echo "no line matching '$2'; $1.out ends:"; tail -16 "$T/$1.out"; return 1; }; }

t_run() {
    demo story --keep || { echo "demo exited $?:"; cat "$T/story.out"; return 1; }
    line story '^demo: all checks passed in [0-9]+ s$' && ! grep -q FAILED "$T/story.out"
}
ok "scripts/demo --keep against this build (no apt-get, no configure) exits 0: all checks passed" t_run

t_steps_1_3() {
    line story '^== 0\. Four nodes and a mail server start on 127\.0\.0\.1$' &&
    line story '^== 1\. The publishers publish their cards; Acme lists the publishers and picks both$' &&
    line story '^   PUBLISHER +NAME +VERTICALS' && line story ' Pixel Media +Games +US, CA ' &&
    line story ' Orbit Ads +Games, Utilities +US ' &&
    line story '^   acme\$ gkx share --publisher [0-9a-f]{12} --offer examples/offer.json$' &&
    line story "^   Pixel's node \(gkx partnerships\) +\|  Orbit's node \(gkx partnerships\)$" &&
    line story '^   [0-9a-f]{12}  Acme Games  active  Puzzle Quest iOS US  \|  [0-9a-f]{12}  Acme Games  active  Puzzle Quest iOS US$'
}
ok "steps 0-3: the nodes, the directory's list, two shares, each offer on its own publisher" t_steps_1_3

t_step_4() {
    line story "^   change log on Acme's node +\|  change log on Pixel's node$" &&
    line story '^   [0-9:.]{12}  Acme   final    payout\.amount: 2\.50 -> 3\.10  \|  [0-9:.]{12}  Acme   final    payout\.amount: 2\.50 -> 3\.10$' &&
    line story '^   [0-9:.]{12}  Pixel  final    status: active -> paused +\|  [0-9:.]{12}  Pixel  final    status: active -> paused$' &&
    line story '^   To:      ads@acme\.test$' &&
    line story '^   Subject: \[gkx\] Puzzle Quest iOS US \([0-9a-f]{16}\): 1 change by Pixel Media$' &&
    line story '^     \* status: active -> paused$' &&
    line story '^   To:      ops@pixel\.test$' && line story '^     \* payout\.amount: 2\.50 -> 3\.10$'
}
ok "step 4: a pause and a payout raise at once: both change logs side by side, final; each side's e-mail" \
    t_step_4

t_step_5() {
    local a b
    line story '^   pixel\$ gkx resume [0-9a-f]{12} -> resumed$' &&
    line story '^   http://127\.0\.0\.1:[0-9]+/postback/appsflyer\?p=[0-9a-f]{16}&t=<token>&clickid=\{clickid\}$' &&
    line story '^   answered: \{"sent": 200, "conversions": 200, "statuses": \{"approved": 200\}, "failures": \[\]\}$' &&
    line story '^   \(total\)   USD       200    896\.00      \|  \(total\)   USD       200    896\.00$' &&
    a=$(sed -n "s/^   report digest on Acme's node:  //p" "$T/story.out") &&
    b=$(sed -n "s/^   report digest on Pixel's node: //p" "$T/story.out") &&
    [[ "$a" =~ ^[0-9a-f]{64}$ ]] && [ "$a" = "$b" ] &&
    line story '^   orbit\$ gkx report --partnership [0-9a-f]{12} -> 0 conversions$' &&
    line story '^   orbit\$ gkx conversions [0-9a-f]{12} -> 0 conversions$'
}
ok "step 5: 200 AppsFlyer postbacks, the same report and digest on both sides, none at the other publisher" \
    t_step_5

t_step_6() {
    # The advertiser's chain: the genesis, the new payout, 200 conversions, and acknowledgements.
    line story '^   auditor\$ gkx-audit verify acme\.gkxlog -> sound \(advertiser chain 2[0-9]{2} entries, publisher chain [0-9]+ entries\)$' &&
    line story '^   auditor\$ gkx-audit verify pixel\.gkxlog -> sound \(advertiser chain 2[0-9]{2} entries, publisher chain [0-9]+ entries\)$' &&
    line story '^   verdict: +the exports agree$' &&
    line story '^      defect: entry 0 \(byte [0-9]+, advertiser seq 1\): GKX_ESIGNATURE' &&
    line story '^      verdict: +NOT SOUND'
}
ok "step 6: both exports sound, compared equal; the rewritten entry named" t_step_6

# Set by t_kept: the kept directory.
KEPT=""

t_kept() {
    local dirs=("$T"/story/gkx-demo-*) pid
    [ ${#dirs[@]} -eq 1 ] && [ -d "${dirs[0]}/acme" ] && KEPT=${dirs[0]} &&
    line story "^   kept $KEPT \(the nodes are stopped\)\. To explore it:$" &&
    line story '^     for n in directory acme pixel orbit; do gkxd --dir \$n 2>>\$n\.log & done$' &&
    nothing_left story &&
    pid=$(sed -n 's/^     gkx --dir pixel changes \([0-9a-f]\{12\}\);.*/\1/p' "$T/story.out") && [ -n "$pid" ] &&
    kept_node || return 1
    # As the printed commands do: the node starts again in the kept directory and shows the story.
    run 0 "$T/kept.out" "$GKX" --dir "$KEPT/pixel" report --partnership "$pid" --digest &&
    contains "$T/story.out" "report digest on Pixel's node: $(cat "$T/kept.out")" &&
    kill -TERM "$(cat "$T/kept.pid")" && wait "$(cat "$T/kept.pid")"
}

# kept_node: starts gkxd in the kept pixel directory; waits until it answers.
kept_node() {
    "$GKXD" --dir "$KEPT/pixel" 2>>"$T/kept.log" &
    _pids+=($!)
    echo $! >"$T/kept.pid"
    wait_for 15 "$GKX" --dir "$KEPT/pixel" status || { echo "the kept node did not start:"; cat "$T/kept.log"; return 1; }
}
ok "--keep: the directory stays, no process runs; a node started as printed serves the same report" t_kept

# An auditor that refuses every export: the demo's step 6 must fail, whatever came before.
t_failed_check() {
    printf '#!/bin/sh\necho "verdict:      NOT SOUND, 1 defect (an auditor that refuses everything)"\nexit 1\n' \
        >"$T/refusing-audit" && chmod +x "$T/refusing-audit" &&
    { NATIVE=1 DEMO_AUDIT="$T/refusing-audit" demo failing; [ $? -eq 1 ] || { cat "$T/failing.out"; return 1; }; } &&
    line failing "^demo: FAILED: step 6: gkx-audit verify refused acme's export$" &&
    ! grep -q 'all checks passed' "$T/failing.out" &&
    [ -z "$(ls -A "$T/failing")" ] && nothing_left failing
}
ok "an auditor that refuses the export: 'demo: FAILED: step 6: ...', exit 1, nothing left behind" \
    t_failed_check

# Ctrl-C: SIGINT to the demo's whole process group, as a terminal sends it, once step 2 began.
t_interrupt() {
    local pid status
    mkdir -p "$T/stopped"
    set -m
    # A shell's background jobs start with SIGINT ignored, and bash cannot trap a signal ignored
    # on entry: under such a runner (a CI job started with &) the Ctrl-C would not reach the
    # demo. A terminal's Ctrl-C finds it at its default, so it is reset before the demo starts.
    TMPDIR="$T/stopped" GKX_DEMO_BUILDDIR="$GKX_BUILDDIR" GKX_TIME_SCALE="$GKX_TIME_SCALE" "$PY" -c \
        'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
        "$DEMO" >"$T/stopped.out" 2>&1 &
    pid=$!
    set +m
    wait_for 60 grep -q '^== 2\.' "$T/stopped.out" || { kill -KILL -- -"$pid"; cat "$T/stopped.out"; return 1; }
    kill -INT -- -"$pid"
    wait "$pid"
    status=$?
    [ $status -eq 130 ] || { echo "exit status $status, expected 130"; cat "$T/stopped.out"; return 1; }
    line stopped '^demo: interrupted$' && [ -z "$(ls -A "$T/stopped")" ] && nothing_left stopped
}
ok "Ctrl-C during step 2: exit 130, every process stopped, the directory removed" t_interrupt

t_usage() {
    run 2 "$T/usage.out" "$DEMO" --bogus && contains "$T/usage.out" "demo: unknown option '--bogus'" &&
    run 2 "$T/scale.out" env GKX_DEMO_BUILDDIR="$GKX_BUILDDIR" GKX_TIME_SCALE=x "$DEMO" &&
    contains "$T/scale.out" "GKX_TIME_SCALE must be a whole number" &&
    run 2 "$T/nobuild.out" env GKX_DEMO_BUILDDIR="$T/nowhere" "$DEMO" &&
    contains "$T/nobuild.out" "GKX_DEMO_BUILDDIR=$T/nowhere holds no gkx"
}
ok "a bad option, a bad GKX_TIME_SCALE, a build directory without gkx: exit 2, named" t_usage

finish
