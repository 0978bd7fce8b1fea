#!/usr/bin/env python3
"""Specification of GET /v1/jobs/{id}/importance against a real search (caviard, caviar-worker
processes on loopback): the coordinator reads a job's completed trials, a worker computes the
fANOVA importance, and the route answers 202 while it runs, then 200 with the figures: the
learning rate explains most of the dev error's variance and Adam's epsilon (over [1e-9, 1e-8])
almost none, to 1e-9 the figures `caviar --json importance` computes locally. More completed
trials (an extended job) give a new computation; a worker killed while computing hands the
task to another; 404 and 409 as schemas/api.md says. Every reply is checked against
schemas/api.schema.json by the harness.

Usage: test_importance_api.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402
from test_importance_cli import job_spec  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIAR = os.path.join(BUILD, "client", "caviar")


class ImportanceRoute(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A long lease: the frozen worker of the last test stays connected until it is killed.
        cls.c = Coordinator(BUILD, workers=0, extra=["--lease-seconds", "60"]).start()
        cls.procs = {}
        for wid in ("wa", "wb"):
            cls.start_worker(wid)
        cls.c.wait_workers(2)
        csv = cls.c.moons()
        cls.job = cls.c.run_job(job_spec(csv, 24))["id"]
        cls.other = cls.c.run_job(job_spec(csv, 6))["id"]
        cls.single = cls.c.run_job(job_spec(csv, 1))["id"]

    @classmethod
    def start_worker(cls, wid):
        log = open(os.path.join(cls.c.dir, f"{wid}.log"), "a")
        proc = subprocess.Popen(
            [os.path.join(BUILD, "worker", "caviar-worker"), "--connect",
             f"127.0.0.1:{cls.c.worker_port}", "--id", wid, "--threads", "1",
             "--cache", os.path.join(cls.c.dir, "cache")],
            stdout=log, stderr=log, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        cls.procs[wid] = (proc, log)
        return proc

    @classmethod
    def tearDownClass(cls):
        for proc, log in cls.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait()
            log.close()
        cls.c.stop()
        logs = [cls.c.log_text()] + [open(os.path.join(cls.c.dir, f"{wid}.log")).read()
                                     for wid in cls.procs]
        cls.c.close()
        for text in logs:  # a sanitizer build writes its reports there
            assert "Sanitizer" not in text and "runtime error" not in text, text

    def importance(self, job):
        return self.c.request("GET", f"/v1/jobs/{job}/importance")

    def wait_figures(self, job, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = self.importance(job)
            if status == 200:
                return body
            self.assertEqual(status, 202, body)
            self.assertEqual(body["status"], "computing")
            time.sleep(0.05)
        self.fail(f"no importance for job {job} after {timeout} s:\n" + self.c.log_text())

    def local(self, job):
        p = subprocess.run([CAVIAR, "--server", f"http://127.0.0.1:{self.c.port}", "--json",
                            "importance", str(job)], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def assert_same_figures(self, api, local):
        self.assertEqual((api["job"], api["trials"]), (local["job"], local["trials"]))
        self.assertEqual([p["name"] for p in api["parameters"]],
                         [p["name"] for p in local["parameters"]])
        for a, b in zip(api["parameters"], local["parameters"]):
            self.assertEqual(a["scale"], b["scale"])
            self.assertAlmostEqual(a["importance"], b["importance"], delta=1e-9)
            self.assertAlmostEqual(a["fraction"], b["fraction"], delta=1e-9)
        self.assertAlmostEqual(api["interactions"], local["interactions"], delta=1e-9)

    def test_1_answers_202_then_the_figures_the_cli_computes(self):
        status, body = self.importance(self.job)
        self.assertEqual((status, body), (202, {"status": "computing", "trials": 24}))
        before = time.time()
        answer = self.wait_figures(self.job)
        self.assertEqual(answer["job"], self.job)
        self.assertEqual(answer["trials"], 24)
        self.assertLessEqual(answer["computed_at"], time.time() + 1)
        self.assertGreater(answer["computed_at"], before - 60)
        params = answer["parameters"]
        self.assertEqual([p["name"] for p in params], ["learning_rate", "epsilon"])
        self.assertEqual([p["scale"] for p in params], ["log", "log"])
        self.assertGreater(params[0]["fraction"], 0.5, answer)
        self.assertLess(params[1]["fraction"], 0.15, answer)
        self.assertAlmostEqual(sum(p["importance"] for p in params), 1.0, places=9)
        self.assert_same_figures(answer, self.local(self.job))
        self.assertEqual(self.importance(self.job), (200, answer))  # kept, not computed again
        self.assertEqual(self.c.log_text().count(f"job {self.job}: importance task sent"), 1)

    def test_2_unknown_job_and_too_few_trials_are_refused(self):
        self.assertEqual(self.importance(999), (404, {"error": "job not found"}))
        self.assertEqual(self.importance(self.single),
                         (409, {"error": "importance needs at least 2 completed trials; job "
                                         f"{self.single} has 1"}))

    def test_2b_a_deleted_job_is_not_found(self):
        status, body = self.c.request("DELETE", f"/v1/jobs/{self.single}")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.importance(self.single), (404, {"error": "job not found"}))

    def test_3_more_completed_trials_give_a_new_computation(self):
        first = self.wait_figures(self.job)
        status, body = self.c.request("POST", f"/v1/jobs/{self.job}/extend", {"max_trials": 30})
        self.assertEqual(status, 200, body)
        self.c.wait_job(self.job)
        status, body = self.importance(self.job)
        self.assertEqual((status, body), (202, {"status": "computing", "trials": 30}))
        answer = self.wait_figures(self.job)
        self.assertEqual(answer["trials"], 30)
        self.assertGreaterEqual(answer["computed_at"], first["computed_at"])
        self.assert_same_figures(answer, self.local(self.job))
        self.assertEqual(self.c.log_text().count(f"job {self.job}: importance task sent"), 2)

    def test_4_a_worker_killed_while_computing_hands_the_task_to_another(self):
        frozen, gone = self.procs["wa"][0], self.procs["wb"][0]
        frozen.send_signal(signal.SIGSTOP)
        gone.kill()
        gone.wait()
        deadline = time.time() + 30
        while [w["id"] for w in self.c.request("GET", "/v1/workers")[1]["workers"]
               if w["connected"]] != ["wa"]:
            self.assertLess(time.time(), deadline, self.c.log_text())
            time.sleep(0.05)
        status, body = self.importance(self.other)
        self.assertEqual((status, body), (202, {"status": "computing", "trials": 6}))
        sent = f"job {self.other}: importance task sent to worker wa (attempt 1)"
        while sent not in self.c.log_text():
            self.assertLess(time.time(), deadline, self.c.log_text())
            time.sleep(0.05)
        self.assertEqual(self.importance(self.other)[0], 202)  # wa holds it, frozen
        self.start_worker("wc")
        frozen.kill()
        frozen.wait()
        answer = self.wait_figures(self.other)
        log = self.c.log_text()
        self.assertIn(f"job {self.other}: the worker computing its importance left", log)
        self.assertIn(f"job {self.other}: importance task sent to worker wc (attempt 2)", log)
        self.assert_same_figures(answer, self.local(self.other))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
