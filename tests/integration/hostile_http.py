#!/usr/bin/python3
"""hostile_http - hostile HTTP clients for a gkxd node's tenant API and postback endpoint.

Used by tests/integration/test_hostile_http.sh. Every request is written byte by byte on a
raw socket, so that it can be what curl will not send: no token, a wrong one, bodies over the
limit (announced, chunked, or with a Content-Length that lies), invalid UTF-8 and NUL bytes,
dot segments and encoded slashes, unknown methods, huge targets and headers, two of a header
or a parameter, and slow clients that hold connections open.

    hostile_http.py cases GROUP CONTEXT.json     one group of refusals (auth, size, headers,
                                                 methods, utf8, nul, params, traversal, export)
    hostile_http.py timing CONTEXT.json          401s for tokens wrong at the first and the
                                                 last byte: the times should not differ
    hostile_http.py slow CONTEXT.json            slowloris and friends while normal requests
                                                 are timed; prints one JSON line

CONTEXT.json holds the addresses and secrets: {"api", "api_token", "pb", "pb_token", "short",
"pid", "dir", "tmp", "stats"}. Every answer's status (0: closed without one) is appended to
the file named by "stats", one per line, for the suite's figures. A group prints one line per
request and exits 1 when any answer is not the one expected.

Part of gokart-exchange; MIT licence.
"""

import json
import os
import select
import socket
import statistics
import sys
import threading
import time

# The node's limits (include/gkx/http.h, src/node/intake.c, docs/api.md).
API_BODY_MAX = 1024 * 1024
PB_BODY_MAX = 64 * 1024
TARGET_MAX = 16 * 1024
HEADERS_MAX = 16 * 1024
TIMEOUT_S = 10
API_PER_IP = 64
PB_PER_IP = 128
# Under valgrind (tests/integration/lib.sh) the node is slower: times stretch by GKX_TIME_SCALE
# and loads shrink by GKX_LOAD_DIVISOR.
SCALE = float(os.environ.get("GKX_TIME_SCALE") or 1)
DIVISOR = max(1, int(os.environ.get("GKX_LOAD_DIVISOR") or 1))


