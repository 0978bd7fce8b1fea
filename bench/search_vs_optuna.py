#!/usr/bin/python3
"""caviar's search against Optuna 3.1 on the same job, the same data split and the same 2 cores.

caviar side: caviard with 2 local workers × 1 BLAS thread runs the job spec (--spec, default
examples/fashion-mnist.json) with its time budget set to --seconds. Each completed trial's finish
time and objective (dev_error) come from the HTTP API (schemas/api.md); at the end the job's best
model is scored on the test set through POST /v1/jobs/{id}/evaluate (the single best model, the
job's once-per-job test score), and the top-K models (K = --ensemble, 3 as `./dev main` uses) are
downloaded and scored as an ensemble with `caviar-worker evaluate`.

Optuna side: Optuna 3.1 (Debian's python3-optuna), TPESampler and MedianPruner with their
defaults, 2 processes × 1 thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)) sharing one SQLite
study, tunes the same `space` with PyTorch 1.13 (python3-torch) training the network the job's
fixed `trial` fields describe, on the same train/dev split, for the same --seconds. Every epoch's
dev error goes to the pruner. Trials still running at the deadline are stopped, as caviard
cancels its own at the job's time budget.

The two sides run one after the other (caviar first), each with the 2 cores to itself: both are
built to use 2 workers on 2 cores, and running them together would have each side's 2 workers
fight the other's for the cores. caviar's clock starts when the job is posted, its 2 workers
connected; Optuna's when both processes have loaded their data; a trial counts when it completes
within --seconds of that start.

What is the same on both sides:
- The split: caviar shuffles the training file with its own generator (xoshiro256** seeded
  through splitmix64 with cv_rng_derive(seed, 1), Fisher-Yates with Lemire's bounded draws,
  common/rng.c; subsampled first when dataset.max_examples is set) and cuts train, then dev, then
  test (common/dataset.c, worker/trial_data.c). CaviarRng below is a port of that generator, and
  the split it gives is checked against the normalization statistics stored in caviar's best
  model file (the mean and 1/σ of exactly the training rows): the run fails if they differ.
- The inputs: each feature normalized with the training rows' mean and population σ (1/σ = 1 for
  a constant feature), in float32 as caviar does; raw 0..255 pixels are augmented first when the
  trial flips or shifts images.
- The network: input dropout, then per hidden layer Linear (no bias under batch norm) → batch norm
  (momentum 1 − bn_momentum in PyTorch's convention) → activation → inverted dropout with p =
  1 − keep_prob; softmax output with cross-entropy; He/Xavier/Glorot/random/zeros initialization
  of the weights with init_scale, zero biases.
- Training: mini-batches reshuffled every epoch, the last partial batch included; the optimizer,
  learning rate, β's, ε and decay schedule of the trial; early stopping on dev cost with the
  trial's patience; the reported dev error is that of the epoch with the lowest dev cost, whose
  weights are the trial's model.
- The choice of the best trial: lowest dev error, then lowest dev cost, then fewest parameters,
  then the earliest trial (caviar's order=best).

Known differences, small: PyTorch's batch norm keeps the unbiased running variance (caviar the
biased one); PyTorch's momentum SGD starts its velocity at the first gradient (caviar at 0); a
caviar trial reads the dataset itself (part of its time), an Optuna process once. The top-K
ensemble is a second look at the test set beside the job's once-per-job score: it is reported,
not chosen by.

Output: the best dev error of each side against time, the time each side needs to reach Optuna's
final best dev error (and caviar's time over Optuna's), the test accuracy of each side's best
model and top-K ensemble, and the trials each side ran and pruned, with the targets beside them
(printed, not asserted): caviar reaches Optuna's final dev error in at most 1/3 of Optuna's
time, and ends at least 1 point of test accuracy ahead.

Exit status: 0 after printing the comparison; 1 when a side completed no trial within the budget
or the split check fails; 77 (meson's "skipped") when python3-optuna, python3-torch or the
dataset is missing.

Usage: /usr/bin/python3 bench/search_vs_optuna.py [--build build] [--spec SPEC.json]
           [--seconds S] [--trials N] [--step 30] [--ensemble 3] [--side both|caviar|optuna]
The full run: /usr/bin/python3 bench/search_vs_optuna.py --build build   (2 × 480 s and change)
Smoke run, 60 s per side on 12,000 examples (2 to 3 minutes; meson test search_vs_optuna_smoke):
       /usr/bin/python3 bench/search_vs_optuna.py --spec bench/fashion-mnist-smoke.json --step 15
"""
import os

# The thread limits must be in the environment before torch, numpy or a worker loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

SKIP = 77  # the exit status that tells meson the test was skipped
try:
    import numpy as np  # noqa: E402
    import optuna  # noqa: E402
    import torch  # noqa: E402
except ImportError as e:
    print(f"search_vs_optuna: skipped: Python module {e.name} is missing "
          "(Debian: apt-get install python3-numpy python3-optuna python3-torch)")
    sys.exit(SKIP)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
from caviar_harness import Coordinator  # noqa: E402
from torch_reference import read_idx  # noqa: E402

