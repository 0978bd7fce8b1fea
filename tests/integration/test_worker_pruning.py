#!/usr/bin/env python3
"""Specification of pruning on `caviar-worker --connect`, against the fake coordinator of
test_worker_connection.py (loopback, protocol framing byte by byte, every message the worker
sends validated against schemas/worker-messages.schema.json).

A trial with decide_at waits after each of those epochs for a decision: stop false trains on,
stop true ends it as a `pruned` result carrying its best epoch's metrics and model, and the
worker takes its next trial at once. A stop decision that comes while no wait is in progress
prunes the trial at its next epoch end. The wait is bounded: without an answer the worker trains
on after CAVIAR_WORKER_DECISION_WAIT seconds, and a dropped connection, a stop message and
SIGTERM each end it at once.

Usage: test_worker_pruning.py CAVIAR_WORKER SOURCE_ROOT"""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_worker_connection import FILES, WORKER, Base, lease, spec  # noqa: E402


class Pruning(Base):
    def start_waiting(self, wait=None, once=True):
        """Starts the worker; wait (seconds) bounds a wait for a decision, None: the default."""
        env = {**os.environ, "TMPDIR": self.tmp.name, "OPENBLAS_NUM_THREADS": "1"}
        env.pop("CAVIAR_WORKER_DECISION_WAIT", None)
        if wait is not None:
            env["CAVIAR_WORKER_DECISION_WAIT"] = str(wait)
        args = [WORKER, "--connect", f"127.0.0.1:{self.port}", "--id", "test-worker",
                "--cache", self.cache] + (["--once"] if once else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)

    def trial_deciding(self, c, trial_id, decide_at, **fields):
        c.send(type="trial", trial_id=trial_id, job_id=1, lease=lease(trial_id),
               spec=spec(**fields), files=FILES, decide_at=decide_at)

    def progress(self, c, trial_id, epoch, timeout=20):
        msg = c.until("progress", timeout=timeout, trial_id=trial_id)
        self.assertEqual(msg["epoch"]["epoch"], epoch)
        return msg["epoch"]

    def test_stop_at_the_second_decision_sends_a_pruned_result_with_the_best_epoch(self):
        self.start_waiting()
        c, _ = self.handshake()
        self.trial_deciding(c, 1, [1, 2], epochs=50)
        curve = [self.progress(c, 1, 1)]
        c.quiet(0.8, trial_id=1)  # it waits: no epoch 2 without a decision
        c.send(type="decision", trial_id=1, epoch=1, stop=False)
        curve.append(self.progress(c, 1, 2, timeout=5))
        c.quiet(0.5, trial_id=1)
        c.send(type="decision", trial_id=1, epoch=2, stop=True)
        msg = c.until("result", timeout=5, trial_id=1)
        got = time.monotonic()
        r = msg["result"]
        self.assertEqual(r["status"], "pruned")
        self.assertEqual(r["epochs_run"], 2)
        best = min(curve, key=lambda e: e["dev_cost"])
        self.assertEqual(r["best_epoch"], best["epoch"])
        for name in ("dev_error", "dev_cost", "train_error", "train_cost", "train_cost_reg"):
            self.assertEqual(r[name], best[name], name)
        self.assertGreater(r["n_params"], 0)
        self.assertIsNotNone(r["diagnosis"])
        self.assertNotIn("error", r)
        model = c.model(msg)
        self.assertEqual(model[:8], b"CVMODEL\0")
        c.send(type="ack", trial_id=1, stored=True)

        # The worker is free at once: the next trial trains within a second of the result.
        c.send(type="trial", trial_id=2, job_id=1, lease=lease(2), spec=spec(epochs=1),
               files=FILES)
        self.progress(c, 2, 1, timeout=5)
        self.assertLess(time.monotonic() - got, 1.0, "the next trial started late")
        msg = c.until("result", trial_id=2)
        self.assertEqual(msg["result"]["status"], "completed")
        c.model(msg)
        c.close()
        err = self.finish(0)
        self.assertIn("trial 1: pruned at epoch 2", err)
        self.assertIn("trial 1: pruned after 2 epochs", err)

    def test_without_a_decision_the_worker_trains_on_after_the_bound(self):
        self.start_waiting(wait=1)
        c, _ = self.handshake()
        self.trial_deciding(c, 3, [1], epochs=3)
        self.progress(c, 3, 1)
        waited = time.monotonic()
        self.progress(c, 3, 2, timeout=10)
        self.assertGreater(time.monotonic() - waited, 0.8, "it did not wait for a decision")
        msg = c.until("result", trial_id=3)
        self.assertEqual((msg["result"]["status"], msg["result"]["epochs_run"]), ("completed", 3))
        c.model(msg)
        c.close()
        err = self.finish(0)
        self.assertIn("trial 3: no decision on epoch 1 within 1 s; training on", err)

    def test_a_stop_decision_outside_a_wait_prunes_at_the_next_epoch_end(self):
        self.start_waiting()
        c, _ = self.handshake()
        c.send(type="trial", trial_id=4, job_id=1, lease=lease(4), spec=spec(epochs=100000),
               files=FILES)
        for _ in range(3):
            c.until("progress", trial_id=4)
        c.send(type="decision", trial_id=4, epoch=2, stop=True)
        msg = c.until("result", timeout=5, trial_id=4)
        self.assertEqual(msg["result"]["status"], "pruned")
        self.assertGreaterEqual(msg["result"]["epochs_run"], 3)
        self.assertGreater(msg["model_bytes"], 0)
        c.model(msg)
        c.close()
        self.finish(0)

    def test_a_decision_for_another_trial_is_ignored(self):
        self.start_waiting()
        c, _ = self.handshake()
        self.trial_deciding(c, 5, [1], epochs=2)
        self.progress(c, 5, 1)
        c.send(type="decision", trial_id=99, epoch=1, stop=True)
        c.quiet(0.5, trial_id=5)  # still waiting for its own decision
        c.send(type="decision", trial_id=5, epoch=1, stop=False)
        msg = c.until("result", trial_id=5)
        self.assertEqual((msg["result"]["status"], msg["result"]["epochs_run"]), ("completed", 2))
        c.model(msg)
        c.close()
        self.finish(0)

    def test_sigterm_during_a_wait_hands_the_trial_back_promptly(self):
        self.start_waiting(once=False)  # the default bound: 30 s
        c, _ = self.handshake()
        self.trial_deciding(c, 6, [1], epochs=50)
        self.progress(c, 6, 1)
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        msg = c.until("result", timeout=5, trial_id=6)
        self.assertEqual((msg["result"]["status"], msg["model_bytes"]), ("stopped", 0))
        c.send(type="ack", trial_id=6, stored=True)
        self.finish(0, timeout=10)
        self.assertLess(time.monotonic() - started, 3.0, "the wait held the worker up")

    def test_a_stop_message_during_a_wait_frees_the_worker(self):
        self.start_waiting()
        c, _ = self.handshake()
        self.trial_deciding(c, 7, [1], epochs=50)
        self.progress(c, 7, 1)
        c.send(type="stop", trial_id=7)
        started = time.monotonic()
        c.send(type="trial", trial_id=8, job_id=1, lease=lease(8), spec=spec(epochs=1),
               files=FILES)
        msg = c.until("result", timeout=5, trial_id=8)  # a result of 7 would fail here
        self.assertEqual(msg["result"]["status"], "completed")
        self.assertLess(time.monotonic() - started, 2.0)
        c.model(msg)
        c.close()
        err = self.finish(0)
        self.assertIn("trial 7: stopped after 1 epochs", err)

    def test_a_dropped_connection_ends_the_wait_and_training_goes_on(self):
        self.start_waiting(once=False)
        c, _ = self.handshake()
        self.trial_deciding(c, 9, [1], epochs=100000)
        self.progress(c, 9, 1)
        c.close()
        started = time.monotonic()
        c, hello = self.handshake(reattached=[9])
        self.assertEqual(hello["leases"], [{"trial_id": 9, "lease": lease(9)}])
        # The thread trained on when the connection dropped: later epochs keep coming.
        msg = c.until("progress", timeout=5, trial_id=9)
        self.assertGreaterEqual(msg["epoch"]["epoch"], 2)
        self.assertLess(time.monotonic() - started, 5.0)
        c.send(type="stop", trial_id=9)
        self.proc.send_signal(signal.SIGTERM)
        self.finish(0)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
