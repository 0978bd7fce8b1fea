#!/usr/bin/env python3
"""Specification of what caviard refuses: a real coordinator on loopback ephemeral ports is sent
malformed, oversized, slow and invalid input on its HTTP API and on its worker port.

On the API every refusal has the documented status and a JSON body {"error": "..."} naming the
field or rule, and a normal request still succeeds afterwards. On the worker port every
protocol violation makes caviard log it and close that connection (the test reads EOF), nothing
is stored (the SQLite file, read-only, is unchanged), and a real worker still completes a job
afterwards. Frames are written by hand with struct (schemas/protocol.md).

Usage: test_hostile.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import re
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import (Coordinator, csv_job, frame, message, read_message,  # noqa: E402
                            write_moons)

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
IDLE_MS, REQUEST_MS, MAX_CONNECTIONS = 500, 1500, 8
LEASE = "0123456789abcdef0123456789abcdef"


def job_spec(csv, **changes):
    """A small valid job on the moons CSV; changes replace top-level or trial fields."""
    job = csv_job(csv, "hostile", 3, seed=3)
    for key, value in changes.items():
        if key.startswith("trial_"):
            job["trial"][key[6:]] = value
        else:
            job[key] = value
    return job


# ---- raw HTTP ---------------------------------------------------------------------------------

def read_response(sock, timeout=10):
    """(status, body as JSON) of one response read from sock; the body by Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, json.loads(body[:length]) if length else None


