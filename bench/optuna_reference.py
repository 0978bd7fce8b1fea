#!/usr/bin/env python3
"""Reference for bench/coordinator_throughput.py: Optuna 3.1 (Debian's python3-optuna) with
SQLite storage completing trials of a trivial objective, in 1 and in N processes sharing the
study. Prints trials per second.

Usage: /usr/bin/python3 optuna_reference.py [--trials 2000] [--processes 2]"""

import argparse
import multiprocessing
import os
import tempfile
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    lr = trial.suggest_float("learning_rate", 1e-5, 1, log=True)
    l2 = trial.suggest_float("l2", 1e-6, 1, log=True)
    return abs(lr - 1e-3) + l2


def run(url, n):
    study = optuna.load_study(study_name="bench", storage=url)
    study.optimize(objective, n_trials=n)


def measure(trials, processes):
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{os.path.join(d, 'optuna.db')}"
        optuna.create_study(study_name="bench", storage=url,
                            sampler=optuna.samplers.RandomSampler(seed=1))
        t0 = time.time()
        procs = [multiprocessing.Process(target=run, args=(url, trials // processes))
                 for _ in range(processes)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return trials / (time.time() - t0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--processes", type=int, default=2)
    a = ap.parse_args()
    print(f"optuna {optuna.__version__}, SQLite storage, random sampler, trivial objective")
    print(f"1 process: {measure(a.trials, 1):.0f} trials/s")
    print(f"{a.processes} processes: {measure(a.trials, a.processes):.0f} trials/s")
