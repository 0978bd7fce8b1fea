#!/usr/bin/env python3
"""Specification of search strategies with real processes: caviard, caviar-worker processes on
loopback ephemeral ports, a temporary SQLite file.

- ASHA stops trials at its rungs: a stopped trial ends `pruned` with epochs_run at a rung below
  its epochs, keeps its curve and its best epoch's metrics, counts in max_trials, and its worker
  starts another trial within a second.
- Every decision the pruner made is the ASHA rule applied to the results recorded before it, in
  order, also across a coordinator SIGKILL and restart in the middle of the job: nothing is
  decided twice, and nothing decided before the kill is forgotten after it.
- The median rule stops trials worse than the median of the others at the same epoch.
- TPE proposes every configuration once: two workers never hold the same one, and a space with
  fewer configurations than the budget ends exhausted.
- A job's reply reports its worker utilization, its sampler and pruner with their settings, and
  its rungs.

Usage: test_pruning.py BUILD_DIR SOURCE_ROOT"""

import math
import os
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


def asha_job(csv, trials, epochs, parallel=2, seed=3, sampler="random", pruner="asha",
             settings=None):
    """A job whose learning rates span good and hopeless values, so that a pruner has work."""
    return {"name": "pruning",
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                      "optimizer": "adam", "hidden_units": 16},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5,
                                        "max": 0.3},
                      "batch_size": {"type": "int", "scale": "power_of_two", "min": 16,
                                     "max": 128}},
            "budget": {"max_trials": trials, "max_parallel": parallel},
            "refine": {"rounds": [trials]},
            "search": dict({"sampler": sampler, "pruner": pruner}, **(settings or {})),
            "seed": seed}


def asha_reference(decisions, eta):
    """The ASHA rule replayed over decisions (epoch, value) in the order they were made: each
    goes on iff its rank among the results at its rung so far, itself included (ties to the
    earlier), is at most ceil(k / eta). Returns the expected stopped flag of each."""
    rungs, out = {}, []
    for epoch, value in decisions:
        seen = rungs.setdefault(epoch, [])
        rank = 1 + sum(1 for v in seen if v <= value)
        seen.append(value)
        out.append(0 if rank <= math.ceil(len(seen) / eta) else 1)
    return out


