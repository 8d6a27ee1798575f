#!/usr/bin/env bash
# test_audit - two real nodes write a partnership log; gkx-audit verifies and compares the
# exports, and names the defect in tampered ones.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"

plan 14

A="$T/adv" P="$T/pub"
WALK=$(vg_program "$GKX_BUILDDIR/examples/log_walkthrough")

t_setup() {
    "$GKX" init --dir "$A" --role advertiser --name "Acme Ads" >/dev/null &&
    "$GKX" init --dir "$P" --role publisher --name "Pixel Pubs" >/dev/null &&
    run 0 "$T/walk.out" "$WALK" "$A" "$P" "$T" &&
    contains "$T/walk.out" "exported" && [ -s "$T/advertiser.log" ] && [ -s "$T/publisher.log" ]
}
ok "two nodes share, edit, acknowledge and export" t_setup

t_digests() {
    [ "$(grep -c 'offer digest' "$T/walk.out")" -eq 2 ] &&
    [ "$(awk '/offer digest/ {print $4}' "$T/walk.out" | sort -u | wc -l)" -eq 1 ] &&
    contains "$T/walk.out" "already held: a replay changes nothing"
}
ok "both nodes derive the same offer digest; a replay is a no-op" t_digests

t_list() {
    local pid; pid=$(awk '/^partnership/ {print $2}' "$T/walk.out")
    run 0 "$T/la.out" "$GKX" --dir "$A" log list && contains "$T/la.out" "$pid" &&
    run 0 "$T/lp.json" "$GKX" --dir "$P" log list --json && contains "$T/lp.json" "\"pid\": \"$pid\"" &&
    contains "$T/lp.json" '"role": "publisher"'
}
ok "both stores list the partnership" t_list

t_verify_sound() {
    run 0 "$T/v.out" "$GKX_AUDIT" verify "$T/advertiser.log" && contains "$T/v.out" "verdict:      sound" &&
    run 0 "$T/v2.out" "$GKX_AUDIT" verify "$T/publisher.log" && contains "$T/v2.out" "verdict:      sound"
}
ok "gkx-audit verify accepts both sound exports" t_verify_sound

t_example_program() {
    run 0 "$T/ex.out" "$(vg_program "$GKX_BUILDDIR/examples/verify_export")" "$T/advertiser.log" &&
    contains "$T/ex.out" "sound: 6 entries"
}
ok "examples/verify_export, a short libgkx program, verifies an export" t_example_program

t_verify_json() {
    run 0 "$T/v.json" "$GKX_AUDIT" verify "$T/advertiser.log" --json &&
    /usr/bin/python3 - "$T/v.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["sound"] is True and r["defects"] == []
adv, pub = r["chains"]["advertiser"], r["chains"]["publisher"]
assert adv["entries"] == 3 and pub["entries"] == 3, (adv, pub)
assert adv["acknowledged_seq"] == 3 and pub["acknowledged_seq"] == 2, (adv, pub)
PY
}
ok "verify --json reports the chains and acknowledgements" t_verify_json

t_compare() {
    run 0 "$T/c.out" "$GKX_AUDIT" compare "$T/advertiser.log" "$T/publisher.log" &&
    contains "$T/c.out" "the exports agree" && contains "$T/c.out" "advertiser  equal (3 entries)"
}
ok "gkx-audit compare: the two members' exports agree" t_compare

# flip FILE OFFSET_FROM_END: flips one byte counted from the end of the file.
flip() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
path, back = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[len(data) - back] ^= 0x01
open(path, "wb").write(bytes(data))
PY
}

t_tampered_signature() {
    cp "$T/advertiser.log" "$T/bad.log" && flip "$T/bad.log" 10 &&
    run 1 "$T/b.out" "$GKX_AUDIT" verify "$T/bad.log" && contains "$T/b.out" "GKX_ESIGNATURE" &&
    contains "$T/b.out" "publisher seq 3" && contains "$T/b.out" "NOT SOUND, 1 defect"
}
ok "a flipped signature byte is named with its entry" t_tampered_signature

t_tampered_body() {
    cp "$T/advertiser.log" "$T/bad2.log" &&
    /usr/bin/python3 - "$T/bad2.log" <<'PY'
import sys
p = sys.argv[1]
d = open(p, "rb").read()
i = d.index(b"incentivised")
d = d[:i] + b"incentivized" + d[i + 12:]
open(p, "wb").write(d)
PY
    run 1 "$T/b2.out" "$GKX_AUDIT" verify "$T/bad2.log" && contains "$T/b2.out" "GKX_ESIGNATURE" &&
    contains "$T/b2.out" "advertiser seq 1"
}
ok "a changed word in the shared offer's terms breaks the genesis signature" t_tampered_body

t_truncated() {
    local size; size=$(stat -c %s "$T/advertiser.log")
    head -c $((size - 200)) "$T/advertiser.log" >"$T/short.log"
    run 1 "$T/s.out" "$GKX_AUDIT" verify "$T/short.log" && contains "$T/s.out" "gkx-audit"
}
ok "a truncated export is refused" t_truncated

t_compare_other() {
    local B2="$T/adv2" P2="$T/pub2" O="$T/other"
    mkdir -p "$O" &&
    "$GKX" init --dir "$B2" --role advertiser --name "Other Ads" >/dev/null &&
    "$GKX" init --dir "$P2" --role publisher --name "Other Pubs" >/dev/null &&
    "$WALK" "$B2" "$P2" "$O" >/dev/null &&
    run 1 "$T/o.out" "$GKX_AUDIT" compare "$T/advertiser.log" "$O/advertiser.log" &&
    contains "$T/o.out" "different partnerships"
}
ok "compare refuses exports of different partnerships" t_compare_other

t_cli_export() {
    local pid; pid=$(awk '/^partnership/ {print $2}' "$T/walk.out")
    run 0 "$T/e.out" "$GKX" --dir "$P" log export "$pid" "$T/cli.log" &&
    run 0 "$T/ev.out" "$GKX_AUDIT" verify "$T/cli.log"
}
ok "gkx log export writes a sound export" t_cli_export

t_rebuild() {
    local pid; pid=$(awk '/^partnership/ {print $2}' "$T/walk.out")
    local want; want=$(awk '/publisher +offer digest/ {print $4}' "$T/walk.out")
    run 0 "$T/rb.out" "$GKX" --dir "$P" log rebuild "$pid" && contains "$T/rb.out" "digest $want" &&
    contains "$T/rb.out" "the stored offer matches the entries"
}
ok "rebuild recomputes the offer from the entries alone: the same digest" t_rebuild

t_import_duplicates() {
    run 0 "$T/i.out" "$GKX" --dir "$P" log import "$T/advertiser.log" &&
    contains "$T/i.out" "imported 0 new entries, 6 already held, 0 refused"
}
ok "importing an export the store already holds changes nothing" t_import_duplicates

finish
