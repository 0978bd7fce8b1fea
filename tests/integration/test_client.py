#!/usr/bin/env python3
"""Specification of the `caviar` command-line client against a fake coordinator: a small
http.server on a loopback ephemeral port that gives canned answers in the shapes of
schemas/api.md and records every request. The client must send what the API asks for, render
what the server says, print the server's error message on an error status (exit 1), explain an
unreachable server (exit 1) and refuse bad usage (exit 2). `caviar run` is driven end to end
against a fake caviard (this file, started with --fake-caviard) that implements the flags the
real daemon takes.

Usage: test_client.py CAVIAR [SOURCE_ROOT]
       test_client.py --fake-caviard [caviard flags]   (used by the tests themselves)"""

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CAVIAR = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/client/caviar"
ROOT = (os.path.abspath(sys.argv[2]) if len(sys.argv) > 2
        else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SMALL = os.path.join(ROOT, "examples", "small.json")

# ---- Canned API answers --------------------------------------------------------------------

SPACE = {
    "learning_rate": {"type": "float", "scale": "log", "min": 1e-3, "max": 1e-1},
    "hidden_units": {"type": "int", "scale": "power_of_two", "min": 4, "max": 32},
    "activation": {"type": "categorical", "values": ["relu", "tanh"]},
}
SPEC = {"name": "moons-small", "trial": {"dataset": {"format": "csv", "csv": "m.csv"}},
        "space": SPACE, "budget": {"max_trials": 8, "max_parallel": 2},
        "refine": {"rounds": [4, 2, 2]}, "objective": "dev_error", "seed": 7}


def trial(tid, number, rnd, status, dev_error, lr, units, act, **extra):
    t = {"id": tid, "job_id": 7, "number": number, "round": rnd, "status": status,
         "attempts": 1, "params": {"learning_rate": lr, "hidden_units": units, "activation": act},
         "worker_id": "w-1", "queued_at": 1700000000.0, "started_at": 1700000001.0,
         "finished_at": 1700000009.0, "dev_error": dev_error,
         "dev_cost": None if dev_error is None else dev_error * 3,
         "train_error": None if dev_error is None else dev_error / 2,
         "train_cost": 0.2, "train_cost_reg": 0.21, "best_epoch": 11, "epochs_run": 14,
         "diagnosis": {"name": "high_variance", "avoidable_bias": 0.01, "variance": 0.06,
                       "remedy": "more data, regularization or dropout"},
         "examples_per_second": 51234.5, "error": None, "model_path": None}
    t.update(extra)
    return t


TRIALS = [
    trial(101, 0, 1, "completed", 0.0425, 0.0123456789, 16, "tanh"),
    trial(102, 1, 1, "completed", 0.0975, 0.00234, 8, "relu"),
    trial(103, 2, 1, "failed", None, 0.0871, 32, "relu", diagnosis=None,
          error="dataset: cannot open m.csv", epochs_run=None, best_epoch=None),
    trial(104, 3, 2, "completed", 0.0512, 0.0155, 16, "tanh, \"quoted\""),
]
BEST = [TRIALS[0], TRIALS[3], TRIALS[1]]


def job_detail(status, completed):
    return {"id": 7, "name": "moons-small", "objective": "dev_error", "status": status,
            "round": 2, "created_at": 1700000000.0,
            "finished_at": None if status == "running" else 1700000100.0, "error": None,
            "spec": SPEC, "max_trials": 8, "running": 0 if status != "running" else 2,
            "rounds_planned": 3,
            "region": {"learning_rate": {"min": 0.005, "max": 0.04},
                       "hidden_units": {"min": 8, "max": 32},
                       "activation": {"weights": {"relu": 0.25, "tanh": 0.75}}},
            "counts": {"queued": 1, "running": 2 if status == "running" else 0,
                       "completed": completed, "failed": 1, "diverged": 0, "lost": 0,
                       "cancelled": 0, "pruned": 0},
            "rounds": [{"round": 1, "size": 4, "region": {}}, {"round": 2, "size": 2,
                                                              "region": {}}],
            "best": TRIALS[0], "test_result": None,
            "quarantined_workers": [{"worker_id": "w-2"}]}


CURVE = [{"epoch": e, "train_cost": 0.9 - e * 0.05, "train_cost_reg": 0.95 - e * 0.05,
          "dev_cost": 0.8 - e * 0.03, "train_error": 0.3 - e * 0.015,
          "dev_error": 0.31 - e * 0.012 if e <= 11 else 0.2 + e * 0.01,
          "learning_rate": 0.0123, "seconds": 0.25} for e in range(14)]

EVALUATION = {"test_accuracy": 0.9475, "test_error": 0.0525, "test_cost": 0.1402,
              "examples": 200, "trials": [101, 104, 102]}

WORKERS = [{"id": "w-1", "version": "0.1.0", "threads": 4, "host": "node-a",
            "first_seen": 1700000000.0, "last_seen": 1700000050.0, "trials_done": 12,
            "consecutive_failures": 0, "quarantined": 0, "connected": True, "state": "running",
            "trial_id": 104, "job_id": 7},
           {"id": "w-2", "version": "0.1.0", "threads": 2, "host": "node-b",
            "first_seen": 1700000000.0, "last_seen": 1700000040.0, "trials_done": 3,
            "consecutive_failures": 3, "quarantined": 1, "connected": True,
            "state": "quarantined", "trial_id": None, "job_id": None},
           {"id": "w-3", "version": "0.1.0", "threads": 1, "host": "node-c",
            "first_seen": 1700000000.0, "last_seen": 1700000030.0, "trials_done": 0,
            "consecutive_failures": 0, "quarantined": 0, "connected": False,
            "state": "disconnected", "trial_id": None, "job_id": None}]


class FakeState:
    """What the fake coordinator remembers: the requests it saw and how far job 7 got."""

    def __init__(self, polls_until_done=2, final_status="completed"):
        self.requests = []
        self.polls = 0
        self.polls_until_done = polls_until_done  # None: job 7 runs for ever
        self.final_status = final_status
        self.created_at = None  # job 7's created_at when set, else the canned one
        self.pruned = 0  # job 7's pruned trials
        self.lock = threading.Lock()


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, obj=None, raw=None):
            data = raw if raw is not None else json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def record(self, body):
            with state.lock:
                state.requests.append({"method": self.command, "path": self.path,
                                       "body": body, "headers": dict(self.headers)})

        def do_GET(self):
            self.record(None)
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            p = url.path
            if p == "/v1/health":
                return self.answer(200, {"status": "ok", "version": "0.1.0"})
            if p == "/v1/jobs":
                return self.answer(200, {"jobs": [
                    {"id": 7, "name": "moons-small", "objective": "dev_error",
                     "status": "running", "round": 2, "created_at": 1700000000.0,
                     "finished_at": None, "error": None},
                    {"id": 8, "name": "second-search", "objective": "dev_error",
                     "status": "cancelled", "round": 1, "created_at": 1700000200.0,
                     "finished_at": 1700000300.0, "error": None}]})
            if p == "/v1/jobs/7":
                with state.lock:
                    state.polls += 1
                    done = (state.polls_until_done is not None
                            and state.polls > state.polls_until_done)
                    completed = min(state.polls, 3)
                detail = job_detail(state.final_status if done else "running", completed)
                if state.created_at is not None:
                    detail["created_at"] = state.created_at
                detail["counts"]["pruned"] = state.pruned
                return self.answer(200, detail)
            if p == "/v1/jobs/8":
                d = job_detail("cancelled", 0)
                # No refine.rounds: only rounds_planned tells how many rounds the job has.
                d.update(id=8, name="second-search", best=None, round=1,
                         spec={k: v for k, v in SPEC.items() if k != "refine"})
                return self.answer(200, d)
            if p == "/v1/jobs/7/trials":
                order, limit = q.get("order", "number"), int(q.get("limit", "0"))
                rows = BEST if order == "best" else TRIALS
                return self.answer(200, {"trials": rows[:limit] if limit > 0 else rows})
            if p == "/v1/trials/101":
                return self.answer(200, dict(TRIALS[0], spec={}, config_key="k", curve=CURVE))
            if p == "/v1/workers":
                return self.answer(200, {"workers": WORKERS})
            if p == "/v1/jobs/500":
                return self.answer(500, raw=b"<html>internal trouble</html>")
            return self.answer(404, {"error": f"no such resource: {p}"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n) if n else b""
            self.record(body)
            p = urlparse(self.path).path
            if p == "/v1/jobs":
                spec = json.loads(body)
                if spec.get("name") == "bad":
                    return self.answer(400, {"error": "budget.max_trials: must be an integer "
                                                      ">= 1, got 0"})
                return self.answer(201, {"id": 7, "job": job_detail("running", 0)})
            if p == "/v1/jobs/7/cancel":
                with state.lock:
                    state.final_status, state.polls_until_done = "cancelled", 0
                return self.answer(200, {"id": 7, "status": "cancelled", "trials_cancelled": 3})
            if p == "/v1/jobs/8/cancel":
                return self.answer(409, {"error": "job 8 is no longer running (cancelled)"})
            if p == "/v1/jobs/7/evaluate":
                return self.answer(200, EVALUATION)
            return self.answer(404, {"error": f"no such resource: {p}"})

    return Handler


def start_fake(state, port=0):
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
           and not k.startswith("CAVIAR_")}
    env.update(extra)
    return env


