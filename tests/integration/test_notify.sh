#!/usr/bin/env bash
# test_notify - e-mail about every change the other side makes (issue 6, docs/notifications.md):
# a publisher node with [smtp] and [notify] mails its tenant through a real SMTP server on
# loopback (smtp_sink.py, aiosmtpd): an advertiser's edit gives one e-mail naming the field, the
# old and new value and the author; three edits within the window give one e-mail; with the
# server down for a while, then up, each message arrives once. gkx notifications shows the outbox.
# Part of gokart-exchange; MIT licence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nodes.sh"

PY=/usr/bin/python3
SINK="$(dirname "$0")/smtp_sink.py"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    echo "1..0 # SKIP python3-aiosmtpd is not installed (scripts/deps installs it)"
    exit 0
fi

plan 8
# The sink's port: chosen by the first sink_start, kept by the next ones.
SMTP_PORT=0
MAIL="$T/mail"
TO=pixel-ops@pixel.example
FROM=gkx@pixel.example
# Under valgrind three edits (one of them a gkx call) take longer than 2 s: a longer window.
WINDOW=$((GKX_TIME_SCALE > 1 ? 10 : 2))
# Set by the cases, read by later ones (empty while an earlier case has failed).
PID="" SHORT=""

OFFER='{"name": "Puzzle Quest iOS US", "payout": {"model": "cpi", "amount": "2.50", "currency": "USD"}}'

# sink_start: runs the SMTP sink on SMTP_PORT (a free port the first time, then the same one);
# waits until it answers.
sink_start() {
    rm -f "$T/sink.port"
    "$PY" "$SINK" serve --out "$MAIL" --port "$SMTP_PORT" --port-file "$T/sink.port" \
        2>>"$T/sink.log" &
    local pid=$!
    _pids+=("$pid")
    echo "$pid" >"$T/sink.pid"
    wait_for 10 test -s "$T/sink.port" && SMTP_PORT=$(cat "$T/sink.port")
}

# sink_stop: ends the sink and waits for it.
sink_stop() {
    local pid; pid=$(cat "$T/sink.pid")
    kill -TERM "$pid" && { wait "$pid"; true; }
}

# notify_config NAME: NAME mails TO through the sink, changes of WINDOW seconds in one message.
notify_config() {
    printf '\n[smtp]\nurl = smtp://127.0.0.1:%s\nfrom = %s\n[notify]\nto = %s\nwindow_seconds = %s\n' \
        "$SMTP_PORT" "$FROM" "$TO" "$WINDOW" >>"$T/$1/gkx.conf"
}

# mails: the messages the sink holds (smtp_sink.py show) into $T/mails.json; prints how many.
mails() { "$PY" "$SINK" show "$MAIL" >"$T/mails.json" && json "$T/mails.json" 'len(j)'; }

