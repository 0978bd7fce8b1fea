#!/usr/bin/env python3
"""Specification of preemption: a worker told to stop (SIGTERM, as Slurm sends at a preemption or
a time limit and Kubernetes when a pod ends) hands its trial back, and the real coordinator puts
it back in the queue without counting the attempt. The same trial is interrupted more times than
--max-attempts allows lost leases, and still completes once a worker is left to finish it;
nothing is stored twice and no worker is blamed.

Usage: test_preemption.py BUILD_DIR SOURCE_ROOT"""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402
from deploy_common import job_spec, running_with_progress, stored_twice, wait_for  # noqa: E402
from deploy_common import write_blobs  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
WORKER = os.path.join(BUILD, "worker", "caviar-worker")


class Preemption(unittest.TestCase):
    def setUp(self):
        self.c = Coordinator(BUILD, workers=0, extra=["--max-attempts", "2"]).start()
        self.data = os.path.join(self.c.dir, "blobs.csv")
        write_blobs(self.data)
        self.procs = []

    def tearDown(self):
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        self.c.close()

    def start_worker(self, wid):
        log = open(os.path.join(self.c.dir, f"{wid}.log"), "a")
        proc = subprocess.Popen(
            [WORKER, "--connect", f"127.0.0.1:{self.c.worker_port}", "--id", wid, "--threads",
             "1", "--cache", os.path.join(self.c.dir, "cache")],
            stdout=log, stderr=log, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        self.procs.append((proc, log))
        return proc

    def log_of(self, wid):
        with open(os.path.join(self.c.dir, f"{wid}.log")) as f:
            return f.read()

    def test_an_interrupted_trial_is_queued_again_without_using_an_attempt(self):
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data, 2, 1, epochs=6))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        victim = None
        for n in range(3):  # one more interruption than --max-attempts 2 allows lost leases
            wid = f"preempted-{n}"
            proc = self.start_worker(wid)
            t = wait_for(f"a trial training on {wid}",
                         lambda: running_with_progress(self.c, job_id, wid), log=self.c.log_text)
            victim = victim or t["id"]
            self.assertEqual(t["id"], victim, "the interrupted trial goes first again")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=15), 0, self.log_of(wid))
            self.assertIn(f"trial {victim}: stopping; handing it back", self.log_of(wid))
            trial = self.c.request("GET", f"/v1/trials/{victim}")[1]
            self.assertEqual(trial["status"], "queued", trial)
            self.assertIn(f"worker {wid} is stopping and gave trial {victim} back",
                          self.c.log_text())
        self.start_worker("finisher")
        job = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        trials = self.c.request("GET", f"/v1/jobs/{job_id}/trials")[1]["trials"]
        self.assertEqual(sorted(t["status"] for t in trials), ["completed", "completed"])
        trial = self.c.request("GET", f"/v1/trials/{victim}")[1]
        history = trial["attempts_history"]
        self.assertEqual([(a["worker_id"], a["outcome"]) for a in history],
                         [("preempted-0", "interrupted"), ("preempted-1", "interrupted"),
                          ("preempted-2", "interrupted"), ("finisher", "completed")])
        self.assertEqual(history[0]["error"], "the worker was stopped before the trial ended")
        self.assertEqual(stored_twice(self.c.db, job_id), [])
        workers = self.c.request("GET", "/v1/workers")[1]["workers"]
        self.assertFalse([w["id"] for w in workers if w["consecutive_failures"] or
                          w["quarantined"]], workers)

    def test_a_stopping_worker_gets_no_further_trial(self):
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data, 3, 2, epochs=6))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        proc = self.start_worker("leaving")
        t = wait_for("a trial training", lambda: running_with_progress(self.c, job_id, "leaving"),
                     log=self.c.log_text)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=15), 0, self.log_of("leaving"))
        time.sleep(0.2)
        history = self.c.request("GET", f"/v1/trials/{t['id']}")[1]["attempts_history"]
        self.assertEqual([a["outcome"] for a in history], ["interrupted"])
        # The trial handed back was not leased to the leaving worker again, nor any other.
        trials = self.c.request("GET", f"/v1/jobs/{job_id}/trials")[1]["trials"]
        self.assertEqual([x["attempts"] for x in trials if x["status"] != "queued"], [], trials)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