MASK64 = (1 << 64) - 1

# ---- caviar's generator and split --------------------------------------------------------


def _splitmix64(x):
    """One splitmix64 step: (new state, output), as common/rng.c."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return x, z ^ (z >> 31)


def rng_derive(seed, stream):
    """cv_rng_derive: a child seed from a parent seed and a stream index."""
    x = seed ^ ((stream * 0xD1342543DE82EF95 + 0x2545F4914F6CDD1D) & MASK64)
    x, _ = _splitmix64(x)
    _, z = _splitmix64(x)
    return z


class CaviarRng:
    """cv_rng_t: xoshiro256** seeded through splitmix64, with cv_rng_below and
    cv_rng_shuffle_u32."""

    def __init__(self, seed):
        self.s = []
        x = seed & MASK64
        for _ in range(4):
            x, z = _splitmix64(x)
            self.s.append(z)

    def next(self):
        s0, s1, s2, s3 = self.s
        x = (s1 * 5) & MASK64
        result = ((((x << 7) | (x >> 57)) & MASK64) * 9) & MASK64
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & MASK64
        self.s = [s0, s1, s2, s3]
        return result

    def below(self, n):
        """Uniform in [0, n) by Lemire's multiply-and-reject on the high 32 bits."""
        m = (self.next() >> 32) * n
        low = m & 0xFFFFFFFF
        if low < n:
            threshold = ((1 << 32) - n) % n
            while low < threshold:
                m = (self.next() >> 32) * n
                low = m & 0xFFFFFFFF
        return m >> 32

    def permutation(self, m):
        """cv_dataset_shuffle's permutation: row i of the shuffled set is row perm[i]."""
        perm = list(range(m))
        for i in range(m, 1, -1):
            j = self.below(i)
            perm[i - 1], perm[j] = perm[j], perm[i - 1]
        return np.array(perm, dtype=np.int64)


def llround(x):
    """C's llround for x >= 0 (halves away from zero), unlike Python's round."""
    f = math.floor(x)
    return int(f + 1 if x - f >= 0.5 else f)


def split_fractions(split, has_test_files, m):
    """(train, dev, test) fractions and whether the test set is the test files, as
    common/trial_spec.c parse_split and worker/trial_data.c decide them."""
    auto = (0.6, 0.2, 0.2) if m < 1000000 else (0.98, 0.01, 0.01)
    if split is None:
        return ((5 / 6, 1 / 6, 0.0), True) if has_test_files else (auto, False)
    if split == "auto":
        return auto, False
    if set(split) == {"dev"}:
        if not has_test_files:
            raise SystemExit("split {\"dev\": d} needs the dataset's test files")
        return (1 - split["dev"], split["dev"], 0.0), True
    return (split.get("train", 0.0), split["dev"], split.get("test", 0.0)), False


def caviar_split(m_file, trial, seed, has_test_files):
    """Row indices of the file's train, dev and test examples (test None when the test set is
    the separate test files), exactly as a caviar trial with this seed splits them."""
    rng = CaviarRng(rng_derive(seed, 1))  # stream 1: the split
    rows = np.arange(m_file)
    max_examples = trial["dataset"].get("max_examples", 0)
    if max_examples and max_examples < m_file:
        rows = rows[rng.permutation(m_file)][:max_examples]
    m = rows.shape[0]
    (f_train, f_dev, _), files = split_fractions(trial.get("split"), has_test_files, m)
    ntrain = min(llround(m * f_train), m)
    ndev = min(llround(m * f_dev), m - ntrain)
    rows = rows[rng.permutation(m)]
    test = None if files else rows[ntrain + ndev:]
    return rows[:ntrain], rows[ntrain:ntrain + ndev], test


