#!/usr/bin/env bash
# test_docs - the documents agree with the code, and README's by-hand session runs as written.
# Part of gokart-exchange; MIT licence.
#
# Each check reads the code's own tables (the route tables of api.c and intake.c, the error
# codes the API and the postback endpoint answer, the keys config.c reads, the offer schema of
# offer.c, the MMP templates of postback.c) and the document that describes them, so that a
# route, a code, a key or a field added to one and not the other fails here. The last checks run
# README.md's session by hand against real nodes: every command must succeed as written (ports,
# the binaries' directory and the temporary directory substituted, waits added where a person
# would be slower than replication).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"
: "${GKX_SRCDIR:?GKX_SRCDIR must name the source directory}"
S=$GKX_SRCDIR
plan 12

# routes_code FILE...: the routes of the files' route tables, one "METHOD /path/{}" a line.
routes_code() {
    grep -ohE '\{"(GET|POST|PATCH|PUT|DELETE) /[^"]*", s_[a-z_]+\}' "$@" |
        sed -E 's/^\{"([^"]*)".*/\1/' | sort -u
}
# routes_doc: the routes of docs/api.md's table of endpoints, placeholders written {}.
routes_doc() {
    grep -oE '^\| `(GET|POST|PATCH|PUT|DELETE) /[^`?]*' "$S/docs/api.md" |
        sed -E 's/^\| `//; s/\{[a-z_]+\}/{}/g' | sort -u
}
same_routes() {
    routes_code "$S/src/node/api.c" "$S/src/node/intake.c" >"$T/routes.code"
    routes_doc >"$T/routes.doc"
    [ -s "$T/routes.code" ] || { echo "no route found in api.c"; return 1; }
    diff "$T/routes.code" "$T/routes.doc" ||
        { echo "(< only in the code, > only in docs/api.md)"; return 1; }
}
ok "docs/api.md's table of endpoints names every route of api.c and intake.c, and no other" \
    same_routes

# Every heading of an endpoint names a route of the code.
headings_exist() {
    local h bad=0
    while read -r h; do
        grep -qxF -- "$h" "$T/routes.code" || { echo "heading names no route: $h"; bad=1; }
    done < <(grep -oE '^### `(GET|POST|PATCH|PUT|DELETE) /[^`?]*' "$S/docs/api.md" |
                 sed -E 's/^### `//; s/\{[a-z_]+\}/{}/g')
    return $bad
}
ok "every endpoint heading of docs/api.md names a route of the code" headings_exist

# codes FILE...: the error codes the files answer with (a status and a literal code).
codes() {
    cat "$@" | tr '\n' ' ' | grep -oE '([0-9]{3}|MHD_HTTP_[A-Z_]+),[[:space:]]*"[a-z_]+"' |
        sed -E 's/.*"([a-z_]+)"/\1/' | sort -u
}
# documented DOC CODE...: each code is in DOC as `code`.
documented() {
    local doc=$1 c bad=0; shift
    for c in "$@"; do
        grep -qF -- "\`$c\`" "$doc" ||
            { echo "$(basename "$doc") does not name the code $c"; bad=1; }
    done
    return $bad
}
api_codes() {
    local codes; codes=$(codes "$S/src/node/api.c" "$S/src/node/http.c")
    [ -n "$codes" ] && documented "$S/docs/api.md" $codes
}
ok "docs/api.md names every error code the API and its frame answer" api_codes
# The codes of the error tables exist in the code.
table_codes() {
    local c bad=0 all; all=$(codes "$S/src/node/api.c" "$S/src/node/http.c")
    for c in $(grep -oE '^\| [0-9]{3} \| `[a-z_]+`' "$S/docs/api.md" | sed -E 's/.*`(.*)`/\1/'); do
        grep -qxF -- "$c" <<<"$all" ||
            { echo "docs/api.md lists $c, which nothing answers"; bad=1; }
    done
    return $bad
}
ok "every code of docs/api.md's error tables is one the code answers" table_codes
postback_codes() {
    local codes; codes=$(codes "$S/src/node/intake.c")
    [ -n "$codes" ] && documented "$S/docs/postbacks.md" $codes
}
ok "docs/postbacks.md names every error code the postback endpoint answers" postback_codes

