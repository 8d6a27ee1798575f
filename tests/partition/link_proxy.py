#!/usr/bin/python3
"""link_proxy - a TCP proxy between two gkxd nodes that a test can cut, blackhole and degrade.

Part of gokart-exchange; MIT licence.

usage: link_proxy.py serve --link NAME=PORT:HOST:PORT [--link ...] --control-file FILE [--seed N]
       link_proxy.py ctl CONTROL_FILE COMMAND [ARG...]

serve listens on 127.0.0.1:PORT for each link and forwards every connection to HOST:PORT (a
node's replication ROUTER). A node's card names the proxy's port ([node] advertise), so the
other node's DEALER connects through it: one link per direction. Once every port is bound it
listens for commands on a control port of 127.0.0.1 and writes that port to FILE (whole, by a
rename), so a test waits for FILE to appear.

Commands (one line; the answer is one line of JSON; LINK is a link's name, none for all links):

  cut [LINK]                 close every connection (RST) and refuse new ones (accepted and
                             reset at once): a link that is down and says so
  blackhole [LINK]           forward nothing: every live connection becomes a sink (its bytes
                             are read and thrown away, nothing is sent and nothing is closed)
                             and new connections are accepted as sinks: a link that is down
                             and says nothing. A connection that was sunk stays dead after
                             restore, as after a lost NAT mapping: only the node can notice
                             (ZeroMQ heartbeats, handshake timeout) and reconnect
  bad MAX_DELAY_MS DROP_MEAN_S [LINK]
                             a bad link: each chunk read is delayed by a random 0..MAX_DELAY_MS
                             (in order within a connection), and each connection is dropped
                             (RST both ways, what it held in flight lost) after a random,
                             exponentially distributed life of mean DROP_MEAN_S seconds
  restore [LINK]             forward normally again (chunks still delayed go out in order)
  stats                      {"links": {NAME: {...counters}}, "total": {...}}
  quit                       stop the proxy

Bytes inside a live connection are never altered: a fault shows up as a connection closed
with what it carried in flight lost, or a connection that goes silent, never as a corrupt
stream (CURVE would only reset it). Counters per link: accepted, refused (accepted while cut),
sunk (connections turned into sinks), dropped (closed by bad mode), cut (closed by cut),
closed (ended by one of the nodes), open (alive and forwarding), bytes (forwarded).

ctl sends one command to a running proxy and prints its answer; exit status 1 when the proxy
answers an error or cannot be reached.
"""
import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time

CHUNK = 65536
TICK = 0.1


