#!/usr/bin/env bash
# test_hostile_peers - a peer that speaks the replication protocol attacks an honest node: forged
# signatures, entries of another author, entries of a partnership it is not in, gaps, replays, a
# forged "ahead" claim, oversized and truncated frames, a hello flood and an equivocating pair.
# Each is refused and counted by its GKX_E* reason; the equivocation leaves evidence and freezes
# the partnership; the claim stops appends for a bounded time only; and the node serves its
# other partnership, with another honest peer, after every attack and during the flood.
# Part of gokart-exchange; MIT licence.
#
# Nodes: a, the honest advertiser under attack; p, the hostile publisher (its node directory is
# the attacker's toolbox: the real gkx signs its entries, and a copy of it, edited differently,
# signs the equivocating one; while the attack runs p is down and hostile_peer.py speaks with
# its keys, and listens where p would, to see what a sends it); q, an honest publisher with a
# partnership of its own with a.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

plan 17

HP=(/usr/bin/python3 "$(dirname "$0")/hostile_peer.py")
ATTACKS=0
SENT=0
OTHER_CHECKS=0
OTHER_WORST_MS=0
OTHER_FAILED=0
FROZEN=false
echo '{}' >"$T/expected"

endpoint_of() { awk -F' = ' '$1 == "listen" {print $2; exit}' "$T/$1/gkx.conf"; }
key_of() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transport_key"])' "$T/$1.card"; }
new_pid() {
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
now_ms() { date +%s%3N; }

# hostile AS ATTACK ARGS...: hostile_peer.py ATTACK at a's port with AS's transport key
# ("-" for a fresh key); adds the messages it sent to SENT.
hostile() {
    local as=$1 mode=$2; shift 2
    local kd=$T/$as
    [ "$as" = - ] && kd=-
    "${HP[@]}" "$mode" "$(endpoint_of a)" "$(key_of a)" "$kd" "$@" >"$T/hp.out" || return 1
    local n; n=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$T/hp.out") || return 1
    SENT=$((SENT + n))
}

# expect KEY N...: the counters a must show, over the baseline, grow by N for KEY (a GKX_E*
# reason, "bad_frames", "duplicates" or "entries_ingested").
expect() {
    /usr/bin/python3 - "$T/expected" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
want = json.load(open(path))
for key, n in zip(args[::2], args[1::2]):
    want[key] = want.get(key, 0) + int(n)
json.dump(want, open(path, "w"))
PY
}

# counted: a's status shows exactly the refusals and bad frames expected over the baseline (no
# other reason), and at least the duplicates and ingested entries expected.
counted() {
    api a GET /v1/status >"$T/status.now" && /usr/bin/python3 - "$T/base" "$T/status.now" "$T/expected" <<'PY'
import json, sys
base, now = (json.load(open(p))["replication"] for p in sys.argv[1:3])
want = json.load(open(sys.argv[3]))
exact = {k: v for k, v in want.items() if k.startswith("GKX_E") or k == "bad_frames"}
for code in set(base["refused"]) | set(now["refused"]) | {k for k in exact if k.startswith("GKX_E")}:
    got = now["refused"].get(code, 0) - base["refused"].get(code, 0)
    assert got == exact.get(code, 0), (code, got, exact.get(code, 0))
assert now["bad_frames"] - base["bad_frames"] == exact.get("bad_frames", 0), now["bad_frames"]
for k in ("duplicates", "entries_ingested"):
    assert now[k] - base[k] >= want.get(k, 0), (k, now[k] - base[k], want.get(k, 0))
PY
}

# metrics_agree: /metrics shows the same refusals by reason as the status.
metrics_agree() {
    api a GET /v1/status >"$T/status.now" && api a GET /metrics >"$T/metrics.now" &&
    /usr/bin/python3 - "$T/status.now" "$T/metrics.now" <<'PY'
import json, re, sys
refused = json.load(open(sys.argv[1]))["replication"]["refused"]
samples = dict(re.findall(r'^gkx_entries_refused_total\{reason="(\w+)"\} (\S+)$', open(sys.argv[2]).read(), re.M))
for code, n in refused.items():
    assert float(samples.get(code, -1)) == n, (code, n, samples.get(code))
PY
}

# other_serves: an edit of the a-q partnership, from a or q in turn, reaches the other side.
other_serves() {
    local who=a other=q start
    [ $((OTHER_CHECKS % 2)) -eq 1 ] && who=q other=a
    start=$(now_ms)
    edit "$who" "$PID_AQ" "caps.daily=$((1000 + OTHER_CHECKS))" &&
        wait_for 10 same_digest a q "$PID_AQ" || { OTHER_FAILED=$((OTHER_FAILED + 1)); return 1; }
    local took=$(($(now_ms) - start))
    [ "$took" -gt "$OTHER_WORST_MS" ] && OTHER_WORST_MS=$took
    OTHER_CHECKS=$((OTHER_CHECKS + 1))
    kill -0 "$(node_pid a)" && api a GET /v1/status | grep -q '"role"'
}

# attack: one more attack; its refusals are counted exactly, and the other partnership serves.
attack_done() {
    ATTACKS=$((ATTACKS + 1))
    wait_for 10 counted || { counted; return 1; }
    other_serves
}

OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"},
        "targeting": {"countries": ["US", "CA"], "platforms": ["ios"]}}'

