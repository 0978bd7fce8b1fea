#!/usr/bin/env python3
"""Checks schemas/api.schema.json with a real JSON Schema validator (draft 2020-12): the schema
itself is valid, it has a $def for every reply of schemas/api.md, its references to the job and
trial spec schemas name their $id, and sample replies (as caviard writes them) validate while
replies breaking its rules do not. The integration tests validate every real reply against it
(tests/integration/caviar_harness.py).

Usage: test_api_schema.py [SOURCE_ROOT]   (default: two directories above this file)
Exits non-zero when any check fails."""

import copy
import json
import pathlib
import sys
import unittest

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]

REPLIES = ["health", "error", "job_created", "jobs_list", "job", "trials_list", "trial", "cancel",
           "job_deleted", "job_extended", "evaluate", "stats", "workers", "worker_released",
           "history", "asked", "reported"]

REGION = {"learning_rate": {"min": 0.0001, "max": 0.3},
          "activation": {"weights": {"relu": 0.5, "tanh": 0.5}}}
TRIAL = {"id": 3, "job_id": 1, "number": 2, "round": 1, "status": "completed", "attempts": 1,
         "params": {"learning_rate": 0.2, "activation": "tanh"}, "worker_id": "local-0",
         "queued_at": 1795574984.1, "started_at": 1795574984.2, "finished_at": 1795574984.3,
         "dev_error": 0.04, "dev_cost": 0.1, "train_error": 0.03, "train_cost": 0.14,
         "train_cost_reg": 0.15, "best_epoch": 4, "epochs_run": 5, "diagnosis": "high_bias",
         "examples_per_second": 576459.7, "error": None, "model_path": "/var/caviar/1/3.model"}
JOB = {"id": 1, "name": "moons", "objective": "dev_error",
       "spec": {"trial": {"dataset": {"format": "csv", "csv": "moons.csv"}},
                "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                            "max": 0.3},
                          "activation": {"type": "categorical", "values": ["relu", "tanh"]}},
                "budget": {"max_trials": 4}},
       "status": "completed", "round": 1, "region": REGION, "created_at": 1795574984.0,
       "finished_at": 1795574985.0, "error": None,
       "test_result": {"test_accuracy": 0.96, "test_error": 0.04, "test_cost": 0.08,
                       "examples": 120, "trials": [3]},
       "counts": {"queued": 0, "running": 0, "completed": 4, "failed": 0, "diverged": 0,
                  "lost": 0, "cancelled": 0, "pruned": 0},
       "rounds": [{"round": 1, "size": 4, "region": REGION, "created_at": 1795574984.0}],
       "quarantined_workers": [],
       "utilization": {"busy_seconds": 3.9, "available_seconds": 4.0, "fraction": 0.975},
       "rungs": [{"epoch": 1, "results": 4, "stopped": 0, "promoted_trials": [0, 1, 2, 3],
                  "stopped_trials": []}],
       "best": TRIAL, "max_trials": 4, "running": 0,
       "rounds_planned": 1}


def changed(value, *path_and_new):
    """A deep copy of value with value[path...] set to the last argument (deleted if DELETE)."""
    *path, new = path_and_new
    out = copy.deepcopy(value)
    node = out
    for key in path[:-1]:
        node = node[key]
    if new is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


DELETE = object()


class ApiSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, str(ROOT / "tests" / "integration"))
        import caviar_harness  # its bundling resolves the spec schemas on every jsonschema
        caviar_harness.SCHEMAS = str(ROOT / "schemas")
        with open(ROOT / "schemas" / "api.schema.json", encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.bundled = caviar_harness.bundled_api_schema()

    def validator(self, name):
        return jsonschema.Draft202012Validator(dict(self.bundled, **{"$ref": f"#/$defs/{name}"}))

    def assert_valid(self, name, reply):
        errors = [e.message for e in self.validator(name).iter_errors(reply)]
        self.assertEqual(errors, [], json.dumps(reply))

    def assert_invalid(self, name, reply):
        self.assertFalse(self.validator(name).is_valid(reply), json.dumps(reply))

    def test_schema_is_valid_draft_2020_12(self):
        self.assertEqual(self.schema["$schema"], "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(self.schema)
        jsonschema.Draft202012Validator.check_schema(self.bundled)

    def test_every_reply_has_a_def(self):
        for name in REPLIES:
            self.assertIn(name, self.schema["$defs"])

    def test_ask_tell(self):
        trial = {"id": 5, "number": 4, "job_id": 2, "params": {"lr": 0.01, "seed": 1},
                 "epochs": 3, "lease": "0123456789abcdef" * 2, "lease_seconds": 60}
        self.assert_valid("asked", {"trial": trial})
        self.assert_valid("asked", {"trial": None, "done": False, "retry_after": 1})
        self.assert_valid("asked", {"trial": None, "done": True})
        self.assert_invalid("asked", {"trial": changed(trial, "lease", "xyz")})
        self.assert_invalid("asked", {"trial": changed(trial, "epochs", 0)})
        self.assert_invalid("asked", {"trial": changed(trial, "params", DELETE)})
        self.assert_invalid("asked", {"trial": None})
        self.assert_valid("reported", {"decision": "stop", "lease_seconds": 60})
        self.assert_valid("reported", {"decision": "continue", "lease_seconds": 0.5})
        self.assert_invalid("reported", {"decision": "halt", "lease_seconds": 60})
        self.assert_invalid("reported", {"decision": "stop"})
        # A told trial is a trial whose spec is its parameters with the trainer's name.
        detail = dict(TRIAL, config_key="{}", curve=[], attempts_history=[], nudges=[],
                      spec={"trainer": "ask", "lr": 0.01, "seed": 1})
        self.assert_valid("trial", detail)
        self.assert_invalid("trial", changed(detail, "spec", "trainer", "builtin"))
        self.assert_invalid("trial", changed(detail, "spec", "trainer", "a b"))

    def test_ask_tell_request_bodies(self):
        def validator(name):
            with open(ROOT / "schemas" / f"{name}.schema.json", encoding="utf-8") as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            return jsonschema.Draft202012Validator(schema)
        ask, report, tell = validator("ask"), validator("report"), validator("tell")
        lease = "0123456789abcdef" * 2
        self.assertTrue(ask.is_valid({}) and ask.is_valid({"client": "laptop 1"}))
        self.assertFalse(ask.is_valid({"client": ""}) or ask.is_valid({"client": "x" * 65}))
        self.assertFalse(ask.is_valid({"client": "tab\t"}) or ask.is_valid({"name": "x"}))
        epoch = {"lease": lease, "epoch": 3, "dev_error": 0.1, "dev_cost": 0.3}
        self.assertTrue(report.is_valid(epoch))
        self.assertTrue(report.is_valid(dict(epoch, train_error=0.05, learning_rate=0.01)))
        self.assertFalse(report.is_valid(changed(epoch, "epoch", 0)))
        self.assertFalse(report.is_valid(changed(epoch, "dev_cost", DELETE)))
        self.assertFalse(report.is_valid(changed(epoch, "lease", lease.upper())))
        done = {"lease": lease, "status": "completed", "dev_error": 0.1, "dev_cost": 0.3}
        failed = {"lease": lease, "status": "failed", "error": "out of memory"}
        self.assertTrue(tell.is_valid(done) and tell.is_valid(dict(done, epoch=4)))
        self.assertTrue(tell.is_valid(failed))
        self.assertFalse(tell.is_valid(dict(failed, dev_error=0.1)))
        self.assertFalse(tell.is_valid(dict(done, error="x")))
        self.assertFalse(tell.is_valid(changed(done, "status", "pruned")))
        self.assertFalse(tell.is_valid(changed(failed, "error", DELETE)))

    def test_health_and_error(self):
        self.assert_valid("health", {"status": "ok"})
        self.assert_invalid("health", {"status": "fine"})
        self.assert_valid("error", {"error": "job not found"})
        self.assert_invalid("error", {"error": "job not found", "code": 404})
        self.assert_invalid("error", {"message": "job not found"})

    def test_job(self):
        self.assert_valid("job", JOB)
        self.assert_valid("job", changed(JOB, "best", None))
        self.assert_valid("job", changed(JOB, "test_result", {"error": "no test set",
                                                              "trials": [3]}))
        self.assert_invalid("job", changed(JOB, "status", "done"))
        self.assert_invalid("job", changed(JOB, "running", DELETE))
        self.assert_invalid("job", changed(JOB, "counts", "stale", 1))
        self.assert_invalid("job", changed(JOB, "spec", "budget", "max_trials", 0))
        self.assert_invalid("job", changed(JOB, "best", "status", "failed"))
        # Pruned trials are counted, but only a completed trial is the best.
        self.assert_invalid("job", changed(JOB, "counts", "pruned", DELETE))
        self.assert_invalid("job", changed(JOB, "best", "status", "pruned"))
        self.assert_invalid("job", changed(JOB, "surprise", 1))
        # Rounds count from 1 in the API.
        self.assert_invalid("job", changed(JOB, "round", 0))
        self.assert_invalid("job", changed(JOB, "rounds", 0, "round", 0))
        self.assert_invalid("job", changed(JOB, "best", "round", 0))
        self.assert_invalid("job", changed(JOB, "rounds_planned", 0))

    def test_job_created_has_no_scheduler_fields(self):
        stored = {k: v for k, v in JOB.items()
                  if k not in ("max_trials", "running", "rounds_planned")}
        self.assert_valid("job_created", {"id": 1, "job": stored})
        self.assert_invalid("job_created", {"id": 1, "job": JOB})

    def test_trials(self):
        self.assert_valid("trials_list", {"trials": [TRIAL], "next_cursor": None})
        self.assert_valid("trials_list", {"trials": [TRIAL], "next_cursor": "17"})
        self.assert_invalid("trials_list", {"trials": [changed(TRIAL, "status", "done")],
                                            "next_cursor": None})
        self.assert_invalid("trials_list", {"trials": [TRIAL]})  # every page says what follows
        self.assert_invalid("trials_list", {"trials": [TRIAL], "next_cursor": ""})
        detail = dict(TRIAL, config_key="{}", curve=[], attempts_history=[
            {"attempt": 1, "worker_id": "w", "started_at": 1.0, "ended_at": 2.0,
             "outcome": "stale", "error": None}],
            spec={"dataset": {"format": "csv", "csv": "moons.csv"}, "learning_rate": 0.2},
            nudges=[{"seq": 1, "values": {"learning_rate": 3e-4}, "epoch": 12,
                     "created_at": 1.5, "applied_at": 1.7},
                    {"seq": 2, "values": {"keep_prob": 0.9}, "epoch": None,
                     "created_at": 1.8, "applied_at": None}])
        self.assert_valid("trial", detail)
        self.assert_invalid("trial", changed(detail, "nudges", DELETE))
        self.assert_invalid("trial", changed(detail, "nudges", 0, "epoch", 0))
        self.assert_invalid("trial", changed(detail, "nudges", 1, "values", {}))
        self.assert_valid("nudged", {"trial_id": 3, "seq": 1, "values": {"l2": 0.1}})
        self.assert_invalid("nudged", {"trial_id": 3, "seq": 0, "values": {"l2": 0.1}})
        self.assert_valid("trial", changed(changed(detail, "status", "pruned"),
                                           "attempts_history", 0, "outcome", "pruned"))
        self.assert_invalid("trial", changed(detail, "attempts_history", 0, "outcome", "gone"))
        self.assert_invalid("trial", changed(detail, "curve", DELETE))

    def test_history(self):
        history = {"job_id": 1, "status": "running", "objective": "dev_error",
                   "params": ["learning_rate", "activation"],
                   "finished": {"id": [3, 4], "number": [2, 3], "status": ["completed", "pruned"],
                                "value": [0.04, None], "epochs_run": [5, 2],
                                "worker_id": ["local-0", None],
                                "params": {"learning_rate": [0.2, 0.01],
                                           "activation": ["tanh", "relu"]}},
                   "running": [{"id": 5, "number": 4, "worker_id": "local-1", "epochs_run": None,
                                "params": {"learning_rate": 0.1, "activation": "relu"}}],
                   "count": 2, "more": False, "next_cursor": "41dac45a4284cdcc.4"}
        self.assert_valid("history", history)
        self.assert_valid("history", changed(history, "next_cursor", None))
        self.assert_invalid("history", changed(history, "finished", "status", 1, "queued"))
        self.assert_invalid("history", changed(history, "finished", "value", DELETE))
        self.assert_invalid("history", changed(history, "more", DELETE))
        self.assert_invalid("history", changed(history, "next_cursor", "17"))
        self.assert_invalid("history", changed(history, "running", 0, "params", DELETE))

    def test_evaluate(self):
        self.assert_valid("evaluate", {"status": "evaluating"})
        result = dict(JOB["test_result"], cached=True)
        self.assert_valid("evaluate", result)
        self.assert_invalid("evaluate", changed(result, "cached", DELETE))
        self.assert_invalid("evaluate", changed(result, "error", "both"))
        self.assert_valid("evaluate", dict(result, ensemble=3))
        self.assert_invalid("evaluate", dict(result, ensemble=17))

    def test_cancel_stats_workers(self):
        self.assert_valid("cancel", {"id": 1, "status": "cancelled", "trials_cancelled": 2})
        self.assert_invalid("cancel", {"id": 1, "status": "running", "trials_cancelled": 2})
        self.assert_valid("job_deleted", {"id": 1, "deleted": True, "trials_deleted": 20000})
        self.assert_invalid("job_deleted", {"id": 1, "deleted": False, "trials_deleted": 2})
        self.assert_invalid("job_deleted", {"id": 1, "deleted": True})
        self.assert_valid("job_extended", {"id": 1, "status": "running", "max_trials": 7,
                                           "round": 3})
        self.assert_invalid("job_extended", {"id": 1, "status": "completed", "max_trials": 7,
                                             "round": 3})
        self.assert_invalid("job_extended", {"id": 1, "status": "running", "max_trials": 7})
        self.assert_valid("stats", {"results_committed": 4, "commits": 2,
                                    "commit_latency_p50_ms": 1.7, "commit_latency_p99_ms": 2.0,
                                    "commit_latency_max_ms": 2.0})
        self.assert_invalid("stats", {"results_committed": 4})
        worker = {"id": "local-0", "version": "0.1.0", "threads": 1, "host": "vm",
                  "first_seen": 1.0, "last_seen": 2.0, "trials_done": 2,
                  "consecutive_failures": 0, "quarantined": 0, "connected": True,
                  "state": "running", "trial_id": 3, "job_id": 1, "trainers": ["torch"]}
        self.assert_valid("workers", {"workers": [worker], "next_cursor": None})
        self.assert_valid("workers", {"workers": [dict(worker, trainers=[])], "next_cursor": None})
        self.assert_invalid("workers", {"workers": [dict(worker, trainers=["x; rm"])],
                                        "next_cursor": None})
        self.assert_invalid("workers", {"workers": [dict(worker, trainers=["a", "a"])],
                                        "next_cursor": None})
        self.assert_invalid("workers", {"workers": [{k: v for k, v in worker.items()
                                                     if k != "trainers"}], "next_cursor": None})
        self.assert_valid("workers", {"workers": [worker], "next_cursor": "772d61"})
        gone = dict(worker, connected=False, state="disconnected", trial_id=None, job_id=None)
        self.assert_valid("workers", {"workers": [gone], "next_cursor": None})
        self.assert_invalid("workers", {"workers": [changed(worker, "quarantined", 2)],
                                        "next_cursor": None})
        self.assert_invalid("workers", {"workers": [changed(worker, "state", "busy")],
                                        "next_cursor": None})
        self.assert_invalid("workers", {"workers": [changed(worker, "trial_id", DELETE)],
                                        "next_cursor": None})


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ROOT = pathlib.Path(sys.argv.pop(1)).resolve()
    unittest.main(verbosity=2)
