#!/usr/bin/python3
"""caviar's ask/tell over HTTP against Optuna 3.1's ask/tell on SQLite storage, side by side.

Each side runs the same loop in --clients processes until --trials trials are done: ask for a
trial (learning_rate and l2 on log scales), report --epochs epochs of a trivial objective (Optuna:
trial.report and trial.should_prune, as a pruned program would), and tell the result.

caviar side: caviard (its SQLite file durable, synchronous=FULL as shipped) with no workers, a job
whose trainer is "ask" and ASHA pruning; the clients use clients/python/caviar_client.py, one
keep-alive-less HTTP request per call, each answered after its group commit. Optuna side:
optuna.create_study on a SQLite file with TPE and the median pruner, each process loading the
study and calling study.ask / trial.report / trial.should_prune / study.tell.

Prints, for each side, trials per second and the median and 99th percentile latency of ask,
report and tell (Optuna's report includes should_prune, its answer to "go on or stop"), and the
ratio of caviar's throughput to Optuna's. Exit status 0 after printing; 77 (meson's "skipped")
without python3-optuna.

Usage: /usr/bin/python3 bench/asktell.py [--build build] [--trials 300] [--clients 2]
       [--epochs 3]"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import caviar_client  # noqa: E402
from caviar_harness import Coordinator  # noqa: E402


def objective(lr, l2, epoch):
    return min(1.0, abs(lr - 1e-3) * 100 + l2 + 0.1 / epoch)


def caviar_client_loop(url, job_id, epochs, out):
    times = {"ask": [], "report": [], "tell": []}
    client = caviar_client.Client(url, name=f"bench-{os.getpid()}")
    done = 0
    while True:
        t0 = time.perf_counter()
        trial, finished, retry_after = client.ask(job_id)
        times["ask"].append(time.perf_counter() - t0)
        if trial is None:
            if finished:
                break
            time.sleep(retry_after)
            continue
        lr, l2 = trial.params["learning_rate"], trial.params["l2"]
        best = 1.0
        for epoch in range(1, epochs + 1):
            value = objective(lr, l2, epoch)
            best = min(best, value)
            t0 = time.perf_counter()
            go_on = trial.report(epoch, dev_error=value, dev_cost=value)
            times["report"].append(time.perf_counter() - t0)
            if not go_on:
                break
        t0 = time.perf_counter()
        trial.tell(dev_error=best, dev_cost=best)
        times["tell"].append(time.perf_counter() - t0)
        done += 1
    out.put((done, times))


def optuna_client_loop(url, n, epochs, out):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="bench", storage=url,
                              sampler=optuna.samplers.TPESampler(seed=os.getpid()),
                              pruner=optuna.pruners.MedianPruner())
    times = {"ask": [], "report": [], "tell": []}
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
        l2 = trial.suggest_float("l2", 1e-6, 1, log=True)
        times["ask"].append(time.perf_counter() - t0)
        best, state = 1.0, optuna.trial.TrialState.COMPLETE
        for epoch in range(1, epochs + 1):
            value = objective(lr, l2, epoch)
            best = min(best, value)
            t0 = time.perf_counter()
            trial.report(value, epoch)
            stop = trial.should_prune()
            times["report"].append(time.perf_counter() - t0)
            if stop:
                state = optuna.trial.TrialState.PRUNED
                break
        t0 = time.perf_counter()
        if state == optuna.trial.TrialState.PRUNED:
            study.tell(trial, state=state)
        else:
            study.tell(trial, best)
        times["tell"].append(time.perf_counter() - t0)
    out.put((n, times))


def run_clients(target, args_of, clients):
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=target, args=(*args_of(i), out))
             for i in range(clients)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    times = {k: [x for _, t in results for x in t[k]] for k in ("ask", "report", "tell")}
    return sum(n for n, _ in results) / elapsed, times


def caviar_side(build, trials, clients, epochs):
    c = Coordinator(build, workers=0, validate=False).start()
    try:
        job = {"name": "asktell-bench", "trainer": "ask", "trial": {"epochs": epochs},
               "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-5,
                                           "max": 1e-1},
                         "l2": {"type": "float", "scale": "log", "min": 1e-6, "max": 1}},
               "budget": {"max_trials": trials, "max_parallel": clients},
               "refine": {"rounds": [trials]},
               "search": {"sampler": "tpe", "pruner": "asha",
                          "asha": {"min_epochs": 1, "eta": 3}}}
        status, body = c.request("POST", "/v1/jobs", job)
        if status != 201:
            raise RuntimeError(f"job refused: {status} {body}")
        url = f"http://127.0.0.1:{c.port}"
        return run_clients(caviar_client_loop, lambda i: (url, body["id"], epochs), clients)
    finally:
        c.stop()
        c.close()


def optuna_side(trials, clients, epochs):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{os.path.join(d, 'optuna.db')}"
        optuna.create_study(study_name="bench", storage=url)
        share = [trials // clients + (i < trials % clients) for i in range(clients)]
        return run_clients(optuna_client_loop, lambda i: (url, share[i], epochs), clients)


def describe(name, rate, times):
    def ms(xs, q):
        xs = sorted(xs)
        return 1000 * (statistics.median(xs) if q == 50 else xs[min(len(xs) - 1,
                                                                    int(q / 100 * len(xs)))])
    parts = [f"{k} p50 {ms(v, 50):.1f} ms, p99 {ms(v, 99):.1f} ms" for k, v in times.items() if v]
    print(f"{name:>7}: {rate:7.1f} trials/s; " + "; ".join(parts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    try:
        import optuna
    except ImportError:
        print("asktell: python3-optuna is not installed; skipped")
        return 77
    print(f"{args.trials} trials, {args.clients} client processes, {args.epochs} epochs "
          f"reported per trial (fewer when pruned); caviar with ASHA, Optuna {optuna.__version__} "
          "with TPE and the median pruner on SQLite")
    cav_rate, cav_times = caviar_side(os.path.abspath(args.build), args.trials, args.clients,
                                      args.epochs)
    opt_rate, opt_times = optuna_side(args.trials, args.clients, args.epochs)
    describe("caviar", cav_rate, cav_times)
    describe("optuna", opt_rate, opt_times)
    print(f"caviar/Optuna throughput: {cav_rate / opt_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
