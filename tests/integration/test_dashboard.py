#!/usr/bin/env python3
"""Specification of the dashboard caviard serves at /, seen through headless Chromium
(Selenium) against a real caviard with two real workers, a job with ASHA pruning that has
finished and one that is running:

- The jobs page lists the jobs with their status, progress and strategy.
- The jobs page makes one API request per poll, the list of jobs.
- The job page draws the optimization history with one point per trial that has an objective
  value, one chart per searched parameter with a band per round of the search, parallel
  coordinates with one line per trial that has an objective value and an axis per parameter and
  for the objective, the rungs the pruner decided, learning curves of the measure the user picks
  (cost or error, train or dev), and the trial table, which sorts by the objective when its header
  is clicked and filters by status.
- The importance panel shows "computing..." while the API answers 202 and the bars once it
  answers 200 (a bar per parameter, the most important first), the API's message on a 409 and
  "not available" on a 404 (the replies injected into the page's fetch), and one of these states
  against caviard itself.
- A trial's page draws its learning curves (a point per epoch and measure) and shows its
  diagnosis with the remedy.
- The workers page lists both workers.
- A running job's page updates without reloading: its progress and its history chart grow.
- No page logs a console error. A screenshot of each page is written beside the test logs.
- With an API token, the page asks for it (also after a wrong one) and then shows the jobs.
- Static paths cannot leave the web root: /../caviar.db and its percent-encoded form are
  refused with 400, a link out of the root is a 404, and the files are served without the
  token while /v1/jobs/{id}/history is not.

Usage: test_dashboard.py BUILD_DIR SOURCE_ROOT
Skips (exit 77) when chromium, chromium-driver or python3-selenium is missing, unless CI is set."""

import http.client
import json
import math
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, write_moons  # noqa: E402
from dashboard_browser import browser_or_skip, console_errors  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
SHOTS = os.path.join(BUILD, "meson-logs", "dashboard")


def pruned_job(csv, trials, epochs, name="dashboard", pruner="asha", rounds=None):
    """Learning rates from hopeless to good, so that ASHA stops some trials at its rungs."""
    return {"name": name,
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                      "optimizer": "adam", "hidden_units": 8},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5, "max": 0.3},
                      "batch_size": {"type": "int", "scale": "power_of_two", "min": 16,
                                     "max": 128},
                      "beta1": {"type": "float", "scale": "one_minus_log", "min": 0.8,
                                "max": 0.99},
                      "activation": {"type": "categorical", "values": ["relu", "tanh"]}},
            "budget": {"max_trials": trials, "max_parallel": 2},
            "refine": {"rounds": rounds or [trials]},
            "search": {"sampler": "random", "pruner": pruner},
            "seed": 4}


def job_reply(test):
    """GET /v1/jobs/{id} of the finished job."""
    status, job = test.c.request("GET", f"/v1/jobs/{test.done}")
    test.assertEqual(status, 200, job)
    return job


