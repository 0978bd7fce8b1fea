#!/usr/bin/env python3
"""How long the dashboard's job page takes to load and draw a job of 100,000 trials, in headless
Chromium (Selenium) against a real caviard.

The trials are written straight into a real SQLite file (the schema caviard created, a job it
accepted) before caviard starts on it: 90% completed, 10% pruned, over the four scales of
bench's space (log, power_of_two, one_minus_log, categorical). The figure is the time from the
navigation's start to the end of the job page's first full draw (history, one chart per
parameter with its round's band, parallel coordinates, rungs, the trial table), read from the page (performance.now(), which counts from the
navigation's start), as the median of --runs loads; each load is a new document. The run fails
(exit 1) when the median is over --limit seconds or when the history chart holds fewer points
than trials (or the parallel coordinates fewer lines).

Usage: dashboard_load.py BUILD_DIR [--trials N] [--runs K] [--limit S]
Skips (exit 77) without chromium, chromium-driver or python3-selenium, unless CI is set."""

import argparse
import math
import json
import os
import random
import sqlite3
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from caviar_harness import Coordinator, write_moons  # noqa: E402
from dashboard_browser import browser_or_skip, console_errors  # noqa: E402

SPACE = {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5, "max": 0.3},
         "batch_size": {"type": "int", "scale": "power_of_two", "min": 16, "max": 512},
         "beta1": {"type": "float", "scale": "one_minus_log", "min": 0.8, "max": 0.999},
         "activation": {"type": "categorical", "values": ["relu", "tanh"]}}


def fill(db_path, job, n, seed=1):
    """Replaces the job's trials by n finished ones, in one transaction."""
    rng = random.Random(seed)
    db = sqlite3.connect(db_path)
    t0 = time.time() - n
    rows = []
    for i in range(n):
        lr = 10 ** rng.uniform(-5, math.log10(0.3))
        params = {"learning_rate": lr, "batch_size": 2 ** rng.randint(4, 9),
                  "beta1": 1 - 10 ** rng.uniform(-3, math.log10(0.2)),
                  "activation": rng.choice(["relu", "tanh"])}
        text = json.dumps(params, sort_keys=True)
        pruned = rng.random() < 0.1
        err = min(0.9, 0.08 + 0.05 * abs(math.log10(lr) + 2.5) + rng.gauss(0, 0.01))
        rows.append((job, i, text, text, "pruned" if pruned else "completed", f"w-{i % 16}",
                     t0 + i, t0 + i + 0.5, t0 + i + 1, err, err * 3, 3 if pruned else 27))
    with db:
        db.execute("DELETE FROM trials WHERE job_id = ?", (job,))
        db.executemany(
            "INSERT INTO trials (job_id, number, round, params, config_key, spec, status, "
            "attempts, worker_id, queued_at, started_at, finished_at, dev_error, dev_cost, "
            "epochs_run) VALUES (?, ?, 0, ?, ?, '{}', ?, 1, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE jobs SET status = 'completed', finished_at = ? WHERE id = ?",
                   (time.time(), job))
    db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--trials", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=float, default=2.0)
    args = ap.parse_args()
    driver = browser_or_skip()
    c = Coordinator(os.path.abspath(args.build), workers=0)
    try:
        c.start()
        data = os.path.join(c.dir, "moons.csv")
        write_moons(data, n=200)
        spec = {"name": "hundred-thousand", "space": SPACE,
                "trial": {"dataset": {"format": "csv", "csv": data, "label_column": "label"},
                          "epochs": 27, "optimizer": "adam"},
                "budget": {"max_trials": args.trials, "max_parallel": 16},
                "refine": {"rounds": [args.trials]}, "search": {"pruner": "asha"}}
        status, body = c.request("POST", "/v1/jobs", spec)
        assert status == 201, body
        job = body["id"]
        c.stop()
        fill(c.db, job, args.trials)
        c.start()
        url = f"http://127.0.0.1:{c.port}"
        started = time.monotonic()
        with urllib.request.urlopen(f"{url}/v1/jobs/{job}/history", timeout=60) as r:
            reply = r.read()
        api_s = time.monotonic() - started
        count = json.loads(reply)["count"]
        assert count == args.trials, count
        print(f"GET /v1/jobs/{job}/history: {count} trials, {len(reply) / 1e6:.1f} MB in "
              f"{api_s:.2f} s")
        times = []
        for _ in range(args.runs):
            driver.get("about:blank")
            driver.get(f"{url}/#/jobs/{job}")
            deadline = time.monotonic() + 60
            drawn = None
            while drawn is None and time.monotonic() < deadline:
                drawn = driver.execute_script("return document.body.dataset.jobDrawnMs ?? null;")
                time.sleep(0.05)
            if drawn is None:
                sys.exit("the job page was not drawn within 60 s")
            points = driver.execute_script(
                "return document.getElementById('history-chart').dataset.points;")
            if int(points) != args.trials:
                sys.exit(f"the history chart holds {points} points, not {args.trials}")
            lines = driver.execute_script("return document.getElementById('parallel').dataset.lines;")
            if int(lines) != args.trials:
                sys.exit(f"the parallel coordinates hold {lines} lines, not {args.trials}")
            fetched = driver.execute_script("return document.body.dataset.jobFetchedMs;")
            print(f"  load {len(times) + 1}: the job and its history fetched and parsed at "
                  f"{float(fetched) / 1000:.2f} s, every chart drawn at {float(drawn) / 1000:.2f} s")
            measures = driver.execute_script(
                "return performance.getEntriesByType('measure')"
                ".map(m => m.name + ' ' + m.duration.toFixed(0) + ' ms').join(', ');")
            print(f"    {measures}")
            times.append(float(drawn) / 1000)
        errors = console_errors(driver, ignore_missing_importance=True)
        if errors:
            sys.exit(f"console errors: {errors}")
        median = statistics.median(times)
        print(f"job page with {args.trials} trials loaded and drawn in {median:.2f} s "
              f"(median of {args.runs}: {', '.join(f'{t:.2f}' for t in times)} s; "
              f"limit {args.limit:.1f} s)")
        return 0 if median <= args.limit else 1
    finally:
        driver.quit()
        c.close()


if __name__ == "__main__":
    sys.exit(main())
