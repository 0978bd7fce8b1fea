#!/usr/bin/env python3
"""Specification of caviar-worker's command line against real files: bad input of every kind is
refused with a message naming the file, line or field and a non-zero exit, never a crash;
training, gradient checking, model files, prediction and ensembles work end to end.

Usage: test_worker_cli.py CAVIAR_WORKER SOURCE_ROOT"""

import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

WORKER = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/worker/caviar-worker"
ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
MOONS = os.path.join(ROOT, "examples", "data", "moons.csv")


def run(*args, timeout=120):
    p = subprocess.run([WORKER, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return p.returncode, p.stdout, p.stderr


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data, mode="w"):
        with open(self.path(name), mode) as f:
            f.write(data)
        return self.path(name)

    def spec(self, **fields):
        """A small valid CSV trial spec on the moons, with fields replaced."""
        s = {"dataset": {"format": "csv", "csv": MOONS, "label_column": "label"},
             "split": {"train": 0.6, "dev": 0.2, "test": 0.2},
             "hidden_units": [8], "activation": "tanh", "learning_rate": 0.01,
             "batch_size": 32, "epochs": 3, "seed": 3}
        s.update(fields)
        return self.write("spec.json", json.dumps(s))

    def idx_spec(self, images, labels):
        return self.spec(dataset={"format": "idx", "images": images, "labels": labels})

    def good_idx(self, count=50):
        images = struct.pack(">IIII", 0x803, count, 2, 2) + bytes(range(4)) * count
        labels = struct.pack(">II", 0x801, count) + bytes(i % 2 for i in range(count))
        return images, labels

    def assert_refused(self, args, *words):
        code, out, err = run(*args)
        self.assertGreater(code, 0, f"exit {code}; stderr: {err}")  # negative = killed by signal
        self.assertNotIn("Sanitizer", err)
        for w in words:
            self.assertIn(w, err)
        return err


class SpecRefusals(Base):
    def test_keep_prob_above_one(self):
        self.assert_refused(["train", self.spec(keep_prob=1.5)], "keep_prob")

    def test_keep_prob_zero(self):
        self.assert_refused(["train", self.spec(keep_prob=0)], "keep_prob")

    def test_non_positive_learning_rate(self):
        self.assert_refused(["train", self.spec(learning_rate=-0.1)], "learning_rate")

    def test_batch_size_zero(self):
        self.assert_refused(["train", self.spec(batch_size=0)], "batch_size")

    def test_unknown_field(self):
        self.assert_refused(["train", self.spec(learning_rat=0.1)], "learning_rat")

    def test_unknown_optimizer(self):
        self.assert_refused(["train", self.spec(optimizer="adamw")], "optimizer", "adamw")

    def test_not_json(self):
        self.assert_refused(["train", self.write("bad.json", "{\"epochs\": 3,")], "bad.json")

    def test_missing_spec_file(self):
        self.assert_refused(["train", self.path("nope.json")], "nope.json")


class DataRefusals(Base):
    def csv_spec(self, text, **fields):
        path = self.write("data.csv", text)
        return self.spec(dataset={"format": "csv", "csv": path, "label_column": "label"},
                         **fields)

    def test_ragged_csv_row_names_the_line(self):
        rows = "x1,x2,label\n" + "1,2,0\n" * 5 + "1,2\n" + "3,4,1\n" * 5
        self.assert_refused(["train", self.csv_spec(rows)], "data.csv", "line 7")

    def test_non_numeric_csv_field_names_line_and_column(self):
        rows = "x1,x2,label\n" + "1,2,0\n" * 3 + "1,abc,1\n" + "3,4,1\n" * 5
        err = self.assert_refused(["train", self.csv_spec(rows)], "line 5")
        self.assertTrue("x2" in err or "column 2" in err, err)

    def test_nan_feature_refused(self):
        rows = "x1,x2,label\n" + "1,2,0\n" * 3 + "nan,2,1\n" + "3,4,1\n" * 5
        self.assert_refused(["train", self.csv_spec(rows)], "line 5")

    def test_label_outside_class_range(self):
        rows = "x1,x2,label\n" + "1,2,0\n3,4,1\n" * 10 + "5,6,7\n"
        spec = self.csv_spec(rows)
        s = json.load(open(spec))
        s["dataset"]["classes"] = 2
        self.write("spec.json", json.dumps(s))
        self.assert_refused(["train", spec], "label")

    def test_idx_wrong_magic(self):
        images, labels = self.good_idx()
        img = self.write("img.idx", b"\x00\x00\x09\x99" + images[4:], "wb")
        lab = self.write("lab.idx", labels, "wb")
        self.assert_refused(["train", self.idx_spec(img, lab)], "img.idx", "magic")

    def test_idx_truncated(self):
        images, labels = self.good_idx()
        img = self.write("img.idx", images[:-7], "wb")
        lab = self.write("lab.idx", labels, "wb")
        self.assert_refused(["train", self.idx_spec(img, lab)], "img.idx")

    def test_idx_gzip_truncated(self):
        images, labels = self.good_idx()
        img = self.write("img.idx.gz", gzip.compress(images)[:-20], "wb")
        lab = self.write("lab.idx", labels, "wb")
        self.assert_refused(["train", self.idx_spec(img, lab)], "img.idx.gz")

    def test_idx_counts_disagree(self):
        images, _ = self.good_idx(50)
        _, labels = self.good_idx(40)
        img = self.write("img.idx", images, "wb")
        lab = self.write("lab.idx", labels, "wb")
        self.assert_refused(["train", self.idx_spec(img, lab)], "50", "40")

    def test_idx_lying_header(self):
        huge = struct.pack(">IIII", 0x803, 4000000000, 28, 28) + bytes(100)
        img = self.write("img.idx", huge, "wb")
        lab = self.write("lab.idx", self.good_idx()[1], "wb")
        self.assert_refused(["train", self.idx_spec(img, lab)], "img.idx")


class Training(Base):
    def test_train_json_reports_the_result(self):
        code, out, err = run("train", self.spec(epochs=5), "--json")
        self.assertEqual(code, 0, err)
        r = json.loads(out)
        for key in ("status", "best_epoch", "train_error", "dev_error", "dev_cost", "diagnosis",
                    "examples_per_second"):
            self.assertIn(key, r)
        self.assertEqual(r["status"], "completed")
        self.assertEqual(len(r["curve"]), r["epochs_run"])
        best = r["curve"][r["best_epoch"] - 1]
        self.assertEqual(best["dev_error"], r["dev_error"])
        self.assertEqual(min(e["dev_cost"] for e in r["curve"]), r["dev_cost"])
        self.assertNotIn("test_error", r)  # the test set is only scored when asked

    def test_a_collapse_to_chance_names_the_learning_rate(self):
        # Adam at 3 kills this relu network: it ends predicting one class (error 50%, cost above
        # ln 2), which is no reason for a bigger network.
        spec = self.spec(hidden_units=[32, 32], activation="relu", optimizer="adam",
                         learning_rate=3, epochs=10)
        code, out, err = run("train", spec, "--json")
        self.assertEqual(code, 0, err)
        d = json.loads(out)["diagnosis"]
        self.assertEqual(d["name"], "collapsed")
        self.assertIn("no better than chance with learning rate 3", d["explanation"])
        self.assertIn("(chance: ln 2 = 0.693)", d["explanation"])
        self.assertTrue(d["remedy"].startswith("lower the learning rate"))
        self.assertEqual(d["human_error_assumed"], 0)
        self.assertFalse(d["human_error_given"])
        code, out, err = run("train", spec)
        self.assertEqual(code, 0, err)
        self.assertIn("diagnosis: collapsed", out)

    def test_a_blown_up_cost_names_the_learning_rate(self):
        spec = self.spec(hidden_units=[32, 32], activation="relu", optimizer="rmsprop",
                         learning_rate=3, epochs=10)
        code, out, err = run("train", spec, "--json")
        self.assertEqual(code, 0, err)
        d = json.loads(out)["diagnosis"]
        self.assertEqual(d["name"], "learning_rate_too_high", d)
        self.assertIn("with learning rate 3", d["explanation"])

    def test_the_assumed_human_error_is_reported(self):
        code, out, err = run("train", self.spec(epochs=5, human_error=0.05), "--json")
        self.assertEqual(code, 0, err)
        d = json.loads(out)["diagnosis"]
        self.assertEqual(d["human_error_assumed"], 0.05)
        self.assertTrue(d["human_error_given"])
        self.assertIn("human-level error 5.0%, from human_error", d["explanation"])

    def test_divergence_ends_the_trial_with_a_status(self):
        code, out, err = run("train", self.spec(learning_rate=10, optimizer="gd", epochs=5,
                                                 hidden_units=[64, 64], activation="relu"),
                              "--json")
        self.assertEqual(code, 3, err)
        r = json.loads(out)
        self.assertEqual(r["status"], "diverged")
        self.assertGreaterEqual(r["diverged_epoch"], 1)

    def test_gradcheck_reports_correct(self):
        code, out, err = run("gradcheck", self.spec(l2=0.5, batch_norm=True))
        self.assertEqual(code, 0, err)
        self.assertIn("correct", out)

    def test_model_file_predict_and_ensemble(self):
        m1, m2 = self.path("a.model"), self.path("b.model")
        self.assertEqual(run("train", self.spec(epochs=20), "--save", m1)[0], 0)
        self.assertEqual(run("train", self.spec(epochs=20, seed=4), "--save", m2)[0], 0)
        code, out, err = run("evaluate", m1, MOONS)
        self.assertEqual(code, 0, err)
        self.assertIn("accuracy", out)
        accuracy = float(out.split("accuracy ")[1].split(",")[0])
        self.assertGreater(accuracy, 0.8)
        code, out, err = run("evaluate", m1, m2, MOONS)
        self.assertEqual(code, 0, err)
        self.assertIn("ensemble of 2 models", out)
        code, out, err = run("predict", m1, MOONS)
        self.assertEqual(code, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 1001)
        right = sum(1 for ln in lines[1:] if ln.split(",")[1] == ln.split(",")[2])
        self.assertAlmostEqual(right / 1000, accuracy, places=4)

    def moons_rows(self):
        with open(MOONS) as f:
            lines = f.read().split()
        return lines[0].split(","), [ln.split(",") for ln in lines[1:]]

    def test_predict_on_unlabeled_data_and_with_probabilities(self):
        m = self.path("a.model")
        self.assertEqual(run("train", self.spec(epochs=20), "--save", m)[0], 0)
        code, out, err = run("predict", m, MOONS)
        self.assertEqual(code, 0, err)
        labelled = out.strip().split("\n")
        self.assertEqual(labelled[0], "index,label,predicted")
        predicted = [ln.split(",")[2] for ln in labelled[1:]]
        header, rows = self.moons_rows()
        # New data: exactly the model's two input columns, no label.
        plain = self.write("new.csv", "x1,x2\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows))
        code, out, err = run("predict", m, plain)
        self.assertEqual(code, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "index,predicted")
        self.assertEqual([ln.split(",")[1] for ln in lines[1:]], predicted)
        self.assertEqual(lines[1:3], ["0," + predicted[0], "1," + predicted[1]])
        # Without a header line.
        bare = self.write("bare.csv", "".join(f"{r[0]},{r[1]}\n" for r in rows))
        code, out, err = run("predict", m, bare, "--no-header")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip().split("\n")[1:], lines[1:])
        # The label column first, found by its header name.
        moved = self.write("moved.csv", "label,x1,x2\n" +
                           "".join(f"{r[2]},{r[0]},{r[1]}\n" for r in rows))
        code, out, err = run("predict", m, moved, "--label-column", "label")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip().split("\n"), labelled)
        # Every class's probability: they sum to 1 and the largest is the class printed.
        code, out, err = run("predict", m, plain, "--probabilities")
        self.assertEqual(code, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "index,predicted,p_0,p_1")
        for ln in lines[1:]:
            fields = ln.split(",")
            p = [float(x) for x in fields[2:]]
            self.assertAlmostEqual(sum(p), 1, places=5)
            self.assertEqual(int(fields[1]), p.index(max(p)))
        # A CSV of the wrong width says what the model takes.
        wide = self.write("wide.csv", "a,b,c,d\n1,2,3,4\n")
        self.assert_refused(["predict", m, wide], "wide.csv", "the model takes 2",
                            "exactly 2 columns, or 3")

    def test_predict_on_idx_images_without_labels(self):
        images, labels = self.good_idx()
        img = self.write("img.idx", images, "wb")
        lab = self.write("lab.idx", labels, "wb")
        m = self.path("idx.model")
        code, out, err = run("train", self.idx_spec(img, lab), "--save", m)
        self.assertEqual(code, 0, err)
        code, out, err = run("predict", m, img, "--probabilities")
        self.assertEqual(code, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "index,predicted,p_0,p_1")
        self.assertEqual(len(lines), 51)
        code, with_labels, err = run("predict", m, img, "--labels", lab)
        self.assertEqual(code, 0, err)
        rows = with_labels.strip().split("\n")
        self.assertEqual(rows[0], "index,label,predicted")
        self.assertEqual([r.split(",")[2] for r in rows[1:]],
                         [ln.split(",")[1] for ln in lines[1:]])
        self.assertEqual(rows[2].split(",")[1], "1")

    def test_corrupt_model_file_refused(self):
        m = self.path("a.model")
        self.assertEqual(run("train", self.spec(), "--save", m)[0], 0)
        data = bytearray(open(m, "rb").read())
        data[len(data) // 2] ^= 0x40
        self.write("bad.model", bytes(data), "wb")
        self.assert_refused(["evaluate", self.path("bad.model"), MOONS], "bad.model")
        self.write("short.model", bytes(data[: len(data) // 3]), "wb")
        self.assert_refused(["evaluate", self.path("short.model"), MOONS], "short.model")


class Options(Base):
    """Every subcommand takes --opt value and --opt=value, and refuses a bad command line with
    exit status 2 and a message naming the option."""

    def test_equals_forms_are_accepted(self):
        model = self.path("eq.model")
        code, out, err = run("train", self.spec(), f"--save={model}")
        self.assertEqual(code, 0, err)
        self.assertTrue(os.path.getsize(model) > 0)
        code, out, err = run("gradcheck", "--examples=4", "--coords=20", self.spec())
        self.assertEqual(code, 0, err)
        self.assertIn("over 20 of 42 parameters", out)

    def test_bad_options_are_refused_naming_them(self):
        spec = self.spec()
        for args, want in ((["train", spec, "--json=yes"], "train: --json takes no value"),
                           (["train", spec, "--save"], "train: --save needs a value"),
                           (["train", spec, "--bogus"], "unknown or ambiguous option '--bogus'"),
                           (["train", spec, spec], "train: unexpected argument"),
                           (["gradcheck", spec, "--examples=0"], "bad value for --examples: '0'"),
                           (["gradcheck", spec, "--coords", "x"], "bad value for --coords: 'x'"),
                           (["evaluate", "m", MOONS, "--labels"], "--labels needs a value")):
            code, out, err = run(*args)
            self.assertEqual(code, 2, (args, err))
            self.assertIn(want, err)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
