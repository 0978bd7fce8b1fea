#!/usr/bin/env python3
"""Specification of what POST /v1/jobs accepts and refuses, through a real caviard with real
local workers: a job with nothing to search runs its fixed trial exactly once, round sizes given
as fractions follow max_trials, and a misspelt field is refused with a suggestion.

Usage: test_job_submit.py BUILD_DIR SOURCE_ROOT"""

import copy
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."


class JobSubmit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=300)
        cls.trial = {"dataset": {"format": "csv", "csv": cls.data, "label_column": "label"},
                     "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                     "epochs": 3, "optimizer": "adam", "learning_rate": 0.01,
                     "hidden_units": [8], "seed": 3}

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def trials_of(self, job_id):
        status, body = self.c.request("GET", f"/v1/jobs/{job_id}/trials")
        self.assertEqual(status, 200, body)
        return body["trials"]

    def test_a_job_with_nothing_to_search_runs_its_trial_once(self):
        for space in ({}, None):
            job = {"name": "rerun", "trial": self.trial, "budget": {"max_trials": 5}}
            if space is not None:
                job["space"] = space
            status, body = self.c.request("POST", "/v1/jobs", job)
            self.assertEqual(status, 201, body)
            final = self.c.wait_job(body["id"], timeout=120)
            self.assertEqual(final["status"], "completed", self.c.log_text())
            trials = self.trials_of(body["id"])
            self.assertEqual(len(trials), 1, trials)
            self.assertEqual(trials[0]["status"], "completed")
            self.assertEqual(trials[0]["params"], {})
            self.assertEqual(final["best"]["id"], trials[0]["id"])
            status, one = self.c.request("GET", f"/v1/trials/{trials[0]['id']}")
            self.assertEqual(status, 200, one)
            self.assertEqual(one["spec"]["hidden_units"], [8])
            self.assertEqual(one["spec"]["learning_rate"], 0.01)

    def test_round_fractions_follow_max_trials(self):
        with open(os.path.join(ROOT, "examples", "small.json"), encoding="utf-8") as f:
            job = json.load(f)
        job["trial"]["dataset"]["csv"] = self.data
        job["trial"]["epochs"] = 2
        job["budget"]["max_trials"] = 10
        status, body = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        final = self.c.wait_job(body["id"], timeout=180)
        self.assertEqual(final["status"], "completed", self.c.log_text())
        # [0.5, 0.25, 0.25] of 10: 5, then 2.5 and 2.5 floor to 2 and 2, the one left to the
        # earlier of the equal remainders.
        self.assertEqual([r["size"] for r in final["rounds"]], [5, 3, 2])
        self.assertEqual(len(self.trials_of(body["id"])), 10)

    def test_best_breaks_dev_error_ties_by_dev_cost(self):
        # A dev set of 15 examples: dev errors move in steps of 1/15, so trials tie on them.
        trial = copy.deepcopy(self.trial)
        trial["split"] = {"train": 0.9, "dev": 0.05, "test": 0.05}
        del trial["learning_rate"]
        job = {"name": "ties", "trial": trial, "budget": {"max_trials": 12, "max_parallel": 2},
               "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3,
                                           "max": 0.3}},
               "refine": {"rounds": [12]}, "seed": 4}
        status, body = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        final = self.c.wait_job(body["id"], timeout=180)
        self.assertEqual(final["status"], "completed", self.c.log_text())
        status, best = self.c.request("GET", f"/v1/jobs/{body['id']}/trials?order=best&limit=12")
        self.assertEqual(status, 200, best)
        keys = [(t["dev_error"], t["dev_cost"]) for t in best["trials"]]
        self.assertEqual(len(keys), 12)
        self.assertGreater(len(keys) - len({k[0] for k in keys}), 0, "no tie to break")
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(final["best"]["id"], best["trials"][0]["id"])

    def test_fractions_that_do_not_sum_to_one_are_refused(self):
        job = {"trial": self.trial, "budget": {"max_trials": 10},
               "refine": {"rounds": [0.5, 0.3]}}
        status, body = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 400, body)
        self.assertIn("refine.rounds: fractions must sum to 1, got 0.8", json.dumps(body))

    def test_a_misspelt_trial_field_gets_a_suggestion(self):
        trial = copy.deepcopy(self.trial)
        trial["patiance"] = 3
        status, body = self.c.request("POST", "/v1/jobs", {"trial": trial,
                                                           "budget": {"max_trials": 2}})
        self.assertEqual(status, 400, body)
        self.assertIn('trial: unknown field \\"patiance\\" (did you mean \\"patience\\"?)',
                      json.dumps(body))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
