#!/usr/bin/env python3
"""A PyTorch program tuned by caviar: a fully-connected network on Fashion-MNIST, read from
Debian's dataset-fashion-mnist files (IDX format, parsed here; no torchvision). The dev set is
a fixed 10,000 examples of the training file; the test file is never read.

It runs in either of caviar's two ways (README.md, "Tune your own program"):

  as an external trainer, when CAVIAR_PARAMS_FILE is set (a worker started with
  --trainer torch-fmnist="python3 /ABSOLUTE/PATH/TO/fashion_mnist.py" runs it once per trial):
      reads the trial's parameters from that file and prints one `caviar: epoch=...` line per
      epoch; SIGTERM (a pruned or cancelled trial) ends it at once.

  through ask/tell, driving itself:
      python3 examples/torch/fashion_mnist.py --ask http://127.0.0.1:8470 JOB_ID [--token T]
      asks for trials until the job is done, reports each epoch, stops when told, and tells the
      best epoch's metrics (or fails the trial with the exception's text).

Parameters (all optional): learning_rate (Adam's, 1e-3), hidden_units (256), batch_size (128),
keep_prob (dropout keep probability of the hidden layer, 1; or dropout = 1 - keep_prob),
weight_decay (L2, 0), epochs (1), subset (training examples used, 0 for all 50,000), seed (1),
data_dir (/usr/share/datasets/fashion-mnist)."""

import argparse
import gzip
import json
import math
import os
import signal
import struct
import sys

import numpy as np
import torch

DATA_DIR = "/usr/share/datasets/fashion-mnist"
DEV_EXAMPLES = 10000  # the fixed dev set, taken from the training file
SPLIT_SEED = 20170825  # the split is the same for every trial, whatever its seed
TRAIN_EVAL_EXAMPLES = 10000  # train_error and train_cost are scored on at most this many

DEFAULTS = {"learning_rate": 1e-3, "hidden_units": 256, "batch_size": 128, "keep_prob": 1.0,
            "weight_decay": 0.0, "epochs": 1, "subset": 0, "seed": 1, "data_dir": DATA_DIR}


def read_idx(path, ndim):
    """The array in an IDX file of unsigned bytes (gzip-compressed) with ndim dimensions;
    ValueError naming the file when it is not one."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: too short for an IDX header")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or dims != ndim:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{path}: {len(body)} bytes of data for a shape of {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_split(data_dir):
    """(train_x, train_y, dev_x, dev_y) from the training file: inputs as float32 in [0, 1],
    one row per image, labels as int64; the dev set is DEV_EXAMPLES images chosen once."""
    images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), 3)
    labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"), 1)
    if len(images) != len(labels) or len(images) <= DEV_EXAMPLES:
        raise ValueError(f"{data_dir}: {len(images)} images and {len(labels)} labels")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(len(images)))
    dev, train = order[:DEV_EXAMPLES], order[DEV_EXAMPLES:]
    return x[train], y[train], x[dev], y[dev]


def trial_params(given):
    """The parameters of one trial: DEFAULTS overridden by given ("trainer" is ignored);
    ValueError naming a parameter that is unknown or whose value is out of range."""
    given = {k: v for k, v in given.items() if k != "trainer"}
    for name in given:
        if name not in DEFAULTS and name != "dropout":
            raise ValueError(f'unknown parameter "{name}" (known: dropout, '
                             + ", ".join(sorted(DEFAULTS)) + ")")
    if "dropout" in given:
        if "keep_prob" in given:
            raise ValueError("dropout: give keep_prob or dropout, not both")
        if isinstance(given["dropout"], bool) or not isinstance(given["dropout"], (int, float)):
            raise ValueError(f"dropout: must be a number, got {given['dropout']!r}")
        given["keep_prob"] = 1.0 - given.pop("dropout")
    p = dict(DEFAULTS, **given)
    for name in ("hidden_units", "batch_size", "epochs", "subset", "seed"):
        if isinstance(p[name], bool) or not isinstance(p[name], (int, float)) \
                or not math.isfinite(p[name]) or p[name] != int(p[name]):
            raise ValueError(f"{name}: must be an integer, got {p[name]!r}")
        p[name] = int(p[name])
    for name in ("learning_rate", "keep_prob", "weight_decay"):
        if isinstance(p[name], bool) or not isinstance(p[name], (int, float)):
            raise ValueError(f"{name}: must be a number, got {p[name]!r}")
        p[name] = float(p[name])
    if not p["learning_rate"] > 0:
        raise ValueError(f"learning_rate: must be > 0, got {p['learning_rate']}")
    if not 0 < p["keep_prob"] <= 1:
        raise ValueError(f"keep_prob: must be in (0, 1], got {p['keep_prob']}")
    if not p["weight_decay"] >= 0:
        raise ValueError(f"weight_decay: must be >= 0, got {p['weight_decay']}")
    for name in ("hidden_units", "batch_size", "epochs"):
        if p[name] < 1:
            raise ValueError(f"{name}: must be >= 1, got {p[name]}")
    if p["subset"] < 0:
        raise ValueError(f"subset: must be >= 0 (0 for all), got {p['subset']}")
    return p


def evaluate(model, x, y):
    """(error rate, mean cross-entropy) of model on x, y, in evaluation mode."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
        cost = torch.nn.functional.cross_entropy(logits, y).item()
        error = (logits.argmax(1) != y).float().mean().item()
    return error, cost


