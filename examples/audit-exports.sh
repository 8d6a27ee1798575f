#!/usr/bin/env bash
# audit-exports.sh - audits two exports of one partnership: each verified, then the pair compared.
# Part of gokart-exchange; MIT licence.
#
# usage: examples/audit-exports.sh EXPORT_A EXPORT_B
#
# EXPORT_A and EXPORT_B are exports of one partnership, normally one from each member: on each
# node `gkx export PID FILE` (or `gkx log export PID FILE` while the node is stopped). Nothing
# else is needed: no node, no network, only gkx-audit (docs/log-format.md says what it checks).
#   1. gkx-audit verify EXPORT_A: every signature, hash link, seq, cross-link, and no
#      equivocation (two entries signed at one place of a chain);
#   2. the same for EXPORT_B;
#   3. gkx-audit compare EXPORT_A EXPORT_B: the same partnership, and for each member's chain
#      one export equal to or a prefix of the other (an export made earlier, or before the
#      node had received the latest entries), never a fork.
# The last line says AUDIT PASSED or AUDIT FAILED, with the reasons.
#
# Exit status: 0 passed; 1 failed (a defect, a fork, two partnerships, a file that is not an
# export); 2 usage error, or gkx-audit not found. GKX_AUDIT names the gkx-audit program to use
# (default: the one on PATH).
set -euo pipefail

usage() {
    echo "usage: $(basename "$0") EXPORT_A EXPORT_B" >&2
    exit 2
}
[ $# -eq 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; } && { sed -n '5,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
[ $# -eq 2 ] || usage

audit=${GKX_AUDIT:-gkx-audit}
if ! command -v "$audit" >/dev/null 2>&1; then
    echo "audit-exports: gkx-audit not found ('$audit'): install gokart-exchange (make install)" \
        "or set GKX_AUDIT to the program" >&2
    exit 2
fi
for f in "$1" "$2"; do
    if [ ! -r "$f" ] || [ ! -f "$f" ]; then
        echo "audit-exports: $f: not a readable file" >&2
        exit 2
    fi
done

failures=()
roles=()   # roles[STEP]: the member that exported the file of that step
out=$(mktemp "${TMPDIR:-/tmp}/audit-exports-XXXXXX")
trap 'rm -f "$out"' EXIT

# field FILE LABEL: the value gkx-audit verify printed after "LABEL:" (its first word).
field() { sed -n "s/^$2: *\([^ ]*\).*/\1/p" "$1" | head -1; }

# verify STEP FILE: runs gkx-audit verify, prints its report indented and a one-line verdict.
# Prints which member exported the file (the exporter's id is one of the two chains' ids).
verify() {
    local step=$1 file=$2 status=0 by role
    echo "== $step/3  gkx-audit verify $file"
    "$audit" verify "$file" >"$out" 2>&1 || status=$?
    sed 's/^/   /' "$out"
    by=$(field "$out" "exported by")
    role=unknown
    [ -n "$by" ] && grep -q "^advertiser  *$by" "$out" && role=advertiser
    [ -n "$by" ] && grep -q "^publisher  *$by" "$out" && role=publisher
    if [ $status -eq 0 ]; then
        echo "   -> sound (exported by the $role)"
    else
        echo "   -> NOT SOUND"
        failures+=("$file is not a sound export")
    fi
    roles[step]=$role
}

verify 1 "$1"
verify 2 "$2"

echo "== 3/3  gkx-audit compare $1 $2"
status=0
"$audit" compare "$1" "$2" >"$out" 2>&1 || status=$?
sed 's/^/   /' "$out"
if [ $status -eq 0 ]; then
    if grep -q "prefix of" "$out"; then
        echo "   -> they agree; one export holds entries the other does not have yet (made later," \
            "or after more entries arrived), which is no disagreement"
    else
        echo "   -> they agree, entry for entry"
    fi
elif grep -q "different partnerships" "$out"; then
    echo "   -> these are exports of two different partnerships"
    failures+=("the exports are of different partnerships")
elif grep -q "FORK" "$out"; then
    echo "   -> the exports DISAGREE: a member signed two different histories"
    failures+=("the exports fork")
else
    echo "   -> the comparison failed"
    failures+=("gkx-audit compare failed")
fi
if [ "${roles[1]}" = "${roles[2]}" ] && [ "${roles[1]}" != unknown ] && [ ${#failures[@]} -eq 0 ]; then
    echo "   note: both exports come from the ${roles[1]}'s node; one from each member shows" \
        "that both nodes hold the same history"
fi

echo
if [ ${#failures[@]} -eq 0 ]; then
    echo "AUDIT PASSED: both exports are sound and agree"
    exit 0
fi
reasons=$(printf '%s; ' "${failures[@]}")
echo "AUDIT FAILED: ${reasons%; }"
exit 1