def resolve(path, base):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def prepare_data(spec, spec_dir, out_dir):
    """Loads the job's IDX dataset, splits it as caviar does, normalizes it with the training
    rows' statistics and saves the arrays the Optuna processes read to out_dir. Returns a dict
    with the sizes, the statistics and the test set (raw and normalized)."""
    trial = spec["trial"]
    ds = trial["dataset"]
    if ds.get("format", "idx") != "idx":
        raise SystemExit("search_vs_optuna: only IDX datasets are supported (Fashion-MNIST)")
    images = read_idx(resolve(ds["images"], spec_dir))
    labels = read_idx(resolve(ds["labels"], spec_dir)).astype(np.int64)
    has_test = bool(ds.get("test_images"))
    seed = trial.get("seed", spec.get("seed", 1))
    train, dev, test = caviar_split(images.shape[0], trial, seed, has_test)
    if has_test:
        test_images = read_idx(resolve(ds["test_images"], spec_dir))
        test_labels = read_idx(resolve(ds["test_labels"], spec_dir)).astype(np.int64)
    else:
        test_images, test_labels = images[test], labels[test]
    height, width = images.shape[1], images.shape[2]
    flat = images.reshape(images.shape[0], -1)
    xtr = flat[train].astype(np.float32)
    # Mean and population σ in double, stored as float32, applied in float32: common/dataset.c.
    mean64 = xtr.astype(np.float64).mean(axis=0)
    sigma = np.sqrt(((xtr.astype(np.float64) - mean64) ** 2).mean(axis=0))
    mean = mean64.astype(np.float32)
    inv_std = np.where(sigma < 1e-8, 1.0, 1.0 / np.maximum(sigma, 1e-300)).astype(np.float32)

    def norm(x):
        return ((x.astype(np.float32) - mean) * inv_std).astype(np.float32)
    augment = bool(trial.get("augment_flip")) or trial.get("augment_translate", 0) > 0
    np.save(os.path.join(out_dir, "x_train.npy"), xtr if augment else norm(xtr))
    np.save(os.path.join(out_dir, "y_train.npy"), labels[train])
    np.save(os.path.join(out_dir, "x_dev.npy"), norm(flat[dev]))
    np.save(os.path.join(out_dir, "y_dev.npy"), labels[dev])
    np.save(os.path.join(out_dir, "mean.npy"), mean)
    np.save(os.path.join(out_dir, "inv_std.npy"), inv_std)
    classes = ds.get("classes") or int(max(labels.max(), test_labels.max() if
                                           test_labels.size else 0)) + 1
    return {"m_train": len(train), "m_dev": len(dev), "m_test": int(test_labels.shape[0]),
            "mean": mean, "inv_std": inv_std, "height": height, "width": width,
            "classes": int(classes), "n_x": flat.shape[1],
            "test_images": test_images, "test_labels": test_labels,
            "x_test": norm(test_images.reshape(test_images.shape[0], -1)),
            "test_is_files": has_test}


def write_idx(images, labels, directory):
    """Raw IDX files of a test set, for `caviar-worker evaluate`; returns their paths."""
    ip, lp = os.path.join(directory, "test-images.idx"), os.path.join(directory, "test-labels.idx")
    with open(ip, "wb") as f:
        f.write(struct.pack(">HBBIII", 0, 8, 3, *images.shape))
        f.write(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    with open(lp, "wb") as f:
        f.write(struct.pack(">HBBI", 0, 8, 1, labels.shape[0]))
        f.write(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return ip, lp


def model_normalization(path, n_features):
    """The mean and 1/σ arrays at the end of a caviar model file (worker/model_file.h: they come
    right before the closing CRC-32)."""
    with open(path, "rb") as f:
        data = f.read()
    end = len(data) - 4
    inv = np.frombuffer(data[end - 4 * n_features:end], dtype="<f4")
    mean = np.frombuffer(data[end - 8 * n_features:end - 4 * n_features], dtype="<f4")
    return mean, inv


# ---- the trial: caviar's spec fields in PyTorch ------------------------------------------

# cv_trial_spec_defaults (common/trial_spec.c) for the fields the network and training use.
TRIAL_DEFAULTS = {
    "hidden_layers": 1, "hidden_units": 128, "activation": "relu", "keep_prob": 1.0,
    "batch_norm": False, "input_keep_prob": 1.0, "output": "softmax", "leaky_slope": 0.01,
    "init": "he", "init_scale": 1.0, "bn_momentum": 0.9, "bn_epsilon": 1e-5, "l2": 0.0, "l1": 0.0,
    "optimizer": "adam", "learning_rate": 0.001, "beta": 0.9, "beta1": 0.9, "beta2": 0.999,
    "epsilon": 1e-8, "decay": "none", "decay_rate": 1.0, "decay_base": 0.95, "decay_k": 1.0,
    "decay_every": 1, "decay_min": 0.0, "warmup_epochs": 0, "label_smoothing": 0.0,
    "batch_size": 64, "epochs": 10, "patience": 0, "seed": 1,
    "augment_flip": False, "augment_translate": 0,
}


def trial_config(fixed, params, job_seed):
    """The effective trial: defaults, then the job's fixed fields, then the sampled values."""
    cfg = dict(TRIAL_DEFAULTS, seed=job_seed)
    cfg.update({k: v for k, v in fixed.items() if k not in ("dataset", "split")})
    cfg.update(params)
    layers = cfg["hidden_units"]
    n = len(layers) if isinstance(layers, list) else cfg["hidden_layers"]
    cfg["hidden_layers"] = n
    for key in ("hidden_units", "activation", "keep_prob", "batch_norm"):
        if not isinstance(cfg[key], list):
            cfg[key] = [cfg[key]] * n
    return cfg


def suggest(trial, space):
    """Samples every parameter of the job's space in Optuna with the same scale and bounds."""
    params = {}
    for name, p in space.items():
        kind, scale = p["type"], p.get("scale", "linear")
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, p["values"])
        elif scale == "one_minus_log":  # 1 − β on a log scale
            params[name] = 1.0 - trial.suggest_float(f"one_minus_{name}", 1.0 - p["max"],
                                                     1.0 - p["min"], log=True)
        elif scale == "power_of_two":  # a uniform exponent, the reachable ones (common/space.c)
            lo = math.frexp(p["min"])[1] - (1 if math.frexp(p["min"])[0] == 0.5 else 0)
            hi = math.frexp(p["max"])[1] - 1
            params[name] = 2 ** trial.suggest_int(f"log2_{name}", lo, hi)
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(p["min"]), int(p["max"]),
                                             log=scale == "log")
        else:
            params[name] = trial.suggest_float(name, p["min"], p["max"], log=scale == "log")
    return params


