#!/usr/bin/env python3
"""Specification of external trainers: a real caviard, real caviar-worker processes started with
`--trainer NAME=COMMAND`, and small Python programs (Debian's python3) written by the test.

- A job with ASHA pruning over a program that reports its epochs: pruned trials end `pruned`
  and their program (which ignores SIGTERM) is gone within the grace period; completed trials
  carry the best reported epoch as their result and every report in their curve.
- A crashing program's trial fails with its exit status and the tail of its stderr; a silent one
  with "the program reported no metric"; one past --trainer-timeout with the limit, and it is
  gone.
- A job naming a trainer no connected worker offers is refused with 422 and the names offered.
- A worker killed with SIGKILL mid-trial leaves no program behind: the program dies with it, and
  one it could not take along (a grandchild) is ended when the worker starts again.
- Security: parameter values full of shell syntax reach the program as plain data (nothing is
  executed), the worker's token is not passed on, and no job field changes the command.

Usage: test_external_trainer.py BUILD_DIR"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks  # noqa: E402

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"
GRACE = 1.0

# The epochs program: records its pid and what it received, and reports a dev error that falls
# with the epochs and is best for a learning rate near 1e-2.
EPOCHS_PY = r'''
import json, math, os, signal, sys, time
params = json.load(open(os.environ["CAVIAR_PARAMS_FILE"]))
out = os.path.join(params["out_dir"], os.environ["CAVIAR_TRIAL_ID"])
with open(out + ".pid", "w") as f:
    f.write(str(os.getpid()))
with open(out + ".json", "w") as f:
    json.dump({"params": params, "cwd": os.getcwd(), "files": sorted(os.listdir(".")),
               "env": {k: v for k, v in os.environ.items() if k.startswith("CAVIAR")}}, f)
print("starting", flush=True)
print("some noise on stderr", file=sys.stderr, flush=True)
base = min(0.9, abs(math.log10(params["lr"]) + 2) / 5)
for epoch in range(1, int(os.environ["CAVIAR_EPOCHS"]) + 1):
    time.sleep(params.get("pause", 0.05))
    err = base + 0.3 / epoch + (0.05 if epoch == 3 else 0)
    with open(out + ".epochs", "a") as f:
        f.write("%d %.6f\n" % (epoch, time.time()))
    if epoch % 2:
        print("caviar: epoch=%d dev_error=%.6f dev_cost=%.6f" % (epoch, err, 2 * err), flush=True)
    else:
        print("caviar: " + json.dumps({"epoch": epoch, "dev_error": round(err, 6),
                                       "train_error": round(err / 2, 6)}), flush=True)
'''

CRASH_PY = r'''
import sys
print("caviar: epoch=1 dev_error=0.5 dev_cost=1", flush=True)
for i in range(400):
    print("filler line %d of a long traceback" % i, file=sys.stderr)
print("ValueError: the loss exploded at step 7", file=sys.stderr)
sys.exit(3)
'''

SILENT_PY = r'''
print("training... done, but I forgot to report")
'''

# Reports one epoch, then hangs with SIGTERM ignored.
HANG_PY = r'''
import json, os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
params = json.load(open(os.environ["CAVIAR_PARAMS_FILE"]))
with open(os.path.join(params["out_dir"], os.environ["CAVIAR_TRIAL_ID"] + ".pid"), "w") as f:
    f.write(str(os.getpid()))
print("caviar: epoch=1 dev_error=0.5 dev_cost=1", flush=True)
time.sleep(600)
'''


def alive(pid):
    """1 when process pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ExternalTrainers(CoordinatorChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.progs = {}
        for name, text in (("epochs", EPOCHS_PY), ("crash", CRASH_PY), ("silent", SILENT_PY),
                           ("hang", HANG_PY)):
            path = os.path.join(cls.tmp.name, name + ".py")
            with open(path, "w") as f:
                f.write(text)
            cls.progs[name] = path

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        super().setUp()
        self.out = tempfile.mkdtemp(dir=self.tmp.name)
        # A program that fails is its worker's failure: --quarantine-after 0 keeps the worker
        # of the failure tests taking trials.
        self.c = Coordinator(BUILD, workers=0, extra=["--quarantine-after", "0"]).start()

    def tearDown(self):
        super().tearDown()
        for name in os.listdir(self.out):  # never leave a program behind, whatever failed
            if name.endswith(".pid"):
                with open(os.path.join(self.out, name)) as f:
                    pid = int(f.read())
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def trainer(self, name, prog=None):
        return ["--trainer", f"{name}=exec python3 {self.progs[prog or name]}"]

    def start_trainer_worker(self, wid, *trainers, extra=(), env=None):
        args = [a for t in trainers for a in t] + ["--trainer-grace", str(GRACE), *extra]
        return self.start_worker(wid, env=env, extra=args)

    def job(self, trainer, trials=1, space=None, parallel=1, **fixed):
        return {"name": "external", "trainer": trainer,
                "trial": dict({"epochs": 1, "out_dir": self.out}, **fixed),
                "space": space or {"lr": {"type": "float", "scale": "log", "min": 1e-4,
                                          "max": 1.0}},
                "budget": {"max_trials": trials, "max_parallel": parallel},
                "refine": {"rounds": [trials]}, "seed": 7}

    def trials(self, job_id):
        status, body = self.c.request("GET", f"/v1/jobs/{job_id}/trials")
        self.assertEqual(status, 200, body)
        return body["trials"]

    def pid(self, trial_id, timeout=15):
        path = os.path.join(self.out, f"{trial_id}.pid")
        self.wait_for(f"trial {trial_id}'s program", lambda: os.path.exists(path) and
                      os.path.getsize(path) > 0, timeout)
        with open(path) as f:
            return int(f.read())

    def only_trial(self, spec, timeout=30):
        job = self.c.run_job(spec, timeout=timeout)
        [t] = self.trials(job["id"])
        return self.trial(t["id"])

    # ---- pruning, results and curves -------------------------------------------------------

    def test_asha_prunes_programs_and_completed_trials_report_their_best_epoch(self):
        for wid in ("w1", "w2"):
            self.start_trainer_worker(wid, self.trainer("epochs"))
        self.c.wait_workers(2)
        spec = self.job("epochs", trials=8, parallel=2, epochs=6, pause=0.2)
        spec["search"] = {"sampler": "random", "pruner": "asha"}
        job = self.c.run_job(spec, timeout=60)
        self.assertEqual(job["status"], "completed", job)
        rows = [self.trial(t["id"]) for t in self.trials(job["id"])]
        by_status = {}
        for t in rows:
            by_status.setdefault(t["status"], []).append(t)
        self.assertEqual(set(by_status) - {"completed", "pruned"}, set(), by_status.keys())
        self.assertTrue(by_status.get("pruned"), "ASHA pruned nothing")
        self.assertTrue(by_status.get("completed"), "nothing completed")
        for t in by_status["pruned"]:
            pid = self.pid(t["id"])
            self.assertFalse(alive(pid), f"pruned trial {t['id']}'s program {pid} is alive")
            with open(os.path.join(self.out, f"{t['id']}.epochs")) as f:
                times = [float(line.split()[1]) for line in f]
            # It stopped at the report the pruner judged (SIGTERM ends it at once): at most one
            # more epoch began, and the trial ended well within the grace period.
            self.assertLessEqual(len(times), t["epochs_run"] + 1, "a pruned program ran on")
            self.assertLess(len(times), 6, "a pruned program ran all its epochs")
            self.assertLessEqual(t["finished_at"] - times[t["epochs_run"] - 1], GRACE + 0.5)
            self.assertGreaterEqual(t["best_epoch"], 1)
        for t in by_status["completed"]:
            curve = t["curve"]
            self.assertEqual([p["epoch"] for p in curve], [1, 2, 3, 4, 5, 6])
            best = min(curve, key=lambda p: p["dev_error"])
            self.assertEqual(t["best_epoch"], best["epoch"])
            self.assertAlmostEqual(t["dev_error"], best["dev_error"], places=9)
            self.assertEqual(t["epochs_run"], 6)
            # Key=value lines carry dev_cost; JSON lines here carry train_error instead.
            self.assertIsNotNone(curve[0]["dev_cost"])
            self.assertIsNone(curve[1]["dev_cost"])
            self.assertAlmostEqual(curve[1]["train_error"], curve[1]["dev_error"] / 2, places=5)
            self.assertFalse(alive(self.pid(t["id"])))
            # Without a seconds key, an epoch's seconds are the time since the previous report.
            self.assertTrue(all(0.15 <= p["seconds"] < 2 for p in curve[1:]), curve)
        # Each program ran in its own fresh, empty working directory (params.json alone), under
        # the worker's cache, which is gone once the trial ended.
        with open(os.path.join(self.out, f"{rows[0]['id']}.json")) as f:
            seen = json.load(f)
        self.assertEqual(seen["files"], ["params.json"])
        self.assertTrue(seen["cwd"].startswith(os.path.join(self.c.dir, "cache")), seen["cwd"])
        self.assertFalse(os.path.exists(seen["cwd"]))
        self.assertEqual(seen["env"]["CAVIAR_EPOCHS"], "6")
        self.assertEqual(seen["env"]["CAVIAR_JOB_ID"], str(job["id"]))

    def test_the_best_epoch_follows_the_jobs_objective(self):
        self.start_trainer_worker("w1", self.trainer("epochs"))
        self.c.wait_workers(1)
        # Odd epochs report dev_cost, even ones do not; the errors fall but for a bump at 3.
        spec = self.job("epochs", epochs=6)
        spec["objective"] = "dev_cost"
        t = self.only_trial(spec)
        self.assertEqual(t["status"], "completed", t)
        with_cost = [p for p in t["curve"] if p["dev_cost"] is not None]
        self.assertEqual([p["epoch"] for p in with_cost], [1, 3, 5])
        self.assertEqual(t["best_epoch"], 5)
        self.assertAlmostEqual(t["dev_cost"], with_cost[2]["dev_cost"], places=9)
        self.assertEqual(t["epochs_run"], 6)

    # ---- failures -----------------------------------------------------------------------------

    def test_crashing_silent_and_hanging_programs_fail_with_the_reason(self):
        self.start_trainer_worker("w1", self.trainer("crash"), self.trainer("silent"),
                                  self.trainer("hang"), extra=["--trainer-timeout", "2"])
        self.c.wait_workers(1)
        t = self.only_trial(self.job("crash"))
        self.assertEqual(t["status"], "failed")
        self.assertIn("the program ended with exit status 3; stderr ends with:", t["error"])
        self.assertTrue(t["error"].endswith("ValueError: the loss exploded at step 7"), t["error"])
        self.assertLess(len(t["error"]), 2300)

        t = self.only_trial(self.job("silent"))
        self.assertEqual(t["status"], "failed")
        self.assertIn("the program reported no metric", t["error"])

        started = time.time()
        t = self.only_trial(self.job("hang"))
        self.assertEqual(t["status"], "failed")
        self.assertIn("the program ran past --trainer-timeout 2 s and was stopped", t["error"])
        self.assertLess(time.time() - started, 2 + GRACE + 4)
        self.assertGreaterEqual(t["finished_at"] - t["started_at"], 2 + GRACE - 0.2)
        self.assertFalse(alive(self.pid(t["id"])))
        # The program's failures are not the job's: the worker goes on taking trials.
        self.assertEqual(self.c.request("GET", "/v1/workers")[1]["workers"][0]["trainers"],
                         ["crash", "silent", "hang"])

    def test_a_job_naming_a_trainer_no_worker_offers_is_refused_with_422(self):
        self.start_trainer_worker("w1", self.trainer("epochs"), self.trainer("crash"))
        self.c.wait_workers(1)
        status, body = self.c.request("POST", "/v1/jobs", self.job("torch"))
        self.assertEqual(status, 422, body)
        self.assertEqual(body["error"], 'trainer: no connected worker offers "torch" (workers '
                         'offer: epochs, crash)')
        status, body = self.c.request("POST", "/v1/jobs", self.job("epochs"))
        self.assertEqual(status, 201, body)

    def test_caviard_passes_its_trainers_to_its_local_workers(self):
        self.c.close()
        self.c = Coordinator(BUILD, workers=1, extra=[
            "--trainer", f"epochs=exec python3 {self.progs['epochs']}", "--trainer",
            "hang=sleep 1"]).start()
        self.c.wait_workers(1)
        [w] = self.c.request("GET", "/v1/workers")[1]["workers"]
        self.assertEqual(w["trainers"], ["epochs", "hang"])
        t = self.only_trial(self.job("epochs", epochs=2))
        self.assertEqual((t["status"], t["worker_id"], t["best_epoch"]), ("completed",
                                                                           "local-0", 2))
        for bad in ("nameless", "=cmd", "x y=cmd", "ask=cmd", "t=  "):
            proc = subprocess.run([os.path.join(BUILD, "server", "caviard"), "--trainer", bad],
                                  capture_output=True, text=True, timeout=10)
            self.assertEqual(proc.returncode, 2, (bad, proc.stderr))
            self.assertIn(f"caviard: bad value for --trainer: '{bad}'", proc.stderr)
        for bad, why in (("nameless", "want NAME=COMMAND"), ("x y=cmd", "the name must match"),
                         ("builtin=cmd", "is reserved"), ("t=", "the command is empty")):
            proc = subprocess.run([os.path.join(BUILD, "worker", "caviar-worker"), "--connect",
                                   "127.0.0.1:1", "--trainer", bad], capture_output=True,
                                  text=True, timeout=10)
            self.assertEqual(proc.returncode, 2, (bad, proc.stderr))
            self.assertIn(why, proc.stderr)

    def test_cancelling_the_job_or_stopping_the_worker_stops_the_program(self):
        # The hanging program ignores SIGTERM: SIGKILL ends it after the grace period.
        proc = self.start_trainer_worker("w1", self.trainer("hang"))
        self.c.wait_workers(1)
        status, body = self.c.request("POST", "/v1/jobs", self.job("hang"))
        self.assertEqual(status, 201, body)
        job = body["id"]
        running = self.wait_for("a running trial", lambda: [
            t["id"] for t in self.trials(job) if t["status"] == "running"])
        pid = self.pid(running[0])
        self.assertEqual(self.c.request("POST", f"/v1/jobs/{job}/cancel")[0], 200)
        cancelled = time.time()
        self.wait_for("the cancelled trial's program to end", lambda: not alive(pid), timeout=5)
        self.assertLess(time.time() - cancelled, GRACE + 1.5)

        status, body = self.c.request("POST", "/v1/jobs", self.job("hang"))
        job = body["id"]
        running = self.wait_for("a running trial", lambda: [
            t["id"] for t in self.trials(job) if t["status"] == "running"])
        pid = self.pid(running[0])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=GRACE + 5), 0)
        self.assertFalse(alive(pid))
        # The worker handed the trial back: it waits in the queue for another worker.
        self.wait_for("the trial back in the queue", lambda: self.trial(running[0])["status"]
                      == "queued", timeout=5)

    # ---- no orphans ---------------------------------------------------------------------------

    def test_a_worker_killed_with_sigkill_leaves_no_program_behind(self):
        # w1's program is the shell's own process (exec): it dies with the worker. w2's runs
        # under a shell that waits for it: the worker ends it when it starts again.
        self.start_trainer_worker("w1", self.trainer("hang"))
        self.start_trainer_worker("w2", ["--trainer", f"hang2=python3 {self.progs['hang']}; "
                                         "true"])
        self.c.wait_workers(2)
        jobs = []
        for trainer in ("hang", "hang2"):
            status, body = self.c.request("POST", "/v1/jobs", self.job(trainer))
            self.assertEqual(status, 201, body)
            jobs.append(body["id"])
        pids = [self.pid(self.wait_for("a running trial", lambda j=j: [
            t["id"] for t in self.trials(j) if t["status"] == "running"])[0]) for j in jobs]
        for wid in ("w1", "w2"):
            self.workers[wid][0].kill()
            self.workers[wid][0].wait()
        self.wait_for("w1's program to die with it", lambda: not alive(pids[0]), timeout=3)
        for j in jobs:
            self.assertEqual(self.c.request("POST", f"/v1/jobs/{j}/cancel")[0], 200)
        self.start_trainer_worker("w2", ["--trainer", "hang2=true"])
        self.wait_for("the restarted w2 to end the program left behind",
                      lambda: not alive(pids[1]), timeout=10)
        self.wait_for("w2's log", lambda: "ended 1 trainer process group" in
                      self.worker_log("w2"), timeout=5)

    # ---- security -----------------------------------------------------------------------------

    def test_parameter_values_reach_the_program_as_plain_data(self):
        self.start_trainer_worker("w1", self.trainer("epochs"),
                                  env={"CAVIAR_WORKER_TOKEN": "worker-secret"})
        self.c.wait_workers(1)
        pwned = os.path.join(self.out, "pwned")
        hostile = ["-rf; touch /tmp/cvpw $(id)", "`touch /tmp/cvpw2`\n--help", "'\"; exit 1"]
        self.assertFalse(os.path.exists("/tmp/cvpw") or os.path.exists("/tmp/cvpw2"))
        spec = self.job("epochs", trials=3, parallel=1,
                        space={"lr": {"type": "float", "scale": "log", "min": 1e-3, "max": 0.1},
                               "opt": {"type": "categorical", "values": hostile}},
                        note=f"$(touch {pwned}3)", nested={"a": [1, "-x"]}, flag=True, n=-3)
        job = self.c.run_job(spec, timeout=60)
        for row in self.trials(job["id"]):
            t = self.trial(row["id"])
            self.assertEqual(t["status"], "completed", t)
            with open(os.path.join(self.out, f"{t['id']}.json")) as f:
                seen = json.load(f)
            expected = dict(t["spec"])
            del expected["trainer"]
            self.assertEqual(seen["params"], expected)
            env = seen["env"]
            self.assertIn(env["CAVIAR_PARAM_OPT"], hostile)
            self.assertEqual(env["CAVIAR_PARAM_OPT"], t["spec"]["opt"])
            self.assertEqual(env["CAVIAR_PARAM_NOTE"], f"$(touch {pwned}3)")
            self.assertEqual(env["CAVIAR_PARAM_FLAG"], "true")
            self.assertEqual(env["CAVIAR_PARAM_N"], "-3")
            self.assertEqual(float(env["CAVIAR_PARAM_LR"]), t["spec"]["lr"])
            self.assertNotIn("CAVIAR_PARAM_NESTED", env)
            self.assertNotIn("CAVIAR_PARAM_TRAINER", env)
            self.assertNotIn("CAVIAR_WORKER_TOKEN", env)
            self.assertEqual(env["CAVIAR_TRIAL_ID"], str(t["id"]))
        self.assertEqual([n for n in os.listdir(self.out) if n.startswith("pwned")], [])
        self.assertFalse(os.path.exists("/tmp/cvpw") or os.path.exists("/tmp/cvpw2"))

    def test_no_job_field_changes_the_command(self):
        self.start_trainer_worker("w1", self.trainer("epochs"))
        self.c.wait_workers(1)
        for trainer in ("x; rm", "epochs --flag", "../epochs", "$(id)", "", "e" * 65):
            status, body = self.c.request("POST", "/v1/jobs", self.job(trainer))
            self.assertEqual(status, 400, (trainer, body))
            self.assertTrue(body["error"].startswith("trainer: "), body)
        for field in ("trial", "space"):
            spec = self.job("epochs")
            spec[field]["trainer"] = ({"type": "categorical", "values": ["sh"]}
                                      if field == "space" else "sh")
            status, body = self.c.request("POST", "/v1/jobs", spec)
            self.assertEqual(status, 400, body)
            self.assertTrue(body["error"].startswith(f"{field}.trainer: reserved"), body)
        spec = self.job("epochs")
        spec["command"] = "touch /tmp/x"
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 400, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
