#!/usr/bin/env python3
"""Specification of growing and removing searches: deleting a job with its models
(DELETE /v1/jobs/{id}, `caviar delete`) and extending a completed job with a new round
(POST /v1/jobs/{id}/extend, `caviar extend`). caviard with real local workers on loopback
ephemeral ports and a temporary database, driven through the CLI, asserting what the user sees
and what is left on disk.

Usage: test_grow.py BUILD_DIR SOURCE_ROOT"""

import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402
from test_cli_daemon import cli, job_spec, stop_cleanly, write_spec  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
MOONS = os.path.join(ROOT, "examples", "data", "moons.csv")


class Delete(unittest.TestCase):
    """Two small jobs run to completion; a third, long one keeps running."""

    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        try:
            cls.specs = os.path.join(cls.c.dir, "specs")
            os.makedirs(cls.specs)
            shutil.copy(MOONS, os.path.join(cls.specs, "moons.csv"))
            cls.done = [cls.submit(job_spec("moons.csv", trials=3, rounds=None, epochs=3))
                        for _ in range(2)]
            for job in cls.done:
                final = cls.c.wait_job(job, timeout=240)
                assert final["status"] == "completed", cls.c.log_text()
        except BaseException:
            cls.c.close()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.c)

    @classmethod
    def submit(cls, spec):
        path = write_spec(cls.specs, spec)
        code, out, err = cli(cls.c, "submit", path)
        assert code == 0, err + cls.c.log_text()
        return int(out.strip())

    def models_dir(self, job):
        return os.path.join(self.c.data_dir, "models", str(job))

    def model_files(self, job):
        return sorted(os.listdir(self.models_dir(job)))

    def test_delete_removes_the_job_its_trials_and_its_models(self):
        gone, kept = self.done
        self.assertEqual(len(self.model_files(gone)), 3)
        kept_models = self.model_files(kept)
        self.assertEqual(len(kept_models), 3)
        trial_ids = [t["id"] for t in self.c.request("GET", f"/v1/jobs/{gone}/trials")[1]["trials"]]

        code, out, err = cli(self.c, "delete", str(gone))
        self.assertEqual(code, 0, err + self.c.log_text())
        self.assertEqual(out, f"job {gone} deleted (3 trials deleted)\n")

        status, body = self.c.request("GET", f"/v1/jobs/{gone}")
        self.assertEqual((status, body["error"]), (404, "job not found"))
        self.assertEqual(self.c.request("GET", f"/v1/jobs/{gone}/trials")[0], 404)
        for tid in trial_ids:
            self.assertEqual(self.c.request("GET", f"/v1/trials/{tid}")[0], 404)
        deadline = time.time() + 10  # the files go on the thread pool, after the answer
        while os.path.exists(self.models_dir(gone)) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(self.models_dir(gone)))
        self.assertIn(f"job {gone}: models removed", self.c.log_text())
        ids = [j["id"] for j in self.c.request("GET", "/v1/jobs")[1]["jobs"]]
        self.assertNotIn(gone, ids)

        # The other job and its models are untouched.
        self.assertIn(kept, ids)
        status, job = self.c.request("GET", f"/v1/jobs/{kept}")
        self.assertEqual((status, job["status"], job["counts"]["completed"]), (200, "completed", 3))
        self.assertEqual(self.model_files(kept), kept_models)
        code, out, err = cli(self.c, "best", str(kept))
        self.assertEqual(code, 0, err)

        # Deleting it again: the job is not found.
        code, out, err = cli(self.c, "delete", str(gone))
        self.assertEqual((code, out), (1, ""))
        self.assertIn("job not found (HTTP 404)", err)

    def test_a_running_job_is_refused_until_cancelled(self):
        running = self.submit(job_spec("moons.csv", trials=40, rounds=None, epochs=400,
                                       parallel=1))
        code, out, err = cli(self.c, "delete", str(running))
        self.assertEqual((code, out), (1, ""))
        self.assertIn(f"job {running} is running; cancel it first (HTTP 409)", err)
        status, body = self.c.request("DELETE", f"/v1/jobs/{running}")
        self.assertEqual((status, body["error"]), (409, f"job {running} is running; cancel it "
                                                         "first"))
        self.assertEqual(self.c.request("GET", f"/v1/jobs/{running}")[1]["status"], "running")

        code, out, err = cli(self.c, "cancel", str(running))
        self.assertEqual(code, 0, err)
        status, body = self.c.request("DELETE", f"/v1/jobs/{running}")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], running)
        self.assertIs(body["deleted"], True)
        self.assertGreaterEqual(body["trials_deleted"], 1)
        self.assertEqual(self.c.request("GET", f"/v1/jobs/{running}")[0], 404)

    def test_unknown_job_and_wrong_method(self):
        code, out, err = cli(self.c, "delete", "999999")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("job not found (HTTP 404)", err)
        status, body = self.c.request("PUT", f"/v1/jobs/{self.done[1]}")
        self.assertEqual((status, body["error"]), (405, f"use GET or DELETE on /v1/jobs/"
                                                         f"{self.done[1]}"))


