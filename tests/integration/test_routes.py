#!/usr/bin/env python3
"""Specification of the HTTP API's routing (server/api.c's route table): what every path and
method that is not a route answers, word for word, with and without the API token. The table
replaced a chain of string comparisons; these answers are the ones the chain gave.

Usage: test_routes.py BUILD_DIR SOURCE_ROOT"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
TOKEN = "route-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Routes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Coordinator(BUILD, workers=0)
        path = os.path.join(cls.c.dir, "api.token")
        with open(path, "w") as f:
            f.write(TOKEN + "\n")
        cls.c.extra += ["--token-file", path]
        cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def answer(self, method, path, auth=True):
        return self.c.request(method, path, headers=AUTH if auth else None)

    def assert_error(self, method, path, status, error, auth=True):
        got = self.answer(method, path, auth)
        self.assertEqual(got, (status, {"error": error}), f"{method} {path}")

    def test_health_is_open_and_answers_only_get(self):
        status, body = self.answer("GET", "/v1/health", auth=False)
        self.assertEqual((status, body["status"]), (200, "ok"))
        self.assert_error("POST", "/v1/health", 405, "use GET on /v1/health", auth=False)

    def test_everything_else_asks_for_the_token_first(self):
        for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/stats"), ("GET", "/nowhere"),
                             ("DELETE", "/v1/jobs/1"), ("POST", "/v1/jobs/x/evaluate"),
                             ("GET", "/v1/health/more")):
            self.assert_error(method, path, 401, "missing or wrong API token", auth=False)

    def test_a_route_asked_with_another_method_names_the_ones_it_takes(self):
        for method, path, allowed in (("DELETE", "/v1/jobs", "GET or POST"),
                                      ("POST", "/v1/stats", "GET"),
                                      ("POST", "/v1/workers", "GET"),
                                      ("GET", "/v1/workers/w1/release", "POST"),
                                      ("POST", "/v1/trials/3", "GET"),
                                      ("DELETE", "/v1/trials/3/model", "GET"),
                                      ("POST", "/v1/jobs/3", "GET or DELETE"),
                                      ("POST", "/v1/jobs/3/trials", "GET"),
                                      ("GET", "/v1/jobs/3/cancel", "POST"),
                                      ("GET", "/v1/jobs/3/extend", "POST"),
                                      ("DELETE", "/v1/jobs/3/evaluate", "POST")):
            self.assert_error(method, path, 405, f"use {allowed} on {path}")

    def test_no_route_under_a_known_prefix_names_the_path(self):
        for path in ("/v1/workers/w1", "/v1/workers//release", "/v1/workers/w1/release/x",
                     "/v1/workers/" + "w" * 65 + "/release", "/v1/trials/x", "/v1/trials/3/x",
                     "/v1/trials/3x", "/v1/jobs/x", "/v1/jobs/", "/v1/jobs/99999999999999999999"):
            self.assert_error("GET", path, 404, f"no route {path}")

    def test_no_route_elsewhere_names_the_method_and_the_path(self):
        for method, path in (("GET", "/v1/jobs/3/nothing"), ("PUT", "/v1/jobs/3/x"),
                             ("GET", "/v2/jobs"), ("GET", "/v1"), ("GET", "/v1/health/more"),
                             ("GET", "/v1/workersx")):
            self.assert_error(method, path, 404, f"no route {method} {path}")

    def test_routes_with_ids_reach_their_handlers(self):
        self.assert_error("GET", "/v1/jobs/42", 404, "job not found")
        self.assert_error("GET", "/v1/trials/42", 404, "trial not found")
        self.assert_error("GET", "/v1/trials/42/model", 404, "trial 42 not found")
        self.assert_error("POST", "/v1/workers/nobody/release", 404, "worker nobody not found")
        self.assert_error("POST", "/v1/jobs/42/cancel", 404, "job not found")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
