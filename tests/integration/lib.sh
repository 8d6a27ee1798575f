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

_cleanup() {
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap _cleanup EXIT

plan() { echo "1..$1"; }

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

# wait_for SECONDS COMMAND...: retries COMMAND every 50 ms until it succeeds.
wait_for() {
    local limit=$1; shift
    local tries=$((limit * 20))
    while [ $tries -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

finish() { [ $_failed -eq 0 ]; }
