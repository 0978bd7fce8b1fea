#!/usr/bin/env python3
"""Specification of a job's plan (its sampler, its pruner and the rounds it plans) as the API
shows it, through a real caviard and its SQLite store:

- The jobs list (GET /v1/jobs) and a job's read (GET /v1/jobs/{id}) agree on the plan, for a job
  that takes every default and for one that names its search and its rounds (as fractions that
  leave a round empty, which the schedule drops).
- A store written by a version before the plan was stored (schema 8) gets the plans of its jobs,
  running or not, when the coordinator starts on it: derived from each job's spec, the same as
  a job submitted now.

Usage: test_job_plan.py BUILD_DIR SOURCE_ROOT"""

import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, csv_job  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


def jobs(c):
    """The jobs the coordinator plans: a job with every default (5 trials: the default schedule's
    rounds of 2, 2 and 1), and one naming its sampler, its pruner and round fractions of its 2
    trials (0.2 of 2 rounds to no trial: that round is dropped), each with the plan expected as
    (sampler, pruner, rounds)."""
    defaults = csv_job(c.moons(), "defaults", trials=5)
    named = csv_job(c.moons(), "named", trials=2)
    named["search"] = {"sampler": "tpe", "pruner": "asha"}
    named["refine"] = {"rounds": [0.2, 0.4, 0.4]}
    return [(defaults, ("random", "none", 3)), (named, ("tpe", "asha", 2))]


class JobPlan(unittest.TestCase):
    def setUp(self):
        self.c = Coordinator(BUILD, workers=0).start()  # no worker: the jobs stay as submitted
        self.addCleanup(self.c.close)

    def submit(self, spec):
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        return body["id"]

    def plans(self):
        """{id: ((sampler, pruner, rounds_planned) of the jobs list, the same of the job's read)}"""
        status, body = self.c.request("GET", "/v1/jobs")
        self.assertEqual(status, 200, body)
        out = {}
        for row in body["jobs"]:
            status, job = self.c.request("GET", f"/v1/jobs/{row['id']}")
            self.assertEqual(status, 200, job)
            out[row["id"]] = ((row["sampler"], row["pruner"], row["rounds_planned"]),
                              (job["search"]["sampler"], job["search"]["pruner"],
                               job["rounds_planned"]))
        return out

    def test_the_jobs_list_and_a_jobs_read_agree_on_its_plan(self):
        expected = {self.submit(spec): plan for spec, plan in jobs(self.c)}
        got = self.plans()
        self.assertEqual(sorted(got), sorted(expected))
        for job_id, plan in expected.items():
            with self.subTest(job=job_id):
                self.assertEqual(got[job_id], (plan, plan))

    def test_a_store_of_schema_8_gets_the_plans_of_its_jobs_at_start_up(self):
        expected = {self.submit(spec): plan for spec, plan in jobs(self.c)}
        first = min(expected)
        status, body = self.c.request("POST", f"/v1/jobs/{first}/cancel")
        self.assertEqual(status, 200, body)  # a job that no longer runs is not resumed
        self.assertEqual(self.c.stop(), 0)
        # The file as schema 8 left it: no plan columns.
        with sqlite3.connect(self.c.db) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 9)
            db.executescript("ALTER TABLE jobs DROP COLUMN sampler; "
                             "ALTER TABLE jobs DROP COLUMN pruner; "
                             "ALTER TABLE jobs DROP COLUMN rounds_planned; "
                             "PRAGMA user_version = 8;")
        db.close()
        self.c.start()
        got = self.plans()
        for job_id, plan in expected.items():
            with self.subTest(job=job_id):
                self.assertEqual(got[job_id], (plan, plan))
        self.assertIn("2 jobs stored by an older version got their plans (sampler, pruner, "
                      "rounds) from their specs", self.c.log_text())
        with sqlite3.connect(self.c.db) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 9)
            rows = db.execute("SELECT id, sampler, pruner, rounds_planned FROM jobs "
                              "ORDER BY id").fetchall()
        db.close()
        self.assertEqual(rows, [(i, *expected[i]) for i in sorted(expected)])
        # Done once: the next start finds no job without a plan.
        self.assertEqual(self.c.stop(), 0)
        self.c.start()
        self.assertEqual(self.c.log_text().count("got their plans"), 1)
        self.assertEqual(self.plans()[first], (expected[first], expected[first]))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
