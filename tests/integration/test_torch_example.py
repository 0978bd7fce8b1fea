#!/usr/bin/env python3
"""Specification of the PyTorch example (examples/torch/fashion_mnist.py) with real processes:
Debian's python3-torch on Debian's Fashion-MNIST files, caviard and caviar-worker on loopback
ephemeral ports, a temporary SQLite file. Every run uses a small subset, so each trial takes
seconds.

- Run as a worker runs an external trainer (a fresh directory, CAVIAR_PARAMS_FILE), it prints
  one `caviar:` line per epoch whose errors are rates that fall as it trains; it needs no test
  file; a bad parameter fails it naming the parameter; SIGTERM ends it at once.
- examples/torch-external.json, shrunk, runs to completion on a real worker started with
  --trainer torch-fmnist=COMMAND: every trial ends completed or pruned with the learning curve
  the program printed, and the job is refused while no connected worker offers the trainer.
- examples/torch-ask.json, shrunk, runs to completion driven by the program in --ask mode.

Usage: test_torch_example.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
EXAMPLE = os.path.join(ROOT, "examples", "torch", "fashion_mnist.py")
DATA = "/usr/share/datasets/fashion-mnist"
LINE = re.compile(r"caviar: epoch=(\d+)((?: \w+=\S+)+)")


def shrunk(name, trials=4):
    """examples/NAME made small: a 300-example subset, 3 epochs (ASHA's rung at epoch 1 still
    judges), trials trials one at a time."""
    with open(os.path.join(ROOT, "examples", name), encoding="utf-8") as f:
        spec = json.load(f)
    spec["trial"].update(subset=300, epochs=3)
    spec["budget"] = {"max_trials": trials, "max_parallel": 1}
    return spec


def parse_lines(stdout):
    """The caviar: lines of stdout as dicts of their values (epoch an int)."""
    reports = []
    for line in stdout.splitlines():
        m = LINE.fullmatch(line)
        if m:
            values = dict(kv.split("=") for kv in m.group(2).split())
            reports.append(dict({k: float(v) for k, v in values.items()},
                                epoch=int(m.group(1))))
    return reports


class Standalone(unittest.TestCase):
    """The program run as a worker runs it: its own directory, its parameters in a file."""

    def run_trial(self, params, timeout=120):
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "params.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(params, f)
            env = dict(os.environ, CAVIAR_PARAMS_FILE=path, CAVIAR_TRIAL_ID="1",
                       CAVIAR_JOB_ID="1", CAVIAR_EPOCHS=str(params.get("epochs", 1)),
                       CAVIAR_WORKDIR=work)
            return subprocess.run([sys.executable, EXAMPLE], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=timeout)

    def test_prints_an_epoch_line_per_epoch_with_falling_errors_and_no_test_file(self):
        with tempfile.TemporaryDirectory() as data:
            for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
                os.symlink(os.path.join(DATA, f), os.path.join(data, f))
            r = self.run_trial({"learning_rate": 0.003, "hidden_units": 64, "batch_size": 32,
                                "keep_prob": 0.9, "weight_decay": 1e-5, "epochs": 2,
                                "subset": 600, "seed": 3, "data_dir": data})
        self.assertEqual(r.returncode, 0, r.stderr)
        reports = parse_lines(r.stdout)
        self.assertEqual([m["epoch"] for m in reports], [1, 2], r.stdout)
        for m in reports:
            self.assertEqual(set(m), {"epoch", "dev_error", "dev_cost", "train_error",
                                      "train_cost"})
            for k in ("dev_error", "train_error"):
                self.assertTrue(0 <= m[k] <= 1, m)
            self.assertTrue(0 < m["dev_cost"] < 10, m)
        for k in ("dev_error", "dev_cost", "train_error", "train_cost"):
            self.assertLess(reports[1][k], reports[0][k], reports)
        self.assertLess(reports[1]["dev_error"], 0.5, reports)  # chance is 0.9

    def test_a_bad_parameter_fails_naming_it(self):
        r = self.run_trial({"learning_rate": -1, "epochs": 1, "subset": 100})
        self.assertEqual(r.returncode, 1)
        self.assertIn("learning_rate: must be > 0, got -1", r.stderr)
        self.assertEqual(parse_lines(r.stdout), [])

    def test_sigterm_ends_it_at_once(self):
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "params.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"epochs": 1000, "subset": 2000, "batch_size": 16}, f)
            proc = subprocess.Popen([sys.executable, EXAMPLE], cwd=work, text=True,
                                    env=dict(os.environ, CAVIAR_PARAMS_FILE=path),
                                    stdout=subprocess.PIPE)
            try:
                first = proc.stdout.readline()  # the first epoch's line, flushed at once
                self.assertTrue(first.startswith("caviar: epoch=1 "), first)
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=10), -signal.SIGTERM)
                self.assertLess(time.monotonic() - sent, 1.0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()


class ThroughCaviar(CoordinatorChecks, unittest.TestCase):
    """The example specs run by a real caviard."""

    def check_finished(self, job_id, spec):
        """The job completed every trial of spec's budget, each completed or pruned with a
        learning curve of rates in [0, 1] whose best epoch is its result; returns the trials."""
        final = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(final["status"], "completed", final)
        status, body = self.c.request("GET", f"/v1/jobs/{job_id}/trials?limit=1000")
        self.assertEqual(status, 200, body)
        trials = body["trials"]
        self.assertEqual(len(trials), spec["budget"]["max_trials"])
        epochs = spec["trial"]["epochs"]
        for t in trials:
            self.assertIn(t["status"], ("completed", "pruned"), t)
            for name, p in spec["space"].items():
                self.assertTrue(p["min"] <= t["params"][name] <= p["max"], (name, t["params"]))
            curve = self.trial(t["id"])["curve"]
            self.assertEqual([m["epoch"] for m in curve], list(range(1, len(curve) + 1)), t)
            if t["status"] == "completed":
                self.assertEqual(len(curve), epochs, t)
                self.assertEqual(t["epochs_run"], epochs, t)
            else:  # stopped at ASHA's rung, epoch 1; a fast program may report more meanwhile
                self.assertTrue(1 <= len(curve) <= epochs, t)
            for m in curve:
                self.assertTrue(0 <= m["dev_error"] <= 1, m)
            best = curve[t["best_epoch"] - 1]
            self.assertEqual(t["dev_error"], best["dev_error"], t)
            self.assertEqual(t["dev_error"], min(m["dev_error"] for m in curve), t)
        self.assertTrue(any(t["status"] == "completed" for t in trials), trials)
        return trials

    def validate_spec(self, spec):
        import jsonschema
        with open(os.path.join(ROOT, "schemas", "job.schema.json"), encoding="utf-8") as f:
            jsonschema.Draft202012Validator(json.load(f)).validate(spec)

    def test_external_trainer_on_a_worker(self):
        self.c = Coordinator(BUILD, workers=0).start()
        spec = shrunk("torch-external.json")
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 422, body)
        self.assertIn('trainer: no connected worker offers "torch-fmnist"', body["error"])
        self.validate_spec(spec)
        command = f"{shlex.quote(sys.executable)} {shlex.quote(EXAMPLE)}"
        self.start_worker("w1", extra=("--trainer", f"torch-fmnist={command}"))
        self.c.wait_workers(1)
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        self.check_finished(body["id"], spec)

    def test_ask_tell_driven_by_the_program(self):
        self.c = Coordinator(BUILD, workers=0).start()
        spec = shrunk("torch-ask.json")
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        self.validate_spec(spec)
        r = subprocess.run([sys.executable, EXAMPLE, "--ask", f"http://127.0.0.1:{self.c.port}",
                            str(job_id)], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_finished(job_id, spec)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
