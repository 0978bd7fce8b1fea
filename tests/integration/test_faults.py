#!/usr/bin/env python3
"""Specification of fault tolerance: the real coordinator and real caviar-worker processes on
loopback ephemeral ports with a temporary SQLite file, and faults made on purpose - a worker
killed mid-trial, the coordinator killed mid-job and restarted on its database, a worker frozen
past its lease and resumed, a worker whose every trial fails, a database that fills up. Each
case checks that every trial ends accounted for, that no result is stored twice, and what the
attempt history records.

Workers are started here (not by caviard --workers) so the test knows their process ids; the
worker port comes from the second line of caviard's --port-file.

Usage: test_faults.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
FINAL = {"completed", "failed", "diverged", "lost", "cancelled", "pruned"}


def write_blobs(path, n=3000, features=16, seed=3):
    """Two overlapping Gaussian classes as CSV: small to write, slow enough to train on with
    1024 hidden units (about 0.2 s an epoch on one thread)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(features)) + ",label\n")
        for i in range(n):
            label = i % 2
            xs = (rng.gauss(0.3 * label * (j % 3), 1) for j in range(features))
            f.write(",".join(f"{x:.4f}" for x in xs) + f",{label}\n")


class Faults(CoordinatorChecks, unittest.TestCase):
    # ---- helpers ----------------------------------------------------------------------------

    def start_coordinator(self, *extra):
        self.c = Coordinator(BUILD, workers=0, extra=extra).start()
        self.data = os.path.join(self.c.dir, "blobs.csv")
        write_blobs(self.data)
        return self.c

    def wait_workers(self, *ids, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = self.c.request("GET", "/v1/workers")
            seen = {w["id"] for w in (body.get("workers", body) if isinstance(body, dict)
                                      else body)} if status == 200 else set()
            if set(ids) <= seen:
                return
            time.sleep(0.05)
        self.fail(f"workers {ids} did not connect:\n" + self.c.log_text())

    def submit(self, trials, parallel, epochs=8, units=1024, rounds=None):
        job = {
            "name": "faults",
            "trial": {"dataset": {"format": "csv", "csv": self.data, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                      "patience": epochs, "optimizer": "adam", "hidden_layers": 2,
                      "hidden_units": units, "batch_size": 64},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                        "max": 1e-2}},
            "budget": {"max_trials": trials, "max_parallel": parallel},
            "refine": {"rounds": rounds or [trials]},
            "seed": 9,
        }
        status, body = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        return body["id"]

    def trials(self, job_id):
        status, body = self.c.request("GET", f"/v1/jobs/{job_id}/trials")
        self.assertEqual(status, 200, body)
        return body["trials"]

    def running_with_progress(self, job_id, worker=None):
        """A trial that runs (on worker, when given) and has reported an epoch."""
        for t in self.trials(job_id):
            if t["status"] == "running" and (worker is None or t["worker_id"] == worker):
                if self.trial(t["id"])["curve"]:
                    return t
        return None

    def db(self):
        return sqlite3.connect(f"file:{self.c.db}?mode=ro", uri=True)

    def check_accounted(self, job_id, count):
        job = self.c.wait_job(job_id, timeout=60)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        with self.db() as db:
            rows = db.execute("SELECT status, config_key FROM trials WHERE job_id = ?",
                              (job_id,)).fetchall()
            self.assertEqual(len(rows), count)
            self.assertTrue(all(status in FINAL for status, _ in rows), rows)
            self.assertEqual(len({key for _, key in rows}), count)
            # No trial is stored twice: at most one attempt of each ends with a result, except
            # that a failure on a worker that was then quarantined is retried elsewhere.
            twice = db.execute(
                "SELECT a.trial_id, a.attempt FROM trial_attempts AS a "
                "WHERE a.outcome IN ('completed', 'failed', 'diverged', 'pruned') AND EXISTS ("
                "  SELECT 1 FROM trial_attempts AS b WHERE b.trial_id = a.trial_id "
                "  AND b.attempt > a.attempt AND b.outcome IN ('completed', 'failed', 'diverged', "
                "'pruned'))"
                " AND NOT (a.outcome = 'failed' AND a.worker_id IN "
                "  (SELECT id FROM workers WHERE quarantined = 1))"
            ).fetchall()
            self.assertEqual(twice, [])
        return job

    # ---- cases ------------------------------------------------------------------------------

    def test_worker_killed_mid_trial_is_rerun(self):
        self.start_coordinator("--lease-seconds", "2", "--heartbeat-seconds", "0.3")
        self.start_worker("victim")
        self.wait_workers("victim")
        job_id = self.submit(trials=3, parallel=2)
        victim = self.wait_for("a trial training on the victim",
                               lambda: self.running_with_progress(job_id, "victim"))
        self.start_worker("survivor")
        self.workers["victim"][0].kill()
        self.check_accounted(job_id, 3)
        t = self.trial(victim["id"])
        self.assertEqual(t["status"], "completed")
        self.assertGreaterEqual(t["attempts"], 2)
        self.assertEqual(t["worker_id"], "survivor")
        history = t["attempts_history"]
        self.assertEqual(len(history), t["attempts"])
        self.assertEqual((history[0]["worker_id"], history[0]["outcome"]), ("victim", "lost"))
        self.assertEqual(history[-1]["outcome"], "completed")

    def test_coordinator_killed_keeps_every_acknowledged_result(self):
        c = self.start_coordinator("--lease-seconds", "3", "--heartbeat-seconds", "0.3")
        ids = ("w1", "w2", "w3")
        for wid in ids:
            self.start_worker(wid)
        self.wait_workers(*ids)
        job_id = self.submit(trials=9, parallel=3, epochs=6)
        self.wait_for("a stored result", lambda: any(
            "result stored" in self.worker_log(w) for w in ids))
        self.wait_for("trials training", lambda: self.running_with_progress(job_id))
        c.stop(signal.SIGKILL)
        c.extra += ["--worker-listen", f"127.0.0.1:{c.worker_port}"]
        c.start()
        self.check_accounted(job_id, 9)
        stored = set()
        for wid in ids:
            stored |= {int(n) for n in re.findall(r"trial (\d+): result stored",
                                                 self.worker_log(wid))}
        self.assertTrue(stored)
        with self.db() as db:
            for tid in stored:
                (status,) = db.execute("SELECT status FROM trials WHERE id = ?",
                                       (tid,)).fetchone()
                self.assertEqual(status, "completed", tid)
        # The trials that were training kept their leases: their workers re-attached to them.
        self.assertRegex(c.log_text(), r"worker w\d re-attached to trial \d+")
        # Every worker came back by itself and the job finished on them.
        for wid in ids:
            self.assertGreaterEqual(self.worker_log(wid).count("welcomed"), 2, wid)

    def test_frozen_worker_late_result_is_refused(self):
        self.start_coordinator("--lease-seconds", "1", "--heartbeat-seconds", "0.3")
        self.start_worker("frozen")
        self.wait_workers("frozen")
        job_id = self.submit(trials=1, parallel=1, epochs=10)
        t = self.wait_for("the trial training", lambda: self.running_with_progress(job_id))
        self.assertEqual(t["worker_id"], "frozen")
        proc = self.workers["frozen"][0]
        proc.send_signal(signal.SIGSTOP)
        self.start_worker("thawed")
        job = self.c.wait_job(job_id, timeout=40)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        proc.send_signal(signal.SIGCONT)
        self.wait_for("the frozen worker's lease refused", lambda: any(
            a["outcome"] == "stale" for a in self.trial(t["id"])["attempts_history"]))
        self.check_accounted(job_id, 1)
        done = self.trial(t["id"])
        self.assertEqual((done["status"], done["worker_id"]), ("completed", "thawed"))
        outcomes = [(a["worker_id"], a["outcome"]) for a in done["attempts_history"]]
        self.assertEqual(outcomes, [("frozen", "stale"), ("thawed", "completed")])
        self.wait_for("the worker dropping its result",
                      lambda: "not reattached" in self.worker_log("frozen"))
        self.assertNotIn(f"trial {t['id']}: result stored", self.worker_log("frozen"))

    def test_failing_worker_is_quarantined(self):
        self.start_coordinator("--quarantine-after", "2")
        self.start_worker("broken", env={"CAVIAR_WORKER_FAIL_TRIALS": "1"})
        self.wait_workers("broken")
        job_id = self.submit(trials=5, parallel=2, epochs=2, units=64)
        self.wait_for("the quarantine", lambda: "quarantined" in self.c.log_text())
        self.start_worker("healthy")
        job = self.check_accounted(job_id, 5)
        [q] = job["quarantined_workers"]
        self.assertEqual(q["worker_id"], "broken")
        self.assertIn("2 failed trials in a row", q["reason"])
        self.assertIn("failing on purpose", q["reason"])
        self.assertAlmostEqual(q["quarantined_until"] - q["quarantined_at"], 600, places=3)
        with self.db() as db:
            broken = db.execute("SELECT trial_id, outcome FROM trial_attempts "
                                "WHERE worker_id = 'broken' ORDER BY ended_at").fetchall()
            self.assertEqual([outcome for _, outcome in broken], ["failed", "failed"])
            (flag,) = db.execute("SELECT quarantined FROM workers WHERE id = 'broken'").fetchone()
            self.assertEqual(flag, 1)
            # The two failures were the worker's fault: both trials went back to the queue, so
            # the healthy worker completed all five.
            healthy = db.execute("SELECT count(*) FROM trials WHERE job_id = ? AND "
                                 "status = 'completed' AND worker_id = 'healthy'",
                                 (job_id,)).fetchone()
            self.assertEqual(healthy, (5,))
        for trial_id, _ in broken:
            t = self.trial(trial_id)
            self.assertEqual((t["status"], t["worker_id"], t["error"]),
                             ("completed", "healthy", None))
            self.assertEqual(t["attempts"], 2)
            history = [(a["attempt"], a["worker_id"], a["outcome"]) for a in t["attempts_history"]]
            self.assertEqual(history, [(1, "broken", "failed"), (2, "healthy", "completed")])
            self.assertIn("failing on purpose", t["attempts_history"][0]["error"])
        self.assertIn("failed on quarantined worker broken are queued again", self.c.log_text())
        self.assertIsNone(self.workers["broken"][0].poll())  # still connected, just idle

    def test_quarantine_leaves_failures_of_an_ended_round_failed(self):
        self.start_coordinator("--quarantine-after", "2")
        self.start_worker("broken", env={"CAVIAR_WORKER_FAIL_TRIALS": "1"})
        self.wait_workers("broken")
        # Round 1's only trial fails, which ends the round and samples round 2; the first trial
        # of round 2 fails too and quarantines the worker.
        job_id = self.submit(trials=3, parallel=1, epochs=2, units=64, rounds=[1, 2])
        self.wait_for("the quarantine", lambda: "quarantined" in self.c.log_text())
        self.start_worker("healthy")
        self.check_accounted(job_id, 3)
        by_number = {t["number"]: self.trial(t["id"]) for t in self.trials(job_id)}
        first, retried = by_number[0], by_number[1]
        self.assertEqual((first["round"], first["status"], first["worker_id"]),
                         (1, "failed", "broken"))
        self.assertEqual([(a["worker_id"], a["outcome"]) for a in first["attempts_history"]],
                         [("broken", "failed")])
        self.assertEqual((retried["round"], retried["status"], retried["worker_id"]),
                         (2, "completed", "healthy"))
        self.assertEqual([(a["worker_id"], a["outcome"]) for a in retried["attempts_history"]],
                         [("broken", "failed"), ("healthy", "completed")])
        self.assertEqual(by_number[2]["status"], "completed")
        self.assertIn(f"trial {first['id']} failed on quarantined worker broken but stays "
                      "failed: its round already ended", self.c.log_text())

    def test_failed_commit_is_never_acknowledged(self):
        # 8 spare pages: the group's commit is what fails.
        self.check_full_database(8)

    def test_failed_write_inside_a_group_is_never_acknowledged(self):
        # 16 spare pages: a write inside the group fails first (a result's attempt row, then the
        # lease's requeue); the scheduler must refuse to commit the rest of that group.
        self.check_full_database(16)

    def check_full_database(self, spare_pages):
        # The job is submitted without a cap, then caviard restarts capped a few pages above the
        # database's size: the results of the job soon overflow it and a write fails.
        c = self.start_coordinator("--heartbeat-seconds", "0.3")
        job_id = self.submit(trials=300, parallel=4, epochs=2, units=8)
        self.assertEqual(c.stop(), 0, c.log_text())
        with self.db() as db:
            (page,) = db.execute("PRAGMA page_size").fetchone()
        cap = ["--db-max-bytes", str(os.path.getsize(c.db) + spare_pages * page)]
        c.extra += cap
        c.start()
        ids = ("n1", "n2", "n3", "n4")
        for wid in ids:
            self.start_worker(wid, extra=["--noop"])
        try:
            code = c.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.fail("caviard did not stop on a full database:\n" + c.log_text())
        self.assertNotEqual(code, 0, c.log_text())
        self.assertRegex(c.log_text(), r"(commit failed: .*|a store write failed); \d+ results "
                                       r"not acknowledged")
        c.stop()
        # Every result a worker heard was stored is in the database, which is sound.
        stored = set()
        for wid in ids:
            stored |= {int(n) for n in re.findall(r"trial (\d+): result stored",
                                                 self.worker_log(wid))}
        self.assertTrue(stored, "no result was acknowledged before the database filled up")
        with self.db() as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            status = dict(db.execute("SELECT id, status FROM trials WHERE job_id = ?", (job_id,)))
        self.assertEqual({tid: status.get(tid) for tid in stored},
                         {tid: "completed" for tid in stored})
        self.assertLess(sum(s == "completed" for s in status.values()), 300)
        # Without the cap the job resumes on the same database; the workers come back by
        # themselves and resend what was never acknowledged.
        c.extra = [a for a in c.extra if a not in cap]
        c.extra += ["--worker-listen", f"127.0.0.1:{c.worker_port}"]
        c.start()
        self.check_accounted(job_id, 300)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