def scaled(n):
    return max(1, n // DIVISOR)


class Reply:
    """One answer as read off the socket: status 0 when the node closed without one."""

    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = 0
        self.headers = {}
        if lines and lines[0].startswith(b"HTTP/1."):
            parts = lines[0].split(b" ", 2)
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                self.headers[name.strip().lower().decode("latin1")] = value.strip().decode("latin1")
        length = self.headers.get("content-length")
        if length is not None and length.isdigit():
            self.body = self.body[:int(length)]
        try:
            self.json = json.loads(self.body)
        except ValueError:
            self.json = None

    def code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def message(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("message", "")
        return self.body.decode("utf-8", "replace")


def hostport(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def exchange(addr, data, timeout=10.0, half_close=False, source=None):
    """Sends data on a new connection and reads until the node closes it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    out = b""
    try:
        sock.connect(hostport(addr))
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the node may answer and close before it has read everything
        while True:
            try:
                got = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not got:
                break
            out += got
    finally:
        sock.close()
    return Reply(out)


def request(method, target, headers=(), body=None, host=True, close=True):
    """The bytes of one HTTP/1.1 request; headers are (name, value) pairs of str or bytes."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode("utf-8")
    lines = [b(method) + b" " + b(target) + b" HTTP/1.1"]
    if host:
        lines.append(b"Host: 127.0.0.1")
    if close:
        lines.append(b"Connection: close")
    for name, value in headers:
        lines.append(b(name) + b": " + b(value))
    if body is not None and not any(b(n).lower() in (b"content-length", b"transfer-encoding")
                                    for n, _ in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(total, piece=65536):
    """A chunked body of total bytes of JSON-ish filler, with its last chunk."""
    out = []
    left = total
    while left > 0:
        n = min(piece, left)
        out.append(b"%x\r\n" % n + b" " * n + b"\r\n")
        left -= n
    out.append(b"0\r\n\r\n")
    return b"".join(out)


class Group:
    """Runs cases and keeps the verdicts."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.failures = 0
        self.count = 0
        self.stats = open(ctx["stats"], "a")

    def note(self, status):
        self.count += 1
        self.stats.write("%d\n" % status)
        self.stats.flush()

    def check(self, name, reply, status, code=None, needles=(), where="api"):
        """reply must have status (or one of a tuple), the JSON error code, and each needle
        in its message."""
        self.note(reply.status)
        statuses = status if isinstance(status, tuple) else (status,)
        wrong = []
        if reply.status not in statuses:
            wrong.append("status %d, wanted %s" % (reply.status, "/".join(map(str, statuses))))
        if code is not None and reply.code() != code:
            wrong.append("code %r, wanted %r" % (reply.code(), code))
        message = reply.message()
        for needle in needles:
            if needle not in message:
                wrong.append("message lacks %r" % needle)
        if reply.status == 401 and "www-authenticate" not in reply.headers and where == "api":
            wrong.append("401 without WWW-Authenticate")
        verdict = "ok" if not wrong else "FAIL (" + "; ".join(wrong) + ")"
        if wrong:
            self.failures += 1
        # libmicrohttpd's own answers are HTML (and 0.9.75 sends some heads twice).
        shown = " ".join(message.split()) if reply.json is not None or reply.status != 200 \
            else "(%d bytes of %s)" % (len(reply.body), reply.headers.get("content-type"))
        shown = shown if len(shown) < 160 else shown[:157] + "..."
        print("%-5s %-48s %3d %s" % (where, name, reply.status, verdict if wrong else shown))

    def api(self, data, **kw):
        return exchange(self.ctx["api"], data, **kw)

    def pb(self, data, **kw):
        return exchange(self.ctx["pb"], data, **kw)

    def auth(self, token=None):
        return [("Authorization", "Bearer " + (token if token is not None else self.ctx["api_token"]))]

    def pb_query(self, token=None, extra=""):
        """A valid AppsFlyer postback query (the setup's conversion) with another token."""
        t = self.ctx["pb_token"] if token is None else token
        q = "p=%s&clickid=clk-setup&appsflyer_id=af-setup&event_name=install" % self.ctx["short"]
        if t != "":
            q += "&t=" + t
        return q + extra


def group_auth(g):
    pid = g.ctx["pid"]
    token = g.ctx["api_token"]
    edit = json.dumps({"edits": ["terms=hostile"]}).encode()
    offer = "/v1/partnerships/%s/offer" % pid
    json_type = [("Content-Type", "application/json")]
    g.check("no token", g.api(request("GET", "/v1/status")), 401, "unauthorized",
            ["missing bearer token"])
    g.check("no token on a write", g.api(request("PATCH", offer, json_type, edit)), 401,
            "unauthorized")
    wrong = ("x" if token[0] != "x" else "y") + token[1:]
    g.check("wrong first byte", g.api(request("GET", "/v1/status", g.auth(wrong))), 401,
            "unauthorized", ["wrong bearer token"])
    wrong = token[:-1] + ("x" if token[-1] != "x" else "y")
    g.check("wrong last byte, on a write",
            g.api(request("PATCH", offer, g.auth(wrong) + json_type, edit)), 401, "unauthorized")
    g.check("token cut short", g.api(request("GET", "/v1/status", g.auth(token[:8]))), 401,
            "unauthorized")
    g.check("token and more", g.api(request("GET", "/v1/status", g.auth(token + "A"))), 401,
            "unauthorized")
    g.check("empty bearer", g.api(request("GET", "/v1/status", [("Authorization", "Bearer ")])),
            401, "unauthorized")
    g.check("basic credentials",
            g.api(request("GET", "/v1/status", [("Authorization", "Basic dXNlcjpwYXNz")])), 401,
            "unauthorized", ["not a bearer token"])
    g.check("token in the query", g.api(request("GET", "/v1/status?access_token=" + token)), 401,
            "unauthorized")
    g.check("postback token on the API",
            g.api(request("GET", "/v1/status", g.auth(g.ctx["pb_token"]))), 401, "unauthorized")
    g.check("NUL inside the token",
            g.api(request("GET", "/v1/status", [("Authorization", b"Bearer " + token[:5].encode()
                                                 + b"\x00" + token[5:].encode())])),
            401, "unauthorized")
    base = "/postback/appsflyer?"
    g.check("no t", g.pb(request("GET", base + g.pb_query(""))), 401, "unauthorized",
            ['missing parameter "t"'], "pb")
    g.check("no query at all", g.pb(request("GET", "/postback/appsflyer")), 401, "unauthorized",
            ['missing parameter "t"'], "pb")
    g.check("empty t", g.pb(request("GET", base + g.pb_query("", "&t="))), 401, "unauthorized",
            [], "pb")
    pbt = g.ctx["pb_token"]
    wrong = ("x" if pbt[0] != "x" else "y") + pbt[1:]
    g.check("wrong t", g.pb(request("GET", base + g.pb_query(wrong))), 401, "unauthorized",
            ["does not match"], "pb")
    g.check("API token as t", g.pb(request("GET", base + g.pb_query(token))), 401,
            "unauthorized", [], "pb")
    g.check("t in a bearer header instead",
            g.pb(request("GET", base + g.pb_query(""), [("Authorization", "Bearer " + pbt)])),
            401, "unauthorized", [], "pb")
    form = ("t=" + pbt).encode()
    g.check("t in a form body only",
            g.pb(request("POST", base + g.pb_query(""),
                          [("Content-Type", "application/x-www-form-urlencoded")], form)),
            401, "unauthorized", [], "pb")
    g.check("wrong t, POST", g.pb(request("POST", base + g.pb_query(wrong), [], b"")), 401,
            "unauthorized", [], "pb")


def group_size(g):
    pid = g.ctx["pid"]
    offer = "/v1/partnerships/%s/offer" % pid
    jt = g.auth() + [("Content-Type", "application/json")]
    g.check("Content-Length 2 MB", g.api(request("PATCH", offer, jt + [("Content-Length", "2000000")],
                                                 b"{}")),
            413, "payload_too_large", ["over the limit of %d bytes" % API_BODY_MAX])
    g.check("Content-Length limit + 1",
            g.api(request("PATCH", offer, jt + [("Content-Length", str(API_BODY_MAX + 1))], b"{")),
            413, "payload_too_large", ["limit of %d bytes" % API_BODY_MAX])
    g.check("Content-Length past 2^64",
            g.api(request("PATCH", offer, jt + [("Content-Length", "99999999999999999999999")],
                          b"{}")),
            (400, 413))
    g.check("Content-Length negative",
            g.api(request("PATCH", offer, jt + [("Content-Length", "-1")], b"{}")), 400)
    g.check("Content-Length not a number",
            g.api(request("PATCH", offer, jt + [("Content-Length", "12abc")], b"{}")), 400)
    over = API_BODY_MAX + API_BODY_MAX // 2
    g.check("chunked 1.5 MB", g.api(request("PATCH", offer, jt + [("Transfer-Encoding", "chunked")],
                                            chunked(over))),
            413, "payload_too_large", ["chunked body is over the limit of %d bytes" % API_BODY_MAX])
    g.check("chunked 4 MB: cut off, no reply",
            g.api(request("PATCH", offer, jt + [("Transfer-Encoding", "chunked")],
                          chunked(4 * API_BODY_MAX))),
            0)
    # Content-Length says less than is sent: the rest is a second request, malformed.
    patch = json.dumps({"patch": {"terms": "hostile"}}).encode()
    g.check("Content-Length says 5 of %d" % len(patch),
            g.api(request("PATCH", offer, jt + [("Content-Length", "5")], patch, close=False),
                  half_close=True),
            400, "malformed_json", ["premature end of input"])
    # Content-Length says more than is sent, then the client stops sending.
    g.check("Content-Length says 500, 30 sent, EOF",
            g.api(request("PATCH", offer, jt + [("Content-Length", "500")], patch[:30]),
                  half_close=True),
            0)
    base = "/postback/appsflyer?" + g.pb_query("wrong-" + "0" * 8)
    ft = [("Content-Type", "application/x-www-form-urlencoded")]
    g.check("Content-Length 100 kB", g.pb(request("POST", base, ft + [("Content-Length", "100000")],
                                                  b"a=1")),
            413, "payload_too_large", ["over the limit of %d bytes" % PB_BODY_MAX], "pb")
    g.check("chunked 96 kB", g.pb(request("POST", base, ft + [("Transfer-Encoding", "chunked")],
                                          chunked(PB_BODY_MAX + PB_BODY_MAX // 2, 8192))),
            413, "payload_too_large", ["chunked body is over the limit of %d bytes" % PB_BODY_MAX],
            "pb")
    g.check("chunked 1 MB: cut off, no reply",
            g.pb(request("POST", base, ft + [("Transfer-Encoding", "chunked")],
                         chunked(API_BODY_MAX))),
            0, None, (), "pb")
    g.check("Content-Length says 3 of 40",
            g.pb(request("POST", base, ft + [("Content-Length", "3")], b"a=1" + b"&b=2" * 10,
                         close=False), half_close=True),
            401, "unauthorized", [], "pb")


def group_headers(g):
    auth = g.auth()
    pid = g.ctx["pid"]
    offer = "/v1/partnerships/%s/offer" % pid
    jt = auth + [("Content-Type", "application/json")]
    pbq = "/postback/appsflyer?" + g.pb_query("wrong-" + "0" * 8)
    for where, send, base, hdrs in (("api", g.api, "/v1/status", auth), ("pb", g.pb, pbq, [])):
        sep = "&" if "?" in base else "?"
        g.check("target of 20 kB", send(request("GET", base + sep + "pad=" + "a" * 20000, hdrs)),
                414, "uri_too_long", ["over the limit of %d bytes" % TARGET_MAX], where)
        g.check("target of 200 kB (libmicrohttpd's own 414)",
                send(request("GET", base + sep + "pad=" + "a" * 200000, hdrs)), 414, None,
                ["too big"], where)
        g.check("a header of 20 kB", send(request("GET", base, hdrs + [("X-Pad", "b" * 20000)])),
                431, "headers_too_large", ["over the limit of %d bytes" % HEADERS_MAX], where)
        g.check("5000 headers (libmicrohttpd's own 431)",
                send(request("GET", base, hdrs + [("X-H%d" % i, "v") for i in range(5000)])),
                431, None, ["too big"], where)
        g.check("two Content-Length",
                send(request("POST", base, hdrs + [("Content-Length", "2"),
                                                   ("Content-Length", "3")], b"{}")),
                400, "bad_header", ["Content-Length is given 2 times"], where)
        g.check("Content-Length and chunked",
                send(request("POST", base, hdrs + [("Content-Length", "2"),
                                                   ("Transfer-Encoding", "chunked")],
                             b"2\r\n{}\r\n0\r\n\r\n")),
                400, "bad_header", ["both Content-Length and Transfer-Encoding"], where)
        g.check("Transfer-Encoding gzip",
                send(request("POST", base, hdrs + [("Transfer-Encoding", "gzip")], b"")),
                400, "bad_header", ['"gzip" is not accepted'], where)
        g.check("two Host headers", send(request("GET", base, hdrs + [("Host", "evil")])),
                400, "bad_header", ["Host is given 2 times"], where)
        g.check("HTTP/1.1 without Host", send(request("GET", base, hdrs, host=False)), 400, None,
                ["Host"], where)
        g.check("HTTP/2.0 request line (505: the version)",
                send(request("GET", base, hdrs).replace(b"HTTP/1.1", b"HTTP/2.0", 1)), 505, None,
                ["not supported"], where)
        g.check("HTTP/0.9 request line", send(b"GET " + base.encode() + b"\r\n\r\n"), 400, None,
                ["malformed"], where)
        g.check("TLS hello on plain HTTP",
                send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)),
                     half_close=True),
                (0, 400), None, (), where)
    g.check("two Authorization headers",
            g.api(request("GET", "/v1/status", auth + [("Authorization", "Bearer nope")])), 400,
            "bad_header", ["Authorization is given 2 times"])
    body = json.dumps({"patch": {"terms": "hostile"}}).encode()
    for ctype in ("text/plain", "application/json; charset=latin1", "application/jsonp",
                  "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                  "application/json;;", "application/json\tgarbage"):
        g.check("Content-Type %s" % ctype.replace("\t", "\\t"),
                g.api(request("PATCH", offer, auth + [("Content-Type", ctype)], body)), 415,
                "unsupported_media_type", ["must be application/json"])
    g.check("a body without Content-Type", g.api(request("PATCH", offer, auth, body)), 415,
            "unsupported_media_type", ["Content-Type is none"])
    g.check("two Content-Type",
            g.api(request("PATCH", offer, jt + [("Content-Type", "text/plain")], body)), 400,
            "bad_header", ["Content-Type is given 2 times"])


def group_methods(g):
    auth = g.auth()
    pid = g.ctx["pid"]
    offer = "/v1/partnerships/%s/offer" % pid
    for method in ("FOO", "TRACE", "DELETE", "PUT", "OPTIONS", "get", "PROPFIND", "M" * 200):
        g.check("%s on the offer" % method[:20], g.api(request(method, offer, auth)), 405,
                "method_not_allowed", ["is not allowed on", "use GET, PATCH"])
    reply = g.api(request("DELETE", offer, auth))
    g.check("405 names Allow", reply, 405, "method_not_allowed")
    if reply.headers.get("allow") != "GET, PATCH":
        g.failures += 1
        print("api   Allow header is %r, wanted 'GET, PATCH'" % reply.headers.get("allow"))
    g.check("HEAD (405, no body)", g.api(request("HEAD", "/v1/status", auth)), 405)
    g.check("CONNECT", g.api(request("CONNECT", "127.0.0.1:22", auth)), 404, "not_found",
            ["no such path"])
    g.check("absolute-form target",
            g.api(request("GET", "http://evil.example/v1/status", auth)), 404, "not_found")
    g.check("asterisk target", g.api(request("OPTIONS", "*", auth)), 404, "not_found")
    q = "/postback/appsflyer?" + g.pb_query()
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"):
        g.check("%s on a postback" % method, g.pb(request(method, q)), 405,
                "method_not_allowed", ["use GET, POST"], "pb")
    g.check("the API on the postback port", g.pb(request("GET", "/v1/status", auth)), 404,
            "not_found", [], "pb")


def group_utf8(g):
    auth = g.auth()
    pid = g.ctx["pid"]
    offer = "/v1/partnerships/%s/offer" % pid
    jt = auth + [("Content-Type", "application/json")]
    for name, text in (("a 0xff byte", b"\xff"), ("an overlong slash", b"\xc0\xaf"),
                       ("a UTF-16 surrogate", b"\xed\xa0\x80"), ("a code point past U+10FFFF",
                                                               b"\xf4\x90\x80\x80"),
                       ("a cut sequence", b"\xe2\x82"), ("Latin-1", "caf\u00e9".encode("latin1"))):
        body = b'{"patch": {"terms": "x' + text + b'"}}'
        g.check("JSON body with %s" % name, g.api(request("PATCH", offer, jt, body)), 400,
                "invalid_utf8", ["not valid UTF-8 (byte"])
    g.check("JSON escape of a lone surrogate",
            g.api(request("PATCH", offer, jt, b'{"patch": {"terms": "\\ud800"}}')), 400,
            "malformed_json")
    g.check("path segment %ff", g.api(request("GET", "/v1/partnerships/%ff/offer", auth)), 400,
            "bad_segment", ["not valid UTF-8"])
    g.check("path segment raw 0xff", g.api(request("GET", b"/v1/partnerships/\xff/offer", auth)),
            400, "bad_segment", ["not valid UTF-8"])
    g.check("path segment overlong %c0%ae",
            g.api(request("GET", "/v1/partnerships/%c0%ae%c0%ae/offer", auth)), 400,
            "bad_segment", ["not valid UTF-8"])
    conv = "/v1/partnerships/%s/conversions" % pid
    g.check("query value %c0%af", g.api(request("GET", conv + "?limit=%c0%af", auth)), 400,
            "bad_query", ['parameter "limit": not valid UTF-8'])
    g.check("query value raw 0xfe", g.api(request("GET", conv.encode() + b"?since=\xfe", auth)),
            400, "bad_query", ['parameter "since": not valid UTF-8'])
    g.check("query name %ff", g.api(request("GET", conv + "?%ff=1", auth)), 400, "bad_query",
            ["parameter #1 name: not valid UTF-8"])
    g.check("bad escape %zz", g.api(request("GET", conv + "?limit=%zz", auth)), 400, "bad_query",
            ['parameter "limit": bad percent-encoding "%zz"'])
    g.check("cut escape %4", g.api(request("GET", conv + "?limit=%4", auth)), 400, "bad_query",
            ['parameter "limit": truncated percent-encoding "%4"'])
    q = "/postback/appsflyer?" + g.pb_query()
    g.check("af_sub1=%ff", g.pb(request("GET", q + "&af_sub1=%ff")), 400, "bad_query",
            ['parameter "af_sub1": not valid UTF-8'], "pb")
    g.check("af_sub1 raw 0xff", g.pb(request("GET", q.encode() + b"&af_sub1=\xff")), 400,
            "bad_query", ['parameter "af_sub1": not valid UTF-8'], "pb")
    g.check("clickid surrogate", g.pb(request("GET", q.replace("clk-setup", "%ed%a0%80"))), 400,
            "bad_query", ['parameter "clickid": not valid UTF-8'], "pb")
    g.check("template %ff", g.pb(request("GET", "/postback/%ff?" + g.pb_query())), 400,
            "bad_segment", ["not valid UTF-8"], "pb")


def group_nul(g):
    auth = g.auth()
    pid = g.ctx["pid"]
    offer = "/v1/partnerships/%s/offer" % pid
    jt = auth + [("Content-Type", "application/json")]
    g.check("%00 in a path segment", g.api(request("GET", "/v1/partnerships/ab%00cd/offer", auth)),
            400, "bad_segment", ["%00 (NUL) is not allowed"])
    g.check("%00 in a query value",
            g.api(request("GET", "/v1/partnerships/%s/conversions?since=%%00" % pid, auth)), 400,
            "bad_query", ['parameter "since": %00 (NUL) is not allowed'])
    g.check("raw NUL in a JSON string",
            g.api(request("PATCH", offer, jt, b'{"patch": {"terms": "a\x00b"}}')), 400,
            "malformed_json", ["control character"])
    g.check("\\u0000 in a JSON string",
            g.api(request("PATCH", offer, jt, b'{"patch": {"terms": "a\\u0000b"}}')), 400,
            "malformed_json", ["\\u0000 is not allowed"])
    g.check("NUL after the JSON", g.api(request("PATCH", offer, jt, b'{"patch": {}}\x00')), 400,
            "malformed_json")
    # libmicrohttpd 0.9.75 ends the request line at a raw NUL: the rest is not seen.
    g.check("raw NUL in the path (cut there: 404)",
            g.api(request("GET", b"/v1/sta\x00tus", auth)), 404, "not_found",
            ["no such path: /v1/sta"])
    q = "/postback/appsflyer?" + g.pb_query()
    g.check("t=%00", g.pb(request("GET", "/postback/appsflyer?" + g.pb_query("%00"))), 400,
            "bad_query", ['parameter "t": %00 (NUL) is not allowed'], "pb")
    g.check("clickid with %00", g.pb(request("GET", q.replace("clk-setup", "clk%00x"))), 400,
            "bad_query", ['parameter "clickid": %00 (NUL) is not allowed'], "pb")
    g.check("template with %00", g.pb(request("GET", "/postback/apps%00flyer?" + g.pb_query())),
            400, "bad_segment", ["%00 (NUL) is not allowed"], "pb")


def group_params(g):
    auth = g.auth()
    pid = g.ctx["pid"]
    conv = "/v1/partnerships/%s/conversions" % pid
    g.check("limit twice", g.api(request("GET", conv + "?limit=1&limit=100000", auth)), 400,
            "bad_query", ['duplicate parameter "limit"'])
    g.check("limit and %6cimit", g.api(request("GET", conv + "?limit=1&%6cimit=2", auth)), 400,
            "bad_query", ['duplicate parameter "limit"'])
    g.check("digest twice, equal",
            g.api(request("GET", "/v1/partnerships/%s/offer?digest=1&digest=1" % pid, auth)), 400,
            "bad_query", ['duplicate parameter "digest"'])
    g.check("65 parameters",
            g.api(request("GET", conv + "?" + "&".join("p%d=1" % i for i in range(65)), auth)),
            400, "bad_query", ["more than the 64 allowed"])
    q = "/postback/appsflyer?" + g.pb_query()
    g.check("clickid twice", g.pb(request("GET", q + "&clickid=other")), 400, "bad_query",
            ['duplicate parameter "clickid"'], "pb")
    g.check("clickid and click%69d", g.pb(request("GET", q + "&click%69d=other")), 400,
            "bad_query", ['duplicate parameter "clickid"'], "pb")
    g.check("p twice", g.pb(request("GET", q + "&p=0000000000000000")), 400, "bad_query",
            ['duplicate parameter "p"'], "pb")
    g.check("t twice, the right one first", g.pb(request("GET", q + "&t=wrong")), 400,
            "bad_query", ['duplicate parameter "t"'], "pb")
    g.check("257 parameters",
            g.pb(request("GET", q + "&" + "&".join("x%d=1" % i for i in range(257)))), 400,
            "bad_query", ["more than the 256 allowed"], "pb")
    g.check("empty pieces are no duplicates (wrong t: 401)",
            g.pb(request("GET", "/postback/appsflyer?&&" + g.pb_query("wrong-x") + "&&&")), 401,
            "unauthorized", [], "pb")


def group_traversal(g):
    auth = g.auth()
    for target, status, code, needle in (
            ("/v1/../v1/status", 400, "bad_segment", "dot segments are not accepted"),
            ("/v1/./status", 400, "bad_segment", "dot segments are not accepted"),
            ("/v1/%2e%2e/v1/status", 400, "bad_segment", "dot segments are not accepted"),
            ("/v1/partnerships/%2e%2e/offer", 400, "bad_segment", "dot segments"),
            ("/v1/partnerships/%2E%2E%2Fetc/offer", 400, "bad_segment", 'contains ".."'),
            ("/v1/partnerships/..%2f..%2fetc%2fpasswd/offer", 400, "bad_segment", "contains"),
            ("/v1/partnerships/a%2fb/offer", 400, "bad_segment", "contains a slash"),
            ("/v1/partnerships/a%5cb/offer", 400, "bad_segment", "contains a slash"),
            ("/v1/partnerships/%252e%252e/offer", 400, "bad_partnership_id", "64 hex digits"),
            ("//v1/status", 404, "not_found", "no such path"),
            ("/v1/status/", 404, "not_found", "no such path"),
            ("/v1/status/..", 400, "bad_segment", "dot segments"),
            ("/../../../../etc/passwd", 400, "bad_segment", "dot segments"),
            ("/v1%2fstatus", 404, "not_found", "no such path"),
            ("v1/status", 404, "not_found", "no such path")):
        g.check(target, g.api(request("GET", target, auth)), status, code, [needle])
    q = "?" + g.pb_query()
    for target, status, code in (("/postback/../postback/appsflyer", 400, "bad_segment"),
                                 ("/postback/%2e%2e", 400, "bad_segment"),
                                 ("/postback/..%2fappsflyer", 400, "bad_segment"),
                                 ("/postback/appsflyer%2f..%2f..", 400, "bad_segment"),
                                 ("/postback/appsflyer/..", 400, "bad_segment"),
                                 ("/postback/%2e", 400, "bad_segment"),
                                 ("/postback/appsflyer/x", 404, "not_found")):
        g.check(target, g.pb(request("GET", target + q)), status, code, [], "pb")


def group_export(g):
    """POST .../export writes only under DIR/exports; GET answers the export itself."""
    auth = g.auth()
    pid = g.ctx["pid"]
    node = os.path.realpath(g.ctx["dir"])
    tmp = g.ctx["tmp"]
    url = "/v1/partnerships/%s/export" % pid
    jt = auth + [("Content-Type", "application/json")]

    def post(path):
        body = path if isinstance(path, bytes) else json.dumps({"path": path}).encode()
        return g.api(request("POST", url, jt, body))

    outside = os.path.join(tmp, "outside")
    os.makedirs(outside, exist_ok=True)
    victim = os.path.join(tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.makedirs(os.path.join(node, "exports"), exist_ok=True)
    link = os.path.join(node, "exports", "link")
    if not os.path.islink(link):
        os.symlink(outside, link)
    refused = "outside the node's export directory"
    for name, path in (("a directory outside", os.path.join(outside, "x.log")),
                       ("an existing file outside", victim),
                       ("the node's own config", os.path.join(node, "gkx.conf")),
                       ("the node's key through ..", os.path.join(node, "exports", "..", "node.key")),
                       ("exports/../../victim", os.path.join(node, "exports", "..", "..", "victim")),
                       ("a symlink out of exports", os.path.join(link, "x.log")),
                       ("a directory that does not exist", os.path.join(tmp, "nodir", "x.log")),
                       ("/proc/self/fd/1", "/proc/self/fd/1")):
        g.check("export to " + name, post(path), 403, "forbidden", [refused])
    g.check("export to a relative path", post("exports/x.log"), 400, "bad_path", ["is relative"])
    g.check("export to exports/..", post(os.path.join(node, "exports", "..")), 400, "bad_path",
            ["must name a file"])
    g.check("export to exports/", post(os.path.join(node, "exports") + "/"), 400, "bad_path",
            ["must name a file"])
    g.check("export path with \\u0000",
            post(b'{"path": "' + node.encode() + b'/exports/a\\u0000b"}'), 400, "malformed_json")
    g.check("export path not a string", post(b'{"path": ["/etc/passwd"]}'), 400, "bad_request")
    for leftover in (os.path.join(outside, "x.log"), os.path.join(outside, "x.log.tmp")):
        if os.path.exists(leftover):
            g.failures += 1
            print("api   FAIL: %s was written" % leftover)
    with open(victim) as f:
        if f.read() != "precious\n":
            g.failures += 1
            print("api   FAIL: %s was changed" % victim)
    inside = os.path.join(node, "exports", "ok.log")
    g.check("export into exports/ (allowed)", post(inside), 200)
    if not os.path.getsize(inside):
        g.failures += 1
        print("api   FAIL: %s is empty" % inside)
    reply = g.api(request("GET", url, auth))
    g.check("GET the export", reply, 200)
    if reply.headers.get("content-type") != "application/octet-stream":
        g.failures += 1
        print("api   FAIL: the export's type is %r" % reply.headers.get("content-type"))
    with open(os.path.join(tmp, "got.log"), "wb") as f:
        f.write(reply.body)
    g.check("GET the export without a token", g.api(request("GET", url)), 401, "unauthorized")


GROUPS = {"auth": group_auth, "size": group_size, "headers": group_headers,
          "methods": group_methods, "utf8": group_utf8, "nul": group_nul,
          "params": group_params, "traversal": group_traversal, "export": group_export}


def cmd_cases(name, ctx):
    g = Group(ctx)
    GROUPS[name](g)
    print("# %s: %d requests, %d not as expected" % (name, g.count, g.failures))
    return 1 if g.failures else 0


class KeepAlive:
    """One kept-alive connection for timing; reconnects when the node closes it."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = None

    def ask(self, data):
        for _ in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(hostport(self.addr), timeout=10)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter()
            try:
                self.sock.sendall(data)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    got = self.sock.recv(65536)
                    if not got:
                        raise ConnectionError("closed")
                    buf += got
                head, _, body = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(body) < length:
                    body += self.sock.recv(65536)
                status = int(head.split(b" ")[1])
                return status, time.perf_counter() - start
            except (OSError, ConnectionError):
                self.sock.close()
                self.sock = None
        return 0, 0.0


def cmd_timing(ctx, rounds=300 if os.environ.get("GKX_LONG") != "1" else 3000):
    """401s for a token wrong at its first byte and at its last, interleaved on one connection
    each; the medians should differ by no more than the noise."""
    out = {}
    stats = open(ctx["stats"], "a")
    for where, token, make in (
            ("api", ctx["api_token"],
             lambda t: request("GET", "/v1/status", [("Authorization", "Bearer " + t)],
                               close=False)),
            ("pb", ctx["pb_token"],
             lambda t: request("GET", "/postback/appsflyer?p=%s&t=%s&clickid=c&appsflyer_id=a"
                               % (ctx["short"], t), close=False))):
        first = ("x" if token[0] != "x" else "y") + token[1:]
        last = token[:-1] + ("x" if token[-1] != "x" else "y")
        conn = KeepAlive(ctx[where])
        times = {"first": [], "last": []}
        for i in range(scaled(rounds)):
            for kind, t in (("first", first), ("last", last)) if i % 2 else (("last", last),
                                                                            ("first", first)):
                status, seconds = conn.ask(make(t))
                stats.write("%d\n" % status)
                if status != 401:
                    print("%s: token wrong at the %s byte answered %d" % (where, kind, status))
                    return 1
                times[kind].append(seconds * 1000.0)
        med = {k: statistics.median(v) for k, v in times.items()}
        out[where] = {"first_ms": round(med["first"], 3), "last_ms": round(med["last"], 3)}
        # memcmp would differ by nanoseconds, far below this noise; the check catches a
        # compare that stops early with real work after it (a second lookup, a hash of the
        # rest), which would show as a steady gap.
        gap = abs(med["first"] - med["last"])
        allowed = max(0.5 * SCALE, 0.25 * min(med.values()))
        out[where]["gap_ms"] = round(gap, 3)
        if gap > allowed:
            print("%s: medians differ by %.3f ms (allowed %.3f): %s" % (where, gap, allowed, med))
            print(json.dumps(out))
            return 1
    stats.close()
    print(json.dumps(out))
    return 0


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class Slow:
    """A connection that misbehaves slowly; closed_at is when the node closed it."""

    def __init__(self, kind, addr, source, first, drip=b"", rcvbuf=0):
        self.kind = kind
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.opened_at = time.monotonic()
        self.closed_at = None
        self.refused = False
        self.drip = drip
        self.dripped = 0
        try:
            self.sock.connect(hostport(addr))
            self.sock.sendall(first)
        except OSError:
            self.refused = True
            self.closed_at = self.opened_at
        self.sock.setblocking(False)

    def step(self):
        """Sends the next byte, if this one drips."""
        if self.closed_at is not None or not self.drip:
            return
        try:
            self.sock.send(self.drip[self.dripped % len(self.drip):][:1])
            self.dripped += 1
        except BlockingIOError:
            pass
        except OSError:
            self.closed_at = time.monotonic()


def cmd_slow(ctx):
    """Slow clients against both endpoints while a prober times normal requests."""
    api, pb = ctx["api"], ctx["pb"]
    token = ctx["api_token"]
    auth = [("Authorization", "Bearer " + token)]
    pb_dup = "/postback/appsflyer?" + "p=%s&t=%s&clickid=clk-setup&appsflyer_id=af-setup" \
        "&event_name=install" % (ctx["short"], ctx["pb_token"])
    wrong_t = pb_dup.replace("t=" + ctx["pb_token"], "t=wrong-token")
    stats = open(ctx["stats"], "a")
    per_source = scaled(30)
    conns = []
    started = time.monotonic()
    for addr, per_ip, flood, base in ((api, API_PER_IP, API_PER_IP + 16, "/v1/status"),
                                      (pb, PB_PER_IP, PB_PER_IP + 8, pb_dup)):
        hdrs = auth if addr == api else []
        # Bodies go to a route that takes one, so they are read to the end.
        write = "/v1/partnerships/%s/offer" % ctx["pid"] if addr == api else pb_dup
        method = "PATCH" if addr == api else "POST"
        line = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % base).encode()
        if addr == api:
            line += b"Authorization: Bearer " + token.encode() + b"\r\n"
        # Slowloris: the request line, then one header byte a second, never the end.
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            for _ in range(per_source):
                conns.append(Slow("slowloris", addr, source, line, b"X-Slow: abcdefghij\r\n"))
        for _ in range(scaled(8)):
            # A request line a byte a second.
            conns.append(Slow("slow_line", addr, "127.0.0.5", b"G", b"ET " + base.encode()))
            # A body a byte a second.
            conns.append(Slow("slow_body", addr, "127.0.0.5",
                              request(method, write, hdrs + [("Content-Type", "application/json"),
                                                             ("Content-Length", "1000")], b"{"),
                              b" "))
            # A Content-Length that says more than ever comes.
            conns.append(Slow("lying_length", addr, "127.0.0.5",
                              request(method, write, hdrs + [("Content-Type", "application/json"),
                                                             ("Content-Length", "500")],
                                      b'{"patch": {')))
            # Requests in a row and not one answer read, on a small receive buffer, until the
            # node can send no more: answered by handlers (a refusal at the headers closes
            # the connection), cheap ones on the postback endpoint (a wrong token). Not scaled
            # down under valgrind: with fewer, the node reads every request and answers into
            # its send buffer, so its close is a FIN queued behind answers this client never
            # reads (never seen here) instead of the reset that unread requests cause.
            piped = request("GET", "/metrics", hdrs, close=False) * 3000 if addr == api \
                else request("GET", wrong_t, close=False) * 15000
            conns.append(Slow("never_reads", addr, "127.0.0.5", b"", rcvbuf=4096))
            threading.Thread(target=lambda c=conns[-1], d=piped: _push(c, d), daemon=True).start()
        # More idle connections from one address than it may hold.
        for _ in range(flood):
            conns.append(Slow("flood", addr, "127.0.0.6", b""))
    latencies = {"api": [], "pb": []}
    failures = []
    done = threading.Event()

    def probe():
        while not done.is_set():
            for where, addr, data in (("api", api, request("GET", "/v1/status", auth)),
                                      ("pb", pb, request("GET", pb_dup))):
                t0 = time.monotonic()
                try:
                    status = exchange(addr, data, timeout=10).status
                except OSError as e:
                    status = 0
                    failures.append("%s: %s" % (where, e))
                ms = (time.monotonic() - t0) * 1000.0
                stats.write("%d\n" % status)
                if status != 200:
                    failures.append("%s: status %d after %.0f ms" % (where, status, ms))
                latencies[where].append(ms)
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    poller = select.poll()
    by_fd = {}
    for c in conns:
        if c.closed_at is None:
            poller.register(c.sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
            by_fd[c.sock.fileno()] = c
    # A non-reader is closed the idle timeout after the node could last write to it, which
    # takes as long as filling the socket buffers with answers (slower in a sanitizer build);
    # the others within the deadlines: the request line, then the rest, 10 s each.
    wait = 2 * TIMEOUT_S + 8 + 2 * TIMEOUT_S * SCALE
    limit = started + wait
    next_drip = time.monotonic()
    while time.monotonic() < limit and any(c.closed_at is None for c in conns):
        for fd, _ in poller.poll(100):
            c = by_fd.get(fd)
            if c and c.closed_at is None:
                c.closed_at = time.monotonic()
                poller.unregister(fd)
        if time.monotonic() >= next_drip:
            for c in conns:
                c.step()
            next_drip += 1.0
    ended = time.monotonic()
    # A few more probes once the attack is over.
    time.sleep(0.5)
    done.set()
    prober.join()
    stats.close()
    open_left = [c for c in conns if c.closed_at is None]
    summary = {"seconds": round(ended - started, 1), "failures": failures[:5],
               "probe_failures": len(failures)}
    for kind in ("slowloris", "slow_line", "slow_body", "lying_length", "never_reads", "flood"):
        group = [c for c in conns if c.kind == kind]
        held = [c.closed_at - c.opened_at for c in group if c.closed_at and not c.refused]
        summary[kind] = {"connections": len(group),
                         "refused_at_once": sum(1 for c in group if c.closed_at is not None
                                                and c.closed_at - c.opened_at < SCALE),
                         "held_max_s": round(max(held), 1) if held else 0,
                         "still_open": sum(1 for c in group if c.closed_at is None)}
    every = latencies["api"] + latencies["pb"]
    summary["probes"] = len(every)
    summary["p50_ms"] = round(percentile(every, 50), 1)
    summary["p99_ms"] = round(percentile(every, 99), 1)
    summary["max_ms"] = round(max(every), 1) if every else 0
    summary["slow_connections"] = sum(1 for c in conns if c.kind != "flood")
    for c in conns:
        c.sock.close()
    print(json.dumps(summary))
    wrong = []
    if failures:
        wrong.append("%d normal requests failed: %s" % (len(failures), failures[:3]))
    if open_left:
        wrong.append("%d slow connections still open after %d s" % (len(open_left), wait))
    if summary["p99_ms"] > 1000 * SCALE:
        wrong.append("p99 of %.0f ms during the attack" % summary["p99_ms"])
    flood = summary["flood"]
    if flood["refused_at_once"] < 16 + 8:  # the flood is never scaled down
        wrong.append("only %d flood connections refused at once (per-address limits %d, %d)"
                     % (flood["refused_at_once"], API_PER_IP, PB_PER_IP))
    for kind in ("slowloris", "slow_line", "slow_body", "lying_length", "flood"):
        if summary[kind]["held_max_s"] > 2 * TIMEOUT_S + 4 * SCALE:
            wrong.append("%s held for %.1f s" % (kind, summary[kind]["held_max_s"]))
    for w in wrong:
        print("FAIL: " + w)
    return 1 if wrong else 0


def _push(conn, data):
    """Writes data on a blocking copy of the socket until the node stops reading it."""
    if conn.refused:
        return
    try:
        dup = conn.sock.dup()
        dup.setblocking(True)
        dup.settimeout(2 * TIMEOUT_S + 8 + 2 * TIMEOUT_S * SCALE)
        dup.sendall(data)
    except OSError:
        pass


def main(argv):
    if len(argv) < 3 or argv[1] not in ("cases", "timing", "slow"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "cases":
        with open(argv[3]) as f:
            return cmd_cases(argv[2], json.load(f))
    with open(argv[2]) as f:
        ctx = json.load(f)
    return cmd_timing(ctx) if argv[1] == "timing" else cmd_slow(ctx)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
