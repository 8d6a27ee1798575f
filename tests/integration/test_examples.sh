#!/usr/bin/env bash
# test_examples - the files of examples/ used as a user uses them, so that none can rot:
# - advertiser.conf and publisher.conf hold every key the loader knows (where the key applies),
#   each with its comment and default, and gkxd runs on each with only its addresses moved to
#   this test's free ports, its SMTP server to a local sink (tests/unit/test_examples loads the
#   files as shipped);
# - the advertiser finds the publisher in the directory it serves, shares examples/offer.json,
#   and every URL of postback-urls.md is what gkx postback-url prints; the generic URL, sent as
#   its "Try one" section says, makes a conversion on both nodes and a signed webhook delivery;
# - gkxd.service passes systemd-analyze verify (when the machine has it);
# - audit-exports.sh passes a good pair of exports and fails a tampered or mismatched pair;
#   verify_export (built by make check) passes a good export and fails a tampered one;
# - README.md names every file of examples/.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

PY=/usr/bin/python3
SINK="$(dirname "$0")/smtp_sink.py"
RECEIVER="$(dirname "$0")/webhook_receiver.py"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    echo "1..0 # SKIP python3-aiosmtpd is not installed (scripts/deps installs it)"
    exit 0
fi

plan 14

EX="$GKX_SRCDIR/examples"
AUDIT_SCRIPT="$EX/audit-exports.sh"
VERIFY=$(vg_program "$GKX_BUILDDIR/examples/verify_export")
WALK=$(vg_program "$GKX_BUILDDIR/examples/log_walkthrough")
MAIL="$T/mail" HOOKS="$T/hooks.jsonl"
# Set by the cases, read by later ones (empty while an earlier case has failed).
PID="" SHORT=""

