"""Shared pieces of the VAE commands (``cli.vae``, ``cli.demo``): argument groups, data loading
and binarization, thread control, and the evaluation summary both commands print.

See :mod:`scratchvae.cli.vae` for how data and binarization are decided.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

# Mirrors of the library's choices; kept here so building the parser does not import NumPy
# (tests/test_cli.py checks they agree with scratchvae.nn/optim/vae).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")
OPTIMIZERS = ("adam", "adagrad", "sgd")
ESTIMATORS = ("analytic", "mc", "iwae")
SPLIT_INDEX = {"train": 0, "valid": 1, "test": 2}
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
RUN_FILE = "run.json"
DATA_KEYS = ("data", "n_train", "n_valid", "n_test", "data_seed", "binarize", "binarize_seed")
HF = argparse.ArgumentDefaultsHelpFormatter


# ------------------------------------------------------------------------------- arguments
DATA_DEFAULTS = dict(data="embedded", n_train=10000, n_valid=None, n_test=1000, data_seed=0,
                     binarize="auto", binarize_seed=0)


def _data_group(p, train: bool):
    """Data options. ``train`` gives them defaults; evaluate/sample default to None, meaning
    "as recorded in run.json beside the checkpoint, else the train default"."""
    g = p.add_argument_group("data")
    d = DATA_DEFAULTS if train else dict.fromkeys(DATA_DEFAULTS)
    later = "" if train else "; None: as in run.json beside the checkpoint, else "
    g.add_argument("--data", default=d["data"], metavar="SOURCE",
                   help="'embedded' (digits rendered from matplotlib's fonts, no files), or a "
                        "path: .npz (keys train/valid/test or x_train/x_test), a "
                        "binarized_mnist_*.amat file or folder, an MNIST *-idx3-ubyte[.gz] "
                        "file or folder" + (later and later + "'embedded'"))
    g.add_argument("--n-train", type=int, default=d["n_train"], metavar="N",
                   help="embedded: training images" + (later and later + "10000"))
    g.add_argument("--n-valid", type=int, default=d["n_valid"], metavar="N",
                   help="validation images: embedded 1000 by default; .npz/IDX files without a "
                        "validation split: taken off the end of the training set, 10000 by "
                        "default" + ("; recorded in run.json" if train else ""))
    g.add_argument("--n-test", type=int, default=d["n_test"], metavar="N",
                   help="embedded: test images" + (later + "1000" if later else
                                                   " (recorded for evaluate and sample)"))
    g.add_argument("--data-seed", type=int, default=d["data_seed"], metavar="SEED",
                   help="embedded: rendering seed" + (later and later + "0"))
    g.add_argument("--binarize-seed", type=int, default=d["binarize_seed"], metavar="SEED",
                   help="seed of the static Bernoulli draw; split k = 0, 1, 2 (train, valid, "
                        "test) uses seed + k" + (later and later + "0"))
    if train:
        g.add_argument("--binarize", default="auto",
                       choices=("auto", "none", "dynamic", "static", "threshold"),
                       help="0/1 pixels for the Bernoulli likelihood: dynamic = a fresh draw "
                            "x_b ~ Bern(x) per minibatch, static = one draw, threshold = x > 0.5; "
                            "auto: dynamic for Bernoulli on grey data, none otherwise")
    else:
        g.add_argument("--binarize", default="auto",
                       choices=("auto", "none", "static", "threshold"),
                       help="auto: as in run.json (a dynamically binarized run is evaluated on "
                            "the static draw), else static for Bernoulli on grey data")


def _threads(p, default=None):
    p.add_argument("--threads", type=int, default=default, metavar="N",
                   help="BLAS threads, set before NumPy loads; 0 leaves the BLAS default, None "
                        "means 1 unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set (these "
                        "matrices are small: on a busy 2-core machine two BLAS threads made an "
                        "epoch 20-40x slower than one)")


# ------------------------------------------------------------------------------- helpers
def _set_threads(n) -> None:
    if "numpy" in sys.modules:          # too late (e.g. cli.main called in-process by a test)
        return
    if n is None:
        if any(v in os.environ for v in THREAD_VARS[:2]):
            return
        n = 1
    if n < 0:
        raise ValueError(f"--threads must be >= 0, got {n}")
    for var in THREAD_VARS if n else ():
        os.environ[var] = str(n)


def _data_options(args, run: dict) -> dict:
    """The data options: command line first, then run.json, then the defaults."""
    out = {}
    for k in DATA_KEYS:
        given = getattr(args, k, None)
        out[k] = given if given is not None and given != "auto" else run.get(k, DATA_DEFAULTS[k])
    if out["data"] != "embedded":
        out["data"] = os.path.abspath(out["data"])
    return out


def _read_run(checkpoint) -> dict:
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), RUN_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _load(opts, dtype, need):
    """Splits of the data; for the embedded digits only the splits in ``need`` are rendered."""
    from ..data import load_dataset
    if opts["data"] == "embedded":
        n = {s: (1000 if opts[f"n_{s}"] is None else opts[f"n_{s}"]) if s in need else 0
             for s in SPLIT_INDEX}
        return load_dataset("embedded", dtype=dtype, n_train=max(n["train"], 1), n_valid=n["valid"],
                            n_test=n["test"], seed=opts["data_seed"])
    extra = {} if opts["n_valid"] is None else {"n_valid": opts["n_valid"]}
    try:
        return load_dataset(opts["data"], dtype=dtype, **extra)
    except TypeError as exc:
        if extra and "n_valid" in str(exc):     # .amat data come with their own validation file
            raise ValueError(f"--n-valid does not apply to {opts['data']}: it has its own "
                             f"validation split") from None
        raise


def _is_binary(x) -> bool:
    import numpy as np
    return bool(np.all((x == 0) | (x == 1)))


def _prepare(x, split, likelihood, mode, seed, width=None):
    """Binarize split ``split`` of the data as ``mode`` says and refuse data unfit for the model."""
    from ..data import binarize_static, check_data
    name = f"the {split} data"
    if mode in ("static", "threshold"):
        check_data(x, likelihood, "static", width=width, name=name)
        x = binarize_static(x, "bernoulli" if mode == "static" else "threshold",
                            seed=seed + SPLIT_INDEX[split])
    if mode == "dynamic" and likelihood != "bernoulli":
        raise ValueError("--binarize dynamic is for the Bernoulli likelihood only")
    if mode == "none" and likelihood == "bernoulli":
        check_data(x, likelihood, "static", width=width, name=name)     # NaN, range, width
        if not _is_binary(x):
            raise ValueError(f"{name} has non-binary pixels, but the Bernoulli likelihood needs "
                             f"0/1 data: pass --binarize dynamic, static or threshold, or use "
                             f"--likelihood gaussian")
    return check_data(x, likelihood, "dynamic" if mode == "dynamic" else None, width=width,
                      name=name)


def _eval_mode(opts, likelihood, x) -> str:
    mode = {"dynamic": "static"}.get(opts["binarize"], opts["binarize"])
    if mode == "auto":
        mode = "static" if likelihood == "bernoulli" and not _is_binary(x) else "none"
    return mode


def _load_for_model(args, vae, split):
    """Data of ``split`` prepared for a trained model, with the options that were used."""
    opts = _data_options(args, _read_run(args.checkpoint))
    ds = getattr(_load(opts, vae.dtype, (split,)), split)
    mode = _eval_mode(opts, vae.likelihood.name, ds.x)
    x = _prepare(ds.x, split, vae.likelihood.name, mode, opts["binarize_seed"], width=vae.x_dim)
    return x, ds.y, opts, mode


def _describe(opts, split, n, mode) -> str:
    src = (f"embedded digits (data seed {opts['data_seed']})" if opts["data"] == "embedded"
           else opts["data"])
    seed = f", seed {opts['binarize_seed'] + SPLIT_INDEX[split]}" if mode == "static" else ""
    return f"{src}, {split} split, {n} images, binarization: {mode}{seed}"


def _hidden(text) -> tuple:
    try:
        sizes = tuple(int(h) for h in str(text).split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers like 400 or 500,500, "
                         f"got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden widths must be >= 1, got {text!r}")
    return sizes


def _obs_scale(text):
    if text == "learned":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"--obs-scale must be a number > 0 or 'learned', got {text!r}")
    return value


def _model_str(cfg) -> str:
    sizes = "-".join(map(str, [cfg["x_dim"], *cfg["hidden"], cfg["z_dim"]]))
    lik = cfg["likelihood"]
    if lik == "gaussian":
        lik += f" (sigma {cfg['obs_scale'] or 'learned'})"
    return (f"{sizes} {cfg['activation']}, {cfg['posterior']} q(z|x), {lik} p(x|z), "
            f"{cfg['dtype']}")


class _Progress:
    """Prints 'log p(x): done/total' to stderr about every tenth of the work."""

    def __init__(self):
        self.next = 0.0

    def __call__(self, done, total):
        if done >= self.next or done == total:
            print(f"  log p(x): {done}/{total} examples", file=sys.stderr, flush=True)
            self.next = done + total / 10


def _write_json(path, obj) -> None:
    """Write ``obj`` as JSON atomically (a temporary file, then os.replace)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _files(folder) -> list:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if not f.startswith("."))


