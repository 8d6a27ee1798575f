#!/usr/bin/python3
"""hostile_peer - sends a node's replication port what an attacker would.

Part of gokart-exchange; MIT licence. Used by tests/integration/test_replication.sh.

usage:
  hostile_peer.py random ENDPOINT
      raw TCP garbage at the ZeroMQ port (no handshake)
  hostile_peer.py frames ENDPOINT SERVER_KEY_HEX [KEY_DIR]
      a CURVE client (with KEY_DIR's transport key, or a fresh one) sends oversized frames,
      malformed and non-canonical headers, a count that lies, and a hello flood
  hostile_peer.py send ENDPOINT SERVER_KEY_HEX KEY_DIR EXPORT_FILE
      a CURVE client with KEY_DIR's transport key sends every entry of an export (docs/log-format.md)
      as entries messages of the export's partnership

The modes below print one line of JSON, {"mode": ..., "sent": MESSAGES}; KEY_DIR "-" is a fresh key.
  hostile_peer.py entries ENDPOINT SERVER_KEY_HEX KEY_DIR EXPORT_FILE SPEC [OPTION...]
      sends entries of an export as they are or damaged. SPEC picks them: "a:3" (the
      advertiser's seq 3), "p:2-4" (a range of the publisher's chain), "all", "evidence".
      --flip       flips the last byte of each entry's signature (a forged signature)
      --cut N      keeps only the first N bytes of each entry (a truncated entry)
      --batch      one entries message for all of them (default: one message per entry)
      --header-pid HEX   names another partnership in the message's header
  hostile_peer.py forge ENDPOINT SERVER_KEY_HEX KEY_DIR SIGN_DIR EXPORT_FILE ROLE [OPTION...]
      signs, with SIGN_DIR's identity key, the next entry of ROLE's chain (a or p) of the
      export (seq = head + 1, linked to the head, seen = the other chain's head, an ack) and
      sends it. The author is SIGN_DIR's node, whatever ROLE's member is.
      --seen-ahead K   claims to have seen K entries more of the other chain than exist
      --pid HEX        writes it for that partnership instead of the export's
      --pad BYTES      an edit whose body pads the entry to about BYTES (oversized)
  hostile_peer.py flood ENDPOINT SERVER_KEY_HEX KEY_DIR COUNT PID_HEX [WIDTH]
      COUNT heads messages with resync = true naming PID_HEX, each with WIDTH partnerships
      (PID_HEX then random ones; default 1): a hello flood
  hostile_peer.py raw ENDPOINT SERVER_KEY_HEX KEY_DIR WHAT
      one malformed message: oversized (a frame over ZMQ_MAXMSGSIZE), not-msgpack, empty,
      truncated-header, count-lies, too-many (65 entries), unknown-type
  hostile_peer.py listen ENDPOINT KEY_DIR OUT_FILE
      binds a CURVE server with KEY_DIR's transport key where that node would listen and
      counts what arrives, by message type and partnership, until SIGTERM, in OUT_FILE
      (rewritten as it changes): {"messages": n, "heads": n, "cards": n, "entries": {PID_HEX: n}}
"""
import base64
import configparser
import ctypes
import ctypes.util
import hashlib
import json
import os
import signal
import socket
import sys
import time

import msgpack
import zmq
import zmq.utils.z85


def keys_from_dir(key_dir):
    """The transport key pair (z85) of a node directory."""
    if key_dir is None or key_dir == "-":
        return zmq.curve_keypair()
    parser = configparser.ConfigParser()
    parser.read(os.path.join(key_dir, "secret.key"))
    secret = base64.b64decode(parser["keys"]["curve"])
    secret_z85 = zmq.utils.z85.encode(secret)
    return zmq.curve_public(secret_z85), secret_z85


def client(endpoint, server_hex, key_dir):
    """A CURVE DEALER connected to endpoint."""
    public, secret = keys_from_dir(key_dir)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = zmq.utils.z85.encode(bytes.fromhex(server_hex))
    sock.linger = 2000
    sock.connect(endpoint)
    return sock


def mp_str(s):
    """msgpack fixstr/str8 of s."""
    b = s.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b


# Signing uses the libsodium the node links (crypto_sign_detached), so the test
# needs no Python binding of its own.
_SODIUM = None


def sodium():
    """libsodium, loaded once."""
    global _SODIUM
    if _SODIUM is None:
        _SODIUM = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
        if _SODIUM.sodium_init() < 0:
            sys.exit("libsodium failed to initialise")
    return _SODIUM


def sign_key(key_dir):
    """The Ed25519 secret key (64 bytes: seed then public key) of a node directory."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(key_dir, "secret.key"))
    return base64.b64decode(parser["keys"]["sign"])


def sign(secret, message):
    """Ed25519 signature of message."""
    sig = ctypes.create_string_buffer(64)
    sodium().crypto_sign_detached(sig, None, message, ctypes.c_ulonglong(len(message)), secret)
    return sig.raw


def entry_hash(entry):
    """BLAKE2b-256 of an entry's bytes (crypto_generichash without a key)."""
    return hashlib.blake2b(entry, digest_size=32).digest()