def run(*args, env=None, timeout=60):
    p = subprocess.run([CAVIAR, *args], capture_output=True, text=True, timeout=timeout,
                       env=env or clean_env())
    assert_clean(p.stderr)
    return p.returncode, p.stdout, p.stderr


def assert_clean(stderr):
    """No sanitizer report (the sanitizer build runs these tests too)."""
    if "Sanitizer" in stderr or "runtime error" in stderr:
        raise AssertionError("sanitizer report:\n" + stderr)


def free_port():
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Base(unittest.TestCase):
    polls_until_done = 2

    def setUp(self):
        self.state = FakeState(self.polls_until_done)
        self.server = start_fake(self.state)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.tmp.cleanup()

    def caviar(self, *args, **kw):
        code, out, err = run("--server", self.url, *args, **kw)
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        return code, out, err

    def ok(self, *args, **kw):
        code, out, err = self.caviar(*args, **kw)
        self.assertEqual(code, 0, f"stdout: {out}\nstderr: {err}")
        return out

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write_json(self, name, obj):
        with open(self.path(name), "w") as f:
            json.dump(obj, f)
        return self.path(name)

    def requests(self, method=None, path_prefix=""):
        return [r for r in self.state.requests
                if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)]


class Submit(Base):
    def test_posts_the_file_and_prints_the_id(self):
        out = self.ok("submit", SMALL)
        self.assertEqual(out.strip(), "7")
        posts = self.requests("POST", "/v1/jobs")
        self.assertEqual(len(posts), 1)
        with open(SMALL) as f:
            expected = json.load(f)
        # The dataset path, relative to the spec file, is sent absolute; nothing else changes.
        expected["trial"]["dataset"]["csv"] = os.path.join(
            os.path.realpath(os.path.dirname(SMALL)), "data", "moons.csv")
        self.assertEqual(json.loads(posts[0]["body"]), expected)
        self.assertEqual(posts[0]["headers"].get("Content-Type"), "application/json")

    def test_token_sent_as_bearer_from_option_and_environment(self):
        self.ok("--token", "s3cret", "submit", SMALL)
        self.assertEqual(self.requests("POST")[-1]["headers"].get("Authorization"),
                         "Bearer s3cret")
        code, out, err = run("submit", SMALL,
                             env=clean_env(CAVIAR_SERVER=self.url, CAVIAR_TOKEN="from-env"))
        self.assertEqual(code, 0, err)
        self.assertEqual(self.requests("POST")[-1]["headers"].get("Authorization"),
                         "Bearer from-env")

    def test_no_token_no_authorization_header(self):
        self.ok("submit", SMALL)
        self.assertNotIn("Authorization", self.requests("POST")[-1]["headers"])

    def test_server_400_prints_its_message_and_exits_1(self):
        spec = self.write_json("bad.json", dict(SPEC, name="bad"))
        code, out, err = self.caviar("submit", spec)
        self.assertEqual(code, 1)
        self.assertIn("budget.max_trials: must be an integer >= 1, got 0", err)
        self.assertEqual(out, "")

    def test_missing_file_exits_1_naming_it(self):
        code, _, err = self.caviar("submit", self.path("nope.json"))
        self.assertEqual(code, 1)
        self.assertIn("nope.json", err)
        self.assertEqual(self.requests("POST"), [])

    def test_malformed_file_refused_before_sending(self):
        with open(self.path("broken.json"), "w") as f:
            f.write('{"name": "x",\n  "space": }')
        code, _, err = self.caviar("submit", self.path("broken.json"))
        self.assertEqual(code, 1)
        self.assertIn("broken.json", err)
        self.assertIn("line 2", err)
        self.assertEqual(self.requests("POST"), [])

    def test_submit_watch_follows_the_job_to_completion(self):
        out = self.ok("submit", SMALL, "--watch", "--interval", "0.05")
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "7")
        self.assertIn("completed", lines[-1])

    def test_json_prints_the_raw_answer(self):
        out = self.ok("--json", "submit", SMALL)
        self.assertEqual(json.loads(out)["id"], 7)


