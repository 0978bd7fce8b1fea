#!/usr/bin/env python3
"""Specification of the dashboard caviard serves at /, seen through headless Chromium
(Selenium) against a real caviard with two real workers, a job with ASHA pruning that has
finished and one that is running:

- The jobs page lists the jobs with their status, progress and strategy.
- The job page draws the optimization history with one point per trial that has an objective
  value, one chart per searched parameter, the rungs the pruner decided, and the trial table,
  which sorts by the objective when its header is clicked and filters by status.
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


def pruned_job(csv, trials, epochs, name="dashboard", pruner="asha"):
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
            "refine": {"rounds": [trials]},
            "search": {"sampler": "random", "pruner": pruner},
            "seed": 4}


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
        status, body = cls.c.request("POST", "/v1/jobs", pruned_job(cls.data, 10, 9))
        assert status == 201, body
        cls.done = body["id"]
        cls.c.wait_job(cls.done, timeout=240)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.c.close()

    def tearDown(self):
        self.assertEqual(console_errors(self.driver), [])

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
        # The pruner's rungs and the pruned trials.
        _, job = self.c.request("GET", f"/v1/jobs/{self.done}")
        self.assertTrue(job["rungs"], "ASHA decided nothing")
        self.assertEqual(len(self.css("#rungs-table tbody tr")), len(job["rungs"]))
        pruned = hist["finished"]["status"].count("pruned")
        self.assertEqual(self.css("#epochs-chart")[0].get_attribute("data-points"), "10")
        # Learning curves of the best trial at least.
        self.wait(lambda d: self.css("#curves-chart[data-points]"))
        self.assertGreater(int(self.css("#curves-chart")[0].get_attribute("data-points")), 0)
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