def build_entry(secret, pid, seq, prev, seen_seq, seen_hash, hlc, kind, body):
    """A signed entry (docs/log-format.md): canonical msgpack of the ten fields,
    then the signature over "GKX-ENTRY-V1" and those bytes."""
    author = secret[32:]
    fields = [1, pid, author, seq, prev, seen_seq, seen_hash, hlc, kind]
    head = b"\x9b" + b"".join(msgpack.packb(f, use_bin_type=True) for f in fields) + body
    return head + b"\xc4\x40" + sign(secret, b"GKX-ENTRY-V1" + head)


def read_export(path):
    """The header and the entries (bytes, as stored) of an export file."""
    data = open(path, "rb").read()
    unpacker = msgpack.Unpacker(raw=True)
    unpacker.feed(data)
    header = unpacker.unpack()
    entries = []
    start = unpacker.tell()
    for _ in unpacker:
        end = unpacker.tell()
        entries.append(data[start:end])
        start = end
    return header, entries


def chains(header, entries):
    """{"a": {seq: entry}, "p": {seq: entry}} of an export's chains, and its evidence."""
    out = {"a": {}, "p": {}}
    evidence = []
    for e in entries:
        f = msgpack.unpackb(e, raw=True)
        role = "a" if f[2] == header[b"advertiser"] else "p"
        if f[3] in out[role]:
            evidence.append(e)
        else:
            out[role][f[3]] = e
    return out, evidence


def pick(header, entries, spec):
    """The entries SPEC names: "all", "evidence", "a:3", "p:2-4"."""
    by_role, evidence = chains(header, entries)
    if spec == "all":
        return entries
    if spec == "evidence":
        return evidence
    role, _, seqs = spec.partition(":")
    lo, _, hi = seqs.partition("-")
    return [by_role[role][s] for s in range(int(lo), int(hi or lo) + 1)]


def entries_header(pid, count):
    """["entries", pid, count]."""
    return b"\x93" + mp_str("entries") + b"\xc4\x20" + pid + msgpack.packb(count)


def report(mode, sent):
    print(json.dumps({"mode": mode, "sent": sent}), flush=True)


def options(args):
    """--name [value] options after the positional arguments."""
    out = {}
    flags = {"--flip", "--batch"}
    i = 0
    while i < len(args):
        if args[i] in flags:
            out[args[i]] = True
            i += 1
        else:
            out[args[i]] = args[i + 1]
            i += 2
    return out


def mode_entries(sock, argv):
    header, entries = read_export(argv[0])
    opts = options(argv[2:])
    chosen = pick(header, entries, argv[1])
    if "--flip" in opts:
        chosen = [e[:-1] + bytes([e[-1] ^ 0x01]) for e in chosen]
    if "--cut" in opts:
        chosen = [e[:int(opts["--cut"])] for e in chosen]
    pid = bytes.fromhex(opts["--header-pid"]) if "--header-pid" in opts else header[b"pid"]
    if "--batch" in opts:
        sock.send_multipart([entries_header(pid, len(chosen))] + chosen)
        return 1
    for e in chosen:
        sock.send_multipart([entries_header(pid, 1), e])
    return len(chosen)


def mode_forge(sock, argv):
    secret = sign_key(argv[0])
    header, entries = read_export(argv[1])
    role = argv[2]
    opts = options(argv[3:])
    by_role, _ = chains(header, entries)
    own = by_role[role]
    other = by_role["p" if role == "a" else "a"]
    seq = max(own) + 1 if own else 1
    prev = entry_hash(own[seq - 1]) if own else b"\x00" * 32
    seen_seq = max(other) if other else 0
    seen_hash = entry_hash(other[seen_seq]) if other else b"\x00" * 32
    hlcs = [msgpack.unpackb(e, raw=True)[7] for e in entries]
    hlc = max(max(hlcs), int(time.time() * 1000) << 16) + (1 << 16)
    if "--seen-ahead" in opts:
        seen_seq += int(opts["--seen-ahead"])
        seen_hash = os.urandom(32)
    pid = bytes.fromhex(opts["--pid"]) if "--pid" in opts else header[b"pid"]
    kind, body = 7, b"\x80"     # an ack: the empty map
    if "--pad" in opts:
        # An edit of one free-form setting, as long as the limit on strings allows,
        # repeated under several keys until the entry is about BYTES long.
        pad = "x" * 16000
        n = int(opts["--pad"]) // 16000 + 1
        body = msgpack.packb({"k%02d" % i: pad for i in range(n)}, use_bin_type=True)
        kind = 2
    entry = build_entry(secret, pid, seq, prev, seen_seq, seen_hash, hlc, kind, body)
    sock.send_multipart([entries_header(pid, 1), entry])
    return 1