class Status(Base):
    def test_job_list_has_one_row_per_job_with_counts_and_best(self):
        out = self.ok("status")
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 3)
        for word in ("ID", "NAME", "STATUS", "BEST"):
            self.assertIn(word, lines[0])
        self.assertIn("moons-small", lines[1])
        self.assertIn("running", lines[1])
        self.assertIn("0.0425", lines[1])   # best dev_error
        self.assertIn("1/8", lines[1])      # completed / max_trials
        self.assertIn("second-search", lines[2])
        self.assertIn("cancelled", lines[2])
        # Rounds count from 1 as the API sends them; the total comes from rounds_planned when
        # the spec gives no refine.rounds.
        self.assertEqual(lines[1].split()[3], "2/3")
        self.assertEqual(lines[2].split()[3], "1/3")

    def test_pruned_trials_are_counted_apart_and_finish_the_budget(self):
        self.state.pruned = 2
        out = self.ok("status", "7")
        self.assertIn("1 completed, 2 pruned, 1 failed", out)
        self.state.polls = 0
        self.state.created_at = time.time() - 60
        out = self.ok("watch", "7", "--interval", "0.05")
        first = out.strip().split("\n")[0]
        self.assertIn("  2 pruned  1 failed", first)
        # 4 of 8 finished (1 completed, 2 pruned, 1 failed) in a minute: 4 more take 1 min.
        self.assertRegex(first, r"  about 6\d s left$")

    def test_one_job_in_detail(self):
        out = self.ok("status", "7")
        self.assertIn("job 7: moons-small", out)
        self.assertIn("dev_error", out)
        self.assertIn("1 completed", out)
        self.assertIn("2 running", out)
        self.assertIn("(max 8)", out)
        self.assertIn("round      2/3", out)
        self.assertIn("quarantine w-2 (they get no trials", out)
        self.assertIn("learning_rate [0.005, 0.04]", out)
        self.assertIn("activation {relu 0.25, tanh 0.75}", out)
        self.assertIn("trial 101", out)
        self.assertIn("0.0425", out)
        self.assertIn("high_variance", out)

    def test_unknown_job_prints_server_message(self):
        code, _, err = self.caviar("status", "99")
        self.assertEqual(code, 1)
        self.assertIn("no such resource: /v1/jobs/99", err)

    def test_non_json_error_answer_names_the_status(self):
        code, _, err = self.caviar("status", "500")
        self.assertEqual(code, 1)
        self.assertIn("500", err)

    def test_json_is_the_server_answer(self):
        out = self.ok("--json", "status", "7")
        self.assertEqual(json.loads(out)["name"], "moons-small")
        out = self.ok("status", "--json")
        self.assertEqual([j["id"] for j in json.loads(out)["jobs"]], [7, 8])


