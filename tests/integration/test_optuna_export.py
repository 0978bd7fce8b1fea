#!/usr/bin/env python3
"""Specification of `caviar export JOB --optuna FILE`, checked with Optuna itself (Debian's
python3-optuna, 3.1) against a real search: caviard, two caviar-worker processes, ASHA pruning.

- optuna.load_study opens the file: one study named after the job (or --study), minimizing.
- Every trial is there with its number; completed trials are COMPLETE with the job's objective as
  value, pruned ones PRUNED with the objective of their last epoch, cancelled ones FAIL with the
  reason.
- Parameters come back with their values (categorical ones as the value, not an index) and with
  the distributions of the job's space: log scales log, powers of two log integers.
- Each epoch of a trial's curve is an intermediate value at its epoch; Optuna's best trial is
  caviar's best.
- optuna's trials_dataframe() gives the same trials, parameter for parameter.
- An existing file is refused and left as it was.

Usage: test_optuna_export.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIAR = os.path.join(BUILD, "client", "caviar")
OPTUNA_PYTHON = "/usr/bin/python3"  # Debian's python3, where python3-optuna is installed

# Reads a study with Optuna and prints what the test compares, as JSON.
READ_STUDY = r"""
import json, sys, optuna
study = optuna.load_study(study_name=sys.argv[2], storage="sqlite:///" + sys.argv[1])
out = {"direction": study.direction.name, "user_attrs": study.user_attrs,
       "trials": []}
complete = [t for t in study.trials if t.state.name == "COMPLETE"]
out["best"] = study.best_trial.number if complete else None
for t in study.get_trials(deepcopy=False):
    out["trials"].append({
        "number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
        "distributions": {k: [type(d).__name__, getattr(d, "log", None)]
                          for k, d in t.distributions.items()},
        "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
        "user_attrs": t.user_attrs, "fail_reason": t.system_attrs.get("fail_reason")})