# mail_count N: the sink holds N messages (or more).
mail_count() { [ "$(mails)" -ge "$1" ]; }

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as j), prints it.
json() {
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# outbox EXPR: evaluates a Python expression over gkx notifications --json (as rows), prints it.
outbox() {
    "$GKX" --dir "$T/pixel" notifications --limit 1000 --json >"$T/outbox.json" &&
    json "$T/outbox.json" "(lambda rows: $1)(j)"
}

# check_mail INDEX PYTHON: runs PYTHON with m = the sink's message INDEX (0 is the oldest) and
# its text and html parts; an assert that fails prints what it saw.
check_mail() {
    "$PY" - "$T/mails.json" "$1" "$PID" "$TO" "$FROM" <<PY
import json, sys
mails = json.load(open(sys.argv[1]))
m = mails[int(sys.argv[2])]
pid, to, sender = sys.argv[3], sys.argv[4], sys.argv[5]
text, html = m["text"], m["html"]
assert m["rcpt_tos"] == [to] and m["mail_from"] == sender, m
assert to in m["to"] and sender in m["from"] and "pixel" in m["from"], (m["to"], m["from"])
assert m["content_type"] == "multipart/alternative", m["content_type"]
assert text and html and pid in text and pid in html, m
assert "Puzzle Quest iOS US (%s)" % pid[:16] in m["subject"] and "acme" in m["subject"], m["subject"]
$2
PY
}

t_setup() {
    sink_start &&
    node_init acme advertiser && node_init pixel publisher && notify_config pixel &&
    node_start acme && node_start pixel && peer acme pixel && peer pixel acme &&
    echo "$OFFER" >"$T/offer.json" &&
    PID=$("$GKX" --dir "$T/acme" share --publisher "$(card_id pixel)" --offer "$T/offer.json") &&
    [[ "$PID" =~ ^[0-9a-f]{64}$ ]] && SHORT=${PID:0:16} && wait_for 10 same_digest acme pixel "$PID" &&
    wait_for 15 mail_count 1 && [ "$(mails)" -eq 1 ] &&
    check_mail 0 '
assert m["subject"].startswith("[gkx] New partnership: "), m["subject"]
assert "acme (advertiser): shared 1 new offer with you." in text, text
assert "new partnership: the offer \"Puzzle Quest iOS US\", payout 2.50 USD (cpi)" in text, text'
}
ok "a publisher with [smtp] and [notify], an advertiser, a shared offer: one e-mail, the new partnership" \
    t_setup

t_one_edit() {
    edit acme "$PID" payout.amount=2.75 && wait_for 15 mail_count 2 && sleep $((WINDOW + 1)) &&
    [ "$(mails)" -eq 2 ] &&
    check_mail 1 '
assert m["subject"].endswith(": 1 change by acme"), m["subject"]
assert "* payout.amount: 2.50 -> 2.75\n  by acme, " in text, text
assert "<td><code>payout.amount</code></td><td>2.50</td><td>2.75</td><td>acme</td>" in html, html
assert m["message_id"].startswith("<gkx.") and m["message_id"].endswith("@pixel.example>"), m'
}
ok "an advertiser's edit: one e-mail to [notify] to naming the field, old and new value, the author" \
    t_one_edit

t_three_edits() {
    edit acme "$PID" payout.amount=3.00 && edit acme "$PID" caps.daily=100 &&
    "$GKX" --dir "$T/acme" pause "$PID" >/dev/null &&
    wait_for 15 mail_count 3 && sleep $((WINDOW + 2)) && [ "$(mails)" -eq 3 ] &&
    check_mail 2 '
assert m["subject"].endswith(": 3 changes by acme"), m["subject"]
assert "acme (advertiser): changed payout.amount, caps.daily; paused the offer." in text, text
changes = [line for line in text.splitlines() if line.startswith("* ")]
assert changes == ["* payout.amount: 2.75 -> 3.00", "* caps.daily: (none) -> 100",
                   "* status: active -> paused"], changes'
}
ok "three edits within the window: one e-mail listing all three" t_three_edits

# failing: the outbox's newest message has failed at least once, with the SMTP error.
failing() {
    local newest='rows[0]["state"] == "failed" and rows[0]["attempts"] >= 1 and bool(rows[0]["last_error"])'
    [ "$(outbox "$newest")" = True ]
}

# Set by t_server_down: the messages the outbox holds once the server is back.
TOTAL=""

t_server_down() {
    sink_stop && "$GKX" --dir "$T/acme" resume "$PID" >/dev/null && wait_for 15 failing &&
    outbox 'rows[0]["last_error"]' >"$T/error.txt" &&
    edit acme "$PID" payout.amount=3.50 && wait_for 15 eval '[ "$(outbox "len(rows)")" -eq 5 ]' &&
    sleep 2 && sink_start && TOTAL=5 &&
    wait_for 40 mail_count "$TOTAL" && sleep $((WINDOW + 2)) && [ "$(mails)" -eq "$TOTAL" ] &&
    "$PY" - "$T/mails.json" <<'PY' &&
import json, sys
mails = json.load(open(sys.argv[1]))
ids = [m["message_id"] for m in mails]
assert len(set(ids)) == len(ids), ids
# The two late messages, in the order their retries came (back-offs differ).
late = sorted(m["text"] for m in mails[3:])
assert len(late) == 2, late
assert "* payout.amount: 3.00 -> 3.50" in late[0], late[0]
assert "* status: paused -> active" in late[1] and "resumed the offer" in late[1], late[1]
PY
    cat "$T/error.txt"
}
ok "the SMTP server down for a while, then up: each message arrives once" t_server_down

t_outbox_json() {
    "$PY" - "$T/outbox.json" "$PID" "$TO" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
pid, to = sys.argv[2], sys.argv[3]
keys = {"id", "partnership", "subject", "to", "changes", "state", "attempts", "last_error",
        "queued", "next_attempt", "sent"}
assert [r["id"] for r in rows] == [5, 4, 3, 2, 1], "not newest first"
assert [r["changes"] for r in rows] == [1, 1, 3, 1, 1], [r["changes"] for r in rows]
for r in rows:
    assert set(r) == keys, r
    assert r["partnership"] == pid and r["to"] == [to], r
    assert r["state"] == "sent" and r["sent"] and r["next_attempt"] is None, r
    assert r["last_error"] is None and r["attempts"] >= 1 and r["queued"] <= r["sent"], r
assert all(r["attempts"] == 1 for r in rows[2:]), rows
assert all(r["attempts"] >= 2 for r in rows[:2]), rows
PY
}
ok "gkx notifications --json: every message sent, newest first, the late ones after several attempts" \
    eval 'outbox "len(rows)" >/dev/null && t_outbox_json'

t_outbox_table() {
    run 0 "$T/outbox.txt" "$GKX" --dir "$T/pixel" notifications --limit 3 &&
    contains "$T/outbox.txt" "SUBJECT" && contains "$T/outbox.txt" "sent 20" &&
    [ "$(grep -c "^[0-9]" "$T/outbox.txt")" -eq 3 ] &&
    run 0 "$T/empty.txt" "$GKX" --dir "$T/acme" notifications &&
    contains "$T/empty.txt" "no e-mail notifications"
}
ok "gkx notifications: the table; an advertiser without [smtp] has an empty outbox" t_outbox_table

t_restart() {
    node_stop pixel && node_start pixel && edit acme "$PID" caps.daily=200 &&
    wait_for 15 mail_count $((TOTAL + 1)) && sleep $((WINDOW + 1)) &&
    [ "$(mails)" -eq $((TOTAL + 1)) ] &&
    check_mail "$TOTAL" 'assert "* caps.daily: 100 -> 200" in text, text'
}
ok "after a restart of the publisher's node, nothing is sent again and new changes still are" t_restart

t_stop() { node_stop pixel && node_stop acme && sink_stop; }
ok "both nodes stop cleanly (exit 0) with the e-mail thread running" t_stop

finish