# same_heads PID: a and p hold the same heads of the partnership.
same_heads() { [ "$(heads a "$1")" = "$(heads p "$1")" ]; }

t_setup() {
    node_init a advertiser && node_init p publisher && node_init q publisher &&
    node_start a && node_start p && node_start q &&
    peer a p && peer p a && peer a q && peer q a &&
    PID=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id p)\", \"offer\": $OFFER}" | new_pid) &&
    PID_AQ=$(api a POST /v1/partnerships "{\"publisher\": \"$(card_id q)\", \"offer\": $OFFER}" | new_pid) &&
    wait_for 10 same_digest a p "$PID" && wait_for 10 same_digest a q "$PID_AQ" &&
    edit a "$PID" payout.amount=3.00 && edit p "$PID" caps.daily=50 && wait_for 10 same_digest a p "$PID" &&
    edit q "$PID_AQ" caps.daily=60 && wait_for 10 same_digest a q "$PID_AQ" &&
    echo "$PID $PID_AQ" >"$T/pids"
}
ok "setup: a shares one offer with p and one with q; edits replicate both ways" t_setup
read -r PID PID_AQ <"$T/pids"

read_seqs() {
    /usr/bin/python3 - "$@" <<'PY'
import sys, msgpack
def chain(path):
    data = open(path, "rb").read()
    u = msgpack.Unpacker(raw=True); u.feed(data)
    header = u.unpack(); out = {}; start = u.tell()
    for _ in u:
        end = u.tell(); e = data[start:end]; start = end
        f = msgpack.unpackb(e, raw=True)
        if f[2] == header[b"publisher"]:
            out.setdefault(f[3], e)
    return out
real, fork = chain(sys.argv[1]), chain(sys.argv[2])
held = int(sys.argv[3])
first = min(s for s in fork if real.get(s) != fork[s])
print(held, first, max(real))
PY
}

# The attacker's material, made with the real tools while a is down: p's next entries (a has
# not seen them), and a copy of p's directory that signs a different entry at the same seq.
t_material() {
    wait_for 10 same_heads "$PID" && node_stop p && node_stop a &&
    cp -a "$T/p" "$T/p.fork" &&
    node_start p && edit p "$PID" payout.amount=7.00 && edit p "$PID" caps.daily=70 && node_stop p &&
    "$GKX" --dir "$T/p" log export "$PID" "$T/p.export" >/dev/null &&
    mv "$T/p" "$T/p.real" && mv "$T/p.fork" "$T/p" &&
    node_start p && edit p "$PID" payout.amount=8.00 && node_stop p &&
    "$GKX" --dir "$T/p" log export "$PID" "$T/fork.export" >/dev/null &&
    mv "$T/p" "$T/p.fork" && mv "$T/p.real" "$T/p" &&
    "$GKX" --dir "$T/q" log export "$PID_AQ" "$T/aq.export" >/dev/null &&
    read_seqs "$T/p.export" "$T/fork.export" "$(heads a "$PID" | cut -d' ' -f2)" >"$T/seqs" &&
    read -r N F LAST <"$T/seqs" && [ "$F" -gt "$N" ] && [ "$LAST" -ge $((N + 2)) ] &&
    node_start a && spawn "${HP[@]}" listen "$(endpoint_of p)" "$T/p" "$T/listen.json" &&
    LISTENER=${_pids[-1]} && wait_for 10 test -s "$T/listen.json" &&
    other_serves && api a GET /v1/status >"$T/base" && api q GET /v1/status >"$T/base.q"
}
ok "material: p's next entries and an equivocating copy, signed by the real gkx while a is down" t_material
read -r N F LAST <"$T/seqs"

# a's log of the partnership as a holds it now (what a forged entry builds on).
a_export() { "$GKX" --dir "$T/a" log export "$PID" "$T/a.export" >/dev/null; }

