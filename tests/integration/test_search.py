#!/usr/bin/env python3
"""Specification of a whole search: the real coordinator and real worker processes on loopback
ephemeral ports with a temporary SQLite file run a small coarse-to-fine job on data generated
here, and the stored results are checked against the database and against the worker itself.

Usage: test_search.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
FINAL = {"completed", "failed", "diverged", "lost", "cancelled", "pruned"}


def in_region(params, region):
    for name, value in params.items():
        r = region[name]
        if "weights" in r:
            if r["weights"].get(str(value).lower() if isinstance(value, bool) else value, 0) <= 0:
                return False
        elif not (r["min"] <= value <= r["max"]):
            return False
    return True


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data)
        cls.job = {
            "name": "moons",
            "trial": {"dataset": {"format": "csv", "csv": cls.data, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                      "epochs": 15, "patience": 4, "optimizer": "adam"},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.3},
                      "hidden_units": {"type": "int", "scale": "power_of_two", "min": 2, "max": 32},
                      "beta1": {"type": "float", "scale": "one_minus_log", "min": 0.8, "max": 0.99},
                      "activation": {"type": "categorical", "values": ["relu", "tanh"]}},
            "budget": {"max_trials": 12, "max_parallel": 2},
            "refine": {"rounds": [6, 3, 3], "keep_fraction": 0.34, "margin": 0.05},
            "seed": 5,
        }
        status, body = cls.c.request("POST", "/v1/jobs", cls.job)
        assert status == 201, body
        cls.job_id = body["id"]
        cls.final = cls.c.wait_job(cls.job_id, timeout=240)
        cls.db = sqlite3.connect(f"file:{cls.c.db}?mode=ro", uri=True)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        cls.c.close()

    def test_job_completes_with_every_trial_final(self):
        self.assertEqual(self.final["status"], "completed", self.c.log_text())
        rows = self.db.execute("SELECT status FROM trials WHERE job_id = ?",
                               (self.job_id,)).fetchall()
        self.assertEqual(len(rows), 12)
        for (status,) in rows:
            self.assertIn(status, FINAL)
        self.assertEqual(self.final["counts"]["completed"], 12)

    def test_no_configuration_is_repeated(self):
        keys = [k for (k,) in self.db.execute(
            "SELECT config_key FROM trials WHERE job_id = ?", (self.job_id,))]
        self.assertEqual(len(keys), len(set(keys)))

    def test_best_trial_is_the_true_minimum(self):
        (lowest,) = self.db.execute(
            "SELECT MIN(dev_error) FROM trials WHERE job_id = ? AND status = 'completed'",
            (self.job_id,)).fetchone()
        self.assertEqual(self.final["best"]["dev_error"], lowest)
        status, body = self.c.request("GET", f"/v1/jobs/{self.job_id}/trials?order=best&limit=3")
        self.assertEqual(status, 200)
        errors = [t["dev_error"] for t in body["trials"]]
        self.assertEqual(errors[0], lowest)
        self.assertEqual(errors, sorted(errors))

    def test_stored_dev_error_matches_the_worker_curve(self):
        for tid, dev_error, best_epoch in self.db.execute(
                "SELECT id, dev_error, best_epoch FROM trials WHERE job_id = ?", (self.job_id,)):
            (curve_error,) = self.db.execute(
                "SELECT dev_error FROM curves WHERE trial_id = ? AND epoch = ?",
                (tid, best_epoch)).fetchone()
            self.assertEqual(dev_error, curve_error)

    def test_stored_result_matches_a_standalone_rerun(self):
        tid, spec, dev_error = self.db.execute(
            "SELECT id, spec, dev_error FROM trials WHERE job_id = ? ORDER BY dev_error LIMIT 1",
            (self.job_id,)).fetchone()
        path = os.path.join(self.c.dir, "rerun.json")
        with open(path, "w") as f:
            f.write(spec)
        p = subprocess.run([os.path.join(BUILD, "worker", "caviar-worker"), "train", path,
                            "--json"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertAlmostEqual(json.loads(p.stdout)["dev_error"], dev_error, places=12)

    def test_later_rounds_lie_inside_their_narrowed_regions(self):
        regions = {r: json.loads(reg) for r, reg in self.db.execute(
            "SELECT round, region FROM rounds WHERE job_id = ?", (self.job_id,))}
        self.assertEqual(sorted(regions), [0, 1, 2])
        lr0 = regions[0]["learning_rate"]
        for r in (1, 2):
            lr = regions[r]["learning_rate"]
            self.assertLess(lr["max"] / lr["min"], lr0["max"] / lr0["min"])  # shrinks in log space
        for rnd, params in self.db.execute(
                "SELECT round, params FROM trials WHERE job_id = ?", (self.job_id,)):
            self.assertTrue(in_region(json.loads(params), regions[rnd]),
                            f"round {rnd} trial {params} outside {regions[rnd]}")

    def test_trial_detail_has_its_learning_curve(self):
        status, body = self.c.request("GET", f"/v1/jobs/{self.job_id}/trials?limit=1")
        tid = body["trials"][0]["id"]
        status, trial = self.c.request("GET", f"/v1/trials/{tid}")
        self.assertEqual(status, 200)
        self.assertEqual(len(trial["curve"]), trial["epochs_run"])
        self.assertIn(trial["diagnosis"], ("fine", "high_bias", "high_variance",
                                           "high_bias_and_variance"))

    def test_evaluate_scores_the_test_set_once(self):
        status, body = self.c.request("POST", f"/v1/jobs/{self.job_id}/evaluate", {"ensemble": 3})
        self.assertIn(status, (200, 202), body)
        job = None
        for _ in range(200):
            status, job = self.c.request("GET", f"/v1/jobs/{self.job_id}")
            if job.get("test_result"):
                break
            import time
            time.sleep(0.1)
        result = job["test_result"]
        self.assertNotIn("error", result, result)
        self.assertEqual(len(result["trials"]), 3)
        self.assertEqual(result["examples"], 120)
        self.assertGreater(result["test_accuracy"], 0.8)
        status, again = self.c.request("POST", f"/v1/jobs/{self.job_id}/evaluate")
        self.assertEqual(status, 200)
        self.assertTrue(again["cached"])
        self.assertEqual(again["test_accuracy"], result["test_accuracy"])


class BadJobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0).start()
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=50)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def job(self, **changes):
        j = {"trial": {"dataset": {"format": "csv", "csv": self.data, "label_column": "label"}},
             "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4, "max": 1}},
             "budget": {"max_trials": 4}}
        j.update(changes)
        return j

    def refused(self, body=None, raw=None, *words, status=400):
        code, answer = self.c.request("POST", "/v1/jobs", body, raw=raw)
        self.assertEqual(code, status, answer)
        for w in words:
            self.assertIn(w, answer["error"])
        # The server keeps serving.
        self.assertEqual(self.c.request("GET", "/v1/health")[0], 200)

    def test_wrong_type(self):
        self.refused(self.job(budget={"max_trials": "four"}), None, "budget.max_trials")

    def test_min_not_below_max(self):
        self.refused(self.job(space={"learning_rate": {"type": "float", "scale": "log",
                                                       "min": 0.1, "max": 0.1}}),
                     None, "learning_rate")

    def test_log_scale_bound_not_positive(self):
        self.refused(self.job(space={"learning_rate": {"type": "float", "scale": "log",
                                                       "min": 0, "max": 1}}),
                     None, "space.learning_rate.min")

    def test_unknown_parameter(self):
        self.refused(self.job(space={"momentum_of_doom": {"type": "float", "scale": "linear",
                                                          "min": 0, "max": 1}}),
                     None, "momentum_of_doom")

    def test_absurd_budget(self):
        self.refused(self.job(budget={"max_trials": 1000000000}), None, "budget.max_trials")
        self.refused(self.job(budget={"max_trials": 0}), None, "budget.max_trials")

    def test_not_json(self):
        self.refused(None, b"{\"space\": ", "invalid JSON", "byte")

    def test_body_over_the_limit(self):
        code, answer = self.c.request("POST", "/v1/jobs", raw=b"[" + b" " * (2 << 20) + b"]")
        self.assertEqual(code, 413)
        self.assertEqual(self.c.request("GET", "/v1/health")[0], 200)

    def test_missing_dataset_file(self):
        j = self.job()
        j["trial"]["dataset"]["csv"] = os.path.join(self.c.dir, "nope.csv")
        self.refused(j, None, "trial.dataset.csv", "nope.csv")

    def test_unknown_route_and_method(self):
        self.assertEqual(self.c.request("GET", "/v1/nothing")[0], 404)
        self.assertEqual(self.c.request("DELETE", "/v1/jobs")[0], 405)
        self.assertEqual(self.c.request("GET", "/v1/jobs/999")[0], 404)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