class Trials(Base):
    def test_best_asks_for_top_k_and_renders_the_table(self):
        out = self.ok("best", "7", "-k", "3")
        self.assertTrue(any("order=best" in r["path"] and "limit=3" in r["path"]
                            for r in self.requests("GET", "/v1/jobs/7/trials")))
        lines = [ln for ln in out.strip().split("\n") if ln.strip()]
        header = lines[1]
        for word in ("RANK", "TRIAL", "OBJECTIVE", "DEV_ERROR", "DEV_COST", "TRAIN_ERROR",
                     "EPOCHS", "DIAGNOSIS", "learning_rate", "hidden_units", "activation"):
            self.assertIn(word, header)
        rows = lines[2:]
        self.assertEqual(len(rows), 3)
        self.assertEqual(rows[0].split()[:3], ["1", "101", "0.0425"])
        self.assertEqual(rows[1].split()[:3], ["2", "104", "0.0512"])
        self.assertIn("0.01235", rows[0])   # learning_rate to 4 significant digits
        self.assertIn("high_variance", rows[0])
        self.assertIn("14", rows[0])        # epochs run

    def test_best_default_k_is_5(self):
        self.ok("best", "7")
        self.assertTrue(any("limit=5" in r["path"]
                            for r in self.requests("GET", "/v1/jobs/7/trials")))

    def test_trials_in_number_order_with_limit(self):
        out = self.ok("trials", "7", "--order", "number", "--limit", "10")
        self.assertTrue(any("order=number" in r["path"] and "limit=10" in r["path"]
                            for r in self.requests("GET", "/v1/jobs/7/trials")))
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 1 + len(TRIALS))
        self.assertIn("STATUS", lines[0])
        self.assertIn("failed", lines[3])
        self.assertIn("103", lines[3])
        self.assertEqual(lines[1].split()[:3], ["101", "0", "1"])  # TRIAL NUMBER ROUND
        self.assertEqual(lines[4].split()[:3], ["104", "3", "2"])

    def test_one_trial_with_params_metrics_diagnosis_and_curve(self):
        out = self.ok("trial", "101")
        self.assertIn("trial 101 (job 7, number 0, round 1): completed", out)
        self.assertIn("0.0123456789", out)  # params are shown exactly
        self.assertIn("hidden_units", out)
        self.assertIn("dev_error", out)
        self.assertIn("0.0425", out)
        self.assertIn("51234.5", out)
        self.assertIn("high_variance", out)
        self.assertIn("more data, regularization or dropout", out)
        self.assertIn("EPOCH", out)
        self.assertIn("*11", out)           # the best epoch is marked
        curve_rows = out.split("EPOCH")[1].strip().split("\n")[1:]
        self.assertEqual(len(curve_rows), 14)

    def test_json_trials(self):
        out = self.ok("--json", "best", "7", "-k", "2")
        self.assertEqual([t["id"] for t in json.loads(out)["trials"]], [101, 104])