def exchange(port, data, timeout=10):
    """Sends raw bytes on a fresh connection and reads one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        return read_response(s, timeout)


def sees_eof(sock, timeout=10):
    """True when the peer closes sock within timeout (whatever it sent before)."""
    sock.settimeout(timeout)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


class HostileHttp(unittest.TestCase):
    """The API of a coordinator with dataset roots and tight HTTP limits."""

    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0)
        cls.roots = os.path.join(cls.c.dir, "datasets")
        outside = os.path.join(cls.c.dir, "outside")
        os.mkdir(cls.roots)
        os.mkdir(outside)
        write_moons(os.path.join(cls.roots, "moons.csv"), n=60)
        write_moons(os.path.join(outside, "secret.csv"), n=60)
        os.symlink("../outside/secret.csv", os.path.join(cls.roots, "escape.csv"))
        os.symlink("../outside", os.path.join(cls.roots, "outdir"))
        os.mkdir(os.path.join(cls.roots, "subdir"))
        os.mkfifo(os.path.join(cls.roots, "pipe.csv"))
        cls.c.extra += ["--dataset-root", cls.roots, "--http-idle-ms", str(IDLE_MS),
                        "--http-request-ms", str(REQUEST_MS),
                        "--http-max-connections", str(MAX_CONNECTIONS)]
        cls.c.start()
        cls.port = cls.c.port

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def tearDown(self):
        status, body = self.c.request("GET", "/v1/health")
        self.assertEqual((status, body["status"]), (200, "ok"), "a normal request after it")

    def assertRefused(self, answer, status, error_part=""):
        got, body = answer
        self.assertEqual(got, status, body)
        self.assertIsInstance(body, dict)
        self.assertIsInstance(body.get("error"), str)
        self.assertIn(error_part, body["error"])

    def test_malformed_request_lines_are_400(self):
        for line in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /v1/health HTTP/1.1 extra\r\n\r\n",
                     b"\x00\x01\x02\xff\r\n\r\n", b"GET /v1/health HTTP/1.1\r\nNo colon\r\n\r\n"):
            self.assertRefused(exchange(self.port, line), 400)

    def test_unknown_routes_are_404(self):
        for path in ("/v1", "/v1/nope", "/v1/jobs/abc", "/v1/jobs/1/nope", "/v1/trials/x",
                     "/v2/jobs", "/v1/jobs/99999999999999999999999"):
            self.assertRefused(self.c.request("GET", path), 404)

    def test_wrong_methods_are_405(self):
        for method, path in (("DELETE", "/v1/jobs"), ("PUT", "/v1/health"),
                             ("POST", "/v1/stats"), ("POST", "/v1/workers"),
                             ("GET", "/v1/jobs/1/cancel"), ("PATCH", "/v1/trials/1")):
            self.assertRefused(self.c.request(method, path), 405)

    def test_a_20_kib_header_is_431(self):
        request = (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20480 + b"\r\n\r\n")
        self.assertRefused(exchange(self.port, request), 431)

    def test_a_2_mib_body_is_413(self):
        declared = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2097152\r\n\r\n")
        self.assertRefused(exchange(self.port, declared + b"{" * 65536), 413)
        chunked = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   b"".join(b"10000\r\n" + b" " * 65536 + b"\r\n" for _ in range(32)) +
                   b"0\r\n\r\n")
        self.assertRefused(exchange(self.port, chunked), 413)

    def test_a_client_silent_mid_request_gets_408_after_the_idle_timeout(self):
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            start = time.time()
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            self.assertRefused(read_response(s), 408)
            self.assertLess(time.time() - start, REQUEST_MS / 1000)
            self.assertTrue(sees_eof(s))

    def test_a_client_dribbling_bytes_gets_408_after_the_request_timeout(self):
        """A byte every fifth of the idle timeout keeps the idle timer quiet; the request
        timeout still ends the request."""
        request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 1000
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            start = time.time()
            answer = None
            for byte in request:
                readable, _, _ = __import__("select").select([s], [], [], IDLE_MS / 5000)
                if readable:
                    answer = read_response(s)
                    break
                s.sendall(bytes([byte]))
            self.assertIsNotNone(answer, "the server let a dribbling request run on")
            self.assertRefused(answer, 408)
            self.assertGreaterEqual(time.time() - start, REQUEST_MS / 1000 - 0.1)
            self.assertTrue(sees_eof(s))

    def test_connections_beyond_the_cap_get_503(self):
        held = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(MAX_CONNECTIONS)]
        try:
            time.sleep(0.1)  # every held connection is accepted and counted
            with socket.create_connection(("127.0.0.1", self.port)) as extra:
                self.assertRefused(read_response(extra), 503)
                self.assertTrue(sees_eof(extra))
        finally:
            for s in held:
                s.close()
        time.sleep(0.2)  # the server sees the closes before tearDown's request

    def test_bodies_that_are_not_json_are_400(self):
        for body in (b"not json", b"{\"name\": ", b"\xff\xfe", b"[1, 2", b"{}}",
                     b"[" * 100 + b"]" * 100, b"{\"a\":" * 100 + b"1" + b"}" * 100):
            self.assertRefused(self.c.request("POST", "/v1/jobs", raw=body), 400)

    def test_invalid_job_specs_are_400_naming_the_field(self):
        csv = "moons.csv"
        cases = [
            (job_spec(csv, budget={"max_trials": 0}), "budget.max_trials"),
            (job_spec(csv, space={"learning_rate": {"type": "float", "scale": "log",
                                                    "min": 1, "max": 0.1}}),
             "space.learning_rate"),
            (job_spec(csv, bogus=1), "bogus"),
            (job_spec(csv, trial_epochs=-1), "trial.epochs"),
            (job_spec(csv, trial_save_model="/tmp/caviar-hostile.model"), "trial.save_model"),
            (job_spec(csv, name=7), "name"),
            ({"trial": 3}, "trial"),
        ]
        for job, field in cases:
            status, body = self.c.request("POST", "/v1/jobs", job)
            self.assertRefused((status, body), 400, field)
            self.assertTrue(body["error"].startswith(field) or f'"{field}"' in body["error"],
                            body["error"])
        self.assertFalse(os.path.exists("/tmp/caviar-hostile.model"))

    def test_dataset_paths_outside_the_roots_are_400(self):
        outside = os.path.join(self.c.dir, "outside", "secret.csv")
        for path in ("../outside/secret.csv", outside, "/etc/passwd", "escape.csv",
                     os.path.join(self.roots, "..", "outside", "secret.csv"),
                     "../outside/missing.csv"):
            status, body = self.c.request("POST", "/v1/jobs", job_spec(path))
            self.assertRefused((status, body), 400)
            self.assertEqual(body["error"],
                             f"trial.dataset.csv: {path} is outside the dataset roots")

    def test_a_link_to_a_directory_outside_does_not_tell_missing_from_existing(self):
        answers = set()
        for path in ("outdir/secret.csv", "outdir/missing.csv", "outdir/nodir/missing.csv"):
            status, body = self.c.request("POST", "/v1/jobs", job_spec(path))
            self.assertRefused((status, body), 400)
            answers.add(body["error"].replace(path, "PATH"))
        self.assertEqual(answers, {"trial.dataset.csv: PATH is outside the dataset roots"})

    def test_directories_and_fifos_inside_the_roots_are_400_naming_the_field(self):
        for path, kind in (("subdir", "a directory"), ("pipe.csv", "a FIFO"),
                           (os.path.join(self.roots, "subdir"), "a directory")):
            start = time.time()
            status, body = self.c.request("POST", "/v1/jobs", job_spec(path))
            self.assertRefused((status, body), 400)
            self.assertEqual(body["error"],
                             f"trial.dataset.csv: {path} is {kind}, not a regular file")
            self.assertLess(time.time() - start, 5, "a FIFO blocked the coordinator")

    def test_dataset_paths_inside_the_roots_are_accepted(self):
        for path in ("moons.csv", os.path.join(self.roots, "moons.csv")):
            status, body = self.c.request("POST", "/v1/jobs", job_spec(path))
            self.assertEqual(status, 201, body)
            self.assertEqual(body["job"]["spec"]["trial"]["dataset"]["csv"],
                             os.path.realpath(os.path.join(self.roots, "moons.csv")))
            self.assertEqual(self.c.request("POST", f"/v1/jobs/{body['id']}/cancel")[0], 200)


class DatasetPathsWithoutRoots(unittest.TestCase):
    """A coordinator without --dataset-root (as `caviar run` starts it) still refuses what is
    not a regular file with a 400 naming the field, instead of failing to read it (500)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0).start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_a_directory_a_fifo_or_a_device_is_400(self):
        fifo = os.path.join(self.c.dir, "pipe.csv")
        os.mkfifo(fifo)
        for path, kind in ((self.c.dir, "a directory"), (fifo, "a FIFO"),
                           ("/dev/null", "a device")):
            status, body = self.c.request("POST", "/v1/jobs", job_spec(path))
            self.assertEqual(status, 400, body)
            self.assertEqual(body["error"],
                             f"trial.dataset.csv: {path} is {kind}, not a regular file")
        self.assertEqual(self.c.request("GET", "/v1/health")[0], 200)


