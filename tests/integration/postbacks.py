#!/usr/bin/python3
"""postbacks - a load generator and checker for the advertiser node's MMP postback endpoint.

Part of gokart-exchange; MIT licence.

usage: postbacks.py --url BASE --short SHORT_ID --token TOKEN [--count N] [--mmp appsflyer,adjust]
                    [--events install,purchase] [--retries FRACTION] [--invalid FRACTION]
                    [--concurrency N] [--seed N] [--timeout S] [--tolerate-errors]
                    [--out FILE] [--log FILE]
       postbacks.py --url BASE --short SHORT_ID --token TOKEN --resend LOG
                    [--resend-acknowledged N] [--concurrency N] [--out FILE]

Builds N valid postbacks (--count: distinct conversions) in the AppsFlyer and Adjust formats of
docs/postbacks.md section 4, each with its own transaction id, and sends them with GET to
BASE/appsflyer or BASE/adjust (BASE is what `gkx postback-url` prints before "/MMP?", e.g.
http://127.0.0.1:7702/postback) over keep-alive HTTP/1.1 connections, one per thread. A
fraction of the valid ones (--retries) is sent a second time with the same query, later in the
run, as an MMP's retry; a fraction of N (--invalid) of invalid ones is mixed in: missing click id,
malformed revenue, bad event name, unreplaced macro in a required parameter, wrong token and
unknown short id.

It checks the answers against the contract (notes/contract-5.md): a first send gets 200 with
"duplicate": false and a conversion id of its own; a retry gets 200 with "duplicate": true and
the first send's body; an invalid postback gets 400 "invalid" naming the parameter, 401
"unauthorized" or 404 "not_found" naming the short id. It writes a JSON summary (to --out, else
to stdout): sent, valid_unique, retries, invalid, ok, failures (the first 20, token masked),
conversion_ids (every conversion id a 2xx answer named, in the order first seen), seconds,
per_second, latency_ms {p50, p99}, and counts by status, event, HTTP status and invalid kind.
Exit status 0 when ok, 1 when a check failed, 2 on a usage error.

--tolerate-errors is for crash tests (the node SIGKILLed mid-flood): connection errors and 5xx
answers are counted in "errors" instead of failing the run; every other check still holds, so
a retry answered 2xx after its first send was answered 2xx must still be a duplicate.

--log FILE writes one JSON line per request: index, kind, mmp, event, click id, query (token
masked), HTTP status, answer, ms. --resend LOG then sends again, after the node is back, every
valid postback of that log that no 2xx answer acknowledged: each must get 200 (a duplicate when
the node had committed it before the crash), so that afterwards the node holds exactly one
conversion per valid postback of the first run; --resend-acknowledged N also sends N of the
acknowledged ones again, which must be duplicates of the conversion they were answered with.

bench/conversions imports this file as a module: build_jobs, run, evaluate.
"""
import argparse
import http.client
import json
import random
import re
import sys
import threading
import time
import urllib.parse

MMPS = ("appsflyer", "adjust")
INVALID_KINDS = ("missing_click_id", "bad_revenue", "bad_event", "unreplaced_macro",
                 "wrong_token", "unknown_short_id")
# Real ISO 3166-1 codes: the node checks countries against its table before it signs.
COUNTRIES = ("US", "CA", "GB", "DE", "FR", "JP", "BR", "IN", "AU", "ES")
EVENT_RULE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
STATUSES = ("approved", "pending", "rejected")
FAILURES_KEPT = 20
TEXT_KEPT = 300


class Job:
    """One request to send: its query, what it is for, and (after the run) what came back."""

    __slots__ = ("index", "kind", "mmp", "query", "event", "click_id", "expect", "original",
                 "sampled", "done", "sent_at", "answered_at", "ms", "status", "answer", "raw",
                 "error", "reconnected")

    def __init__(self, kind, mmp, query, event=None, click_id=None, expect=None, original=None):
        self.index = -1
        self.kind = kind            # "valid", "retry", "invalid" or "resend"
        self.mmp = mmp
        self.query = query          # the bytes after "?", already percent-encoded
        self.event = event          # the event the node should answer with (valid ones)
        self.click_id = click_id
        self.expect = expect        # invalid ones: (kind, HTTP status, error code, needle)
        self.original = original    # retries: the valid Job they repeat
        self.sampled = False
        self.done = threading.Event()
        self.sent_at = None         # time.monotonic () when the (last) request was sent
        self.answered_at = None
        self.ms = None
        self.status = None
        self.answer = None          # the JSON answer, or None
        self.raw = None             # the body when it is not JSON
        self.error = None           # connection error text
        self.reconnected = False    # sent again on a new connection after a dropped keep-alive