# keys_code: "section key" for each key config.c reads; keys_doc: the rows of docs/config.md.
keys_code() {
    grep -oE 'strcmp \(section, "[a-z]+"\) == 0 && strcmp \(name, "[a-z_]+"\)' \
        "$S/src/node/config.c" | sed -E 's/[^"]*"([a-z]+)"[^"]*"([a-z_]+)".*/\1 \2/' | sort -u
}
keys_doc() {
    grep -oE '^\| [a-z]+ \| [a-z_]+ \|' "$S/docs/config.md" | awk '{print $2, $4}' |
        grep -vxE 'section key|file mode' | sort -u
}
same_keys() {
    keys_code >"$T/keys.code"; keys_doc >"$T/keys.doc"
    [ -s "$T/keys.code" ] || { echo "no key found in config.c"; return 1; }
    diff "$T/keys.code" "$T/keys.doc" ||
        { echo "(< only in config.c, > only in docs/config.md)"; return 1; }
}
ok "docs/config.md has a row for every key config.c reads, and for no other" same_keys

# Every field of the offer's schema is in docs/offer-schema.md.
offer_fields() {
    local f bad=0 n=0
    for f in $(grep -oE '^    \{"[a-z_.]+", S_(SCALAR|SET|MAP|LIST)' "$S/src/core/offer.c" |
                   sed -E 's/^    \{"([^"]*)".*/\1/'); do
        n=$((n + 1))
        grep -qF -- "\`$f\`" "$S/docs/offer-schema.md" ||
            { echo "offer-schema.md lacks $f"; bad=1; }
    done
    [ $n -gt 20 ] || { echo "only $n fields found in offer.c"; return 1; }
    return $bad
}
ok "docs/offer-schema.md names every field of offer.c's schema" offer_fields

