"""gkxbench - what bench/catchup, footprint and readside share: gkxd nodes in a temporary
directory, a keep-alive API client, wrk runs that print JSON, memory and disk readings.

Part of gokart-exchange; MIT licence.

Not a benchmark itself (no #! line): the scripts import it from their own directory.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
DEFAULT_BUILD = os.path.join(ROOT, "build", "plain")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def median(values):
    return statistics.median(values) if values else None


def wait_for(seconds, what, fn, pause=0.01):
    """Calls fn until it returns something true, for at most seconds; returns its value. A
    call that times out or loses its connection (a node whose loop is busy for longer than
    the client's timeout) counts as not yet."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = fn()
        except (OSError, http.client.HTTPException):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not within %d s" % (what, seconds))
        time.sleep(pause)


class ApiError(RuntimeError):
    def __init__(self, method, path, status, payload):
        super().__init__("%s %s: %d %s" % (method, path, status, payload[:200]))
        self.status = status


def metric(api, name):
    """The sum of a metric family's samples in GET /metrics of api (an Api or a Node)."""
    text = api.call("GET", "/metrics", raw=True).decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Api:
    """A keep-alive HTTP connection to a node's tenant API (one per thread)."""

    def __init__(self, port, token, timeout=120):
        self.port, self.token, self.timeout, self.conn = port, token, timeout, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method, path, body=None, raw=False):
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        while True:
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                # The node closes keep-alive connections idle for 10 s: a GET on one it
                # closed is sent again on a new one.
                stale = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                if not (reused and method == "GET" and isinstance(e, stale)):
                    raise
        if response.status >= 300:
            raise ApiError(method, path, response.status, payload)
        return payload if raw else json.loads(payload)


class Node:
    """A node directory made by `gkx init` and, while it runs, its gkxd process."""

    def __init__(self, build, root, name, role):
        self.build, self.root, self.name, self.role = build, root, name, role
        self.dir = os.path.join(root, name)
        self.api_port = free_port()
        self.postback_port = free_port() if role == "advertiser" else None
        cmd = [os.path.join(build, "gkx"), "init", "--dir", self.dir, "--role", role,
               "--name", name, "--listen", "tcp://127.0.0.1:%d" % free_port(),
               "--api", "127.0.0.1:%d" % self.api_port]
        if self.postback_port:
            cmd += ["--postback", "127.0.0.1:%d" % self.postback_port]
        subprocess.run(cmd, check=True, capture_output=True)
        self.card = json.loads(subprocess.run([os.path.join(build, "gkx"), "--dir", self.dir,
                                               "card", "--json"],
                                              check=True, capture_output=True).stdout)
        self.token = open(os.path.join(self.dir, "api.token")).read().strip()
        self.api = Api(self.api_port, self.token)
        self.proc = None
        self.log = None

    def start(self, deadline=60):
        """Starts gkxd and waits until GET /v1/status answers; returns the seconds from the
        process's start until that answer (the client's polls are 5 ms apart)."""
        self.log = open(os.path.join(self.root, self.name + ".log"), "a")
        started = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(self.build, "gkxd"), "--dir", self.dir],
                                     stderr=self.log)
        probe = Api(self.api_port, self.token, timeout=deadline)
        while True:
            try:
                probe.call("GET", "/v1/status")
                break
            except (OSError, http.client.HTTPException, ApiError):
                probe.close()
                if self.proc.poll() is not None:
                    raise RuntimeError("%s exited with %d (log: %s.log)"
                                       % (self.name, self.proc.returncode, self.name))
                if time.monotonic() - started > deadline:
                    raise RuntimeError(self.name + " did not start")
                time.sleep(0.005)
        seconds = time.monotonic() - started
        probe.close()
        self.api.close()
        return seconds

    def stop(self, timeout=300):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.api.close()
        self.log.close()

    def call(self, method, path, body=None, raw=False):
        return self.api.call(method, path, body, raw)

    def status(self):
        return self.call("GET", "/v1/status")

    def heads(self, pid):
        return self.call("GET", "/v1/partnerships/" + pid)["heads"]

    def memory(self):
        """The process's resident memory from /proc/PID/status, in bytes: RssAnon (heap,
        stacks, anonymous maps: what the node itself allocated), RssFile (mapped files, here
        mostly LMDB's data.mdb pages read so far, which the kernel may drop), VmHWM (peak)."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem", "VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out

    def store_bytes(self):
        """(apparent, allocated) bytes of the node's LMDB data.mdb: st_size and st_blocks*512."""
        for top, _, files in os.walk(self.dir):
            if "data.mdb" in files:
                st = os.stat(os.path.join(top, "data.mdb"))
                return st.st_size, st.st_blocks * 512
        raise RuntimeError("no data.mdb under " + self.dir)

    def dir_bytes(self):
        """Allocated bytes of everything under the node's directory (du)."""
        total = 0
        for top, _, files in os.walk(self.dir):
            for name in files:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
        return total

    def metric(self, name):
        """The sum of a metric family's samples in GET /metrics."""
        return metric(self, name)


