#!/usr/bin/env python3
"""Load on the API while the coordinator runs: caviard with N no-op local workers (caviar-worker
--noop answers every trial at once) keeps completing trials while C concurrent HTTP clients, each
on its own persistent keep-alive connection, loop over GET /v1/jobs, GET /v1/jobs/1 and
GET /v1/jobs/1/trials?order=best&limit=5 for S seconds. Jobs of --chunk trials are submitted one
after another so that trials keep flowing for the whole run; at the end the clients stop, the
last job is left to finish, and the store is checked.

Prints requests/s, trials/s, request latency p50/p99, errors (any status but 200, any connection
error or early close) and lost trials (trials of a job not completed once it ended, or a
configuration stored twice), then PASS only when both are zero. Loopback only; stops by itself
(the load after S seconds, the whole run after S + 120 seconds at most).

Usage: load.py [BUILD_DIR] [--workers 16] [--clients 200] [--seconds 20] [--chunk 4000]
               [--processes P]"""

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from caviar_harness import Coordinator, write_moons  # noqa: E402

PATHS = ["/v1/jobs", "/v1/jobs/1", "/v1/jobs/1/trials?order=best&limit=5"]
DRAIN_SECONDS = 120  # longest wait for the last job after the load stops


# ---- clients (one asyncio loop per process) ---------------------------------------------------

async def one_client(port, index, deadline, out):
    """Requests on one keep-alive connection until deadline; appends latencies (seconds) and
    counts errors into out."""
    reader = writer = None
    n = index
    while time.monotonic() < deadline:
        path = PATHS[n % len(PATHS)]
        n += 1
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        start = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            await asyncio.wait_for(reader.readexactly(length), 30)
            out["latency"].append(time.monotonic() - start)
            if status != 200:
                out["errors"] += 1
                out["statuses"][status] = out["statuses"].get(status, 0) + 1
            if close:
                out["errors"] += 1
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError, IndexError) as e:
            out["errors"] += 1
            key = type(e).__name__
            out["statuses"][key] = out["statuses"].get(key, 0) + 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def client_process(port, first, count, start_at, seconds, queue):
    """Runs count clients numbered from first, starting together at start_at (time.time())."""
    out = {"latency": [], "errors": 0, "statuses": {}}

    async def main():
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(one_client(port, first + i, deadline, out) for i in range(count)))
    asyncio.run(main())
    queue.put(out)


# ---- the run -------------------------------------------------------------------------------------

def job_spec(data, trials, workers):
    return {"name": "load",
            "trial": {"dataset": {"format": "csv", "csv": data, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5, "max": 1},
                      "l2": {"type": "float", "scale": "log", "min": 1e-6, "max": 1}},
            "budget": {"max_trials": trials, "max_parallel": workers},
            "refine": {"rounds": [trials]}}


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def check_store(db_path, job_ids, chunk):
    """Lost trials: per job, trials not completed, plus configurations stored twice."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        lost = 0
        for job_id in job_ids:
            completed, rows, keys = db.execute(
                "SELECT SUM(status = 'completed'), COUNT(*), COUNT(DISTINCT config_key) "
                "FROM trials WHERE job_id = ?", (job_id,)).fetchone()
            lost += (chunk - (completed or 0)) + (rows - keys)
        return lost
    finally:
        db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--chunk", type=int, default=4000, help="trials per job")
    ap.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    args = ap.parse_args()

    c = Coordinator(os.path.abspath(args.build), workers=args.workers, noop=True).start()
    procs = []
    try:
        data = os.path.join(c.dir, "tiny.csv")
        write_moons(data, n=20)
        c.wait_workers(args.workers)
        job_ids = []

        def submit():
            status, body = c.request("POST", "/v1/jobs", job_spec(data, args.chunk, args.workers))
            assert status == 201, body
            job_ids.append(body["id"])
        submit()

        queue = multiprocessing.Queue()
        start_at = time.time() + 1.0
        per = [args.clients // args.processes + (i < args.clients % args.processes)
               for i in range(args.processes)]
        first = 0
        for count in per:
            p = multiprocessing.Process(target=client_process,
                                        args=(c.port, first, count, start_at, args.seconds,
                                              queue))
            p.start()
            procs.append(p)
            first += count
        t0 = time.time()
        # Keep trials flowing: a new job whenever the last one has ended.
        while time.time() < start_at + args.seconds:
            status, job = c.request("GET", f"/v1/jobs/{job_ids[-1]}")
            if status == 200 and job["status"] != "running":
                submit()
            time.sleep(0.2)
        results = [queue.get(timeout=60) for _ in procs]
        load_end = time.time()
        final = c.wait_job(job_ids[-1], timeout=DRAIN_SECONDS)
        t1 = time.time()

        latency = sorted(x for r in results for x in r["latency"])
        errors = sum(r["errors"] for r in results)
        statuses = {}
        for r in results:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        lost = check_store(c.db, job_ids, args.chunk)
        completed = sum(c.request("GET", f"/v1/jobs/{j}")[1]["counts"].get("completed", 0)
                        for j in job_ids)
        load_seconds = load_end - start_at
        print(f"caviard with {args.workers} no-op workers; {args.clients} HTTP clients in "
              f"{args.processes} processes for {args.seconds:.0f} s on loopback "
              f"({os.cpu_count()} CPUs)")
        print(f"requests: {len(latency):,} ({len(latency) / args.seconds:,.0f} requests/s), "
              f"latency p50 {1e3 * percentile(latency, 0.50):.2f} ms, "
              f"p99 {1e3 * percentile(latency, 0.99):.2f} ms, "
              f"max {1e3 * (latency[-1] if latency else float('nan')):.2f} ms")
        print(f"trials: {completed:,} completed in {len(job_ids)} jobs of {args.chunk} over "
              f"{t1 - t0:.1f} s ({completed / (t1 - t0):,.0f} trials/s; load phase "
              f"{load_seconds:.1f} s, last job {final['status']})")
        print(f"errors: {errors}" + (f" {statuses}" if statuses else ""))
        print(f"lost trials: {lost}")
        ok = errors == 0 and lost == 0 and len(latency) > 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in procs:
            p.join(timeout=max(1.0, args.seconds + 30))
            if p.is_alive():
                p.terminate()
                p.join()
        c.close()


if __name__ == "__main__":
    sys.exit(main())
