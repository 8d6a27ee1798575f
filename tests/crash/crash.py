#!/usr/bin/python3
"""crash - the load, the kill and the checks of tests/crash/test_crash.sh.

Part of gokart-exchange; MIT licence.

usage: crash.py load --node a=DIR --node p=DIR --pid PID --count N --seed S [--concurrency C]
                     [--edits M] [--kill PROCESS_ID --kill-at K] --log FILE --out FILE
                     --acked FILE --edits-acked FILE
       crash.py check --node a=DIR --node p=DIR --pid PID --acked FILE --edits-acked FILE
                      --expected N [--resend SUMMARY] --known FILE [--full] --exports DIR
                      --audit GKX_AUDIT
                      [--crash-export FILE
                      --victim NAME] [--deadline SECONDS] --out FILE

load: sends N valid postbacks (10% of them retried) to the advertiser's postback endpoint with
tests/integration/postbacks.py's generator and checker, and meanwhile M offer edits through each
node's API, spread over the load. With --kill it sends SIGKILL to PROCESS_ID (a gkxd) once K
postbacks have been answered (or failed), plus 0 to 20 ms; a K of the number of requests or
more kills (K - requests) * 20 ms after the last answer, plus 0 to 20 ms. Every 2xx postback
answer's conversion id is appended to --acked, every 2xx edit's entry hash to --edits-acked
("NAME HASH" lines); --log is postbacks.py's --log (for --resend), --out a JSON summary. Exit
status 1 when an answer breaks the contract (a refusal other than "no answer" or a 503, a retry
answered with another conversion, ...).

check: waits (at most --deadline seconds) until both nodes hold the same chains, list and count
--expected conversions, serve the same offer and report digests, and each chain's last entry
other than an ack is acknowledged by the other chain; then checks that every acknowledged
conversion is listed exactly once by both nodes (none twice, no click id twice, nothing else;
those of earlier checks are taken from --known and only the later ones are listed, unless
--full, while the reports must count them all), that the publisher flagged none, that every
acknowledged edit is in both change logs, that both nodes' exports (the API's export) pass
gkx-audit verify and compare equal, and that the export the killed node's store gave right
after the kill (--crash-export) is sound and a prefix of its export now. Writes the findings as
JSON to --out (lost, duplicated, audit_verified, ...); exit status 1 when one fails.
"""
import argparse
import collections
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import postbacks  # noqa: E402  (tests/integration/postbacks.py)


# ---------------------------------------------------------------- nodes

