#!/usr/bin/env python3
"""Specification of coordinator restarts and of the coordinator's memory over many jobs, with
the real caviard and real caviar-worker processes on loopback ephemeral ports and a temporary
SQLite file.

Restarts: a trial running on a worker survives the coordinator being killed (SIGKILL) or stopped
(SIGTERM) and restarted on the same database and worker port: the worker keeps training while
the coordinator is away, re-attaches to its lease when it comes back, and the trial completes
under its first attempt. A trial whose worker does not come back within --reattach-seconds, or
comes back without it, is queued again with an `interrupted` attempt that does not count toward
--max-attempts.

Memory: jobs that ended are not kept in the coordinator's memory; a late result for one of their
trials is refused as stale without closing the worker's connection.

Workers are started here (not by caviard --workers) so that they outlive the coordinator; the
worker port comes from the second line of caviard's --port-file.

Usage: test_restart.py BUILD_DIR SOURCE_ROOT"""

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import (Coordinator, CoordinatorChecks, message, read_message,  # noqa: E402
                            write_moons)

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
EPOCHS = 25  # a trial that outlasts two restarts: several seconds on one thread


def write_blobs(path, n=3000, features=16, seed=3):
    """Two overlapping Gaussian classes as CSV: small to write, slow enough to train on with
    1024 hidden units (a fraction of a second an epoch on one thread)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(features)) + ",label\n")
        for i in range(n):
            label = i % 2
            xs = (rng.gauss(0.3 * label * (j % 3), 1) for j in range(features))
            f.write(",".join(f"{x:.4f}" for x in xs) + f",{label}\n")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


class Restarts(CoordinatorChecks, unittest.TestCase):
    # ---- helpers ----------------------------------------------------------------------------

    def start_coordinator(self, *extra):
        self.c = Coordinator(BUILD, workers=0, extra=["--lease-seconds", "2",
                                                      "--heartbeat-seconds", "0.3", *extra])
        self.c.start()
        self.data = os.path.join(self.c.dir, "blobs.csv")
        write_blobs(self.data)
        return self.c

    def restart_coordinator(self, sig, meanwhile=None):
        """Stops caviard with sig, calls meanwhile() if given, and starts caviard again on the
        same database and worker port."""
        c = self.c
        self.assertEqual(c.stop(sig), -sig if sig == signal.SIGKILL else 0, c.log_text())
        if meanwhile:
            meanwhile()
        worker_listen = ["--worker-listen", f"127.0.0.1:{c.worker_port}"]
        if c.extra[-2:] != worker_listen:
            c.extra += worker_listen
        c.start()

    def kill_worker(self, wid):
        proc = self.workers[wid][0]
        proc.kill()
        proc.wait()

    def submit(self, epochs):
        job = {
            "name": "restarts",
            "trial": {"dataset": {"format": "csv", "csv": self.data, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                      "patience": epochs, "optimizer": "adam", "hidden_layers": 2,
                      "hidden_units": 1024, "batch_size": 64},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                        "max": 1e-3}},
            "budget": {"max_trials": 1, "max_parallel": 1},
            "refine": {"rounds": [1]},
            "seed": 5,
        }
        status, body = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        return body["id"]

    def running_on(self, job_id, worker):
        """The job's trial once it runs on worker and has reported an epoch."""
        status, body = self.c.request("GET", f"/v1/jobs/{job_id}/trials")
        self.assertEqual(status, 200, body)
        for t in body["trials"]:
            if t["status"] == "running" and t["worker_id"] == worker:
                if self.trial(t["id"])["curve"]:
                    return t
        return None

    def last_epoch(self, trial_id):
        curve = self.trial(trial_id)["curve"]
        return curve[-1]["epoch"] if curve else 0

    def history(self, trial_id):
        return [(a["attempt"], a["worker_id"], a["outcome"])
                for a in self.trial(trial_id)["attempts_history"]]

    # ---- cases ------------------------------------------------------------------------------

    def check_survives_restarts(self, sig, restarts):
        """A trial training on a real worker survives `restarts` restarts of the coordinator by
        signal sig: its worker re-attaches each time and it completes under its first lease."""
        self.start_coordinator()
        self.start_worker("w1")
        job_id = self.submit(epochs=EPOCHS)
        t = self.wait_for("the trial training on w1", lambda: self.running_on(job_id, "w1"))
        for n in range(1, restarts + 1):
            before = self.last_epoch(t["id"])
            self.restart_coordinator(sig, meanwhile=lambda: time.sleep(1))  # the worker trains on
            self.wait_for(f"w1 re-attaching after restart {n}", lambda: self.c.log_text().count(
                f"worker w1 re-attached to trial {t['id']}") >= n)
            # The worker went on training: progress arrives again under the same lease (or, on
            # a fast machine, the result it finished while the coordinator was away).
            self.wait_for("progress after the re-attachment",
                          lambda: self.last_epoch(t["id"]) > before
                          or self.trial(t["id"])["status"] == "completed", timeout=60)
        job = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        done = self.trial(t["id"])
        self.assertEqual((done["status"], done["worker_id"], done["attempts"], done["error"]),
                         ("completed", "w1", 1, None))
        self.assertEqual(self.history(t["id"]), [(1, "w1", "completed")])
        self.assertEqual(done["epochs_run"], EPOCHS)
        # The epochs trained while the coordinator was away waited in the worker's outbox and
        # came after the re-attachment: at most the one in flight at each kill is missing.
        missing = sorted(set(range(1, EPOCHS + 1)) - {p["epoch"] for p in done["curve"]})
        self.assertLessEqual(len(missing), restarts, f"epochs missing from the curve: {missing}")
        self.assertRegex(self.worker_log("w1"), rf"trial {t['id']}: result stored")
        self.assertIsNone(self.workers["w1"][0].poll())
        return t

    def test_trial_survives_two_coordinator_kills(self):
        self.check_survives_restarts(signal.SIGKILL, 2)

    def test_trial_survives_a_coordinator_stop_and_start(self):
        """SIGTERM waits 2 s for results in flight, then stops without taking the trial off its
        worker: the lease stays in the database for the restart."""
        self.check_survives_restarts(signal.SIGTERM, 1)
        self.assertIn("keeps its lease for a restart", self.c.log_text())

    def test_restart_then_worker_death_leaves_the_trial_completed(self):
        """Two restarts and one worker death used to exhaust --max-attempts 3 and fail a healthy
        trial ("lost 3 leases"); only the death counts now."""
        self.start_coordinator("--max-attempts", "2")
        self.start_worker("w1")
        job_id = self.submit(epochs=EPOCHS)
        t = self.wait_for("the trial training on w1", lambda: self.running_on(job_id, "w1"))
        for n in (1, 2):
            self.restart_coordinator(signal.SIGKILL)
            self.wait_for(f"w1 re-attaching after restart {n}", lambda: self.c.log_text().count(
                f"worker w1 re-attached to trial {t['id']}") >= n)
        self.kill_worker("w1")
        self.start_worker("w2")
        job = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        done = self.trial(t["id"])
        self.assertEqual((done["status"], done["worker_id"], done["attempts"]),
                         ("completed", "w2", 2))
        self.assertEqual(self.history(t["id"]), [(1, "w1", "lost"), (2, "w2", "completed")])

    def test_unclaimed_trial_is_interrupted_after_the_grace_without_costing_an_attempt(self):
        """The worker is gone for good: after --reattach-seconds the trial is queued again, and
        with --max-attempts 1 it still completes, since the interrupted attempt does not count."""
        self.start_coordinator("--max-attempts", "1", "--reattach-seconds", "1")
        self.start_worker("w1")
        job_id = self.submit(epochs=8)
        t = self.wait_for("the trial training on w1", lambda: self.running_on(job_id, "w1"))
        self.restart_coordinator(signal.SIGKILL, lambda: self.kill_worker("w1"))
        self.wait_for("the trial queued again", lambda: self.trial(t["id"])["status"] == "queued")
        self.assertIn(f"trial {t['id']}: worker w1 did not re-attach within the grace",
                      self.c.log_text())
        self.start_worker("w2")
        job = self.c.wait_job(job_id, timeout=120)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        done = self.trial(t["id"])
        self.assertEqual((done["status"], done["worker_id"], done["attempts"]),
                         ("completed", "w2", 2))
        self.assertEqual(self.history(t["id"]),
                         [(1, "w1", "interrupted"), (2, "w2", "completed")])
        first = self.trial(t["id"])["attempts_history"][0]
        self.assertEqual(first["error"], "the coordinator restarted")

    def test_worker_back_without_its_trial_releases_it_at_once(self):
        """The worker restarted too: its hello claims nothing, so its old trial is queued again
        at once instead of waiting out a long grace."""
        self.start_coordinator("--reattach-seconds", "600")
        self.start_worker("w1")
        job_id = self.submit(epochs=6)
        t = self.wait_for("the trial training on w1", lambda: self.running_on(job_id, "w1"))
        self.restart_coordinator(signal.SIGKILL, lambda: self.kill_worker("w1"))
        self.assertEqual(self.trial(t["id"])["status"], "running")  # waiting for w1
        self.start_worker("w1")
        job = self.c.wait_job(job_id, timeout=60)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        self.assertIn(f"worker w1 came back without trial {t['id']}", self.c.log_text())
        self.assertEqual(self.history(t["id"]),
                         [(1, "w1", "interrupted"), (2, "w1", "completed")])


