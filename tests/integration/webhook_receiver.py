#!/usr/bin/python3
"""webhook_receiver - a publisher's system as the integration tests see it: receives gkxd's
webhook deliveries and checks their Standard Webhooks signatures (docs/webhooks.md).
Part of gokart-exchange; MIT licence.

  webhook_receiver.py serve --secret whsec_... --out FILE [--port P] [--port-file F] [--fail-first N]
      Serves POST on 127.0.0.1:P (a free port when P is 0 or absent; the port is written to
      --port-file). Each request is checked: webhook-id present, webhook-timestamp within
      5 minutes of now, one of the webhook-signature values equal to v1,BASE64(HMAC-SHA256(key,
      id "." timestamp "." body)). A bad one is answered 401; the first N good ones 500 (to
      make the node retry); the others 204. Every request, whatever its answer, is appended
      to FILE as one JSON line {"id", "timestamp", "signature", "user_agent", "content_type",
      "path", "valid", "status", "body"} and flushed at once, so a restarted receiver (same
      FILE) continues the record and a killed one loses nothing it answered.

  webhook_receiver.py summary FILE
      Prints {"requests", "bad_signatures", "failed", "accepted", "unique", "duplicates",
      "ids": {webhook-id: times accepted}} from FILE: accepted counts the requests answered
      2xx, unique their distinct webhook-ids, duplicates accepted - unique.

Standard library only; run with /usr/bin/python3.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys
import time

# How far webhook-timestamp may be from now, in seconds (the Standard Webhooks default).
TOLERANCE_S = 300
# Largest body read.
BODY_MAX = 1 << 20


def secret_key(text):
    """The key bytes of a "whsec_" secret."""
    if not text.startswith("whsec_"):
        raise ValueError('the secret must start with "whsec_"')
    return base64.b64decode(text[len("whsec_"):], validate=True)


def expected_signature(key, msg_id, timestamp, body):
    """The v1 signature of a message, as gkxd must send it."""
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(key, headers, body):
    """Returns None when the request is signed right, else what is wrong."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return "a webhook header is missing"
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return "webhook-timestamp is not within %d s of now" % TOLERANCE_S
    want = expected_signature(key, msg_id, timestamp, body)
    for given in signatures.split(" "):
        if hmac.compare_digest(given.encode(), want.encode()):
            return None
    return "no webhook-signature matches"


class Handler(http.server.BaseHTTPRequestHandler):
    """Checks, answers and records one delivery."""
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, BODY_MAX))
        problem = verify(server.key, self.headers, body)
        if problem:
            status = 401
            server.bad += 1
        elif server.fail_left > 0:
            status = 500
            server.fail_left -= 1
        else:
            status = 204
        record = {
            "id": self.headers.get("webhook-id"),
            "timestamp": self.headers.get("webhook-timestamp"),
            "signature": self.headers.get("webhook-signature"),
            "user_agent": self.headers.get("User-Agent"),
            "content_type": self.headers.get("Content-Type"),
            "path": self.path,
            "valid": problem is None,
            "status": status,
            "body": body.decode("utf-8", "replace"),
        }
        server.out.write(json.dumps(record, sort_keys=True) + "\n")
        server.out.flush()
        reply = json.dumps({"error": problem}).encode() if problem else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        if reply:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format, *args):
        """Quiet: the JSON lines are the log."""


def serve(args):
    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    server.key = secret_key(args.secret)
    server.fail_left = args.fail_first
    server.bad = 0
    server.out = open(args.out, "a", encoding="utf-8")
    if args.port_file:
        with open(args.port_file + ".new", "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.replace(args.port_file + ".new", args.port_file)
    # SIGTERM ends the server cleanly (the records are flushed as they are written).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.out.close()


def summary(args):
    requests = bad = failed = 0
    ids = collections.Counter()
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            requests += 1
            if not record["valid"]:
                bad += 1
            elif 200 <= record["status"] <= 299:
                ids[record["id"]] += 1
            else:
                failed += 1
    accepted = sum(ids.values())
    print(json.dumps({"requests": requests, "bad_signatures": bad, "failed": failed,
                      "accepted": accepted, "unique": len(ids), "duplicates": accepted - len(ids),
                      "ids": dict(sorted(ids.items()))}, sort_keys=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve")
    p.add_argument("--secret", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--fail-first", type=int, default=0)
    p = commands.add_parser("summary")
    p.add_argument("file")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else summary(args)


if __name__ == "__main__":
    main()