def _subset(n_total, n, seed):
    import numpy as np
    if n < 0:
        raise ValueError(f"--subset must be >= 0, got {n}")
    if n == 0 or n >= n_total:
        return np.arange(n_total), f"all {n_total}"
    idx = np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))
    return idx, (f"{n} of {n_total}, rows np.sort(numpy.random.default_rng({seed}).choice("
                 f"{n_total}, {n}, replace=False)) = [{', '.join(map(str, idx[:8]))}, ...]")


def evaluate_model(vae, x, *, k, seed, elbo_samples=10, k_chunk=1000, progress=None) -> dict:
    """The numbers ``evaluate`` and ``demo`` print, as a JSON-ready dict."""
    import numpy as np

    from ..evaluate import active_units, bits_per_dim, elbo, kl_per_dimension, log_likelihood
    e = elbo(vae, x, rng=np.random.default_rng([seed, 1]), n_samples=elbo_samples)
    ll = log_likelihood(vae, x, rng=np.random.default_rng([seed, 2]), K=k,
                        k_chunk=min(k, k_chunk), progress=progress)
    kl_dim = kl_per_dimension(vae, x)
    n_active, variances = active_units(vae, x)
    mean = lambda a: float(np.mean(a))                                         # noqa: E731
    return {"n": len(x), "elbo": mean(e["elbo"]), "rec": mean(e["rec"]), "kl": mean(e["kl"]),
            "elbo_samples": elbo_samples, "log_px": mean(ll), "K": k,
            "log_px_sem": float(np.std(ll) / np.sqrt(len(ll))),
            "nats": -mean(ll), "bits_per_dim": float(bits_per_dim(-mean(ll), vae.x_dim)),
            "elbo_bits_per_dim": float(bits_per_dim(-mean(e["elbo"]), vae.x_dim)),
            "kl_per_dim": kl_dim.tolist(), "active_units": n_active,
            "posterior_mean_variance": variances.tolist()}
