#!/usr/bin/env python3
"""Specification of the `caviar` command-line client against the real coordinator: caviard with
real local workers on loopback ephemeral ports and a temporary database, driven through the CLI
the way the README tells a new user to, asserting what the user sees (the output, the messages,
the exit status). test_client.py covers rendering and usage against a fake coordinator.

Usage: test_cli_daemon.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
CAVIAR = os.path.join(BUILD, "client", "caviar")
WORKER = os.path.join(BUILD, "worker", "caviar-worker")
MOONS = os.path.join(ROOT, "examples", "data", "moons.csv")


def clean_env():
    return {k: v for k, v in os.environ.items()
            if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
            and not k.startswith("CAVIAR_")}


def assert_clean(stderr):
    """No sanitizer report (the sanitizer build runs these tests too)."""
    if "Sanitizer" in stderr or "runtime error" in stderr:
        raise AssertionError("sanitizer report:\n" + stderr)


def cli(coordinator, *args, cwd=None, timeout=120):
    """(exit status, stdout, stderr) of `caviar --server URL ARGS` run in cwd."""
    p = subprocess.run([CAVIAR, "--server", f"http://127.0.0.1:{coordinator.port}", *args],
                       capture_output=True, text=True, timeout=timeout, env=clean_env(), cwd=cwd)
    assert_clean(p.stderr)
    return p.returncode, p.stdout, p.stderr


def stop_cleanly(coordinator):
    """Stops caviard with SIGTERM and requires a clean exit without a sanitizer report."""
    code = coordinator.stop()
    log = coordinator.log_text()
    coordinator.close()
    assert_clean(log)
    if code != 0:
        raise AssertionError(f"caviard exited with {code}:\n{log}")


def job_spec(csv, trials=4, rounds=(2, 2), epochs=5, patience=None, parallel=2):
    spec = {
        "name": "moons-cli",
        "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                  "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                  "epochs": epochs, "optimizer": "adam"},
        "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3, "max": 0.1},
                  "hidden_units": {"type": "int", "scale": "power_of_two", "min": 4, "max": 16}},
        "budget": {"max_trials": trials, "max_parallel": parallel},
        "seed": 3,
    }
    if rounds is not None:
        spec["refine"] = {"rounds": list(rounds)}
    if patience is not None:
        spec["trial"]["patience"] = patience
    return spec


def write_spec(directory, spec):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "job.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


class FinishedJob(unittest.TestCase):
    """A small two-round job submitted with `caviar submit` from another directory than the
    spec's, whose dataset path is relative to the spec file; it runs to completion."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.set_up()
        except BaseException:
            if getattr(cls, "c", None):
                cls.c.close()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def set_up(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.tmp = cls.c.dir
        cls.specs = os.path.join(cls.tmp, "specs")
        os.makedirs(os.path.join(cls.specs, "data"))
        shutil.copy(MOONS, os.path.join(cls.specs, "data", "moons.csv"))
        write_spec(cls.specs, job_spec("data/moons.csv"))
        cls.elsewhere = os.path.join(cls.tmp, "elsewhere")
        os.makedirs(cls.elsewhere)
        code, out, err = cli(cls.c, "submit", "../specs/job.json", cwd=cls.elsewhere)
        assert code == 0, err + cls.c.log_text()
        cls.job_id = int(out.strip())
        cls.final = cls.c.wait_job(cls.job_id, timeout=240)
        assert cls.final["status"] == "completed", cls.c.log_text()

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.c)

    def trials(self):
        status, body = self.c.request("GET", f"/v1/jobs/{self.job_id}/trials")
        self.assertEqual(status, 200)
        return body["trials"]

    def test_relative_dataset_path_is_read_beside_the_spec_file(self):
        # caviard runs in another directory; the path in the spec is relative to the spec.
        self.assertNotEqual(os.path.realpath(os.getcwd()), os.path.realpath(self.specs))
        self.assertEqual(self.final["spec"]["trial"]["dataset"]["csv"],
                         os.path.join(os.path.realpath(self.specs), "data", "moons.csv"))
        self.assertEqual(self.final["counts"]["completed"], 4)

    def test_missing_dataset_is_named_by_the_absolute_path_tried(self):
        other = os.path.join(self.tmp, "other")
        write_spec(other, job_spec("nope/moons.csv"))
        code, out, err = cli(self.c, "submit", "../other/job.json", cwd=self.elsewhere)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("trial.dataset.csv: cannot open "
                      f"{os.path.join(os.path.realpath(other), 'nope', 'moons.csv')}: "
                      "No such file or directory", err)

    def test_server_names_where_it_looked_for_a_relative_path(self):
        # Another client may still send a relative path: caviard says where it looked.
        status, body = self.c.request("POST", "/v1/jobs", job_spec("no/such.csv"))
        self.assertEqual(status, 400)
        self.assertIn("trial.dataset.csv: cannot open no/such.csv (looked for "
                      f"{os.path.join(os.getcwd(), 'no', 'such.csv')})", body["error"])

    def test_rounds_count_from_1_in_the_api_the_log_and_the_cli(self):
        self.assertEqual(self.final["round"], 2)
        self.assertEqual([r["round"] for r in self.final["rounds"]], [1, 2])
        self.assertEqual(self.final["rounds_planned"], 2)
        self.assertEqual(sorted({t["round"] for t in self.trials()}), [1, 2])
        status, jobs = self.c.request("GET", "/v1/jobs")
        self.assertEqual([j["round"] for j in jobs["jobs"] if j["id"] == self.job_id], [2])
        self.assertIn(f"job {self.job_id}: round 2 of 2 samples 2 trials", self.c.log_text())
        code, out, err = cli(self.c, "status", str(self.job_id))
        self.assertEqual(code, 0, err)
        self.assertIn("round      2/2", out)
        code, out, err = cli(self.c, "trials", str(self.job_id))
        self.assertEqual(code, 0, err)
        rounds = [line.split()[2] for line in out.strip().split("\n")[1:]]
        self.assertEqual(sorted(rounds), ["1", "1", "2", "2"])
        first = min(self.trials(), key=lambda t: t["number"])
        code, out, err = cli(self.c, "trial", str(first["id"]))
        self.assertEqual(code, 0, err)
        self.assertIn(f"(job {self.job_id}, number 0, round 1)", out)

    def test_test_set_is_scored_once_per_job(self):
        code, out, err = cli(self.c, "evaluate", str(self.job_id), "--ensemble", "3")
        self.assertEqual(code, 0, err + self.c.log_text())
        first = re.search(r"test accuracy (\S+)", out)
        self.assertIsNotNone(first, out)
        self.assertIn("ensemble of trials", out)
        self.assertNotIn("[stored result]", out)
        code, out, err = cli(self.c, "evaluate", str(self.job_id), "--ensemble", "5")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn(f"the test set of job {self.job_id} was already scored with an ensemble "
                      "of 3; it is scored once per job so that it stays an unbiased estimate",
                      err)
        for again in ([], ["--ensemble", "3"]):
            code, out, err = cli(self.c, "evaluate", str(self.job_id), *again)
            self.assertEqual(code, 0, err)
            self.assertIn(f"test accuracy {first.group(1)} ", out)
            self.assertIn("[stored result]", out)

    def test_the_best_model_downloads_and_the_worker_evaluates_it(self):
        best = self.final["best"]
        self.assertEqual(best["status"], "completed")
        stored = best["model_path"]
        code, out, err = cli(self.c, "best", str(self.job_id), "-k", "2")
        self.assertEqual(code, 0, err)
        self.assertIn(f"model of trial {best['id']}: {stored} (on the coordinator; "
                      f"caviar model {best['id']} -o FILE downloads it)", out)
        code, out, err = cli(self.c, "trial", str(best["id"]))
        self.assertEqual(code, 0, err)
        self.assertIn(f"model      {stored} (on the coordinator", out)
        code, out, err = cli(self.c, "model", str(best["id"]), "-o", "m.model", cwd=self.elsewhere)
        self.assertEqual(code, 0, err)
        downloaded = os.path.join(self.elsewhere, "m.model")
        self.assertIn(f"wrote the model of trial {best['id']} ", err)
        with open(downloaded, "rb") as a, open(stored, "rb") as b:
            self.assertEqual(a.read(), b.read())
        p = subprocess.run([WORKER, "evaluate", downloaded, MOONS], capture_output=True,
                           text=True, timeout=60)
        assert_clean(p.stderr)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"accuracy\s*[:=]?\s*0\.\d+")

    def test_a_model_that_does_not_exist_is_explained(self):
        code, out, err = cli(self.c, "model", "999999", "-o", os.path.join(self.tmp, "x.model"))
        self.assertEqual(code, 1)
        self.assertIn("trial 999999 not found (HTTP 404)", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.model")))
        # The worst trial's file removed from the data directory (the top 3 stay for evaluate).
        status, body = self.c.request("GET", f"/v1/jobs/{self.job_id}/trials?order=best&limit=4")
        worst = body["trials"][-1]
        os.unlink(worst["model_path"])
        code, out, err = cli(self.c, "model", str(worst["id"]), "-o",
                             os.path.join(self.tmp, "x.model"))
        self.assertEqual(code, 1)
        self.assertIn(f"the model file of trial {worst['id']} is gone from the data directory "
                      f"({worst['model_path']}) (HTTP 404)", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.model")))

    def test_default_schedule_shows_its_planned_rounds(self):
        # No refine.rounds: 5 trials are split 2, 2, 1 (job_spec.h), and the CLI says "1/3".
        spec = write_spec(os.path.join(self.tmp, "default"),
                          job_spec(os.path.join(self.specs, "data", "moons.csv"), trials=5,
                                   rounds=None, epochs=1))
        code, out, err = cli(self.c, "submit", spec)
        self.assertEqual(code, 0, err)
        job_id = int(out.strip())
        code, out, err = cli(self.c, "status", str(job_id))
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"round      [123]/3\n")
        self.c.wait_job(job_id, timeout=240)


class RunFromElsewhere(unittest.TestCase):
    """`caviar run` with a spec in another directory, whose dataset path is relative to it."""

    def test_run_reads_the_dataset_beside_the_spec(self):
        with tempfile.TemporaryDirectory() as tmp:
            specs = os.path.join(tmp, "specs")
            os.makedirs(os.path.join(specs, "data"))
            shutil.copy(MOONS, os.path.join(specs, "data", "moons.csv"))
            write_spec(specs, job_spec("data/moons.csv", epochs=3))
            work = os.path.join(tmp, "work")
            os.makedirs(work)
            p = subprocess.run([CAVIAR, "run", os.path.join(specs, "job.json"), "--workers", "1",
                                "--ensemble", "2", "--interval", "0.2"], capture_output=True,
                               text=True, timeout=240, env=clean_env(), cwd=work)
            assert_clean(p.stderr)
            log = os.path.join(work, "caviard.log")
            with open(log) as f:
                log_text = f.read()
            self.assertEqual(p.returncode, 0, p.stderr + log_text)
            self.assertIn("round 2/2", p.stdout)
            self.assertIn("test accuracy", p.stdout)
            self.assertIn("ensemble of trials", p.stdout)
            self.assertTrue(os.path.exists(os.path.join(work, "caviar.db")))
            self.assertNotIn("cannot open", log_text)


class BusyWorker(unittest.TestCase):
    """One local worker busy on a slow trial (wide layers, thousands of epochs on moons)."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.set_up()
        except BaseException:
            if getattr(cls, "c", None):
                cls.c.close()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def set_up(cls):
        cls.c = Coordinator(BUILD, workers=1).start()
        cls.c.wait_workers(1)
        spec = job_spec(MOONS, trials=1, rounds=None, epochs=20000, parallel=1)
        spec["trial"]["hidden_units"] = 512
        del spec["space"]["hidden_units"]
        code, out, err = cli(cls.c, "submit", write_spec(os.path.join(cls.c.dir, "slow"), spec))
        assert code == 0, err
        cls.job_id = int(out.strip())
        deadline = time.time() + 60
        while time.time() < deadline:
            trials = cls.c.request("GET", f"/v1/jobs/{cls.job_id}/trials")[1]["trials"]
            if trials and trials[0]["status"] == "running":
                cls.trial_id = trials[0]["id"]
                if cls.c.request("GET", f"/v1/trials/{cls.trial_id}")[1]["curve"]:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the slow trial did not start:\n" + cls.c.log_text())

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.c)

    def worker(self):
        status, body = self.c.request("GET", "/v1/workers")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["workers"]), 1)
        return body["workers"][0]

    def test_workers_says_what_each_worker_is_doing(self):
        code, out, err = cli(self.c, "workers")
        self.assertEqual(code, 0, err)
        header, row = out.strip().split("\n")
        self.assertEqual(header.split()[4:7], ["STATE", "JOB", "TRIAL"])
        self.assertEqual(row.split()[0], "local-0")
        self.assertEqual(row.split()[4:7], ["running", str(self.job_id), str(self.trial_id)])
        w = self.worker()
        self.assertEqual((w["connected"], w["state"], w["trial_id"], w["job_id"]),
                         (True, "running", self.trial_id, self.job_id))
        # last_seen follows the worker's messages instead of staying at its hello.
        first = w["last_seen"]
        time.sleep(2.5)
        later = self.worker()["last_seen"]
        self.assertGreater(later, first)
        self.assertGreater(later - w["first_seen"], 2)
        # A running trial has no model yet.
        code, out, err = cli(self.c, "model", str(self.trial_id), "-o",
                             os.path.join(self.c.dir, "m.model"))
        self.assertEqual(code, 1)
        self.assertIn(f"trial {self.trial_id} has no model: it has not finished yet (HTTP 404)",
                      err)
        # Once its job is cancelled the worker is idle again.
        code, out, err = cli(self.c, "cancel", str(self.job_id))
        self.assertEqual(code, 0, err)
        deadline = time.time() + 30
        while self.worker()["state"] != "idle" and time.time() < deadline:
            time.sleep(0.1)
        code, out, err = cli(self.c, "workers")
        self.assertEqual(out.strip().split("\n")[1].split()[4:7], ["idle", "-", "-"])


class Quarantine(unittest.TestCase):
    """A worker whose every trial fails (CAVIAR_WORKER_FAIL_TRIALS), against --quarantine-after 2
    and against --quarantine-after 0 (never)."""

    def start(self, quarantine_after):
        self.c = Coordinator(BUILD, workers=0,
                             extra=["--quarantine-after", str(quarantine_after)]).start()
        self.addCleanup(stop_cleanly, self.c)
        log = open(os.path.join(self.c.dir, "broken.log"), "a")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [WORKER, "--connect", f"127.0.0.1:{self.c.worker_port}", "--id", "broken",
             "--threads", "1", "--cache", os.path.join(self.c.dir, "cache")],
            stdout=log, stderr=log,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1", CAVIAR_WORKER_FAIL_TRIALS="1"))
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        self.worker = proc
        self.c.wait_workers(1)
        spec = job_spec(MOONS, trials=3, rounds=None, epochs=1, parallel=1)
        code, out, err = cli(self.c, "submit", write_spec(os.path.join(self.c.dir, "j"), spec))
        self.assertEqual(code, 0, err)
        return int(out.strip())

    def wait(self, what, predicate, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what}:\n" + self.c.log_text())

    def test_status_and_workers_name_the_quarantined_worker(self):
        job_id = self.start(2)
        self.wait("the quarantine", lambda: "worker broken quarantined" in self.c.log_text())
        code, out, err = cli(self.c, "status", str(job_id))
        self.assertEqual(code, 0, err)
        self.assertIn("quarantine broken (they get no trials; see caviar workers)", out)
        code, out, err = cli(self.c, "workers")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip().split("\n")[1].split()[4:7], ["quarantined", "-", "-"])
        code, out, err = cli(self.c, "cancel", str(job_id))
        self.assertEqual(code, 0, err)

    def test_quarantine_after_0_never_quarantines(self):
        job_id = self.start(0)
        job = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(job["counts"]["failed"], 3)
        self.assertEqual(job["quarantined_workers"], [])
        self.assertNotIn("quarantined", self.c.log_text())
        code, out, err = cli(self.c, "workers")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip().split("\n")[1].split()[4:9],
                         ["idle", "-", "-", "3", "3"])  # STATE JOB TRIAL DONE FAILS
        # Gone, it keeps the time of its last message, not of its hello.
        self.worker.terminate()
        self.worker.wait()
        self.wait("the worker to leave",
                  lambda: self.c.request("GET", "/v1/workers")[1]["workers"][0]["state"]
                  == "disconnected")
        w = self.c.request("GET", "/v1/workers")[1]["workers"][0]
        self.assertFalse(w["connected"])
        self.assertGreater(w["last_seen"], w["first_seen"])
        code, out, err = cli(self.c, "workers")
        self.assertEqual(out.strip().split("\n")[1].split()[4], "disconnected")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
