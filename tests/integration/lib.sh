# lib.sh - TAP helpers for the integration tests (sourced, not run).
# Part of gokart-exchange; MIT licence.
#
# Each test script: source this, call `plan N`, then `ok`/`check` per case.
# A temporary directory $T is created and removed on exit, whatever happens;
# background processes started with `spawn` are killed on exit too.

set -u
: "${GKX_BUILDDIR:?GKX_BUILDDIR must name the build directory}"
GKX="$GKX_BUILDDIR/gkx"
GKXD="$GKX_BUILDDIR/gkxd"
GKX_AUDIT="$GKX_BUILDDIR/gkx-audit"
T=$(mktemp -d "${TMPDIR:-/tmp}/gkx-it-XXXXXX")
_n=0
_failed=0
_pids=()

# GKX_VALGRIND=1 (scripts/check --valgrind) runs gkxd, gkx and gkx-audit under valgrind memcheck
# through tests/valgrind-wrap (GKX_VALGRIND="gkxd gkx-audit" names fewer); waits are then
# GKX_TIME_SCALE (10) times longer and `scaled N` loads GKX_LOAD_DIVISOR (20) times smaller.
# finish stops the test's processes with SIGTERM (valgrind reports leaks at exit) and adds one
# test: no report in $GKX_VALGRIND_LOGS names an error or a definite/indirect leak.
_vg=0
if [ -n "${GKX_VALGRIND:-}" ] && [ "$GKX_VALGRIND" != 0 ]; then
    _vg=1
    _vg_tests=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    : "${GKX_VALGRIND_LOGS:=$GKX_BUILDDIR/valgrind/$(basename "$(dirname "$0")")-$(basename "$0" .sh)}"
    : "${GKX_TIME_SCALE:=10}" "${GKX_LOAD_DIVISOR:=20}"
    rm -rf "$GKX_VALGRIND_LOGS" && mkdir -p "$GKX_VALGRIND_LOGS" "$T/.valgrind" || exit 1
    # vg_program PATH: prints a command that runs PATH under valgrind (PATH itself without it).
    # A program but gkxd checks each distinct command line once (GKX_VALGRIND_ONCE, valgrind-wrap).
    vg_program() {
        local to="$T/.valgrind/$(basename "$1")" once='${GKX_VALGRIND_ONCE:-1}'
        [ "$(basename "$1")" = gkxd ] && once=0
        printf '#!/usr/bin/env bash\nGKX_VALGRIND_LOGS=%q GKX_BUILDDIR=%q GKX_VALGRIND_ONCE=%s exec %q %q "$@"\n' \
            "$GKX_VALGRIND_LOGS" "$GKX_BUILDDIR" "$once" "$_vg_tests/valgrind-wrap" "$1" >"$to" &&
        chmod +x "$to" && echo "$to"
    }
    [ "$GKX_VALGRIND" = 1 ] && GKX_VALGRIND="gkxd gkx gkx-audit"
    case " $GKX_VALGRIND " in *" gkxd "*) GKXD=$(vg_program "$GKXD") ;; esac
    case " $GKX_VALGRIND " in *" gkx "*) GKX=$(vg_program "$GKX") ;; esac
    case " $GKX_VALGRIND " in *" gkx-audit "*) GKX_AUDIT=$(vg_program "$GKX_AUDIT") ;; esac
else
    vg_program() { echo "$1"; }
fi
: "${GKX_TIME_SCALE:=1}" "${GKX_LOAD_DIVISOR:=1}"

# scaled N: N for this run's load (N / GKX_LOAD_DIVISOR under valgrind, at least 1).
scaled() { local n=$(($1 / GKX_LOAD_DIVISOR)); echo $((n > 0 ? n : 1)); }

_cleanup() {
    [ $_vg -eq 1 ] && [ -z "${_vg_done:-}" ] && { _vg_done=1; _vg_stop; _vg_check >&2 || { _vg_rc=1; }; }
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    done
    rm -rf "$T"
    [ -z "${_vg_rc:-}" ] || exit 1
}
trap _cleanup EXIT

plan() { echo "1..$(($1 + _vg))"; }

# ok DESCRIPTION COMMAND...: passes when the command exits 0.
ok() {
    local desc=$1; shift
    _n=$((_n + 1))
    if "$@" >"$T/.out" 2>&1; then
        echo "ok $_n - $desc"
    else
        echo "not ok $_n - $desc"
        sed 's/^/# /' "$T/.out" | head -20
        _failed=$((_failed + 1))
    fi
}

# run EXPECTED_STATUS OUTFILE COMMAND...: runs a command, stdout+stderr to
# OUTFILE; returns 0 when its exit status is EXPECTED_STATUS.
run() {
    local want=$1 out=$2; shift 2
    "$@" >"$out" 2>&1
    local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "exit status $got, expected $want: $*"
        cat "$out"
        return 1
    fi
}

# contains FILE TEXT: FILE holds TEXT (fixed string).
contains() {
    grep -qF -- "$2" "$1" || { echo "expected '$2' in $1:"; cat "$1"; return 1; }
}

# spawn COMMAND...: starts a background process killed at exit.
spawn() {
    "$@" &
    _pids+=($!)
}

# wait_for SECONDS COMMAND...: retries COMMAND every 50 ms until it succeeds; gives up after
# SECONDS x GKX_TIME_SCALE and at least SECONDS x 20 tries (slow commands get their tries).
wait_for() {
    local limit=$1; shift
    local tries=$((limit * 20)) deadline=$((EPOCHSECONDS + limit * GKX_TIME_SCALE))
    while [ $tries -gt 0 ] || [ $EPOCHSECONDS -lt $deadline ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

# _vg_stop: SIGCONT and SIGTERM to every process the test started, so that each valgrind
# reports its leaks at exit; SIGKILL for one still running after 30 s x GKX_TIME_SCALE.
_vg_stop() {
    local p deadline=$((EPOCHSECONDS + 30 * GKX_TIME_SCALE))
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] && kill -CONT "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
    done
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] || continue
        while kill -0 "$p" 2>/dev/null && [ $EPOCHSECONDS -lt $deadline ]; do sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    _pids=()
}

# _vg_check: reads the test's valgrind reports; prints the bad ones and the figures line.
_vg_check() {
    local out status name processes=0 killed=0 errors=0 leaks_definite=0 leaks_indirect=0
    out=$(bash "$_vg_tests/valgrind-check" "$GKX_VALGRIND_LOGS"); status=$?
    name=$(basename "$GKX_VALGRIND_LOGS")
    grep '^#' <<<"$out"
    eval "$(tail -1 <<<"$out" | grep -E '^processes=[0-9]+( [a-z_]+=[0-9]+)*$')"
    echo "# figures: {\"suite\": \"valgrind\", \"test\": \"$name\", \"programs\": 1," \
        "\"processes_checked\": $processes, \"killed\": $killed, \"errors\": $errors," \
        "\"leaks_definite\": $leaks_definite, \"leaks_indirect\": $leaks_indirect}"
    echo "# valgrind: $processes processes ($killed killed: errors checked, not leaks), reports in $GKX_VALGRIND_LOGS"
    return $status
}

finish() {
    if [ $_vg -eq 1 ]; then
        _vg_done=1
        _vg_stop
        _n=$((_n + 1))
        if _vg_check >"$T/.vg" 2>&1; then
            echo "ok $_n - valgrind: no memory error or definite/indirect leak in any process"
        else
            echo "not ok $_n - valgrind: a process reported a memory error or a definite/indirect leak"
            _failed=$((_failed + 1))
        fi
        cat "$T/.vg"
    fi
    [ $_failed -eq 0 ]
}
