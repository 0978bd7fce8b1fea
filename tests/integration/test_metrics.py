#!/usr/bin/env python3
"""Specification of GET /metrics (Prometheus text format) against a real coordinator with two
workers, a finished job and a test-set evaluation:

- promtool (Debian's prometheus package) accepts the exposition text;
- caviar_trials by status equals the trials the API lists, caviar_workers says two connected and
  none busy once the job is over, the queue is empty;
- the commit-latency histogram counts every committed result: its buckets never decrease and
  +Inf equals _count equals caviar_results_committed_total;
- caviar_http_requests_total counts each answer under its route pattern, method and status
  (GET /v1/jobs/{id} 200 and 404), the dashboard's files as "static" (GET /index.html 200, a
  POST to it 405) and paths with no route (/no/such/path, /v1/nothing) as "other";
- caviar_dataset_bytes_served_total grows by exactly the bytes of the model files a worker
  fetched to score the ensemble.

Usage: test_metrics.py BUILD_DIR SOURCE_ROOT"""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, csv_job  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def parse(text):
    """{(name, frozenset of label pairs): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=2).start()
        cls.c.wait_workers(2)
        cls.job = cls.c.run_job(csv_job(cls.c.moons(), "metrics", trials=4))

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.c.port}/metrics", timeout=30) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            return r.read().decode()

    def test_promtool_accepts_the_text(self):
        promtool = shutil.which("promtool")
        if not promtool:
            if os.environ.get("CI"):
                self.fail("promtool is missing (package prometheus)")
            self.skipTest("promtool is missing (package prometheus)")
        p = subprocess.run([promtool, "check", "metrics"], input=self.scrape(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_trials_workers_and_latency_match_the_api(self):
        m = parse(self.scrape())
        status, page = self.c.request("GET", "/v1/jobs/{}/trials?limit=1000".format(self.job["id"]))
        counts = {}
        for t in page["trials"]:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        for s in ("queued", "running", "completed", "failed", "pruned", "cancelled"):
            self.assertEqual(value(m, "caviar_trials", status=s), counts.get(s, 0), s)
        self.assertEqual(value(m, "caviar_workers", state="connected"), 2)
        self.assertEqual(value(m, "caviar_workers", state="busy"), 0)
        self.assertEqual(value(m, "caviar_queue_depth"), 0)
        results = value(m, "caviar_results_committed_total")
        self.assertEqual(results, counts["completed"])
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in m.items()
                          if k[0] == "caviar_commit_latency_seconds_bucket"))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertEqual(buckets[-1], (float("inf"), results))
        self.assertEqual(value(m, "caviar_commit_latency_seconds_count"), results)
        self.assertGreater(value(m, "caviar_commit_latency_seconds_sum"), 0)

    def test_http_answers_are_counted_by_route_method_and_status(self):
        route = dict(route="/v1/jobs/{id}", method="GET")
        before = parse(self.scrape())
        for _ in range(3):
            self.c.request("GET", "/v1/jobs/{}".format(self.job["id"]))
        self.assertEqual(self.c.request("GET", "/v1/jobs/999999")[0], 404)
        for path in ("/no/such/path", "/v1/nothing"):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"http://127.0.0.1:{self.c.port}{path}", timeout=30)
            self.assertEqual(e.exception.code, 404, path)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.c.port}/index.html",
                                    timeout=30) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"<html", r.read())
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{self.c.port}/index.html", data=b"", method="POST"),
                timeout=30)
        self.assertEqual(e.exception.code, 405)
        after = parse(self.scrape())
        self.assertEqual(value(after, "caviar_http_requests_total", status="200", **route) -
                         value(before, "caviar_http_requests_total", status="200", **route), 3)
        self.assertEqual(value(after, "caviar_http_requests_total", status="404", **route) -
                         value(before, "caviar_http_requests_total", status="404", **route), 1)
        other = dict(route="other", method="other", status="404")
        self.assertEqual(value(after, "caviar_http_requests_total", **other) -
                         value(before, "caviar_http_requests_total", **other), 2)
        for method, status in (("GET", "200"), ("POST", "405")):
            page = dict(route="static", method=method, status=status)
            self.assertEqual(value(after, "caviar_http_requests_total", **page) -
                             value(before, "caviar_http_requests_total", **page), 1, page)
        # "other" counts the two paths with no route and nothing else.
        grown = {k: v - before.get(k, 0.0) for k, v in after.items()
                 if k[0] == "caviar_http_requests_total" and ("route", "other") in k[1]}
        self.assertEqual({k: v for k, v in grown.items() if v}, {
            ("caviar_http_requests_total", frozenset(other.items())): 2})
        scrape = dict(route="/metrics", method="GET", status="200")
        self.assertGreaterEqual(value(after, "caviar_http_requests_total", **scrape), 1)

    def test_model_bytes_a_worker_fetched_are_counted(self):
        before = value(parse(self.scrape()), "caviar_dataset_bytes_served_total")
        status, reply = self.c.request("POST", "/v1/jobs/{}/evaluate".format(self.job["id"]),
                                       {"ensemble": 2})
        self.assertEqual(status, 202, reply)
        deadline = time.time() + 60
        while not self.c.request("GET", "/v1/jobs/{}".format(self.job["id"]))[1]["test_result"]:
            self.assertLess(time.time(), deadline, self.c.log_text())
            time.sleep(0.1)
        result = self.c.request("GET", "/v1/jobs/{}".format(self.job["id"]))[1]["test_result"]
        self.assertNotIn("error", result, result)
        models = os.path.join(self.c.data_dir, "models", str(self.job["id"]))
        size = sum(os.path.getsize(os.path.join(models, f"{t}.model")) for t in result["trials"])
        after = value(parse(self.scrape()), "caviar_dataset_bytes_served_total")
        self.assertEqual(after - before, size)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
