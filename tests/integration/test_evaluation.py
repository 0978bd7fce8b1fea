#!/usr/bin/env python3
"""Specification of test-set evaluation as a worker's task: the real coordinator and real
caviar-worker processes on loopback, and a hand-driven worker on a raw socket where a test needs
to control exactly what a worker says.

- The evaluation runs on a connected worker: the worker fetches the models by hash from the
  coordinator and scores them; the logs of both say which worker evaluated, and the job's
  test_result is what the API always served.
- A worker lost mid-evaluation (a hand-driven one that hangs up, a real one SIGKILLed while it
  holds the task): the evaluation goes to another worker, which finishes it.
- An answer under another lease is refused and nothing is stored.
- A test set that cannot be read is reported against the job (its test_result says why) and
  the worker is not blamed (not quarantined, no failure counted).

Usage: test_evaluation.py BUILD_DIR SOURCE_ROOT"""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import (Coordinator, CoordinatorChecks, csv_job, message,  # noqa: E402
                            read_message, write_moons)

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


class Evaluation(CoordinatorChecks, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.c = Coordinator(BUILD, workers=0, extra=["--quarantine-after", "1"]).start()
        self.csv = os.path.join(self.c.dir, "moons.csv")
        write_moons(self.csv, n=400)

    def tearDown(self):
        """Workers and the coordinator stop cleanly (SIGTERM), and none of their logs holds a
        sanitizer report (the sanitizer build runs this test too)."""
        for proc, _ in self.workers.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.c.stop()
        reports = []
        for name in ["caviard"] + list(self.workers):
            with open(os.path.join(self.c.dir, f"{name}.log"), errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error" in text:
                reports.append(f"{name}:\n{text[-4000:]}")
        super().tearDown()
        self.assertEqual(reports, [])

    def finished_job(self, trainer="trainer"):
        """A completed job of 3 trials, trained by a worker that then goes away."""
        self.start_worker(trainer)
        status, body = self.c.request("POST", "/v1/jobs", csv_job(self.csv, "eval", trials=3))
        self.assertEqual(status, 201, body)
        job = self.c.wait_job(body["id"], timeout=120)
        self.assertEqual(job["status"], "completed", job)
        proc = self.workers[trainer][0]
        proc.kill()
        proc.wait()
        self.wait_for("the trainer to leave",
                      lambda: not any(w["connected"] for w in
                                      self.c.request("GET", "/v1/workers")[1]["workers"]))
        return body["id"]

    def wait_test_result(self, job_id, timeout=60):
        def stored():
            job = self.c.request("GET", f"/v1/jobs/{job_id}")[1]
            return job.get("test_result")
        return self.wait_for(f"job {job_id}'s test result", stored, timeout)

    def evaluate(self, job_id, body=None):
        status, reply = self.c.request("POST", f"/v1/jobs/{job_id}/evaluate", body)
        self.assertEqual((status, reply), (202, {"status": "evaluating"}))

    def test_a_worker_scores_the_ensemble_and_the_coordinator_stores_it_once(self):
        job_id = self.finished_job()
        self.evaluate(job_id, {"ensemble": 2})
        # No worker is connected: the evaluation waits, and says so.
        time.sleep(0.5)
        self.assertEqual(self.c.request("POST", f"/v1/jobs/{job_id}/evaluate")[1],
                         {"status": "evaluating"})
        status, body = self.c.request("DELETE", f"/v1/jobs/{job_id}")
        self.assertEqual(status, 409, body)
        self.assertIn("is being evaluated", body["error"])
        self.start_worker("scorer")
        result = self.wait_test_result(job_id)
        self.assertNotIn("error", result, result)
        self.assertEqual(result["ensemble"], 2)
        self.assertEqual(len(result["trials"]), 2)
        self.assertEqual(result["examples"], 80)
        self.assertGreater(result["test_accuracy"], 0.7)
        self.assertAlmostEqual(result["test_error"], 1 - result["test_accuracy"])
        log = self.c.log_text()
        self.assertIn(f"job {job_id}: test-set evaluation sent to worker scorer (attempt 1)", log)
        self.assertIn(f"job {job_id}: test set evaluated by worker scorer", log)
        wlog = self.worker_log("scorer")
        self.assertIn(f"job {job_id}: evaluating 2 model(s) on the test set", wlog)
        self.assertIn("fetching the model of trial", wlog)
        self.assertIn(f"job {job_id} evaluated: test accuracy", wlog)
        # A model is scored once: the worker keeps no copy in its cache.
        cache = os.path.join(self.c.dir, "cache")
        self.assertEqual([f for f in os.listdir(cache) if not f.endswith(".tmp")]
                         if os.path.isdir(cache) else [], [])
        status, again = self.c.request("POST", f"/v1/jobs/{job_id}/evaluate")
        self.assertEqual(status, 200, again)
        self.assertTrue(again["cached"])
        self.assertEqual(again["test_accuracy"], result["test_accuracy"])
        self.assertEqual(log.count(f"job {job_id} test evaluation: "), 1)

    def raw_worker(self, wid):
        """A worker driven by hand: connected and welcomed."""
        s = socket.create_connection(("127.0.0.1", self.c.worker_port), timeout=10)
        s.sendall(message({"type": "hello", "protocol": 1, "worker_id": wid, "version": "test",
                           "threads": 1, "host": "raw"}))
        self.assertEqual(read_message(s)["type"], "welcome")
        return s

    def next_of(self, sock, type_, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = read_message(sock, timeout)
            if m["type"] == type_:
                return m
        self.fail(f"no {type_} message")

    def test_a_worker_lost_mid_evaluation_hands_it_to_another(self):
        job_id = self.finished_job()
        raw = self.raw_worker("doomed")
        self.evaluate(job_id, {"ensemble": 3})
        task = self.next_of(raw, "evaluate")
        self.assertEqual(task["job_id"], job_id)
        self.assertEqual(len(task["models"]), 3)
        self.assertEqual(sorted(task["files"]), ["csv"])
        self.assertEqual(task["spec"]["dataset"]["csv"], self.csv)
        # An answer under another lease is refused: nothing is stored.
        stale = {"type": "evaluation", "job_id": job_id, "lease": "0" * 32,
                 "test_accuracy": 1.0, "test_cost": 0.0, "examples": 1}
        raw.sendall(message(stale))
        self.wait_for("the refusal", lambda: f"worker doomed answered an evaluation of job "
                      f"{job_id} it does not hold under that lease; refused" in self.c.log_text())
        self.assertIsNone(self.c.request("GET", f"/v1/jobs/{job_id}")[1]["test_result"])
        raw.close()  # lost mid-evaluation
        self.wait_for("the loss", lambda: "the worker evaluating its test set left"
                      in self.c.log_text())
        self.start_worker("rescuer")
        result = self.wait_test_result(job_id)
        self.assertNotIn("error", result, result)
        self.assertEqual(len(result["trials"]), 3)
        self.assertEqual(result["trials"], [m["trial_id"] for m in task["models"]])
        log = self.c.log_text()
        self.assertIn(f"job {job_id}: test-set evaluation sent to worker rescuer (attempt 2)", log)
        self.assertIn(f"job {job_id}: test set evaluated by worker rescuer", log)

    def test_a_real_worker_killed_holding_the_evaluation_hands_it_to_another(self):
        job_id = self.finished_job()
        victim = self.start_worker("victim")
        self.wait_for("the victim", lambda: any(
            w["id"] == "victim" and w["connected"]
            for w in self.c.request("GET", "/v1/workers")[1]["workers"]))
        victim.send_signal(signal.SIGSTOP)  # it holds the task and cannot answer it
        self.evaluate(job_id, {"ensemble": 2})
        self.wait_for("the task to reach the victim", lambda: f"job {job_id}: test-set "
                      "evaluation sent to worker victim (attempt 1)" in self.c.log_text())
        victim.kill()
        victim.wait()
        self.start_worker("heir")
        result = self.wait_test_result(job_id)
        self.assertNotIn("error", result, result)
        self.assertEqual(len(result["trials"]), 2)
        log = self.c.log_text()
        self.assertIn(f"job {job_id}: the worker evaluating its test set left", log)
        self.assertIn(f"job {job_id}: test set evaluated by worker heir", log)
        self.assertNotIn("evaluated by worker victim", log)

    def test_an_unreadable_test_set_is_the_jobs_failure_not_the_workers(self):
        job_id = self.finished_job()
        with open(self.csv, "w") as f:  # the data turned bad after the search
            f.write("x1,x2,label\n0.5,oops,1\n")
        self.start_worker("honest")
        self.evaluate(job_id)
        result = self.wait_test_result(job_id)
        self.assertIn("error", result, result)
        self.assertIn("moons.csv", result["error"])
        self.assertEqual(result["ensemble"], 1)
        self.assertNotIn("test_accuracy", result)
        self.assertIn(f"job {job_id}: test set evaluated by worker honest", self.c.log_text())
        workers = self.c.request("GET", "/v1/workers")[1]["workers"]
        honest = [w for w in workers if w["id"] == "honest"]
        self.assertEqual(len(honest), 1, workers)
        self.assertFalse(honest[0]["quarantined"], honest)
        self.assertNotIn("quarantine", self.c.log_text())
        # A stored failure is not a result: asking again evaluates again.
        self.evaluate(job_id)

    def test_a_missing_test_set_is_reported_against_the_job(self):
        job_id = self.finished_job()
        os.unlink(self.csv)
        self.evaluate(job_id)
        result = self.wait_test_result(job_id)
        self.assertIn("dataset.csv", result["error"])
        self.assertIn("moons.csv", result["error"])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