# The claim stops a's appends (a node restored from an old copy must take its entries back
# before it signs another), but p never backs it with the entries it names: after 10 s a
# drops it and appends again, and drops p's next claim at once.
t_claim() {
    a_export && local start; start=$(now_ms) &&
    hostile p forge "$T/p" "$T/a.export" p --seen-ahead 1000 && expect GKX_EAHEAD 1 &&
    wait_for 10 counted &&
    api a PATCH "/v1/partnerships/$PID/offer" '{"edits": ["caps.daily=71"]}' >"$T/claim.out" &&
    contains "$T/claim.out" catching_up && attack_done &&
    wait_for 30 edit a "$PID" caps.daily=72 &&
    local blocked=$(($(now_ms) - start)) && echo "appends stopped for $blocked ms" &&
    [ "$blocked" -ge 9000 ] && echo "$blocked" >"$T/blocked" &&
    grep -q "claim to hold our entries up to seq .* was not backed" "$T/a.log" &&
    a_export && hostile p forge "$T/p" "$T/a.export" p --seen-ahead 5 && expect GKX_EAHEAD 1 &&
    wait_for 10 counted && edit a "$PID" caps.daily=73 && attack_done
}
ok "a forged 'ahead' claim (p has seen 1000 entries of a's chain that do not exist): GKX_EAHEAD; a's appends wait 10 s, then go on; p's next claim stops nothing" t_claim

t_forged_signature() {
    hostile p entries "$T/p.export" "p:$((N + 1))" --flip && expect GKX_ESIGNATURE 1 && attack_done
}
ok "p's real next entry with one signature byte flipped: refused GKX_ESIGNATURE" t_forged_signature

t_other_author() {
    # q's own entries, sent on p's connection; an entry of the a-p partnership signed by q
    # (not a member), sent on p's connection and on q's.
    hostile p entries "$T/aq.export" p:1 && expect GKX_ENOTMEMBER 1 &&
    a_export && hostile p forge "$T/q" "$T/a.export" p && expect GKX_ENOTMEMBER 1 &&
    hostile q forge "$T/q" "$T/a.export" p && expect GKX_ENOTMEMBER 1 && attack_done
}
ok "entries of another author (q's real entries, an a-p entry signed by q) on p's and q's connections: refused GKX_ENOTMEMBER" t_other_author

