#!/usr/bin/env python3
"""Specification of GET /v1/jobs/{id}/history, the dashboard's columnar read of a job's trials,
against a real caviard with real workers (every reply is validated against
schemas/api.schema.json by the harness):

- Polling with next_cursor while a job runs returns every finished trial exactly once, and the
  trials running at each poll; the columns agree with GET /v1/jobs/{id}/trials, parameter for
  parameter.
- Reading in pages of `limit` trials with the cursor visits every trial once, each page's trials
  finished after the previous page's, `more` true until the last page.
- Bad parameters are refused naming them; an unknown job is a 404.

Usage: test_history.py BUILD_DIR SOURCE_ROOT"""

import math
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


def job_spec(csv, trials, epochs=3):
    return {"name": "history",
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                      "optimizer": "adam", "hidden_units": 4},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.3},
                      "activation": {"type": "categorical", "values": ["relu", "tanh"]}},
            "budget": {"max_trials": trials, "max_parallel": 2},
            "seed": 9}


class History(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.c.wait_workers(2)
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=300)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def get(self, path):
        status, body = self.c.request("GET", path)
        self.assertEqual(status, 200, body)
        return body

    def trials_by_id(self, job):
        return {t["id"]: t for t in self.get(f"/v1/jobs/{job}/trials?limit=1000")["trials"]}

    def test_polling_with_the_cursor_returns_each_finished_trial_once(self):
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data, 12, epochs=1500))
        self.assertEqual(status, 201, body)
        job = body["id"]
        seen, cursor, polls, saw_running = [], None, 0, False
        deadline = time.time() + 120
        while time.time() < deadline:
            reply = self.get(f"/v1/jobs/{job}/history" + (f"?after={cursor}" if cursor else ""))
            polls += 1
            self.assertEqual(reply["count"], len(reply["finished"]["id"]))
            self.assertFalse(reply["more"])
            seen += reply["finished"]["id"]
            saw_running = saw_running or bool(reply["running"])
            for r in reply["running"]:
                self.assertNotIn(r["id"], seen)
            if cursor:
                self.assertIsNotNone(reply["next_cursor"])
            cursor = reply["next_cursor"] or cursor
            if reply["status"] != "running" and not reply["running"]:
                break
            time.sleep(0.05)
        self.assertEqual(len(seen), len(set(seen)), "a trial came twice")
        trials = self.trials_by_id(job)
        self.assertEqual(sorted(seen), sorted(trials))
        self.assertGreater(polls, 2)
        self.assertTrue(saw_running)
        # Nothing more after the last cursor.
        last = self.get(f"/v1/jobs/{job}/history?after={cursor}")
        self.assertEqual((last["count"], last["next_cursor"]), (0, cursor))
        # The columns agree with the trial rows.
        whole = self.get(f"/v1/jobs/{job}/history")
        self.assertEqual(whole["params"], ["learning_rate", "activation"])
        self.assertEqual(whole["objective"], "dev_error")
        f = whole["finished"]
        for i, tid in enumerate(f["id"]):
            t = trials[tid]
            self.assertEqual((f["number"][i], f["status"][i], f["epochs_run"][i],
                              f["worker_id"][i]),
                             (t["number"], t["status"], t["epochs_run"], t["worker_id"]))
            if t["dev_error"] is None:
                self.assertIsNone(f["value"][i])
            else:
                self.assertTrue(math.isclose(f["value"][i], t["dev_error"], rel_tol=1e-14))
            self.assertTrue(math.isclose(f["params"]["learning_rate"][i],
                                         t["params"]["learning_rate"], rel_tol=1e-14))
            self.assertEqual(f["params"]["activation"][i], t["params"]["activation"])

    def test_pages_of_limit_trials_visit_every_trial_once_in_finishing_order_of_pages(self):
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data, 11))
        self.assertEqual(status, 201, body)
        job = body["id"]
        self.c.wait_job(job, timeout=120)
        pages, more, cursor = [], True, None
        while more:
            reply = self.get(f"/v1/jobs/{job}/history?limit=4" +
                             (f"&after={cursor}" if cursor else ""))
            pages.append(reply["finished"]["id"])
            more, cursor = reply["more"], reply["next_cursor"]
        self.assertEqual([len(p) for p in pages], [4, 4, 3])
        trials = self.trials_by_id(job)
        ids = [i for p in pages for i in p]
        self.assertEqual(sorted(ids), sorted(trials))
        self.assertEqual(len(ids), len(set(ids)))
        # Every trial of a page finished after every trial of the pages before it.
        for before, after in zip(pages, pages[1:]):
            self.assertLess(max((trials[i]["finished_at"], i) for i in before),
                            min((trials[i]["finished_at"], i) for i in after))

    def test_bad_parameters_are_refused_naming_them(self):
        cases = [("?limit=0", 400, 'limit: must be an integer in [1, 100000], got "0"'),
                 ("?limit=100001", 400, 'limit: must be an integer in [1, 100000], got "100001"'),
                 ("?after=17", 400, 'after: "17" is not a cursor this route gave out'),
                 ("?after=zzzzzzzzzzzzzzzz.1", 400,
                  'after: "zzzzzzzzzzzzzzzz.1" is not a cursor this route gave out')]
        for query, want_status, message in cases:
            status, body = self.c.request("GET", f"/v1/jobs/1/history{query}")
            self.assertEqual((status, body), (want_status, {"error": message}), query)
        status, body = self.c.request("GET", "/v1/jobs/999/history")
        self.assertEqual((status, body), (404, {"error": "job 999 not found"}))
        status, body = self.c.request("POST", "/v1/jobs/1/history", {})
        self.assertEqual((status, body), (405, {"error": "use GET on /v1/jobs/1/history"}))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
