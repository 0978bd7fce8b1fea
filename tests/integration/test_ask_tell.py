#!/usr/bin/env python3
"""Specification of ask/tell over HTTP with real processes: caviard without workers on loopback
ephemeral ports, a temporary SQLite file, clients speaking HTTP (every reply validated against
schemas/api.schema.json).

- Two clients asking at once (threads) never get the same trial; every trial they tell shows in
  GET /v1/jobs/{id}/trials with the told metrics and the client's name, and the job completes.
- A report or a tell under a token that is not the trial's current lease is refused 409 "stale
  lease", and so is a second tell of a trial already told, or any after the job is cancelled.
- A client that stops reporting loses its lease after --ask-lease-seconds: the trial is queued
  again and handed to the next asker under a new lease; the old client's tell is refused, and
  the trial's attempts say lost, then completed.
- With ASHA, a report of a bad trial at a rung answers "stop"; its tell stores it pruned.
- A SIGKILL of the coordinator between ask and tell keeps the lease: after the restart the
  client's report and tell under it are accepted (scheduler.h, "ask/tell"); a lease nobody
  renews after the restart is lost like any other.
- The `caviar` CLI does the same from a shell: `ask` prints the trial as JSON, `report` prints
  continue (exit 0) or stop (exit 3), `tell` stores the result or a failure; a job with no more
  trials makes `ask` exit 3, a stale lease exits 1 with the server's reason, usage errors 2.
- Asking a job whose trainer is builtin is 409 naming its trainer; an unknown job is 404; a
  malformed body is 400 naming the field; a token-protected coordinator answers 401 to a client
  without the token and serves one with it.

Usage: test_ask_tell.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIAR = os.path.join(BUILD, "client", "caviar")
LEASE_SECONDS = 2  # the tests of expiry; the others get 60 s, so that a slow machine loses none
EXPIRING = ("test_a_silent_client_loses_its_lease_to_the_next_asker",
            "test_a_coordinator_sigkill_between_ask_and_tell_keeps_the_lease")


def ask_job(trials=4, parallel=4, epochs=3, search=None):
    job = {"name": "asked", "trainer": "ask", "trial": {"epochs": epochs, "subset": 100},
           "space": {"lr": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.1},
                     "act": {"type": "categorical", "values": ["relu", "tanh"]}},
           "budget": {"max_trials": trials, "max_parallel": parallel}, "seed": 7}
    if search:
        job["search"] = search
    return job


class AskTell(CoordinatorChecks, unittest.TestCase):
    def setUp(self):
        super().setUp()
        lease = LEASE_SECONDS if self._testMethodName in EXPIRING else 60
        self.c = Coordinator(BUILD, workers=0, extra=["--ask-lease-seconds", str(lease)]).start()

    def submit(self, job):
        status, reply = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, reply)
        return reply["id"]

    def ask(self, job_id, client=None):
        status, reply = self.c.request("POST", f"/v1/jobs/{job_id}/ask",
                                       {"client": client} if client else None)
        self.assertEqual(status, 200, reply)
        return reply

    def ask_trial(self, job_id, client=None):
        trial = self.ask(job_id, client)["trial"]
        self.assertIsNotNone(trial)
        return trial

    def report(self, trial, epoch, dev_error, lease=None):
        return self.c.request("POST", f"/v1/trials/{trial['id']}/report",
                              {"lease": lease or trial["lease"], "epoch": epoch,
                               "dev_error": dev_error, "dev_cost": 2 * dev_error})

    def tell(self, trial, dev_error, lease=None):
        return self.c.request("POST", f"/v1/trials/{trial['id']}/tell",
                              {"lease": lease or trial["lease"], "status": "completed",
                               "dev_error": dev_error, "dev_cost": 2 * dev_error})

    def test_two_clients_asking_at_once_never_get_the_same_trial(self):
        job_id = self.submit(ask_job(trials=8, parallel=8))
        got = {"a": [], "b": []}
        start = threading.Barrier(2)

        def client(name):
            start.wait()
            for _ in range(4):
                got[name].append(self.ask_trial(job_id, name))

        threads = [threading.Thread(target=client, args=(n,)) for n in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [t["id"] for trials in got.values() for t in trials]
        self.assertEqual(len(ids), 8)
        self.assertEqual(len(set(ids)), 8, got)
        self.assertEqual(len({t["lease"] for trials in got.values() for t in trials}), 8)
        # The job is at max_parallel with everything out: the next asker waits.
        self.assertEqual(self.ask(job_id), {"trial": None, "done": False, "retry_after": 1})
        for name, trials in got.items():
            for t in trials:
                self.assertEqual(t["epochs"], 3)
                self.assertEqual(t["params"]["subset"], 100)
                self.assertIn(t["params"]["act"], ("relu", "tanh"))
                self.assertNotIn("trainer", t["params"])
                status, reply = self.report(t, 1, 0.5)
                self.assertEqual((status, reply["decision"]), (200, "continue"), reply)
                status, stored = self.tell(t, t["id"] / 100)
                self.assertEqual(status, 200, stored)
                self.assertEqual((stored["status"], stored["dev_error"], stored["worker_id"]),
                                 ("completed", t["id"] / 100, f"ask:{name}"))
        job = self.c.wait_job(job_id, timeout=10)
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["counts"]["completed"], 8)
        trials = self.c.request("GET", f"/v1/jobs/{job_id}/trials")[1]["trials"]
        self.assertEqual(sorted((t["id"], t["dev_error"]) for t in trials),
                         sorted((i, i / 100) for i in ids))
        self.assertEqual(job["best"]["id"], min(ids))
        self.assertEqual(self.ask(job_id), {"trial": None, "done": True})

    def test_a_stale_lease_is_refused(self):
        job_id = self.submit(ask_job(trials=1, parallel=1))
        trial = self.ask_trial(job_id)
        other = "0123456789abcdef" * 2
        status, reply = self.report(trial, 1, 0.3, lease=other)
        self.assertEqual(status, 409, reply)
        self.assertIn("stale lease", reply["error"])
        status, reply = self.tell(trial, 0.3, lease=other)
        self.assertEqual(status, 409, reply)
        self.assertIn("stale lease", reply["error"])
        self.assertEqual(self.trial(trial["id"])["status"], "running")
        status, stored = self.tell(trial, 0.25)
        self.assertEqual((status, stored["status"]), (200, "completed"), stored)
        status, reply = self.tell(trial, 0.2)
        self.assertEqual(status, 409, reply)
        self.assertIn("stale lease", reply["error"])
        self.assertEqual(self.trial(trial["id"])["dev_error"], 0.25)

    def test_a_cancelled_jobs_leases_end_at_once(self):
        job_id = self.submit(ask_job(trials=2, parallel=2))
        trial = self.ask_trial(job_id)
        status, reply = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual((status, reply["status"]), (200, "cancelled"), reply)
        status, reply = self.report(trial, 1, 0.3)
        self.assertEqual(status, 409, reply)
        self.assertIn(f"stale lease: trial {trial['id']} is cancelled", reply["error"])
        self.assertEqual(self.tell(trial, 0.3)[0], 409)
        self.assertEqual(self.ask(job_id), {"trial": None, "done": True})

    def test_a_silent_client_loses_its_lease_to_the_next_asker(self):
        job_id = self.submit(ask_job(trials=1, parallel=1))
        first = self.ask_trial(job_id, "silent")
        self.assertEqual(first["lease_seconds"], LEASE_SECONDS)
        self.assertEqual(self.report(first, 1, 0.4)[0], 200)  # renews, then nothing more
        self.assertFalse(self.ask(job_id, "next")["done"])
        second = self.wait_for("the lease to expire",
                               lambda: self.ask(job_id, "next")["trial"], timeout=LEASE_SECONDS + 5)
        self.assertEqual(second["id"], first["id"])
        self.assertNotEqual(second["lease"], first["lease"])
        self.assertEqual([a["outcome"] for a in self.trial(first["id"])["attempts_history"]],
                         ["lost"])
        status, reply = self.tell(first, 0.1)
        self.assertEqual(status, 409, reply)
        self.assertIn("stale lease", reply["error"])
        self.assertEqual(self.tell(second, 0.2)[0], 200)
        stored = self.trial(first["id"])
        self.assertEqual((stored["status"], stored["attempts"], stored["worker_id"]),
                         ("completed", 2, "ask:next"))
        # The lost lease that came back with a tell was refused: its attempt is stale.
        self.assertEqual([a["outcome"] for a in stored["attempts_history"]],
                         ["stale", "completed"])
        self.assertIn("ask:silent sent no report", self.c.log_text())

    def test_a_pruned_trial_is_told_to_stop(self):
        job_id = self.submit(ask_job(trials=2, parallel=2, epochs=4, search={
            "pruner": "asha", "asha": {"min_epochs": 1, "eta": 2}}))
        good, bad = self.ask_trial(job_id), self.ask_trial(job_id)
        self.assertEqual(self.report(good, 1, 0.1)[1]["decision"], "continue")
        self.assertEqual(self.report(bad, 1, 0.9)[1]["decision"], "stop")
        status, stored = self.tell(bad, 0.9)
        self.assertEqual((status, stored["status"], stored["best_epoch"]), (200, "pruned", 1))
        for epoch in range(2, 5):
            self.assertEqual(self.report(good, epoch, 0.1 / epoch)[1]["decision"], "continue")
        self.assertEqual(self.tell(good, 0.025)[1]["status"], "completed")
        job = self.c.wait_job(job_id, timeout=10)
        self.assertEqual((job["counts"]["completed"], job["counts"]["pruned"]), (1, 1))
        self.assertEqual(self.trial(good["id"])["epochs_run"], 4)

    def test_a_coordinator_sigkill_between_ask_and_tell_keeps_the_lease(self):
        job_id = self.submit(ask_job(trials=2, parallel=2))
        kept, dropped = self.ask_trial(job_id, "kept"), self.ask_trial(job_id, "dropped")
        self.assertEqual(self.report(kept, 1, 0.3)[0], 200)
        self.c.stop(signal.SIGKILL)
        self.c.start()
        self.assertIn("keeps its ask lease (ask:kept)", self.c.log_text())
        status, reply = self.report(kept, 2, 0.2)
        self.assertEqual((status, reply["decision"]), (200, "continue"), reply)
        status, stored = self.tell(kept, 0.2)
        self.assertEqual((status, stored["status"], stored["best_epoch"]), (200, "completed", 2))
        self.assertEqual([p["epoch"] for p in stored["curve"]], [1, 2])
        self.assertEqual(len(stored["attempts_history"]), 1)
        # The other client never came back: its lease is lost and the trial handed out again.
        again = self.wait_for("the unrenewed lease to expire",
                              lambda: self.ask(job_id)["trial"], timeout=LEASE_SECONDS + 5)
        self.assertEqual(again["id"], dropped["id"])
        self.assertEqual(self.tell(dropped, 0.5)[0], 409)
        self.assertEqual(self.tell(again, 0.5)[0], 200)
        self.assertEqual(self.c.wait_job(job_id, timeout=10)["status"], "completed")

    def caviar(self, *args):
        p = subprocess.run([CAVIAR, "--server", f"http://127.0.0.1:{self.c.port}", *args],
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_the_cli_asks_reports_and_tells(self):
        job_id = str(self.submit(ask_job(trials=2, parallel=2, epochs=4, search={
            "pruner": "asha", "asha": {"min_epochs": 1, "eta": 2}})))
        code, out, err = self.caviar("ask", job_id, "--client", "script")
        self.assertEqual(code, 0, err)
        good = json.loads(out)
        bad = json.loads(self.caviar("ask", job_id)[1])
        self.assertEqual(set(good), {"id", "number", "job_id", "params", "epochs", "lease",
                                     "lease_seconds"})
        self.assertNotEqual(good["id"], bad["id"])
        self.assertEqual(self.caviar("ask", job_id, "--no-wait")[0], 3)  # both are out
        code, out, err = self.caviar("report", str(good["id"]), "--lease", good["lease"],
                                     "epoch=1", "dev_error=0.1", "dev_cost=0.2")
        self.assertEqual((code, out), (0, "continue\n"), err)
        code, out, err = self.caviar("report", str(bad["id"]), "--lease", bad["lease"],
                                     "epoch=1", "dev_error=0.9", "dev_cost=1.8")
        self.assertEqual((code, out), (3, "stop\n"), err)
        self.assertIn("pruned", err)
        code, out, err = self.caviar("tell", str(bad["id"]), "--lease", bad["lease"],
                                     "dev_error=0.9", "dev_cost=1.8")
        self.assertEqual((code, out), (0, f"trial {bad['id']} pruned\n"), err)
        code, out, err = self.caviar("tell", str(good["id"]), "--lease", bad["lease"],
                                     "dev_error=0.1", "dev_cost=0.2")
        self.assertEqual(code, 1)
        self.assertIn("stale lease", err)
        for args in (("report", str(good["id"]), "epoch=2", "dev_error=0.1", "dev_cost=0.2"),
                     ("report", str(good["id"]), "--lease", good["lease"], "epoch=two"),
                     ("tell", str(good["id"]), "--lease", good["lease"], "--failed", "x",
                      "dev_error=1")):
            code, out, err = self.caviar(*args)
            self.assertEqual(code, 2, (args, out, err))
        code, out, err = self.caviar("tell", str(good["id"]), "--lease", good["lease"],
                                     "--failed", "exit status 1")
        self.assertEqual((code, out), (0, f"trial {good['id']} failed\n"), err)
        self.assertEqual(self.trial(good["id"])["error"], "exit status 1")
        self.assertEqual(self.trial(good["id"])["worker_id"], "ask:script")
        code, out, err = self.caviar("ask", job_id)
        self.assertEqual((code, out), (3, ""))
        self.assertIn(f"job {job_id} has ended", err)

    def test_a_builtin_job_an_unknown_job_and_bad_bodies_are_refused(self):
        builtin = self.submit({"trial": {"dataset": {"format": "csv", "csv": self.c.moons(),
                                                     "label_column": "label"}, "epochs": 1},
                               "space": {}, "budget": {"max_trials": 1}})
        status, reply = self.c.request("POST", f"/v1/jobs/{builtin}/ask", {"client": "x"})
        self.assertEqual(status, 409, reply)
        self.assertIn(f"job {builtin} is not an ask job: its trainer is \"builtin\"",
                      reply["error"])
        self.assertEqual(self.c.request("POST", "/v1/jobs/999/ask")[0], 404)
        self.assertEqual(self.c.request("POST", "/v1/trials/999/tell",
                                        {"lease": "a" * 32, "status": "failed",
                                         "error": "x"})[0], 404)
        job_id = self.submit(ask_job(trials=1, parallel=1))
        for body, field in (({"client": ""}, "client:"), ({"name": "x"}, "unknown field")):
            status, reply = self.c.request("POST", f"/v1/jobs/{job_id}/ask", body)
            self.assertEqual(status, 400, reply)
            self.assertIn(field, reply["error"])
        trial = self.ask_trial(job_id)
        lease = trial["lease"]
        for path, body, field in (
                ("report", {"epoch": 1, "dev_error": 0.1, "dev_cost": 0.1}, "lease: is required"),
                ("report", {"lease": lease, "epoch": 0, "dev_error": 0.1, "dev_cost": 0.1},
                 "epoch: must be an integer"),
                ("report", {"lease": lease, "epoch": 4, "dev_error": 0.1, "dev_cost": 0.1},
                 "epoch: must be at most 3"),
                ("report", {"lease": lease, "epoch": 1, "dev_eror": 0.1, "dev_cost": 0.1},
                 "did you mean \"dev_error\""),
                ("report", {"lease": lease, "epoch": 1, "dev_error": "low", "dev_cost": 0.1},
                 "dev_error: must be a number"),
                ("tell", {"lease": lease, "status": "done"}, "status: must be one of"),
                ("tell", {"lease": lease, "status": "failed"}, "error: is required"),
                ("tell", {"lease": lease, "status": "completed", "dev_error": 0.1},
                 "dev_cost: is required"),
                ("tell", {"lease": "xyz", "status": "completed"}, "lease: must be")):
            status, reply = self.c.request("POST", f"/v1/trials/{trial['id']}/{path}", body)
            self.assertEqual(status, 400, (path, body, reply))
            self.assertIn(field, reply["error"])
        status, stored = self.c.request("POST", f"/v1/trials/{trial['id']}/tell",
                                        {"lease": lease, "status": "failed",
                                         "error": "CUDA out of memory"})
        self.assertEqual((status, stored["status"], stored["error"]),
                         (200, "failed", "CUDA out of memory"), stored)


class Token(unittest.TestCase):
    def test_a_token_protected_coordinator_refuses_a_client_without_it(self):
        c = Coordinator(BUILD, workers=0)
        try:
            with open(os.path.join(c.dir, "api.token"), "w") as f:
                f.write("s3cret-token\n")
            c.extra += ["--token-file", os.path.join(c.dir, "api.token")]
            c.start()
            auth = {"Authorization": "Bearer s3cret-token"}
            status, reply = c.request("POST", "/v1/jobs", ask_job(trials=1), headers=auth)
            self.assertEqual(status, 201, reply)
            job_id = reply["id"]
            status, reply = c.request("POST", f"/v1/jobs/{job_id}/ask", {})
            self.assertEqual((status, reply["error"]), (401, "missing or wrong API token"))
            status, reply = c.request("POST", f"/v1/jobs/{job_id}/ask", {},
                                      headers={"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401, reply)
            status, reply = c.request("POST", f"/v1/jobs/{job_id}/ask", {}, headers=auth)
            self.assertEqual(status, 200, reply)
            trial = reply["trial"]
            status, reply = c.request("POST", f"/v1/trials/{trial['id']}/tell",
                                      {"lease": trial["lease"], "status": "completed",
                                       "dev_error": 0.1, "dev_cost": 0.2})
            self.assertEqual(status, 401, reply)
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