class Pair:
    """An advertiser and a publisher node, peers of each other, in a temporary directory
    that close() removes."""

    def __init__(self, build):
        self.build = build
        self.root = tempfile.mkdtemp(prefix="gkx-bench-")
        self.nodes = []
        self.adv = Node(build, self.root, "adv", "advertiser")
        self.pub = Node(build, self.root, "pub", "publisher")
        self.nodes = [self.adv, self.pub]
        self.adv.start()
        self.pub.start()
        self.adv.call("POST", "/v1/peers", self.pub.card)
        self.pub.call("POST", "/v1/peers", self.adv.card)
        self.postback_token = None

    def share(self, name, wait=True):
        """Shares an offer from the advertiser to the publisher; returns its partnership id
        (once the publisher holds it, with wait)."""
        offer = {"name": name, "payout": {"model": "cpi", "amount": "1.00", "currency": "USD",
                                          "events": {"purchase": "5.00"}}}
        pid = self.adv.call("POST", "/v1/partnerships",
                            {"publisher": self.pub.card["id"], "offer": offer})["id"]
        if wait:
            wait_for(30, "the publisher holding " + pid, lambda: self._held(pid))
        return pid

    def _held(self, pid):
        try:
            self.pub.call("GET", "/v1/partnerships/%s/offer" % pid)
            return True
        except ApiError:
            return False

    def postback_base(self, pid):
        """(base URL without the MMP, the node's postback token) from the postback URL."""
        url = self.adv.call("GET", "/v1/partnerships/%s/postback-url?mmp=appsflyer" % pid)["url"]
        base, _, query = url.partition("?")
        token = dict(p.split("=", 1) for p in query.split("&"))["t"]
        return base.rsplit("/", 1)[0], token

    def close(self):
        for node in self.nodes:
            try:
                node.stop()
            except Exception:       # noqa: BLE001 - a cleanup path: stop the others anyway
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def short_id(pid):
    """The partnership's short id in postback URLs: the first 16 hex digits of its id."""
    return pid[:16]


def wrk_json(args, script, script_args, timeout=None):
    """Runs wrk with one of bench/*.lua, whose done() prints one line "WRKJSON {...}";
    returns that object."""
    cmd = ["wrk"] + args + ["-s", os.path.join(BENCH, script), "--"] + [str(a) for a in
                                                                       script_args]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise RuntimeError("wrk is not installed (Debian package wrk; scripts/deps)")
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise RuntimeError("wrk printed no result:\n" + out.stdout + out.stderr)


def flood(base, token, shorts, count, connections=64, threads=2, event_time=None, tag=None,
          limit=None):
    """Sends count distinct valid AppsFlyer purchase postbacks through the advertiser's
    postback endpoint with wrk and bench/postbacks.lua, spread round-robin over the short ids,
    and checks every answer. Returns sent, valid (answered 200 as a new conversion), bad
    (anything else), seconds (from the first postback sent to the last answer),
    per_second (valid / seconds) and latency_ms (p50, p99, max of one postback's answer)."""
    threads = max(1, min(threads, connections, count))
    connections = max(connections, threads)
    tag = tag or "%x" % int(time.time() * 1000)
    limit = limit or int(120 + count / 100)
    work = tempfile.mkdtemp(prefix="gkx-flood-")
    shorts_path = os.path.join(work, "shorts")
    with open(shorts_path, "w") as f:
        f.write("\n".join(shorts) + "\n")
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % limit,
           "--timeout", "60s", base, "-s", os.path.join(BENCH, "postbacks.lua"), "--",
           token, shorts_path, str(count), str(threads), str(event_time or int(time.time())),
           tag, work]
    try:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        except FileNotFoundError:
            raise RuntimeError("wrk is not installed (Debian package wrk; scripts/deps)")
        ends = [os.path.join(work, "end-%d" % k) for k in range(threads)]
        while proc.poll() is None and not all(os.path.exists(p) for p in ends):
            time.sleep(0.01)
        # wrk's main thread sleeps for -d whatever its threads do; SIGINT ends the sleep
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate()
        result = None
        for line in out.splitlines():
            if line.startswith("WRKJSON "):
                result = json.loads(line[len("WRKJSON "):])
        if result is None:
            raise RuntimeError("wrk printed no result:\n" + out + err)
        if all(os.path.exists(p) for p in ends):
            begin = min(os.stat(os.path.join(work, "start-%d" % k)).st_mtime
                        for k in range(threads))
            end = max(os.stat(p).st_mtime for p in ends)
            result["seconds"] = round(end - begin, 3)
            result["per_second"] = round(result["valid"] / max(end - begin, 1e-6), 1)
        else:
            result["seconds"] = None
            result["per_second"] = None
            result["unfinished"] = "wrk stopped after %d s (-d) before every postback was " \
                "answered" % limit
        result["connections"] = connections
        result["threads"] = threads
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