class Node:
    """A node's API address and token, read from its directory as nodes.sh's api does."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        self.api = self.conf_value("api", "listen")
        self.postback = self.conf_value("postback", "listen")
        with open(os.path.join(directory, "api.token")) as f:
            self.token = f.readline().strip()

    def conf_value(self, section, key):
        current = None
        with open(os.path.join(self.dir, "gkx.conf")) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    current = line.strip("[]")
                elif current == section and "=" in line and not line.startswith(("#", ";")):
                    name, value = (part.strip() for part in line.split("=", 1))
                    if name == key:
                        return value
        return None

    def call(self, method, path, body=None, timeout=10.0, raw=False):
        """One API request: (HTTP status, JSON answer, or the bytes with raw); (None, error
        text) when no answer came."""
        host, port = self.api.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw_body = response.read()
        except (OSError, http.client.HTTPException) as e:
            return None, "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
        if raw and response.status == 200:
            return response.status, raw_body
        try:
            return response.status, json.loads(raw_body)
        except ValueError:
            return response.status, raw_body[:300].decode("utf-8", "replace")

    def get(self, path):
        status, answer = self.call("GET", path, timeout=30.0)
        if status != 200:
            raise RuntimeError("%s: GET %s: %s %s" % (self.name, path, status, answer))
        return answer


def parse_nodes(specs):
    nodes = {}
    for spec in specs:
        name, directory = spec.split("=", 1)
        nodes[name] = Node(name, directory)
    return nodes


# ---------------------------------------------------------------- load

def edit_texts(side, rng, tag):
    """A few edits of one side, each of a value the offer cannot hold yet (so none is refused
    as no_changes): registers both sides write (payout.amount, terms: concurrent edits of one
    field meet), a settings key among 20 of its own (the collection holds 100), and the blocked
    sources replaced by one new element (the set holds 1000)."""
    n = rng.randrange(10 ** 6)
    cents = rng.randrange(200, 400)
    return rng.choice([
        ["payout.amount=%d.%02d%04d" % (cents // 100, cents % 100, n % 10000 + 1)],
        ["terms=%s terms %s-%d" % (side, tag, n)],
        ["settings.%s-%d=%s-%d" % (side, n % 20, tag, n)],
        ["payout.amount=%d.%02d%04d" % (cents // 100, cents % 100, n % 10000 + 1),
         "settings.%s-last=%s-%d" % (side, tag, n)],
        ['optimization.blocked_sources=["%s-%s-%d"]' % (side, tag, n)],
    ])


class Load:
    def __init__(self, args):
        self.args = args
        self.nodes = parse_nodes(args.node)
        self.rng = random.Random(args.seed)
        adv = self.nodes["a"]
        with open(os.path.join(adv.dir, "postback.token")) as f:
            self.token = f.readline().strip()
        self.short = args.pid[:16]
        self.base = "http://%s/postback" % adv.postback
        self.jobs = postbacks.build_jobs(self.rng, self.short, self.token, args.count,
                                         retries=0.10, invalid=0.0)
        self.runner = postbacks.Runner(self.base, self.jobs, args.concurrency, 10.0)
        self.finished = threading.Event()
        self.edits = []
        self.edits_lock = threading.Lock()
        self.kill = None

    def progress(self):
        return sum(1 for job in self.jobs if job.done.is_set())

    def wait_progress(self, target):
        while not self.finished.is_set() and self.progress() < target:
            time.sleep(0.002)

    def editor(self, name, rng):
        node = self.nodes[name]
        targets = sorted(rng.uniform(0, len(self.jobs)) for _ in range(self.args.edits))
        for j, target in enumerate(targets):
            self.wait_progress(target)
            texts = edit_texts(name, rng, "%d.%d" % (self.args.seed, j))
            t0 = time.monotonic()
            status, answer = node.call("PATCH", "/v1/partnerships/%s/offer" % self.args.pid,
                                       {"edits": texts})
            record = {"node": name, "edits": texts, "status": status,
                      "ms": round((time.monotonic() - t0) * 1000, 1)}
            if status is not None and 200 <= status < 300:
                record["entry"] = answer.get("entry") if isinstance(answer, dict) else None
            elif status is None:
                record["error"] = answer
            else:
                record["answer"] = answer
            with self.edits_lock:
                self.edits.append(record)

    def killer(self, process, at, jitter_ms):
        if at < len(self.jobs):
            self.wait_progress(at)
        else:
            # After the last answer, while the publisher catches up and the acks go out.
            self.finished.wait()
            jitter_ms += (at - len(self.jobs)) * 20
        time.sleep(jitter_ms / 1000.0)
        answered = self.progress()
        os.kill(process, signal.SIGKILL)
        self.kill = {"process": process, "at": at, "answered": answered,
                     "ms": round((time.monotonic() - self.start) * 1000, 1)}

    def run(self):
        threads = []
        for name in sorted(self.nodes):
            rng = random.Random("%d-%s" % (self.args.seed, name))
            threads.append(threading.Thread(target=self.editor, args=(name, rng), daemon=True))
        if self.args.kill:
            threads.append(threading.Thread(target=self.killer, daemon=True, args=(
                self.args.kill, self.args.kill_at, self.rng.uniform(0, 20))))
        self.start = time.monotonic()
        for t in threads:
            t.start()
        seconds = self.runner.run()
        self.finished.set()
        for t in threads:
            t.join()
        summary = postbacks.evaluate(self.jobs, self.short, self.token, True, seconds)
        postbacks.write_log(self.args.log, self.jobs, self.token)
        failures = list(summary["failures"])
        for record in self.edits:
            # No answer or a 503 (the node killed, or catching up after its restart) leaves an
            # edit unacknowledged; any other refusal breaks the contract.
            if record["status"] is None or record["status"] == 503:
                continue
            if not 200 <= record["status"] < 300 or not isinstance(record.get("entry"), dict):
                failures.append({"edit": record})
        acked_edits = [r for r in self.edits if r.get("entry")]
        with open(self.args.acked, "a") as f:
            for cid in summary["conversion_ids"]:
                f.write(cid + "\n")
        with open(self.args.edits_acked, "a") as f:
            for r in acked_edits:
                f.write("%s %s\n" % (r["node"], r["entry"]["hash"]))
        out = {"ok": not failures, "failures": failures[:20],
               "postbacks": {k: summary[k] for k in ("sent", "valid_unique", "retries", "errors",
                                                     "reconnects", "http_statuses", "seconds")},
               "acknowledged": len(summary["conversion_ids"]),
               "edits": {"sent": len(self.edits), "acknowledged": len(acked_edits),
                         "records": self.edits},
               "kill": self.kill}
        with open(self.args.out, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        return 0 if out["ok"] else 1


# ---------------------------------------------------------------- check

class Check:
    def __init__(self, args):
        self.args = args
        self.nodes = parse_nodes(args.node)
        self.pid = args.pid
        self.resent = 0
        if args.resend:
            # postbacks.py --resend's summary: the postbacks left unanswered by the kill, sent
            # again, are acknowledged now.
            with open(args.resend) as f:
                summary = json.load(f)
            self.resent = summary["resent"]
            with open(args.acked, "a") as f:
                for cid in summary["conversion_ids"]:
                    f.write(cid + "\n")
        with open(args.acked) as f:
            self.acked = [line.strip() for line in f if line.strip()]
        self.edits = []
        with open(args.edits_acked) as f:
            for line in f:
                if line.strip():
                    name, entry = line.split()
                    self.edits.append((name, entry))
        self.problems = []
        self.state = {}
        # What the earlier checks found on each node, so that only the conversions written
        # since are listed (the "after" parameter); --full lists them all again.
        self.known = {"a": {"seq": 0, "conversions": []}, "p": {"seq": 0, "conversions": []}}
        if not args.full and os.path.exists(args.known):
            with open(args.known) as f:
                self.known = json.load(f)

    def problem(self, text):
        self.problems.append(text)

    def fetch(self):
        """Reads what both nodes serve now into self.state."""
        state = {}
        for name, node in self.nodes.items():
            known = self.known[name]
            new = node.get("/v1/partnerships/%s/conversions?after=%d&limit=100000" %
                           (self.pid, known["seq"]))["conversions"]
            heads = node.get("/v1/partnerships/%s" % self.pid)["heads"]
            report = node.get("/v1/report?partnership=%s" % self.pid)
            changes = node.get("/v1/partnerships/%s/changes" % self.pid)["changes"]
            conversions = [{"id": i, "click_id": c, "seq": q, "flag": None}
                           for i, c, q in known["conversions"]] + new
            # The last entry of each chain that is not an ack (the test writes the genesis,
            # edits and conversions): the other chain must acknowledge it (docs/protocol.md,
            # "Acknowledgements"), also when the node that had to was killed before it did.
            written = {"advertiser": max([1] + [c["seq"] for c in conversions]),
                       "publisher": 0}
            for c in changes:
                role = c["entry"]["role"]
                written[role] = max(written[role], c["entry"]["seq"])
            state[name] = {
                "conversions": conversions,
                "count": sum(t["count"] for t in report["totals"]),
                "heads": (heads["advertiser_seq"], heads["publisher_seq"]),
                "acked": (heads["advertiser_acked_seq"], heads["publisher_acked_seq"]),
                "written": (written["advertiser"], written["publisher"]),
                "offer": node.get("/v1/partnerships/%s/offer?digest=1" % self.pid)["digest"],
                "report": report["digest"],
                "changes": {c["entry"]["hash"] for c in changes},
            }
        self.state = state

    def unacknowledged(self, name):
        """The chains of which node NAME holds entries (other than acks) that the other chain
        does not acknowledge, as "ROLE up to seq N, acknowledged up to M"."""
        s = self.state[name]
        return ["%s up to seq %d, acknowledged up to %d" % (role, written, acked)
                for role, written, acked in zip(("advertiser", "publisher"), s["written"],
                                                s["acked"]) if acked < written]

    def caught_up(self):
        a, p = self.state["a"], self.state["p"]
        edits = {entry for _, entry in self.edits}
        return (len(a["conversions"]) == len(p["conversions"]) == self.args.expected and
                a["count"] == p["count"] == self.args.expected and
                a["heads"] == p["heads"] and a["offer"] == p["offer"] and
                a["report"] == p["report"] and edits <= a["changes"] and edits <= p["changes"]
                and not self.unacknowledged("a") and not self.unacknowledged("p"))

    def audits(self, *runs):
        """Runs gkx-audit once per argument list, all at once; returns (exit status, the JSON
        report) of each."""
        procs = [subprocess.Popen([self.args.audit] + list(argv) + ["--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for argv in runs]
        results = []
        for proc in procs:
            out, err = proc.communicate()
            try:
                results.append((proc.returncode, json.loads(out)))
            except ValueError:
                results.append((proc.returncode, {"stdout": out[-500:], "stderr": err[-500:]}))
        return results

    def audit(self, *argv):
        return self.audits(argv)[0]

    def export_pair(self):
        """Both nodes export the log through the API (GET .../export answers the file); returns
        ({name: path}, the compare report or None, the export errors)."""
        paths, errors = {}, []
        for name, node in self.nodes.items():
            path = os.path.join(self.args.exports, "%s.log" % name)
            status, answer = node.call("GET", "/v1/partnerships/%s/export" % self.pid,
                                       timeout=30.0, raw=True)
            if status == 200:
                with open(path, "wb") as f:
                    f.write(answer)
                paths[name] = path
            else:
                errors.append("%s: export: %s %s" % (name, status, answer))
        if len(paths) < 2:
            return paths, None, errors
        return paths, self.audit("compare", paths["a"], paths["p"]), errors

    def heads(self):
        """The heads of both chains as each node holds them: a cheap probe."""
        return {name: node.get("/v1/partnerships/%s" % self.pid)["heads"]
                for name, node in self.nodes.items()}

    def settle(self, deadline):
        """Waits until both nodes hold the same entries and serve the same digests, and their
        exports compare equal. An ack entry may still come 500 ms after the last entry
        (docs/protocol.md, "Acknowledgements"), so the heads must stay equal for 0.7 s before the
        nodes export, and they export again while one export is a prefix of the other.
        Returns the last export_pair."""
        last = ({}, None, ["the nodes never caught up"])
        since, previous = None, None
        while True:
            caught_up = False
            try:
                heads = self.heads()
                if heads["a"] != heads["p"] or heads != previous:
                    since, previous = time.monotonic(), heads
                late = time.monotonic() > deadline
                if heads["a"] == heads["p"] and time.monotonic() - since >= 0.7 or late:
                    self.fetch()
                    caught_up = self.caught_up()
            except RuntimeError as e:
                self.state = {}
                last = ({}, None, [str(e)])
            if caught_up:
                last = self.export_pair()
                compare = last[1]
                if compare is not None:
                    relations = [r.get("relation") for r in compare[1].get("chains", {}).values()]
                    if compare[0] == 0 and relations == ["equal", "equal"] or "fork" in relations:
                        return last
            if time.monotonic() > deadline:
                if not caught_up and self.state:
                    last = self.export_pair()
                return last
            time.sleep(0.1)

    def run(self):
        t0 = time.monotonic()
        paths, compare, errors = self.settle(t0 + self.args.deadline)
        result = {"catch_up_seconds": round(time.monotonic() - t0, 2), "resent": self.resent,
                  "lost": 0,
                  "duplicated": 0, "audit_verified": 0, "crash_export_verified": 0}
        for text in errors:
            self.problem(text)
        if not self.state:
            return self.finish(result)
        # An id is in the file once per 2xx answer naming it (a retry's answer names the first
        # send's conversion; postbacks.py checked that each names the right one).
        acked = set(self.acked)
        if len(acked) != self.args.expected:
            self.problem("%d postbacks acknowledged in all, %d sent" % (len(acked),
                                                                          self.args.expected))
        lost, duplicated = set(), set()
        for name in ("a", "p"):
            s = self.state[name]
            ids = collections.Counter(c["id"] for c in s["conversions"])
            clicks = collections.Counter(c["click_id"] for c in s["conversions"])
            missing = [i for i in acked if ids[i] == 0]
            twice = [i for i, n in ids.items() if n > 1] + \
                [c for c, n in clicks.items() if n > 1]
            extra = [i for i in ids if i not in acked]
            lost.update(missing)
            duplicated.update(twice)
            if missing:
                self.problem("%s: %d acknowledged conversions missing, e.g. %s" %
                             (name, len(missing), missing[:3]))
            if twice:
                self.problem("%s: %d conversions or click ids listed twice, e.g. %s" %
                             (name, len(twice), twice[:3]))
            if extra:
                self.problem("%s: %d conversions nobody acknowledged, e.g. %s" %
                             (name, len(extra), extra[:3]))
            edits = [e for _, e in self.edits if e not in s["changes"]]
            if edits:
                self.problem("%s: %d acknowledged edits not in the change log, e.g. %s" %
                             (name, len(edits), edits[:3]))
        flagged = [(c["id"], c["flag"]) for c in self.state["p"]["conversions"] if c["flag"]]
        if flagged:
            self.problem("the publisher flagged %d conversions, e.g. %s" % (len(flagged),
                                                                            flagged[:2]))
        for name in ("a", "p"):
            if self.unacknowledged(name):
                self.problem("%s: entries never acknowledged by the other member: %s" %
                             (name, "; ".join(self.unacknowledged(name))))
        for what in ("heads", "count", "offer", "report"):
            if self.state["a"][what] != self.state["p"][what]:
                self.problem("%s differ: advertiser %s, publisher %s" % (
                    what, self.state["a"][what], self.state["p"][what]))
            if s["count"] != self.args.expected:
                self.problem("%s: the report counts %d conversions, %d were sent" %
                             (name, s["count"], self.args.expected))
        result["lost"], result["duplicated"] = len(lost), len(duplicated)
        result["conversions"] = len(self.state["a"]["conversions"])
        if not self.problems:
            with open(self.args.known, "w") as f:
                json.dump({name: {"seq": max([c["seq"] for c in s["conversions"]], default=0),
                                  "conversions": [[c["id"], c["click_id"], c["seq"]]
                                                  for c in s["conversions"]]}
                           for name, s in self.state.items()}, f)
        # The audits of the exports, and of the export the killed node's store gave right after
        # the kill: sound, and extended (equal or a prefix, never a fork) by its log now.
        names = sorted(paths)
        runs = [("verify", paths[name]) for name in names]
        now = paths.get(self.args.victim)
        if self.args.crash_export:
            runs.append(("verify", self.args.crash_export))
            if now:
                runs.append(("compare", self.args.crash_export, now))
        results = self.audits(*runs)
        for name, (rc, report) in zip(names, results):
            if rc == 0 and report.get("sound") is True:
                result["audit_verified"] += 1
            else:
                self.problem("%s: gkx-audit verify: %s" % (name, json.dumps(report)[:600]))
        if compare is not None:
            relations = {c: r.get("relation") for c, r in compare[1].get("chains", {}).items()}
            if compare[0] != 0 or relations != {"advertiser": "equal", "publisher": "equal"}:
                self.problem("gkx-audit compare: %s" % json.dumps(compare[1])[:600])
        if self.args.crash_export:
            rc, report = results[len(names)]
            if rc == 0 and report.get("sound") is True:
                result["crash_export_verified"] = 1
            else:
                self.problem("the killed node's store: gkx-audit verify: %s" %
                             json.dumps(report)[:600])
            if now:
                rc, report = results[len(names) + 1]
                relations = {c: r.get("relation") for c, r in report.get("chains", {}).items()}
                if rc != 0 or any(r not in ("equal", "a-prefix") for r in relations.values()):
                    self.problem("the killed node's log after its restart does not extend the "
                                 "one it left: %s" % json.dumps(report)[:600])
        return self.finish(result)

    def finish(self, result):
        result["ok"] = not self.problems
        result["problems"] = self.problems
        with open(self.args.out, "w") as f:
            json.dump(result, f)
            f.write("\n")
        for text in self.problems:
            print(text)
        return 0 if result["ok"] else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description="Load, kill and checks of the crash test.")
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load")
    check = sub.add_parser("check")
    for p in (load, check):
        p.add_argument("--node", action="append", required=True, metavar="NAME=DIR",
                       help="a=ADVERTISER_DIR and p=PUBLISHER_DIR")
        p.add_argument("--pid", required=True)
        p.add_argument("--acked", required=True)
        p.add_argument("--edits-acked", required=True)
        p.add_argument("--out", required=True)
    load.add_argument("--count", type=int, required=True)
    load.add_argument("--seed", type=int, required=True)
    load.add_argument("--concurrency", type=int, default=8)
    load.add_argument("--edits", type=int, default=3)
    load.add_argument("--kill", type=int, default=0, metavar="PROCESS_ID")
    load.add_argument("--kill-at", type=int, default=0)
    load.add_argument("--log", required=True)
    check.add_argument("--expected", type=int, required=True)
    check.add_argument("--resend", metavar="SUMMARY",
                       help="postbacks.py --resend's --out: its conversion ids are added to --acked")
    check.add_argument("--exports", required=True)
    check.add_argument("--audit", required=True)
    check.add_argument("--known", required=True,
                       help="what the last check found, read and then written")
    check.add_argument("--full", action="store_true",
                       help="list every conversion again instead of those after --known")
    check.add_argument("--crash-export")
    check.add_argument("--victim")
    check.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.command == "load":
        return Load(args).run()
    return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
