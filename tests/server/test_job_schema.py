#!/usr/bin/env python3
"""Checks schemas/job.schema.json with a real JSON Schema validator (draft 2020-12): the schema
itself is valid, both example jobs validate, and jobs breaking each rule the schema can state do
not. The same rules are enforced in C by server/job_spec.c (tests/server/test_job_spec.c).

Usage: test_job_schema.py [SOURCE_ROOT]   (default: two directories above this file)
Exits non-zero when any check fails."""

import copy
import json
import pathlib
import sys
import unittest

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]

MINIMAL = {
    "trial": {"dataset": {"format": "csv", "csv": "data.csv"}},
    "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.1}},
    "budget": {"max_trials": 24},
}


def with_fields(**fields):
    """MINIMAL with top-level fields replaced or added."""
    job = copy.deepcopy(MINIMAL)
    job.update(fields)
    return job


def with_param(name, param):
    """MINIMAL with a space of the one parameter given."""
    return with_fields(space={name: param})


class JobSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(ROOT / "schemas" / "job.schema.json", encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def assert_valid(self, job):
        errors = [e.message for e in self.validator.iter_errors(job)]
        self.assertEqual(errors, [], json.dumps(job))

    def assert_invalid(self, job):
        self.assertFalse(self.validator.is_valid(job), json.dumps(job))

    def test_schema_is_valid_draft_2020_12(self):
        jsonschema.Draft202012Validator.check_schema(self.schema)

    def test_fashion_mnist_example_validates(self):
        with open(ROOT / "examples" / "fashion-mnist.json", encoding="utf-8") as f:
            self.assert_valid(json.load(f))

    def test_fashion_mnist_long_example_validates(self):
        with open(ROOT / "examples" / "fashion-mnist-long.json", encoding="utf-8") as f:
            self.assert_valid(json.load(f))

    def test_small_example_validates(self):
        with open(ROOT / "examples" / "small.json", encoding="utf-8") as f:
            self.assert_valid(json.load(f))

    def test_minimal_job_validates(self):
        self.assert_valid(MINIMAL)

    def test_every_scale_validates(self):
        self.assert_valid(with_fields(space={
            "beta1": {"type": "float", "scale": "one_minus_log", "min": 0.9, "max": 0.999},
            "batch_size": {"type": "int", "scale": "power_of_two", "min": 16, "max": 512},
            "hidden_units": {"type": "int", "scale": "log", "min": 64, "max": 1024},
            "keep_prob": {"type": "float", "scale": "linear", "min": 0.5, "max": 1},
            "activation": {"type": "categorical", "values": ["relu", "tanh"]},
            "batch_norm": {"type": "categorical", "values": [True, False]},
        }))

    def test_label_smoothing_and_cosine_decay_validate(self):
        self.assert_valid(with_fields(space={
            "label_smoothing": {"type": "float", "scale": "linear", "min": 0, "max": 0.2},
            "decay": {"type": "categorical", "values": ["exponential", "cosine"]},
        }))

    def test_required_fields(self):
        for field in ("trial", "budget"):
            job = copy.deepcopy(MINIMAL)
            del job[field]
            self.assert_invalid(job)

    def test_unknown_top_level_field_is_refused(self):
        self.assert_invalid(with_fields(priority=3))

    def test_unknown_parameter_is_refused(self):
        self.assert_invalid(with_param("momentum", {"type": "float", "scale": "linear",
                                                    "min": 0.8, "max": 0.99}))

    def test_a_program_job_searches_any_names_without_a_dataset(self):
        space = {"lr": {"type": "float", "scale": "log", "min": 1e-4, "max": 0.1},
                 "width": {"type": "int", "scale": "power_of_two", "min": 16, "max": 256},
                 "nesterov": {"type": "categorical", "values": [True, False]}}
        for trainer in ("ask", "torch-fmnist"):
            self.assert_valid(with_fields(trainer=trainer, trial={"epochs": 5, "subset": 600},
                                          space=space))
        self.assert_invalid(with_fields(space=space))  # builtin: unknown names
        self.assert_invalid(with_fields(trainer="builtin", trial={"epochs": 5}))  # no dataset

    def test_program_jobs_reserve_trainer_and_check_epochs(self):
        cat = {"type": "categorical", "values": ["a"]}
        self.assert_invalid(with_fields(trainer="my trainer", trial={}))
        self.assert_invalid(with_fields(trainer="t", trial={"trainer": "sh"}))
        self.assert_invalid(with_fields(trainer="t", trial={}, space={"trainer": cat}))
        self.assert_invalid(with_fields(trainer="t", trial={}, space={"-x": cat}))
        self.assert_invalid(with_fields(trainer="t", trial={"epochs": 0}))

    def test_a_job_with_nothing_to_search_validates(self):
        self.assert_valid(with_fields(space={}))
        job = copy.deepcopy(MINIMAL)
        del job["space"]
        self.assert_valid(job)

    def test_rounds_are_counts_or_fractions(self):
        self.assert_valid(with_fields(refine={"rounds": [10, 7, 7]}))
        self.assert_valid(with_fields(refine={"rounds": [0.4, 0.3, 0.3]}))
        self.assert_invalid(with_fields(refine={"rounds": [0.5, 12]}))
        self.assert_invalid(with_fields(refine={"rounds": [0]}))

    def test_wrong_types_are_refused(self):
        self.assert_invalid(with_fields(budget={"max_trials": "24"}))
        self.assert_invalid(with_fields(trial=[]))
        self.assert_invalid(with_param("learning_rate", {"type": "float", "scale": "log",
                                                         "min": "1e-4", "max": 0.1}))

    def test_log_scale_needs_positive_min(self):
        self.assert_invalid(with_param("learning_rate", {"type": "float", "scale": "log",
                                                         "min": 0, "max": 0.1}))
        self.assert_invalid(with_param("hidden_units", {"type": "int", "scale": "log",
                                                        "min": -8, "max": 64}))

    def test_one_minus_log_needs_max_below_one(self):
        self.assert_invalid(with_param("beta2", {"type": "float", "scale": "one_minus_log",
                                                 "min": 0.9, "max": 1}))

    def test_power_of_two_needs_type_int(self):
        self.assert_invalid(with_param("l2", {"type": "float", "scale": "power_of_two",
                                              "min": 1, "max": 8}))

    def test_int_bounds_must_be_integers(self):
        self.assert_invalid(with_param("hidden_units", {"type": "int", "scale": "log",
                                                        "min": 1.5, "max": 100}))

    def test_parameter_type_must_match(self):
        self.assert_invalid(with_param("learning_rate", {"type": "int", "scale": "linear",
                                                         "min": 1, "max": 2}))
        self.assert_invalid(with_param("activation", {"type": "float", "scale": "linear",
                                                      "min": 1, "max": 2}))

    def test_categorical_values_are_distinct_and_typed(self):
        self.assert_invalid(with_param("activation", {"type": "categorical",
                                                      "values": ["relu", "relu"]}))
        self.assert_invalid(with_param("batch_norm", {"type": "categorical",
                                                      "values": [True, "false"]}))

    def test_max_trials_bounds(self):
        self.assert_invalid(with_fields(budget={"max_trials": 0}))
        self.assert_invalid(with_fields(budget={"max_trials": 10**9}))
        self.assert_valid(with_fields(budget={"max_trials": 100000}))

    def test_refine_ranges(self):
        self.assert_invalid(with_fields(refine={"keep_fraction": 0}))
        self.assert_invalid(with_fields(refine={"margin": 1.5}))
        self.assert_invalid(with_fields(refine={"rounds": [24, 0]}))

    def test_seed_and_human_error_ranges(self):
        self.assert_invalid(with_fields(seed=-1))
        self.assert_invalid(with_fields(human_error=2))
        self.assert_valid(with_fields(seed=2**53, human_error=0.05))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ROOT = pathlib.Path(sys.argv.pop(1)).resolve()
    unittest.main(verbosity=2)
