#!/usr/bin/env python3
"""Specification of how a job that cannot run is handled: the real coordinator and real
caviar-worker processes on loopback ephemeral ports, a temporary SQLite file, real files.

- What can be checked at submission is, off the loop thread: dataset files that are devices,
  FIFOs or too large, CSV labels that are not integers or do not fit `classes`, a header that is
  data, labels that skip class 0. Each refusal is a 400 naming the file, line and column and
  saying what to write; the API keeps answering and SIGTERM works while a file is read.
- A failure of the job's own making at run time (a dataset file that changed after submission)
  fails the job with that error and never quarantines a worker; the next job runs.
- A job whose every trial fails ends `failed` with the first error, and the client says so.
- A quarantine (for workers failing through their own fault) has a reason, ends after
  --quarantine-seconds, and `caviar workers --release ID` lifts it at once.

Usage: test_jobfail.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import resource
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
WORKER = os.path.join(BUILD, "worker", "caviar-worker")
CLIENT = os.path.join(BUILD, "client", "caviar")
CAVIARD = os.path.join(BUILD, "server", "caviard")


def job_spec(csv, trials=4, parallel=2, epochs=2, units=8, **dataset):
    return {
        "name": "jobfail",
        "trial": {"dataset": dict({"format": "csv", "csv": csv}, **dataset),
                  "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                  "hidden_layers": 1, "hidden_units": units, "batch_size": 32},
        "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3, "max": 1e-1}},
        "budget": {"max_trials": trials, "max_parallel": parallel},
        "refine": {"rounds": [trials]},
        "seed": 5,
    }


def write_rows(path, header, rows):
    with open(path, "w") as f:
        if header:
            f.write(header + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


class JobFailures(CoordinatorChecks, unittest.TestCase):
    def setUp(self):
        self.c = None
        self.workers = []

    def tearDown(self):
        for proc, log in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        if self.c:
            self.c.close()

    def start(self, *extra, workers=0):
        self.c = Coordinator(BUILD, workers=workers, extra=extra).start()
        return self.c

    def path(self, name):
        return os.path.join(self.c.dir, name)

    def start_worker(self, wid, env=None, cache=True):
        log = open(self.path(f"{wid}.log"), "a")
        extra = ["--cache", self.path("cache-" + wid)] if cache else []
        proc = subprocess.Popen(
            [WORKER, "--connect", f"127.0.0.1:{self.c.worker_port}", "--id", wid, "--threads",
             "1", "--verbose", *extra],
            stdout=log, stderr=log, env=dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {})))
        self.workers.append((proc, log))
        return proc

    def workers_by_id(self):
        status, body = self.c.request("GET", "/v1/workers")
        self.assertEqual(status, 200, body)
        return {w["id"]: w for w in body["workers"]}

    def client(self, *args):
        env = dict(os.environ, CAVIAR_SERVER=f"http://127.0.0.1:{self.c.port}")
        return subprocess.run([CLIENT, *args], capture_output=True, text=True, env=env,
                              timeout=60)

    def refused(self, spec, *words):
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 400, body)
        for w in words:
            self.assertIn(w, body["error"])
        return body["error"]

    # ---- submission checks --------------------------------------------------------------

    def test_bad_csv_labels_and_headers_are_refused_at_submission_saying_what_to_write(self):
        self.start()
        moons = self.path("moons.csv")
        write_moons(moons, n=200)
        rows = [[0.1 * i, 0.2 * i, i % 2] for i in range(40)]

        seven = self.path("seven.csv")
        write_rows(seven, "x1,x2,label", rows[:5] + [[1.0, 2.0, 7]] + rows[5:])
        self.refused(job_spec(seven, classes=2), "trial.dataset.classes: is 2", seven,
                     'line 7, column 3 ("label") has label 7', '"classes": 8')

        setosa = self.path("iris.csv")
        write_rows(setosa, "a,b,c,d,label",
                   [[5.1, 3.5, 1.4, 0.2, "setosa"], [7.0, 3.2, 4.7, 1.4, "versicolor"]] * 10)
        self.refused(job_spec(setosa), "trial.dataset.csv", setosa,
                     'line 2, column 5 ("label"): "setosa" is not a number',
                     "labels must be integers 0..K-1")

        headless = self.path("headless.csv")
        write_rows(headless, None, rows)
        self.refused(job_spec(headless), "trial.dataset.header", "all numbers",
                     '"header": false')

        one_based = self.path("one_based.csv")
        write_rows(one_based, "x1,x2,label", [[r[0], r[1], 1 + i % 3] for i, r in enumerate(rows)])
        self.refused(job_spec(one_based), "go from 1 to 3 and 0 never appears",
                     "renumber the labels 0..2", '"classes": 4')

        self.refused(job_spec(moons, label_column="y"), "trial.dataset.label_column",
                     'no column "y"', '"x1", "x2", "label"')

        ragged = self.path("ragged.csv")
        write_rows(ragged, "x1,x2,label", rows[:3] + [[1, 0]] + rows[3:])
        self.refused(job_spec(ragged), "line 5 has 2 fields, expected 3 (as on line 1)")

        # Explicit wishes pass: labels 1..3 with "classes": 4, a header-less file said so.
        status, body = self.c.request("POST", "/v1/jobs", job_spec(one_based, classes=4))
        self.assertEqual(status, 201, body)
        status, body = self.c.request("POST", "/v1/jobs", job_spec(headless, header=False,
                                                                   label_column=2))
        self.assertEqual(status, 201, body)
        status, body = self.c.request("POST", "/v1/jobs", job_spec(moons))
        self.assertEqual(status, 201, body)

    def test_devices_and_fifos_are_refused_while_the_api_answers_and_sigterm_works(self):
        self.start()  # no --dataset-root: any path may be named
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        latencies, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.c.port}/v1/health",
                                                timeout=5) as r:
                        r.read()
                except OSError:
                    pass  # counted as the time it took
                latencies.append(time.monotonic() - t0)
                time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            t0 = time.monotonic()
            self.refused(job_spec("/dev/zero"), "trial.dataset.csv: /dev/zero is a device",
                         "regular file")
            self.refused(job_spec(fifo), f"trial.dataset.csv: {fifo} is a FIFO", "regular file")
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            stop.set()
            poller.join()
        self.assertTrue(latencies)
        self.assertLess(max(latencies), 0.1, latencies)
        t0 = time.monotonic()
        self.assertEqual(self.c.stop(timeout=10), 0, self.c.log_text())
        self.assertLess(time.monotonic() - t0, 3)

    def test_a_file_over_max_dataset_bytes_is_refused_before_it_is_read(self):
        self.start("--max-dataset-bytes", str(64 << 20))
        big = self.path("big.csv")
        with open(big, "wb") as f:
            f.truncate(65 << 20)
        self.refused(job_spec(big), f"trial.dataset.csv: {big} is {65 << 20} bytes, over the "
                     f"limit of {64 << 20} (caviard --max-dataset-bytes)")

    def test_hashing_a_large_file_leaves_the_api_answering_and_sigterm_stops_it(self):
        self.start()
        images, labels = self.path("images.idx"), self.path("labels.idx")
        for p, size in ((images, 8 << 30), (labels, 1 << 20)):
            with open(p, "wb") as f:
                f.truncate(size)
        spec = job_spec("unused")
        spec["trial"]["dataset"] = {"format": "idx", "images": images, "labels": labels}
        answer = {}

        def submit():
            try:
                answer["reply"] = self.c.request("POST", "/v1/jobs", spec)
            except Exception as e:  # the connection closes when caviard stops
                answer["reply"] = e

        thread = threading.Thread(target=submit)
        thread.start()
        time.sleep(0.5)
        took = []
        for _ in range(20):
            t0 = time.monotonic()
            status, body = self.c.request("GET", "/v1/health")
            took.append(time.monotonic() - t0)
            self.assertEqual(status, 200, body)
            time.sleep(0.02)
        # A loop thread busy hashing would not answer for seconds; the hashing thread competes
        # with the poller for the cores, so the bound is on the median, with a ceiling.
        self.assertLess(sorted(took)[len(took) // 2], 0.05, took)
        self.assertLess(max(took), 1, took)
        self.assertTrue(thread.is_alive(), "8 GiB were hashed in under a second?")
        t0 = time.monotonic()
        self.assertEqual(self.c.stop(timeout=10), 0, self.c.log_text())
        self.assertLess(time.monotonic() - t0, 3, self.c.log_text())
        thread.join(10)
        reply = answer.get("reply")
        if isinstance(reply, tuple):  # answered before the connection closed: 503
            self.assertEqual(reply[0], 503, reply)

    # ---- failures of the job at run time --------------------------------------------------

    def test_a_dataset_changed_after_submission_fails_the_job_and_no_worker(self):
        self.start("--quarantine-after", "2")
        data = self.path("moons.csv")
        write_moons(data, n=300)
        status, body = self.c.request("POST", "/v1/jobs", job_spec(data, trials=6, parallel=2))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        write_moons(data, n=300, seed=99)  # same size, other bytes: another SHA-256
        self.start_worker("cached")
        self.start_worker("shared", cache=False)
        job = self.c.wait_job(job_id, timeout=60)
        self.assertEqual(job["status"], "failed", self.c.log_text())
        self.assertRegex(job["error"], r"^trial \d+ failed: ")
        self.assertIn("changed after", job["error"])
        self.assertEqual(job["quarantined_workers"], [])
        self.assertEqual(job["counts"]["queued"] + job["counts"]["running"], 0)
        workers = self.wait_for("both workers", lambda: len(self.workers_by_id()) == 2 and
                                self.workers_by_id())
        for w in workers.values():
            self.assertEqual((w["quarantined"], w["consecutive_failures"]), (0, 0), w)
        # The next job runs on the same workers.
        status, body = self.c.request("POST", "/v1/jobs", job_spec(data, trials=3, parallel=2))
        self.assertEqual(status, 201, body)
        job = self.c.wait_job(body["id"], timeout=60)
        self.assertEqual((job["status"], job["counts"]["completed"]), ("completed", 3),
                         self.c.log_text())

    def test_a_network_too_large_for_memory_fails_the_job_and_not_the_worker(self):
        with open(WORKER, "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("AddressSanitizer needs more address space than the limit")
        self.start("--quarantine-after", "1")
        data = self.path("moons.csv")
        write_moons(data, n=200)
        log = open(self.path("small.log"), "a")
        proc = subprocess.Popen(
            [WORKER, "--connect", f"127.0.0.1:{self.c.worker_port}", "--id", "small",
             "--threads", "1"], stdout=log, stderr=log,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)))
        self.workers.append((proc, log))
        spec = job_spec(data, trials=3, parallel=1)
        spec["trial"].update(hidden_layers=4, hidden_units=16384)
        status, body = self.c.request("POST", "/v1/jobs", spec)
        self.assertEqual(status, 201, body)
        job = self.c.wait_job(body["id"], timeout=60)
        self.assertEqual(job["status"], "failed", self.c.log_text())
        self.assertRegex(job["error"], r"^trial \d+ failed: out of memory: the network needs "
                                       r"805437442 parameters")
        # Trials are proposed one at a time as workers come free: the job ends at its first.
        self.assertEqual(sum(job["counts"].values()), 1, job["counts"])
        w = self.workers_by_id()["small"]
        self.assertEqual((w["quarantined"], w["consecutive_failures"]), (0, 0), w)

    def test_a_resumed_job_whose_dataset_became_a_fifo_fails_and_caviard_answers(self):
        c = self.start()
        data = self.path("moons.csv")
        write_moons(data, n=200)
        status, body = self.c.request("POST", "/v1/jobs", job_spec(data))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        self.assertEqual(c.stop(), 0, c.log_text())
        os.unlink(data)
        os.mkfifo(data)  # reading it would block until a writer comes: none will
        t0 = time.monotonic()
        c.start()
        status, body = c.request("GET", "/v1/health")
        self.assertEqual(status, 200, body)
        self.assertLess(time.monotonic() - t0, 10)
        job = c.wait_job(job_id, timeout=30)
        self.assertEqual(job["status"], "failed")
        self.assertIn(f"its datasets cannot be used after a restart: trial.dataset.csv: {data} "
                      "is a FIFO", job["error"])
        t0 = time.monotonic()
        self.assertEqual(c.stop(timeout=10), 0, c.log_text())
        self.assertLess(time.monotonic() - t0, 3)

    def test_a_job_whose_every_trial_fails_ends_failed_and_the_client_says_why(self):
        self.start("--quarantine-after", "0")  # never quarantine: every trial fails
        data = self.path("moons.csv")
        write_moons(data, n=200)
        self.start_worker("broken", env={"CAVIAR_WORKER_FAIL_TRIALS": "1"})
        status, body = self.c.request("POST", "/v1/jobs", job_spec(data, trials=4))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        job = self.c.wait_job(job_id, timeout=60)
        self.assertEqual(job["status"], "failed")
        self.assertRegex(job["error"], r"^no trial completed \(4 failed, 0 diverged\); the first: "
                                       r"trial \d+ failed: CAVIAR_WORKER_FAIL_TRIALS is set")
        status_out = self.client("status", str(job_id))
        self.assertEqual(status_out.returncode, 0, status_out.stderr)
        self.assertRegex(status_out.stdout, r"status +failed")
        self.assertIn("no trial completed (4 failed", status_out.stdout)
        watch = self.client("watch", str(job_id))
        self.assertNotEqual(watch.returncode, 0)
        self.assertIn(f"job {job_id} ended failed: no trial completed", watch.stderr)
        best = self.client("best", str(job_id))
        self.assertIn("no completed trials: the job failed: no trial completed", best.stdout)
        self.assertNotIn("yet", best.stdout)

    def test_caviar_run_prints_why_a_job_cannot_run(self):
        self.start()  # only for its temporary directory and dataset
        iris = self.path("iris.csv")
        write_rows(iris, "a,b,c,d,label", [[5.1, 3.5, 1.4, 0.2, "setosa"]] * 20)
        spec = self.path("job.json")
        with open(spec, "w") as f:
            json.dump(job_spec(iris), f)
        run = subprocess.run(
            [CLIENT, "run", spec, "--workers", "1", "--caviard", CAVIARD, "--db",
             self.path("run.db"), "--data-dir", self.path("run-data"), "--log",
             self.path("run.log")],
            capture_output=True, text=True, cwd=self.c.dir, timeout=120,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        self.assertNotEqual(run.returncode, 0)
        self.assertIn('line 2, column 5 ("label"): "setosa" is not a number', run.stderr)
        self.assertNotIn("no completed trials yet", run.stdout + run.stderr)
        self.assertNotIn("HTTP 409", run.stderr)
        self.assertIn("(HTTP 400)", run.stderr)

    # ---- quarantine ----------------------------------------------------------------------

    def test_a_quarantine_has_a_reason_ends_after_its_time_and_can_be_released(self):
        self.start("--quarantine-after", "1", "--quarantine-seconds", "1")
        data = self.path("moons.csv")
        write_moons(data, n=200)
        self.start_worker("broken", env={"CAVIAR_WORKER_FAIL_TRIALS": "1"})
        status, body = self.c.request("POST", "/v1/jobs", job_spec(data, trials=50, parallel=1))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        w = self.wait_for("the quarantine", lambda: self.workers_by_id().get("broken", {})
                          .get("quarantined") == 1 and self.workers_by_id()["broken"])
        self.assertIn("1 failed trials in a row", w["quarantine_reason"])
        self.assertIn("failing on purpose", w["quarantine_reason"])
        status, job = self.c.request("GET", f"/v1/jobs/{job_id}")
        [q] = job["quarantined_workers"]
        self.assertEqual(q["worker_id"], "broken")
        self.assertIn("failing on purpose", q["reason"])
        self.assertAlmostEqual(q["quarantined_until"] - q["quarantined_at"], 1, places=3)
        # It ends by itself: the worker gets a trial again (and, broken, fails it again).
        self.wait_for("the quarantine to end", lambda: "worker broken: quarantine ended; it gets "
                      "trials again" in self.c.log_text())
        self.wait_for("a second quarantine",
                      lambda: self.c.log_text().count("worker broken quarantined for 1 s") >= 2)
        # Release lifts it at once, through the client; the count starts again from 0.
        out = self.client("workers", "--release", "broken")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("worker broken released from quarantine", out.stdout)
        self.assertIn("worker broken released from quarantine; it gets trials again",
                      self.c.log_text())
        missing = self.client("workers", "--release", "ghost")
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("worker ghost not found", missing.stderr)
        status, body = self.c.request("POST", "/v1/workers/ghost/release")
        self.assertEqual(status, 404, body)
        status, body = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