# Every MMP template has its section in docs/postbacks.md and is in docs/api.md's list.
mmps() {
    local m bad=0 n=0
    # A template's name is the line after its opening brace.
    for m in $(awk '/^static const s_template_t s_templates/ {t = 1}
                    t && prev ~ /^    \{$/ && /^        "[a-z]+",$/ {gsub(/[ ",]/, ""); print}
                    t && /^};/ {exit} {prev = $0}' "$S/src/core/postback.c"); do
        n=$((n + 1))
        grep -qE "^### .*\(\`$m\`\)" "$S/docs/postbacks.md" ||
            { echo "postbacks.md: no section for $m"; bad=1; }
        grep -qF -- "\`$m\`" "$S/docs/api.md" || { echo "api.md does not list $m"; bad=1; }
    done
    [ $n -eq "$(grep -cE '^### .*\(`[a-z]+`\)$' "$S/docs/postbacks.md")" ] ||
        { echo "postbacks.md's number of MMP sections is not postback.c's $n"; bad=1; }
    return $bad
}
ok "docs/postbacks.md has a section for every MMP template of postback.c, and no other" mmps

# Every function, constant and file docs/architecture.md names exists.
architecture_names() {
    local id f bad=0
    # Its static functions and constants; the gkx_ names of every document.
    local names='\b(gkx|s)_[a-z0-9_]+\b|\bS_[A-Z0-9_]+\b'
    for id in $( (grep -oE "$names" "$S/docs/architecture.md"
                  grep -ohE '\bgkx_[a-z0-9_]+\b' "$S"/docs/*.md "$S/README.md") | sort -u); do
        grep -rqw -- "$id" "$S/src" "$S/include" || { echo "no $id in src/ or include/"; bad=1; }
    done
    for f in $(grep -oE '\b[a-z_]+\.c\b' "$S/docs/architecture.md" | sort -u); do
        compgen -G "$S/src/*/$f" >/dev/null || { echo "no file $f under src/"; bad=1; }
    done
    return $bad
}
ok "every name docs/architecture.md uses, and every gkx_ name of docs/, exists in the code" \
    architecture_names

# Every path of the tree a document names exists (a path after a space, a backtick or a
# parenthesis; placeholders in capitals and the ... of a pattern are left out).
paths_exist() {
    local p bad=0 tops='src|include|tests|examples|man|bench|scripts|docs'
    for p in $(cat "$S/README.md" "$S"/docs/*.md |
                   grep -oE "(^|[ \`(])($tops)/[A-Za-z0-9_./-]*" | sed -E 's/^[ `(]//; s/[.,]+$//' |
                   grep -v '\.\.\.' | grep -vE '[A-Z]{3}' | sort -u); do
        # A program made by the build is named by its path; its source is in the tree.
        [ -e "$S/$p" ] || [ -e "$S/$p.c" ] || { echo "no $p in the tree"; bad=1; }
    done
    return $bad
}
ok "every path of the tree that README.md and docs/ name exists" paths_exist

# README's session by hand, as written: the block after the heading "A session by hand".
session_script() {
    awk '/^## A session by hand/ {h = 1; next} h && /^```sh/ {b = 1; next} b && /^```/ {exit}
         b {print}' "$S/README.md" >"$T/session.raw"
    [ -s "$T/session.raw" ] || { echo "README.md has no session by hand"; return 1; }
    mkdir -p "$T/bin"
    ln -sf "$GKX" "$T/bin/gkx" && ln -sf "$GKXD" "$T/bin/gkxd" &&
        ln -sf "$GKX_AUDIT" "$T/bin/gkx-audit"
    # The README's ports, each replaced by a free one.
    local port subst=""
    for port in $(grep -oE '127\.0\.0\.1:[0-9]+' "$T/session.raw" | cut -d: -f2 | sort -u); do
        subst+="s/127\\.0\\.0\\.1:$port\\b/127.0.0.1:$(free_port)/g;"
    done
    {
        # A session that fails stops its nodes too; until_ok COMMAND... retries every 50 ms,
        # for 20 s (x GKX_TIME_SCALE under valgrind); one_conversion PID: the publisher has it.
        cat <<'PRELUDE'
set -eo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT
until_ok() {
    local i
    for i in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "gave up waiting: $*" >&2
    return 1
}
one_conversion() { gkx --dir pub conversions "$1" | grep -q '^1 conversion'; }
PRELUDE
        echo "tries=$((400 * GKX_TIME_SCALE))"
        printf 'export TMPDIR=%q\ncd %q\n' "$T" "$S"
        # A person is slower than replication: wait where the next line needs the last one's
        # effect on the other node.
        sed -E "$subst"'s#\$PWD/build/plain#'"$T/bin"'#g' "$T/session.raw" | awk '
            {print}
            /^gkxd .*&/ {print "until_ok gkx --dir adv status; until_ok gkx --dir pub status"}
            /share --publisher/ {print "until_ok gkx --dir pub offer show \"$PID\" --digest"}
            /^curl / {print "until_ok one_conversion \"$PID\""}
            /^kill / {print "wait"}'
    } >"$T/session.sh"
}
ok "README.md's session by hand can be read" session_script
session_runs() {
    PATH="$T/bin:$PATH" bash "$T/session.sh" >"$T/session.out" 2>&1 ||
        { echo "the session failed; its last lines:"; tail -12 "$T/session.out"; return 1; }
    # Both reports' digests (the lines of 64 hex digits alone) agree, both exports verify.
    [ "$(grep -cxE '[0-9a-f]{64}' "$T/session.out")" -ge 2 ] &&
        [ "$(grep -xE '[0-9a-f]{64}' "$T/session.out" | tail -2 | sort -u | wc -l)" -eq 1 ] &&
        contains "$T/session.out" "verdict:      sound" &&
        contains "$T/session.out" "the exports agree"
}
ok "README.md's session by hand runs as written: same report digest on both sides, exports agree" \
    session_runs

finish
