#!/usr/bin/env bash
# test_many_partnerships - one advertiser shares many offers with one publisher, which is stopped
# while the advertiser takes conversions in every partnership: more entries than the per-peer
# budget lets out at once (4,096, docs/protocol.md "Pump"), so on the publisher's restart most
# partnerships wait in the budget's queue and the publisher ingests many peers' messages
# together. Every conversion must arrive, once; the reports must agree; the publisher's acks
# stay few (a bound, not a count: entries that reach it in many pieces spread over time make an
# ack each, which bench/footprint --full shows at 10,000 partnerships; at this size the whole
# catch-up takes seconds, so pieces and whole batches give about the same acks).
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 5

PY=/usr/bin/python3
# Under valgrind (lib.sh) the load is GKX_LOAD_DIVISOR times smaller, and no longer fills the
# budget; the paths it takes are still checked.
PARTNERSHIPS=$(scaled 100)
PER=50
TOTAL=$((PARTNERSHIPS * PER))
OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"}}'

# held NAME: the partnerships NAME's node holds (GET /v1/status).
held() { api "$1" GET /v1/status | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["partnerships"]["total"])'; }
holds_all() { [ "$(held "$1")" = "$PARTNERSHIPS" ]; }

# approved NAME: gkx_conversions_total{status="approved"} on NAME's /metrics.
approved() { api "$1" GET /metrics | awk -F' ' '/^gkx_conversions_total\{status="approved"\}/ {print $2}'; }
approved_all() { [ "$(approved "$1")" = "$TOTAL" ]; }

t_share() {
    node_init a advertiser && node_init p publisher && node_start a && node_start p &&
    peer a p && peer p a || return 1
    local publisher; publisher=$(card_id p)
    for _ in $(seq "$PARTNERSHIPS"); do
        api a POST /v1/partnerships "{\"publisher\": \"$publisher\", \"offer\": $OFFER}" |
            "$PY" -c 'import json, sys; print(json.load(sys.stdin)["id"])' >>"$T/pids" || return 1
    done
    [ "$(sort -u "$T/pids" | wc -l)" = "$PARTNERSHIPS" ] && wait_for 30 holds_all p
}
ok "the advertiser shares $PARTNERSHIPS offers with the publisher; the publisher holds them all" t_share

t_flood() {
    node_stop p || return 1
    local listen token
    listen=$(awk -F' = ' '/^\[/ {s = ($0 == "[postback]")} s && $1 == "listen" {print $2; exit}' "$T/a/gkx.conf")
    token=$(cat "$T/a/postback.token")
    "$PY" - "http://$listen/postback/appsflyer" "$token" "$PER" "$T/pids" <<'PY'
import concurrent.futures, datetime, json, sys, urllib.parse, urllib.request
url, token, per, pids = sys.argv[1], sys.argv[2], int(sys.argv[3]), open(sys.argv[4]).read().split()
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def send(job):
    pid, n = job
    query = urllib.parse.urlencode({"p": pid[:16], "t": token, "clickid": "c-%s-%d" % (pid[:8], n),
                                    "appsflyer_id": "af-%s-%d" % (pid[:8], n), "event_name": "install",
                                    "event_time": now, "country_code": "US", "platform": "ios"})
    with urllib.request.urlopen(url + "?" + query, timeout=30) as answer:
        body = json.load(answer)
        assert answer.status == 200 and body["status"] == "approved" and not body["duplicate"], body
# Round robin over the partnerships, as a busy advertiser's traffic arrives.
jobs = [(pid, n) for n in range(per) for pid in pids]
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(send, jobs))
PY
    [ "$(approved a)" = "$TOTAL" ]
}
ok "with the publisher stopped, $TOTAL postbacks round robin over them: every one approved" t_flood

t_catch_up() {
    node_start p && wait_for 120 approved_all p &&
    local digest_a digest_p
    digest_a=$("$GKX" --dir "$T/a" report --digest) && digest_p=$("$GKX" --dir "$T/p" report --digest) &&
    [ -n "$digest_a" ] && [ "$digest_a" = "$digest_p" ] ||
        { echo "approved on p: $(approved p) of $TOTAL; digests '$digest_a' '$digest_p'"; return 1; }
}
ok "the publisher restarted holds all $TOTAL; the reports over every partnership have one digest" t_catch_up

# chains NAME: "ADVERTISER_SEQ PUBLISHER_SEQ" of every partnership, as NAME's API lists them.
chains() {
    api "$1" GET /v1/partnerships | "$PY" -c '
import json, sys
for p in json.load(sys.stdin)["partnerships"]:
    print(p["heads"]["advertiser_seq"], p["heads"]["publisher_seq"])'
}
# acked_all NAME: every advertiser entry is acknowledged in NAME's view (the publisher's head
# cross-links the advertiser's last seq), so the publisher has written its last acks.
acked_all() {
    api "$1" GET /v1/partnerships | "$PY" -c '
import json, sys
ps = json.load(sys.stdin)["partnerships"]
assert ps and all(p["heads"]["advertiser_acked_seq"] == p["heads"]["advertiser_seq"] for p in ps)'
}

t_acks() {
    wait_for 30 acked_all p || { echo "not all acknowledged"; return 1; }
    chains p >"$T/chains.p" && chains a >"$T/chains.a" &&
    "$PY" - "$T/chains.p" "$T/chains.a" "$PER" <<'PY'
import sys
per = int(sys.argv[3])
for path in sys.argv[1:3]:
    rows = [tuple(map(int, line.split())) for line in open(path)]
    # The advertiser's chain: the genesis and its conversions.
    assert all(adv == 1 + per for adv, _ in rows), (path, [r for r in rows if r[0] != 1 + per][:3])
p = [pub for _, pub in (tuple(map(int, l.split())) for l in open(sys.argv[1]))]
# The publisher's chain: the ack of the genesis, then an ack of what arrived while it caught up.
# Entries sent in pieces meant an ack for nearly each piece: 50 conversions, up to 50 acks.
open(sys.argv[1] + ".figures", "w").write(
    "# figures: {\"partnerships\": %d, \"conversions\": %d, \"publisher_entries_max\": %d, "
    "\"publisher_entries_total\": %d}\n" % (len(p), len(p) * per, max(p), sum(p)))
assert max(p) <= 4, ("acks per partnership", max(p))
PY
}
ok "every conversion acknowledged, with at most 4 acks per partnership on the publisher" t_acks
cat "$T/chains.p.figures" 2>/dev/null

t_stop() { node_stop a && node_stop p; }
ok "both nodes stop on SIGTERM with status 0" t_stop

finish
