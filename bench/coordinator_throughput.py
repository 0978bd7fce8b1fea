#!/usr/bin/env python3
"""Coordinator throughput: caviard with N connected no-op workers (caviar-worker --noop answers
every trial at once) runs one job of T trials; prints trials dispatched and durably stored per
second (synchronous=FULL), the result-to-commit latency, and caviard's memory after the job.
Reference on this machine class: Optuna 3.1 with SQLite storage completes about 70 trials/s with
a trivial objective (bench/optuna_reference.py measures it here).

Usage: coordinator_throughput.py [BUILD_DIR] [--workers 16] [--trials 100000]"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from caviar_harness import Coordinator, write_moons  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--workers", type=int, default=16)
ap.add_argument("--trials", type=int, default=100000)
ap.add_argument("--rounds", type=int, default=1)
args = ap.parse_args()

c = Coordinator(os.path.abspath(args.build), workers=args.workers, noop=True).start()
try:
    data = os.path.join(c.dir, "tiny.csv")
    write_moons(data, n=20)
    per = args.trials // args.rounds
    rounds = [per] * (args.rounds - 1) + [args.trials - per * (args.rounds - 1)]
    job = {"name": "throughput",
           "trial": {"dataset": {"format": "csv", "csv": data, "label_column": "label"},
                     "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
           "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5, "max": 1},
                     "l2": {"type": "float", "scale": "log", "min": 1e-6, "max": 1}},
           "budget": {"max_trials": args.trials, "max_parallel": args.workers},
           "refine": {"rounds": rounds}}
    c.wait_workers(args.workers)
    t0 = time.time()
    status, body = c.request("POST", "/v1/jobs", job)
    assert status == 201, body
    t_submit = time.time() - t0
    final = c.wait_job(body["id"], timeout=1800)
    elapsed = time.time() - t0
    _, stats = c.request("GET", "/v1/stats")
    rss = hwm = 0
    for line in open(f"/proc/{c.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    done = final["counts"]["completed"]
    lost = sum(v for k, v in final["counts"].items() if k not in ("completed",))
    print(f"workers {args.workers}  trials {done}/{args.trials} completed, {lost} not completed")
    print(f"submission (sampling + storing {args.trials} trials): {t_submit:.2f} s")
    print(f"end to end: {elapsed:.2f} s, {done / elapsed:,.0f} trials/s "
          f"(target 10,000; Optuna 3.1 + SQLite reference ~70 trials/s)")
    print(f"result-to-commit latency: p50 {stats['commit_latency_p50_ms']:.2f} ms, "
          f"p99 {stats['commit_latency_p99_ms']:.2f} ms, max {stats['commit_latency_max_ms']:.2f} "
          f"ms over {stats['commits']} commits")
    print(f"caviard memory after the job: RSS {rss:.1f} MiB, peak {hwm:.1f} MiB (target < 64 MiB)")
finally:
    c.close()
