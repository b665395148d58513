"""The training loop: minibatches, warm-up, validation, early stopping, checkpoints.

The trainer knows nothing about the model's insides. A model is anything with
    params                      dict of named arrays (the optimizer updates them in place)
    x_dim, z_dim, dtype, likelihood, config, n_classes (None, or C for one-hot labels y)
    loss_and_grads(x, eps, estimator, beta, *, y=None, check=True) -> (loss, grads, stats)
    forward(x, eps, estimator, *, y=None) -> (objective, cache, stats)  (for validation)
    check_labels(name, y, n)
such as :class:`scratchvae.vae.VAE` (with or without labels, with any posterior family).

One epoch, in order (this order is what makes resuming bit-exact):

    perm = rng.permutation(N)
    for each minibatch of ``batch_size`` indices of perm:
        x    = X[idx]   (y = Y[idx])         (dynamic binarization: x = [u < X[idx]], u ~ U(0,1) from rng)
        eps  = rng.standard_normal((B, S, z_dim))                       S = n_samples
        beta = min(1, step / (warmup_epochs * steps_per_epoch))      (1 without warm-up)
        loss, grads = -mean ELBO (or IWAE bound) and its gradient       (model.loss_and_grads)
        optimizer.step(grads)                                           (optim.py)
    validation ELBO on the validation set with noise from a separate, fixed generator
    metrics row -> history (printed, written to metrics.csv and metrics.json)
    checkpoint (params, optimizer state, rng state, history) written atomically

Early stopping: stop when the validation ELBO has not improved for ``patience`` epochs; the
best parameters are kept in ``best.npz``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from .validate import check_float_array, check_int, check_positive
from .checkpoint import load_checkpoint, restore_params, save_checkpoint, write_text_atomic
from .data import binarize, check_data
from .evaluate import elbo
from .optim import OPTIMIZERS
from .vae import ESTIMATORS, VAE


@dataclass
class TrainConfig:
    """Everything that decides a training run besides the model and the data."""
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    estimator: str = "analytic"
    n_samples: int = 1          # S noise draws per example (the K of "iwae")
    warmup_epochs: float = 0.0  # KL warm-up: beta rises linearly from 0 to 1 over this many epochs
    patience: int | None = None  # early stopping
    dynamic_binarization: bool = False
    seed: int | list = 0        # an integer >= 0, or a list of them (numpy.random.default_rng)

    def validate(self) -> "TrainConfig":
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("n_samples", self.n_samples, minimum=1)
        check_positive("lr", self.lr)
        check_positive("warmup_epochs", self.warmup_epochs, strict=False)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.estimator == "iwae" and self.warmup_epochs:
            raise ValueError("warmup_epochs must be 0 with the iwae estimator (it has no beta)")
        if self.patience is not None:
            check_int("patience", self.patience, minimum=1)
        if not isinstance(self.dynamic_binarization, bool):
            raise TypeError(f"dynamic_binarization must be True or False, got "
                            f"{self.dynamic_binarization!r}")
        seeds = self.seed if isinstance(self.seed, list) else [self.seed]
        for s in seeds:
            check_int("seed", s, minimum=0)
        return self


def _check_data(name, x, model, config, labels):
    """The data must fit the likelihood (data.check_data), have the model's width and dtype, and
    come with one-hot labels exactly when the model takes them."""
    check_data(x, model.likelihood.name, "dynamic" if config.dynamic_binarization else None,
               width=model.x_dim, name=name)
    check_float_array(name, x, dtype=model.dtype)
    model.check_labels(f"labels of {name}", labels, len(x))


def train(model, x_train, x_valid, config: TrainConfig, *, y_train=None, y_valid=None,
          out_dir=None, resume=None, log=print):
    """Train ``model`` in place and return the history (a list of dicts, one per epoch).

    Parameters
    ----------
    model : a VAE (or any model with the interface in this module's docstring)
    x_train, x_valid : ndarray (N, x_dim) of the model's dtype
        Binary for a Bernoulli likelihood unless ``config.dynamic_binarization`` (then in [0, 1];
        ``x_valid`` is then binarized once with a fixed seed). ``x_valid`` may be None: no
        validation, no early stopping, no ``best.npz``.
    y_train, y_valid : ndarray (N, n_classes) or None
        One-hot labels, for a conditional VAE only.
    config : TrainConfig
    out_dir : str or None
        Where ``metrics.csv``, ``metrics.json``, ``checkpoint.npz`` and ``best.npz`` go.
    resume : str or None
        A ``checkpoint.npz`` to continue from: the run continues bit for bit as if uninterrupted.
    log : callable
        Receives one progress line per epoch (``print`` by default; ``None`` silences).
    """
    config.validate()
    _check_data("x_train", x_train, model, config, y_train)
    if x_valid is None:
        if config.patience is not None or y_valid is not None:
            raise ValueError("x_valid is None: early stopping (patience) and y_valid need "
                             "validation data")
    else:
        _check_data("x_valid", x_valid, model, config, y_valid)
        if config.dynamic_binarization:  # one fixed draw, so validation numbers are comparable
            x_valid = binarize(x_valid, _stream(config, 2))
    rng = np.random.default_rng(config.seed)
    opt = OPTIMIZERS[config.optimizer](model.params, lr=config.lr)
    history, start_epoch = [], 0
    if resume is not None:
        start_epoch, history = _resume(resume, model, opt, rng, config)
    N, B = len(x_train), config.batch_size
    steps_per_epoch = -(-N // B)
    best = max((h.get("valid_elbo", -np.inf) for h in history), default=-np.inf)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        perm = rng.permutation(N)
        for i in range(steps_per_epoch):
            idx = perm[i * B:(i + 1) * B]
            xb = x_train[idx]                                                  # (b, D)
            yb = None if y_train is None else y_train[idx]                     # (b, C)
            if config.dynamic_binarization:
                xb = binarize(xb, rng)                                         # fresh 0/1 draw
            eps = rng.standard_normal((len(idx), config.n_samples, model.z_dim), dtype=model.dtype)
            step = epoch * steps_per_epoch + i
            beta = min(1.0, step / (config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs else 1.0
            try:
                loss, grads, stats = model.loss_and_grads(xb, eps, config.estimator, beta, y=yb,
                                                          check=False)
            except FloatingPointError as exc:
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}, step {i + 1}: {exc}; "
                                         f"lower the learning rate (lr={config.lr})") from None
            opt.step(grads)
            for k, v in (("loss", loss), ("rec", stats["rec"]), ("kl", stats["kl"])):
                sums[k] += v * len(idx)
        train_seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "beta": beta, "train_loss": sums["loss"] / N,
               "train_rec": sums["rec"] / N, "train_kl": sums["kl"] / N}
        if x_valid is not None:
            row.update(_validation(model, x_valid, y_valid, config, epoch))
        row["seconds"] = train_seconds
        history.append(row)
        if log:
            log(_progress_line(row, config, beta))
        improved = row.get("valid_elbo", -np.inf) > best
        best = max(best, row.get("valid_elbo", -np.inf))
        if out_dir is not None:
            _write_outputs(out_dir, model, opt, rng, config, history, improved)
        if config.patience is not None and _stalled(history, config.patience):
            if log:
                log(f"early stopping: no validation improvement in {config.patience} epochs")
            break
    return history


def _stream(config, k):
    """The k-th auxiliary random stream of a run (1: validation noise, 2: validation binarization)."""
    seeds = config.seed if isinstance(config.seed, list) else [config.seed]
    return np.random.default_rng([*seeds, k])


def _validation(model, x_valid, y_valid, config, epoch):
    """Validation ELBO (one noise draw per example, from a fixed stream) and its parts."""
    valid = elbo(model, x_valid, rng=_stream(config, 1), n_samples=1, y=y_valid)
    if not np.all(np.isfinite(valid["elbo"])):
        raise FloatingPointError(f"the validation ELBO is not finite after epoch {epoch + 1}: the "
                                 f"parameters have diverged; lower the learning rate (lr={config.lr})")
    return {"valid_elbo": float(valid["elbo"].mean()), "valid_rec": float(valid["rec"].mean()),
            "valid_kl": float(valid["kl"].mean()),
            "valid_bits_per_dim": float(-valid["elbo"].mean() / (model.x_dim * np.log(2)))}


def _progress_line(row, config, beta):
    line = (f"epoch {row['epoch']:3d}/{config.epochs}  train -ELBO {row['train_loss']:9.3f}  ")
    if "valid_elbo" in row:
        line += (f"valid ELBO {row['valid_elbo']:9.3f} (rec {row['valid_rec']:9.3f}, KL "
                 f"{row['valid_kl']:7.3f})  {row['valid_bits_per_dim']:.4f} bits/dim  ")
    else:
        line += f"(rec {row['train_rec']:9.3f}, KL {row['train_kl']:7.3f})  "
    return line + f"beta {beta:.2f}  {row['seconds']:6.2f}s"


def _stalled(history, patience):
    best_epoch = int(np.argmax([h["valid_elbo"] for h in history]))
    return len(history) - 1 - best_epoch >= patience


def _meta(model, config, rng, history):
    return {"model": model.config, "train": asdict(config), "epoch": len(history),
            "rng_state": rng.bit_generator.state, "history": history}


def _write_outputs(out_dir, model, opt, rng, config, history, improved):
    os.makedirs(out_dir, exist_ok=True)
    meta = _meta(model, config, rng, history)
    save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), model.params, opt.state_dict(), meta)
    if improved:
        save_checkpoint(os.path.join(out_dir, "best.npz"), model.params, opt.state_dict(), meta)
    write_text_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(history, indent=1))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(os.path.join(out_dir, "metrics.csv"), buf.getvalue())


def _resume(path, model, opt, rng, config):
    ck = load_checkpoint(path)
    meta = ck["meta"]
    if meta["model"] != model.config:
        raise ValueError(f"checkpoint {path!r} was written by a different model: {meta['model']} "
                         f"vs this model {model.config}")
    saved_train = {k: v for k, v in meta["train"].items() if k != "epochs"}
    ours = {k: v for k, v in asdict(config).items() if k != "epochs"}
    if saved_train != ours:
        diff = {k: (saved_train.get(k), ours.get(k)) for k in ours if saved_train.get(k) != ours.get(k)}
        raise ValueError(f"checkpoint {path!r} was trained with other settings (saved, now): {diff}")
    restore_params(model.params, ck["params"], source=f"checkpoint {path!r}")
    opt.load_state_dict(ck["optimizer"])
    rng.bit_generator.state = meta["rng_state"]
    return meta["epoch"], meta["history"]


def load_model(path) -> tuple[VAE, dict]:
    """Rebuild a trained VAE from a checkpoint: returns ``(vae, meta)``."""
    ck = load_checkpoint(path)
    cfg = dict(ck["meta"]["model"])
    dtype = np.dtype(cfg.pop("dtype"))
    x_dim, z_dim = cfg.pop("x_dim"), cfg.pop("z_dim")
    vae = VAE(x_dim, z_dim, rng=np.random.default_rng(0), dtype=dtype, **cfg)
    restore_params(vae.params, ck["params"], source=f"checkpoint {os.fspath(path)!r}")
    return vae, ck["meta"]


TRAIN_CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig))
