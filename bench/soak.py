#!/usr/bin/env python3
"""Soak: caviard under read load, write load and one hostile worker at once, on loopback.

caviard runs a job of T no-op trials (default 100,000) with W local no-op workers (default 16)
while R reader threads (default 8, in a process of their own so that the probe below is not
timed by the readers' turns at the GIL) poll the list, job and trial routes - default pages,
pages of 1000 deep in the list, the ranked list, single trials and jobs, the workers - and one
hostile worker connection says hello, then never reads a byte while it asks for the job's
dataset again and again (dataset_get). Meanwhile /v1/health is probed every 10 ms.

Prints caviard's peak RSS (target < 128 MiB), /v1/health p50 and p99 latency (target p99 <
50 ms), the leases lost by healthy workers (target 0, from the attempts history: attempts of
any worker but the hostile one that ended lost or stale) and the read load served. Bounded in
time (--seconds of load after the workers connect, then a few seconds to stop); every process
it starts is stopped before it exits, and it exits 0 whatever the figures.

Usage: soak.py [BUILD_DIR] [--trials 100000] [--workers 16] [--readers 8] [--seconds 60]"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import socket
import sqlite3
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from caviar_harness import Coordinator, message, write_moons  # noqa: E402

HOSTILE_ID = "soak-hostile"


def proc_status(pid, key):
    """A /proc/PID/status figure in MiB (VmRSS, VmHWM), or 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def reader(port, job_id, trials, stop, counts, seed):
    """One reader thread: cycles through the read routes over a keep-alive connection. Trials
    are sampled round by round, so single trials are picked among those the job's counts say
    exist so far."""
    rng = random.Random(seed)
    stored = [1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    routes = [lambda: "/v1/jobs",
              lambda: f"/v1/jobs/{job_id}",
              lambda: f"/v1/jobs/{job_id}/trials",
              lambda: f"/v1/jobs/{job_id}/trials?limit=1000&after={rng.randrange(stored[0])}",
              lambda: f"/v1/jobs/{job_id}/trials?order=best&limit=1000",
              lambda: f"/v1/trials/{rng.randrange(1, stored[0] + 1)}",
              lambda: "/v1/workers"]
    while not stop.is_set():
        path = rng.choice(routes)()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            counts["ok" if r.status == 200 else f"http {r.status}"] += 1
            counts["bytes"] += len(body)
            if r.status == 200 and path == f"/v1/jobs/{job_id}":
                stored[0] = max(1, sum(json.loads(body)["counts"].values()))
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            counts[type(e).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


def readers_process(port, job_id, trials, n, stop, out):
    """The reader threads, in their own process; puts their counts on out when stopped."""
    from collections import Counter
    counts = Counter()
    threads = [threading.Thread(target=reader, args=(port, job_id, trials, stop, counts, i))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(dict(counts))


def hostile(port, dataset_hash, stop, sent):
    """Says hello, then never reads: sends dataset_get every 50 ms until stop or the coordinator
    closes the connection. The socket's receive buffer is kept small so the coordinator's
    answers pile up on its side, not in this process's kernel buffer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    hello = {"type": "hello", "protocol": 1, "worker_id": HOSTILE_ID, "version": "soak",
             "threads": 1, "host": "hostile"}
    get = message({"type": "dataset_get", "hash": dataset_hash})
    try:
        s.sendall(message(hello))
        s.settimeout(1.0)
        while not stop.is_set():
            s.sendall(get)
            sent[0] += 1
            stop.wait(0.05)
    except socket.timeout:
        sent.append("the coordinator stopped reading it")
        stop.wait()
    except OSError:
        sent.append("closed by the coordinator")
    finally:
        s.close()


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--trials", type=int, default=100000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--dataset-rows", type=int, default=50000)
    ap.add_argument("--no-hostile", action="store_true",
                    help="leave the hostile worker out (to tell its effect from the readers')")
    args = ap.parse_args()

    c = Coordinator(os.path.abspath(args.build), workers=args.workers, noop=True, validate=False)
    stop_hostile, stop_readers = threading.Event(), multiprocessing.Event()
    results = multiprocessing.Queue()
    readers = hostile_thread = None
    sent = [0]
    try:
        c.start()
        data = os.path.join(c.dir, "moons.csv")
        write_moons(data, n=args.dataset_rows)
        with open(data, "rb") as f:
            dataset_hash = hashlib.sha256(f.read()).hexdigest()
        dataset_mib = os.path.getsize(data) / 2**20
        job = {"name": "soak",
               "trial": {"dataset": {"format": "csv", "csv": data, "label_column": "label"},
                         "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
               "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5,
                                           "max": 1},
                         "l2": {"type": "float", "scale": "log", "min": 1e-6, "max": 1}},
               "budget": {"max_trials": args.trials, "max_parallel": args.workers + 1}}
        c.wait_workers(args.workers, timeout=60)
        t0 = time.time()
        status, body = c.request("POST", "/v1/jobs", job)
        if status != 201:
            print(f"soak: the job was refused: {body}")
            return
        job_id = body["id"]
        print(f"job {job_id}: {args.trials} no-op trials, {args.workers} workers, "
              f"{args.readers} reader threads, "
              f"{'no' if args.no_hostile else '1'} hostile worker asking for a "
              f"{dataset_mib:.1f} MiB dataset; {args.seconds:.0f} s of load (submission took "
              f"{time.time() - t0:.1f} s)")

        readers = multiprocessing.Process(target=readers_process,
                                          args=(c.port, job_id, args.trials, args.readers,
                                                stop_readers, results))
        readers.start()
        if not args.no_hostile:
            hostile_thread = threading.Thread(target=hostile, args=(c.worker_port, dataset_hash,
                                                                    stop_hostile, sent))
            hostile_thread.start()

        latencies, health_errors, rss_max = [], 0, 0
        phase = {"running": [], "ended": []}  # probes while the job runs, and after it ended
        job_running, next_status = True, time.time() + 1
        status_conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        health = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        start = time.time()
        next_rss = start
        while time.time() - start < args.seconds and c.proc.poll() is None:
            t = time.perf_counter()
            try:
                health.request("GET", "/v1/health")
                r = health.getresponse()
                r.read()
                if r.status != 200:
                    health_errors += 1
            except (OSError, http.client.HTTPException):
                health_errors += 1
                health.close()
                health = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
            latencies.append(time.perf_counter() - t)
            phase["running" if job_running else "ended"].append(latencies[-1])
            if job_running and time.time() >= next_status:
                next_status += 1
                try:
                    status_conn.request("GET", f"/v1/jobs/{job_id}")
                    r = status_conn.getresponse()
                    job_running = json.loads(r.read()).get("status") == "running"
                except (OSError, http.client.HTTPException, ValueError):
                    status_conn.close()
                    status_conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
            if time.time() >= next_rss:
                rss_max = max(rss_max, proc_status(c.proc.pid, "VmRSS"))
                next_rss += 0.5
            time.sleep(0.01)
        health.close()
        status_conn.close()
        wal = c.db + "-wal"
        wal_mib = os.path.getsize(wal) / 2**20 if os.path.exists(wal) else 0
        hwm = proc_status(c.proc.pid, "VmHWM")
        rss_now = proc_status(c.proc.pid, "VmRSS")
        alive = c.proc.poll() is None

        stop_readers.set()
        stop_hostile.set()
        readers.join(90)
        counts = results.get(timeout=30) if readers.exitcode == 0 else {}
        if hostile_thread is not None:
            hostile_thread.join(10)

        job_now = {}
        if alive:
            status, job_now = c.request("GET", f"/v1/jobs/{job_id}")
        db = sqlite3.connect(f"file:{c.db}?mode=ro", uri=True)
        lost = db.execute("SELECT count(*) FROM trial_attempts WHERE outcome IN ('lost', "
                          "'stale') AND worker_id IS NOT ?", (HOSTILE_ID,)).fetchone()[0]
        lost_hostile = db.execute("SELECT count(*) FROM trial_attempts WHERE outcome IN "
                                  "('lost', 'stale') AND worker_id IS ?",
                                  (HOSTILE_ID,)).fetchone()[0]
        db.close()
        dropped = [line for line in c.log_text().splitlines()
                   if "; closing" in line and HOSTILE_ID not in line]

        latencies.sort()
        elapsed = time.time() - start
        print(f"caviard: {'alive' if alive else 'DIED'}; peak RSS {hwm:.1f} MiB (VmHWM; "
              f"largest sample {rss_max:.1f} MiB, now {rss_now:.1f} MiB; target < 128 MiB)")
        print(f"database: {os.path.getsize(c.db) / 2**20:.1f} MiB, write-ahead log "
              f"{wal_mib:.1f} MiB at the end of the load")
        print(f"/v1/health: {len(latencies)} probes, p50 {percentile(latencies, 0.5) * 1e3:.1f} "
              f"ms, p99 {percentile(latencies, 0.99) * 1e3:.1f} ms, max "
              f"{latencies[-1] * 1e3 if latencies else float('nan'):.1f} ms, {health_errors} "
              f"failed (target p99 < 50 ms)")
        for name, values in phase.items():
            values.sort()
            if values:
                print(f"  while the job {'runs' if name == 'running' else 'has ended'}: "
                      f"{len(values)} probes, p50 {percentile(values, 0.5) * 1e3:.1f} ms, p99 "
                      f"{percentile(values, 0.99) * 1e3:.1f} ms")
        print(f"leases lost by healthy workers: {lost} in the attempts history (target 0); "
              f"healthy workers disconnected by the coordinator (log): {len(dropped)}; the "
              f"hostile worker's own lost leases: {lost_hostile}")
        for line in dropped[:3]:
            print(f"  {line}")
        counts = counts or {}
        ok = counts.get("ok", 0)
        others = {k: v for k, v in counts.items() if k not in ("ok", "bytes")}
        print(f"reads: {ok} answered 200 in {elapsed:.0f} s ({ok / elapsed:.0f}/s, "
              f"{counts.get('bytes', 0) / 2**20 / elapsed:.1f} MiB/s), other outcomes: "
              f"{others or 'none'}")
        if hostile_thread is not None:
            print(f"hostile worker: {sent[0]} dataset_get sent"
                  f"{' (' + sent[1] + ')' if len(sent) > 1 else ''}")
        if job_now:
            counts_now = job_now.get("counts", {})
            print(f"job: {job_now.get('status')}, {counts_now.get('completed', 0)} of "
                  f"{args.trials} trials completed")
    finally:
        stop_readers.set()
        stop_hostile.set()
        if readers is not None and readers.is_alive():
            readers.join(30)
            if readers.is_alive():
                readers.kill()
                readers.join()
        if hostile_thread is not None:
            hostile_thread.join(10)
        c.close()


if __name__ == "__main__":
    main()