class WatchCancelEvaluate(Base):
    def test_watch_prints_one_line_per_change_and_exits_0_when_completed(self):
        out = self.ok("watch", "7", "--interval", "0.05")
        lines = out.strip().split("\n")
        self.assertGreaterEqual(len(lines), 2)
        self.assertEqual(len(lines), len(set(lines)))   # no repeated lines when not a TTY
        self.assertIn("running", lines[0])
        self.assertIn("round 2/3", lines[0])
        self.assertIn("/8 completed", lines[0])
        self.assertIn("best dev_error 0.0425 (trial 101)", lines[0])
        self.assertIn("completed", lines[-1])
        self.assertNotIn("\r", out)

    def test_watch_estimates_the_time_left_from_the_finished_trials(self):
        # Created a minute ago with 2 of 8 trials finished (1 completed, 1 failed): 6 more take
        # 3 minutes at that rate; then 3 finished: 5 more take 100 s.
        self.state.created_at = time.time() - 60
        out = self.ok("watch", "7", "--interval", "0.05")
        lines = out.strip().split("\n")
        self.assertTrue(lines[0].endswith("  about 3 min left"), lines[0])
        self.assertTrue(lines[1].endswith("  about 2 min left"), lines[1])
        self.assertIn("completed", lines[-1])
        self.assertNotIn("left", lines[-1])

    def test_watch_json_prints_one_answer_per_change(self):
        self.state.polls_until_done = 5   # polls 3 to 5 give the same answer
        out = self.ok("--json", "watch", "7", "--interval", "0.05")
        answers = [json.loads(line) for line in out.strip().split("\n")]
        self.assertEqual(len(answers), len({json.dumps(a) for a in answers}))
        self.assertEqual(answers[-1]["status"], "completed")
        self.assertEqual(len(answers), 4)   # of 6 polls: unchanged answers are not repeated
        self.assertEqual(self.state.polls, 6)

    def test_watch_exits_1_when_the_job_did_not_complete(self):
        self.state.final_status = "cancelled"
        code, out, err = self.caviar("watch", "7", "--interval", "0.05")
        self.assertEqual(code, 1)
        self.assertIn("cancelled", err)

    def test_cancel(self):
        out = self.ok("cancel", "7")
        self.assertIn("job 7 cancelled", out)
        self.assertIn("3 trials", out)
        self.assertEqual(len(self.requests("POST", "/v1/jobs/7/cancel")), 1)

    def test_cancel_conflict_prints_server_message(self):
        code, _, err = self.caviar("cancel", "8")
        self.assertEqual(code, 1)
        self.assertIn("job 8 is no longer running", err)

    def test_evaluate_sends_the_ensemble_size_and_prints_accuracy(self):
        out = self.ok("evaluate", "7", "--ensemble", "3")
        post = self.requests("POST", "/v1/jobs/7/evaluate")[-1]
        self.assertEqual(json.loads(post["body"]), {"ensemble": 3})
        self.assertIn("test accuracy 0.9475", out)
        self.assertIn("101, 104, 102", out)

    def test_evaluate_without_ensemble_asks_for_no_size(self):
        # The server then answers with what the job was scored with, or the best trial alone.
        self.ok("evaluate", "7")
        post = self.requests("POST", "/v1/jobs/7/evaluate")[-1]
        self.assertEqual(post["body"], b"")