t_not_member() {
    # a's own entries of the a-q partnership, an entry of it signed by p, and one of a
    # partnership no one has.
    local count; count=$(/usr/bin/python3 -c '
import sys, msgpack
u = msgpack.Unpacker(raw=True); u.feed(open(sys.argv[1], "rb").read()); h = u.unpack()
print(sum(1 for e in u if e[2] == h[b"advertiser"]))' "$T/aq.export") &&
    hostile p entries "$T/aq.export" "a:1-$count" && expect GKX_ENOTMEMBER "$count" &&
    hostile p forge "$T/p" "$T/aq.export" p && expect GKX_ENOTMEMBER 1 &&
    hostile p forge "$T/p" "$T/a.export" p --pid "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" &&
    expect GKX_ENOTFOUND 1 && attack_done
}
ok "entries of a partnership p is not in (a-q's, signed by a or by p) and of an unknown one: GKX_ENOTMEMBER, GKX_ENOTFOUND" t_not_member

t_no_leak() {
    # Nothing of the a-q partnership ever went to p's address, nor a-p's to q.
    /usr/bin/python3 - "$T/listen.json" "$PID_AQ" <<'PY' &&
import json, sys
seen = json.load(open(sys.argv[1]))
assert sys.argv[2] not in seen["entries"], seen
PY
    api q GET /v1/status >"$T/status.q" && /usr/bin/python3 - "$T/base.q" "$T/status.q" <<'PY'
import json, sys
base, now = (json.load(open(p))["replication"]["refused"] for p in sys.argv[1:3])
assert base == now, (base, now)
PY
}
ok "a never sent p the a-q partnership's entries, nor q the a-p one's, whatever they named" t_no_leak

t_gap() {
    hostile p entries "$T/p.export" "p:$((N + 2))" && expect GKX_EGAP 1 && attack_done
}
ok "p's entry that skips a seq: refused GKX_EGAP" t_gap

t_in_order() {
    hostile p entries "$T/p.export" "p:$((N + 1))-$LAST" --batch && expect entries_ingested $((LAST - N)) &&
    wait_for 10 eval '[ "$(heads a "$PID" | cut -d" " -f2)" = "$LAST" ]' && wait_for 10 counted && other_serves
}
ok "p's real entries in order are taken (so the refusals above were for the damage only)" t_in_order

t_replay() {
    local all; all=$(/usr/bin/python3 -c '
import sys, msgpack
u = msgpack.Unpacker(raw=True); u.feed(open(sys.argv[1], "rb").read()); u.unpack()
print(sum(1 for _ in u))' "$T/p.export") &&
    local before; before=$(heads a "$PID" | cut -d" " -f2,3) &&
    hostile p entries "$T/p.export" all && hostile p entries "$T/p.export" all --batch &&
    expect duplicates $((2 * all)) && attack_done && [ "$(heads a "$PID" | cut -d" " -f2,3)" = "$before" ]
}
ok "replays of every entry, one by one and in one message: duplicates, nothing changes" t_replay

t_malformed() {
    hostile p entries "$T/p.export" "p:1" --cut 40 && expect GKX_EDECODE 1 &&
    a_export && hostile p forge "$T/p" "$T/a.export" p --pad 70000 && expect GKX_ETOOBIG 1 &&
    for what in not-msgpack empty truncated-header count-lies too-many unknown-type; do
        hostile p raw "$what" && expect bad_frames 1 || return 1
    done &&
    attack_done &&
    # A frame over ZMQ_MAXMSGSIZE never reaches the node: ZeroMQ drops it and the
    # connection; the next connection is served as usual.
    hostile p raw oversized && hostile p raw not-msgpack && expect bad_frames 1 && attack_done
}
ok "truncated and oversized entries (GKX_EDECODE, GKX_ETOOBIG), malformed and oversized frames (bad frames)" t_malformed

# resent ENTRIES: entries of the a-p partnership a has sent to p's address so far.
resent() {
    /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["entries"].get(sys.argv[2], 0))' \
        "$T/listen.json" "$PID"
}

t_flood() {
    local before after start took a_chain p_chain
    read -r a_chain p_chain _ < <(heads a "$PID")
    # Under valgrind (lib.sh) the flood is smaller.
    local hellos wide strangers
    hellos=$(scaled 3000) wide=$(scaled 40) strangers=$(scaled 1000)
    sleep 0.2 && before=$(resent) && start=$(now_ms) &&
    {
        "${HP[@]}" flood "$(endpoint_of a)" "$(key_of a)" "$T/p" "$hellos" "$PID" >"$T/flood1.out" &
        local f1=$!
        "${HP[@]}" flood "$(endpoint_of a)" "$(key_of a)" "$T/p" "$wide" "$PID" 4096 >"$T/flood2.out" &
        local f2=$!
        "${HP[@]}" flood "$(endpoint_of a)" "$(key_of a)" - "$strangers" "$PID" >"$T/flood3.out" &
        local f3=$!
        other_serves && other_serves
        local rc=$?
        wait $f1 && wait $f2 && wait $f3 && [ $rc -eq 0 ]
    } && took=$(($(now_ms) - start)) &&
    for f in flood1 flood2 flood3; do
        SENT=$((SENT + $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$T/$f.out")))
    done &&
    expect GKX_ENOTMEMBER "$strangers" && attack_done && sleep 0.3 && after=$(resent) &&
    # A resync is honoured at most every 200 ms, and p's entries are given back (each hello
    # says p holds none of its chain), with a's interleaved, as often: the flood makes a
    # resend the chains only that often, never once per hello.
    echo "resent $((after - before)) entries ($a_chain of a's chain, $p_chain of p's) in $took ms" &&
    [ $((after - before)) -le $(((2 * a_chain + p_chain) * (took / 200 + 3))) ] &&
    echo "$((after - before)) $took" >"$T/flood"
}
ok "a flood of 4,040 hellos from p (some naming 4,096 partnerships) and 1,000 from a stranger (GKX_ENOTMEMBER): a resends its chain at most every 200 ms and serves q meanwhile" t_flood


t_equivocation() {
    hostile p entries "$T/fork.export" "p:$F" && expect GKX_EEQUIVOCATION 1 &&
    wait_for 10 eval '[ "$(heads a "$PID" | cut -d" " -f3)" = frozen ]' &&
    api a GET "/v1/partnerships/$PID" | grep -q '"status": *"frozen"' &&
    api a PATCH "/v1/partnerships/$PID/offer" '{"edits": ["caps.daily=74"]}' | grep -q '"frozen"' &&
    hostile p entries "$T/p.export" "p:$F" && expect GKX_EFROZEN 1 && attack_done && FROZEN=true
}
ok "an equivocating pair (p's entry and its copy's at one seq): GKX_EEQUIVOCATION, the partnership frozen, then GKX_EFROZEN" t_equivocation

t_evidence() {
    "$GKX" --dir "$T/a" log export "$PID" "$T/evidence.export" >/dev/null &&
    "$GKX" --dir "$T/a" log list | grep "$PID" | grep -q frozen &&
    ! "$GKX_AUDIT" verify "$T/evidence.export" >"$T/audit.out" 2>&1 &&
    grep -q "equivocation: the publisher signed two different entries at seq $F" "$T/audit.out" &&
    /usr/bin/python3 - "$T/evidence.export" "$F" <<'PY'
import sys, msgpack
u = msgpack.Unpacker(raw=True); u.feed(open(sys.argv[1], "rb").read()); h = u.unpack()
at = [e for e in u if e[2] == h[b"publisher"] and e[3] == int(sys.argv[2])]
assert len(at) == 3, len(at)   # the chain's entry, then both as evidence
assert len({bytes(msgpack.packb(e)) for e in at}) == 2
PY
}
ok "the evidence: gkx log list shows it frozen, the export holds both entries, gkx-audit names the equivocation" t_evidence

t_metrics() { metrics_agree && other_serves; }
ok "/metrics counts the same refusals by reason as the status; the other partnership still serves" t_metrics

t_figures() {
    api a GET /v1/status >"$T/status.now" &&
    /usr/bin/python3 - "$T/base" "$T/status.now" "$ATTACKS" "$SENT" "$OTHER_CHECKS" "$OTHER_WORST_MS" \
        "$(cat "$T/blocked" 2>/dev/null || echo 0)" "$T/flood" "$FROZEN" "$OTHER_FAILED" \
        "$(cat "$T/restore_ms" 2>/dev/null || echo -1)" <<'PY'
import json, sys
base, now = (json.load(open(p))["replication"] for p in sys.argv[1:3])
attacks, sent, checks, worst, blocked = (int(x) for x in sys.argv[3:8])
resent, flood_ms = (int(x) for x in open(sys.argv[8]).read().split())
frozen, kept = sys.argv[9] == "true", sys.argv[10] == "0" and checks > 0
restore_ms = int(sys.argv[11])
refused = {k: v - base["refused"].get(k, 0) for k, v in sorted(now["refused"].items())}
refused = {k: v for k, v in refused.items() if v}
fig = {"suite": "hostile_peers", "attacks": attacks, "messages_sent": sent, "refused": refused,
       "bad_frames": now["bad_frames"] - base["bad_frames"],
       "duplicates": now["duplicates"] - base["duplicates"],
       "frozen_on_equivocation": frozen, "ahead_claim_blocked_ms": blocked,
       "flood_resent_entries": resent, "flood_ms": flood_ms,
       "other_partnership_checks": checks, "other_partnership_worst_ms": worst,
       "other_partnership_kept_serving": kept, "honest_restore_300_ms": restore_ms}
print("# figures: " + json.dumps(fig))
PY
}
# The give-back a flood cannot abuse still serves an honest restore: q, restored from a copy
# older than its last 300 entries, gets them back from a (two windows, with a's interleaved),
# then writes on without equivocating.
t_restore() {
    node_stop q && cp -a "$T/q" "$T/q.bak" && node_start q &&
    for i in $(seq 1 "$(scaled 300)"); do edit q "$PID_AQ" "caps.daily=$((2000 + i))" || return 1; done &&
    wait_for 20 same_digest a q "$PID_AQ" &&
    local want; want=$(heads a "$PID_AQ" | cut -d' ' -f2) &&
    node_stop q && rm -rf "$T/q" && mv "$T/q.bak" "$T/q" && local start; start=$(now_ms) &&
    node_start q && wait_for 20 eval '[ "$(heads q "$PID_AQ" | cut -d" " -f2)" = "$want" ]' &&
    echo "q took back $want entries in $(($(now_ms) - start)) ms" &&
    echo "$(($(now_ms) - start))" >"$T/restore_ms" &&
    edit q "$PID_AQ" caps.daily=9999 && wait_for 10 same_digest a q "$PID_AQ" &&
    [ "$(heads a "$PID_AQ" | cut -d' ' -f3)" = open ] && [ "$(heads q "$PID_AQ" | cut -d' ' -f3)" = open ]
}
ok "an honest restore still works: q takes back its last 300 entries from a and writes on, no equivocation" t_restore

t_figures >"$T/figures"
t_stop() { kill -TERM "$LISTENER" && wait "$LISTENER"; node_stop q && node_stop a; }
ok "a and q stop on SIGTERM with status 0" t_stop

cat "$T/figures"

finish