def mode_flood(sock, argv):
    count = int(argv[0])
    pid = bytes.fromhex(argv[1])
    width = int(argv[2]) if len(argv) > 2 else 1
    heads = [[pid, 0, 0]] + [[os.urandom(32), 0, 0] for _ in range(width - 1)]
    hello = b"\x93" + mp_str("heads") + b"\xc3" + msgpack.packb(heads, use_bin_type=True)
    for _ in range(count):
        sock.send_multipart([hello])
    return count


def mode_raw(sock, argv):
    """One malformed message: WHAT names it."""
    what = argv[0]
    pid = b"\xc4\x20" + os.urandom(32)
    messages = {
        "oversized": [os.urandom(300 * 1024)],                      # over ZMQ_MAXMSGSIZE
        "not-msgpack": [b"\xc1"],
        "empty": [b""],
        "truncated-header": [(b"\x93" + mp_str("heads") + b"\xc3\x91\x93" + pid + b"\x00\x00")[:20]],
        "count-lies": [b"\x93" + mp_str("entries") + pid + b"\x05", b"x"],
        "too-many": [b"\x93" + mp_str("entries") + pid + b"\x41"] + [b"x"] * 65,
        "unknown-type": [b"\x93" + mp_str("nonsense") + b"\x00\x00"],
    }
    sock.send_multipart(messages[what])
    return 1


def mode_listen(endpoint, key_dir, out_file):
    public, secret = keys_from_dir(key_dir)
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.linger = 0
    sock.bind(endpoint)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    seen = {"messages": 0, "heads": 0, "cards": 0, "entries": {}}

    def dump():
        with open(out_file + ".tmp", "w") as f:
            json.dump(seen, f)
        os.rename(out_file + ".tmp", out_file)

    dump()
    dumped = time.monotonic()
    changed = False
    while not stop:
        if changed and time.monotonic() - dumped >= 0.1:
            dump()
            dumped = time.monotonic()
            changed = False
        if not sock.poll(50):
            continue
        changed = True
        frames = sock.recv_multipart()
        seen["messages"] += 1
        try:
            head = msgpack.unpackb(frames[1], raw=True)
        except Exception:
            continue
        kind = head[0].decode(errors="replace")
        if kind == "heads":
            seen["heads"] += 1
        elif kind == "card":
            seen["cards"] += 1
        elif kind == "entries":
            pid = head[1].hex()
            seen["entries"][pid] = seen["entries"].get(pid, 0) + len(frames) - 2
    dump()


def main():
    mode = sys.argv[1]
    endpoint = sys.argv[2]
    if mode == "random":
        host, port = endpoint[len("tcp://"):].rsplit(":", 1)
        for _ in range(20):
            with socket.create_connection((host, int(port)), timeout=2) as s:
                try:
                    s.sendall(os.urandom(65536))
                except OSError:
                    pass
        return
    if mode == "listen":
        mode_listen(endpoint, sys.argv[3], sys.argv[4])
        return
    sock = client(endpoint, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    modes = {"entries": mode_entries, "forge": mode_forge, "flood": mode_flood,
             "raw": mode_raw}
    if mode in modes:
        sent = modes[mode](sock, sys.argv[5:])
        # Every message goes out before the process ends: the context's end
        # waits for them (up to the linger), where exiting would drop them.
        sock.linger = 10000
        sock.close()
        zmq.Context.instance().term()
        report(mode, sent)
        return
    if mode == "frames":
        pid = b"\xc4\x20" + b"\x00" * 32
        messages = [
            [os.urandom(300 * 1024)],                           # over ZMQ_MAXMSGSIZE
            [b"\xc1"],                                          # not msgpack
            [b""],                                              # empty frame
            [b"\x93" + mp_str("heads") + b"\xc2\xdc\x00\x00"],  # non-canonical array16
            [b"\x93" + mp_str("entries") + pid + b"\x05", b"x"],  # count lies
            [b"\x93" + mp_str("entries") + pid + b"\x01", os.urandom(70000)],
            [b"\x91" + mp_str("card"), os.urandom(200)],        # a card that does not verify
            [b"\x93" + mp_str("nonsense") + b"\x00\x00"],
        ]
        for m in messages:
            sock.send_multipart(m)
        hello = b"\x93" + mp_str("heads") + b"\xc3\x91\x93" + pid + b"\x00\x00"
        for _ in range(2000):
            sock.send_multipart([hello])
        time.sleep(0.5)
        return
    if mode == "send":
        data = open(sys.argv[5], "rb").read()
        unpacker = msgpack.Unpacker(raw=True)
        unpacker.feed(data)
        header = unpacker.unpack()
        pid = header[b"pid"]
        start = unpacker.tell()
        for _ in unpacker:
            end = unpacker.tell()
            entry = data[start:end]
            start = end
            sock.send_multipart([b"\x93" + mp_str("entries") + b"\xc4\x20" + pid + b"\x01", entry])
        time.sleep(0.5)
        return
    sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
