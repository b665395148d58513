"""The training loop: minibatches, warm-up, validation, early stopping, checkpoints.

The trainer knows nothing about the model's insides. A model is anything with
    params                      dict of named arrays (the optimizer updates them in place)
    x_dim, z_dim, dtype, likelihood, config, n_classes (None, or C for one-hot labels y)
    loss_and_grads(x, eps, estimator, beta, *, y=None, check=True) -> (loss, grads, stats)
    forward(x, eps, estimator, *, y=None) -> (objective, cache, stats)  (for validation)
    check_labels(name, y, n), check_objective(estimator)
such as :class:`scratchvae.vae.VAE` (with or without labels, with any posterior family).

Before the first epoch the untrained model's validation ELBO V_0 is measured (the reference of
the divergence checks, :mod:`scratchvae.runs.divergence`). One epoch, in order (this order is what
makes resuming bit-exact):

    perm = rng.permutation(N)
    for each minibatch of ``batch_size`` indices of perm:
        x    = X[idx]   (y = Y[idx])         (dynamic binarization: x = [u < X[idx]], u ~ U(0,1) from rng)
        eps  = rng.standard_normal((B, S, z_dim))                       S = n_samples
        beta = min(1, step / (warmup_epochs * steps_per_epoch))      (1 without warm-up)
        loss, grads = -mean ELBO (or IWAE bound) and its gradient       (model.loss_and_grads)
        optimizer.step(grads)                                           (optim.py)
    validation ELBO on the validation set with noise from a separate, fixed generator (and, when
        training on the IWAE bound, L_K with the training K, from another one)
    divergence checks (a collapsed validation ELBO, or training and validation parted)
    metrics row -> history (printed, written to metrics.csv and metrics.json)
    best.npz (if improved), then checkpoint.npz (params, optimizer state, rng state, history),
    each written atomically (:mod:`scratchvae.runs` says why in this order)

Early stopping: stop when the validation score has not improved for ``patience`` epochs; the
best parameters are kept in ``best.npz``. The score is the validation ELBO, or for the "iwae"
estimator the validation IWAE bound L_K (``valid_iwae``): a model trained on L_K trades ELBO for
L_K, and its ELBO can stall or fall while L_K, the objective, still improves. Resuming a run
that stopped early, or that has already trained ``epochs`` epochs, trains nothing and says so.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from .checkpoint import load_checkpoint, remove_stale_temp_files, restore_params
from .data import binarize, check_data
from .runs.divergence import advice, check_divergence
from .evaluate import elbo
from .optim import OPTIMIZERS
from .runs import check_out_dir, checkpoint_path, restore_best, validation_scores, write_outputs
from .runs.threads import blas_threads
from .validate import (check_choice, check_float_array, check_int, check_model, check_path,
                       check_positive)
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
    divergence_factor: float | None = 10.0  # stop beyond this many scales (divergence.py)

    def validate(self) -> "TrainConfig":
        """Check every field's type and range; store numbers as plain Python ints and floats
        (so the config is JSON for checkpoints) and return ``self``.

        Raises TypeError for a wrong type (a string, a bool where a number belongs, a NumPy
        bool), ValueError for a value out of range, both naming the field.
        """
        self.epochs = check_int("epochs", self.epochs, minimum=1)
        self.batch_size = check_int("batch_size", self.batch_size, minimum=1)
        self.n_samples = check_int("n_samples", self.n_samples, minimum=1)
        self.lr = check_positive("lr", self.lr)
        self.warmup_epochs = check_positive("warmup_epochs", self.warmup_epochs, strict=False)
        check_choice("optimizer", self.optimizer, sorted(OPTIMIZERS))
        check_choice("estimator", self.estimator, ESTIMATORS)
        if self.estimator == "iwae" and self.warmup_epochs:
            raise ValueError("warmup_epochs must be 0 with the iwae estimator (it has no beta)")
        if self.patience is not None:
            self.patience = check_int("patience", self.patience, minimum=1)
        if not isinstance(self.dynamic_binarization, bool):
            got = self.dynamic_binarization
            raise TypeError(f"dynamic_binarization must be True or False, got "
                            f"{type(got).__name__} {got!r}")
        if isinstance(self.seed, list):
            if not self.seed:
                raise ValueError("seed must be an integer >= 0 or a non-empty list of them, got []")
            self.seed = [check_int("seed", s, minimum=0) for s in self.seed]
        else:
            self.seed = check_int("seed", self.seed, minimum=0)
        if self.divergence_factor is not None:
            self.divergence_factor = check_positive("divergence_factor", self.divergence_factor)
        return self


# Fields a resumed run may change: they do not enter the computation of an epoch.
RESUMABLE = ("epochs", "divergence_factor")


def _check_data(name, x, model, config, labels):
    """The data must fit the likelihood (data.check_data), have the model's width and dtype, at
    least one row, and come with one-hot labels exactly when the model takes them."""
    check_data(x, model.likelihood.name, "dynamic" if config.dynamic_binarization else None,
               width=model.x_dim, name=name)
    check_float_array(name, x, dtype=model.dtype)
    if len(x) == 0:
        raise ValueError(f"{name} has 0 rows; expected at least one example")
    model.check_labels(f"labels of {name}", labels, len(x))


def _check_inputs(model, x_train, x_valid, y_train, y_valid, config):
    """Check the data once; return the validation set as training will see it."""
    _check_data("x_train", x_train, model, config, y_train)
    if x_valid is None:
        if config.patience is not None or y_valid is not None:
            raise ValueError("x_valid is None: early stopping (patience) and y_valid need "
                             "validation data")
        return None
    _check_data("x_valid", x_valid, model, config, y_valid)
    if config.dynamic_binarization:      # one fixed draw, so validation numbers are comparable
        x_valid = binarize(x_valid, _stream(config, 2))
    return x_valid


# What train() and its helpers read of a model (the interface in the module docstring).
MODEL_ATTRIBUTES = ("params", "x_dim", "z_dim", "dtype", "likelihood", "config", "loss_and_grads",
                    "forward", "check_labels", "check_objective")


def train(model, x_train, x_valid, config: TrainConfig, *, y_train=None, y_valid=None,
          out_dir=None, resume=None, overwrite=False, threads=None, log=print):
    """Train ``model`` in place and return the history (a list of dicts, one per epoch).

    Parameters
    ----------
    model : a VAE (or any model with the interface in this module's docstring)
    x_train, x_valid : ndarray (N, x_dim) of the model's dtype, N >= 1
        Binary for a Bernoulli likelihood unless ``config.dynamic_binarization`` (then in [0, 1];
        ``x_valid`` is then binarized once with a fixed seed). ``x_valid`` may be None: no
        validation, no early stopping, no divergence checks, no ``best.npz``.
    y_train, y_valid : ndarray (N, n_classes) or None
        One-hot labels, for a conditional VAE only.
    config : TrainConfig
    out_dir : str, path or None
        The run folder: ``metrics.csv``, ``metrics.json``, ``checkpoint.npz`` and ``best.npz``
        (:mod:`scratchvae.runs`). A new run needs it empty or absent.
    resume : str, path or None
        A run folder or a ``checkpoint.npz`` to continue from: the run continues bit for bit as
        if uninterrupted. Every setting must match the checkpoint's except ``epochs`` and
        ``divergence_factor``. A run that already has ``epochs`` epochs, or that stopped early,
        trains nothing: ``log`` says so and the history is returned.
    overwrite : bool
        Allow a new run in an ``out_dir`` that holds files: the previous run's checkpoints,
        metrics and run.json are deleted before the first epoch (other files stay).
    threads : int or None
        BLAS threads while training: None (default) one, unless OPENBLAS_NUM_THREADS,
        OMP_NUM_THREADS or MKL_NUM_THREADS is set; 0 leaves BLAS alone; n >= 1 uses n. For
        these small matrices one thread was 8-10x faster than two on a busy 2-core machine
        (:mod:`scratchvae.runs.threads`).
    log : callable or None
        Receives one progress line per epoch (``print`` by default; ``None`` silences).

    Raises
    ------
    TypeError, ValueError
        Bad data, config or arguments; a non-empty ``out_dir`` without ``overwrite`` or
        ``resume``; a checkpoint that is corrupt or was written by another model or settings.
    FloatingPointError
        Training diverged: NaN/inf in the objective or the validation ELBO, or a finite collapse
        (:mod:`scratchvae.runs.divergence`). The message says where and what to try. No checkpoint
        is written for the diverged epoch.
    KeyboardInterrupt
        Re-raised after the files of the last finished epoch are complete on disk.
    """
    check_model("model", model, MODEL_ATTRIBUTES)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a scratchvae.train.TrainConfig, got "
                        f"{type(config).__name__} {config!r:.80}")
    config.validate()
    model.check_objective(config.estimator)
    if log is not None and not callable(log):
        raise TypeError(f"log must be a callable (e.g. print) or None, got {type(log).__name__}")
    with blas_threads(threads):
        x_valid = _check_inputs(model, x_train, x_valid, y_train, y_valid, config)
        resume = None if resume is None else checkpoint_path(resume)
        stale = check_out_dir(out_dir, overwrite=overwrite, resume=resume)
        if out_dir is not None and os.path.isdir(out_dir):      # a killed writer's leftovers,
            remove_stale_temp_files(out_dir)                     # even if nothing is left to train
        rng = np.random.default_rng(config.seed)
        opt = OPTIMIZERS[config.optimizer](model.params, lr=config.lr)
        run = {"history": [], "initial": None, "written": 0, "out_dir": out_dir}
        if resume is not None:
            ck = load_checkpoint(resume)
            run["history"], run["initial"] = _resume(resume, ck, model, opt, rng, config)
            run["written"] = len(run["history"])
            finished = _finished(run["history"], config)
            if finished:
                if log:
                    log(finished)
                return run["history"]
        if x_valid is not None and run["initial"] is None:
            run["initial"] = _validation(model, x_valid, y_valid, config, 0)["valid_elbo"]
        for path in stale:
            os.remove(path)
        if resume is not None and out_dir is not None:
            restore_best(out_dir, resume, ck, log)
        try:
            _epochs(run, model, opt, rng, x_train, y_train, x_valid, y_valid, config, log)
        except KeyboardInterrupt:
            if out_dir is not None and run["written"] < len(run["history"]):
                write_outputs(out_dir, model.params, opt.state_dict(),   # the epoch was complete
                              _meta(model, config, rng, run["history"], run["initial"]))
            raise
    return run["history"]


def _epochs(run, model, opt, rng, x_train, y_train, x_valid, y_valid, config, log):
    """The epochs from the last finished one to ``config.epochs`` (or early stopping)."""
    history, out_dir = run["history"], run["out_dir"]
    N, B = len(x_train), config.batch_size
    steps_per_epoch = -(-N // B)
    hints = advice(model.config, config)
    # The minibatch gather reads whole rows, so it keeps them contiguous: in a Fortran-ordered
    # array (np.load gives one for an .npz saved that way) a row is D entries N apart, ~10 us a
    # row; 0/1 data are kept as uint8 too, a quarter of the bytes. xb is x_train[idx], bit for bit.
    binary = model.likelihood.name == "bernoulli" and not config.dynamic_binarization
    rows = np.ascontiguousarray(x_train, dtype=np.uint8 if binary else x_train.dtype)  # (N, D)
    for epoch in range(len(history), config.epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        perm = rng.permutation(N)
        for i in range(steps_per_epoch):
            idx = perm[i * B:(i + 1) * B]
            xb = rows[idx].astype(x_train.dtype, copy=False)                   # (b, D) = x_train[idx]
            yb = None if y_train is None else y_train[idx]                     # (b, C)
            if config.dynamic_binarization:
                xb = binarize(xb, rng)                                         # fresh 0/1 draw
            eps = rng.standard_normal((len(idx), config.n_samples, model.z_dim), dtype=model.dtype)
            step = epoch * steps_per_epoch + i
            beta = min(1.0, step / (config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs else 1.0
            try:
                loss, grads, stats = model.loss_and_grads(xb, eps, config.estimator, beta, y=yb,
                                                          check=False)
                opt.step(grads)                          # refuses non-finite gradients
            except FloatingPointError as exc:
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}, step {i + 1}: {exc}; "
                                         f"lower the learning rate (lr={config.lr})") from None
            for k, v in (("loss", loss), ("rec", stats["rec"]), ("kl", stats["kl"])):
                sums[k] += v * len(idx)
        train_seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "beta": beta, "train_loss": sums["loss"] / N,
               "train_rec": sums["rec"] / N, "train_kl": sums["kl"] / N}
        if x_valid is not None:
            row.update(_validation(model, x_valid, y_valid, config, epoch + 1))
        row["seconds"] = train_seconds
        check_divergence(history + [row], run["initial"], model.x_dim, config.divergence_factor,
                         hints)
        history.append(row)                  # the epoch is complete: from here on it is saved
        if log:
            log(_progress_line(row, config, beta))
        if out_dir is not None:
            write_outputs(out_dir, model.params, opt.state_dict(),
                          _meta(model, config, rng, history, run["initial"]))
        run["written"] = len(history)
        if config.patience is not None and _stalled(history, config.patience):
            if log:
                log(f"early stopping: no validation improvement in {config.patience} epochs")
            break


def _stream(config, k):
    """The k-th auxiliary random stream of a run (1: validation noise, 2: validation binarization,
    3: validation noise of the IWAE bound)."""
    seeds = config.seed if isinstance(config.seed, list) else [config.seed]
    return np.random.default_rng([*seeds, k])


def _validation(model, x_valid, y_valid, config, epoch):
    """Validation ELBO (one noise draw per example, from a fixed stream) and its parts; for the
    "iwae" estimator also ``valid_iwae``, the bound L_K with the training K (another stream)."""
    valid = elbo(model, x_valid, rng=_stream(config, 1), n_samples=1, y=y_valid)
    row = {"valid_elbo": float(valid["elbo"].mean()), "valid_rec": float(valid["rec"].mean()),
           "valid_kl": float(valid["kl"].mean()),
           "valid_bits_per_dim": float(-valid["elbo"].mean() / (model.x_dim * np.log(2)))}
    if config.estimator == "iwae":
        row["valid_iwae"] = float(elbo(model, x_valid, rng=_stream(config, 3), y=y_valid,
                                       n_samples=config.n_samples, estimator="iwae")["elbo"].mean())
    if not all(np.isfinite(v) for v in row.values()):
        when = f"after epoch {epoch}" if epoch else "of the untrained model"
        raise FloatingPointError(f"the validation ELBO is not finite {when}: the "
                                 f"parameters have diverged; lower the learning rate (lr={config.lr})")
    return row


def _progress_line(row, config, beta):
    loss = f"-L_{config.n_samples}" if config.estimator == "iwae" else "-ELBO"
    line = (f"epoch {row['epoch']:3d}/{config.epochs}  train {loss} {row['train_loss']:9.3f}  ")
    if "valid_iwae" in row:
        line += f"valid L_{config.n_samples} {row['valid_iwae']:9.3f}  "
    if "valid_elbo" in row:
        line += (f"valid ELBO {row['valid_elbo']:9.3f} (rec {row['valid_rec']:9.3f}, KL "
                 f"{row['valid_kl']:7.3f})  {row['valid_bits_per_dim']:.4f} bits/dim  ")
    else:
        line += f"(rec {row['train_rec']:9.3f}, KL {row['train_kl']:7.3f})  "
    return line + f"beta {beta:.2f}  {row['seconds']:6.2f}s"


def _stalled(history, patience):
    best_epoch = int(np.argmax(validation_scores(history)))
    return len(history) - 1 - best_epoch >= patience


def _finished(history, config):
    """Why a resumed run has nothing left to train (a message), or None."""
    n = len(history)
    if config.patience is not None and history and "valid_elbo" in history[0] \
            and _stalled(history, config.patience):
        best = int(np.argmax(validation_scores(history))) + 1
        return (f"nothing to train: the run stopped early after epoch {n} (no validation "
                f"improvement in {config.patience} epochs since epoch {best}, which best.npz "
                f"holds)")
    if n >= config.epochs:
        return (f"nothing to train: the checkpoint has {n} epochs and epochs={config.epochs}; "
                f"raise epochs to train more")
    return None


def _meta(model, config, rng, history, initial):
    return {"model": model.config, "train": asdict(config), "epoch": len(history),
            "rng_state": rng.bit_generator.state, "history": history,
            "valid_elbo_initial": initial}


def _resume(path, ck, model, opt, rng, config):
    """Load the checkpoint's state into model, optimizer and rng; return (history, V_0)."""
    meta = ck["meta"]
    missing = [k for k in ("model", "train", "epoch", "rng_state", "history") if k not in meta]
    if missing:
        raise ValueError(f"checkpoint {path!r} has no {missing} entries: it was not written by "
                         f"scratchvae.train.train and cannot be resumed")
    if meta["model"] != model.config:
        raise ValueError(f"checkpoint {path!r} was written by a different model: {meta['model']} "
                         f"vs this model {model.config}")
    defaults = asdict(TrainConfig())           # settings added after the checkpoint was written
    saved = {k: meta["train"].get(k, v) for k, v in defaults.items() if k not in RESUMABLE}
    ours = {k: v for k, v in asdict(config).items() if k not in RESUMABLE}
    if saved != ours:
        diff = {k: (saved[k], ours[k]) for k in ours if saved[k] != ours[k]}
        raise ValueError(f"checkpoint {path!r} was trained with other settings (saved, now): {diff}")
    restore_params(model.params, ck["params"], source=f"checkpoint {path!r}")
    opt.load_state_dict(ck["optimizer"])
    rng.bit_generator.state = meta["rng_state"]
    history = meta["history"]
    initial = meta.get("valid_elbo_initial")
    if initial is None and history and "valid_elbo" in history[0]:
        initial = history[0]["valid_elbo"]     # a checkpoint from before V_0 was recorded
    return history, initial


def load_model(path) -> tuple[VAE, dict]:
    """Rebuild a trained VAE from a checkpoint (a file or a run folder): returns ``(vae, meta)``.

    Raises FileNotFoundError (no file), ValueError (not a readable checkpoint of a VAE).
    """
    path = checkpoint_path(check_path("path", path))
    ck = load_checkpoint(path)
    if not isinstance(ck["meta"].get("model"), dict):
        raise ValueError(f"checkpoint {path!r} records no model configuration (its meta has no "
                         f"'model' entry); it was not written by scratchvae.train.train")
    cfg = dict(ck["meta"]["model"])
    dtype = np.dtype(cfg.pop("dtype"))
    x_dim, z_dim = cfg.pop("x_dim"), cfg.pop("z_dim")
    vae = VAE(x_dim, z_dim, rng=np.random.default_rng(0), dtype=dtype, **cfg)
    restore_params(vae.params, ck["params"], source=f"checkpoint {path!r}")
    return vae, ck["meta"]


TRAIN_CONFIG_FIELDS = tuple(f.name for f in fields(TrainConfig))
