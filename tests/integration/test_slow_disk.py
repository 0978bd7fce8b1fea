#!/usr/bin/env python3
"""Specification of durability on a slow disk: caviard, two no-op workers streaming results, and
a disk whose every WAL sync takes DELAY seconds (slow_sync.so, loaded with LD_PRELOAD, sleeps
before each real fsync or fdatasync of the -wal file).

- The loop thread never waits for the disk: the API keeps answering in a fraction of DELAY
  while results are committed, because the WAL is synced on the thread pool.
- A result is still acknowledged only once it is on disk: the result-to-acknowledgement
  latency caviard reports is at least DELAY, the time of the sync that made it durable; and an
  operator's write (a submission, a cancel) is answered only after its sync too.
- A model a worker uploads is checked, written and synced on the thread pool too: with every
  model file's sync taking DELAY, the API keeps answering while real workers upload theirs, and
  every completed trial's model is stored.

Usage: test_slow_disk.py BUILD_DIR SLOW_SYNC_SO"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SHIM = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else ""
DELAY = 0.5  # seconds each WAL sync takes


def api_waits(c, until):
    """The sorted times GET /v1/health took, asked every 50 ms until until() is true."""
    waits = []
    while not until():
        t0 = time.monotonic()
        status, _ = c.request("GET", "/v1/health")
        waits.append(time.monotonic() - t0)
        assert status == 200, status
        time.sleep(0.05)
    return sorted(waits)


class SlowDisk(unittest.TestCase):
    def start(self, noop=True, extra=()):
        # AddressSanitizer wants its runtime first among the loaded libraries; the shim is
        # preloaded before it, which changes nothing for what is checked.
        env = {"LD_PRELOAD": SHIM, "CAVIAR_TEST_SYNC_DELAY_MS": str(int(DELAY * 1000)),
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        self.c = Coordinator(BUILD, workers=2, noop=noop, env=env, extra=extra)
        self.addCleanup(self.c.close)
        self.c.start()
        self.c.wait_workers(2)

    def test_models_are_received_off_the_loop(self):
        # Without WAL syncs (--synchronous normal) only the model files' syncs are slow.
        self.start(noop=False, extra=["--synchronous", "normal"])
        spec = {"name": "models",
                "trial": {"dataset": {"format": "csv", "csv": self.c.moons(200),
                                      "label_column": "label"},
                          "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 2,
                          "hidden_units": 8},
                "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3,
                                            "max": 1e-1}},
                "budget": {"max_trials": 8, "max_parallel": 2}}
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        job = body["id"]
        deadline = time.monotonic() + 120
        waits = api_waits(self.c, lambda: self.c.request("GET", f"/v1/jobs/{job}")[1]["status"]
                          != "running" or time.monotonic() > deadline)
        final = self.c.request("GET", f"/v1/jobs/{job}")[1]
        self.assertEqual(final["status"], "completed", self.c.log_text())
        self.assertEqual(final["counts"]["completed"], 8, final["counts"])
        models = os.listdir(os.path.join(self.c.data_dir, "models", str(job)))
        self.assertEqual(len([m for m in models if m.endswith(".model")]), 8, models)
        p90 = waits[int(0.9 * (len(waits) - 1))]
        self.assertLess(p90, DELAY / 2,
                        f"the API waited for a model's sync: 90th percentile {p90:.3f} s of "
                        f"{len(waits)} requests, each model sync taking {DELAY} s")

    def test_api_answers_while_syncs_are_slow_and_acks_wait_for_them(self):
        self.start()
        spec = {"name": "stream",
                "trial": {"dataset": {"format": "csv", "csv": self.c.moons(40),
                                      "label_column": "label"},
                          "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
                "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                            "max": 1e-1}},
                "budget": {"max_trials": 100000, "max_parallel": 2}}
        t0 = time.monotonic()
        status, body = self.c.request("POST", "/v1/jobs", spec)
        submitted = time.monotonic() - t0
        self.assertEqual(status, 201, body)
        job = body["id"]
        # Results stream in for 8 syncs' time; the API is asked every 50 ms meanwhile.
        start = time.monotonic()
        waits = api_waits(self.c, lambda: time.monotonic() - start >= 8 * DELAY)
        status, stats = self.c.request("GET", "/v1/stats")
        self.assertEqual(status, 200)
        t0 = time.monotonic()
        status, _ = self.c.request("POST", f"/v1/jobs/{job}/cancel")
        cancelled = time.monotonic() - t0
        self.assertEqual(status, 200)
        p90 = waits[int(0.9 * (len(waits) - 1))]
        self.assertLess(p90, DELAY / 2,
                        f"the API waited for the disk: 90th percentile {p90:.3f} s of "
                        f"{len(waits)} requests, each WAL sync taking {DELAY} s")
        self.assertGreater(stats["results_committed"], 20,
                           f"too few results acknowledged to judge: {stats}")
        self.assertGreaterEqual(stats["commit_latency_p50_ms"], 0.9 * DELAY * 1000,
                                f"results were acknowledged before their sync ended: {stats}")
        self.assertGreaterEqual(submitted, 0.9 * DELAY, "the job was accepted before its sync")
        self.assertGreaterEqual(cancelled, 0.9 * DELAY, "the cancel was answered before its sync")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