# ---------------------------------------------------------------- building queries

def enc(value, plus=False):
    """Percent-encodes one value (a space as "+" when plus)."""
    if plus:
        return urllib.parse.quote_plus(value, safe="-._~")
    return urllib.parse.quote(value, safe="-._~")


def join(pairs):
    """Builds a query from (name, value, raw) triples; raw values are sent as they are."""
    out = []
    for name, value, raw in pairs:
        out.append("%s=%s" % (name, value if raw else enc(value)))
    return "&".join(out)


def iso(ts, rng, offset_minutes=None):
    """ISO 8601 forms docs/postbacks.md section 7 accepts, chosen at random."""
    form = rng.randrange(5)
    if offset_minutes is None:
        offset_minutes = rng.choice((0, 120, -300, 330))
    if form == 0:   # AppsFlyer's own: space, milliseconds, no zone
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + ".%03d" % rng.randrange(1000)
    if form == 1:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    local = time.gmtime(ts + offset_minutes * 60)
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    if form == 2:   # +HH:MM with a fraction
        return time.strftime("%Y-%m-%dT%H:%M:%S", local) + ".%06d%s%02d:%02d" % (
            rng.randrange(1000000), sign, hh, mm)
    if form == 3:   # -HHMM
        return time.strftime("%Y-%m-%dT%H:%M:%S", local) + "%s%02d%02d" % (sign, hh, mm)
    return "%d" % (ts * 1000 + rng.randrange(1000))     # Unix milliseconds, 13 digits


def revenue_text(rng):
    """A valid revenue: 0 to 6 decimals."""
    whole = rng.randrange(0, 200)
    form = rng.randrange(4)
    if form == 0:
        return "%d" % whole
    if form == 1:
        return "%d.%d" % (whole, rng.randrange(10))
    if form == 2:
        return "%d.%02d" % (whole, rng.randrange(100))
    return "%d.%06d" % (whole, rng.randrange(1000000))


def click_time(rng, ts):
    """A click time up to a day before the event at ts (never after it, which is refused)."""
    return ts - rng.randint(0, 86400)


class Ids:
    """Unique click ids and MMP transaction ids for one run (a seed gives other ids)."""

    def __init__(self, rng):
        self.tag = "%012d" % rng.randrange(10 ** 12)
        self.hex = "%08x" % rng.getrandbits(32)
        self.n = 0

    def next(self):
        self.n += 1
        return self.n

    def click(self, n):
        return "clk-%s-%d" % (self.hex, n)

    def appsflyer_id(self, n, ts):
        return "%d-%s%07d" % (ts * 1000, self.tag, n)

    def adid(self, n):
        return "%s%024x" % (self.hex, n)