class Strategies(unittest.TestCase):
    def setUp(self):
        self.c = None

    def tearDown(self):
        if self.c:
            self.c.close()

    def start(self, workers=2, extra=()):
        self.c = Coordinator(BUILD, workers=workers, extra=extra).start()
        self.c.wait_workers(workers)
        self.data = os.path.join(self.c.dir, "moons.csv")
        if not os.path.exists(self.data):
            write_moons(self.data, n=600)
        return self.c

    def submit(self, spec):
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        return body["id"]

    def trials(self, job):
        status, body = self.c.request("GET", f"/v1/jobs/{job}/trials?limit=1000")
        self.assertEqual(status, 200, body)
        return body["trials"]

    def decisions(self, job):
        db = sqlite3.connect(f"file:{self.c.db}?mode=ro", uri=True)
        try:
            return db.execute("SELECT number, epoch, value, stopped FROM decisions "
                              "WHERE job_id = ? ORDER BY seq", (job,)).fetchall()
        finally:
            db.close()

    def check_asha(self, job, trials, eta):
        rows = self.decisions(job)
        self.assertTrue(rows, "the pruner decided nothing")
        self.assertEqual([r[3] for r in rows], asha_reference([(r[1], r[2]) for r in rows], eta))
        self.assertEqual(len({(r[0], r[1]) for r in rows}), len(rows), "a decision made twice")
        by_number = {t["number"]: t for t in trials}
        for number, epoch, _, stopped in rows:
            t = by_number[number]
            if stopped:
                self.assertEqual((t["status"], t["epochs_run"]), ("pruned", epoch), t)
            else:
                self.assertGreater(t["epochs_run"] or 0, epoch, t)
        pruned = [t for t in trials if t["status"] == "pruned"]
        stopped = {r[0] for r in rows if r[3]}
        self.assertEqual({t["number"] for t in pruned}, stopped)
        return rows

    def test_asha_stops_trials_at_rungs_and_their_workers_move_on(self):
        self.start()
        job = self.submit(asha_job(self.data, trials=16, epochs=9))
        final = self.c.wait_job(job, timeout=120)
        self.assertEqual(final["status"], "completed", final)
        trials = self.trials(job)
        self.assertEqual(len(trials), 16)  # pruned trials count in max_trials
        self.check_asha(job, trials, eta=3)
        pruned = [t for t in trials if t["status"] == "pruned"]
        self.assertGreater(len(pruned), 0, trials)
        for t in pruned:
            self.assertIn(t["epochs_run"], (1, 3), t)
            self.assertIsNotNone(t["dev_error"], t)
            self.assertGreaterEqual(t["best_epoch"], 1, t)
            status, full = self.c.request("GET", f"/v1/trials/{t['id']}")
            self.assertEqual([p["epoch"] for p in full["curve"]],
                             list(range(1, t["epochs_run"] + 1)))
            later = [u for u in trials if u["worker_id"] == t["worker_id"] and u["started_at"]
                     and u["started_at"] >= t["finished_at"]]
            if later:  # the worker's next trial began within a second of the pruned one's end
                nxt = min(u["started_at"] for u in later)
                self.assertLess(nxt - t["finished_at"], 1.0, (t, nxt))
        rungs = {r["epoch"]: r for r in final["rungs"]}
        self.assertEqual(sorted(rungs), [1, 3])
        self.assertEqual(sum(r["stopped"] for r in rungs.values()), len(pruned))
        self.assertEqual(final["counts"]["pruned"], len(pruned))
        self.assertEqual((final["search"]["sampler"], final["search"]["pruner"]),
                         ("random", "asha"))
        self.assertEqual(final["search"]["asha"]["eta"], 3)
        u = final["utilization"]
        self.assertGreater(u["available_seconds"], 0)
        self.assertLessEqual(u["busy_seconds"], u["available_seconds"] + 1e-6)

    def test_a_coordinator_killed_mid_search_decides_nothing_twice(self):
        c = self.start(extra=("--reattach-seconds", "1"))
        data = os.path.join(c.dir, "big.csv")
        write_moons(data, n=6000)
        spec = asha_job(data, trials=24, epochs=27)
        spec["trial"]["hidden_units"] = 64
        job = self.submit(spec)
        deadline = time.time() + 120
        while len(self.decisions(job)) < 6:
            self.assertLess(time.time(), deadline, c.log_text())
            time.sleep(0.05)
        before = self.decisions(job)
        c.proc.send_signal(signal.SIGKILL)  # its local workers exit with it
        c.proc.wait()
        c.log.close()
        c.start()
        final = c.wait_job(job, timeout=240)
        self.assertEqual(final["status"], "completed", final)
        rows = self.check_asha(job, self.trials(job), eta=3)
        self.assertEqual([tuple(r) for r in rows[:len(before)]], [tuple(r) for r in before])
        self.assertGreater(len(rows), len(before))

    def test_the_median_rule_stops_trials_worse_than_the_median(self):
        self.start()
        spec = asha_job(self.data, trials=14, epochs=6, pruner="median",
                        settings={"median": {"warmup_epochs": 2, "min_trials": 3}})
        job = self.submit(spec)
        final = self.c.wait_job(job, timeout=120)
        self.assertEqual(final["status"], "completed", final)
        rows = self.decisions(job)
        seen = {}
        for _, epoch, value, stopped in rows:
            others = sorted(seen.setdefault(epoch, []))
            if len(others) >= 3:
                n = len(others)
                median = (others[n // 2] if n % 2 else (others[n // 2 - 1] + others[n // 2]) / 2)
                self.assertEqual(stopped, int(value > median), (epoch, value, others))
            else:
                self.assertEqual(stopped, 0)
            seen[epoch].append(value)
        self.assertTrue(all(r[1] >= 2 for r in rows))

    def test_tpe_proposes_each_configuration_once_and_ends_when_the_space_is_exhausted(self):
        self.start()
        spec = asha_job(self.data, trials=12, epochs=2, sampler="tpe", pruner="none",
                        settings={"tpe": {"startup_trials": 3}})
        spec["space"] = {"hidden_units": {"type": "int", "scale": "power_of_two", "min": 4,
                                          "max": 32},
                         "activation": {"type": "categorical", "values": ["relu", "tanh"]}}
        del spec["trial"]["hidden_units"]
        job = self.submit(spec)
        final = self.c.wait_job(job, timeout=120)
        self.assertEqual(final["status"], "completed", final)
        self.assertEqual(final["error"], "the search space is exhausted")
        trials = self.trials(job)
        keys = [(t["params"]["hidden_units"], t["params"]["activation"]) for t in trials]
        self.assertEqual(len(keys), 8)
        self.assertEqual(len(set(keys)), 8)
        self.assertEqual(final["search"]["tpe"]["startup_trials"], 3)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
