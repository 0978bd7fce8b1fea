#!/usr/bin/env python3
"""Specification of `caviar-worker --connect` against a fake coordinator written here: a loopback
listener on an ephemeral port that speaks the framing of schemas/protocol.md byte by byte and
validates every JSON message the worker sends against schemas/worker-messages.schema.json.

It covers hello, welcome, trials trained to a result with progress and a model streamed as data
frames (byte count and zlib crc32 checked), a bad spec failing its trial, a dataset fetched with
dataset_get into the cache and then found there, stop, heartbeats, reconnection with
hello.leases, results re-sent or dropped after a reconnection, --noop, a malformed coordinator
message, and exits (--once, SIGTERM).

Usage: test_worker_connection.py CAVIAR_WORKER SOURCE_ROOT"""

import hashlib
import json
import math
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import zlib

import jsonschema

WORKER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/worker/caviar-worker"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
MOONS = os.path.join(ROOT, "examples", "data", "moons.csv")
with open(MOONS, "rb") as _f:
    MOONS_BYTES = _f.read()
MOONS_HASH = hashlib.sha256(MOONS_BYTES).hexdigest()
FILES = {"csv": {"hash": MOONS_HASH, "bytes": len(MOONS_BYTES)}}
JSON, DATA = 1, 2


def lease(n):
    return f"{n:032x}"


def spec(**fields):
    """A small valid CSV trial spec on the moons, with fields replaced."""
    s = {"dataset": {"format": "csv", "csv": MOONS, "label_column": "label", "classes": 2},
         "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
         "hidden_units": [8], "activation": "tanh", "learning_rate": 0.01,
         "batch_size": 32, "epochs": 3, "seed": 3, "train_eval_examples": 0}
    s.update(fields)
    return s


def make_validator():
    """Validator of worker-messages.schema.json resolving urn:caviar:schema:trial."""
    def load(name):
        with open(os.path.join(ROOT, "schemas", name), encoding="utf-8") as f:
            return json.load(f)
    messages, trial = load("worker-messages.schema.json"), load("trial.schema.json")
    try:
        import referencing
        import referencing.jsonschema
        registry = referencing.Registry().with_resources([
            (s["$id"], referencing.jsonschema.DRAFT202012.create_resource(s))
            for s in (messages, trial)])
        return jsonschema.Draft202012Validator(messages, registry=registry)
    except ImportError:  # jsonschema 4.10 joins "#..." to a urn: base only if urllib allows it
        for schemes in (urllib.parse.uses_relative, urllib.parse.uses_fragment):
            if "urn" not in schemes:
                schemes.append("urn")
        resolver = jsonschema.RefResolver.from_schema(
            messages, store={messages["$id"]: messages, trial["$id"]: trial})
        return jsonschema.Draft202012Validator(messages, resolver=resolver)


VALIDATOR = make_validator()