def appsflyer_pairs(rng, ids, short, token, event, ts, currencies, broken=None):
    """The query parameters of an AppsFlyer postback, in the template's order
    (p, t, clickid, appsflyer_id, event_name, event_time, install_unix_ts,
    attributed_touch_time, event_revenue, event_revenue_currency, country_code, platform,
    af_sub1..af_sub5); broken names the invalid kind to build, or None."""
    n = ids.next()
    click = ids.click(n)
    pairs = [("p", short, True), ("t", token, True)]
    if broken == "unreplaced_macro":
        pairs.append(("clickid", "{clickid}", True))
    elif broken != "missing_click_id":
        pairs.append(("clickid", click, False))
    pairs.append(("appsflyer_id", ids.appsflyer_id(n, ts), False))
    if broken == "bad_event":
        pairs.append(("event_name", rng.choice(("Sign Up", "purchase!", "x" * 65, "café")), False))
    elif event == "install":
        form = rng.randrange(3)     # absent, empty (the macro had nothing) or spelled out
        if form == 1:
            pairs.append(("event_name", "", False))
        elif form == 2:
            pairs.append(("event_name", "install", False))
    else:
        pairs.append(("event_name", event, False))
    if event != "install" or rng.random() < 0.3:
        pairs.append(("event_time", iso(ts, rng), False))
    else:
        pairs.append(("event_time", "", False))
    if event == "install" or rng.random() < 0.5:
        pairs.append(("install_unix_ts", "%d" % ts, False))
    form = rng.randrange(4)             # the click time: before the event, or not known
    if form == 0:
        pairs.append(("attributed_touch_time", "{attributed_touch_time}", True))
    elif form == 1:
        pairs.append(("attributed_touch_time", "", False))
    else:
        pairs.append(("attributed_touch_time", iso(click_time(rng, ts), rng), False))
    if broken == "bad_revenue":
        pairs.append(("event_revenue", rng.choice(("4.99.1", "abc", "-0.5", "1.1234567", "1e3",
                                                   "1000000000.000001")), False))
        pairs.append(("event_revenue_currency", "USD", False))
    elif event != "install":
        pairs.append(("event_revenue", revenue_text(rng), False))
        pairs.append(("event_revenue_currency", rng.choice(currencies), False))
    else:
        pairs.append(("event_revenue", "{event_revenue}", True))   # unreplaced optional: ignored
    country = rng.choice(COUNTRIES)
    pairs.append(("country_code", country if rng.random() < 0.7 else country.lower(), False))
    pairs.append(("platform", rng.choice(("ios", "android", "iOS", "Android")), False))
    pairs.append(("af_sub1", "src-%d" % rng.randrange(100), False))
    pairs.append(("af_sub2", "", False))
    pairs.append(("af_sub3", "{af_sub3}", True))
    if rng.random() < 0.3:
        pairs.append(("af_sub4", "banner 300x250", False))
    if rng.random() < 0.2:
        pairs.append(("af_siteid", "site-%d" % rng.randrange(1000), False))   # not read: ignored
    return pairs, click


def adjust_pairs(rng, ids, short, token, event, ts, broken=None):
    """The query parameters of an Adjust postback, in the template's order (p, t, label, adid,
    event_name, activity_kind, created_at, click_time, revenue_usd, country, os_name,
    rejection_reason)."""
    n = ids.next()
    click = ids.click(n)
    pairs = [("p", short, True), ("t", token, True)]
    if broken == "unreplaced_macro":
        pairs.append(("label", "{label}", True))
    elif broken != "missing_click_id":
        pairs.append(("label", click, False))
    pairs.append(("adid", ids.adid(n), False))
    if broken == "bad_event":
        pairs.append(("event_name", rng.choice(("Sign Up", "purchase!", "x" * 65)), False))
        pairs.append(("activity_kind", "event", False))
    elif event in ("install", "reattribution"):
        if rng.random() < 0.3:
            pairs.append(("event_name", "", False))
        pairs.append(("activity_kind", event, False))
    else:
        pairs.append(("event_name", event, False))
        pairs.append(("activity_kind", "event", False))
    created = "%d" % ts if rng.random() < 0.8 else "%d.%d" % (ts, rng.randrange(10))
    pairs.append(("created_at", created, False))
    if rng.random() < 0.7:              # dropped when Adjust does not know it
        pairs.append(("click_time", "%d" % click_time(rng, ts), False))
    if broken == "bad_revenue":
        pairs.append(("revenue_usd", rng.choice(("4.99.1", "abc", "-0.5", "1.1234567", "1,5")),
                      False))
    elif event != "install":
        pairs.append(("revenue_usd", revenue_text(rng), False))
    country = rng.choice(COUNTRIES)
    pairs.append(("country", country.lower(), False))       # Adjust sends lower case
    os_name = rng.choice(("ios", "android", "iphone os"))
    pairs.append(("os_name", enc(os_name, plus=rng.random() < 0.5), True))
    if rng.random() < 0.5:
        pairs.append(("rejection_reason", "", False))
    return pairs, click


def expectation(kind, mmp, short_sent):
    """(kind, HTTP status, error code, text the message must hold) for an invalid kind."""
    click = "clickid" if mmp == "appsflyer" else "label"
    if kind == "missing_click_id":
        return (kind, 400, "invalid", '"%s"' % click)
    if kind == "bad_revenue":
        return (kind, 400, "invalid", '"event_revenue"' if mmp == "appsflyer" else '"revenue_usd"')
    if kind == "bad_event":
        return (kind, 400, "invalid", '"event_name"')
    if kind == "unreplaced_macro":
        return (kind, 400, "invalid", '"%s": macro' % click)
    if kind == "wrong_token":
        return (kind, 401, "unauthorized", None)
    return (kind, 404, "not_found", short_sent)


