#!/usr/bin/env python3
"""Specification of nudges (panda mode) with real processes: caviard with one local worker on
loopback ephemeral ports, a temporary SQLite file.

- A running trial nudged twice (learning_rate, then keep_prob) lists both nudges with the epochs
  the worker reported, and its curve's learning_rate column holds the new rate from the first
  nudge's epoch on (the old one just before it): the trial was not restarted.
- `caviar panda SPEC.json` runs one long trial and prints its curve; `caviar nudge` from another
  shell reaches it (and a bad value is refused naming the field); Ctrl-C stops it at its next
  epoch boundary, and it ends completed with its best epoch's metrics and model.
- Each of panda's polls reads only the curve points it has not shown (GET /v1/trials/{id}
  ?curve_after=E, seen through a recording proxy in front of caviard): every point crosses the
  wire once, however long the curve grows, and panda prints each epoch once, in order.
- GET /v1/trials/{id}?curve_after=E answers the points after epoch E, the rest of the trial as
  without it; a value that is not an epoch is refused with 400 naming curve_after.
- A coordinator SIGKILL and restart neither loses a nudge nor applies it twice: a nudge stored
  while its worker was frozen reaches it after the restart (the worker re-attaches to the same
  attempt), takes effect once, and a later restart does not apply it again.
- A trial that runs again from epoch 1 after a lost lease gets its nudges again, each taking
  effect at the epoch it took effect at before: the re-run's curve changes rate at that epoch.
- A bad nudge is refused with 400 naming the field; a field that cannot change mid-training is
  refused with the list of those that can; a nudge of a trial that is not running is 409.

Usage: test_nudge.py BUILD_DIR SOURCE_ROOT"""

import contextlib
import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, CoordinatorChecks, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