class Export(Base):
    def check_csv(self, text):
        rows = list(csv.reader(io.StringIO(text)))
        header, body = rows[0], rows[1:]
        self.assertEqual(header[:5], ["id", "number", "round", "status", "attempts"])
        for name in SPACE:
            self.assertEqual(header.count(name), 1, header)
        for metric in ("dev_error", "dev_cost", "train_error", "epochs_run", "diagnosis"):
            self.assertIn(metric, header)
        self.assertEqual(len(body), len(TRIALS))
        for row, t in zip(body, TRIALS):
            self.assertEqual(len(row), len(header))
            rec = dict(zip(header, row))
            self.assertEqual(int(rec["id"]), t["id"])
            self.assertEqual(rec["status"], t["status"])
            for name, value in t["params"].items():
                if isinstance(value, str):
                    self.assertEqual(rec[name], value)
                else:
                    self.assertEqual(float(rec[name]), value)   # exact round trip
            if t["dev_error"] is None:
                self.assertEqual(rec["dev_error"], "")
            else:
                self.assertEqual(float(rec["dev_error"]), t["dev_error"])
        self.assertEqual(dict(zip(header, body[2]))["error"], "dataset: cannot open m.csv")
        self.assertEqual(dict(zip(header, body[0]))["diagnosis"], "high_variance")

    def test_csv_to_stdout(self):
        self.check_csv(self.ok("export", "7", "--csv"))

    def test_csv_to_file(self):
        out = self.ok("export", "7", "--csv", "-o", self.path("t.csv"))
        self.assertEqual(out, "")
        with open(self.path("t.csv"), newline="") as f:
            self.check_csv(f.read())

    def test_unwritable_output_exits_1(self):
        code, _, err = self.caviar("export", "7", "--csv", "-o",
                                   self.path("no/such/dir/t.csv"))
        self.assertEqual(code, 1)
        self.assertIn("t.csv", err)


class Workers(Base):
    def test_table_shows_what_each_worker_does(self):
        out = self.ok("workers")
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 4)
        self.assertEqual(lines[0].split()[4:7], ["STATE", "JOB", "TRIAL"])
        self.assertEqual(lines[1].split()[:7], ["w-1", "node-a", "0.1.0", "4", "running", "7",
                                                "104"])
        self.assertEqual(lines[2].split()[4:7], ["quarantined", "-", "-"])
        self.assertEqual(lines[3].split()[4:7], ["disconnected", "-", "-"])


