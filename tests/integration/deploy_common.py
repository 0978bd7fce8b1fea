"""What the deployment tests share: a dataset slow enough to interrupt a trial mid-training, a job
over it, and the accounting checks that a job survived interruptions (every trial final, none
stored twice, none failed for having been interrupted)."""

import random
import sqlite3
import time

FINAL = {"completed", "failed", "diverged", "lost", "cancelled", "pruned"}


def write_blobs(path, n=3000, features=16, seed=3):
    """Two overlapping Gaussian classes as CSV: small to write, slow enough to train on with 1024
    hidden units (about 0.2 s an epoch on one thread)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(features)) + ",label\n")
        for i in range(n):
            label = i % 2
            xs = (rng.gauss(0.3 * label * (j % 3), 1) for j in range(features))
            f.write(",".join(f"{x:.4f}" for x in xs) + f",{label}\n")


def job_spec(data, trials, parallel, epochs=8, units=1024):
    """A job of `trials` trials over the blobs at data, searching the learning rate."""
    return {
        "name": "deploy",
        "trial": {"dataset": {"format": "csv", "csv": data, "label_column": "label"},
                  "split": {"train": 0.6, "dev": 0.2, "test": 0.2}, "epochs": epochs,
                  "patience": epochs, "optimizer": "adam", "hidden_layers": 2,
                  "hidden_units": units, "batch_size": 64},
        "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4, "max": 1e-2}},
        "budget": {"max_trials": trials, "max_parallel": parallel},
        "seed": 9,
    }


def wait_for(what, predicate, timeout=30, log=lambda: ""):
    """predicate()'s first true value within timeout seconds; AssertionError naming what."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n{log()}")


def running_with_progress(c, job_id, worker=None):
    """A trial of job_id that runs (on worker, when given) and has reported an epoch, or None."""
    status, body = c.request("GET", f"/v1/jobs/{job_id}/trials")
    for t in body["trials"] if status == 200 else []:
        if t["status"] == "running" and (worker is None or t["worker_id"] == worker):
            if c.request("GET", f"/v1/trials/{t['id']}")[1]["curve"]:
                return t
    return None


def stored_twice(db_path, job_id):
    """Attempts of job_id's trials that ended with a result while a later attempt of the same
    trial did too: must be empty."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT a.trial_id, a.attempt FROM trial_attempts AS a JOIN trials AS t "
            "ON t.id = a.trial_id WHERE t.job_id = ? "
            "AND a.outcome IN ('completed', 'failed', 'diverged', 'pruned') AND EXISTS ("
            "  SELECT 1 FROM trial_attempts AS b WHERE b.trial_id = a.trial_id "
            "  AND b.attempt > a.attempt AND b.outcome IN ('completed', 'failed', 'diverged', "
            "'pruned'))",
            (job_id,)).fetchall()
