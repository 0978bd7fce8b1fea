#!/usr/bin/env python3
"""Specification of who may do what: caviard with an API token and a worker token on loopback
ephemeral ports. API requests need `Authorization: Bearer <token>` (401 otherwise, whatever the
wrong token's length), /v1/health is open; a worker without the right worker token gets an
`error` message and EOF, and caviar-worker --once exits non-zero; the right tokens train a trial
end to end, through the `caviar` client too. Without an API token caviard listens on loopback
only and says so, and refuses a non-loopback --listen unless --allow-remote-without-token.

Usage: test_auth.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, csv_job, read_message, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIARD = os.path.join(BUILD, "server", "caviard")
WORKER = os.path.join(BUILD, "worker", "caviar-worker")
CLIENT = os.path.join(BUILD, "client", "caviar")
API_TOKEN = "api-0123456789abcdef"
WORKER_TOKEN = "wrk-fedcba9876543210"


def job_spec(csv, trials=2):
    return csv_job(csv, "auth", trials, seed=9)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def sees_eof(sock, timeout=10):
    sock.settimeout(timeout)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def worker_env():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1")


class Tokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0)
        for name, token in (("api.token", API_TOKEN), ("worker.token", WORKER_TOKEN)):
            with open(os.path.join(cls.c.dir, name), "w") as f:
                f.write(token + "\n")
        cls.c.extra += ["--token-file", os.path.join(cls.c.dir, "api.token"),
                        "--worker-token-file", os.path.join(cls.c.dir, "worker.token")]
        cls.data = os.path.join(cls.c.dir, "moons.csv")
        write_moons(cls.data, n=200)
        cls.c.start()
        cls.wport = int(re.search(r"workers on 127\.0\.0\.1:(\d+)", cls.c.log_text()).group(1))

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def worker(self, *extra, once=True):
        args = [WORKER, "--connect", f"127.0.0.1:{self.wport}", "--threads", "1",
                "--cache", os.path.join(self.c.dir, "cache"), *extra]
        if once:
            args.append("--once")
        return args

    # ---- the API ---------------------------------------------------------------------------

    def test_health_needs_no_token(self):
        status, body = self.c.request("GET", "/v1/health")
        self.assertEqual((status, body["status"]), (200, "ok"))

    def test_requests_without_the_right_token_are_401(self):
        wrong_same_length = "x" * len(API_TOKEN)
        cases = [None, {"Authorization": ""}, bearer(""), bearer(wrong_same_length),
                 bearer(API_TOKEN[:-1]), bearer(API_TOKEN + "x"), bearer(API_TOKEN[:1]),
                 bearer(API_TOKEN.upper()), {"Authorization": f"Basic {API_TOKEN}"},
                 {"Authorization": API_TOKEN}, bearer(" " + API_TOKEN)]
        for headers in cases:
            for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/stats"),
                                 ("GET", "/v1/workers"), ("GET", "/v1/jobs/1"),
                                 ("POST", "/v1/jobs/1/cancel")):
                status, body = self.c.request(method, path, headers=headers)
                self.assertEqual(status, 401, (headers, path, body))
                self.assertEqual(body, {"error": "missing or wrong API token"})
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data),
                                      headers=bearer(wrong_same_length))
        self.assertEqual(status, 401, body)
        status, body = self.c.request("GET", "/v1/jobs", headers=bearer(API_TOKEN))
        self.assertNotIn("auth-refused", [j["name"] for j in body["jobs"]])

    def test_the_right_token_is_200(self):
        for path in ("/v1/jobs", "/v1/stats", "/v1/workers"):
            status, body = self.c.request("GET", path, headers=bearer(API_TOKEN))
            self.assertEqual(status, 200, body)

    # ---- workers ---------------------------------------------------------------------------

    def raw_hello(self, token):
        s = socket.create_connection(("127.0.0.1", self.wport))
        self.addCleanup(s.close)
        h = {"type": "hello", "protocol": 1, "worker_id": "raw", "version": "t", "threads": 1,
             "host": "t"}
        if token is not None:
            h["token"] = token
        payload = json.dumps(h).encode()
        s.sendall(struct.pack(">IB3x", len(payload), 1) + payload)
        return s

    def test_a_hello_without_the_worker_token_gets_an_error_and_eof(self):
        for token in (None, "", "x" * len(WORKER_TOKEN), WORKER_TOKEN[:-1], WORKER_TOKEN + "x",
                      API_TOKEN):
            s = self.raw_hello(token)
            self.assertEqual(read_message(s), {"type": "error",
                                               "message": "wrong or missing worker token"})
            self.assertTrue(sees_eof(s), token)
        self.assertIn("wrong worker token", self.c.log_text())

    def test_caviar_worker_with_a_missing_or_wrong_token_exits(self):
        for extra in ((), ("--token", "y" * len(WORKER_TOKEN)), ("--token", "short")):
            p = subprocess.run(self.worker("--id", "refused", *extra), capture_output=True,
                               text=True, timeout=30, env=worker_env())
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn("wrong or missing worker token", p.stderr)
        status, body = self.c.request("GET", "/v1/workers", headers=bearer(API_TOKEN))
        self.assertNotIn("refused", [w["id"] for w in body["workers"]])

    def test_the_right_tokens_train_a_job_end_to_end(self):
        status, body = self.c.request("POST", "/v1/jobs", job_spec(self.data),
                                      headers=bearer(API_TOKEN))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        worker = subprocess.Popen(self.worker("--id", "trusted", "--token", WORKER_TOKEN,
                                              once=False),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=worker_env())
        try:
            deadline = time.time() + 120
            while True:
                status, job = self.c.request("GET", f"/v1/jobs/{job_id}",
                                             headers=bearer(API_TOKEN))
                if job["status"] != "running" or time.time() > deadline:
                    break
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(20)
        self.assertEqual(job["status"], "completed", self.c.log_text())
        self.assertEqual(job["counts"].get("completed"), 2)

    # ---- the client ------------------------------------------------------------------------

    def client(self, *args, token=API_TOKEN):
        env = {k: v for k, v in os.environ.items() if k not in ("CAVIAR_TOKEN", "CAVIAR_SERVER")}
        cmd = [CLIENT, "--server", f"http://127.0.0.1:{self.c.port}"]
        if token is not None:
            cmd += ["--token", token]
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120,
                              env=env)

    def test_the_client_with_a_token_works_end_to_end(self):
        spec = os.path.join(self.c.dir, "client-job.json")
        job = job_spec(self.data, trials=1)
        job["name"] = "auth-client"
        with open(spec, "w") as f:
            json.dump(job, f)
        refused = self.client("submit", spec, token="wrong")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("token", refused.stderr)
        self.assertNotEqual(self.client("status", token=None).returncode, 0)
        p = self.client("submit", spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        job_id = int(re.search(r"\d+", p.stdout).group(0))
        worker = subprocess.Popen(self.worker("--id", "client-run", "--token", WORKER_TOKEN,
                                              once=False),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=worker_env())
        try:
            watch = self.client("watch", str(job_id))
        finally:
            worker.terminate()
            worker.wait(20)
        self.assertEqual(watch.returncode, 0, watch.stdout + watch.stderr)
        best = self.client("--json", "best", str(job_id), "-k", "1")
        self.assertEqual(best.returncode, 0, best.stderr)
        self.assertEqual(len(json.loads(best.stdout)["trials"]), 1)


class Exposure(unittest.TestCase):
    """What caviard does at start-up without an API token."""

    def test_loopback_without_a_token_says_so(self):
        c = Coordinator(BUILD, workers=0)
        self.addCleanup(c.close)
        c.start()
        self.assertIn("no API token: listening on loopback only", c.log_text())

    def test_a_remote_listen_without_a_token_is_refused(self):
        for address in ("0.0.0.0:0", "[::]:0"):
            tmp = tempfile.TemporaryDirectory()
            self.addCleanup(tmp.cleanup)
            d = tmp.name
            p = subprocess.run([CAVIARD, "--listen", address, "--worker-listen", "127.0.0.1:0",
                                "--db", os.path.join(d, "x.db"), "--data-dir",
                                os.path.join(d, "data")],
                               capture_output=True, text=True, timeout=30,
                               env={k: v for k, v in os.environ.items() if k != "CAVIAR_TOKEN"})
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("not a loopback address and no API token is set", p.stderr)
            self.assertIn("--allow-remote-without-token", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "x.db")), "it started anyway")

    def test_a_remote_listen_without_a_token_can_be_allowed_with_a_warning(self):
        c = Coordinator(BUILD, workers=0, extra=["--listen", "0.0.0.0:0",
                                                 "--allow-remote-without-token"])
        self.addCleanup(c.close)
        c.start()
        c.stop()
        self.assertIn("no API token is set and the API listens on 0.0.0.0", c.log_text())

    def test_a_remote_listen_with_a_token_starts_quietly(self):
        c = Coordinator(BUILD, workers=0, extra=["--listen", "0.0.0.0:0"])
        self.addCleanup(c.close)
        with open(os.path.join(c.dir, "api.token"), "w") as f:
            f.write(API_TOKEN)
        c.extra += ["--token-file", os.path.join(c.dir, "api.token")]
        c.start()
        c.stop()
        self.assertNotIn("no API token", c.log_text())


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