class Failures(Base):
    def test_unreachable_server(self):
        url = f"http://127.0.0.1:{free_port()}"
        code, out, err = run("--server", url, "status")
        self.assertEqual(code, 1)
        self.assertIn("not reachable", err)
        self.assertIn(url, err)

    def test_unreachable_server_from_environment(self):
        url = f"http://127.0.0.1:{free_port()}"
        code, _, err = run("best", "3", env=clean_env(CAVIAR_SERVER=url))
        self.assertEqual(code, 1)
        self.assertIn(url, err)

    def test_bad_usage_exits_2(self):
        cases = [
            [],
            ["frobnicate"],
            ["best"],
            ["best", "abc"],
            ["best", "7", "-k", "0"],
            ["best", "7", "--bogus"],
            ["trials", "7", "--order", "worst"],
            ["trials", "7", "--limit"],
            ["status", "7", "8"],
            ["submit"],
            ["evaluate", "7", "--ensemble", "17"],
            ["watch", "7", "--interval", "fast"],
            ["trial", "-3"],
            ["workers", "extra"],
            ["status", "--server"],
            ["--server", "ftp://example.com", "status"],
        ]
        for args in cases:
            with self.subTest(args=args):
                code, out, err = run(*(["--server", self.url] if args[:1] != ["--server"]
                                       else []), *args)
                self.assertEqual(code, 2, f"{args}: {err}")
                self.assertIn("usage", err)
        self.assertEqual(self.state.requests, [])

    def test_option_errors_name_the_option(self):
        cases = [
            (["best", "7", "-k", "0"], '--top (-k): must be an integer in [1, 100000], got "0"'),
            (["best", "7", "--bogus"], 'unknown option "--bogus"'),
            (["best", "7", "-x"], 'unknown option "-x"'),
            (["trials", "7", "--limit"], "--limit (-n) needs a value"),
            (["submit", SMALL, "--watch=yes"], "--watch (-w) takes no value"),
            (["watch", "7", "--interval", "fast"],
             '--interval (-i): must be a number in [0.05, 3600], got "fast"'),
            (["status", "7", "8"], 'unexpected argument "8"'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                code, out, err = run("--server", self.url, *args)
                self.assertEqual(code, 2, err)
                self.assertIn(f"caviar {args[0]}: {message}\nusage: caviar {args[0]}", err)

    def test_options_follow_getopt_long(self):
        # Options anywhere among the words, "-k5", "--name=value" and unambiguous abbreviations.
        self.ok("best", "-k5", "7")
        self.ok("trials", "7", "--lim=2", "--order", "best")
        paths = [r["path"] for r in self.requests("GET", "/v1/jobs/7/trials")]
        self.assertTrue(any("order=best" in p and "limit=5" in p for p in paths), paths)
        self.assertTrue(any("order=best" in p and "limit=2" in p for p in paths), paths)

    def test_help_exits_0(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("submit", out)
        code, out, _ = run("best", "--help")
        self.assertEqual(code, 0)
        self.assertIn("best JOB", out)


# ---- `caviar run` against a fake caviard ------------------------------------------------------

def fake_caviard_main(args):
    """Behaves like caviard for `caviar run`: takes its flags, listens on the loopback port it is
    given (0: ephemeral), writes the port file once listening, records its arguments beside the
    port file's directory (in $FAKE_CAVIARD_RECORD) and exits 0 on SIGTERM."""
    flags = {}
    it = iter(args)
    for a in it:
        flags[a] = next(it)
    host, port = flags["--listen"].rsplit(":", 1)
    runs_forever = os.environ.get("FAKE_CAVIARD_FOREVER") == "1"
    state = FakeState(None if runs_forever else 2)
    server = start_fake(state, int(port))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: None)  # Ctrl-C is for caviar, not for us
    with open(flags["--port-file"] + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(flags["--port-file"] + ".tmp", flags["--port-file"])
    while not stop.wait(0.05):
        pass
    server.shutdown()
    with open(os.environ["FAKE_CAVIARD_RECORD"], "w") as f:
        json.dump({"args": args, "requests": [(r["method"], r["path"]) for r in state.requests],
                   "sigterm": True}, f)
    return 0


class Run(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.fake = os.path.join(self.tmp.name, "caviard")
        with open(self.fake, "w") as f:
            f.write(f"#!/bin/sh\nexec {sys.executable} {os.path.abspath(__file__)} "
                    f"--fake-caviard \"$@\"\n")
        os.chmod(self.fake, 0o755)
        self.record = os.path.join(self.tmp.name, "record.json")

    def tearDown(self):
        self.tmp.cleanup()

    def env(self, **extra):
        return clean_env(FAKE_CAVIARD_RECORD=self.record, **extra)

    def recorded(self):
        with open(self.record) as f:
            return json.load(f)

    def test_run_submits_watches_reports_evaluates_and_stops_the_daemon(self):
        db = os.path.join(self.tmp.name, "x.db")
        p = subprocess.run([CAVIAR, "run", SMALL, "--caviard", self.fake, "--workers", "3",
                            "--db", db, "--data-dir", os.path.join(self.tmp.name, "data"),
                            "--ensemble", "2", "--interval", "0.05",
                            "--log", os.path.join(self.tmp.name, "caviard.log")],
                           capture_output=True, text=True, timeout=60, env=self.env(),
                           cwd=self.tmp.name)
        assert_clean(p.stderr)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertEqual(out.split("\n")[0], "7")              # the job id
        self.assertIn("RANK", out)                             # the best trials
        self.assertIn("101", out)
        self.assertIn("test accuracy 0.9475", out)
        rec = self.recorded()
        args = rec["args"]
        self.assertEqual(args[args.index("--listen") + 1], "127.0.0.1:0")
        self.assertEqual(args[args.index("--workers") + 1], "3")
        self.assertEqual(args[args.index("--db") + 1], db)
        self.assertIn("--port-file", args)
        self.assertIn("--data-dir", args)
        self.assertTrue(rec["sigterm"])
        paths = [path for _, path in rec["requests"]]
        self.assertIn("/v1/jobs/7/evaluate", paths)
        self.assertTrue(any("order=best" in x and "limit=5" in x for x in paths))
        self.assertFalse(os.path.exists(os.path.dirname(args[args.index("--port-file") + 1])))

    def test_ctrl_c_cancels_the_job_and_stops_the_daemon(self):
        proc = subprocess.Popen([CAVIAR, "run", SMALL, "--caviard", self.fake, "--interval",
                                 "0.05", "--log", os.path.join(self.tmp.name, "caviard.log")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(FAKE_CAVIARD_FOREVER="1"), cwd=self.tmp.name)
        first = proc.stdout.readline()            # the job id: the job is submitted
        self.assertEqual(first.strip(), "7")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert_clean(err)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("cancel", err)
        rec = self.recorded()
        self.assertIn(("POST", "/v1/jobs/7/cancel"), [tuple(r) for r in rec["requests"]])
        self.assertTrue(rec["sigterm"])

    def test_daemon_that_cannot_start_is_reported(self):
        broken = os.path.join(self.tmp.name, "broken")
        with open(broken, "w") as f:
            f.write("#!/bin/sh\necho 'caviard: --db: cannot open' >&2\nexit 3\n")
        os.chmod(broken, 0o755)
        log = os.path.join(self.tmp.name, "caviard.log")
        code, out, err = run("run", SMALL, "--caviard", broken, "--log", log,
                             env=self.env())
        self.assertEqual(code, 1)
        self.assertIn("exited with status 3", err)
        self.assertIn(log, err)
        with open(log) as f:
            self.assertIn("cannot open", f.read())

    def test_missing_caviard_is_reported(self):
        code, _, err = run("run", SMALL, "--caviard", os.path.join(self.tmp.name, "none"),
                           env=self.env())
        self.assertEqual(code, 1)
        self.assertIn("--caviard", err)

    def test_bad_job_file_refused_before_starting_anything(self):
        code, _, err = run("run", os.path.join(self.tmp.name, "none.json"), "--caviard",
                           self.fake, env=self.env())
        self.assertEqual(code, 1)
        self.assertIn("none.json", err)
        self.assertFalse(os.path.exists(self.record))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fake-caviard":
        sys.exit(fake_caviard_main(sys.argv[2:]))
    unittest.main(argv=[sys.argv[0], "-v"])