class Conn:
    """One accepted worker connection: frames in and out, JSON validated on arrival."""

    def __init__(self, sock, test):
        self.sock, self.test, self.buf = sock, test, b""

    def send_frame(self, kind, payload):
        self.sock.sendall(struct.pack(">IB3x", len(payload), kind) + payload)

    def send(self, **msg):
        self.send_frame(JSON, json.dumps(msg).encode())

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the worker closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self, timeout=20):
        """The next frame as (kind, payload); JSON is parsed and schema-checked."""
        deadline = time.monotonic() + timeout
        length, kind, r1, r2, r3 = struct.unpack(">IB3B", self._read(8, deadline))
        self.test.assertEqual((r1, r2, r3), (0, 0, 0))
        self.test.assertIn(kind, (JSON, DATA))
        self.test.assertLessEqual(length, 4 * 1024 * 1024)
        payload = self._read(length, deadline)
        if kind == DATA:
            return kind, payload
        msg = json.loads(payload)
        errors = [e.message for e in VALIDATOR.iter_errors(msg)]
        self.test.assertEqual(errors, [], payload)
        return kind, msg

    def msg(self, timeout=20, skip=("heartbeat",)):
        """The next JSON message whose type is not in skip."""
        deadline = time.monotonic() + timeout
        while True:
            kind, msg = self.frame(max(0.01, deadline - time.monotonic()))
            self.test.assertEqual(kind, JSON, "a data frame came where a message was expected")
            if msg["type"] not in skip:
                return msg

    def until(self, type_, timeout=20, trial_id=None):
        """Skips progress and heartbeats up to the next message of type_ (for trial_id)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.msg(max(0.01, deadline - time.monotonic()))
            if msg["type"] == type_ and (trial_id is None or msg.get("trial_id") == trial_id):
                return msg
            self.test.assertIn(msg["type"], ("progress", "heartbeat"), msg)

    def model(self, result):
        """The data frames following result: exactly model_bytes bytes with its crc32."""
        data = b""
        while len(data) < result["model_bytes"]:
            kind, chunk = self.frame()
            self.test.assertEqual(kind, DATA, "a message interrupted the model's data frames")
            data += chunk
        self.test.assertEqual(len(data), result["model_bytes"])
        self.test.assertEqual(zlib.crc32(data), result["model_crc32"])
        return data

    def quiet(self, seconds, trial_id):
        """Reads for seconds and fails on any progress or result of trial_id."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                msg = self.msg(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return
            self.test.assertNotEqual(msg.get("trial_id"), trial_id, msg)

    def close(self):
        self.sock.close()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.cache = os.path.join(self.tmp.name, "cache")
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.proc = None
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.srv.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc:
            self.proc.stderr.close()
        self.tmp.cleanup()

    def start(self, *extra, once=True):
        args = [WORKER, "--connect", f"127.0.0.1:{self.port}", "--id", "test-worker",
                "--cache", self.cache, *extra] + (["--once"] if once else [])
        env = {**os.environ, "TMPDIR": self.tmp.name, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)

    def accept(self, timeout=20):
        self.srv.settimeout(timeout)
        sock, _ = self.srv.accept()
        c = Conn(sock, self)
        self.conns.append(c)
        return c

    def handshake(self, reattached=(), heartbeat=0.5):
        """Accepts a connection, reads hello, answers welcome; returns (conn, hello)."""
        c = self.accept()
        hello = c.msg()
        self.assertEqual(hello["type"], "hello")
        c.send(type="welcome", protocol=1, heartbeat_seconds=heartbeat, lease_seconds=10,
               reattached=list(reattached))
        return c, hello

    def finish(self, code=0, timeout=20):
        """Waits for the worker to exit with code; returns its stderr."""
        self.proc.wait(timeout=timeout)
        err = self.proc.stderr.read().decode(errors="replace")
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        self.assertEqual(self.proc.returncode, code, err)
        return err

    def trial(self, c, trial_id, s=None, files=None, job_id=1):
        c.send(type="trial", trial_id=trial_id, job_id=job_id, lease=lease(trial_id),
               spec=s if s is not None else spec(), files=FILES if files is None else files)


