"""What the VAE benchmarks share: the data and how it is loaded, which code and CPU were measured,
and training within a wall-clock budget."""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binarized_mnist.npz"


def git_revision() -> str:
    """The checkout's commit and whether library files differ from it (read-only git calls)."""
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "scratchvae"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"scratchvae at {rev}" + (" + uncommitted changes in scratchvae/" if dirty else "")


def load_splits(path=DATA) -> dict:
    """train (50000, 784), valid and test (10000, 784) of static binarized MNIST as float32 0/1.

    Exits with a message naming the file when it is absent or is not that data set (nothing is
    measured then). The test split is ordered by class: evaluate on all of it or a random subset.
    """
    path = Path(path)
    if not path.exists():
        sys.exit(f"error: {path} not found. This benchmark needs the static binarized MNIST file "
                 f"(see ../shared/data/README.md); nothing was measured.")
    with np.load(path) as d:
        missing = [k for k in ("train", "valid", "test") if k not in d.files]
        if missing:
            sys.exit(f"error: {path} has no {missing} array(s) (found {d.files}); expected the "
                     f"keys train, valid and test")
        splits = {k: d[k] for k in ("train", "valid", "test")}
    for k, x in splits.items():
        if x.ndim != 2 or x.shape[1] != 784 or not np.isin(x, (0, 1)).all():
            sys.exit(f"error: {path}: {k} must be (N, 784) with values 0/1, got shape {x.shape}, "
                     f"values in [{x.min()}, {x.max()}]")
    return {k: x.astype(np.float32) for k, x in splits.items()}                 # (N, 784) 0/1


def cpu_model() -> str:
    """The processor's name: the "model name" of /proc/cpuinfo (Linux), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def train_within_budget(model, data, config, work_dir, *, minutes, patience, max_epochs,
                        log=print, scores=None):
    """Train with ``scratchvae.train.train`` one epoch per call, resumed from its own checkpoint,
    while the wall-clock budget lasts and the validation score keeps improving.

    Resuming is bit-exact, so the result is the uninterrupted run cut short. Another epoch starts
    only if the last one's wall time (steps + validation + checkpoint + ``scores``) still fits in
    ``minutes``; training also stops after ``patience`` epochs without a better score, or at
    ``max_epochs``. The trainer's ``best.npz`` in ``work_dir`` holds the best-ELBO epoch.

    Parameters
    ----------
    model : scratchvae.vae.VAE, trained in place
    data : dict with "train" and "valid" arrays (N, x_dim) of the model's dtype
    config : scratchvae.train.TrainConfig with ``patience=None``; ``epochs`` is set here
    work_dir : path of an absent or empty folder
    minutes : float, the budget;  patience, max_epochs : int >= 1
    log : callable or None, receives the trainer's line per epoch
    scores : callable(history) -> list of float, or None
        One validation score per epoch so far, higher is better, called after every epoch
        (default: :func:`scratchvae.runs.validation_scores`, the validation ELBO, or L_K when
        training on the IWAE bound).

    Returns
    -------
    (history, reason, seconds): the trainer's history, why training stopped, the wall time.
    """
    from scratchvae.runs import validation_scores
    from scratchvae.train import train
    work = Path(work_dir)
    budget, t_start = 60.0 * minutes, time.perf_counter()
    history, last_epoch_wall = [], 0.0
    while True:
        elapsed = time.perf_counter() - t_start
        if len(history) >= max_epochs:
            return history, f"reached --max-epochs {max_epochs}", elapsed
        if history and elapsed + last_epoch_wall > budget:
            return history, (f"wall-clock budget: {elapsed / 60:.1f} of {minutes:g} min used, "
                             f"another epoch takes ~{last_epoch_wall:.0f} s"), elapsed
        t0 = time.perf_counter()
        config.epochs = len(history) + 1
        history = train(model, data["train"], data["valid"], config, out_dir=str(work),
                        resume=str(work / "checkpoint.npz") if history else None, log=log)
        values = scores(history) if scores is not None else validation_scores(history)
        last_epoch_wall = time.perf_counter() - t0
        best = int(np.argmax(values))
        if len(history) - 1 - best >= patience:
            return history, (f"early stopping: no validation improvement in {patience} epochs "
                             f"(best epoch {best + 1})"), time.perf_counter() - t_start