class RecordingProxy:
    """An HTTP proxy on a loopback ephemeral port in front of the coordinator at port: forwards
    each request as it is and records (method, path, status, reply body) of each answer."""

    def __init__(self, port):
        self.answers = []
        lock = threading.Lock()
        answers = self.answers

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() in ("content-type", "authorization")}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    r = upstream.getresponse()
                    data = r.read()
                    status, ctype = r.status, r.getheader("Content-Type", "application/json")
                finally:
                    upstream.close()
                with lock:
                    answers.append((self.command, self.path, status, data))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class NudgeTest(CoordinatorChecks, unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.c = Coordinator(BUILD, workers=1).start()
        self.csv = os.path.join(self.c.dir, "moons.csv")
        write_moons(self.csv, n=3000)

    def start_long_trial(self):
        """Submits a job of one long trial (nothing to search); returns (job id, trial id) once
        the trial has run two epochs."""
        job = {"name": "panda",
               "trial": {"dataset": {"format": "csv", "csv": self.csv, "label_column": "label"},
                         "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 100000,
                         "hidden_units": [128, 128], "keep_prob": 0.8,
                         "learning_rate": 0.001, "batch_size": 16},
               "space": {}, "budget": {"max_trials": 1, "max_parallel": 1}, "seed": 3}
        status, reply = self.c.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, reply)
        job_id = reply["id"]
        trial_id = self.wait_for("the trial to run", lambda: next(
            (t["id"] for t in self.c.request("GET", f"/v1/jobs/{job_id}/trials")[1]["trials"]
             if t["status"] == "running"), None))
        self.wait_for("two epochs", lambda: len(self.trial(trial_id)["curve"]) >= 2)
        return job_id, trial_id

    def restart_coordinator(self):
        """SIGKILLs caviard and starts it again on the same database and worker port."""
        self.assertEqual(self.c.stop(signal.SIGKILL), -signal.SIGKILL)
        self.c.extra += ["--worker-listen", f"127.0.0.1:{self.c.worker_port}"]
        self.c.start()

    def test_a_nudge_survives_coordinator_restarts_and_takes_effect_once(self):
        self.c.close()
        self.c = Coordinator(BUILD, workers=0, extra=["--heartbeat-seconds", "0.3"]).start()
        self.csv = os.path.join(self.c.dir, "moons.csv")
        write_moons(self.csv, n=3000)
        worker = self.start_worker("w1")
        job_id, trial_id = self.start_long_trial()

        worker.send_signal(signal.SIGSTOP)  # the nudge cannot reach it before the kill
        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"learning_rate": 3e-4})
        self.assertEqual((status, reply["seq"]), (200, 1), reply)
        self.restart_coordinator()
        worker.send_signal(signal.SIGCONT)
        epoch = self.wait_for("the nudge to take effect after the restart", lambda: self.trial(
            trial_id)["nudges"][0]["epoch"])
        self.wait_for("epochs after the nudge", lambda: max(
            p["epoch"] for p in self.trial(trial_id)["curve"]) > epoch + 2)

        self.restart_coordinator()
        self.wait_for("the worker to re-attach", lambda: any(
            w.get("trial_id") == trial_id for w in self.c.request("GET", "/v1/workers")[1][
                "workers"]))
        before = max(p["epoch"] for p in self.trial(trial_id)["curve"])
        body = self.wait_for("more epochs after the second restart", lambda: (
            lambda b: b if max(p["epoch"] for p in b["curve"]) > before + 2 else None)(
                self.trial(trial_id)))
        self.assertEqual([(n["seq"], n["epoch"]) for n in body["nudges"]], [(1, epoch)])
        self.assertEqual(body["attempts"], 1)  # re-attached: never restarted
        for p in body["curve"]:
            want = 3e-4 if p["epoch"] >= epoch else 0.001
            self.assertAlmostEqual(p["learning_rate"], want, places=9, msg=f"epoch {p['epoch']}")
        log = self.worker_log("w1")
        self.assertEqual(log.count(f"trial {trial_id}: nudge 1 took effect"), 1, log)
        self.assertEqual(log.count(f"trial {trial_id}: nudge 1 received"), 1, log)
        status, _ = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual(status, 200)

    def test_a_rerun_after_a_lost_lease_takes_the_nudges_at_their_epochs(self):
        self.c.close()
        self.c = Coordinator(BUILD, workers=0, extra=["--lease-seconds", "2",
                                                      "--heartbeat-seconds", "0.3"]).start()
        self.csv = os.path.join(self.c.dir, "moons.csv")
        write_moons(self.csv, n=3000)
        first = self.start_worker("w1")
        job_id, trial_id = self.start_long_trial()
        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"learning_rate": 3e-4})
        self.assertEqual(status, 200, reply)
        epoch = self.wait_for("the nudge to take effect", lambda: self.trial(
            trial_id)["nudges"][0]["epoch"])

        first.send_signal(signal.SIGSTOP)  # silent: its lease runs out
        self.wait_for("the lease to be lost", lambda: self.trial(trial_id)["status"] == "queued")
        self.start_worker("w2")
        body = self.wait_for("the re-run to pass the nudge's epoch", lambda: (
            lambda b: b if b["attempts"] == 2 and b["curve"] and max(
                p["epoch"] for p in b["curve"]) > epoch + 2 else None)(self.trial(trial_id)))
        self.assertEqual([(n["seq"], n["epoch"]) for n in body["nudges"]], [(1, epoch)])
        epochs = [p["epoch"] for p in body["curve"]]
        self.assertEqual(epochs[0], 1)  # the curve is the re-run's, from epoch 1
        self.assertIn(epoch - 1, epochs)
        self.assertIn(epoch, epochs)
        for p in body["curve"]:
            want = 3e-4 if p["epoch"] >= epoch else 0.001
            self.assertAlmostEqual(p["learning_rate"], want, places=9, msg=f"epoch {p['epoch']}")
        self.assertIn(f"trial {trial_id}: nudge 1 took effect at epoch {epoch}",
                      self.worker_log("w2"))
        status, _ = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual(status, 200)

    def test_a_running_trial_takes_nudges_at_the_epochs_it_reports(self):
        job_id, trial_id = self.start_long_trial()

        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"learning_rate": 3e-4})
        self.assertEqual((status, reply["seq"]), (200, 1), reply)
        first = self.wait_for("the first nudge to take effect", lambda: self.trial(
            trial_id)["nudges"][0]["epoch"])
        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"keep_prob": 0.9})
        self.assertEqual((status, reply["seq"]), (200, 2), reply)
        second = self.wait_for("the second nudge to take effect", lambda: self.trial(
            trial_id)["nudges"][1]["epoch"])
        self.assertGreaterEqual(second, first)

        body = self.wait_for("the curve to pass the second nudge", lambda: (
            lambda b: b if len(b["curve"]) > second else None)(self.trial(trial_id)))
        nudges = body["nudges"]
        self.assertEqual([(n["seq"], n["values"]) for n in nudges],
                         [(1, {"learning_rate": 3e-4}), (2, {"keep_prob": 0.9})])
        self.assertGreater(first, 2)
        epochs = [p["epoch"] for p in body["curve"]]
        self.assertEqual(epochs, sorted(set(epochs)))  # one run from epoch 1: no restart
        self.assertEqual(body["attempts"], 1)
        for p in body["curve"]:
            want = 3e-4 if p["epoch"] >= first else 0.001
            self.assertAlmostEqual(p["learning_rate"], want, places=9, msg=f"epoch {p['epoch']}")
        self.assertIn(first - 1, epochs)
        self.assertIn(first, epochs)

        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"learning_rate": -1})
        self.assertEqual(status, 400)
        self.assertEqual(reply["error"], "learning_rate: must be in (0, 10], got -1")
        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"hidden_units": 3})
        self.assertEqual(status, 400)
        self.assertTrue(reply["error"].startswith("hidden_units: cannot be nudged; nudgeable: "
                                                  "learning_rate, "), reply)
        self.assertEqual(len(self.trial(trial_id)["nudges"]), 2)  # refused ones are not stored

        status, _ = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual(status, 200)
        status, reply = self.c.request("POST", f"/v1/trials/{trial_id}/nudge",
                                       {"learning_rate": 1e-4})
        self.assertEqual(status, 409, reply)
        self.assertIn("only a running trial can be nudged", reply["error"])


    @contextlib.contextmanager
    def panda(self, url, interval):
        """Runs `caviar --server url panda` on a trial spec of 100000 epochs polling every
        interval seconds; yields (the process, the lines it has printed so far, a list that
        grows, its trial id) and ends it on the way out."""
        spec_path = os.path.join(self.c.dir, "panda.json")
        with open(spec_path, "w") as f:
            json.dump({"dataset": {"format": "csv", "csv": "moons.csv", "label_column": "label"},
                       "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": 100000,
                       "hidden_units": 16, "learning_rate": 0.001, "batch_size": 32}, f)
        proc = subprocess.Popen([os.path.join(BUILD, "client", "caviar"), "--server", url,
                                 "panda", spec_path, "--interval", str(interval)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        try:
            head = self.wait_for("panda's first line", lambda: next(
                (line for line in list(lines) if line.startswith("panda: job")), None))
            yield proc, lines, int(head.split("trial ")[1].split(".")[0])
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(10)
            proc.stdout.close()
            proc.stderr.close()

    def interrupt(self, proc):
        """Ctrl-C: panda stops its trial at its next epoch boundary and exits 0 once the trial
        has completed."""
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(60), 0, proc.stderr.read())

    def test_panda_runs_one_trial_that_nudge_steers_and_ctrl_c_stops(self):
        caviar = os.path.join(BUILD, "client", "caviar")
        url = f"http://127.0.0.1:{self.c.port}"
        with self.panda(url, 0.1) as (panda, lines, trial_id):
            self.wait_for("three epochs shown", lambda: sum(
                line.startswith("epoch ") for line in list(lines)) >= 3)

            bad = subprocess.run([caviar, "--server", url, "nudge", str(trial_id),
                                  "learning_rate=-1"], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 1, bad)
            self.assertIn("learning_rate: must be in (0, 10], got -1", bad.stderr)
            usage = subprocess.run([caviar, "--server", url, "nudge", str(trial_id),
                                    "learning_rate"], capture_output=True, text=True)
            self.assertEqual(usage.returncode, 2, usage)
            self.assertIn("\"learning_rate\": expected FIELD=VALUE", usage.stderr)
            good = subprocess.run([caviar, "--server", url, "nudge", str(trial_id),
                                   "learning_rate=3e-4"], capture_output=True, text=True)
            self.assertEqual(good.returncode, 0, good)
            self.assertIn(f"trial {trial_id}: nudge 1 sent", good.stdout)
            shown = self.wait_for("the nudge shown", lambda: next(
                (line for line in list(lines) if line.startswith("nudge 1 took effect")), None))
            epoch = int(shown.split("epoch ")[1].split(":")[0])
            self.assertIn('{"learning_rate":0.0003}', shown)
            self.interrupt(panda)
        body = self.trial(trial_id)
        self.assertEqual(body["status"], "completed")
        self.assertGreaterEqual(body["epochs_run"], epoch)
        best = min(body["curve"], key=lambda p: (p["dev_cost"], p["epoch"]))
        self.assertEqual(body["best_epoch"], best["epoch"])
        self.assertAlmostEqual(body["dev_cost"], best["dev_cost"], places=9)
        self.assertTrue(body["model_path"], body)
        self.assertEqual([n["epoch"] for n in body["nudges"]][0], epoch)
        self.assertTrue(any(line.startswith(f"trial {trial_id} completed after ")
                            for line in lines), lines)
        late = subprocess.run([caviar, "--server", url, "nudge", str(trial_id),
                               "learning_rate=1e-4"], capture_output=True, text=True)
        self.assertEqual(late.returncode, 1, late)
        self.assertIn(f"trial {trial_id} is completed: only a running trial can be nudged "
                      "(HTTP 409)", late.stderr)
        shown = subprocess.run([caviar, "--server", url, "trial", str(trial_id)],
                               capture_output=True, text=True)
        self.assertEqual(shown.returncode, 0, shown)
        self.assertIn(f"nudges\n  1 at epoch {epoch}  {{\"learning_rate\":0.0003}}\n",
                      shown.stdout)

    def test_each_panda_poll_reads_only_the_curve_points_it_has_not_shown(self):
        proxy = RecordingProxy(self.c.port)

        def trial_reads():
            """The curves of the trial reads answered so far, in order."""
            return [json.loads(body)["curve"] for method, path, status, body in
                    list(proxy.answers) if method == "GET" and status == 200 and
                    path.startswith("/v1/trials/")]

        try:
            with self.panda(f"http://127.0.0.1:{proxy.port}", 0.05) as (panda, lines, trial_id):
                # Enough polls bringing new points for the curve to have grown between them.
                self.wait_for("five polls with new epochs", lambda: sum(
                    1 for curve in trial_reads() if curve) >= 5, timeout=60)
                self.interrupt(panda)
        finally:
            proxy.close()

        epochs = [p["epoch"] for curve in trial_reads() for p in curve]
        self.assertEqual(epochs, sorted(set(epochs)), "a curve point was read twice")
        reads = [path for method, path, _, _ in proxy.answers
                 if method == "GET" and path.startswith("/v1/trials/")]
        self.assertTrue(all(path.startswith(f"/v1/trials/{trial_id}?curve_after=")
                            for path in reads), reads)
        body = self.trial(trial_id)
        self.assertEqual(body["status"], "completed")
        self.assertEqual(epochs, [p["epoch"] for p in body["curve"]])
        shown = [int(line.split()[1]) for line in lines if line.startswith("epoch ")]
        self.assertEqual(shown, epochs)
        self.assertTrue(lines[-1].startswith(f"trial {trial_id} completed after "), lines)

    def test_a_trial_read_after_an_epoch_holds_only_the_later_points(self):
        job_id, trial_id = self.start_long_trial()
        status, _ = self.c.request("POST", f"/v1/jobs/{job_id}/cancel")
        self.assertEqual(status, 200)
        whole = self.trial(trial_id)
        last = whole["curve"][-1]["epoch"]
        self.assertGreaterEqual(last, 2)
        for after in (0, 1, last - 1, last, last + 5):
            status, part = self.c.request("GET", f"/v1/trials/{trial_id}?curve_after={after}")
            self.assertEqual(status, 200, part)
            self.assertEqual(part["curve"], [p for p in whole["curve"] if p["epoch"] > after])
            self.assertEqual({k: v for k, v in part.items() if k != "curve"},
                             {k: v for k, v in whole.items() if k != "curve"})
        for bad in ("-1", "x", "1.5", "", "100001"):
            status, reply = self.c.request("GET", f"/v1/trials/{trial_id}?curve_after={bad}")
            self.assertEqual(status, 400, reply)
            self.assertEqual(reply["error"], "curve_after: must be an epoch, an integer in "
                             f"[0, 100000], got \"{bad}\"")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