class Trials(Base):
    def test_hello_describes_the_worker(self):
        self.start("--threads", "3", "--token", "sesame")
        c, hello = self.handshake()
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["worker_id"], "test-worker")
        self.assertEqual(hello["threads"], 3)
        self.assertEqual(hello["token"], "sesame")
        with open(os.path.join(ROOT, "meson.build"), encoding="utf-8") as f:
            version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
        self.assertEqual(hello["version"], version)
        self.assertEqual(hello["host"], socket.gethostname()[:255])
        self.assertNotIn("leases", hello)
        c.close()
        self.finish(0)

    def test_trained_failed_and_fetched_trials(self):
        self.start()
        c, _ = self.handshake()

        # 1. A trial on the moons: a progress message per epoch, then the result and the model.
        self.trial(c, 1, spec(epochs=4))
        epochs = []
        while True:
            msg = c.msg()
            if msg["type"] != "progress":
                break
            self.assertEqual((msg["trial_id"], msg["lease"]), (1, lease(1)))
            epochs.append(msg["epoch"]["epoch"])
        self.assertEqual(epochs, [1, 2, 3, 4])
        self.assertEqual(msg["type"], "result")
        self.assertEqual((msg["trial_id"], msg["lease"]), (1, lease(1)))
        self.assertEqual(msg["result"]["status"], "completed")
        self.assertEqual(msg["result"]["epochs_run"], 4)
        self.assertGreater(msg["model_bytes"], 0)
        model = c.model(msg)
        self.assertEqual(model[:8], b"CVMODEL\0")
        c.send(type="ack", trial_id=1, stored=True)

        # 2. A spec that breaks a rule: a failed result naming the field, no model.
        self.trial(c, 2, spec(learning_rate=-1))
        msg = c.until("result")
        self.assertEqual(msg["trial_id"], 2)
        self.assertEqual(msg["result"]["status"], "failed")
        self.assertIn("learning_rate", msg["result"]["error"])
        self.assertEqual((msg["model_bytes"], msg["model_crc32"]), (0, 0))
        c.send(type="ack", trial_id=2, stored=True)

        # 3. The spec's path is not on this worker: it asks by hash, caches, then trains.
        missing = os.path.join(self.tmp.name, "elsewhere", "moons.csv")
        ds = dict(spec()["dataset"], csv=missing)
        self.trial(c, 3, spec(dataset=ds, epochs=2))
        ask = c.msg()
        self.assertEqual(ask, {"type": "dataset_get", "hash": MOONS_HASH})
        c.send(type="dataset", hash=MOONS_HASH, bytes=len(MOONS_BYTES))
        third = len(MOONS_BYTES) // 3
        for part in (MOONS_BYTES[:third], MOONS_BYTES[third:2 * third], MOONS_BYTES[2 * third:]):
            c.send_frame(DATA, part)
        msg = c.until("result")
        self.assertEqual(msg["trial_id"], 3)
        self.assertEqual(msg["result"]["status"], "completed", msg)
        c.model(msg)
        with open(os.path.join(self.cache, MOONS_HASH), "rb") as f:
            self.assertEqual(f.read(), MOONS_BYTES)
        self.assertFalse(os.path.exists(os.path.join(self.cache, MOONS_HASH + ".tmp")))
        c.send(type="ack", trial_id=3, stored=True)

        # 4. The same missing path again: found in the cache, nothing asked.
        self.trial(c, 4, spec(dataset=ds, epochs=1))
        msg = c.until("result")
        self.assertEqual((msg["trial_id"], msg["result"]["status"]), (4, "completed"))
        c.model(msg)
        c.send(type="ack", trial_id=4, stored=False)

        # Heartbeats flow while the worker is idle (every 0.5 s here), and nothing else does.
        deadline, beats = time.monotonic() + 1.3, 0
        while time.monotonic() < deadline:
            try:
                msg = c.msg(max(0.01, deadline - time.monotonic()), skip=())
            except TimeoutError:
                break
            self.assertEqual(msg, {"type": "heartbeat"})
            beats += 1
        self.assertGreaterEqual(beats, 2)

        c.close()
        err = self.finish(0)
        self.assertIn("coordinator closed the connection", err)
        leftovers = [n for n in os.listdir(self.tmp.name) if n.startswith("caviar-model-")]
        self.assertEqual(leftovers, [], "acknowledged model files are deleted")

    def test_a_dataset_with_the_wrong_hash_fails_the_trial(self):
        self.start()
        c, _ = self.handshake()
        ds = dict(spec()["dataset"], csv=os.path.join(self.tmp.name, "nowhere.csv"))
        self.trial(c, 5, spec(dataset=ds))
        self.assertEqual(c.msg()["type"], "dataset_get")
        wrong = MOONS_BYTES.replace(b"0.65260", b"0.65261")
        c.send(type="dataset", hash=MOONS_HASH, bytes=len(wrong))
        c.send_frame(DATA, wrong)
        msg = c.until("result")
        self.assertEqual(msg["result"]["status"], "failed")
        self.assertIn("SHA-256", msg["result"]["error"])
        self.assertFalse(os.path.exists(os.path.join(self.cache, MOONS_HASH)))
        c.close()
        self.finish(0)

    def test_stop_ends_a_long_trial_and_sends_nothing_more(self):
        self.start()
        c, _ = self.handshake()
        self.trial(c, 7, spec(epochs=100000))
        for _ in range(3):
            self.assertEqual(c.until("progress")["trial_id"], 7)
        c.send(type="stop", trial_id=7)
        # Progress already on the wire may still arrive; no result ever does.
        deadline = time.monotonic() + 1.5
        while True:
            try:
                msg = c.msg(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            self.assertEqual(msg["type"], "progress", msg)
        # The worker is free again.
        self.trial(c, 8, spec(epochs=1))
        msg = c.until("result")
        self.assertEqual((msg["trial_id"], msg["result"]["status"]), (8, "completed"))
        c.model(msg)
        c.close()
        err = self.finish(0)
        self.assertIn("trial 7: stopped", err)

    def test_sigterm_hands_the_running_trial_back_and_waits_for_its_ack(self):
        self.start(once=False)
        c, _ = self.handshake()
        self.trial(c, 41, spec(epochs=100000))
        c.until("progress")
        self.proc.send_signal(signal.SIGTERM)
        msg = c.until("result", timeout=10)
        self.assertEqual((msg["trial_id"], msg["lease"], msg["model_bytes"]), (41, lease(41), 0))
        r = msg["result"]
        self.assertEqual((r["status"], r["dev_error"], r["best_epoch"]), ("stopped", None, 0))
        self.assertIn("SIGTERM", r["error"])
        # A trial that arrives while it waits for the acknowledgement goes back the same way.
        self.trial(c, 42, spec())
        msg = c.until("result", timeout=10)
        self.assertEqual((msg["trial_id"], msg["result"]["status"]), (42, "stopped"))
        self.assertIsNone(self.proc.poll(), "the worker left before its results were acked")
        c.send(type="ack", trial_id=41, stored=True)
        c.send(type="ack", trial_id=42, stored=True)
        started = time.monotonic()
        err = self.finish(0, timeout=10)
        self.assertLess(time.monotonic() - started, 2.5, "it waited past the acknowledgements")
        self.assertIn("trial 41: stopping; handing it back", err)

    def test_sigterm_without_an_ack_exits_after_the_grace_period(self):
        self.start(once=False)
        c, _ = self.handshake()
        self.trial(c, 43, spec(epochs=100000))
        c.until("progress")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(c.until("result", timeout=10)["result"]["status"], "stopped")
        started = time.monotonic()
        self.finish(0, timeout=10)
        self.assertGreater(time.monotonic() - started, 2.0)


class Reconnection(Base):
    def test_hello_leases_carry_the_running_trial_across_reconnections(self):
        self.start(once=False)
        c, hello = self.handshake()
        self.assertNotIn("leases", hello)
        self.trial(c, 11, spec(epochs=100000))
        last = c.until("progress")["epoch"]["epoch"]
        c.close()  # the connection drops mid-trial; training goes on

        c, hello = self.handshake(reattached=[11])
        self.assertEqual(hello["leases"], [{"trial_id": 11, "lease": lease(11)}])
        msg = c.until("progress")
        self.assertEqual(msg["trial_id"], 11)
        self.assertGreater(msg["epoch"]["epoch"], last)
        c.close()

        # This time the coordinator gave the trial away: the worker stops it.
        c, hello = self.handshake(reattached=[])
        self.assertEqual(hello["leases"], [{"trial_id": 11, "lease": lease(11)}])
        c.quiet(1.0, trial_id=11)
        self.proc.send_signal(signal.SIGTERM)
        err = self.finish(0)
        self.assertIn("not reattached", err)

    def test_a_dataset_the_coordinator_cannot_serve_fails_the_trial(self):
        self.start(once=False)
        c, _ = self.handshake()
        ds = dict(spec()["dataset"], csv=os.path.join(self.tmp.name, "gone.csv"))
        self.trial(c, 31, spec(dataset=ds))
        self.assertEqual(c.msg()["type"], "dataset_get")
        c.send(type="error", message="no dataset with that hash")
        c.close()
        c, hello = self.handshake(reattached=[31])
        self.assertEqual(hello["leases"], [{"trial_id": 31, "lease": lease(31)}])
        msg = c.until("result")
        self.assertEqual((msg["trial_id"], msg["result"]["status"]), (31, "failed"))
        self.assertIn("no dataset with that hash", msg["result"]["error"])
        self.proc.send_signal(signal.SIGTERM)
        self.finish(0)

    def test_an_unacknowledged_result_is_sent_again_only_when_reattached(self):
        self.start("--noop", once=False)
        c, _ = self.handshake()
        self.trial(c, 21, spec(learning_rate=0.01))
        first = c.until("result")
        self.assertEqual(first["model_bytes"], 0)
        c.close()  # no ack

        c, hello = self.handshake(reattached=[21])
        self.assertEqual(hello["leases"], [{"trial_id": 21, "lease": lease(21)}])
        again = c.until("result")
        self.assertEqual(again, first)
        c.send(type="ack", trial_id=21, stored=True)
        self.trial(c, 22, spec())
        self.assertEqual(c.until("result")["trial_id"], 22)
        c.close()  # 22 unacknowledged

        c, hello = self.handshake(reattached=[])
        self.assertEqual(hello["leases"], [{"trial_id": 22, "lease": lease(22)}])
        c.quiet(0.8, trial_id=22)
        c.close()

        c, hello = self.handshake()
        self.assertNotIn("leases", hello)  # dropped for good
        self.proc.send_signal(signal.SIGTERM)
        self.finish(0)


class Modes(Base):
    def test_noop_answers_with_the_synthetic_objective(self):
        self.start("--noop")
        c, _ = self.handshake()
        for trial_id, lr in ((10, 0.01), (15, 1e-4), (16, None)):
            s = spec(learning_rate=lr) if lr else {k: v for k, v in spec().items()
                                                   if k != "learning_rate"}
            self.trial(c, trial_id, s)
            msg = c.until("result")
            d = min(1, abs(math.log10(lr or 1e-3) + 2.5) / 10) + 0.001 * (trial_id % 7)
            r = msg["result"]
            self.assertEqual(msg["trial_id"], trial_id)
            self.assertEqual(r["status"], "completed")
            self.assertAlmostEqual(r["dev_error"], d, places=12)
            self.assertAlmostEqual(r["dev_cost"], 2 * d, places=12)
            self.assertAlmostEqual(r["train_error"], 0.9 * d, places=12)
            self.assertEqual((r["best_epoch"], r["epochs_run"]), (1, 1))
            self.assertEqual(r["examples_per_second"], 0)
            self.assertEqual((msg["model_bytes"], msg["model_crc32"]), (0, 0))
            c.send(type="ack", trial_id=trial_id, stored=True)
        c.close()
        self.finish(0)

    def test_a_malformed_message_closes_the_connection(self):
        self.start()
        c, _ = self.handshake()
        c.send(type="trial", trial_id=0, job_id=1, lease=lease(1), spec=spec(), files=FILES)
        with self.assertRaises(EOFError):
            c.until("result", timeout=10)
        err = self.finish(1)
        self.assertIn("trial_id", err)

    def test_an_error_message_refuses_the_worker(self):
        self.start()
        c = self.accept()
        self.assertEqual(c.msg()["type"], "hello")
        c.send(type="error", message="wrong or missing worker token")
        err = self.finish(1)
        self.assertIn("wrong or missing worker token", err)

    def test_once_fails_when_the_first_connection_fails(self):
        self.srv.close()  # nobody listens on the port any more
        self.start()
        err = self.finish(1)
        self.assertIn("cannot connect", err)

    def test_sigterm_exits_cleanly_while_connected(self):
        self.start(once=False)
        c, _ = self.handshake()
        c.msg(timeout=5, skip=())  # a heartbeat shows the loop runs
        self.proc.send_signal(signal.SIGTERM)
        self.finish(0, timeout=10)

    def test_bad_arguments_are_refused(self):
        for args in (["--connect", "nohost"], ["--connect", "h:1", "--threads", "0"],
                     ["--connect", "h:1", "--id", "has space"], ["--connect", "h:1", "--bogus"]):
            with self.subTest(args=args):
                p = subprocess.run([WORKER, *args], capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