def build_model(cfg, n_x, classes):
    """The caviar network of cfg as a torch.nn.Sequential, initialized as worker/nn.c does."""
    if cfg["output"] != "softmax":
        raise SystemExit("search_vs_optuna: only softmax outputs are supported")
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
            "leaky_relu": lambda: torch.nn.LeakyReLU(cfg["leaky_slope"])}
    mods, k = [], n_x
    if cfg["input_keep_prob"] < 1:
        mods.append(torch.nn.Dropout(1 - cfg["input_keep_prob"]))
    linears = []
    for units, act, keep, bn in zip(cfg["hidden_units"], cfg["activation"], cfg["keep_prob"],
                                    cfg["batch_norm"]):
        lin = torch.nn.Linear(k, units, bias=not bn)
        mods.append(lin)
        linears.append(lin)
        if bn:  # caviar: run = m·run + (1 − m)·batch; PyTorch's momentum is 1 − m
            mods.append(torch.nn.BatchNorm1d(units, eps=cfg["bn_epsilon"],
                                             momentum=1 - cfg["bn_momentum"]))
        mods.append(acts[act]())
        if keep < 1:
            mods.append(torch.nn.Dropout(1 - keep))
        k = units
    out = torch.nn.Linear(k, classes)
    mods.append(out)
    linears.append(out)
    scale = cfg["init_scale"]
    with torch.no_grad():
        for lin in linears:
            fan_out, fan_in = lin.weight.shape
            sd = {"zeros": 0.0, "random": 0.01 * scale, "xavier": scale * math.sqrt(1 / fan_in),
                  "glorot": scale * math.sqrt(2 / (fan_in + fan_out)),
                  "he": scale * math.sqrt(2 / fan_in)}[cfg["init"]]
            lin.weight.normal_(0.0, sd) if sd > 0 else lin.weight.zero_()
            if lin.bias is not None:
                lin.bias.zero_()
    return torch.nn.Sequential(*mods), [lin.weight for lin in linears]


def make_optimizer(cfg, model, weights, m_train):
    """The trial's optimizer. caviar's cost adds λ/(2m)·Σ‖W‖² over the weights (m = training
    examples), so its gradient adds (λ/m)·W to dW before the optimizer step, biases and batch-norm
    parameters excluded (worker/nn.c add_reg_grad). PyTorch's weight_decay=wd adds wd·W to the
    gradient before the step as well (coupled L2, not AdamW), so wd = λ/m on a parameter group
    holding the weights alone is the same update."""
    ids = {id(w) for w in weights}
    others = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": weights, "weight_decay": cfg["l2"] / m_train},
              {"params": others, "weight_decay": 0.0}]
    lr, opt = cfg["learning_rate"], cfg["optimizer"]
    if opt == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(cfg["beta1"], cfg["beta2"]),
                                eps=cfg["epsilon"])
    if opt == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=cfg["beta2"], eps=cfg["epsilon"])
    if opt == "momentum":  # v = βv + (1 − β)·dW is PyTorch's momentum with dampening β
        return torch.optim.SGD(groups, lr=lr, momentum=cfg["beta"], dampening=cfg["beta"])
    return torch.optim.SGD(groups, lr=lr)


def learning_rate_at(cfg, epoch):
    """cv_learning_rate_at (worker/optim.c); epoch counts from 0, after a linear warmup."""
    a0, d, warmup = cfg["learning_rate"], cfg["decay"], cfg["warmup_epochs"]
    if epoch < warmup:
        return a0 * (epoch + 1) / (warmup + 1)
    epoch, span = epoch - warmup, cfg["epochs"] - warmup
    if d == "inverse_time":
        return a0 / (1 + cfg["decay_rate"] * epoch)
    if d == "exponential":
        return a0 * cfg["decay_base"] ** epoch
    if d == "sqrt":
        return a0 if epoch == 0 else a0 * cfg["decay_k"] / math.sqrt(epoch)
    if d == "staircase":
        return a0 / (1 + cfg["decay_rate"] * math.floor(epoch / cfg["decay_every"]))
    if d == "cosine":
        a_min = cfg["decay_min"] * a0
        x = epoch / span if span > 0 and epoch < span else 1.0
        return a_min + (a0 - a_min) * (1 + math.cos(math.pi * x)) / 2
    return a0