def reset(writer):
    """Closes a connection with a RST, dropping what its buffers hold."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def log(link, conn, event):
    """One line per connection event on stderr: what a failing test shows."""
    print("%.3f link %s conn %d: %s" % (time.monotonic(), link.name, conn.number, event),
          file=sys.stderr, flush=True)


class Conn:
    """One proxied connection: the node that connected (down) and the node behind (up)."""

    def __init__(self, link, down_r, down_w):
        self.link = link
        self.number = link.count["accepted"]
        self.down_r, self.down_w = down_r, down_w
        self.up_r = self.up_w = None
        self.sunk = False
        self.dead = False
        self.tasks = []
        self.life = None

    def kill(self, counter):
        """RST both sides; what was in flight is lost."""
        if self.dead:
            return
        self.dead = True
        self.link.count[counter] += 1
        log(self.link, self, "reset (%s)" % counter)
        for w in (self.down_w, self.up_w):
            if w is not None:
                reset(w)
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.link.conns.discard(self)

    def finish(self):
        """Both sides are done (closed by the nodes)."""
        if self.dead:
            return
        self.dead = True
        self.link.count["closed"] += 1
        log(self.link, self, "closed by the nodes")
        for w in (self.down_w, self.up_w):
            if w is not None:
                w.close()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.link.conns.discard(self)

    def sink(self):
        if not self.sunk:
            self.sunk = True
            self.link.count["sunk"] += 1
            log(self.link, self, "sunk")


class Link:
    def __init__(self, proxy, name, port, host, target_port):
        self.proxy = proxy
        self.name, self.port, self.host, self.target_port = name, port, host, target_port
        self.mode = "good"
        self.max_delay = 0.0
        self.drop_mean = 0.0
        self.conns = set()
        self.count = {k: 0 for k in ("accepted", "refused", "sunk", "dropped", "cut", "closed",
                                     "bytes")}

    def stats(self):
        s = dict(self.count)
        s["mode"] = self.mode
        s["open"] = sum(1 for c in self.conns if not c.sunk)
        s["sinks"] = sum(1 for c in self.conns if c.sunk)
        return s

    def draw_life(self):
        return time.monotonic() + self.proxy.rng.expovariate(1.0 / self.drop_mean)

    async def accept(self, reader, writer):
        self.count["accepted"] += 1
        if self.mode == "cut":
            self.count["refused"] += 1
            reset(writer)
            return
        conn = Conn(self, reader, writer)
        self.conns.add(conn)
        log(self, conn, "accepted (%s)" % self.mode)
        if self.mode == "blackhole":
            conn.sink()
            await self.discard(conn, reader, None)
            return
        try:
            conn.up_r, conn.up_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            conn.kill("closed")
            return
        if conn.dead:
            # Cut while connecting.
            reset(conn.up_w)
            return
        if self.mode == "bad":
            conn.life = self.draw_life()
        conn.tasks = [asyncio.ensure_future(self.pipe(conn, conn.down_r, conn.up_w)),
                      asyncio.ensure_future(self.pipe(conn, conn.up_r, conn.down_w))]
        await asyncio.gather(*conn.tasks, return_exceptions=True)
        conn.finish()

    async def discard(self, conn, reader, other):
        """A sink: reads until the node closes its side, sends nothing."""
        try:
            while await reader.read(CHUNK):
                pass
        except (OSError, asyncio.CancelledError):
            pass
        if other is None:
            conn.finish()

    async def pipe(self, conn, reader, writer):
        """One direction: chunks go out in order, each no earlier than its delivery time."""
        # Bounded, so that a node that does not read (SIGSTOP) pushes back on the
        # sender through TCP, as it would without the proxy.
        queue = asyncio.Queue(maxsize=64)
        sender = asyncio.ensure_future(self.send(conn, queue, writer))
        conn.tasks.append(sender)
        last = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                if conn.sunk:
                    if not data:
                        log(self, conn, "sink: %s side closed" % ("down" if reader is conn.down_r else "up"))
                        # The node closed its side of a dead connection: the other node
                        # is told nothing (its own heartbeats must find out); the
                        # connection ends once both have closed.
                        return
                    continue
                now = time.monotonic()
                delay = self.proxy.rng.uniform(0, self.max_delay) if self.mode == "bad" else 0.0
                last = max(last, now + delay)
                await queue.put((last, data))
                if not data:
                    break
            await sender
        except (OSError, ConnectionError):
            conn.kill("closed")
        finally:
            sender.cancel()

    async def send(self, conn, queue, writer):
        try:
            while True:
                when, data = await queue.get()
                if conn.sunk:
                    continue
                wait = when - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if conn.sunk or conn.dead:
                    continue
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                self.count["bytes"] += len(data)
                await writer.drain()
        except (OSError, ConnectionError):
            conn.kill("closed")

    def set_mode(self, mode, max_delay=0.0, drop_mean=0.0):
        self.mode = mode
        self.max_delay, self.drop_mean = max_delay, drop_mean
        for conn in list(self.conns):
            if mode == "cut":
                conn.kill("cut")
            elif mode == "blackhole":
                conn.sink()
            elif mode == "bad":
                conn.life = None if conn.sunk else self.draw_life()
            else:
                conn.life = None

    def tick(self):
        if self.mode != "bad":
            return
        now = time.monotonic()
        for conn in list(self.conns):
            if conn.life is not None and now >= conn.life and not conn.sunk:
                conn.kill("dropped")


class Proxy:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.links = {}
        self.done = asyncio.Event()

    def select(self, name):
        if name is None:
            return list(self.links.values())
        if name not in self.links:
            raise ValueError("no link %r (links: %s)" % (name, ", ".join(sorted(self.links))))
        return [self.links[name]]

    def command(self, words):
        if not words:
            raise ValueError("empty command")
        verb, args = words[0], words[1:]
        if verb in ("cut", "blackhole", "restore") and len(args) <= 1:
            for link in self.select(args[0] if args else None):
                link.set_mode("good" if verb == "restore" else verb)
        elif verb == "bad" and len(args) in (2, 3):
            max_delay, drop_mean = float(args[0]) / 1000.0, float(args[1])
            if not 0 <= max_delay <= 10 or not drop_mean > 0:
                raise ValueError("bad MAX_DELAY_MS (0 to 10000) DROP_MEAN_S (> 0) [LINK]")
            for link in self.select(args[2] if len(args) == 3 else None):
                link.set_mode("bad", max_delay, drop_mean)
        elif verb == "stats" and not args:
            pass
        elif verb == "quit" and not args:
            self.done.set()
        else:
            raise ValueError("unknown command %r (cut, blackhole, bad, restore, stats, quit)"
                             % " ".join(words))
        links = {name: link.stats() for name, link in self.links.items()}
        total = {k: sum(s[k] for s in links.values())
                 for k in ("accepted", "refused", "sunk", "dropped", "cut", "closed", "bytes")}
        return {"ok": True, "links": links, "total": total}

    async def control(self, reader, writer):
        try:
            line = await reader.readline()
            try:
                answer = self.command(line.decode("ascii").split())
            except (ValueError, UnicodeDecodeError) as e:
                answer = {"ok": False, "error": str(e)}
            writer.write((json.dumps(answer, sort_keys=True) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()

    async def ticker(self):
        while True:
            await asyncio.sleep(TICK)
            for link in self.links.values():
                link.tick()


async def serve(args):
    proxy = Proxy(args.seed)
    servers = []
    for spec in args.link:
        name, _, rest = spec.partition("=")
        port, host, target = rest.split(":")
        link = Link(proxy, name, int(port), host, int(target))
        proxy.links[name] = link
        servers.append(await asyncio.start_server(link.accept, "127.0.0.1", int(port)))
    control = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    tmp = args.control_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % control.sockets[0].getsockname()[1])
    os.rename(tmp, args.control_file)
    ticker = asyncio.ensure_future(proxy.ticker())
    await proxy.done.wait()
    ticker.cancel()
    for s in servers + [control]:
        s.close()


def ctl(args):
    try:
        with open(args.control_file) as f:
            port = int(f.read())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall((" ".join([args.command] + args.args) + "\n").encode())
            answer = s.makefile().readline()
    except (OSError, ValueError) as e:
        print("link_proxy: %s" % e, file=sys.stderr)
        return 1
    print(answer.strip())
    return 0 if json.loads(answer).get("ok") else 1


def main():
    parser = argparse.ArgumentParser(description="TCP proxy between two nodes for fault tests.")
    sub = parser.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--link", action="append", required=True, help="NAME=PORT:HOST:PORT")
    s.add_argument("--control-file", required=True)
    s.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("ctl")
    c.add_argument("control_file")
    c.add_argument("command")
    c.add_argument("args", nargs="*")
    args = parser.parse_args()
    if args.verb == "serve":
        for spec in args.link:
            name, eq, rest = spec.partition("=")
            if not name or not eq or len(rest.split(":")) != 3:
                parser.error("--link %r: expected NAME=PORT:HOST:PORT" % spec)
        asyncio.run(serve(args))
        return 0
    return ctl(args)


if __name__ == "__main__":
    sys.exit(main())