def raw_get(port, path, headers=None):
    """(status, content type, body bytes) of GET path sent exactly as written."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.driver = browser_or_skip()
        os.makedirs(SHOTS, exist_ok=True)
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.c.wait_workers(2)
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=400)
        status, body = cls.c.request("POST", "/v1/jobs", pruned_job(cls.data, 10, 9, rounds=[5, 5]))
        assert status == 201, body
        cls.done = body["id"]
        # A job without a pruner, every trial of which completes (importance needs two).
        status, body = cls.c.request("POST", "/v1/jobs", pruned_job(cls.data, 4, 2, "plain",
                                                                    pruner="none"))
        assert status == 201, body
        cls.plain = body["id"]
        cls.c.wait_job(cls.done, timeout=240)
        cls.c.wait_job(cls.plain, timeout=240)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.c.close()

    def tearDown(self):
        self.assertEqual(console_errors(self.driver, ignore_missing_importance=True), [])

    def open(self, hash_route, ready_css, timeout=20):
        """Opens the dashboard at hash_route and waits until ready_css matches an element."""
        from selenium.webdriver.common.by import By
        self.driver.get("about:blank")  # a new document each time, not a hash change
        self.driver.get(f"http://127.0.0.1:{self.c.port}/{hash_route}")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ready_css), timeout)

    def wait(self, predicate, timeout=20):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(predicate)

    def css(self, selector):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))

    def history(self, job):
        status, body = self.c.request("GET", f"/v1/jobs/{job}/history")
        self.assertEqual(status, 200, body)
        return body

    def test_jobs_page_lists_the_job_with_status_progress_and_strategy(self):
        self.open("#/jobs", f'#jobs tr[data-job-id="{self.done}"]')
        row = self.css(f'#jobs tr[data-job-id="{self.done}"]')[0]
        cells = [td.text for td in row.find_elements("css selector", "td")]
        self.assertEqual(cells[1], "dashboard")
        self.assertEqual(cells[2], "completed")
        self.assertEqual(cells[3].strip(), "10/10")
        self.assertIn("asha pruner", cells[7])
        _, job = self.c.request("GET", f"/v1/jobs/{self.done}")
        self.assertAlmostEqual(float(cells[5]), job["best"]["dev_error"], places=3)
        self.assertEqual(cells[8], f"{job['round']}/{job['rounds_planned']}")
        # The list reply carries what the row shows, as GET /v1/jobs/{id} says it.
        _, listed = self.c.request("GET", "/v1/jobs")
        row = next(j for j in listed["jobs"] if j["id"] == self.done)
        self.assertEqual((row["max_trials"], row["finished"], row["running"], row["sampler"],
                          row["pruner"], row["rounds_planned"]),
                         (10, 10, 0, "random", "asha", job["rounds_planned"]))
        self.assertEqual(row["best_value"], job["best"]["dev_error"])
        self.shot("jobs")
        # Each poll is one list request: no job is fetched on its own.
        self.wait(lambda d: len(self.jobs_requests()) >= 3, timeout=15)
        requests = self.jobs_requests()
        self.assertTrue(all(r.split("/v1/jobs")[1].startswith("?") for r in requests), requests)
        polls = self.driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/v1/')).length;")
        self.assertEqual(polls, len(requests))

    def jobs_requests(self):
        """The API requests the page made under /v1/jobs, in order."""
        return self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => n.includes('/v1/jobs'));")

    def test_job_page_draws_every_trial_and_the_parameters_on_their_scales(self):
        hist = self.history(self.done)
        with_value = sum(v is not None for v in hist["finished"]["value"])
        self.assertEqual(hist["count"], 10)
        self.open(f"#/jobs/{self.done}", "#history-chart[data-points]")
        self.assertEqual(self.css("#history-chart")[0].get_attribute("data-points"),
                         str(with_value))
        self.assertTrue(self.css("#history-chart canvas"))
        self.assertEqual(self.css("#job-status")[0].text, "completed")
        self.assertEqual(self.css("#job-progress")[0].text, "10/10")
        # One chart per searched parameter, titled with its scale; values on log axes are all
        # drawn (1 - beta1 > 0, batch sizes > 0).
        titles = [e.text for e in self.css("#param-charts .chart h3")]
        self.assertEqual(titles, ["learning_rate (log)", "batch_size (power_of_two)",
                                  "beta1 (one_minus_log)", "activation (categorical)"])
        for chart in self.css("#param-charts .chart"):
            self.assertEqual(chart.get_attribute("data-points"), str(with_value),
                             chart.get_attribute("data-param"))
        # Each parameter's chart spans every value it draws, on the parameter's own axis.
        for chart in self.css("#param-charts .chart"):
            name = chart.get_attribute("data-param")
            xs = [v for v, y in zip(hist["finished"]["params"][name], hist["finished"]["value"])
                  if y is not None and not isinstance(v, str)]
            if not xs:
                continue
            if name == "beta1":
                xs = [1 - v for v in xs]
            lo, hi = (float(chart.get_attribute(a)) for a in ("data-x-min", "data-x-max"))
            self.assertLessEqual(lo, min(xs) * (1 + 1e-9), name)
            self.assertGreaterEqual(hi, max(xs) * (1 - 1e-9), name)
        epochs = self.css("#epochs-chart")[0]
        self.assertLessEqual(float(epochs.get_attribute("data-x-min")), 0)
        self.assertGreaterEqual(float(epochs.get_attribute("data-x-max")), 9)
        # A band per round on each parameter's chart; the second round's region is narrower
        # than the first for the numeric parameters.
        self.assertEqual(len(job_reply(self)["rounds"]), 2)
        for chart in self.css("#param-charts .chart"):
            self.assertEqual(chart.get_attribute("data-bands"), "2", chart.get_attribute("data-param"))
        # Parallel coordinates: a line per trial with a value, an axis per parameter and one
        # for the objective.
        parallel = self.css("#parallel")[0]
        self.assertEqual(parallel.get_attribute("data-lines"), str(with_value))
        self.assertEqual(parallel.get_attribute("data-axes"), "5")
        self.assertTrue(self.css("#parallel canvas"))
        self.css("#param-charts")[0].screenshot(os.path.join(SHOTS, "job-parameters.png"))
        parallel.screenshot(os.path.join(SHOTS, "job-parallel.png"))
        # With fewer than 2 completed trials the importance panel says so without asking.
        completed = job_reply(self)["counts"].get("completed", 0)
        self.wait(lambda d: self.css("#importance[data-state]"))
        if completed < 2:
            self.assertEqual(self.css("#importance")[0].text,
                             f"importance needs 2 completed trials; the job has {completed}")
        # The pruner's rungs and the pruned trials.
        _, job = self.c.request("GET", f"/v1/jobs/{self.done}")
        self.assertTrue(job["rungs"], "ASHA decided nothing")
        self.assertEqual(len(self.css("#rungs-table tbody tr")), len(job["rungs"]))
        pruned = hist["finished"]["status"].count("pruned")
        self.assertEqual(self.css("#epochs-chart")[0].get_attribute("data-points"), "10")
        # Learning curves of the best trial at least.
        self.wait(lambda d: self.css("#curves-chart[data-points]"))
        _, best = self.c.request("GET", f"/v1/trials/{job['best']['id']}")
        for measure, split in (("cost", "dev"), ("error", "train"), ("error", "dev"),
                               ("cost", "train")):
            from selenium.webdriver.support.ui import Select
            Select(self.css("#curve-set")[0]).select_by_value(split)
            Select(self.css("#curve-measure")[0]).select_by_value(measure)
            self.assertEqual(self.css("#curves-chart h3")[0].text, f"{split} {measure} per epoch")
            self.assertEqual(self.css("#curves-chart")[0].get_attribute("data-points"),
                             str(sum(p[f"{split}_{measure}"] is not None for p in best["curve"])))
        self.shot("job")
        # The trial table, sorted by the objective with a click on its header.
        self.css('#trials th[data-key="value"]')[0].click()
        self.assertIn("sorted-asc", self.css('#trials th[data-key="value"]')[0]
                      .get_attribute("class"))
        shown = [c.text for c in self.css('#trials td[data-key="value"]')]
        values = [float(t) for t in shown if t != "–"]
        self.assertEqual(len(values), with_value)
        self.assertEqual(values, sorted(values))
        self.assertAlmostEqual(values[0], min(v for v in hist["finished"]["value"]
                                              if v is not None), places=4)
        self.css('#trials th[data-key="value"]')[0].click()  # again: descending
        shown = [float(c.text) for c in self.css('#trials td[data-key="value"]') if c.text != "–"]
        self.assertEqual(shown, sorted(shown, reverse=True))
        # Filtered by status: only the pruned trials are left.
        from selenium.webdriver.support.ui import Select
        Select(self.css("#status-filter")[0]).select_by_value("pruned")
        statuses = [td.text for td in self.css("#trials tbody tr td:nth-child(2)")]
        self.assertEqual(statuses, ["pruned"] * pruned)
        self.assertEqual(self.css("#trial-count")[0].text,
                         f"{pruned} of {pruned} trials shown")
        # The CSV holds the filtered rows, a header first.
        self.css("#csv")[0].click()
        csv = self.driver.execute_async_script(
            "const done = arguments[0];"
            "fetch(document.getElementById('csv').href).then(r => r.text()).then(done);")
        lines = csv.strip().split("\n")
        self.assertEqual(lines[0], "id,number,status,value,epochs_run,worker_id,learning_rate,"
                                   "batch_size,beta1,activation")
        self.assertEqual(len(lines), 1 + pruned)

    def fake_importance(self, replies):
        """Makes the next documents' fetch answer the importance route with replies in turn
        (the last one again after that); returns the script's identifier."""
        script = ("(() => { const replies = %s; let n = 0; const real = window.fetch.bind(window);"
                  "window.fetch = (url, opts) => { if (!String(url).includes('/importance'))"
                  " return real(url, opts); const r = replies[Math.min(n++, replies.length - 1)];"
                  " return Promise.resolve(new Response(JSON.stringify(r[1]), {status: r[0],"
                  " headers: {'Content-Type': 'application/json'}})); }; })();"
                  % json.dumps(replies))
        return self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                           {"source": script})["identifier"]

    def importance_shows(self, replies, state):
        """Opens the page of the job without a pruner with the importance route answering replies and waits
        for the panel's state; returns the panel."""
        ident = self.fake_importance(replies)
        try:
            self.open(f"#/jobs/{self.plain}", f'#importance[data-state="{state}"]')
        finally:
            self.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                        {"identifier": ident})
        return self.css("#importance")[0]

    def test_importance_panel_states(self):
        _, plain = self.c.request("GET", f"/v1/jobs/{self.plain}")
        self.assertEqual(plain["counts"]["completed"], 4)
        # Against this caviard: the route answers, or it is not there.
        self.open(f"#/jobs/{self.plain}", "#importance[data-state]")
        state = self.css("#importance")[0].get_attribute("data-state")
        self.assertIn(state, ("unavailable", "computing", "ready"))
        if state == "unavailable":
            self.assertTrue(self.css("#importance")[0].text.startswith("not available"))
        answer = {"job": self.plain, "trials": 7, "computed_at": 1700000000.0,
                  "interactions": 0.1,
                  "parameters": [
                      {"name": "batch_size", "scale": "power_of_two", "importance": 0.05,
                       "fraction": 0.045},
                      {"name": "learning_rate", "scale": "log", "importance": 0.9,
                       "fraction": 0.81},
                      {"name": "beta1", "scale": "one_minus_log", "importance": 0.05,
                       "fraction": 0.045},
                      {"name": "activation", "scale": "categorical", "importance": 0.0,
                       "fraction": 0.0}]}
        # 202 first: "computing..."; the next poll gets the 200 and draws the bars.
        ident = self.fake_importance([[202, {"status": "computing", "trials": 7}], [200, answer]])
        try:
            self.open(f"#/jobs/{self.plain}", '#importance[data-state="computing"]')
            self.assertEqual(self.css("#importance")[0].text, "computing... (over 7 trials)")
            self.wait(lambda d: self.css('#importance[data-state="ready"]'), timeout=10)
        finally:
            self.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                        {"identifier": ident})
        rows = self.css("#importance-table tbody tr")
        self.assertEqual([r.get_attribute("data-param") for r in rows],
                         ["learning_rate", "batch_size", "beta1", "activation"])
        first = [td.text for td in rows[0].find_elements("css selector", "td")]
        self.assertEqual(first, ["learning_rate", "log", "0.900", "81.0%"])
        widths = self.driver.execute_script(
            "return [...document.querySelectorAll('#importance-table .importance .bar i')]"
            ".map(i => i.style.width);")
        self.assertEqual(widths, ["90%", "5%", "5%", "0%"])
        self.assertIn("interactions explain 10.0% of the variance; over 7 completed trials",
                      self.css("#importance-note")[0].text)
        self.shot("importance")
        # 409: the API's reason; 404: no such route on this coordinator.
        panel = self.importance_shows(
            [[409, {"error": "job 1 has 1 completed trial; importance needs at least 2"}]],
            "refused")
        self.assertEqual(panel.text, "job 1 has 1 completed trial; importance needs at least 2")
        panel = self.importance_shows([[404, {"error": "no route GET /v1/jobs/1/importance"}]],
                                      "unavailable")
        self.assertEqual(panel.text, "not available: this coordinator does not compute importance")

    def test_trial_page_draws_its_curves_and_its_diagnosis(self):
        _, job = self.c.request("GET", f"/v1/jobs/{self.done}")
        best = job["best"]
        _, trial = self.c.request("GET", f"/v1/trials/{best['id']}")
        self.open(f"#/trials/{best['id']}", "#curve-cost[data-points]")
        measures = sum(p[k] is not None for p in trial["curve"] for k in ("train_cost", "dev_cost"))
        self.assertEqual(self.css("#curve-cost")[0].get_attribute("data-points"), str(measures))
        self.assertEqual(self.css("#curve-lr")[0].get_attribute("data-points"),
                         str(len(trial["curve"])))
        self.assertEqual(self.css("#trial-status")[0].text, trial["status"])
        verdict = self.css("#diagnosis .verdict")[0].text
        self.assertEqual(verdict, trial["diagnosis"].replace("_", " "))
        self.assertTrue(self.css("#diagnosis .remedy")[0].text)
        self.assertNotIn("null", self.css("#diagnosis")[0].text)  # no error, nothing printed
        params = {r.find_element("css selector", "th").text for r in self.css("#params tr")}
        self.assertEqual(params, set(trial["params"]))
        self.assertEqual(len(self.css("#attempts tbody tr")), len(trial["attempts_history"]))
        self.shot("trial")

    def test_a_nudge_from_the_trial_page_reaches_the_worker(self):
        long_trial = {"name": "panda",
                      "trial": {"dataset": {"format": "csv", "csv": self.data,
                                            "label_column": "label"},
                                "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
                                "epochs": 100000, "hidden_units": [64, 64], "batch_size": 16,
                                "learning_rate": 0.001},
                      "space": {}, "budget": {"max_trials": 1, "max_parallel": 1}, "seed": 3}
        status, body = self.c.request("POST", "/v1/jobs", long_trial)
        self.assertEqual(status, 201, body)
        job = body["id"]
        try:
            trial = self.wait(lambda d: next(
                (t for t in self.c.request("GET", f"/v1/jobs/{job}/trials")[1]["trials"]
                 if t["status"] == "running"), None), timeout=60)
            self.open(f"#/trials/{trial['id']}", "#curve-lr[data-points]")
            self.wait(lambda d: self.css("#nudge-form")[0].is_displayed())
            field = self.css("#nudge-values")[0]
            field.send_keys("hidden_units=3")
            self.css("#nudge-send")[0].click()
            self.wait(lambda d: "cannot be nudged" in self.css("#nudge-message")[0].text)
            self.assertIn("hidden_units", self.css("#nudge-message")[0].text)
            # The refusal is the only console error: the browser logs the 400 it was shown.
            errors = console_errors(self.driver)
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("/nudge - Failed to load resource", errors[0]["message"])
            field.clear()
            field.send_keys("learning_rate=0.0123")
            self.css("#nudge-send")[0].click()
            self.wait(lambda d: "nudge 1 sent" in self.css("#nudge-message")[0].text)
            # The worker reports the epoch it took effect at; the page shows it and marks it.
            cell = self.wait(lambda d: [c for c in self.css("#nudges .nudge-epoch")
                                        if c.text not in ("", "pending")], timeout=60)[0]
            epoch = int(cell.text)
            _, t = self.c.request("GET", f"/v1/trials/{trial['id']}")
            self.assertEqual(t["nudges"][0]["values"], {"learning_rate": 0.0123})
            self.assertEqual(t["nudges"][0]["epoch"], epoch)
            self.assertEqual(t["attempts"], 1)  # no restart
            rates = {p["epoch"]: p["learning_rate"] for p in t["curve"]}
            self.assertAlmostEqual(rates[epoch], 0.0123, places=12)
            self.assertAlmostEqual(rates[epoch - 1], 0.001, places=12)
            self.wait(lambda d: int(self.css("#curve-lr")[0].get_attribute("data-points")) >
                      epoch)  # the rate per epoch plus the nudge's mark
            self.shot("trial-nudged")
        finally:
            self.c.request("POST", f"/v1/jobs/{job}/cancel")

    def test_workers_page_lists_the_workers(self):
        self.open("#/workers", "#workers tr[data-worker-id]")
        rows = {r.get_attribute("data-worker-id"): r.get_attribute("data-state")
                for r in self.css("#workers tr[data-worker-id]")}
        self.assertEqual(set(rows), {"local-0", "local-1"})
        self.assertTrue(all(s in ("idle", "running") for s in rows.values()), rows)
        self.assertIn("2 connected", self.css("#workers-summary")[0].text)
        self.shot("workers")

    def test_running_job_page_updates_without_reloading(self):
        status, body = self.c.request("POST", "/v1/jobs", pruned_job(self.data, 2000, 150, "live", pruner="none"))
        self.assertEqual(status, 201, body)
        job = body["id"]
        try:
            self.open(f"#/jobs/{job}", "#history-chart[data-points]")
            self.driver.execute_script("window.notReloaded = true;")
            first = int(self.css("#history-chart")[0].get_attribute("data-points"))
            progress = self.css("#job-progress")[0].text
            self.wait(lambda d: int(self.css("#history-chart")[0].get_attribute("data-points"))
                      >= first + 2, timeout=120)
            self.assertNotEqual(self.css("#job-progress")[0].text, progress)
            self.assertTrue(self.driver.execute_script("return window.notReloaded === true;"))
            self.assertEqual(self.css("#job-status")[0].text, "running")
            # The polls asked for what finished after their cursor only.
            entries = self.driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
                ".filter(n => n.includes('/jobs/' + arguments[0] + '/history'));", job)
            self.assertGreater(len(entries), 1)
            self.assertNotIn("after=", entries[0])
            self.assertTrue(all("after=" in e for e in entries[1:]), entries)
            self.shot("job-running")
        finally:
            self.c.request("POST", f"/v1/jobs/{job}/cancel")