frame = study.trials_dataframe(attrs=("number", "value", "state", "params"))
out["frame"] = json.loads(frame.to_json(orient="records", double_precision=15))
print(json.dumps(out))
"""


def job_spec(csv, trials):
    return {"name": "optuna-export",
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 9,
                      "optimizer": "adam", "hidden_units": 16},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5,
                                        "max": 0.3},
                      "batch_size": {"type": "int", "scale": "power_of_two", "min": 16,
                                     "max": 128},
                      "keep_prob": {"type": "float", "scale": "linear", "min": 0.7, "max": 1.0},
                      "activation": {"type": "categorical", "values": ["relu", "tanh"]}},
            "budget": {"max_trials": trials, "max_parallel": 2},
            "refine": {"rounds": [trials]},
            "search": {"sampler": "random", "pruner": "asha",
                       "asha": {"min_epochs": 1, "eta": 3}},
            "seed": 3}


class OptunaExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.c.wait_workers(2)
        csv = cls.c.moons()
        cls.job = cls.c.run_job(job_spec(csv, 12))
        status, page = cls.c.request("GET", f"/v1/jobs/{cls.job['id']}/trials?limit=1000")
        cls.trials = page["trials"]
        cls.curves = {t["number"]: cls.c.request("GET", f"/v1/trials/{t['id']}")[1]["curve"]
                      for t in cls.trials}
        # A second job cancelled at once, so that some of its trials never ran.
        spec = job_spec(csv, 6)
        spec["name"] = "cancelled"
        status, body = cls.c.request("POST", "/v1/jobs", spec)
        assert status == 201, body
        cls.cancelled = body["id"]
        cls.c.request("POST", f"/v1/jobs/{cls.cancelled}/cancel")
        cls.c.wait_job(cls.cancelled, timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def export(self, job, path, *extra):
        p = subprocess.run([CAVIAR, "--server", f"http://127.0.0.1:{self.c.port}", "export",
                            str(job), "--optuna", path, *extra],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def read(self, path, name):
        p = subprocess.run([OPTUNA_PYTHON, "-c", READ_STUDY, path, name], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_optuna_loads_every_trial_with_its_state_value_params_and_curve(self):
        self.assertEqual(self.job["status"], "completed", self.job)
        path = os.path.join(self.c.dir, "study.db")
        rc, _, err = self.export(self.job["id"], path)
        self.assertEqual(rc, 0, err)
        self.assertIn('as Optuna study "optuna-export"', err)
        study = self.read(path, "optuna-export")
        self.assertEqual(study["direction"], "MINIMIZE")
        self.assertEqual(study["user_attrs"]["caviar_id"], self.job["id"])
        self.assertEqual(study["user_attrs"]["caviar_objective"], "dev_error")
        by_number = {t["number"]: t for t in study["trials"]}
        self.assertEqual(sorted(by_number), sorted(t["number"] for t in self.trials))
        states = {"completed": "COMPLETE", "pruned": "PRUNED"}
        self.assertIn("pruned", {t["status"] for t in self.trials}, "ASHA pruned nothing")
        for t in self.trials:
            o = by_number[t["number"]]
            self.assertEqual(o["state"], states[t["status"]], (t, o))
            curve = self.curves[t["number"]]
            self.assertEqual(o["intermediate"], {str(p["epoch"]): p["dev_error"] for p in curve})
            if t["status"] == "completed":
                self.assertEqual(o["value"], t["dev_error"])
            else:
                self.assertEqual(o["value"], curve[-1]["dev_error"])
            self.assertEqual(o["params"], t["params"])
            self.assertEqual(o["distributions"], {
                "learning_rate": ["FloatDistribution", True],
                "batch_size": ["IntDistribution", True],
                "keep_prob": ["FloatDistribution", False],
                "activation": ["CategoricalDistribution", None]})
            self.assertEqual(o["user_attrs"]["caviar_status"], t["status"])
            self.assertEqual(o["user_attrs"]["caviar_epochs_run"], t["epochs_run"])
        self.assertEqual(study["best"], self.job["best"]["number"])
        # trials_dataframe (pandas), the table most Optuna users read: row for row, parameter
        # for parameter.
        frame = {row["number"]: row for row in study["frame"]}
        self.assertEqual(sorted(frame), sorted(by_number))
        for t in self.trials:
            row = frame[t["number"]]
            self.assertEqual(row["state"], states[t["status"]])
            self.assertAlmostEqual(row["value"], by_number[t["number"]]["value"], places=12)
            for name, v in t["params"].items():
                if isinstance(v, str):
                    self.assertEqual(row["params_" + name], v, (t, row))
                else:
                    self.assertAlmostEqual(row["params_" + name], v, places=12, msg=(t, row))

    def test_cancelled_trials_fail_with_the_reason_and_study_takes_a_name(self):
        path = os.path.join(self.c.dir, "cancelled.db")
        rc, _, err = self.export(self.cancelled, path, "--study", "mine")
        self.assertEqual(rc, 0, err)
        study = self.read(path, "mine")
        status, page = self.c.request("GET", f"/v1/jobs/{self.cancelled}/trials?limit=1000")
        cancelled = [t for t in page["trials"] if t["status"] == "cancelled"]
        self.assertTrue(cancelled, page)
        by_number = {t["number"]: t for t in study["trials"]}
        for t in cancelled:
            o = by_number[t["number"]]
            self.assertEqual((o["state"], o["value"]), ("FAIL", None))
            self.assertEqual(o["fail_reason"], t["error"])

    def test_an_existing_file_is_refused_and_left_as_it_was(self):
        path = os.path.join(self.c.dir, "taken.db")
        with open(path, "w") as f:
            f.write("mine")
        rc, _, err = self.export(self.job["id"], path)
        self.assertEqual(rc, 1)
        self.assertIn("taken.db: the file exists", err)
        with open(path) as f:
            self.assertEqual(f.read(), "mine")

    def test_optuna_and_csv_options_do_not_mix(self):
        rc, _, err = self.export(self.job["id"], os.path.join(self.c.dir, "x.db"), "--csv")
        self.assertEqual(rc, 2)
        self.assertIn("--optuna FILE writes a study", err)
        self.assertFalse(os.path.exists(os.path.join(self.c.dir, "x.db")))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