def augment(xb, height, width, flip, translate, gen):
    """cv_augment_batch on raw images: a left-right flip with probability 1/2, then a shift of
    [−t, t] pixels along each axis, uncovered pixels 0."""
    b = xb.shape[0]
    img = xb.view(b, height, width)
    if flip:
        mirror = torch.rand(b, generator=gen) < 0.5
        img = torch.where(mirror[:, None, None], img.flip(2), img)
    if translate > 0:
        t = translate
        pad = torch.nn.functional.pad(img, (t, t, t, t))
        dx = torch.randint(-t, t + 1, (b,), generator=gen)
        dy = torch.randint(-t, t + 1, (b,), generator=gen)
        rows = torch.arange(height)[None, :] + t - dy[:, None]  # source row of each output row
        cols = torch.arange(width)[None, :] + t - dx[:, None]
        img = pad[torch.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return img.reshape(b, height * width)


class OutOfTime(Exception):
    """The budget ended while the trial was training."""


@torch.no_grad()
def score(model, x, y):
    """Mean cross-entropy and error of model in inference mode."""
    model.eval()
    logits = torch.cat([model(x[i:i + 4096]) for i in range(0, x.shape[0], 4096)])
    cost = float(torch.nn.functional.cross_entropy(logits, y))
    error = float((logits.argmax(dim=1) != y).float().mean())
    return cost, error


def train_trial(cfg, data, deadline, report=None):
    """Trains cfg as a caviar worker would: returns (status, best dev error, its dev cost,
    best epoch, epochs run, the best epoch's state dict, parameter count). report(epoch, dev
    error) is called after every epoch and may raise to stop the trial."""
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    xtr, ytr, xdev, ydev = data["x_train"], data["y_train"], data["x_dev"], data["y_dev"]
    m = xtr.shape[0]
    model, weights = build_model(cfg, xtr.shape[1], data["classes"])
    opt = make_optimizer(cfg, model, weights, m)
    batch = min(cfg["batch_size"], m)
    raw = cfg["augment_flip"] or cfg["augment_translate"] > 0
    best = (math.inf, None, None, 0, None)  # dev cost, dev error, epoch, state
    since_best, epochs_run = 0, 0
    for epoch in range(cfg["epochs"]):
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(cfg, epoch)
        model.train()
        perm = torch.randperm(m, generator=gen)
        for step, start in enumerate(range(0, m, batch)):
            if step % 20 == 0 and time.time() > deadline:
                raise OutOfTime()
            idx = perm[start:start + batch]
            xb, yb = xtr[idx], ytr[idx]
            if raw:
                xb = augment(xb, data["height"], data["width"], cfg["augment_flip"],
                             cfg["augment_translate"], gen)
                xb = (xb - data["mean"]) * data["inv_std"]
            loss = torch.nn.functional.cross_entropy(model(xb), yb,
                                                     label_smoothing=cfg["label_smoothing"])
            if cfg["l1"] > 0:  # caviar's L1 term λ1/m·Σ|W| in the loss gives its (λ1/m)·sign(W)
                loss = loss + cfg["l1"] / m * sum(w.abs().sum() for w in weights)
            if not math.isfinite(float(loss)):
                return "diverged", None, None, None, epoch + 1, None, 0
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dev_cost, dev_error = score(model, xdev, ydev)
        if not math.isfinite(dev_cost):
            return "diverged", None, None, None, epoch + 1, None, 0
        epochs_run = epoch + 1
        if dev_cost < best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = (dev_cost, dev_error, epoch + 1, state)
            since_best = 0
        else:
            since_best += 1
        if report:
            report(epoch + 1, dev_error)
        if cfg["patience"] > 0 and since_best >= cfg["patience"]:
            break
    n_params = sum(p.numel() for p in model.parameters())
    return "completed", best[1], best[0], best[2], epochs_run, best[3], n_params


# ---- the Optuna side ----------------------------------------------------------------------


def rank_key(trial):
    """caviar's order=best for an Optuna trial: dev error, dev cost, parameters, trial number."""
    a = trial.user_attrs
    return (trial.value, a["dev_cost"], a["n_params"], trial.number)


def optuna_process(index, opts, spec, ready, start, deadline_box):
    """One Optuna worker: 1 thread, the shared study. It loads its data, says it is ready, and
    runs trials from the start signal until the deadline the parent set. opts: the study's
    storage URL, the data directory (where models go), the trial cap, the seed and how many
    best models to keep."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    with open(os.path.join(opts["dir"], "info.json")) as f:
        info = json.load(f)
    data = {k: torch.from_numpy(np.load(os.path.join(opts["dir"], f"{k}.npy")))
            for k in ("x_train", "y_train", "x_dev", "y_dev", "mean", "inv_std")}
    data.update(info)
    ready.put(index)
    start.wait()
    deadline = deadline_box.value
    job_seed = spec.get("seed", 1)
    storage = optuna.storages.RDBStorage(opts["url"],
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.load_study(study_name="bench", storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=opts["seed"] * 1000 + index),
                              pruner=optuna.pruners.MedianPruner())

    def objective(trial):
        cfg = trial_config(spec["trial"], suggest(trial, spec.get("space", {})), job_seed)

        def report(epoch, dev_error):
            trial.report(dev_error, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        try:
            status, dev_error, dev_cost, best_epoch, epochs_run, state, n_params = train_trial(
                cfg, data, deadline, report)
            if time.time() > deadline:  # its last epoch ended past the budget
                raise OutOfTime()
        except OutOfTime:
            trial.set_user_attr("stopped", "at the budget")
            raise
        trial.set_user_attr("epochs_run", epochs_run)
        if status != "completed":
            trial.set_user_attr("stopped", status)
            return float("nan")  # a diverged trial fails, as it ends `diverged` in caviar
        trial.set_user_attr("cfg", cfg)
        trial.set_user_attr("dev_cost", dev_cost)
        trial.set_user_attr("n_params", n_params)
        trial.set_user_attr("best_epoch", best_epoch)
        # Only a model that may be among the best few is kept, so disk use stays bounded.
        key = (dev_error, dev_cost, n_params, trial.number)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if sum(rank_key(t) < key for t in done) < opts["keep"]:
            torch.save(state, os.path.join(opts["dir"], f"model_{trial.number}.pt"))
        trial.set_user_attr("finished_at", time.time())
        return dev_error

    callbacks = []
    if opts["max_trials"]:
        callbacks.append(optuna.study.MaxTrialsCallback(opts["max_trials"], states=None))
    study.optimize(objective, timeout=max(0.0, deadline - time.time()), catch=(OutOfTime,),
                   callbacks=callbacks)


def run_optuna(spec, data, seconds, max_trials, seed, keep, tmp):
    """Runs the Optuna study in 2 processes for seconds, with the arrays prepare_data saved in
    tmp, where the models of the best `keep` trials go too; returns the side's result record."""
    with open(os.path.join(tmp, "info.json"), "w") as f:
        json.dump({k: data[k] for k in ("classes", "height", "width")}, f)
    url = f"sqlite:///{os.path.join(tmp, 'optuna.db')}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(study_name="bench", storage=url, direction="minimize")
    ctx = multiprocessing.get_context("spawn")
    ready, start, deadline_box = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    opts = {"url": url, "dir": tmp, "max_trials": max_trials, "seed": seed, "keep": keep}
    procs = [ctx.Process(target=optuna_process, args=(i, opts, spec, ready, start, deadline_box))
             for i in range(2)]
    for p in procs:
        p.start()
    # The clock starts when both processes hold their data, as caviar's starts with its workers
    # connected: neither side is timed for starting up.
    for _ in procs:
        ready.get(timeout=300)
    t0 = time.time()
    deadline_box.value = t0 + seconds
    start.set()
    for p in procs:
        p.join(seconds + 120)
        if p.is_alive():
            p.terminate()
            p.join()
    wall = time.time() - t0
    study = optuna.load_study(study_name="bench", storage=url)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.user_attrs.get("finished_at", math.inf) - t0 <= seconds]
    stopped = sum(t.user_attrs.get("stopped") == "at the budget" for t in trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    counts = {"started": len(trials), "completed": len(done), "pruned": pruned,
              "stopped at the budget": stopped,
              "other (failed, diverged, late)": len(trials) - len(done) - pruned - stopped}
    curve = sorted((t.user_attrs["finished_at"] - t0, t.value) for t in done)
    ranked = sorted(done, key=rank_key)
    return {"curve": curve, "ranked": ranked, "counts": counts, "wall": wall}


@torch.no_grad()
def optuna_test_accuracy(ranked, data, k, model_dir):
    """Test accuracy of the first k ranked trials' models (saved in model_dir), probabilities
    averaged."""
    x = torch.from_numpy(data["x_test"])
    y = torch.from_numpy(data["test_labels"])
    probs = 0
    for t in ranked[:k]:
        model, _ = build_model(t.user_attrs["cfg"], data["n_x"], data["classes"])
        model.load_state_dict(torch.load(os.path.join(model_dir, f"model_{t.number}.pt")))
        model.eval()
        probs = probs + torch.softmax(model(x), dim=1)
    return float((probs.argmax(dim=1) == y).float().mean())


# ---- the caviar side ----------------------------------------------------------------------


def caviar_job(spec, spec_dir, seconds, max_trials):
    """The job as posted: dataset paths absolute (as `caviar submit` makes them), the time budget
    --seconds, and with --trials the trial budget (count rounds become fractions of it)."""
    job = copy.deepcopy(spec)
    ds = job["trial"]["dataset"]
    for key in ("images", "labels", "test_images", "test_labels", "csv", "test_csv"):
        if key in ds:
            ds[key] = resolve(ds[key], spec_dir)
    job.setdefault("budget", {})["max_seconds"] = seconds
    if max_trials:
        job["budget"]["max_trials"] = max_trials
        rounds = job.get("refine", {}).get("rounds")
        if rounds and sum(rounds) > 1.0 + 1e-9:  # trial counts: keep their proportions
            job["refine"]["rounds"] = [r / sum(rounds) for r in rounds]
    return job


def fetch(c, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{c.port}{path}", timeout=60) as r:
        return r.read()


def run_caviar(build, spec, spec_dir, seconds, max_trials, ensemble, data, tmp):
    """Runs the job on caviard with 2 local workers; returns the side's result record."""
    c = Coordinator(build, workers=2, extra=["--worker-threads", "1"], validate=False)
    try:
        c.start()
        c.wait_workers(2)
        job = caviar_job(spec, spec_dir, seconds, max_trials)
        t0 = time.time()
        status, body = c.request("POST", "/v1/jobs", job)
        if status != 201:
            raise SystemExit(f"caviard refused the job: {status} {body}")
        jid = body["id"]
        while True:
            status, info = c.request("GET", f"/v1/jobs/{jid}")
            if info["status"] != "running":
                break
            if time.time() - t0 > seconds + 60:
                c.request("POST", f"/v1/jobs/{jid}/cancel")
            time.sleep(0.5)
        wall = time.time() - t0
        trials, after = [], ""
        while True:
            _, page = c.request("GET", f"/v1/jobs/{jid}/trials?limit=1000{after}")
            trials += page["trials"]
            if page.get("next_cursor") is None:
                break
            after = f"&after={page['next_cursor']}"
        done = [t for t in trials if t["status"] == "completed" and t["dev_error"] is not None
                and t["finished_at"] - t0 <= seconds]
        curve = sorted((t["finished_at"] - t0, t["dev_error"]) for t in done)
        started = [t for t in trials if t["started_at"] is not None]
        pruned = sum(t["status"] == "pruned" for t in started)
        stopped = sum(t["status"] == "cancelled" for t in started)
        counts = {"started": len(started), "completed": len(done), "pruned": pruned,
                  "stopped at the budget": stopped,
                  "other (failed, diverged, late)": len(started) - len(done) - pruned - stopped}
        result = {"curve": curve, "counts": counts, "wall": wall}
        if not done:
            return result
        # The single best model: the job's once-per-job test score.
        status, body = c.request("POST", f"/v1/jobs/{jid}/evaluate", {"ensemble": 1})
        while True:
            _, info = c.request("GET", f"/v1/jobs/{jid}")
            if info.get("test_result"):
                break
            time.sleep(0.2)
        tr = info["test_result"]
        if "error" in tr:
            raise SystemExit(f"caviar's test evaluation failed: {tr['error']}")
        result["test_single"] = tr["test_accuracy"]
        result["best_trial"] = f"id {tr['trials'][0]}"
        # The top-K ensemble, scored by caviar-worker on the same test set.
        _, page = c.request("GET", f"/v1/jobs/{jid}/trials?order=best&limit={ensemble}")
        paths = []
        for t in page["trials"]:
            p = os.path.join(tmp, f"caviar_{t['id']}.model")
            with open(p, "wb") as f:
                f.write(fetch(c, f"/v1/trials/{t['id']}/model"))
            paths.append(p)
        result["ensemble_size"] = len(paths)
        if data["test_is_files"]:
            ds = job["trial"]["dataset"]
            ip, lp = ds["test_images"], ds["test_labels"]
        else:
            ip, lp = write_idx(data["test_images"], data["test_labels"], tmp)
        out = subprocess.run([os.path.join(build, "worker", "caviar-worker"), "evaluate",
                              *paths, ip, "--labels", lp], capture_output=True, text=True,
                             check=True).stdout
        result["test_ensemble"] = float(out.split("accuracy ")[1].split(",")[0])
        result["best_model"] = paths[0]
        return result
    except BaseException:
        print("caviard's log ends with:\n" + c.log_text()[-3000:], file=sys.stderr)
        raise
    finally:
        c.close()


def check_split(caviar, data):
    """Fails unless caviar's best model was trained on exactly the rows the Optuna side uses:
    its stored normalization is the mean and 1/σ of its training rows."""
    mean, inv = model_normalization(caviar["best_model"], data["n_x"])
    dm = float(np.max(np.abs(mean - data["mean"])))
    di = float(np.max(np.abs(inv - data["inv_std"]) / np.abs(data["inv_std"])))
    ok = dm < 1e-3 and di < 1e-5
    print(f"split check: caviar's model normalization vs the split here: max |Δmean| {dm:.2e}, "
          f"max relative |Δ(1/σ)| {di:.2e}: {'same training rows' if ok else 'DIFFERENT'}")
    if not ok:
        raise SystemExit("search_vs_optuna: the Optuna side's split is not caviar's")


# ---- report ---------------------------------------------------------------------------------


def best_at(curve, t):
    vals = [e for (s, e) in curve if s <= t]
    return min(vals) if vals else None


def time_to(curve, target):
    best = math.inf
    for s, e in curve:
        best = min(best, e)
        if best <= target + 1e-12:
            return s
    return None


def fmt(x):
    return "—" if x is None else f"{x:.4f}"


def report(args, cav, opt):
    print()
    print(f"{'time (s)':>9}  {'caviar best dev error':>22}  {'optuna best dev error':>22}")
    ticks = list(range(args.step, int(args.seconds) + 1, args.step))
    if not ticks or ticks[-1] != args.seconds:
        ticks.append(args.seconds)
    for t in ticks:
        c = best_at(cav["curve"], t) if cav else None
        o = best_at(opt["curve"], t) if opt else None
        print(f"{t:>9g}  {fmt(c):>22}  {fmt(o):>22}")
    print()
    for name, side in (("caviar", cav), ("optuna", opt)):
        if not side:
            continue
        n = side["counts"]
        print(f"{name}: trials started {n['started']}: completed within the budget "
              f"{n['completed']}, pruned {n['pruned']}, stopped at the budget "
              f"{n['stopped at the budget']}, other (failed, diverged, late) "
              f"{n['other (failed, diverged, late)']}")
        if "test_single" in side:
            print(f"{name}: test accuracy of the best model {side['test_single']:.4f} "
                  f"(trial {side['best_trial']}), of the top-{side['ensemble_size']} ensemble "
                  f"{side['test_ensemble']:.4f}")
    if not all(side["curve"] for side in (cav, opt) if side):
        print("search_vs_optuna: a side completed no trial within the budget")
        return 1
    if not (cav and opt):
        return 0
    target = best_at(opt["curve"], math.inf)
    t_opt = time_to(opt["curve"], target)
    t_cav = time_to(cav["curve"], target)
    print()
    print(f"Optuna's final best dev error {target:.4f}: Optuna reached it at {t_opt:.1f} s, "
          + (f"caviar at {t_cav:.1f} s: ratio caviar/Optuna {t_cav / t_opt:.2f}"
             if t_cav is not None else
             f"caviar never did (its best {best_at(cav['curve'], math.inf):.4f})")
          + " (target: <= 0.33)")
    print(f"test accuracy, single best model (caviar's once-per-job evaluation): caviar "
          f"{100 * (cav['test_single'] - opt['test_single']):+.2f} points (target: >= +1.00)")
    print(f"test accuracy, top-{args.ensemble} ensemble (probabilities averaged, as `caviar run "
          f"--ensemble {args.ensemble}`): caviar "
          f"{100 * (cav['test_ensemble'] - opt['test_ensemble']):+.2f} points")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="caviar's build directory")
    ap.add_argument("--spec", default=os.path.join(ROOT, "examples", "fashion-mnist.json"))
    ap.add_argument("--seconds", type=float, help="budget of each side (default: the spec's "
                    "budget.max_seconds, else 600)")
    ap.add_argument("--trials", type=int, default=0, help="also cap each side's trials (default: "
                    "the spec's max_trials for caviar, no cap for Optuna)")
    ap.add_argument("--step", type=int, default=30, help="seconds between the table's rows")
    ap.add_argument("--ensemble", type=int, default=3, help="models in each side's ensemble")
    ap.add_argument("--side", choices=("both", "caviar", "optuna"), default="both")
    ap.add_argument("--seed", type=int, default=1, help="seed of Optuna's samplers")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    with open(args.spec) as f:
        spec = json.load(f)
    spec_dir = os.path.dirname(os.path.abspath(args.spec))
    if args.seconds is None:
        args.seconds = float(spec.get("budget", {}).get("max_seconds", 600))
    if args.step <= 0 or args.seconds <= 0:
        ap.error("--seconds and --step must be positive")

    ds = spec["trial"]["dataset"]
    for key in ("images", "labels", "test_images", "test_labels"):
        if key in ds and not os.path.exists(resolve(ds[key], spec_dir)):
            print(f"search_vs_optuna: skipped: {resolve(ds[key], spec_dir)} is missing "
                  "(Debian: apt-get install dataset-fashion-mnist)")
            return SKIP
    with tempfile.TemporaryDirectory(prefix="search_vs_optuna.") as tmp:
        data = prepare_data(spec, spec_dir, tmp)
        print(f"search_vs_optuna: {spec.get('name', args.spec)}, {args.seconds:g} s per side, "
              f"one side after the other, each on 2 workers x 1 thread; "
              f"caviar {os.path.basename(build)}/, Optuna {optuna.__version__} "
              f"(TPESampler + MedianPruner, SQLite) with PyTorch {torch.__version__}")
        print(f"data: {data['m_train']} train / {data['m_dev']} dev (caviar's split, seed "
              f"{spec['trial'].get('seed', spec.get('seed', 1))}), {data['m_test']} test "
              f"examples, scored once per side at the end", flush=True)
        cav = opt = None
        if args.side in ("both", "caviar"):
            cav = run_caviar(build, spec, spec_dir, args.seconds, args.trials, args.ensemble,
                             data, tmp)
            print(f"caviar: {cav['counts']['started']} trials in {cav['wall']:.1f} s", flush=True)
            if "best_model" in cav:
                check_split(cav, data)
        if args.side in ("both", "optuna"):
            opt = run_optuna(spec, data, args.seconds, args.trials, args.seed, args.ensemble, tmp)
            print(f"optuna: {opt['counts']['started']} trials in {opt['wall']:.1f} s", flush=True)
            if opt["ranked"]:
                opt["test_single"] = optuna_test_accuracy(opt["ranked"], data, 1, tmp)
                opt["test_ensemble"] = optuna_test_accuracy(opt["ranked"], data, args.ensemble,
                                                            tmp)
                opt["best_trial"] = f"#{opt['ranked'][0].number}"
                opt["ensemble_size"] = min(args.ensemble, len(opt["ranked"]))
        return report(args, cav, opt)


if __name__ == "__main__":
    sys.exit(main())