class TokenAndPaths(unittest.TestCase):
    """A caviard with an API token and a --web-root of the test's own holding a link that
    points out of it."""

    @classmethod
    def setUpClass(cls):
        cls.driver = browser_or_skip()
        cls.c = Coordinator(BUILD, workers=0)
        cls.web = os.path.join(cls.c.dir, "web")
        shutil.copytree(os.path.join(SOURCE, "web"), cls.web, symlinks=True)
        os.symlink(cls.c.db, os.path.join(cls.web, "leak.js"))
        token_file = os.path.join(cls.c.dir, "token")
        with open(token_file, "w") as f:
            f.write("s3cret-token\n")
        cls.c.extra += ["--token-file", token_file, "--web-root", cls.web]
        cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.c.close()

    def wait(self, predicate, timeout=20):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(predicate)

    def visible(self, css):
        from selenium.webdriver.common.by import By
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and found[0].is_displayed()

    def test_the_page_asks_for_the_token_and_a_wrong_one_asks_again(self):
        from selenium.webdriver.common.by import By
        self.driver.get(f"http://127.0.0.1:{self.c.port}/#/jobs")
        self.wait(lambda d: self.visible("#token-form"))
        self.assertIn("401", self.driver.find_element(By.ID, "token-reason").text)
        box = self.driver.find_element(By.ID, "token-input")
        box.send_keys("wrong")
        self.driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
        self.wait(lambda d: self.visible("#token-form"))
        self.assertFalse(self.visible("#jobs"))
        box = self.driver.find_element(By.ID, "token-input")
        box.clear()
        box.send_keys("s3cret-token")
        self.driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
        self.wait(lambda d: self.visible("#jobs"))
        self.assertFalse(self.visible("#token-form"))
        self.assertEqual(self.driver.execute_script(
            "return sessionStorage.getItem('caviar-token');"), "s3cret-token")
        # The console saw the two 401s the prompt answered, nothing else.
        errors = [e["message"] for e in console_errors(self.driver)]
        self.assertTrue(all("401" in m for m in errors), errors)

    def test_static_files_are_served_without_the_token_and_the_api_is_not(self):
        status, ctype, body = raw_get(self.c.port, "/")
        self.assertEqual((status, ctype), (200, "text/html; charset=utf-8"))
        self.assertIn(b"<title>caviar</title>", body)
        status, ctype, body = raw_get(self.c.port, "/vendor/uplot/uPlot.iife.min.js")
        self.assertEqual((status, ctype), (200, "text/javascript; charset=utf-8"))
        self.assertGreater(len(body), 10000)
        status, ctype, _ = raw_get(self.c.port, "/style.css")
        self.assertEqual((status, ctype), (200, "text/css; charset=utf-8"))
        status, _, body = raw_get(self.c.port, "/v1/jobs/1/history")
        self.assertEqual(status, 401, body)
        status, _, body = raw_get(self.c.port, "/v1/jobs/1/history",
                                  {"Authorization": "Bearer s3cret-token"})
        self.assertEqual((status, body), (404, b'{"error":"job 1 not found"}'))

    def test_paths_out_of_the_web_root_are_refused(self):
        self.assertTrue(os.path.getsize(self.c.db) > 0)
        for path in ("/../caviar.db", "/%2e%2e/caviar.db", "/vendor/uplot/../../../caviar.db",
                     "/.hidden.js", "/a//b.js"):
            status, _, body = raw_get(self.c.port, path)
            self.assertEqual(status, 400, (path, body))
            self.assertIn(b"is refused", body)
            self.assertNotIn(b"SQLite format", body)
        # A link inside the root that points out of it is no file of the dashboard.
        status, _, body = raw_get(self.c.port, "/leak.js")
        self.assertEqual((status, body), (404, b'{"error":"no file /leak.js in the dashboard"}'))
        # The npm tree is only served through /vendor/uplot/.
        status, _, _ = raw_get(self.c.port, "/node_modules/uplot/dist/uPlot.iife.min.js")
        self.assertEqual(status, 404)
        # Unknown API paths still reach the API.
        status, _, body = raw_get(self.c.port, "/v1/nothing",
                                  {"Authorization": "Bearer s3cret-token"})
        self.assertEqual((status, body), (404, b'{"error":"no route GET /v1/nothing"}'))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