def train(p, data):
    """Trains a network of p's parameters on data (load_split's tuple), yielding each epoch's
    metrics as a dict with the keys of a caviar report."""
    train_x, train_y, dev_x, dev_y = data
    if p["subset"]:
        train_x, train_y = train_x[:p["subset"]], train_y[:p["subset"]]
    torch.manual_seed(p["seed"])
    model = torch.nn.Sequential(
        torch.nn.Linear(train_x.shape[1], p["hidden_units"]), torch.nn.ReLU(),
        torch.nn.Dropout(1.0 - p["keep_prob"]), torch.nn.Linear(p["hidden_units"], 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=p["learning_rate"],
                                 weight_decay=p["weight_decay"])
    shuffle = torch.Generator().manual_seed(p["seed"])
    for epoch in range(1, p["epochs"] + 1):
        model.train()
        for batch in torch.randperm(len(train_x), generator=shuffle).split(p["batch_size"]):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
            loss.backward()
            optimizer.step()
        dev_error, dev_cost = evaluate(model, dev_x, dev_y)
        train_error, train_cost = evaluate(model, train_x[:TRAIN_EVAL_EXAMPLES],
                                           train_y[:TRAIN_EVAL_EXAMPLES])
        if not np.isfinite(dev_cost):
            raise FloatingPointError(f"dev_cost is {dev_cost} at epoch {epoch}: diverged")
        yield {"epoch": epoch, "dev_error": dev_error, "dev_cost": dev_cost,
               "train_error": train_error, "train_cost": train_cost}


def run_external():
    """One trial, its parameters from $CAVIAR_PARAMS_FILE, one caviar: line per epoch."""
    with open(os.environ["CAVIAR_PARAMS_FILE"], encoding="utf-8") as f:
        p = trial_params(json.load(f))
    data = load_split(p["data_dir"])
    for m in train(p, data):
        print("caviar: " + " ".join(f"{k}={m[k]:.6g}" for k in
                                    ("epoch", "dev_error", "dev_cost", "train_error",
                                     "train_cost")), flush=True)
    return 0


def run_ask(url, job_id, token):
    """Asks url for job_id's trials until the job is done, training each one."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "clients", "python"))
    import caviar_client
    client = caviar_client.Client(url, token=token)
    data = None
    for trial in client.trials(job_id):
        best = None
        try:
            p = trial_params(dict(trial.params, epochs=trial.epochs))
            if data is None or p["data_dir"] != data[0]:
                data = (p["data_dir"], load_split(p["data_dir"]))
            for m in train(p, data[1]):
                if best is None or (m["dev_error"], m["dev_cost"]) < (best["dev_error"],
                                                                      best["dev_cost"]):
                    best = m  # the lowest dev error, ties to the lower dev cost
                if not trial.report(m["epoch"], dev_error=m["dev_error"],
                                    dev_cost=m["dev_cost"], train_error=m["train_error"],
                                    train_cost=m["train_cost"]):
                    break  # pruned: the best epoch so far is the result
        except Exception as e:  # the trial fails with the reason; the next one is asked for
            try:
                trial.fail(f"{type(e).__name__}: {e}")
            except Exception as lost:  # its lease is gone, say: the trial is not ours any more
                print(f"fashion_mnist.py: trial {trial.id}: {lost}", file=sys.stderr)
            continue
        trial.tell(dev_error=best["dev_error"], dev_cost=best["dev_cost"])
    return 0


def main(argv):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a stopped trial ends now, even mid-epoch
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ask", nargs=2, metavar=("URL", "JOB_ID"),
                        help="train the trials of job JOB_ID of the caviard at URL (ask/tell)")
    parser.add_argument("--token", default=os.environ.get("CAVIAR_TOKEN"),
                        help="the API token (default: $CAVIAR_TOKEN)")
    args = parser.parse_args(argv)
    if args.ask:
        if not args.ask[1].isdigit():
            parser.error(f"--ask: JOB_ID must be a job's number, got {args.ask[1]!r}")
        return run_ask(args.ask[0], int(args.ask[1]), args.token)
    if "CAVIAR_PARAMS_FILE" not in os.environ:
        parser.error("run by a caviar worker (CAVIAR_PARAMS_FILE set) or with --ask URL JOB_ID")
    try:
        return run_external()
    except (OSError, ValueError, FloatingPointError) as e:
        print(f"fashion_mnist.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
