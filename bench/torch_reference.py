#!/usr/bin/python3
"""PyTorch reference for bench/train_bench: the same 784-256-128-10 ReLU network trained with
Adam (lr 1e-3) on Fashion-MNIST, strictly one thread, at the same mini-batch sizes.

The loop is the fastest honest PyTorch loop we know: the training tensor is shuffled once per
epoch by indexing with a random permutation (a copy, like caviar's batch gathering), and each
mini-batch is a slice of it, so no DataLoader, collation or Python per-example work is timed.
Each batch size gets a warm-up on a throw-away model, then a fresh model is trained for the timed
epochs. The timed figure covers shuffling, forward, loss, backward and the Adam step; scoring is
outside it, as in caviar. Rates are wall-clock examples per second; the fastest epoch's rate
per second of this thread's CPU time is printed too, as it is steadier on a shared machine.

Data: the training file's 60,000 examples are permuted with a fixed seed and cut into 50,000
train and 10,000 dev (caviar's files-mode split with dev = 1/6; the permutation differs, the
sizes do not). Features are normalized per feature with the training set's mean and population
standard deviation (1/σ = 1 for a constant feature), as caviar's normalizer does. Initialization
is PyTorch's default (caviar uses He normal); it affects accuracy slightly, not speed.

Output, one record per line, fields as key=value:
    torch threads=1 ...
    torch speed batch=64 epochs=2 examples=100000 seconds=... examples_per_second=...
        best_epoch_examples_per_second=... best_epoch_examples_per_cpu_second=...
    torch accuracy batch=64 epochs=2 dev_examples=10000 dev_accuracy_epoch2=0.8770 dev_accuracy=...
Usage: /usr/bin/python3 bench/torch_reference.py [--batches 64,256] [--epochs 2]
       [--data /usr/share/datasets/fashion-mnist] [--warmup-steps 300]
"""
import os

# The thread limits must be in the environment before torch (and its BLAS/OpenMP) is loaded.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

DEV_FRACTION = 1.0 / 6.0


def read_idx(path):
    """Reads an IDX file (gzip or raw) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(data_dir, seed):
    images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    y = labels.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    x, y = x[perm], y[perm]
    m_dev = round(x.shape[0] * DEV_FRACTION)
    m_train = x.shape[0] - m_dev
    xtr, ytr, xdev, ydev = x[:m_train], y[:m_train], x[m_train:], y[m_train:]
    mean = xtr.astype(np.float64).mean(axis=0)
    std = xtr.astype(np.float64).std(axis=0)
    inv_std = np.where(std < 1e-8, 1.0, 1.0 / np.maximum(std, 1e-300))
    xtr = ((xtr - mean) * inv_std).astype(np.float32)
    xdev = ((xdev - mean) * inv_std).astype(np.float32)
    return (torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr),
            torch.from_numpy(np.ascontiguousarray(xdev)), torch.from_numpy(ydev))


def make_model():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def train_epoch(model, opt, loss_fn, xtr, ytr, batch, max_steps=None):
    """One epoch (or max_steps mini-batches) over a freshly shuffled copy of the training set."""
    perm = torch.randperm(xtr.shape[0])
    xs, ys = xtr[perm], ytr[perm]
    steps = 0
    for start in range(0, xs.shape[0], batch):
        if max_steps is not None and steps >= max_steps:
            break
        xb, yb = xs[start:start + batch], ys[start:start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        steps += 1


@torch.no_grad()
def accuracy(model, x, y):
    correct = 0
    for start in range(0, x.shape[0], 1024):
        pred = model(x[start:start + 1024]).argmax(dim=1)
        correct += int((pred == y[start:start + 1024]).sum())
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="64,256", help="comma-separated mini-batch sizes")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per batch size (>= 1)")
    ap.add_argument("--warmup-steps", type=int, default=300)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    batches = [int(b) for b in args.batches.split(",") if b]

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    xtr, ytr, xdev, ydev = load_split(args.data, args.seed)
    print(f"torch version={torch.__version__} threads={torch.get_num_threads()} "
          f"interop_threads={torch.get_num_interop_threads()} "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} "
          f"m_train={xtr.shape[0]} m_dev={xdev.shape[0]}", flush=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    for batch in batches:
        warm = make_model()
        warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-3)
        train_epoch(warm, warm_opt, loss_fn, xtr, ytr, batch, max_steps=args.warmup_steps)

        model = make_model()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        epoch_rates, cpu_rates = [], []
        t_all = 0.0
        acc2 = None
        for epoch in range(1, args.epochs + 1):
            t0, c0 = time.perf_counter(), time.thread_time()
            train_epoch(model, opt, loss_fn, xtr, ytr, batch)
            dt, dc = time.perf_counter() - t0, time.thread_time() - c0
            t_all += dt
            epoch_rates.append(xtr.shape[0] / dt)
            cpu_rates.append(xtr.shape[0] / dc)
            if epoch == 2:  # scored outside the timed stretch
                acc2 = accuracy(model, xdev, ydev)
        examples = args.epochs * xtr.shape[0]
        print(f"torch speed batch={batch} epochs={args.epochs} examples={examples} "
              f"seconds={t_all:.3f} examples_per_second={examples / t_all:.0f} "
              f"best_epoch_examples_per_second={max(epoch_rates):.0f} "
              f"best_epoch_examples_per_cpu_second={max(cpu_rates):.0f}", flush=True)
        acc2_text = f"{acc2:.4f}" if acc2 is not None else "n/a"
        print(f"torch accuracy batch={batch} epochs={args.epochs} dev_examples={xdev.shape[0]} "
              f"dev_accuracy_epoch2={acc2_text} dev_accuracy={accuracy(model, xdev, ydev):.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