def build_jobs(rng, short, token, count, mmps=MMPS, events=("install", "purchase"), retries=0.10,
               invalid=0.05, time_back=(0, 3600), now=None, currencies=("USD", "usd"),
               sample_every=0, sample_time=None):
    """The jobs of one run, in sending order: count valid postbacks (event times from now minus
    time_back seconds), about retries * count retries placed after their first sends, and
    about invalid * count invalid ones (every kind in turn). With sample_every > 0, every
    sample_every-th valid postback has the event time sample_time and is marked sampled."""
    now = int(time.time()) if now is None else now
    ids = Ids(rng)
    valid = []
    for i in range(count):
        mmp = rng.choice(mmps)
        event = rng.choice(events)
        sampled = sample_every > 0 and i % sample_every == 0
        ts = sample_time if sampled else now - rng.randint(time_back[0], time_back[1])
        if mmp == "appsflyer":
            pairs, click = appsflyer_pairs(rng, ids, short, token, event, ts, currencies)
        else:
            pairs, click = adjust_pairs(rng, ids, short, token, event, ts)
        job = Job("valid", mmp, join(pairs), event=event, click_id=click)
        job.sampled = sampled
        valid.append(job)
    bad = []
    n_invalid = int(round(count * invalid))
    for i in range(n_invalid):
        kind = INVALID_KINDS[i % len(INVALID_KINDS)]
        mmp = rng.choice(mmps)
        event = rng.choice([e for e in events if e != "install"] or ["purchase"]) \
            if kind == "bad_revenue" else rng.choice(events)
        ts = now - rng.randint(time_back[0], time_back[1])
        short_sent, token_sent = short, token
        if kind == "wrong_token":
            token_sent = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789-_") for _ in range(43))
            if token_sent == token:
                token_sent = "x" + token_sent[1:]
        elif kind == "unknown_short_id":
            while short_sent == short:
                short_sent = "%016x" % rng.getrandbits(64)
        broken = kind if kind in ("missing_click_id", "bad_revenue", "bad_event",
                                  "unreplaced_macro") else None
        if mmp == "appsflyer":
            pairs, _ = appsflyer_pairs(rng, ids, short_sent, token_sent, event, ts, currencies,
                                       broken)
        else:
            pairs, _ = adjust_pairs(rng, ids, short_sent, token_sent, event, ts, broken)
        bad.append(Job("invalid", mmp, join(pairs), expect=expectation(kind, mmp, short_sent)))
    # First sends and invalid ones shuffled together; each retry then goes to a random place
    # after its first send (possibly right behind it, possibly at the very end).
    jobs = valid + bad
    rng.shuffle(jobs)
    for i, job in enumerate(jobs):
        job.index = i
    n = len(jobs)
    keyed = [(float(job.index), job) for job in jobs]
    for original in rng.sample(valid, int(round(count * retries))):
        retry = Job("retry", original.mmp, original.query, event=original.event,
                    click_id=original.click_id, original=original)
        keyed.append((original.index + 0.5 + rng.random() * (n - original.index), retry))
    keyed.sort(key=lambda pair: pair[0])
    jobs = [job for _, job in keyed]
    for i, job in enumerate(jobs):
        job.index = i
    return jobs


# ---------------------------------------------------------------- sending

