#!/usr/bin/env python3
"""Specification of `caviar importance JOB` against a real search (caviard, two caviar-worker
processes): a job searches the learning rate over six decades, from hopeless to good, and Adam's
epsilon over a range too small to matter. The learning rate must come first and explain most of
the dev error's variance; epsilon next to nothing. The JSON form sums to 1. A job without two
completed trials is refused with the count.

Usage: test_importance_cli.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIAR = os.path.join(BUILD, "client", "caviar")


def job_spec(csv, trials):
    return {"name": "importance",
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 6,
                      "optimizer": "adam", "hidden_units": 16},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-6,
                                        "max": 0.1},
                      "epsilon": {"type": "float", "scale": "log", "min": 1e-9, "max": 1e-8}},
            "budget": {"max_trials": trials, "max_parallel": 2},
            "refine": {"rounds": [trials]}, "seed": 5}


class Importance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.c.wait_workers(2)
        csv = cls.c.moons()
        cls.job = cls.c.run_job(job_spec(csv, 24))["id"]
        cls.single = cls.c.run_job(job_spec(csv, 1))["id"]

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def cli(self, *args):
        p = subprocess.run([CAVIAR, "--server", f"http://127.0.0.1:{self.c.port}", *args],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_the_learning_rate_explains_most_and_epsilon_almost_nothing(self):
        rc, out, err = self.cli("--json", "importance", str(self.job))
        self.assertEqual(rc, 0, err)
        answer = json.loads(out)
        self.assertEqual(answer["job"], self.job)
        self.assertEqual(answer["trials"], 24)
        params = answer["parameters"]
        self.assertEqual([p["name"] for p in params], ["learning_rate", "epsilon"])
        self.assertEqual([p["scale"] for p in params], ["log", "log"])
        self.assertAlmostEqual(sum(p["importance"] for p in params), 1.0, places=5)
        self.assertGreater(params[0]["fraction"], 0.5, answer)
        self.assertLess(params[1]["fraction"], 0.15, answer)
        self.assertAlmostEqual(answer["interactions"],
                               1 - params[0]["fraction"] - params[1]["fraction"], places=4)

    def test_the_table_names_each_parameter_with_its_share(self):
        rc, out, err = self.cli("importance", str(self.job))
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertIn(f"job {self.job} (24 completed trials)", lines[0])
        self.assertTrue(lines[2].startswith("learning_rate"), out)
        self.assertTrue(lines[3].startswith("epsilon"), out)

    def test_fewer_than_two_completed_trials_is_refused_with_the_count(self):
        rc, _, err = self.cli("importance", str(self.single))
        self.assertEqual(rc, 1)
        self.assertIn(f"at least 2 completed trials; job {self.single} has 1", err)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
