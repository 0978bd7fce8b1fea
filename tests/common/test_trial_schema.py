#!/usr/bin/env python3
"""Checks schemas/trial.schema.json with a real JSON Schema validator (draft 2020-12): the schema
itself is valid, both example specs validate, and specs breaking each kind of rule do not.

Usage: test_trial_schema.py [SOURCE_ROOT]   (default: two directories above this file)
Exits non-zero when any check fails."""

import copy
import json
import pathlib
import sys
import unittest

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]

MINIMAL = {"dataset": {"format": "idx", "images": "a.gz", "labels": "b.gz"}}


def with_fields(**fields):
    """MINIMAL with top-level fields replaced or added."""
    spec = copy.deepcopy(MINIMAL)
    spec.update(fields)
    return spec


def with_dataset(**fields):
    """MINIMAL with dataset fields replaced or added."""
    spec = copy.deepcopy(MINIMAL)
    spec["dataset"].update(fields)
    return spec


class TrialSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(ROOT / "schemas" / "trial.schema.json", encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def assert_valid(self, spec):
        errors = [e.message for e in self.validator.iter_errors(spec)]
        self.assertEqual(errors, [], json.dumps(spec))

    def assert_invalid(self, spec):
        self.assertFalse(self.validator.is_valid(spec), json.dumps(spec))

    def test_schema_is_valid_draft_2020_12(self):
        jsonschema.Draft202012Validator.check_schema(self.schema)

    def test_fashion_mnist_example_validates(self):
        with open(ROOT / "examples" / "fashion-mnist-trial.json", encoding="utf-8") as f:
            self.assert_valid(json.load(f))

    def test_tiny_example_validates(self):
        with open(ROOT / "examples" / "tiny-trial.json", encoding="utf-8") as f:
            self.assert_valid(json.load(f))

    def test_minimal_spec_validates(self):
        self.assert_valid(MINIMAL)

    def test_per_layer_arrays_validate(self):
        self.assert_valid(with_fields(hidden_units=[64, 32], activation=["relu", "tanh"],
                                      keep_prob=[0.5, 1], batch_norm=[True, False]))

    def test_dataset_is_required(self):
        self.assert_invalid({"epochs": 3})

    def test_unknown_field_is_refused(self):
        self.assert_invalid(with_fields(foo=1))

    def test_unknown_dataset_field_is_refused(self):
        self.assert_invalid(with_dataset(colour="red"))

    def test_keep_prob_outside_0_1_is_refused(self):
        for bad in (0, 1.5, [1, 1.5], "0.5"):
            with self.subTest(keep_prob=bad):
                self.assert_invalid(with_fields(keep_prob=bad))

    def test_non_positive_learning_rate_is_refused(self):
        for bad in (0, -1, 11):
            with self.subTest(learning_rate=bad):
                self.assert_invalid(with_fields(learning_rate=bad))

    def test_wrong_type_is_refused(self):
        self.assert_invalid(with_fields(learning_rate="0.1"))

    def test_batch_size_must_be_a_positive_integer(self):
        for bad in (0, 2.5, 2147483649):
            with self.subTest(batch_size=bad):
                self.assert_invalid(with_fields(batch_size=bad))

    def test_cosine_decay_with_a_floor_and_warmup_validates(self):
        self.assert_valid(with_fields(decay="cosine", decay_min=0.05, warmup_epochs=2, epochs=20))

    def test_decay_min_outside_0_1_is_refused(self):
        for bad in (-0.1, 1, "0.1"):
            with self.subTest(decay_min=bad):
                self.assert_invalid(with_fields(decay="cosine", decay_min=bad))

    def test_warmup_epochs_must_be_a_non_negative_integer(self):
        for bad in (-1, 1.5, 100001):
            with self.subTest(warmup_epochs=bad):
                self.assert_invalid(with_fields(warmup_epochs=bad))

    def test_label_smoothing_lies_in_0_to_one_half(self):
        self.assert_valid(with_fields(label_smoothing=0.1))
        for bad in (-0.1, 0.5, "0.1"):
            with self.subTest(label_smoothing=bad):
                self.assert_invalid(with_fields(label_smoothing=bad))

    def test_unknown_optimizer_is_refused(self):
        self.assert_invalid(with_fields(optimizer="sgd"))

    def test_idx_needs_images(self):
        spec = copy.deepcopy(MINIMAL)
        del spec["dataset"]["images"]
        self.assert_invalid(spec)

    def test_csv_fields_are_refused_with_idx(self):
        self.assert_invalid(with_dataset(csv="data.csv"))

    def test_test_images_need_test_labels(self):
        self.assert_invalid(with_dataset(test_images="t.gz"))

    def test_dev_alone_needs_test_files(self):
        self.assert_invalid(with_fields(split={"dev": 0.2}))

    def test_test_files_refuse_a_fractions_split(self):
        spec = with_dataset(test_images="t.gz", test_labels="u.gz")
        spec["split"] = {"train": 0.6, "dev": 0.2, "test": 0.2}
        self.assert_invalid(spec)

    def test_test_files_refuse_an_auto_split(self):
        spec = with_dataset(test_images="t.gz", test_labels="u.gz")
        spec["split"] = "auto"
        self.assert_invalid(spec)

    def test_test_files_accept_a_dev_split(self):
        spec = with_dataset(test_images="t.gz", test_labels="u.gz")
        spec["split"] = {"dev": 0.1}
        self.assert_valid(spec)

    def test_fractions_split_needs_all_three(self):
        self.assert_invalid(with_fields(split={"train": 0.8, "dev": 0.2}))

    def test_sigmoid_output_needs_two_classes(self):
        spec = with_dataset(classes=10)
        spec["output"] = "sigmoid"
        self.assert_invalid(spec)

    def test_too_many_hidden_layers_are_refused(self):
        self.assert_invalid(with_fields(hidden_layers=33))
        self.assert_invalid(with_fields(hidden_units=[8] * 33))

    def test_seed_accepts_2_pow_53(self):
        self.assert_valid(with_fields(seed=2 ** 53))
        self.assert_invalid(with_fields(seed=2 ** 53 + 1))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ROOT = pathlib.Path(sys.argv.pop(1)).resolve()
    unittest.main(verbosity=2)
