#!/usr/bin/python3
"""directory_client - talks to a gkxd directory the way any CURVE client may.

Part of gokart-exchange; MIT licence. Used by tests/integration/test_directory.sh.
The directory protocol is docs/protocol.md, section "Directory".

usage:
  directory_client.py publish ADDRESS CARD_JSON [FIELD=VALUE ...]
      re-encodes a card (the JSON of 'gkx card --json' or of a listing) as the signed msgpack
      form and publishes it; FIELD=VALUE changes a field first (a forgery: the signature no
      longer covers it). Prints "ok" or "error CODE MESSAGE".
  directory_client.py list ADDRESS [ROLE [VERTICAL [COUNTRY]]]
      prints one line per card listed: id, name, timestamp
  directory_client.py hostile ADDRESS
      sends what an attacker would: garbage, oversized and extra frames, non-canonical and
      unknown headers, requests without their frame; then checks that a list still answers
ADDRESS is tcp://host:port@KEY ('gkx directory-address'). Exits 1 when the directory does
not answer within 5 s.
"""
import json
import os
import sys

import msgpack
import zmq
import zmq.utils.z85

TIMEOUT_MS = 5000


def connect(address):
    """A DEALER with a fresh CURVE key pair, connected to the directory at address."""
    endpoint, key_hex = address.rsplit("@", 1)
    public, secret = zmq.curve_keypair()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = zmq.utils.z85.encode(bytes.fromhex(key_hex))
    sock.linger = 0
    sock.connect(endpoint)
    return sock


def answer(sock, rid):
    """The answer to request rid: (header list, frames after it)."""
    while sock.poll(TIMEOUT_MS):
        frames = sock.recv_multipart()
        header = msgpack.unpackb(frames[0], raw=False)
        if header[1] == rid:
            return header, frames[1:]
    sys.exit("no answer within %d ms" % TIMEOUT_MS)


def card_bytes(card):
    """The signed msgpack form of a card's JSON: [fields, signature], keys in order."""
    fields = {
        "countries": card["countries"],
        "email": card["email"],
        "endpoint": card["endpoint"],
        "id": bytes.fromhex(card["id"]),
        "name": card["name"],
        "role": card["role"],
        "timestamp": card["timestamp"],
        "transport_key": bytes.fromhex(card["transport_key"]),
        "verticals": card["verticals"],
    }
    return msgpack.packb([fields, bytes.fromhex(card["signature"])], use_bin_type=True)


def publish(address, path, changes):
    card = json.load(open(path))
    for change in changes:
        field, value = change.split("=", 1)
        card[field] = int(value) if field == "timestamp" else value
    sock = connect(address)
    sock.send_multipart([msgpack.packb(["publish", 7]), card_bytes(card)])
    header, _ = answer(sock, 7)
    print("ok" if header[0] == "ok" else "error %s %s" % (header[2], header[3]))


def list_cards(address, role="", vertical="", country=""):
    sock = connect(address)
    sock.send_multipart([msgpack.packb(["list", 9, role, vertical, country])])
    header, frames = answer(sock, 9)
    assert header[0] == "cards" and header[2] == len(frames), header
    for frame in frames:
        fields = msgpack.unpackb(frame, raw=False)[0]
        print(fields["id"].hex(), fields["name"], fields["timestamp"])


def hostile(address):
    # Frames over ZMQ_MAXMSGSIZE make ZeroMQ drop the connection: their own socket.
    big = connect(address)
    big.send_multipart([os.urandom(20000)])
    big.send_multipart([msgpack.packb(["publish", 1]), os.urandom(20000)])
    sock = connect(address)
    card = b"\x92\x80\xc4\x40" + b"\x00" * 64
    requests = [
        [b"\xc1"],                                          # not msgpack
        [b""],                                              # an empty header
        [b"\x92\xa7publish\xcd\x00\x01", card],             # non-canonical rid
        [msgpack.packb(["nonsense", 2])],                   # unknown type
        [msgpack.packb(["publish", 3])],                    # no card
        [msgpack.packb(["publish", 4]), card],              # a card that does not decode
        [msgpack.packb(["withdraw", 5]), os.urandom(110)],  # a withdrawal that does not
        [msgpack.packb(["list", 6, "", "", ""]), b"x"],     # a list with a frame after it
        [msgpack.packb(["list", 7, "admin", "", ""])],      # a bad filter
        [msgpack.packb(["ok", 8])],                         # an answer, not a request
        [msgpack.packb(["publish", 9])] + [b"x"] * 5000,    # many frames
        [msgpack.packb([{"a": 1}] * 200)],                  # nesting, no type
    ]
    for request in requests:
        sock.send_multipart(request)
    for _ in range(2000):
        sock.send_multipart([msgpack.packb(["list", 10, "", "", ""])])
    # Every request was answered, the bad ones with an error: the last one's answer comes.
    header, _ = answer(sock, 9)
    assert header[0] == "error", header
    check = connect(address)
    check.send_multipart([msgpack.packb(["list", 11, "", "", ""])])
    header, _ = answer(check, 11)
    assert header[0] == "cards", header
    print("still answering")


def main():
    mode, address = sys.argv[1], sys.argv[2]
    if mode == "publish":
        publish(address, sys.argv[3], sys.argv[4:])
    elif mode == "list":
        list_cards(address, *sys.argv[3:])
    elif mode == "hostile":
        hostile(address)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
