#!/usr/bin/env python3
"""Specification of deleting a job with its models (DELETE /v1/jobs/{id}, `caviar delete`):
caviard with real local workers on loopback ephemeral ports and a temporary database, driven
through the CLI, asserting what the user sees and what is left on disk.

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


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
