#!/usr/bin/env python3
"""Specification of the Python client module clients/python/caviar_client.py against a real
caviard (no workers) on a loopback ephemeral port:

- `for trial in client.trials(job)` hands out every trial of an ask job once; report() answers
  False when the job's pruner (ASHA) stops a trial; tell() returns the stored trial (pruned for
  a stopped one) and fail() a failed one; the job completes and the iteration ends.
- While the job's trials are all out with other clients, trials() waits as the server's
  retry_after says and gets the trial a client gave back by losing its lease.
- A refusal raises caviar_client.Error with the server's message and status: asking a builtin
  job (409), a stale lease (409), an unknown job (404), a bad metric (400); a server that cannot
  be reached raises Error without a status once retry_seconds are spent.
- A token-protected coordinator: a Client without the token gets Error 401, one with it (given,
  or from $CAVIAR_TOKEN) is served.
- trainer_params() reads $CAVIAR_PARAMS_FILE; print_epoch() writes the "caviar:" line a worker
  reads and flushes it at once (a parent reads it while the program still runs).

Usage: test_caviar_client.py BUILD_DIR SOURCE_ROOT"""

import io
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODULE_DIR = os.path.join(SOURCE, "clients", "python")
sys.path.insert(0, MODULE_DIR)
import caviar_client  # noqa: E402


def ask_job(trials=4, parallel=4, epochs=4, pruner=None):
    job = {"name": "py", "trainer": "ask", "trial": {"epochs": epochs, "width": 32},
           "space": {"lr": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.1}},
           "budget": {"max_trials": trials, "max_parallel": parallel}, "seed": 3}
    if pruner:
        job["search"] = {"pruner": "asha", "asha": {"min_epochs": 1, "eta": 2}}
    return job


class PythonClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0, extra=["--ask-lease-seconds", "2"]).start()
        cls.url = f"http://127.0.0.1:{cls.c.port}"

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def submit(self, job):
        status, reply = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, reply)
        return reply["id"]

    def test_trials_reports_and_tells_until_the_job_is_done(self):
        job_id = self.submit(ask_job(trials=4, parallel=1, pruner="asha"))
        client = caviar_client.Client(self.url, name="py")
        seen, stopped, told = [], [], {}
        for trial in client.trials(job_id):
            self.assertEqual((trial.job_id, trial.epochs, trial.params["width"]), (job_id, 4, 32))
            self.assertIn("lr", trial.params)
            seen.append(trial.id)
            bad = trial.number in (1, 2)  # worse than the first at the first rung: pruned
            if trial.number == 3:
                told[trial.id] = trial.fail("the GPU fell off the bus")
                continue
            for epoch in range(1, trial.epochs + 1):
                if not trial.report(epoch, dev_error=0.9 if bad else 0.1 / epoch,
                                    dev_cost=1.0, train_error=0.05):
                    stopped.append(trial.id)
                    break
            told[trial.id] = trial.tell(dev_error=0.9 if bad else 0.025, dev_cost=1.0)
        self.assertEqual(len(seen), 4)
        self.assertEqual(len(set(seen)), 4)
        self.assertEqual(stopped, seen[1:3])
        self.assertEqual([told[i]["status"] for i in seen],
                         ["completed", "pruned", "pruned", "failed"])
        self.assertEqual(told[seen[0]]["dev_error"], 0.025)
        self.assertEqual(told[seen[0]]["worker_id"], "ask:py")
        self.assertEqual(told[seen[3]]["error"], "the GPU fell off the bus")
        self.assertEqual(self.c.wait_job(job_id, timeout=10)["status"], "completed")

    def test_trials_waits_for_a_trial_another_client_loses(self):
        job_id = self.submit(ask_job(trials=1, parallel=1))
        holder, _, _ = caviar_client.Client(self.url, name="holder").ask(job_id)
        self.assertIsNotNone(holder)
        trial, done, retry_after = caviar_client.Client(self.url).ask(job_id)
        self.assertEqual((trial, done, retry_after), (None, False, 1))
        start = time.monotonic()
        got = next(iter(caviar_client.Client(self.url, name="waiter").trials(job_id)))
        self.assertGreaterEqual(time.monotonic() - start, 1.0)  # the holder's lease ran out
        self.assertEqual(got.id, holder.id)
        self.assertNotEqual(got.lease, holder.lease)
        with self.assertRaises(caviar_client.Error) as e:
            holder.tell(dev_error=0.1, dev_cost=0.2)
        self.assertEqual(e.exception.status, 409)
        self.assertIn("stale lease", e.exception.message)
        self.assertEqual(got.tell(dev_error=0.1, dev_cost=0.2)["worker_id"], "ask:waiter")

    def test_refusals_raise_error_with_the_servers_message(self):
        builtin = self.submit({"trial": {"dataset": {"format": "csv", "csv": self.c.moons(),
                                                     "label_column": "label"}, "epochs": 1},
                               "space": {}, "budget": {"max_trials": 1}})
        client = caviar_client.Client(self.url)
        with self.assertRaises(caviar_client.Error) as e:
            next(iter(client.trials(builtin)))
        self.assertEqual(e.exception.status, 409)
        self.assertIn("is not an ask job", e.exception.message)
        with self.assertRaises(caviar_client.Error) as e:
            client.ask(99999)
        self.assertEqual((e.exception.status, e.exception.message), (404, "job not found"))
        job_id = self.submit(ask_job(trials=1, parallel=1))
        trial, _, _ = client.ask(job_id)
        with self.assertRaises(caviar_client.Error) as e:
            trial.report(9, dev_error=0.1, dev_cost=0.1)
        self.assertEqual(e.exception.status, 400)
        self.assertIn("epoch: must be at most 4", str(e.exception))
        with self.assertRaises(ValueError):
            trial.report(1, dev_error=0.1, dev_cost=0.1, accuracy=0.9)
        self.assertTrue(trial.report(1, dev_error=0.1, dev_cost=0.1))
        trial.tell(dev_error=0.1, dev_cost=0.1)
        with self.assertRaises(caviar_client.Error) as e:
            trial.tell(dev_error=0.1, dev_cost=0.1)
        self.assertEqual(e.exception.status, 409)
        unreachable = caviar_client.Client("http://127.0.0.1:9", retry_seconds=0.3)
        with self.assertRaises(caviar_client.Error) as e:
            unreachable.ask(1)
        self.assertIsNone(e.exception.status)
        self.assertIn("cannot reach caviard", e.exception.message)

    def test_trainer_params_and_print_epoch(self):
        path = os.path.join(self.c.dir, "params.json")
        with open(path, "w") as f:
            json.dump({"lr": 0.01, "act": "relu", "seed": 4}, f)
        os.environ["CAVIAR_PARAMS_FILE"] = path
        try:
            self.assertEqual(caviar_client.trainer_params(), {"lr": 0.01, "act": "relu",
                                                              "seed": 4})
        finally:
            del os.environ["CAVIAR_PARAMS_FILE"]
        with self.assertRaises(caviar_client.Error):
            caviar_client.trainer_params()
        out = io.StringIO()
        caviar_client.print_epoch(3, dev_error=0.12, dev_cost=0.31, train_error=0.1, file=out)
        caviar_client.print_final(dev_error=0.1, dev_cost=0.3, file=out)
        self.assertEqual(out.getvalue(), "caviar: epoch=3 dev_error=0.12 dev_cost=0.31 "
                         "train_error=0.1\ncaviar: final dev_error=0.1 dev_cost=0.3\n")
        with self.assertRaises(ValueError):
            caviar_client.print_epoch(1, train_error=0.1, file=out)
        with self.assertRaises(ValueError):
            caviar_client.print_epoch(1, dev_error=float("nan"), file=out)
        # Flushed at once: the parent reads the line while the program still runs.
        program = ("import sys, time; sys.path.insert(0, sys.argv[1]); import caviar_client; "
                   "caviar_client.print_epoch(1, dev_error=0.5, dev_cost=0.7); time.sleep(30)")
        p = subprocess.Popen([sys.executable, "-c", program, MODULE_DIR], stdout=subprocess.PIPE,
                             text=True)
        try:
            timer = threading.Timer(10, p.kill)
            timer.start()
            self.assertEqual(p.stdout.readline(), "caviar: epoch=1 dev_error=0.5 dev_cost=0.7\n")
            timer.cancel()
            self.assertIsNone(p.poll())
        finally:
            p.kill()
            p.wait()
            p.stdout.close()


class Token(unittest.TestCase):
    def test_the_token_goes_in_the_authorization_header(self):
        c = Coordinator(BUILD, workers=0)
        try:
            with open(os.path.join(c.dir, "api.token"), "w") as f:
                f.write("py-secret\n")
            c.extra += ["--token-file", os.path.join(c.dir, "api.token")]
            c.start()
            url = f"http://127.0.0.1:{c.port}"
            status, reply = c.request("POST", "/v1/jobs", ask_job(trials=1),
                                      headers={"Authorization": "Bearer py-secret"})
            self.assertEqual(status, 201, reply)
            saved = os.environ.pop("CAVIAR_TOKEN", None)
            try:
                with self.assertRaises(caviar_client.Error) as e:
                    caviar_client.Client(url).ask(reply["id"])
                self.assertEqual((e.exception.status, e.exception.message),
                                 (401, "missing or wrong API token"))
                trial, _, _ = caviar_client.Client(url, token="py-secret").ask(reply["id"])
                self.assertIsNotNone(trial)
                os.environ["CAVIAR_TOKEN"] = "py-secret"
                self.assertEqual(caviar_client.Client(url).ask(reply["id"])[:2], (None, False))
            finally:
                os.environ.pop("CAVIAR_TOKEN", None)
                if saved is not None:
                    os.environ["CAVIAR_TOKEN"] = saved
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