# json FILE EXPR: prints EXPR of the JSON document in FILE (j).
json() { "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

t_keys() {
    "$PY" - "$GKX_SRCDIR" <<'PY'
import os, re, sys
src = sys.argv[1]
# The keys the loader knows: each "section" and "name" pair its handler compares.
code = open(os.path.join(src, "src/node/config.c")).read()
loader = set(re.findall(r'strcmp \(section, "(\w+)"\) == 0 && strcmp \(name, "(\w+)"\) == 0', code))
# The keys docs/config.md documents, and the role each applies to ("advertisers: ..." or
# "publishers: ..." at the start of its meaning; else both).
doc, applies = set(), {}
for line in open(os.path.join(src, "docs/config.md")):
    m = re.match(r"\| (\w+) \| (\w+) \| [^|]* \| (.*) \|$", line.rstrip("\n"))
    if m and m.group(1) != "section":
        key = (m.group(1), m.group(2))
        doc.add(key)
        applies[key] = {"advertisers:": {"advertiser"}, "publishers:": {"publisher"}}.get(
            m.group(3).split(" ")[0], {"advertiser", "publisher"})
bad = []
if len(loader) < 20:
    bad.append("found only %d keys in config.c: has its handler changed form?" % len(loader))
for key in sorted(loader - doc):
    bad.append("[%s] %s: the loader knows it, docs/config.md does not" % key)
for key in sorted(doc - loader):
    bad.append("[%s] %s: docs/config.md has it, the loader does not" % key)
for role in ("advertiser", "publisher"):
    name = "examples/%s.conf" % role
    lines = open(os.path.join(src, name)).read().split("\n")
    section, found = None, {}
    for i, line in enumerate(lines):
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(#\s*)?(\w+) = ", line)
        if not m or section is None:
            continue
        key = (section, m.group(2))
        found[key] = "commented" if m.group(1) else "set"
        # The comment that explains it: the lines above it, past other keys set beside it.
        j = i - 1
        while j >= 0 and re.match(r"^(#\s*)?\w+ = ", lines[j]):
            j -= 1
        block = []
        while j >= 0 and lines[j].startswith("#") and not re.match(r"^#\s*\w+ = ", lines[j]):
            block.append(lines[j])
            j -= 1
        text = " ".join(block)
        if not block:
            bad.append("%s line %d: [%s] %s has no comment above it" % (name, i + 1, *key))
        elif "Default" not in text and "Required" not in text:
            bad.append("%s line %d: [%s] %s: its comment gives no default" % (name, i + 1, *key))
    for key in sorted(doc):
        if role in applies[key] and key not in found:
            bad.append("%s: [%s] %s is missing" % (name, *key))
        if role not in applies[key] and found.get(key) == "set":
            bad.append("%s: [%s] %s is set, but serves only %ss" % (name, *key, *applies[key]))
    for key in sorted(set(found) - doc):
        bad.append("%s: [%s] %s is no key of the loader" % (name, *key))
print("\n".join(bad) or "%d keys: the loader, docs/config.md and the examples agree" % len(loader))
sys.exit(1 if bad else 0)
PY
}
ok "every key the loader knows is in docs/config.md and, with its comment and default, in each example where it applies" t_keys

# rewrite FILE OUT: FILE as this test runs it: each 127.0.0.1 port as PORTS maps it, the SMTP
# server the local sink (without the login, which needs TLS the sink has not), window_seconds 0
# so that each change is mailed at once, and the directory's key the one gkx directory-address
# printed (DIRECTORY, when set). Prints the lines it changed.
rewrite() {
    "$PY" - "$1" "$2" "$PORTS" "$SMTP_PORT" "${DIRECTORY:-}" <<'PY'
import re, sys
src, out, ports, smtp, directory = sys.argv[1:6]
ports = dict(p.split("=") for p in ports.split())
lines, section = [], None
for line in open(src).read().split("\n"):
    new = line
    m = re.match(r"^\[(\w+)\]$", line)
    section = m.group(1) if m else section
    if not line.startswith("#"):
        new = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + ports[m.group(1)], new)
        if section == "smtp" and line.startswith("url = "):
            new = "url = smtp://127.0.0.1:" + smtp
        if section == "smtp" and (line.startswith("user = ") or line.startswith("password_file = ")):
            new = "# (removed by test_examples) " + line
        if section == "notify" and line.startswith("window_seconds = "):
            new = "window_seconds = 0"
        if directory and section == "directory" and line.startswith("publish_to = "):
            new = "publish_to = " + directory
    if new != line:
        print("  %s -> %s" % (line, new))
    lines.append(new)
open(out, "w").write("\n".join(lines))
PY
}

t_run() {
    local secret; secret=$(sed -n 's/^secret = //p' "$EX/publisher.conf")
    "$PY" "$SINK" serve --out "$MAIL" --port-file "$T/sink.port" 2>>"$T/sink.log" &
    _pids+=($!)
    "$PY" "$RECEIVER" serve --secret "$secret" --out "$HOOKS" --port-file "$T/hook.port" \
        2>>"$T/hook.log" &
    _pids+=($!)
    wait_for 10 test -s "$T/sink.port" && wait_for 10 test -s "$T/hook.port" || return 1
    SMTP_PORT=$(cat "$T/sink.port") HOOK_PORT=$(cat "$T/hook.port")
    # Every port of the two files, moved to one free now (each distinct, none the sink's); the
    # webhook's to the receiver's.
    PORTS=" 8088=$HOOK_PORT"
    local p q
    for p in 7700 7701 7702 7790 7710 7711; do
        q=$(free_port)
        while [[ " $PORTS " == *"=$q "* ]] || [ "$q" = "$SMTP_PORT" ]; do q=$(free_port); done
        PORTS="$PORTS $p=$q"
    done
    "$GKX" init --dir "$T/a" --role advertiser --name "Acme Games" >/dev/null &&
    "$GKX" init --dir "$T/p" --role publisher --name "Pixel Pubs" >/dev/null || return 1
    # The advertiser's directory address, with this node's key, for both publish_to lines.
    rewrite "$EX/advertiser.conf" "$T/a/gkx.conf" >/dev/null &&
    DIRECTORY=$("$GKX" --dir "$T/a" directory-address) || return 1
    echo "directory $DIRECTORY; changed from examples/advertiser.conf:"
    rewrite "$EX/advertiser.conf" "$T/a/gkx.conf" && echo "changed from examples/publisher.conf:" &&
    rewrite "$EX/publisher.conf" "$T/p/gkx.conf" &&
    node_start a && node_start p &&
    "$GKX" --dir "$T/a" card --json >"$T/a.card" && "$GKX" --dir "$T/p" card --json >"$T/p.card" &&
    contains "$T/a.log" "postbacks on 127.0.0.1:" &&
    contains "$T/a.log" "e-mail notifications to 2 addresses" &&
    contains "$T/a.log" "serving 0 cards at $DIRECTORY" &&
    contains "$T/p.log" "webhook deliveries to http://127.0.0.1:$HOOK_PORT/hooks/gkx" &&
    contains "$T/p.log" "e-mail notifications to 1 address"
}
ok "gkxd runs each example (ports, SMTP server and directory key changed): postbacks, directory, webhook, e-mail" t_run

# listed: the advertiser's gkx publishers lists the publisher.
listed() {
    "$GKX" --dir "$T/a" publishers --json >"$T/list.json" &&
    grep -q "\"id\": \"$(card_id p)\"" "$T/list.json"
}

# offer_on NAME: NAME's node holds the partnership.
offer_on() { "$GKX" --dir "$T/$1" offer show "$PID" --digest >/dev/null; }

t_share() {
    wait_for 20 listed &&
    run 0 "$T/peer.out" "$GKX" --dir "$T/p" peer add "$T/a.card" &&
    run 0 "$T/share.out" "$GKX" --dir "$T/a" share --publisher "$(card_id p | cut -c1-12)" \
        --offer "$EX/offer.json" || return 1
    PID=$(tail -1 "$T/share.out")
    SHORT=${PID:0:16}
    wait_for 10 offer_on p
}
ok "the publisher publishes to the advertiser's directory; the advertiser shares examples/offer.json from gkx publishers" t_share

t_postback_urls() {
    [ -n "$PID" ] || return 1
    local mmps
    mmps=$("$GKX" postback-url --help | sed -n 's/^--mmp NAME *//p' | sed 's/,\| or / /g')
    [ -n "$mmps" ] && echo "gkx postback-url knows: $mmps" || return 1
    local m
    for m in $mmps; do
        "$GKX" --dir "$T/a" postback-url "$SHORT" --mmp "$m" >"$T/url.$m" || return 1
    done
    "$PY" - "$EX/postback-urls.md" "$T" "$SHORT" "$(cat "$T/a/postback.token")" $mmps <<'PY'
import re, sys
doc, tmp, short, token, mmps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
text = open(doc).read()
# Each "## Name (`--mmp NAME`)" section's URL: the first line of its code block.
listed = dict(re.findall(r"^## [^\n]*\(`--mmp (\w+)`\)\n.*?^```\n(\S+)\n```", text, re.M | re.S))
bad = []
if sorted(listed) != sorted(mmps):
    bad.append("postback-urls.md lists %s; gkx postback-url knows %s" % (sorted(listed), sorted(mmps)))
base = "https://postbacks.acme.example/postback"    # examples/advertiser.conf's base_url
for m in mmps:
    url = open("%s/url.%s" % (tmp, m)).read().strip()
    want = "%s/%s?p=%s&t=%s&" % (base, m, short, token)
    if not url.startswith(want):
        bad.append("%s: gkx printed %s, not on %s" % (m, url, want))
        continue
    shown = "https://HOST/postback/%s?p=SHORT_ID&t=TOKEN&%s" % (m, url[len(want):])
    if listed.get(m) != shown:
        bad.append("%s:\n  postback-urls.md: %s\n  gkx postback-url: %s" % (m, listed.get(m), shown))
print("\n".join(bad) or "%d URLs match" % len(mmps))
sys.exit(1 if bad else 0)
PY
}
ok "every URL of postback-urls.md is what gkx postback-url prints, for every MMP gkx knows" t_postback_urls

# The deliveries the receiver accepted, signatures checked.
accepted() {
    "$PY" "$RECEIVER" summary "$HOOKS" >"$T/summary.json" &&
    [ "$(json "$T/summary.json" 'j["accepted"]')" -ge 1 ]
}

# conversion_on NAME: NAME's node lists the conversion of the "Try one" postback.
conversion_on() { "$GKX" --dir "$T/$1" conversions "$SHORT" >"$T/conv.$1" && grep -q "test-click-1" "$T/conv.$1"; }

t_try_one() {
    [ -n "$PID" ] || return 1
    # The command of the "Try one" section, with this test's port, short id and token.
    local cmd pb
    pb=$(sed 's/.*7702=\([0-9]*\).*/\1/' <<<"$PORTS")
    cmd=$(sed -n '/^## Try one/,$ s/^curl "\(.*\)"$/\1/p' "$EX/postback-urls.md")
    cmd=${cmd//127.0.0.1:7702/127.0.0.1:$pb}
    cmd=${cmd//SHORT_ID/$SHORT}
    cmd=${cmd//TOKEN/$(cat "$T/a/postback.token")}
    [ -n "$cmd" ] && curl -sS "$cmd" >"$T/try.json" && contains "$T/try.json" '"status":"approved"' &&
    conversion_on a && wait_for 10 conversion_on p && wait_for 20 accepted &&
    [ "$(json "$T/summary.json" 'j["bad_signatures"]')" -eq 0 ]
}
ok "the generic URL, sent as 'Try one' shows: a conversion on both nodes and a signed webhook delivery" t_try_one

# mail_to ADDRESS FROM: the sink holds a message to ADDRESS from FROM.
mail_to() {
    "$PY" "$SINK" show "$MAIL" >"$T/mails.json" &&
    "$PY" - "$T/mails.json" "$1" "$2" <<'PY'
import json, sys
mails, to, sender = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
sys.exit(0 if any(to in m["rcpt_tos"] and m["mail_from"] == sender for m in mails) else 1)
PY
}

t_mail() {
    [ -n "$PID" ] || return 1
    run 0 "$T/pause.out" "$GKX" --dir "$T/p" pause "$PID" &&
    wait_for 20 mail_to ops@pixelpubs.example alerts@pixelpubs.example &&
    wait_for 20 mail_to ua-team@acme.example gkx-alerts@acme.example &&
    mail_to finance@acme.example gkx-alerts@acme.example
}
ok "e-mail from [smtp] from to [notify] to: the new partnership to the publisher, its pause to the advertiser" t_mail

t_systemd() {
    # The unit as shipped but for the program's path (no gkxd is installed here); the
    # Documentation= pages are looked up in the source tree's man/.
    mkdir -p "$T/unit" "$T/man/man1" "$T/man/man8" &&
    cp "$GKX_SRCDIR/man/gkx.1" "$GKX_SRCDIR/man/gkx-audit.1" "$T/man/man1/" &&
    cp "$GKX_SRCDIR/man/gkxd.8" "$T/man/man8/" &&
    sed "s|^ExecStart=/usr/local/bin/gkxd |ExecStart=$GKX_BUILDDIR/gkxd |" "$EX/gkxd.service" \
        >"$T/unit/gkxd.service" || return 1
    local man=yes
    command -v man >/dev/null 2>&1 || man=no
    (cd "$T/unit" && MANPATH="$T/man" SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man="$man" gkxd.service) \
        >"$T/verify.out" 2>&1
    local status=$?
    cat "$T/verify.out"
    [ $status -eq 0 ] && [ ! -s "$T/verify.out" ] || return 1
    systemd-analyze security --offline=true --threshold=20 "$T/unit/gkxd.service" >"$T/security.out" 2>&1 ||
        { tail -30 "$T/security.out"; return 1; }
    grep 'Overall exposure' "$T/security.out"
}
if command -v systemd-analyze >/dev/null 2>&1; then
    ok "gkxd.service: systemd-analyze verify says nothing, and its exposure is at most 2.0 (OK)" t_systemd
else
    _n=$((_n + 1)); echo "ok $_n # SKIP systemd-analyze is not installed (Debian's systemd package)"
fi

# flip FILE OFFSET_FROM_END: flips one byte counted from the end of the file.
flip() {
    "$PY" - "$1" "$2" <<'PY'
import sys
path, back = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[len(data) - back] ^= 0x01
open(path, "wb").write(bytes(data))
PY
}

# audit A B: examples/audit-exports.sh on A and B, with this build's gkx-audit.
audit() { GKX_AUDIT="$GKX_AUDIT" bash "$AUDIT_SCRIPT" "$@"; }

t_audit_good() {
    [ -n "$PID" ] || return 1
    # An export from each side now, and the advertiser's again after one more entry: an
    # earlier export is a prefix of a later one, which is no disagreement.
    run 0 "$T/ea.out" "$GKX" --dir "$T/a" export "$PID" "$T/adv.log" &&
    run 0 "$T/ep.out" "$GKX" --dir "$T/p" export "$PID" "$T/pub.log" &&
    run 0 "$T/audit.out" audit "$T/adv.log" "$T/pub.log" &&
    contains "$T/audit.out" "sound (exported by the advertiser)" &&
    contains "$T/audit.out" "sound (exported by the publisher)" &&
    contains "$T/audit.out" "AUDIT PASSED" &&
    run 0 "$T/resume.out" "$GKX" --dir "$T/a" resume "$PID" &&
    run 0 "$T/ea2.out" "$GKX" --dir "$T/a" export "$PID" "$T/adv2.log" &&
    run 0 "$T/audit2.out" audit "$T/pub.log" "$T/adv2.log" &&
    contains "$T/audit2.out" "A is a prefix of B" && contains "$T/audit2.out" "AUDIT PASSED"
}
ok "audit-exports.sh: both members' exports, and an earlier with a later one, pass (exit 0)" t_audit_good

t_audit_tampered() {
    [ -s "$T/adv.log" ] && cp "$T/adv.log" "$T/bad.log" && flip "$T/bad.log" 10 &&
    run 1 "$T/audit-bad.out" audit "$T/bad.log" "$T/pub.log" &&
    contains "$T/audit-bad.out" "GKX_ESIGNATURE" &&
    contains "$T/audit-bad.out" "AUDIT FAILED: $T/bad.log is not a sound export"
}
ok "audit-exports.sh: a flipped byte fails the audit (exit 1) and names the defect" t_audit_tampered

t_audit_mismatched() {
    mkdir -p "$T/other" &&
    "$GKX" init --dir "$T/oa" --role advertiser --name "Other Ads" >/dev/null &&
    "$GKX" init --dir "$T/op" --role publisher --name "Other Pubs" >/dev/null &&
    run 0 "$T/walk.out" "$WALK" "$T/oa" "$T/op" "$T/other" &&
    run 1 "$T/audit-other.out" audit "$T/adv.log" "$T/other/publisher.log" &&
    contains "$T/audit-other.out" "different partnerships" &&
    contains "$T/audit-other.out" "AUDIT FAILED: the exports are of different partnerships" &&
    run 2 "$T/audit-usage.out" audit "$T/adv.log" && contains "$T/audit-usage.out" "usage:" &&
    run 2 "$T/audit-missing.out" audit "$T/adv.log" "$T/nothing.log" &&
    contains "$T/audit-missing.out" "nothing.log: not a readable file"
}
ok "audit-exports.sh: exports of two partnerships fail (exit 1); usage errors exit 2" t_audit_mismatched

t_verify_export() {
    [ -s "$T/adv.log" ] && [ -s "$T/bad.log" ] &&
    run 0 "$T/ve.out" "$VERIFY" "$T/adv.log" && contains "$T/ve.out" "sound: " &&
    run 1 "$T/ve-bad.out" "$VERIFY" "$T/bad.log" && contains "$T/ve-bad.out" "GKX_ESIGNATURE" &&
    run 2 "$T/ve-usage.out" "$VERIFY" && contains "$T/ve-usage.out" "usage: verify_export FILE"
}
ok "verify_export (examples/verify_export.c): a real export is sound (exit 0), a tampered one not (exit 1)" t_verify_export

t_verify_export_short() {
    # Short, commented, and only the public header of libgkx.
    local src="$EX/verify_export.c" lines
    lines=$(wc -l <"$src")
    echo "$lines lines"
    [ "$lines" -le 60 ] && grep -q '^#include <gkx.h>$' "$src" &&
    ! grep -E '^#include' "$src" | grep -vE '^#include <(gkx\.h|stdio\.h|stdlib\.h|string\.h)>$' &&
    ! grep -q 'src/' "$src" && grep -q '^/\*' "$src"
}
ok "verify_export.c is short (60 lines at most), commented, and includes only <gkx.h> of libgkx" t_verify_export_short

t_readme() {
    local f missing=""
    for f in "$EX"/*.*; do
        f=$(basename "$f")
        # Not README.md itself, nor what a build in the source tree leaves (objects, programs).
        case "$f" in README.md | *.o) continue ;; esac
        grep -q "\`$f\`" "$EX/README.md" || missing="$missing $f"
    done
    [ -z "$missing" ] || { echo "examples/README.md does not name:$missing"; return 1; }
}
ok "examples/README.md names every file of examples/" t_readme

t_stop() {
    [ -f "$T/a.pid" ] && [ -f "$T/p.pid" ] && node_stop a && node_stop p &&
    contains "$T/a.log" "stopping" && contains "$T/p.log" "stopping"
}
ok "both nodes stop on SIGTERM (gkxd.service's KillSignal) and exit 0" t_stop

finish
