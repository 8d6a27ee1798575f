#!/usr/bin/env bash
# test_man - the man pages gkx.1, gkxd.8 and gkx-audit.1 against the programs: every verb gkx
# --help lists has its entry in gkx.1, every usage form each program and verb prints (gkx VERB
# --help, gkxd --help, gkx-audit --help) is in its page word for word, every option of the
# usage is described, gkxd takes the options gkxd.8 gives; each page renders with groff (and
# man -l) without a warning, and has the sections a man page needs.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"

plan 8

MAN="$GKX_SRCDIR/man"
PY=/usr/bin/python3

if ! command -v groff >/dev/null 2>&1; then
    echo "# groff is not installed (Debian's groff-base; scripts/deps installs it)"
fi

# text PAGE: the page rendered as plain ASCII text (no bold, no underline, no hyphenation).
text() { groff -man -Tascii -P-c -P-b -P-u -ww "$MAN/$1" 2>/dev/null; }

# usage_forms PROGRAM ARGS...: the usage forms PROGRAM ARGS --help prints, one a line: each
# "usage: ..." line and its continuation lines joined, a parenthesised comment after two spaces
# dropped, whitespace collapsed.
usage_forms() {
    "$@" --help | "$PY" -c '
import re, sys
forms, in_usage = [], False
for line in sys.stdin.read().split("\n"):
    line = re.sub(r"  +\(.*\)$", "", line)
    if line.startswith("usage: "):
        forms.append(line[len("usage: "):])
        in_usage = True
    elif in_usage and line.startswith(" ") and line.strip():
        rest = line.strip()
        if rest.split(" ")[0] == forms[-1].split(" ")[0]:
            forms.append(rest)          # another form of the same program
        else:
            forms[-1] += " " + rest     # the form goes on
    else:
        in_usage = False
for form in forms:
    print(" ".join(form.split()))
'
}

# verbs: the verbs gkx --help lists.
verbs() { "$GKX" --help | sed -n '/^verbs:/,/^$/ s/^  \([a-z-]*\) .*/\1/p'; }

# has_forms PAGE FORMS_FILE: every line of FORMS_FILE is in the rendered PAGE (whitespace
# collapsed).
has_forms() {
    text "$1" >"$T/$1.txt" && "$PY" - "$T/$1.txt" "$2" <<'PY'
import sys
page = " ".join(open(sys.argv[1]).read().split())
missing = [f for f in open(sys.argv[2]).read().split("\n") if f and f not in page]
for f in missing:
    print("not in the page: " + f)
sys.exit(1 if missing else 0)
PY
}

t_verbs() {
    local v missing="" n=0
    text gkx.1 >"$T/gkx.txt" || return 1
    for v in $(verbs); do
        n=$((n + 1))
        # An entry: a line of the COMMANDS section that starts with "gkx VERB".
        sed -n '/^COMMANDS/,/^EDITS/p' "$T/gkx.txt" | grep -qE "^ {7}gkx $v( |\$)" || missing="$missing $v"
    done
    echo "$n verbs"
    [ "$n" -ge 20 ] && [ -z "$missing" ] || { echo "verbs without an entry in gkx.1:$missing"; return 1; }
}
ok "every verb gkx --help lists has its entry in gkx.1" t_verbs

t_gkx_forms() {
    local v
    : >"$T/gkx.forms"
    for v in $(verbs); do
        usage_forms "$GKX" "$v" >>"$T/gkx.forms" || return 1
    done
    echo "$(wc -l <"$T/gkx.forms") usage forms"
    has_forms gkx.1 "$T/gkx.forms"
}
ok "every usage form of every gkx verb (gkx VERB --help) is in gkx.1 word for word" t_gkx_forms

t_options() {
    # Each option a verb's help names is described in gkx.1 (beyond its usage line).
    local v
    text gkx.1 >"$T/gkx.txt" || return 1
    for v in $(verbs); do "$GKX" "$v" --help; done | grep -oE -- '--[a-z][a-z-]*' | sort -u >"$T/options"
    echo "$(wc -l <"$T/options") options"
    local o missing=""
    while read -r o; do
        [ "$(grep -cF -- "$o" "$T/gkx.txt")" -ge 2 ] || missing="$missing $o"
    done <"$T/options"
    [ -z "$missing" ] || { echo "options of gkx not described in gkx.1:$missing"; return 1; }
}
ok "every option of every gkx verb is described in gkx.1" t_options