# ---- the worker port --------------------------------------------------------------------------

def hello(worker_id, token=None):
    h = {"type": "hello", "protocol": 1, "worker_id": worker_id, "version": "test",
         "threads": 1, "host": "test"}
    if token is not None:
        h["token"] = token
    return message(h)


def epoch():
    return {"epoch": 1, "train_cost": 0.5, "train_cost_reg": 0.5, "dev_cost": 0.6,
            "train_error": 0.2, "dev_error": 0.3, "learning_rate": 0.01, "seconds": 0.1,
            "examples_per_second": 100.0}


def result(trial_id, lease, dev_error=0.25):
    return {"type": "result", "trial_id": trial_id, "lease": lease, "model_bytes": 0,
            "model_crc32": 0,
            "result": {"status": "completed", "best_epoch": 1, "epochs_run": 1,
                       "train_error": 0.2, "dev_error": dev_error, "train_cost": 0.5,
                       "train_cost_reg": 0.5, "dev_cost": 0.6, "examples_per_second": 1.0,
                       "seconds": 0.1}}


class HostileWorkerPort(unittest.TestCase):
    """A coordinator with one queued job whose single parallel slot is held by a scripted
    worker (the holder), so that no other connection is given a trial: everything the others
    send is hostile, and the stored trials must not change."""

    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0, extra=["--lease-seconds", "120"])
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=200)
        cls.c.start()
        match = re.search(r"workers on 127\.0\.0\.1:(\d+)", cls.c.log_text())
        cls.wport = int(match.group(1))
        status, body = cls.c.request("POST", "/v1/jobs", job_spec(cls.data))
        assert status == 201, body
        cls.job_id = body["id"]
        cls.holder = socket.create_connection(("127.0.0.1", cls.wport))
        cls.holder.sendall(hello("holder"))
        assert read_message(cls.holder)["type"] == "welcome"
        cls.held = read_message(cls.holder)
        assert cls.held["type"] == "trial", cls.held
        cls.db = sqlite3.connect(f"file:{cls.c.db}?mode=ro", uri=True)
        cls.count = 0
        deadline = time.time() + 10  # the lease is committed shortly after the trial left
        while (cls.db.execute("SELECT status FROM trials WHERE id = ?",
                              (cls.held["trial_id"],)).fetchone() or [None])[0] != "running":
            assert time.time() < deadline, "the holder's lease was never stored"
            time.sleep(0.01)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        cls.holder.close()
        cls.c.close()

    def snapshot(self):
        return (self.db.execute("SELECT * FROM trials ORDER BY id").fetchall(),
                self.db.execute("SELECT * FROM curves ORDER BY trial_id, epoch").fetchall())

    def connect(self, say_hello=True):
        s = socket.create_connection(("127.0.0.1", self.wport))
        self.addCleanup(s.close)
        if say_hello:
            type(self).count += 1
            s.sendall(hello(f"hostile-{self.count}"))
            self.assertEqual(read_message(s)["type"], "welcome")
        return s

    def assertClosedAndLogged(self, data, log_part, say_hello=True):
        before = self.snapshot()
        s = self.connect(say_hello)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(sees_eof(s), "the coordinator kept the connection open")
        time.sleep(0.1)  # a commit that should not happen would have happened by now
        self.assertIn(log_part, self.c.log_text())
        self.assertEqual(self.snapshot(), before, "a hostile message changed the store")

    def test_garbage_bytes(self):
        self.assertClosedAndLogged(b"GET / HTTP/1.1\r\n\r\n", "payload", say_hello=False)
        self.assertClosedAndLogged(b"\x00\x00\x00\x04\x09\x00\x00\x00abcd", "kind",
                                   say_hello=False)
        self.assertClosedAndLogged(b"\x00\x00\x00\x02\x01\x00\x07\x00{}", "reserved")

    def test_an_oversized_frame_header(self):
        self.assertClosedAndLogged(struct.pack(">IB3x", 4 * 1024 * 1024 + 1, 1), "payload")

    def test_a_truncated_frame_then_close(self):
        before = self.snapshot()
        s = self.connect()
        s.sendall(struct.pack(">IB3x", 100, 1) + b'{"type": "heart')
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(sees_eof(s))
        time.sleep(0.1)
        self.assertIn("connection closed mid-frame", self.c.log_text())
        self.assertEqual(self.snapshot(), before)

    def test_a_first_message_other_than_hello(self):
        self.assertClosedAndLogged(message({"type": "heartbeat"}),
                                   "the first message must be hello", say_hello=False)
        self.assertClosedAndLogged(message(result(self.held["trial_id"], self.held["lease"])),
                                   "the first message must be hello", say_hello=False)

    def test_messages_that_are_not_worker_messages(self):
        self.assertClosedAndLogged(message({"type": "nonsense"}), "type")
        self.assertClosedAndLogged(frame(b"[1, 2, 3]"), "")
        self.assertClosedAndLogged(hello("second-hello"), "a second hello")

    def test_a_result_for_a_trial_that_does_not_exist(self):
        self.assertClosedAndLogged(message(result(987654, LEASE)), "unknown trial 987654")

    def test_a_result_for_a_trial_this_worker_was_not_leased_is_not_stored(self):
        """Another worker's trial, even under its real lease: refused with stored false (the
        protocol's answer to a stale result), and the connection may go on."""
        before = self.snapshot()
        s = self.connect()
        for lease in (LEASE, self.held["lease"]):
            s.sendall(message(result(self.held["trial_id"], lease)))
            ack = read_message(s)
            self.assertEqual(ack, {"type": "ack", "trial_id": self.held["trial_id"],
                                   "stored": False})
        time.sleep(0.1)
        self.assertEqual(self.snapshot(), before)

    def test_a_model_upload_under_a_wrong_lease_is_never_written(self):
        """The lease is checked when the result arrives: a stale one is refused at once (ack
        stored false, before any data), its 2 MiB of model data frames are read and dropped
        without a byte reaching the data directory, and the connection goes on."""
        tmp = os.path.join(self.c.data_dir, "tmp")
        before = self.snapshot()
        s = self.connect()
        chunk = b"\x5a" * (256 * 1024)
        for lease in (LEASE, self.held["lease"]):  # a made-up lease, another worker's lease
            r = result(self.held["trial_id"], lease)
            r["model_bytes"], r["model_crc32"] = 8 * len(chunk), 0
            s.sendall(message(r))
            self.assertEqual(read_message(s), {"type": "ack", "trial_id": self.held["trial_id"],
                                               "stored": False}, "refused before the data")
            for i in range(8):
                s.sendall(frame(chunk, kind=2))
                if i == 3:
                    time.sleep(0.2)  # half of the model has arrived
                    self.assertEqual(os.listdir(tmp), [], "a refused model reached the disk")
            s.sendall(message({"type": "heartbeat"}))
        s.sendall(message(result(self.held["trial_id"], LEASE)))  # the connection goes on
        self.assertEqual(read_message(s)["stored"], False)
        self.assertEqual(os.listdir(tmp), [])
        self.assertEqual(self.snapshot(), before)

    def test_progress_for_a_trial_this_worker_was_not_leased_is_not_stored(self):
        """Progress under a lease that is not current is dropped without closing: a worker's
        progress frames may still be on the wire after a stop (schemas/protocol.md)."""
        before = self.snapshot()
        s = self.connect()
        for lease in (LEASE, self.held["lease"]):
            s.sendall(message({"type": "progress", "trial_id": self.held["trial_id"],
                               "lease": lease, "epoch": epoch()}))
        s.sendall(message({"type": "progress", "trial_id": 987654, "lease": LEASE,
                           "epoch": epoch()}))
        time.sleep(0.2)
        self.assertEqual(self.snapshot(), before)

    def test_a_result_with_a_nan_metric(self):
        text = json.dumps(result(self.held["trial_id"], self.held["lease"]))
        text = text.replace('"dev_error": 0.25', '"dev_error": NaN')
        self.assertIn("NaN", text)
        self.assertClosedAndLogged(frame(text.encode()), "worker hostile-")

    def test_a_result_with_a_metric_out_of_range(self):
        for bad in (1.5, -0.1, 1e308):
            self.assertClosedAndLogged(
                message(result(self.held["trial_id"], self.held["lease"], dev_error=bad)),
                "result.dev_error")

    def test_z_a_real_worker_still_completes_the_job(self):
        """Runs last (by name): the holder leaves, its trial returns to the queue, and a real
        caviar-worker finishes the job."""
        self.holder.close()
        worker = subprocess.Popen(
            [os.path.join(BUILD, "worker", "caviar-worker"), "--connect",
             f"127.0.0.1:{self.wport}", "--id", "real", "--threads", "1",
             "--cache", os.path.join(self.c.dir, "cache")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        try:
            job = self.c.wait_job(self.job_id, timeout=120)
        finally:
            worker.terminate()
            worker.wait(20)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        self.assertEqual(job["counts"].get("completed"), 3, job["counts"])
        rows = self.db.execute("SELECT status FROM trials WHERE job_id = ?",
                               (self.job_id,)).fetchall()
        self.assertEqual(sorted(r[0] for r in rows), ["completed"] * 3)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