def wait_for(c, job, timeout=240):
    final = c.wait_job(job, timeout=timeout)
    assert final["status"] == "completed", final.get("error") or c.log_text()
    return final


def trials_of(c, job):
    status, body = c.request("GET", f"/v1/jobs/{job}/trials")
    assert status == 200, body
    return body["trials"]


class Extend(unittest.TestCase):
    """A job of 4 trials in two rounds completes, then grows to 7."""

    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        try:
            cls.specs = os.path.join(cls.c.dir, "specs")
            os.makedirs(cls.specs)
            shutil.copy(MOONS, os.path.join(cls.specs, "moons.csv"))
            cls.job = Delete.submit.__func__(cls, job_spec("moons.csv", trials=4, rounds=(2, 2),
                                                           epochs=3))
            cls.before = wait_for(cls.c, cls.job)
        except BaseException:
            cls.c.close()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.c)

    def test_a_completed_job_grows_by_a_new_refined_round(self):
        self.assertEqual(self.before["counts"]["completed"], 4)
        old = {t["id"]: t for t in trials_of(self.c, self.job)}
        code, out, err = cli(self.c, "extend", str(self.job), "--max-trials", "7", "--watch",
                             "--interval", "0.2", timeout=240)
        self.assertEqual(code, 0, err + self.c.log_text())
        self.assertIn(f"job {self.job} extended to 7 trials: round 3 runs\n", out)
        job = wait_for(self.c, self.job)
        self.assertEqual(job["counts"]["completed"], 7)
        self.assertEqual(job["max_trials"], 7)
        self.assertEqual(job["spec"]["budget"]["max_trials"], 7)
        self.assertEqual([(r["round"], r["size"]) for r in job["rounds"]], [(1, 2), (2, 2), (3, 3)])
        self.assertEqual(job["round"], 3)
        self.assertEqual(job["rounds_planned"], 3)
        # The jobs list shows the plan stored with the grown spec: the same third round.
        listed = {j["id"]: j for j in self.c.request("GET", "/v1/jobs")[1]["jobs"]}
        self.assertEqual(listed[self.job]["rounds_planned"], 3)
        # The new round is refined around the best finished trials: narrower than the space.
        space, third = job["rounds"][0]["region"], job["rounds"][2]["region"]
        self.assertNotEqual(space, third)
        lr = third["learning_rate"]
        self.assertGreaterEqual(lr["min"], space["learning_rate"]["min"])
        self.assertLessEqual(lr["max"], space["learning_rate"]["max"])

        trials = trials_of(self.c, self.job)
        self.assertEqual(len(trials), 7)
        for t in trials:
            if t["id"] in old:  # the finished trials stay as they were
                self.assertEqual((t["round"], t["status"], t["dev_error"]),
                                 (old[t["id"]]["round"], "completed", old[t["id"]]["dev_error"]))
        new = [t for t in trials if t["id"] not in old]
        self.assertEqual(sorted(t["number"] for t in new), [4, 5, 6])
        self.assertEqual({t["round"] for t in new}, {3})
        keys = [self.c.request("GET", f"/v1/trials/{t['id']}")[1]["config_key"] for t in trials]
        self.assertEqual(len(set(keys)), 7, keys)

        code, out, err = cli(self.c, "best", str(self.job), "-k", "10")
        self.assertEqual(code, 0, err)
        rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
        self.assertEqual(len(rows), 7, out)
        self.assertIn(f"job {self.job} extended to 7 trials: round 3 samples 3", self.c.log_text())

        # Not above the trials it has: refused, naming the field.
        code, out, err = cli(self.c, "extend", str(self.job), "--max-trials", "7")
        self.assertEqual((code, out), (1, ""))
        self.assertIn(f"max_trials: must be greater than the 7 trials job {self.job} has, got 7 "
                      "(HTTP 400)", err)

    def test_refusals(self):
        status, body = self.c.request("POST", f"/v1/jobs/{self.job}/extend", {})
        self.assertEqual((status, body["error"]), (400, "max_trials: is required"))
        status, body = self.c.request("POST", f"/v1/jobs/{self.job}/extend",
                                      {"max_trials": 9, "max_trails": 9})
        self.assertEqual(status, 400)
        self.assertIn("unknown field \"max_trails\"", body["error"])
        status, body = self.c.request("POST", f"/v1/jobs/{self.job}/extend", {"max_trials": "9"})
        self.assertEqual(status, 400)
        self.assertTrue(body["error"].startswith("max_trials: "), body)
        status, body = self.c.request("POST", "/v1/jobs/999999/extend", {"max_trials": 9})
        self.assertEqual((status, body["error"]), (404, "job not found"))
        code, out, err = cli(self.c, "extend", str(self.job))
        self.assertEqual(code, 2)
        self.assertIn("--max-trials N is required", err)

        running = Delete.submit.__func__(self, job_spec("moons.csv", trials=40, rounds=None,
                                                        epochs=400, parallel=1))
        code, out, err = cli(self.c, "extend", str(running), "--max-trials", "50")
        self.assertEqual((code, out), (1, ""))
        self.assertIn(f"job {running} is running (HTTP 409)", err)
        code, out, err = cli(self.c, "cancel", str(running))
        self.assertEqual(code, 0, err)
        code, out, err = cli(self.c, "extend", str(running), "--max-trials", "50")
        self.assertEqual((code, out), (1, ""))
        self.assertIn(f"job {running} was cancelled; only a completed job can be extended "
                      "(HTTP 409)", err)


