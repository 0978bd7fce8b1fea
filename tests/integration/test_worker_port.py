#!/usr/bin/env python3
"""Specification of the worker port's output: a real caviard on loopback ephemeral ports, spoken
to by hand-written frames (schemas/protocol.md).

- A dataset asked for with dataset_get arrives whole (its SHA-256 matches), as one `dataset`
  message and its data frames with nothing in between; several requests are answered in order,
  and a message the coordinator has to send meanwhile (an ack) waits for the last data frame.
- A peer that asks for a multi-megabyte dataset again and again and never reads costs the
  coordinator a bounded amount of memory (its output queue is bounded and its input paused),
  and the API keeps answering quickly meanwhile.

Usage: test_worker_port.py BUILD_DIR SOURCE_ROOT"""

import hashlib
import json
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, message, read_message, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROWS = 180000  # about 3.6 MB of CSV
WRONG_LEASE = "0123456789abcdef0123456789abcdef"
MiB = 1024 * 1024


def hello(worker_id):
    return message({"type": "hello", "protocol": 1, "worker_id": worker_id, "version": "test",
                    "threads": 1, "host": "test"})


def read_frame(sock, timeout=20):
    """(kind, payload) of the next frame."""
    sock.settimeout(timeout)

    def exact(n):
        data = bytearray()
        while len(data) < n:
            chunk = sock.recv(min(n - len(data), 1 << 20))
            if not chunk:
                raise EOFError("closed")
            data += chunk
        return bytes(data)
    length, kind = struct.unpack(">IB3x", exact(8))
    return kind, exact(length)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class WorkerPortOutput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0, extra=["--lease-seconds", "120"])
        cls.data = os.path.join(cls.c.dir, "big.csv")
        write_moons(cls.data, n=ROWS)
        with open(cls.data, "rb") as f:
            cls.content = f.read()
        cls.hash = hashlib.sha256(cls.content).hexdigest()
        cls.c.start()
        job = {"name": "port",
               "trial": {"dataset": {"format": "csv", "csv": cls.data, "label_column": "label"},
                         "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 1},
               "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3,
                                           "max": 0.1}},
               "budget": {"max_trials": 1, "max_parallel": 1}, "seed": 1}
        status, body = cls.c.request("POST", "/v1/jobs", job)
        assert status == 201, body
        assert body["job"]["spec"]["trial"]["dataset"]["csv"] == os.path.realpath(cls.data)
        # The holder takes the job's only trial, so the other connections get none.
        cls.holder = socket.create_connection(("127.0.0.1", cls.c.worker_port))
        cls.holder.sendall(hello("holder"))
        assert read_message(cls.holder)["type"] == "welcome"
        cls.trial = read_message(cls.holder)
        assert cls.trial["type"] == "trial", cls.trial
        assert cls.trial["files"]["csv"]["hash"] == cls.hash, cls.trial["files"]

    @classmethod
    def tearDownClass(cls):
        cls.holder.close()
        cls.c.close()

    def test_datasets_arrive_whole_in_order_with_nothing_inside_them(self):
        s = self.holder
        for _ in range(3):
            s.sendall(message({"type": "dataset_get", "hash": self.hash}))
        # A stale result is answered at once (ack stored false) but after the three datasets:
        # nothing may come between a dataset message and its last data frame.
        stale = {"type": "result", "trial_id": self.trial["trial_id"], "lease": WRONG_LEASE,
                 "model_bytes": 0, "model_crc32": 0,
                 "result": {"status": "completed", "best_epoch": 1, "epochs_run": 1,
                            "train_error": 0.2, "dev_error": 0.2, "train_cost": 0.5,
                            "train_cost_reg": 0.5, "dev_cost": 0.6, "examples_per_second": 1.0,
                            "seconds": 0.1}}
        s.sendall(message(stale))
        events = []
        while len(events) < 4:
            kind, payload = read_frame(s)
            self.assertEqual(kind, 1, "a data frame outside a dataset")
            msg = json.loads(payload)
            if msg["type"] != "dataset":
                events.append(msg)
                continue
            self.assertEqual((msg["hash"], msg["bytes"]), (self.hash, len(self.content)))
            got = bytearray()
            while len(got) < msg["bytes"]:
                kind, payload = read_frame(s)
                self.assertEqual(kind, 2, f"a JSON frame inside a dataset: {payload[:200]!r}")
                got += payload
            self.assertEqual(len(got), msg["bytes"])
            self.assertEqual(hashlib.sha256(got).hexdigest(), self.hash)
            events.append("dataset")
        self.assertEqual(events[:3], ["dataset"] * 3)
        self.assertEqual(events[3], {"type": "ack", "trial_id": self.trial["trial_id"],
                                     "stored": False})

    def test_a_peer_that_never_reads_costs_bounded_memory(self):
        pid = self.c.proc.pid
        before = rss_bytes(pid)
        s = socket.create_connection(("127.0.0.1", self.c.worker_port))
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(hello("never-reads"))
        requests = 150  # 540 MB of data if it were all queued
        s.setblocking(False)
        data = message({"type": "dataset_get", "hash": self.hash}) * requests
        sent, deadline = 0, time.time() + 10
        while sent < len(data) and time.time() < deadline:
            try:
                sent += s.send(data[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        self.assertEqual(sent, len(data), "the requests themselves did not fit the socket")
        peak, slowest = before, 0.0
        end = time.time() + 3
        while time.time() < end:
            start = time.time()
            status, body = self.c.request("GET", "/v1/health")
            slowest = max(slowest, time.time() - start)
            self.assertEqual(status, 200, body)
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.05)
        self.assertLess(peak - before, 48 * MiB,
                        f"RSS grew from {before / MiB:.1f} MiB to {peak / MiB:.1f} MiB")
        self.assertLess(peak, 128 * MiB, f"RSS {peak / MiB:.1f} MiB")
        self.assertLess(slowest, 1.0, f"/v1/health took {slowest:.2f} s")
        s.close()
        time.sleep(0.3)  # the coordinator notices the close and frees what it held
        self.assertEqual(self.c.request("GET", "/v1/health")[0], 200)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
