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
"""
import base64
import configparser
import os
import socket
import sys
import time

import msgpack
import zmq
import zmq.utils.z85


def keys_from_dir(key_dir):
    """The transport key pair (z85) of a node directory."""
    if key_dir is None:
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
    sock = client(endpoint, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
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