class ExtendAcrossRestart(unittest.TestCase):
    """An extended job is a running job like any other: it resumes after a restart."""

    def test_extended_job_resumes_after_a_restart(self):
        c = Coordinator(BUILD, workers=2).start()
        try:
            specs = os.path.join(c.dir, "specs")
            os.makedirs(specs)
            shutil.copy(MOONS, os.path.join(specs, "moons.csv"))
            path = write_spec(specs, job_spec("moons.csv", trials=3, rounds=None, epochs=3))
            code, out, err = cli(c, "submit", path)
            self.assertEqual(code, 0, err)
            job = int(out)
            wait_for(c, job)
            self.assertEqual(c.stop(), 0)
            c.workers = 0  # no worker: the new round stays queued across the restart
            c.start()
            code, out, err = cli(c, "extend", str(job), "--max-trials", "5")
            self.assertEqual(code, 0, err + c.log_text())
            status, body = c.request("GET", f"/v1/jobs/{job}")
            # Running again; its new round's trials are proposed as workers come free.
            self.assertEqual((body["status"], sum(body["counts"].values())), ("running", 3))
            self.assertEqual(c.stop(), 0)
            c.workers = 2
            c.start()
            final = wait_for(c, job)
            self.assertEqual(final["counts"]["completed"], 5)
            # refine.rounds defaults to [0.4, 0.3, 0.3]: 3 trials ran in rounds of 1.
            self.assertEqual([r["size"] for r in final["rounds"]], [1, 1, 1, 2])
            self.assertEqual({t["round"] for t in trials_of(c, job) if t["number"] >= 3}, {4})
        finally:
            stop_cleanly(c)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
