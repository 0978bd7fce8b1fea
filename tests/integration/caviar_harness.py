"""Shared helpers of the integration tests: start caviard (with local workers) on loopback
ephemeral ports with a temporary database, talk to its HTTP API (validating every JSON reply
against schemas/api.schema.json), and generate small datasets."""

import json
import math
import os
import random
import re
import signal
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")

# (method, path pattern, status) -> $def of schemas/api.schema.json. Paths are without the query
# string; any 4xx/5xx reply is an `error`.
API_REPLIES = [
    ("GET", r"/v1/health", 200, "health"),
    ("POST", r"/v1/jobs", 201, "job_created"),
    ("GET", r"/v1/jobs", 200, "jobs_list"),
    ("GET", r"/v1/jobs/\d+", 200, "job"),
    ("GET", r"/v1/jobs/\d+/trials", 200, "trials_list"),
    ("GET", r"/v1/jobs/\d+/history", 200, "history"),
    ("DELETE", r"/v1/jobs/\d+", 200, "job_deleted"),
    ("POST", r"/v1/jobs/\d+/cancel", 200, "cancel"),
    ("POST", r"/v1/jobs/\d+/extend", 200, "job_extended"),
    ("POST", r"/v1/trials/\d+/nudge", 200, "nudged"),
    ("POST", r"/v1/jobs/\d+/ask", 200, "asked"),
    ("POST", r"/v1/trials/\d+/report", 200, "reported"),
    ("POST", r"/v1/trials/\d+/tell", 200, "trial"),
    ("POST", r"/v1/jobs/\d+/evaluate", 200, "evaluate"),
    ("POST", r"/v1/jobs/\d+/evaluate", 202, "evaluate"),
    ("GET", r"/v1/jobs/\d+/importance", 200, "importance"),
    ("GET", r"/v1/jobs/\d+/importance", 202, "importance"),
    ("GET", r"/v1/trials/\d+", 200, "trial"),
    ("GET", r"/v1/stats", 200, "stats"),
    ("GET", r"/v1/workers", 200, "workers"),
    ("POST", r"/v1/workers/[^/]+/release", 200, "worker_released"),
]

_api_validators = {}


