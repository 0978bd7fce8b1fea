#!/usr/bin/env python3
"""Checks common/message.c against schemas/worker-messages.schema.json with a real JSON Schema
validator (draft 2020-12): every message the C builders make (one of each type, printed by
dump_messages) validates, and for a corpus of broken messages the C parser (dump_messages
--check) and the schema give the same verdict.

The corpus leaves out the three places where C deliberately differs (schemas/protocol.md): a
trial's spec, which C leaves to the trial spec parser, integers beyond 2^53, and the order of
a trial's decide_at epochs (strictly ascending), which JSON Schema cannot state.

Usage: test_message_schema.py DUMP_MESSAGES [SOURCE_ROOT]
Exits non-zero when any check fails."""

import copy
import json
import pathlib
import subprocess
import sys
import unittest
import urllib.parse

import jsonschema

DUMP = sys.argv.pop(1) if len(sys.argv) > 1 else "build/tests/common/dump_messages"
ROOT = pathlib.Path(__file__).resolve().parents[2]
TYPES = {"hello", "heartbeat", "progress", "result", "dataset_get", "welcome", "trial", "ack",
         "stop", "dataset", "error", "decision", "evaluate", "evaluation",
         "nudge", "nudged", "importance", "importance_result"}


def load(name):
    with open(ROOT / "schemas" / name, encoding="utf-8") as f:
        return json.load(f)


def make_validator():
    """A validator of worker-messages.schema.json that resolves urn:caviar:schema:trial."""
    messages, trial = load("worker-messages.schema.json"), load("trial.schema.json")
    try:  # jsonschema >= 4.18 resolves references through the referencing library
        import referencing
        import referencing.jsonschema
        registry = referencing.Registry().with_resources([
            (s["$id"], referencing.jsonschema.DRAFT202012.create_resource(s))
            for s in (messages, trial)])
        return messages, jsonschema.Draft202012Validator(messages, registry=registry)
    except ImportError:  # Debian 12's jsonschema 4.10
        # Its RefResolver joins "#/$defs/..." to the urn: base with urllib, which only joins
        # schemes it lists as relative; without this the trial schema's inner references would
        # resolve against the messages schema.
        for schemes in (urllib.parse.uses_relative, urllib.parse.uses_fragment):
            if "urn" not in schemes:
                schemes.append("urn")
        resolver = jsonschema.RefResolver.from_schema(
            messages, store={messages["$id"]: messages, trial["$id"]: trial})
        return messages, jsonschema.Draft202012Validator(messages, resolver=resolver)


def c_verdicts(messages):
    """cv_msg_parse's verdict on each message: "ok <type>" or "refused <reason>"."""
    text = "".join(json.dumps(m, separators=(",", ":")) + "\n" for m in messages)
    p = subprocess.run([DUMP, "--check"], input=text, capture_output=True, text=True, timeout=30,
                       check=True)
    lines = p.stdout.splitlines()
    assert len(lines) == len(messages), p.stdout
    return lines


class MessageSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema, cls.validator = make_validator()
        out = subprocess.run([DUMP], capture_output=True, text=True, timeout=30, check=True)
        cls.lines = out.stdout.splitlines()
        cls.examples = [json.loads(line) for line in cls.lines]

    def example(self, type_):
        return copy.deepcopy(next(m for m in self.examples if m["type"] == type_))

    def assert_valid(self, msg):
        errors = [e.message for e in self.validator.iter_errors(msg)]
        self.assertEqual(errors, [], json.dumps(msg))

    def test_schema_is_valid_draft_2020_12(self):
        jsonschema.Draft202012Validator.check_schema(self.schema)

    def test_there_is_an_example_of_every_type(self):
        self.assertEqual({m["type"] for m in self.examples}, TYPES)

    def test_every_built_message_validates(self):
        for line, msg in zip(self.lines, self.examples):
            with self.subTest(line=line):
                self.assert_valid(msg)

    def test_built_messages_are_compact_json(self):
        for line in self.lines:
            self.assertEqual(line, json.dumps(json.loads(line), separators=(",", ":"),
                                              ensure_ascii=False))

    def test_the_c_parser_accepts_every_built_message(self):
        verdicts = c_verdicts(self.examples)
        for msg, verdict in zip(self.examples, verdicts):
            self.assertEqual(verdict, "ok " + msg["type"])

    def test_only_c_checks_that_decide_at_ascends(self):
        """JSON Schema cannot say that decide_at ascends; cv_msg_parse refuses it, naming the
        entry."""
        msg = self.example("trial")
        msg["decide_at"] = [1, 3, 3]
        self.assertTrue(self.validator.is_valid(msg))
        [verdict] = c_verdicts([msg])
        self.assertTrue(verdict.startswith("refused trial: decide_at[2]: must be above"), verdict)

    def test_the_schema_refuses_a_broken_trial_spec(self):
        """The spec is checked by the schema (through urn:caviar:schema:trial) but not by
        cv_msg_parse: a bad spec must fail its trial, not the connection."""
        msg = self.example("trial")
        msg["spec"]["learning_rate"] = -1
        self.assertFalse(self.validator.is_valid(msg))
        self.assertEqual(c_verdicts([msg]), ["ok trial"])

    def broken_corpus(self):
        """(description, message) pairs, each breaking or probing one rule."""
        cases = []

        def case(what, type_, change):
            msg = self.example(type_)
            change(msg)
            cases.append((what, msg))

        def setter(*path_and_value):
            *path, value = path_and_value

            def change(msg):
                obj = msg
                for key in path[:-1]:
                    obj = obj[key]
                obj[path[-1]] = value
            return change

        def deleter(*path):
            def change(msg):
                obj = msg
                for key in path[:-1]:
                    obj = obj[key]
                del obj[path[-1]]
            return change

        case("unknown type", "heartbeat", setter("type", "heartbeet"))
        case("unknown top-level field", "ack", setter("extra", 1))
        case("missing worker_id", "hello", deleter("worker_id"))
        case("protocol 2", "hello", setter("protocol", 2))
        case("threads as a string", "hello", setter("threads", "8"))
        case("threads 0", "hello", setter("threads", 0))
        case("threads 1025", "hello", setter("threads", 1025))
        case("threads 1024", "hello", setter("threads", 1024))
        case("threads 2.0 counts as an integer", "hello", setter("threads", 2.0))
        case("worker_id with a space", "hello", setter("worker_id", "a b"))
        case("worker_id of 65 characters", "hello", setter("worker_id", "w" * 65))
        case("worker_id of 64 characters", "hello", setter("worker_id", "w" * 64))
        case("version of 65 characters", "hello", setter("version", "v" * 65))
        case("version of 64 two-byte characters", "hello", setter("version", "é" * 64))
        case("token as a number", "hello", setter("token", 5))
        case("17 leases", "hello",
             setter("leases", [{"trial_id": i, "lease": "a" * 32} for i in range(1, 18)]))
        case("lease in upper case", "hello", setter("leases", 0, "lease", "A" * 32))
        case("lease of 31 digits", "progress", setter("lease", "a" * 31))
        case("unknown field in a lease", "hello", setter("leases", 0, "extra", True))
        case("trial id 0", "stop", setter("trial_id", 0))
        case("trial id 2.5", "stop", setter("trial_id", 2.5))
        case("trial id as a string", "stop", setter("trial_id", "3"))
        case("progress epoch 0", "progress", setter("epoch", "epoch", 0))
        case("progress dev_error null", "progress", setter("epoch", "dev_error", None))
        case("progress train metrics null", "progress", lambda m: m["epoch"].update(
            train_error=None, train_cost=None, train_cost_reg=None, learning_rate=None,
            seconds=None, examples_per_second=None))
        case("progress dev_error and dev_cost null", "progress",
             lambda m: m["epoch"].update(dev_error=None, dev_cost=None))
        case("progress epoch null", "progress", setter("epoch", "epoch", None))
        case("trainers of 17 names", "hello", setter("trainers", [f"t{i}" for i in range(17)]))
        case("trainers of 16 names", "hello", setter("trainers", [f"t{i}" for i in range(16)]))
        case("trainer name with a space", "hello", setter("trainers", ["a b"]))
        case("trainer name with a semicolon", "hello", setter("trainers", ["x;rm"]))
        case("trainer name of 65 characters", "hello", setter("trainers", ["t" * 65]))
        case("trainer name empty", "hello", setter("trainers", [""]))
        case("trainer name repeated", "hello", setter("trainers", ["a", "a"]))
        case("trainer name as a number", "hello", setter("trainers", [5]))
        case("trainers as a string", "hello", setter("trainers", "torch"))
        case("trainers empty", "hello", setter("trainers", []))
        case("trial objective dev_cost", "trial", setter("objective", "dev_cost"))
        case("trial objective accuracy", "trial", setter("objective", "accuracy"))
        case("trial objective null", "trial", setter("objective", None))
        case("progress dev_error 1.5", "progress", setter("epoch", "dev_error", 1.5))
        case("progress train_error -0.1", "progress", setter("epoch", "train_error", -0.1))
        case("progress learning_rate 0", "progress", setter("epoch", "learning_rate", 0))
        case("progress seconds -1", "progress", setter("epoch", "seconds", -1))
        case("progress negative cost", "progress", setter("epoch", "dev_cost", -3))
        case("progress missing seconds", "progress", deleter("epoch", "seconds"))
        case("unknown field in an epoch", "progress", setter("epoch", "colour", 1))
        case("result dev_error as a string", "result", setter("result", "dev_error", "x"))
        case("result dev_error 1.5", "result", setter("result", "dev_error", 1.5))
        case("result dev_error -0.25", "result", setter("result", "dev_error", -0.25))
        case("result dev_error null", "result", setter("result", "dev_error", None))
        case("result dev_cost null", "result", setter("result", "dev_cost", None))
        case("result missing dev_cost", "result", deleter("result", "dev_cost"))
        case("result unknown status", "result", setter("result", "status", "done"))
        case("result extra member is allowed", "result", setter("result", "anything", [1]))
        case("result best_epoch -1", "result", setter("result", "best_epoch", -1))
        case("result diverged_epoch 0", "result", setter("result", "diverged_epoch", 0))
        case("result error as a number", "result", setter("result", "error", 3))
        case("result diagnosis unknown name", "result",
             setter("result", "diagnosis", "name", "meh"))
        case("result diagnosis extra field", "result", setter("result", "diagnosis", "x", 1))
        case("result diagnosis as a string", "result", setter("result", "diagnosis", "fine"))
        case("result as an array", "result", setter("result", []))
        case("model_bytes over 1 GiB", "result", setter("model_bytes", 1073741825))
        case("model_crc32 2^32", "result", setter("model_crc32", 4294967296))
        case("model_crc32 negative", "result", setter("model_crc32", -1))
        case("hash of 63 digits", "dataset_get", setter("hash", "a" * 63))
        case("hash in upper case", "dataset", setter("hash", "A" * 64))
        case("dataset bytes -1", "dataset", setter("bytes", -1))
        case("welcome heartbeat 0", "welcome", setter("heartbeat_seconds", 0))
        case("welcome lease_seconds as a string", "welcome", setter("lease_seconds", "30"))
        case("welcome reattached 0", "welcome", setter("reattached", [0]))
        case("welcome reattached not an array", "welcome", setter("reattached", 4))
        case("welcome missing reattached", "welcome", deleter("reattached"))
        case("trial files entry missing bytes", "trial", deleter("files", "csv", "bytes"))
        case("trial files entry extra field", "trial", setter("files", "csv", "mode", 1))
        case("trial files bytes -1", "trial", setter("files", "csv", "bytes", -1))
        case("trial job_id 0", "trial", setter("job_id", 0))
        case("trial spec as a string", "trial", setter("spec", "moons"))
        case("ack stored as 1", "ack", setter("stored", 1))
        case("error message as null", "error", setter("message", None))
        case("error message empty", "error", setter("message", ""))
        case("decision epoch 0", "decision", setter("epoch", 0))
        case("decision epoch 100001", "decision", setter("epoch", 100001))
        case("decision epoch 2.5", "decision", setter("epoch", 2.5))
        case("decision stop as 1", "decision", setter("stop", 1))
        case("decision missing stop", "decision", deleter("stop"))
        case("decision missing epoch", "decision", deleter("epoch"))
        case("decision extra field", "decision", setter("lease", "a" * 32))
        case("decision trial_id 0", "decision", setter("trial_id", 0))
        case("trial decide_at empty", "trial", setter("decide_at", []))
        case("trial decide_at not an array", "trial", setter("decide_at", 3))
        case("trial decide_at epoch 0", "trial", setter("decide_at", [0, 2]))
        case("trial decide_at epoch as a string", "trial", setter("decide_at", [1, "2"]))
        case("trial decide_at 32 epochs", "trial", setter("decide_at", list(range(1, 33))))
        case("trial decide_at 33 epochs", "trial", setter("decide_at", list(range(1, 34))))
        case("result status pruned", "result", setter("result", "status", "pruned"))
        model = {"trial_id": 3, "hash": "a" * 64, "bytes": 10}
        case("evaluate no models", "evaluate", setter("models", []))
        case("evaluate 16 models", "evaluate", setter("models", [model] * 16))
        case("evaluate 17 models", "evaluate", setter("models", [model] * 17))
        case("evaluate missing models", "evaluate", deleter("models"))
        case("evaluate models not an array", "evaluate", setter("models", model))
        case("evaluate model hash in upper case", "evaluate", setter("models", 0, "hash", "A" * 64))
        case("evaluate model trial_id 0", "evaluate", setter("models", 1, "trial_id", 0))
        case("evaluate model bytes over 1 GiB", "evaluate",
             setter("models", 0, "bytes", 1073741825))
        case("evaluate model extra field", "evaluate", setter("models", 0, "path", "/x"))
        case("evaluate files entry missing hash", "evaluate", deleter("files", "csv", "hash"))
        case("evaluate spec as a string", "evaluate", setter("spec", "moons"))
        case("evaluate trial_id is not a field", "evaluate", setter("trial_id", 3))
        case("evaluation test_accuracy 1.5", "evaluation", setter("test_accuracy", 1.5))
        case("evaluation test_cost -1", "evaluation", setter("test_cost", -1))
        case("evaluation examples 0", "evaluation", setter("examples", 0))
        case("evaluation examples 2.5", "evaluation", setter("examples", 2.5))
        case("evaluation missing examples", "evaluation", deleter("examples"))
        case("evaluation lease missing", "evaluation", deleter("lease"))
        case("evaluation score and error", "evaluation", setter("error", "no test set"))

        def failure(fault, error="the split has no test set"):
            def change(msg):
                for k in ("test_accuracy", "test_cost", "examples"):
                    del msg[k]
                msg["error"], msg["fault"] = error, fault
            return change
        case("evaluation failure of the job", "evaluation", failure("job"))
        case("evaluation failure of the worker", "evaluation", failure("worker"))
        case("evaluation failure of nobody", "evaluation", failure("nobody"))
        case("evaluation error as a number", "evaluation", failure("job", 3))
        case("evaluation error of 1025 characters", "evaluation", failure("job", "e" * 1025))
        case("evaluation failure without fault", "evaluation",
             lambda m: (failure("job")(m), m.pop("fault")))
        case("nudge values empty", "nudge", setter("values", {}))
        case("nudge values as an array", "nudge", setter("values", [1]))
        case("nudge missing values", "nudge", deleter("values"))
        case("nudge seq 0", "nudge", setter("seq", 0))
        case("nudge at_epoch 0", "nudge", setter("at_epoch", 0))
        case("nudge at_epoch 100001", "nudge", setter("at_epoch", 100001))
        case("nudge at_epoch 3", "nudge", setter("at_epoch", 3))
        case("nudge extra field", "nudge", setter("lease", "a" * 32))
        case("nudged epoch 0", "nudged", setter("epoch", 0))
        case("nudged epoch 2.5", "nudged", setter("epoch", 2.5))
        case("nudged missing lease", "nudged", deleter("lease"))
        case("nudged lease in upper case", "nudged", setter("lease", "A" * 32))
        case("nudged missing seq", "nudged", deleter("seq"))
        case("importance one row", "importance", lambda m: (m["x"].pop(), m["y"].pop(),
                                                             m["x"].pop(), m["y"].pop()))
        case("importance y not finite", "importance", setter("y", 1, "NaN"))
        case("importance x entry a string", "importance", setter("x", 0, 1, "0.5"))
        case("importance seed negative", "importance", setter("seed", -1))
        case("importance seed 2.5", "importance", setter("seed", 2.5))
        case("importance missing lo", "importance", deleter("lo"))
        case("importance no parameters", "importance",
             lambda m: m.update(lo=[], hi=[], x=[[], [], []]))
        case("importance 25 parameters", "importance",
             lambda m: m.update(lo=[0] * 25, hi=[1] * 25, x=[[0] * 25] * 3))
        case("importance 24 parameters", "importance",
             lambda m: m.update(lo=[0] * 24, hi=[1] * 24, x=[[0] * 24] * 3))
        case("importance extra field", "importance", setter("names", ["a", "b"]))
        case("importance_result fraction 1.5", "importance_result", setter("fraction", 0, 1.5))
        case("importance_result importance -0.1", "importance_result",
             setter("importance", 1, -0.1))
        case("importance_result empty fraction", "importance_result",
             lambda m: m.update(fraction=[], importance=[]))
        case("importance_result figures and error", "importance_result", setter("error", "x"))
        case("importance_result missing lease", "importance_result", deleter("lease"))
        case("importance_result error as a number", "importance_result",
             lambda m: (m.pop("fraction"), m.pop("importance"), m.update(error=3)))
        case("importance_result error of 1025 characters", "importance_result",
             lambda m: (m.pop("fraction"), m.pop("importance"), m.update(error="e" * 1025)))
        return cases

    def test_c_rows_agree_with_lo_and_y(self):
        """What the schema cannot say, the C parser checks: the shape of x and lo <= hi."""
        broken = []
        for what, change in [
                ("a row shorter than lo", lambda m: m["x"][1].pop()),
                ("fewer rows than y", lambda m: m["x"].pop()),
                ("hi shorter than lo", lambda m: m["hi"].pop()),
                ("lo above hi", lambda m: m["lo"].__setitem__(0, 0.0))]:
            msg = self.example("importance")
            change(msg)
            broken.append((what, msg))
        verdicts = c_verdicts([m for _, m in broken])
        expected = ["x[1]: must hold 2 numbers", "x: must hold one row per objective (3), got 2",
                    "hi: must hold 2 numbers, got 1", "hi[0]: must be at least lo[0] (0)"]
        for (what, _), verdict, text in zip(broken, verdicts, expected):
            with self.subTest(what):
                self.assertTrue(verdict.startswith("refused importance: " + text), verdict)

    def test_c_and_the_schema_agree_on_broken_messages(self):
        cases = self.broken_corpus()
        verdicts = c_verdicts([m for _, m in cases])
        for (what, msg), verdict in zip(cases, verdicts):
            with self.subTest(what):
                schema_ok = self.validator.is_valid(msg)
                self.assertEqual(verdict.startswith("ok "), schema_ok,
                                 f"{what}: C says {verdict!r}, the schema says "
                                 f"{'valid' if schema_ok else 'invalid'}: {json.dumps(msg)}")

    def test_c_refusals_name_the_field(self):
        cases = dict(self.broken_corpus())
        probes = {"threads as a string": "threads", "lease in upper case": "leases[0].lease",
                  "result dev_error as a string": "result.dev_error",
                  "progress dev_error and dev_cost null": "epoch",
                  "trainer name with a semicolon": "trainers[0]",
                  "unknown top-level field": "\"extra\"", "missing worker_id": "worker_id",
                  "trial files entry missing bytes": "files.csv.bytes",
                  "unknown type": "heartbeet", "decision stop as 1": "stop",
                  "decision epoch 0": "epoch", "trial decide_at epoch 0": "decide_at[0]",
                  "trial decide_at 33 epochs": "decide_at",
                  "evaluate model hash in upper case": "models[0].hash",
                  "evaluate 17 models": "models", "evaluation examples 0": "examples",
                  "evaluation failure of nobody": "fault",
                  "nudge values empty": "values", "nudge at_epoch 0": "at_epoch",
                  "nudged missing seq": "seq"}
        verdicts = c_verdicts([cases[k] for k in probes])
        for (what, word), verdict in zip(probes.items(), verdicts):
            with self.subTest(what):
                self.assertTrue(verdict.startswith("refused "), verdict)
                self.assertIn(word, verdict)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ROOT = pathlib.Path(sys.argv.pop(1)).resolve()
    unittest.main(verbosity=2)
