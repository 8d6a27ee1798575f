#!/usr/bin/env bash
# test_cli - gkx init, gkx card, gkx log, gkx-audit and gkxd driven as a user would.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 25

A="$T/adv"
LISTEN="tcp://127.0.0.1:$(free_port)"
API="127.0.0.1:$(free_port)"
POSTBACK="127.0.0.1:$(free_port)"

t_init() {
    run 0 "$T/init.out" "$GKX" init --dir "$A" --role advertiser --name "Acme Ads" \
        --email ops@acme.test --listen "$LISTEN" --api "$API" --postback "$POSTBACK" &&
    contains "$T/init.out" 'initialised advertiser node "Acme Ads"' &&
    grep -qE '^id: [0-9a-f]{64}$' "$T/init.out"
}
ok "init creates a node and prints its id" t_init

t_modes() {
    [ "$(stat -c %a "$A/secret.key")" = 600 ] && [ "$(stat -c %a "$A/api.token")" = 600 ] &&
    [ -f "$A/gkx.conf" ] && [ -d "$A/store" ] && grep -qE '^[0-9a-f]{64}$' "$A/api.token"
}
ok "secret key and API token are mode 0600" t_modes

t_config_commented() {
    for key in role name email listen verticals countries; do
        grep -qE "^$key =" "$A/gkx.conf" || { echo "missing $key"; return 1; }
    done
    [ "$(grep -c '^#' "$A/gkx.conf")" -ge 8 ]
}
ok "gkx.conf holds every key with comments" t_config_commented

t_refuse_overwrite() {
    local before; before=$(cat "$A/secret.key")
    run 1 "$T/o.out" "$GKX" init --dir "$A" --role publisher --name X &&
    contains "$T/o.out" "already holds a node" && [ "$(cat "$A/secret.key")" = "$before" ]
}
ok "init refuses to overwrite an existing node" t_refuse_overwrite

t_card_human() {
    run 0 "$T/c.out" "$GKX" --dir "$A" card && contains "$T/c.out" "role:          advertiser" &&
    contains "$T/c.out" "name:          Acme Ads" && contains "$T/c.out" "$LISTEN" &&
    contains "$T/c.out" "signature:     verified"
}
ok "card prints the tenant card" t_card_human

t_card_json() {
    run 0 "$T/c.json" "$GKX" card --dir "$A" --json &&
    /usr/bin/python3 - "$T/c.json" "$T/init.out" <<'PY'
import json, sys
card = json.load(open(sys.argv[1]))
node_id = [l.split()[1] for l in open(sys.argv[2]) if l.startswith("id: ")][0]
for key in ("id", "role", "name", "endpoint", "signature", "transport_key", "email", "timestamp"):
    assert key in card, key
assert card["id"] == node_id and card["role"] == "advertiser" and card["name"] == "Acme Ads"
assert len(card["signature"]) == 128
PY
}
ok "card --json has id, role, name, endpoint, signature (--dir after the verb)" t_card_json

t_card_env() {
    GKX_DIR="$A" run 0 "$T/e.json" "$GKX" card --json && cmp -s "$T/e.json" "$T/c.json"
}
ok "GKX_DIR stands for --dir, and the card is stable" t_card_env

t_card_reissued() {
    sed -i 's/^name = Acme Ads$/name = Acme Ads EU/' "$A/gkx.conf" &&
    run 0 "$T/r.json" "$GKX" --dir "$A" card --json && contains "$T/r.json" '"name": "Acme Ads EU"' &&
    ! cmp -s "$T/r.json" "$T/c.json"
}
ok "a changed name issues a new signed card" t_card_reissued

t_card_tampered() {
    sed -i 's/"name": "Acme Ads EU"/"name": "Evil Ads"/' "$A/card.json" &&
    run 0 "$T/t.out" "$GKX" --dir "$A" card && contains "$T/t.out" "name:          Acme Ads EU"
}
ok "a tampered card file is not shown; the card is issued again" t_card_tampered

t_unknown_verb() { run 2 "$T/u.out" "$GKX" frobnicate && contains "$T/u.out" "unknown verb 'frobnicate'" && contains "$T/u.out" "usage:"; }
ok "an unknown verb prints usage and exits 2" t_unknown_verb

t_unknown_option() { run 2 "$T/u.out" "$GKX" --dir "$A" card --bogus && contains "$T/u.out" "unknown option '--bogus'"; }
ok "an unknown option prints usage and exits 2" t_unknown_option

