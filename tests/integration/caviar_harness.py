"""Shared helpers of the integration tests: start caviard (with local workers) on loopback
ephemeral ports with a temporary database, talk to its HTTP API, and generate small datasets."""

import json
import math
import os
import random
import signal
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


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
    """A caviard process with its own temporary directory."""

    def __init__(self, build, workers=2, extra=(), noop=False, db=None, data_dir=None):
        self.build = build
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
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
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
        """(status, parsed JSON) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def wait_workers(self, n, timeout=30):
        """Waits until n workers have said hello."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.request("GET", "/v1/workers")[1]["workers"]) >= n:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{n} workers did not connect:\n" + self.log_text())

    def wait_job(self, job_id, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, job = self.request("GET", f"/v1/jobs/{job_id}")
            if status == 200 and job["status"] != "running":
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still running after {timeout} s:\n" + self.log_text())
