#!/usr/bin/env python3
"""Acceptance: examples/fashion-mnist-trial.json, trained by the standalone worker, reaches at
least 0.88 dev accuracy within its 10 epochs. Skips (exit 77) when Debian's
dataset-fashion-mnist is not installed.

Usage: test_fashion_mnist.py CAVIAR_WORKER SOURCE_ROOT"""
import json
import os
import subprocess
import sys

worker, root = sys.argv[1], sys.argv[2]
spec_path = os.path.join(root, "examples", "fashion-mnist-trial.json")
spec = json.load(open(spec_path))
if not os.path.exists(spec["dataset"]["images"]):
    print("SKIP: dataset-fashion-mnist is not installed")
    sys.exit(77)
assert spec["epochs"] <= 10, "the recommended trial must stay within 10 epochs"
p = subprocess.run([worker, "train", spec_path, "--json"], capture_output=True, text=True,
                   timeout=580)
if p.returncode != 0:
    print(p.stderr)
    sys.exit(1)
r = json.loads(p.stdout)
accuracy = 1 - r["dev_error"]
print(f"dev accuracy {accuracy:.4f} at epoch {r['best_epoch']} of {r['epochs_run']}, "
      f"{r['examples_per_second']:.0f} examples/s")
sys.exit(0 if r["status"] == "completed" and accuracy >= 0.88 else 1)
