#!/usr/bin/python3
"""smtp_sink - an SMTP server that keeps every message, for the integration tests of gkxd's
e-mail notifications (docs/notifications.md).
Part of gokart-exchange; MIT licence.

  smtp_sink.py serve --out DIR [--port P] [--port-file F]
      Serves SMTP on 127.0.0.1:P (a free port when P is 0 or absent; the port is written to
      --port-file once the server answers). Each message is accepted (250) and written to
      DIR as NNNN.eml (its bytes as received) with NNNN.json beside it ({"mail_from",
      "rcpt_tos"}), numbered on from the files already there, so a restarted sink (same DIR)
      continues the record. Each file appears whole (written, then renamed). Stops on
      SIGTERM or SIGINT.

  smtp_sink.py show DIR
      Prints a JSON array of the messages in DIR, oldest first: {"file", "mail_from",
      "rcpt_tos", "from", "to", "subject" (decoded), "message_id", "date", "content_type",
      "text", "html"} (the parts decoded, their CRLF line ends as LF).

Needs aiosmtpd (Debian's python3-aiosmtpd): run it with /usr/bin/python3.
"""
import argparse
import email
import email.policy
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from free_port import free_ports  # noqa: E402  (beside this file)

# Digits of the message files' numbers.
NUMBER_DIGITS = 4


def free_port():
    """A TCP port on 127.0.0.1 that is free right now (free_port.py: below the ephemeral range)."""
    return free_ports(1)[0]


def next_number(out):
    """The number of the next message file in out."""
    numbers = [int(name[:NUMBER_DIGITS]) for name in os.listdir(out)
               if name.endswith(".eml") and name[:NUMBER_DIGITS].isdigit()]
    return max(numbers, default=0) + 1


def write_whole(path, data):
    """Writes data to path so that it appears whole: a temporary file, then a rename."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Sink:
    """aiosmtpd handler: keeps each message in the output directory."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            base = os.path.join(self.out, "%0*d" % (NUMBER_DIGITS, next_number(self.out)))
            record = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
            write_whole(base + ".json", json.dumps(record).encode())
            write_whole(base + ".eml", envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def serve(args):
    from aiosmtpd.controller import Controller
    os.makedirs(args.out, exist_ok=True)
    port = args.port or free_port()
    controller = Controller(Sink(args.out), hostname="127.0.0.1", port=port)
    controller.start()
    if args.port_file:
        write_whole(args.port_file, b"%d\n" % port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    controller.stop()


def part_text(message, subtype):
    """The decoded text of message's text/SUBTYPE part, its CRLF line ends as LF; or None."""
    for part in message.walk():
        if part.get_content_type() == "text/" + subtype:
            return part.get_content().replace("\r\n", "\n")
    return None


def show(args):
    messages = []
    for name in sorted(os.listdir(args.dir)):
        if not name.endswith(".eml"):
            continue
        base = os.path.join(args.dir, name[:-len(".eml")])
        with open(base + ".eml", "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        with open(base + ".json") as f:
            record = json.load(f)
        record.update({
            "file": name,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "date": str(message["Date"]),
            "content_type": message.get_content_type(),
            "text": part_text(message, "plain"),
            "html": part_text(message, "html"),
        })
        messages.append(record)
    json.dump(messages, sys.stdout, indent=1)
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve")
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p = commands.add_parser("show")
    p.add_argument("dir")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else show(args)


if __name__ == "__main__":
    main()
