#!/usr/bin/env python3
"""Specification of text at the coordinator's doors: a job spec or a worker's hello holding
bytes that are not UTF-8, or a NUL character (\\u0000), is refused with a reason naming the
field, nothing of it is stored, and every reply of the API stays JSON that parses. Text that is
UTF-8 goes through byte for byte.

Usage: test_text.py BUILD_DIR SOURCE_ROOT"""

import json
import os
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, frame, message, read_message, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"


def sees_eof(sock, timeout=10):
    """True when the peer closes sock (after sending whatever it sends) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Text(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0)
        try:
            cls.c.start()
            cls.data = os.path.join(cls.c.dir, "moons.csv")
            write_moons(cls.data, n=100)
        except BaseException:
            cls.c.close()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def spec_text(self, name_json):
        """A valid job spec as JSON text whose name is the raw JSON string name_json (bytes)."""
        spec = {"name": "@NAME@",
                "trial": {"dataset": {"format": "csv", "csv": self.data, "label_column": "label"},
                          "split": {"train": 0.6, "dev": 0.2, "test": 0.2}},
                "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                            "max": 1e-1}},
                "budget": {"max_trials": 1, "max_parallel": 1}}
        return json.dumps(spec).encode().replace(b'"@NAME@"', name_json)

    def raw_get(self, path):
        """The bytes of a GET, which must decode as UTF-8 JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.c.port}{path}", timeout=30) as r:
            body = r.read()
        return json.loads(body.decode("utf-8", errors="strict"))

    def test_job_names_that_are_not_utf8_are_refused(self):
        # (the name as raw JSON, the reason, the bytes the reported position points at)
        cases = [(b'"bad \xff name"', "name: invalid UTF-8 in a string", b"\xff"),
                 (b'"over\xc0\xafong"', "name: invalid UTF-8 in a string", b"\xc0"),
                 (b'"sur\xed\xa0\x80"', "name: invalid UTF-8 in a string", b"\xed"),
                 (b'"big\xf4\x90\x80\x80"', "name: invalid UTF-8 in a string", b"\xf4"),
                 (b'"cut\\u0000off"', "name: \\u0000 (a NUL character) in a string", b"\\u0000"),
                 (b'"half\\ud800"', "name: a \\u escape of a lone surrogate in a string",
                  b"\\ud800")]
        for raw, reason, at in cases:
            text = self.spec_text(raw)
            status, body = self.c.request("POST", "/v1/jobs", raw=text,
                                          headers={"Content-Type": "application/json"})
            self.assertEqual(status, 400, raw)
            self.assertIn(f"{reason} at byte {text.index(at)} (line 1, column "
                          f"{text.index(at) + 1})", body["error"])
        spec = self.spec_text(b'"ok"').replace(b'"learning_rate"', b'"learning\xff_rate"')
        status, body = self.c.request("POST", "/v1/jobs", raw=spec)
        self.assertEqual(status, 400)
        self.assertIn("space: invalid UTF-8 in a member name", body["error"])
        names = [j["name"] for j in self.raw_get("/v1/jobs?limit=1000")["jobs"]]
        self.assertEqual([n for n in names if n.startswith(("bad", "over", "sur", "big", "cut",
                                                             "half"))], [])

    def test_utf8_job_names_are_kept_exactly(self):
        name = "réseau ü 深度 \U0001f600"
        status, body = self.c.request("POST", "/v1/jobs", raw=self.spec_text(
            json.dumps(name, ensure_ascii=False).encode()))
        self.assertEqual(status, 201, body)
        job = self.raw_get(f"/v1/jobs/{body['id']}")
        self.assertEqual(job["name"], name)
        self.assertIn(name, [j["name"] for j in self.raw_get("/v1/jobs?limit=1000")["jobs"]])
        self.assertEqual(self.c.request("POST", f"/v1/jobs/{body['id']}/cancel")[0], 200)

    def hello_bytes(self, worker_id, version=b'"1"', host=b'"h"'):
        text = (b'{"type": "hello", "protocol": 1, "worker_id": "' + worker_id.encode() +
                b'", "version": ' + version + b', "threads": 1, "host": ' + host + b'}')
        return frame(text)

    def test_worker_hellos_that_are_not_utf8_close_the_connection(self):
        cases = [("w-host", dict(host=b'"h\xc0\xae"'), "host: invalid UTF-8"),
                 ("w-version", dict(version=b'"1\xff"'), "version: invalid UTF-8"),
                 ("w-nul", dict(version=b'"1\\u0000x"'), "version: \\u0000 (a NUL character)")]
        for worker_id, fields, reason in cases:
            s = socket.create_connection(("127.0.0.1", self.c.worker_port))
            self.addCleanup(s.close)
            s.sendall(self.hello_bytes(worker_id, **fields))
            self.assertTrue(sees_eof(s), f"{worker_id}: the connection stayed open")
            deadline = time.time() + 5
            while reason not in self.c.log_text() and time.time() < deadline:
                time.sleep(0.05)
            self.assertIn(reason, self.c.log_text())
        ids = [w["id"] for w in self.raw_get("/v1/workers")["workers"]]
        for worker_id, _, _ in cases:
            self.assertNotIn(worker_id, ids)

    def test_a_utf8_hello_is_stored_exactly(self):
        host = "hôte-ü.例え"
        s = socket.create_connection(("127.0.0.1", self.c.worker_port))
        self.addCleanup(s.close)
        s.sendall(self.hello_bytes("w-utf8", host=json.dumps(host, ensure_ascii=False).encode()))
        self.assertEqual(read_message(s)["type"], "welcome")
        deadline = time.time() + 10
        while time.time() < deadline:
            found = [w for w in self.raw_get("/v1/workers")["workers"] if w["id"] == "w-utf8"]
            if found:
                break
            time.sleep(0.05)
        self.assertEqual(found[0]["host"], host)
        s.sendall(message({"type": "heartbeat"}))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
