#!/usr/bin/env python3
"""Parallel speed-up of local workers: the same fixed job of real training trials (Fashion-MNIST,
20,000 training examples, 784-256-10, 3 epochs, 12 trials) run by caviard with 1 worker and with 2
workers, each worker pinned to one BLAS thread. Prints wall times and the speed-up (target on a
2-core machine: at least 1.8x), and for context 1 worker given both cores.

Usage: parallel_speedup.py [BUILD_DIR]"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from caviar_harness import Coordinator  # noqa: E402

FM = "/usr/share/datasets/fashion-mnist"
JOB = {
    "name": "speedup",
    "trial": {"dataset": {"format": "idx", "images": f"{FM}/train-images-idx3-ubyte.gz",
                          "labels": f"{FM}/train-labels-idx1-ubyte.gz", "max_examples": 24000},
              "split": {"train": 0.8334, "dev": 0.1666, "test": 0.0},
              "hidden_units": [256], "epochs": 3, "batch_size": 64},
    "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-3, "max": 3e-3}},
    "budget": {"max_trials": 12, "max_parallel": 12},
    "refine": {"rounds": [12]},
}


def run(build, workers, threads):
    c = Coordinator(build, workers=workers, extra=["--worker-threads", str(threads)]).start()
    try:
        c.wait_workers(workers)
        t0 = time.time()
        status, body = c.request("POST", "/v1/jobs", JOB)
        assert status == 201, body
        job = c.wait_job(body["id"], timeout=900)
        assert job["counts"]["completed"] == 12, job["counts"]
        return time.time() - t0
    finally:
        c.close()


if __name__ == "__main__":
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    if not os.path.exists(JOB["trial"]["dataset"]["images"]):
        sys.exit("needs Debian's dataset-fashion-mnist")
    one = run(build, 1, 1)
    two = run(build, 2, 1)
    one_wide = run(build, 1, 2)
    print(f"1 worker x 1 thread:  {one:6.1f} s")
    print(f"2 workers x 1 thread: {two:6.1f} s   speed-up {one / two:.2f}x (target >= 1.8x)")
    print(f"1 worker x 2 threads: {one_wide:6.1f} s   (one model on both cores, for comparison)")