t_other_forms() {
    usage_forms "$GKXD" >"$T/gkxd.forms" && usage_forms "$GKX_AUDIT" >"$T/audit.forms" &&
    [ -s "$T/gkxd.forms" ] && [ "$(wc -l <"$T/audit.forms")" -eq 2 ] &&
    has_forms gkxd.8 "$T/gkxd.forms" && has_forms gkx-audit.1 "$T/audit.forms" &&
    text gkx-audit.1 | grep -q -- '--json' && text gkxd.8 | grep -q -- '--help'
}
ok "gkxd --help's usage is in gkxd.8, and both forms of gkx-audit --help in gkx-audit.1" t_other_forms

t_gkxd_options() {
    # gkxd takes the options gkxd.8 gives, as gkx takes them.
    text gkxd.8 >"$T/gkxd.txt" && grep -q -- '--dir=DIR' "$T/gkxd.txt" && grep -q -- '--help, -h' "$T/gkxd.txt" &&
    run 0 "$T/h.out" "$GKXD" -h && contains "$T/h.out" "usage: gkxd --dir DIR" &&
    run 1 "$T/d.out" "$GKXD" --dir="$T/nowhere" && contains "$T/d.out" "$T/nowhere/gkx.conf" &&
    run 2 "$T/n.out" "$GKXD" --dir && contains "$T/n.out" "gkxd: --dir needs a directory" &&
    run 2 "$T/u.out" "$GKXD" --verbose && contains "$T/u.out" "gkxd: unknown argument '--verbose'"
}
ok "gkxd takes --dir DIR, --dir=DIR, --help and -h as gkxd.8 says; --dir alone and unknown arguments exit 2" t_gkxd_options

t_sections() {
    local page s missing=""
    for page in gkx.1 gkxd.8 gkx-audit.1; do
        text "$page" >"$T/$page.txt" || return 1
        for s in NAME SYNOPSIS DESCRIPTION FILES ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
            grep -q "^$s\$" "$T/$page.txt" || missing="$missing $page:$s"
        done
    done
    grep -q "^OPTIONS\$" "$T/gkx.1.txt" || missing="$missing gkx.1:OPTIONS"
    grep -q "^OPTIONS\$" "$T/gkxd.8.txt" || missing="$missing gkxd.8:OPTIONS"
    grep -q "GKX_DIR" "$T/gkx.1.txt" && grep -q "GKX_DIR" "$T/gkxd.8.txt" || missing="$missing GKX_DIR"
    [ -z "$missing" ] || { echo "missing sections:$missing"; return 1; }
}
ok "each page has NAME, SYNOPSIS, DESCRIPTION, FILES, ENVIRONMENT, EXIT STATUS, EXAMPLES, SEE ALSO" t_sections

t_groff() {
    local page
    for page in gkx.1 gkxd.8 gkx-audit.1; do
        groff -man -Tutf8 -ww -z "$MAN/$page" >"$T/groff.out" 2>&1 || { cat "$T/groff.out"; return 1; }
        [ ! -s "$T/groff.out" ] || { echo "$page:"; cat "$T/groff.out"; return 1; }
    done
}
ok "groff -man -Tutf8 -ww renders each page without a warning" t_groff

t_man() {
    if ! command -v man >/dev/null 2>&1; then
        echo "man is not installed; groff alone checked the pages"
        return 0
    fi
    local page
    for page in gkx.1 gkxd.8 gkx-audit.1; do
        MANWIDTH=80 man --warnings -l "$MAN/$page" >"$T/man.out" 2>"$T/man.err" ||
            { cat "$T/man.err"; return 1; }
        [ ! -s "$T/man.err" ] || { echo "$page:"; cat "$T/man.err"; return 1; }
        grep -q "gokart-exchange" "$T/man.out" || { echo "$page: man -l printed no page"; return 1; }
    done
}
ok "man --warnings -l renders each page without a warning" t_man

finish
