#!/usr/bin/env python3
"""The operations deploy/README.md describes, done as it says on a real caviard: a backup of
the database taken with the sqlite3 shell while a job writes to it is consistent and a
coordinator started on the copy resumes the job; a database whose schema is newer than the
program is refused with a clear error and left untouched.

Usage: test_operations.py BUILD_DIR SOURCE_ROOT"""

import os
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
CAVIARD = os.path.join(BUILD, "server", "caviard")


def job(n):
    return {"name": "ops",
            "trial": {"dataset": {"format": "csv", "csv": os.path.join(
                SOURCE, "examples", "data", "moons.csv"), "label_column": "label"}, "epochs": 1},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5,
                                        "max": 1e-1}},
            "budget": {"max_trials": n, "max_parallel": 4}, "seed": 5}


def scalar(path, sql):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchone()[0]


class Operations(unittest.TestCase):
    def test_a_backup_taken_while_a_job_runs_is_consistent_and_resumes(self):
        c = Coordinator(BUILD, workers=2, noop=True).start()
        self.addCleanup(c.close)
        status, body = c.request("POST", "/v1/jobs", job(8000))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        c.wait_workers(2)
        copies = [os.path.join(c.dir, "vacuum-into.db"), os.path.join(c.dir, "dot-backup.db")]
        for sql in (f"VACUUM INTO '{copies[0]}'", f".backup {copies[1]}"):
            self.assertEqual(c.request("GET", f"/v1/jobs/{job_id}")[1]["status"], "running")
            p = subprocess.run(["sqlite3", c.db, sql], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(c.request("GET", f"/v1/jobs/{job_id}")[1]["status"], "running",
                         "the job ended before the backups: nothing was written meanwhile")
        for copy in copies:
            with self.subTest(copy=os.path.basename(copy)):
                self.assertEqual(scalar(copy, "PRAGMA integrity_check"), "ok")
                done = scalar(copy, "SELECT count(*) FROM trials WHERE status = 'completed'")
                self.assertGreater(done, 0)
                # A coordinator on the copy has the job, and goes on with it.
                r = Coordinator(BUILD, workers=1, noop=True, db=copy).start()
                try:
                    status, restored = r.request("GET", f"/v1/jobs/{job_id}")
                    self.assertEqual((status, restored["name"]), (200, "ops"))
                    r.wait_workers(1)
                    r.wait_job(job_id, timeout=120)
                finally:
                    r.close()
                self.assertEqual(scalar(copy, "SELECT count(*) FROM trials WHERE job_id = 1 "
                                        "AND status = 'completed'"), 8000)

    def test_a_database_newer_than_the_program_is_refused(self):
        c = Coordinator(BUILD, workers=0).start()
        self.addCleanup(c.close)
        c.stop()
        version = scalar(c.db, "PRAGMA user_version")
        with sqlite3.connect(c.db) as db:
            db.execute(f"PRAGMA user_version = {version + 1}")
        p = subprocess.run([CAVIARD, "--db", c.db, "--data-dir", c.data_dir, "--listen",
                            "127.0.0.1:0", "--worker-listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"{c.db} has schema version {version + 1}, newer than the {version} "
                      "this program understands; use a newer caviard", p.stderr)
        self.assertEqual(scalar(c.db, "PRAGMA user_version"), version + 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