def bundled_api_schema():
    """schemas/api.schema.json made self-contained: the job and trial spec schemas it refers to by
    $id are copied into its $defs (as spec_job, spec_job.<def>, ...), with their references
    rewritten to match. Debian's python3-jsonschema 4.10 cannot follow a reference inside a
    schema reached through a urn: $id, and this works with every version."""
    docs = {}
    for f in sorted(os.listdir(SCHEMAS)):
        if f.endswith(".schema.json"):
            with open(os.path.join(SCHEMAS, f), encoding="utf-8") as fh:
                doc = json.load(fh)
            docs[doc["$id"]] = doc
    api = docs.pop("urn:caviar:schema:api")

    def prefix_of(uri):
        return "spec_" + uri.rsplit(":", 1)[1]

    def rewrite(node, local):
        """node with "#/$defs/x" made local-prefixed and "urn:...#/$defs/x" made local."""
        if isinstance(node, list):
            return [rewrite(v, local) for v in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                uri, _, frag = v.partition("#")
                prefix = prefix_of(uri) if uri else local
                if uri and uri not in docs:
                    raise KeyError(f"api.schema.json refers to unknown schema {uri}")
                if prefix is None:
                    out[k] = v
                elif frag.startswith("/$defs/"):
                    out[k] = f"#/$defs/{prefix}.{frag[len('/$defs/'):]}"
                else:
                    out[k] = f"#/$defs/{prefix}"
            elif k in ("$id", "$schema") and local is not None:
                continue
            else:
                out[k] = rewrite(v, local)
        return out

    bundled = rewrite(api, None)
    for uri, doc in docs.items():
        prefix = prefix_of(uri)
        doc = rewrite(doc, prefix)
        for d, sub in doc.pop("$defs", {}).items():
            bundled["$defs"][f"{prefix}.{d}"] = sub
        bundled["$defs"][prefix] = doc
    return bundled


_api_schema = []


def api_validator(name):
    """A Draft 2020-12 validator of $defs/name of schemas/api.schema.json."""
    if name not in _api_validators:
        import jsonschema  # python3-jsonschema; only the validating harness needs it
        if not _api_schema:
            _api_schema.append(bundled_api_schema())
        schema = dict(_api_schema[0], **{"$ref": f"#/$defs/{name}"})
        _api_validators[name] = jsonschema.Draft202012Validator(schema)
    return _api_validators[name]


def api_reply_def(method, path, status):
    """The $def a reply to method path with this status must match; None when there is none."""
    if status >= 400:
        return "error"
    path = path.split("?", 1)[0]
    for m, pattern, st, name in API_REPLIES:
        if m == method and st == status and re.fullmatch(pattern, path):
            return name
    return None


def validate_api_reply(method, path, status, body):
    """Raises AssertionError unless body is a valid reply to method path with this status."""
    name = api_reply_def(method, path, status)
    if name is None:
        raise AssertionError(f"{method} {path}: no schema for a {status} reply: {body!r}")
    import jsonschema.exceptions
    error = jsonschema.exceptions.best_match(api_validator(name).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(f"{method} {path} {status}: reply does not match $defs/{name} "
                             f"at /{where}: {error.message}\n{json.dumps(body)[:2000]}")


def write_moons(path, n=600, seed=11, noise=0.2):
    """Two interleaving half circles with Gaussian noise, as CSV with a header."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("x1,x2,label\n")
        for i in range(n):
            label = i % 2
            t = rng.uniform(0, math.pi)
            if label == 0:
                x, y = math.cos(t), math.sin(t)
            else:
                x, y = 1 - math.cos(t), 0.5 - math.sin(t)
            f.write(f"{x + rng.gauss(0, noise):.5f},{y + rng.gauss(0, noise):.5f},{label}\n")


def csv_job(csv, name, trials=2, seed=5):
    """A small job on a CSV dataset (label column "label"): 2 epochs per trial, learning rate
    searched on a log scale, one trial at a time."""
    return {"name": name,
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                      "epochs": 2, "optimizer": "adam"},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3,
                                        "max": 0.1}},
            "budget": {"max_trials": trials, "max_parallel": 1},
            "seed": seed}


def frame(payload, kind=1):
    """One worker-protocol frame: the 8-byte header, then the payload."""
    return struct.pack(">IB3x", len(payload), kind) + payload


def message(obj):
    """A JSON message as one frame."""
    return frame(json.dumps(obj).encode())


def read_message(sock, timeout=10):
    """The next frame from sock, which must be a JSON message; EOFError when sock closes."""
    sock.settimeout(timeout)

    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("closed")
            data += chunk
        return data
    length, kind = struct.unpack(">IB3x", exact(8))
    assert kind == 1, kind
    return json.loads(exact(length))


class Coordinator:
    """A caviard process with its own temporary directory. With validate (the default), every
    JSON reply request() returns is first checked against schemas/api.schema.json."""

    def __init__(self, build, workers=2, extra=(), noop=False, db=None, data_dir=None,
                 validate=True, env=None):
        self.build = build
        self.env = dict(env or {})
        self.validate = validate
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.db = db or os.path.join(self.dir, "caviar.db")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "caviard.log")
        self.workers = workers
        self.extra = list(extra) + (["--noop-workers"] if noop else [])
        self.proc = None
        self.port = None
        self.worker_port = None

    def start(self):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(self.log_path, "a")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **self.env)
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "server", "caviard"), "--listen", "127.0.0.1:0",
             "--worker-listen", "127.0.0.1:0", "--db", self.db, "--data-dir", self.data_dir,
             "--workers", str(self.workers), "--worker-bin",
             os.path.join(self.build, "worker", "caviar-worker"), "--port-file", port_file,
             *self.extra],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("caviard did not start:\n" + self.log_text())
            time.sleep(0.05)
        with open(port_file) as f:
            lines = f.read().split()
        self.port = int(lines[0])  # the API port; the worker port is on the second line
        self.worker_port = int(lines[1]) if len(lines) > 1 else None
        return self

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def close(self):
        self.stop()
        self.tmp.cleanup()

    def request(self, method, path, body=None, raw=None, headers=None):
        """(status, parsed JSON) of one request; AssertionError when validating and the reply
        does not match its schema."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, reply = r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            status, reply = e.code, json.loads(e.read() or b"null")
        if self.validate:
            validate_api_reply(method, path, status, reply)
        return status, reply

    def wait_workers(self, n, timeout=30):
        """Waits until n workers have said hello."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.request("GET", "/v1/workers")[1]["workers"]) >= n:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{n} workers did not connect:\n" + self.log_text())

    def moons(self, n=600):
        """The path of a two-moons CSV file of n rows in this coordinator's directory."""
        path = os.path.join(self.dir, "moons.csv")
        if not os.path.exists(path):
            write_moons(path, n=n)
        return path

    def run_job(self, spec, timeout=120):
        """Submits spec, waits for the job to end and returns its final reply."""
        status, body = self.request("POST", "/v1/jobs", spec)
        assert status == 201, body
        return self.wait_job(body["id"], timeout=timeout)

    def wait_job(self, job_id, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, job = self.request("GET", f"/v1/jobs/{job_id}")
            if status == 200 and job["status"] != "running":
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still running after {timeout} s:\n" + self.log_text())


class CoordinatorChecks:
    """What the fault tests ask of the coordinator under test (self.c) and of the workers they
    start themselves (self.workers: id -> (process, log file)) again and again; mixed into a
    unittest.TestCase."""

    def setUp(self):
        self.c = None
        self.workers = {}

    def tearDown(self):
        for proc, log in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a test may have frozen it
                proc.kill()
                proc.wait()
            log.close()
        if self.c:
            self.c.close()

    def start_worker(self, wid, env=None, extra=()):
        """Starts caviar-worker --connect to self.c as wid, logging to <dir>/<wid>.log. The same
        id again is a restarted worker: the previous process must have ended."""
        if wid in self.workers:
            self.assertIsNotNone(self.workers[wid][0].poll())
            self.workers[wid][1].close()
        log = open(os.path.join(self.c.dir, f"{wid}.log"), "a")
        proc = subprocess.Popen(
            [os.path.join(self.c.build, "worker", "caviar-worker"), "--connect",
             f"127.0.0.1:{self.c.worker_port}", "--id", wid, "--threads", "1", "--verbose",
             "--cache", os.path.join(self.c.dir, "cache"), *extra],
            stdout=log, stderr=log, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {})))
        self.workers[wid] = (proc, log)
        return proc

    def worker_log(self, wid):
        with open(os.path.join(self.c.dir, f"{wid}.log")) as f:
            return f.read()

    def trial(self, trial_id):
        status, body = self.c.request("GET", f"/v1/trials/{trial_id}")
        self.assertEqual(status, 200, body)
        return body

    def wait_for(self, what, predicate, timeout=30):
        """Polls predicate until it returns something true, and returns that; fails with the
        coordinator's log after timeout seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}:\n" + self.c.log_text())