t_help() {
    for verb in init card log; do
        run 0 "$T/h.out" "$GKX" "$verb" --help && contains "$T/h.out" "usage: gkx $verb" || return 1
    done
    run 0 "$T/h.out" "$GKX" --help && contains "$T/h.out" "verbs:"
}
ok "every verb has --help" t_help

t_no_dir() { env -u GKX_DIR "$GKX" card >"$T/n.out" 2>&1; [ $? -eq 1 ] && contains "$T/n.out" "no node directory"; }
ok "a verb without a node directory says so" t_no_dir

t_not_node() { run 1 "$T/n.out" "$GKX" --dir "$T/nowhere" card && contains "$T/n.out" "gkx init"; }
ok "a directory that is not a node points to gkx init" t_not_node

t_bad_config() {
    local P="$T/pub"
    "$GKX" init --dir "$P" --role publisher --name "Pub" >/dev/null &&
    echo "colour = blue" >>"$P/gkx.conf" &&
    run 1 "$T/b.out" "$GKX" --dir "$P" card && contains "$T/b.out" "[api] colour: unknown key" &&
    grep -qE 'gkx.conf line [0-9]+' "$T/b.out"
}
ok "an unknown config key is refused with its line" t_bad_config

t_bad_role() { run 2 "$T/b.out" "$GKX" init --dir "$T/x" --role mayor --name X && contains "$T/b.out" "advertiser or publisher"; }
ok "init refuses an unknown role" t_bad_role

t_bad_listen() {
    run 2 "$T/b.out" "$GKX" init --dir "$T/y" --role publisher --name Y --listen http://x:1 &&
    contains "$T/b.out" "tcp://host:port" && [ ! -e "$T/y" ]
}
ok "init refuses a bad endpoint and writes nothing" t_bad_listen

t_bad_api() { run 2 "$T/b.out" "$GKX" init --dir "$T/y" --role publisher --name Y --api 8080 && contains "$T/b.out" "HOST:PORT" && [ ! -e "$T/y" ]; }
ok "init refuses a bad API address and writes nothing" t_bad_api

t_log_list() { run 0 "$T/l.out" "$GKX" --dir "$A" log list && contains "$T/l.out" "PARTNERSHIP" && run 0 "$T/l.json" "$GKX" --dir "$A" log list --json && contains "$T/l.json" "[]"; }
ok "log list on an empty store, table and --json" t_log_list

t_log_export_unknown() {
    run 1 "$T/x.out" "$GKX" --dir "$A" log export "$(printf '%064d' 0)" "$T/x.log" &&
    contains "$T/x.out" "no such partnership" && [ ! -e "$T/x.log" ]
}
ok "exporting an unknown partnership fails and writes nothing" t_log_export_unknown

t_audit_usage() { run 2 "$T/a.out" "$GKX_AUDIT" && contains "$T/a.out" "usage: gkx-audit verify"; }
ok "gkx-audit without arguments prints usage, exit 2" t_audit_usage

t_audit_missing() { run 1 "$T/a.out" "$GKX_AUDIT" verify "$T/none.log" && contains "$T/a.out" "No such file"; }
ok "gkx-audit names a missing file" t_audit_missing

t_audit_not_export() {
    echo "hello" >"$T/junk.log"
    run 1 "$T/a.out" "$GKX_AUDIT" verify "$T/junk.log" && contains "$T/a.out" "not a gokart-exchange log export"
}
ok "gkx-audit refuses a file that is not an export" t_audit_not_export

# gkxd_stops_on SIGNAL: starts gkxd, waits for "ready", sends SIGNAL, expects exit 0.
gkxd_stops_on() {
    "$GKXD" --dir "$A" 2>"$T/d.err" &
    local pid=$!
    _pids+=($pid)
    wait_for 10 grep -q "ready" "$T/d.err" || { cat "$T/d.err"; return 1; }
    kill -"$1" $pid
    wait $pid
    local status=$?
    [ $status -eq 0 ] && contains "$T/d.err" "stopping" && ! grep -q "$(tail -c 40 "$A/secret.key" | head -c 20)" "$T/d.err"
}
ok "gkxd starts, says ready, stops on SIGTERM with status 0" gkxd_stops_on TERM
ok "gkxd stops on SIGINT with status 0 too" gkxd_stops_on INT

finish