class Runner:
    """Sends jobs from several threads, each over its own keep-alive connection."""

    def __init__(self, base_url, jobs, concurrency, timeout):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("--url must be http(s)://HOST[:PORT]/PATH without a query: %r"
                             % base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.jobs = jobs
        self.concurrency = concurrency
        self.timeout = timeout
        self.lock = threading.Lock()
        self.next = 0

    def connect(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def take(self):
        with self.lock:
            if self.next >= len(self.jobs):
                return None
            job = self.jobs[self.next]
            self.next += 1
            return job

    def send(self, conn, job):
        """Sends one job and records the answer; returns the connection to go on with."""
        path = "%s/%s?%s" % (self.prefix, job.mmp, job.query)
        retried = False
        while True:
            fresh = conn is None
            if conn is None:
                conn = self.connect()
            job.sent_at = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                # A keep-alive connection the server closed while idle fails on the next
                # request: send once more on a new one (a retry, as far as dedupe goes).
                if not fresh and not retried and isinstance(
                        e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    retried = True
                    job.reconnected = True
                    continue
                job.answered_at = time.monotonic()
                job.ms = (job.answered_at - job.sent_at) * 1000.0
                job.error = "%s: %s" % (type(e).__name__, e)
                break
            job.answered_at = time.monotonic()
            job.ms = (job.answered_at - job.sent_at) * 1000.0
            job.status = response.status
            try:
                job.answer = json.loads(body)
            except ValueError:
                job.raw = body[:TEXT_KEPT].decode("utf-8", "replace")
            if response.will_close:
                conn.close()
                conn = None
            break
        job.done.set()
        return conn

    def worker(self):
        conn = None
        while True:
            job = self.take()
            if job is None:
                break
            if job.original is not None:
                # The first send was taken earlier, so it is in flight or done: a retry never
                # overtakes it (the checks rely on which one the node saw first).
                job.original.done.wait()
            conn = self.send(conn, job)
        if conn is not None:
            conn.close()

    def run(self):
        """Sends every job; returns the seconds from the first send to the last answer."""
        threads = [threading.Thread(target=self.worker, daemon=True)
                   for _ in range(max(1, self.concurrency))]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - start


def run(base_url, jobs, concurrency=16, timeout=30.0):
    """Sends the jobs; returns the seconds the run took."""
    return Runner(base_url, jobs, concurrency, timeout).run()


# ---------------------------------------------------------------- checking

def error_of(job):
    """(code, message) of an error answer, whichever of the two shapes it has."""
    a = job.answer
    if not isinstance(a, dict):
        return None, None
    e = a.get("error")
    if isinstance(e, dict):
        return e.get("code"), e.get("message")
    if isinstance(e, str):
        return e, a.get("message")
    return None, None


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def evaluate(jobs, short, token, tolerate=False, seconds=0.0):
    """Checks every answer; returns the summary (a dict, JSON-ready)."""
    failures = []
    ids = []
    id_owner = {}
    counts = {"statuses": {}, "events": {}, "http_statuses": {}, "invalid_kinds": {}}
    errors = 0
    reconnects = 0

    def bump(table, key):
        counts[table][key] = counts[table].get(key, 0) + 1

    def fail(job, what):
        failures.append({"index": job.index, "kind": job.kind, "mmp": job.mmp, "what": what,
                         "status": job.status, "error": job.error,
                         "answer": job.answer if job.answer is not None else job.raw,
                         "query": job.query.replace(token, "***")[:TEXT_KEPT]})

    for job in jobs:
        if job.reconnected:
            reconnects += 1
        if job.status is not None:
            bump("http_statuses", str(job.status))
        transient = job.error is not None or (job.status is not None and job.status >= 500)
        if transient:
            if tolerate:
                errors += 1
            else:
                fail(job, "no answer" if job.error else "server error")
            continue
        if job.kind == "invalid":
            kind, status, code, needle = job.expect
            bump("invalid_kinds", kind)
            got_code, message = error_of(job)
            if job.status != status:
                fail(job, "%s: expected HTTP %d" % (kind, status))
            elif got_code != code:
                fail(job, "%s: expected error code %r" % (kind, code))
            elif not isinstance(message, str) or not message:
                fail(job, "%s: the error has no message" % kind)
            elif needle is not None and needle not in message:
                fail(job, "%s: the message does not name %s" % (kind, needle))
            elif token in message:
                fail(job, "%s: the message quotes the token" % kind)
            continue
        a = job.answer
        if job.status != 200 or not isinstance(a, dict):
            fail(job, "%s postback: expected 200 with a JSON object" % job.kind)
            continue
        cid = a.get("conversion")
        if not isinstance(cid, str) or not HEX64.match(cid):
            fail(job, "the answer's conversion is not 64 hex digits")
            continue
        if cid not in id_owner:
            ids.append(cid)
        if a.get("status") not in STATUSES:
            fail(job, "status is not one of %s" % ", ".join(STATUSES))
        if a.get("event") != job.event:
            fail(job, "event %r, expected %r" % (a.get("event"), job.event))
        if not isinstance(a.get("partnership"), str) or not a["partnership"].startswith(short):
            fail(job, "the partnership does not start with the short id")
        if job.kind == "resend":
            # Sent again after a crash: committed before it or not, it is one conversion now.
            owner = id_owner.get(cid)
            if owner is not None and owner is not job:
                fail(job, "conversion id already answered for another postback (#%d)" % owner.index)
                continue
            id_owner[cid] = job
            if not isinstance(a.get("duplicate"), bool):
                fail(job, "resend: \"duplicate\" is not a boolean")
            bump("statuses", a.get("status"))
            bump("events", job.event)
            continue
        if job.kind == "valid":
            owner = id_owner.get(cid)
            if owner is not None and owner is not job:
                fail(job, "conversion id already answered for another postback (#%d)" % owner.index)
                continue
            id_owner[cid] = job
            # A first send repeated on a new connection may have been committed the first time.
            if a.get("duplicate") is not False \
                    and not (job.reconnected and a.get("duplicate") is True):
                fail(job, "first send: expected \"duplicate\": false")
                continue
            bump("statuses", a.get("status"))
            bump("events", job.event)
            continue
        # A retry: the first send's body with "duplicate": true, when both were answered.
        original = job.original
        first = original.answer if original.status == 200 and isinstance(original.answer, dict) \
            else None
        if first is None:
            if not tolerate or original.error is None and (original.status or 0) < 500:
                fail(job, "retry of a postback whose first send failed")
                continue
            # The first send's fate is unknown (crash test): either answer is right, but the
            # conversion is one conversion.
            owner = id_owner.get(cid)
            if owner is not None and owner is not original:
                fail(job, "retry answered another postback's conversion (#%d)" % owner.index)
            id_owner[cid] = original
            if a.get("duplicate") is False:
                bump("statuses", a.get("status"))
                bump("events", job.event)
            continue
        if a.get("duplicate") is not True:
            fail(job, "retry: expected \"duplicate\": true")
            continue
        if cid != first.get("conversion"):
            fail(job, "retry: conversion %s, the first send had %s"
                 % (cid, first.get("conversion")))
            continue
        differ = sorted(k for k in set(a) | set(first)
                        if k != "duplicate" and a.get(k) != first.get(k))
        if differ:
            fail(job, "retry: the body differs from the first send's in %s" % ", ".join(differ))

    latencies = [job.ms for job in jobs if job.ms is not None]
    sent = sum(1 for job in jobs if job.sent_at is not None)
    summary = {
        "sent": sent,
        "valid_unique": sum(1 for job in jobs if job.kind == "valid"),
        "retries": sum(1 for job in jobs if job.kind == "retry"),
        "invalid": sum(1 for job in jobs if job.kind == "invalid"),
        "ok": not failures,
        "failures": failures[:FAILURES_KEPT],
        "failure_count": len(failures),
        "errors": errors,
        "reconnects": reconnects,
        "tolerate_errors": tolerate,
        "statuses": counts["statuses"],
        "events": counts["events"],
        "http_statuses": counts["http_statuses"],
        "invalid_kinds": counts["invalid_kinds"],
        "seconds": round(seconds, 3),
        "per_second": round(sent / seconds, 1) if seconds > 0 else None,
        "latency_ms": {"p50": round(percentile(latencies, 50), 3) if latencies else None,
                       "p99": round(percentile(latencies, 99), 3) if latencies else None},
        "conversion_ids": ids,
    }
    return summary


def write_log(path, jobs, token):
    with open(path, "w") as f:
        for job in jobs:
            f.write(json.dumps({"index": job.index, "kind": job.kind, "mmp": job.mmp,
                                "event": job.event, "click_id": job.click_id,
                                "query": job.query.replace(token, "***"), "status": job.status,
                                "answer": job.answer if job.answer is not None else job.raw,
                                "error": job.error, "ms": job.ms}) + "\n")


def resend_jobs(path, token, acknowledged_sample=0):
    """The valid postbacks of a previous run's --log that no 2xx answer acknowledged (neither the
    first send nor its retry), as jobs of kind "resend"; and, spread over the run, up to
    acknowledged_sample first sends that were answered 200, as retries of that answer (they
    must now be duplicates of the same conversion: the dedupe index survived)."""
    firsts = {}
    answered = []
    acknowledged = set()
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record["kind"] == "invalid":
                continue
            query = record["query"].replace("***", token)
            if record["status"] is not None and 200 <= record["status"] < 300:
                acknowledged.add(query)
            if record["kind"] == "valid":
                firsts[query] = record
                if record["status"] == 200 and isinstance(record["answer"], dict):
                    answered.append((query, record))
    jobs = []
    for query, record in firsts.items():
        if query not in acknowledged:
            jobs.append(Job("resend", record["mmp"], query, event=record["event"],
                            click_id=record.get("click_id")))
    step = max(1, len(answered) // acknowledged_sample) if acknowledged_sample > 0 else 0
    for query, record in answered[::step][:acknowledged_sample] if step else []:
        first = Job("valid", record["mmp"], query, event=record["event"])
        first.status = record["status"]
        first.answer = record["answer"]
        first.done.set()
        jobs.append(Job("retry", record["mmp"], query, event=record["event"],
                        click_id=record.get("click_id"), original=first))
    for i, job in enumerate(jobs):
        job.index = i
    return jobs


def fraction(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description="Postback load generator and checker.")
    parser.add_argument("--url", required=True,
                        help="postback base URL, e.g. http://127.0.0.1:7702/postback")
    parser.add_argument("--short", required=True, help="the partnership's short id (p=)")
    parser.add_argument("--token", required=True, help="the node's postback token (t=)")
    parser.add_argument("--count", type=int, default=10000, help="valid distinct postbacks")
    parser.add_argument("--mmp", default="appsflyer,adjust",
                        help="comma-separated: appsflyer, adjust")
    parser.add_argument("--events", default="install,purchase", help="comma-separated event names")
    parser.add_argument("--retries", type=fraction, default=0.10,
                        help="fraction of valid ones sent twice")
    parser.add_argument("--invalid", type=fraction, default=0.05,
                        help="invalid ones, as a fraction of --count")
    parser.add_argument("--concurrency", type=int, default=16, help="threads, one connection each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--tolerate-errors", action="store_true",
                        help="connection errors and 5xx are counted, not failures (crash tests)")
    parser.add_argument("--out", help="write the JSON summary here (else to stdout)")
    parser.add_argument("--log", help="write one JSON line per request here")
    parser.add_argument("--resend", metavar="LOG",
                        help="instead of a new run: send again the valid postbacks of an earlier "
                             "run's --log that got no 2xx answer; each must get 200")
    parser.add_argument("--resend-acknowledged", type=int, default=0, metavar="N",
                        help="with --resend: also send again N postbacks that were answered 200; "
                             "each must be a duplicate of the same conversion")
    args = parser.parse_args(argv)
    mmps = tuple(m.strip().lower() for m in args.mmp.split(",") if m.strip())
    events = tuple(e.strip() for e in args.events.split(",") if e.strip())
    unknown = [m for m in mmps if m not in MMPS]
    if not mmps or unknown:
        parser.error("--mmp: %s (known: %s)" % (", ".join(unknown) or "empty", ", ".join(MMPS)))
    bad = [e for e in events if not EVENT_RULE.match(e)]
    if not events or bad:
        parser.error("--events: not event names: %s" % (", ".join(bad) or "empty"))
    if args.count < 0 or args.concurrency < 1:
        parser.error("--count must be >= 0 and --concurrency >= 1")
    if args.resend:
        jobs = resend_jobs(args.resend, args.token, args.resend_acknowledged)
    else:
        rng = random.Random(args.seed)
        jobs = build_jobs(rng, args.short, args.token, args.count, mmps, events, args.retries,
                          args.invalid)
    try:
        seconds = run(args.url, jobs, args.concurrency, args.timeout)
    except ValueError as e:
        parser.error(str(e))
    summary = evaluate(jobs, args.short, args.token, args.tolerate_errors, seconds)
    summary["seed"] = args.seed
    summary["resent"] = sum(1 for job in jobs if job.kind == "resend")
    if args.log:
        write_log(args.log, jobs, args.token)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f)
            f.write("\n")
        brief = dict(summary)
        brief["conversion_ids"] = len(summary["conversion_ids"])
        print(json.dumps(brief, indent=1))
    else:
        print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
