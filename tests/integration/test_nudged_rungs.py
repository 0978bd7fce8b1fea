#!/usr/bin/env python3
"""Specification of the rungs of a trial nudged to more epochs, with real processes: caviard on
loopback ephemeral ports with a temporary SQLite file, and one caviar-worker --connect.

An ASHA job (min_epochs 1, eta 2) searches epochs over the powers of two in [2, 16], so its rungs
are the epochs 1, 2, 4 and 8; its one trial draws 2 epochs and is nudged to 8 while it runs. Its
worker gets every rung of the job and waits for the coordinator's decision at those below the
trial's epochs as nudged: 1, 2 and 4, where the coordinator judges it (the job's rungs list it at
epoch 4, above the 2 epochs it started with), but not at 8, its last epoch, which its end decides
and where no decision comes: the worker never logs a wait that ran out. The trial runs its 8
epochs in one attempt and completes.

Usage: test_nudged_rungs.py BUILD_DIR SOURCE_ROOT"""

import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
DECISION_WAIT = 15  # seconds a worker waits for a decision: far above a loopback round trip


class NudgedRungs(CoordinatorChecks, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.c = Coordinator(BUILD, workers=0).start()

    def job(self):
        return {"name": "nudged-rungs",
                "trial": {"dataset": {"format": "csv",
                                      "csv": os.path.join(SOURCE, "examples/data/moons.csv"),
                                      "header": True, "label_column": "label", "classes": 2},
                          "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                          "hidden_units": [8], "learning_rate": 0.01, "batch_size": 32},
                "space": {"epochs": {"type": "int", "scale": "power_of_two", "min": 2,
                                     "max": 16}},
                "budget": {"max_trials": 1, "max_parallel": 1},
                "search": {"pruner": "asha", "asha": {"min_epochs": 1, "eta": 2}},
                "seed": 1}

    def test_a_trial_nudged_to_more_epochs_waits_and_is_judged_at_the_rungs_it_now_reaches(self):
        worker = self.start_worker("w1", env={"CAVIAR_WORKER_DECISION_WAIT": str(DECISION_WAIT)})
        self.c.wait_workers(1)
        # Frozen, the worker gets the trial and then the nudge in its socket, and reads both at
        # once when it goes on: the nudge is in before the decision at rung 1 lets epoch 2 start,
        # so it takes effect at epoch 1 or 2 whatever the machine's load.
        worker.send_signal(signal.SIGSTOP)
        status, reply = self.c.request("POST", "/v1/jobs", self.job())
        self.assertEqual(status, 201, reply)
        job_id = reply["id"]
        trial = self.wait_for("the trial to be leased", lambda: next(
            (t for t in self.c.request("GET", f"/v1/jobs/{job_id}/trials")[1]["trials"]
             if t["status"] == "running"), None))
        self.assertEqual(trial["params"]["epochs"], 2, trial)  # what seed 1 draws
        status, reply = self.c.request("POST", f"/v1/trials/{trial['id']}/nudge", {"epochs": 8})
        self.assertEqual((status, reply["seq"]), (200, 1), reply)
        worker.send_signal(signal.SIGCONT)

        job = self.c.wait_job(job_id, timeout=4 * DECISION_WAIT)
        body = self.trial(trial["id"])
        self.assertEqual(body["status"], "completed", body)
        self.assertEqual(body["epochs_run"], 8)
        self.assertEqual(body["attempts"], 1)
        self.assertEqual([p["epoch"] for p in body["curve"]], list(range(1, 9)))
        [nudge] = body["nudges"]
        self.assertEqual(nudge["seq"], 1)
        self.assertIn(nudge["epoch"], (1, 2))
        # Judged at each rung below its epochs as nudged, 4 included; not at 8, its last.
        self.assertEqual(job["search"]["asha"], {"min_epochs": 1, "eta": 2})
        self.assertEqual([(r["epoch"], r["promoted_trials"], r["stopped_trials"])
                          for r in job["rungs"]],
                         [(1, [trial["number"]], []), (2, [trial["number"]], []),
                          (4, [trial["number"]], [])])
        log = self.worker_log("w1")
        self.assertIn(f"trial {trial['id']}: nudge 1 took effect at epoch {nudge['epoch']}", log)
        self.assertEqual(re.findall(rf"trial {trial['id']}: goes on at epoch (\d+)", log),
                         ["1", "2", "4"], log)
        self.assertNotIn("no decision on epoch", log)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