def hello(worker_id):
    return message({"type": "hello", "protocol": 1, "worker_id": worker_id, "version": "test",
                    "threads": 1, "host": "test"})


def result(trial_id, lease):
    return message({"type": "result", "trial_id": trial_id, "lease": lease, "model_bytes": 0,
                    "model_crc32": 0,
                    "result": {"status": "completed", "best_epoch": 1, "epochs_run": 1,
                               "train_error": 0.2, "dev_error": 0.25, "train_cost": 0.5,
                               "train_cost_reg": 0.5, "dev_cost": 0.6,
                               "examples_per_second": 1.0, "seconds": 0.1}})


def tiny_job(csv):
    return {"name": "tiny",
            "trial": {"dataset": {"format": "csv", "csv": csv, "label_column": "label"},
                      "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
            "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                        "max": 1e-1}},
            "budget": {"max_trials": 1, "max_parallel": 1},
            "refine": {"rounds": [1]}}


class FinishedJobs(unittest.TestCase):
    def test_memory_stays_flat_over_3000_finished_jobs(self):
        """3,000 one-trial jobs on two no-op workers: caviard's RSS after all of them is within
        10 MiB of its RSS after the first 300 (it used to grow by about 40 KB a job)."""
        c = Coordinator(BUILD, workers=2, noop=True, extra=["--synchronous", "normal"])
        self.addCleanup(c.close)
        c.start()
        with open(f"/proc/{c.proc.pid}/maps") as f:
            if "libasan" in f.read():
                self.skipTest("AddressSanitizer keeps freed memory in quarantine: RSS says "
                              "nothing about leaks there (LeakSanitizer checks them)")
        data = os.path.join(c.dir, "tiny.csv")
        write_moons(data, n=20)
        c.wait_workers(2)
        body = json.dumps(tiny_job(data))
        api = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        self.addCleanup(api.close)
        db = sqlite3.connect(f"file:{c.db}?mode=ro", uri=True)
        self.addCleanup(db.close)

        def run_jobs(n):
            for _ in range(n):
                api.request("POST", "/v1/jobs", body=body,
                            headers={"Content-Type": "application/json"})
                reply = api.getresponse()
                text = reply.read()
                self.assertEqual(reply.status, 201, text)
            deadline = time.time() + 60
            while db.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]:
                self.assertLess(time.time(), deadline, c.log_text()[-3000:])
                time.sleep(0.05)

        run_jobs(300)
        time.sleep(0.2)
        base = rss_kib(c.proc.pid)
        run_jobs(2700)
        time.sleep(0.2)
        after = rss_kib(c.proc.pid)
        counts = dict(db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
        self.assertEqual(counts, {"completed": 3000})
        trials = dict(db.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall())
        self.assertEqual(trials, {"completed": 3000})
        print(f"caviard RSS after 300 jobs {base / 1024:.1f} MiB, after 3000 "
              f"{after / 1024:.1f} MiB", file=sys.stderr)
        self.assertLess(after - base, 10 * 1024,
                        f"RSS grew from {base} KiB to {after} KiB over 2,700 finished jobs")
        # Finished jobs are answered from the database.
        status, job = c.request("GET", "/v1/jobs/3000")
        self.assertEqual((status, job["status"], job["running"], job["counts"]["completed"]),
                         (200, "completed", 0, 1))
        status, answer = c.request("POST", "/v1/jobs/3000/cancel")
        self.assertEqual(status, 409, answer)

    def test_late_result_for_a_finished_job_is_refused_as_stale(self):
        """A scripted worker completes a job's only trial, then sends the same result again after
        the job ended (and left memory): stored false, the connection stays and gets the next
        trial. A result for a trial that never existed still closes the connection."""
        c = Coordinator(BUILD, workers=0)
        self.addCleanup(c.close)
        c.start()
        data = os.path.join(c.dir, "tiny.csv")
        write_moons(data, n=20)
        s = socket.create_connection(("127.0.0.1", c.worker_port))
        self.addCleanup(s.close)
        s.sendall(hello("scripted"))
        self.assertEqual(read_message(s)["type"], "welcome")
        status, body = c.request("POST", "/v1/jobs", tiny_job(data))
        self.assertEqual(status, 201, body)
        trial = read_message(s)
        self.assertEqual(trial["type"], "trial")
        s.sendall(result(trial["trial_id"], trial["lease"]))
        self.assertEqual(read_message(s), {"type": "ack", "trial_id": trial["trial_id"],
                                           "stored": True})
        self.assertEqual(c.wait_job(body["id"], timeout=10)["status"], "completed")
        with sqlite3.connect(f"file:{c.db}?mode=ro", uri=True) as db:
            before = db.execute("SELECT * FROM trials").fetchall()
        s.sendall(result(trial["trial_id"], trial["lease"]))
        self.assertEqual(read_message(s), {"type": "ack", "trial_id": trial["trial_id"],
                                           "stored": False})
        self.assertRegex(c.log_text(), rf"result of trial {trial['trial_id']} refused: the trial "
                                       r"is completed and its job has ended")
        with sqlite3.connect(f"file:{c.db}?mode=ro", uri=True) as db:
            self.assertEqual(db.execute("SELECT * FROM trials").fetchall(), before)
        self.assertEqual(c.request("POST", f"/v1/jobs/{body['id']}/cancel")[0], 409)
        # Late progress of that trial is dropped as well, without closing the connection.
        s.sendall(message({"type": "progress", "trial_id": trial["trial_id"],
                           "lease": trial["lease"],
                           "epoch": {"epoch": 1, "train_cost": 0.5, "train_cost_reg": 0.5,
                                     "dev_cost": 0.6, "train_error": 0.2, "dev_error": 0.3,
                                     "learning_rate": 0.01, "seconds": 0.1,
                                     "examples_per_second": 100.0}}))
        # The same connection goes on: it gets the next job's trial.
        status, body = c.request("POST", "/v1/jobs", tiny_job(data))
        self.assertEqual(status, 201, body)
        second = read_message(s)
        self.assertEqual((second["type"], second["job_id"]), ("trial", body["id"]))
        with sqlite3.connect(f"file:{c.db}?mode=ro", uri=True) as db:
            self.assertEqual(db.execute("SELECT count(*) FROM curves WHERE trial_id = ?",
                                        (trial["trial_id"],)).fetchone(), (0,))
        s.sendall(result(987654, trial["lease"]))
        with self.assertRaises((EOFError, ConnectionResetError)):
            read_message(s)
        self.assertIn("unknown trial 987654", c.log_text())


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[3:], verbosity=2)
