"""Training loop for the VAE: minibatches, warm-up, validation, early stopping, checkpoints.

One epoch, in order (this order is what makes resuming bit-exact):

    perm = rng.permutation(N)
    for each minibatch of ``batch_size`` indices of perm:
        x    = X[idx]                         (dynamic binarization: x = [u < X[idx]], u ~ U(0,1) from rng)
        eps  = rng.standard_normal((B, L, z_dim))
        beta = min(1, step / (warmup_epochs * steps_per_epoch))      (1 without warm-up)
        loss, grads = -mean ELBO (or IWAE bound) and its gradient       (vae.py)
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
    n_samples: int = 1          # L for the ELBO estimators, K for "iwae"
    warmup_epochs: float = 0.0  # KL warm-up: beta rises linearly from 0 to 1 over this many epochs
    patience: int | None = None  # early stopping
    dynamic_binarization: bool = False
    seed: int = 0

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
        return self


def _check_data(name, x, vae, config):
    """The data must fit the likelihood (data.check_data) and have the model's width and dtype."""
    check_data(x, vae.likelihood.name, "dynamic" if config.dynamic_binarization else None,
               width=vae.x_dim, name=name)
    check_float_array(name, x, dtype=vae.dtype)


def train(vae: VAE, x_train, x_valid, config: TrainConfig, *, out_dir=None, resume=None,
          log=print):
    """Train ``vae`` in place and return the history (a list of dicts, one per epoch).

    Parameters
    ----------
    vae : VAE
    x_train, x_valid : ndarray (N, x_dim) of the model's dtype
        Binary for a Bernoulli likelihood unless ``config.dynamic_binarization`` (then in [0, 1];
        ``x_valid`` is then binarized once with a fixed seed).
    config : TrainConfig
    out_dir : str or None
        Where ``metrics.csv``, ``metrics.json``, ``checkpoint.npz`` and ``best.npz`` go.
    resume : str or None
        A ``checkpoint.npz`` to continue from: the run continues bit for bit as if uninterrupted.
    log : callable
        Receives one progress line per epoch (``print`` by default; ``None`` silences).
    """
    config.validate()
    _check_data("x_train", x_train, vae, config)
    _check_data("x_valid", x_valid, vae, config)
    if config.dynamic_binarization:  # one fixed draw, so validation numbers are comparable
        x_valid = binarize(x_valid, np.random.default_rng([config.seed, 2]))
    rng = np.random.default_rng(config.seed)
    opt = OPTIMIZERS[config.optimizer](vae.params, lr=config.lr)
    history, start_epoch = [], 0
    if resume is not None:
        start_epoch, history = _resume(resume, vae, opt, rng, config)
    N, B = len(x_train), config.batch_size
    steps_per_epoch = -(-N // B)
    best = max((h["valid_elbo"] for h in history), default=-np.inf)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        perm = rng.permutation(N)
        for i in range(steps_per_epoch):
            idx = perm[i * B:(i + 1) * B]
            xb = x_train[idx]                                                  # (b, D)
            if config.dynamic_binarization:
                xb = binarize(xb, rng)                                         # fresh 0/1 draw
            eps = rng.standard_normal((len(idx), config.n_samples, vae.z_dim), dtype=vae.dtype)
            step = epoch * steps_per_epoch + i
            beta = min(1.0, step / (config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs else 1.0
            try:
                loss, grads, stats = vae.loss_and_grads(xb, eps, config.estimator, beta, check=False)
            except FloatingPointError as exc:
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}, step {i + 1}: {exc}; "
                                         f"lower the learning rate (lr={config.lr})") from None
            opt.step(grads)
            for k, v in (("loss", loss), ("rec", stats["rec"]), ("kl", stats["kl"])):
                sums[k] += v * len(idx)
        train_seconds = time.perf_counter() - t0
        valid = elbo(vae, x_valid, rng=np.random.default_rng([config.seed, 1]), n_samples=1)
        if not np.all(np.isfinite(valid["elbo"])):
            raise FloatingPointError(f"the validation ELBO is not finite after epoch {epoch + 1}: the "
                                     f"parameters have diverged; lower the learning rate (lr={config.lr})")
        row = {"epoch": epoch + 1, "beta": beta, "train_loss": sums["loss"] / N,
               "train_rec": sums["rec"] / N, "train_kl": sums["kl"] / N,
               "valid_elbo": float(valid["elbo"].mean()), "valid_rec": float(valid["rec"].mean()),
               "valid_kl": float(valid["kl"].mean()),
               "valid_bits_per_dim": float(-valid["elbo"].mean() / (vae.x_dim * np.log(2))),
               "seconds": train_seconds}
        history.append(row)
        if log:
            log(f"epoch {row['epoch']:3d}/{config.epochs}  train -ELBO {row['train_loss']:9.3f}  "
                f"valid ELBO {row['valid_elbo']:9.3f} (rec {row['valid_rec']:9.3f}, KL "
                f"{row['valid_kl']:7.3f})  {row['valid_bits_per_dim']:.4f} bits/dim  "
                f"beta {beta:.2f}  {train_seconds:6.2f}s")
        improved = row["valid_elbo"] > best
        best = max(best, row["valid_elbo"])
        if out_dir is not None:
            _write_outputs(out_dir, vae, opt, rng, config, history, improved)
        if config.patience is not None and _stalled(history, config.patience):
            if log:
                log(f"early stopping: no validation improvement in {config.patience} epochs")
            break
    return history


def _stalled(history, patience):
    best_epoch = int(np.argmax([h["valid_elbo"] for h in history]))
    return len(history) - 1 - best_epoch >= patience


def _meta(vae, config, rng, history):
    return {"model": vae.config, "train": asdict(config), "epoch": len(history),
            "rng_state": rng.bit_generator.state, "history": history}


def _write_outputs(out_dir, vae, opt, rng, config, history, improved):
    os.makedirs(out_dir, exist_ok=True)
    meta = _meta(vae, config, rng, history)
    save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), vae.params, opt.state_dict(), meta)
    if improved:
        save_checkpoint(os.path.join(out_dir, "best.npz"), vae.params, opt.state_dict(), meta)
    write_text_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(history, indent=1))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(os.path.join(out_dir, "metrics.csv"), buf.getvalue())


def _resume(path, vae, opt, rng, config):
    ck = load_checkpoint(path)
    meta = ck["meta"]
    if meta["model"] != vae.config:
        raise ValueError(f"checkpoint {path!r} was written by a different model: {meta['model']} "
                         f"vs this model {vae.config}")
    saved_train = {k: v for k, v in meta["train"].items() if k != "epochs"}
    ours = {k: v for k, v in asdict(config).items() if k != "epochs"}
    if saved_train != ours:
        diff = {k: (saved_train.get(k), ours.get(k)) for k in ours if saved_train.get(k) != ours.get(k)}
        raise ValueError(f"checkpoint {path!r} was trained with other settings (saved, now): {diff}")
    restore_params(vae.params, ck["params"], source=f"checkpoint {path!r}")
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
