"""Shared pieces of the VAE commands (``cli.vae``, ``cli.demo``): argument groups, data loading
and binarization, thread control, and the evaluation summary both commands print.

See :mod:`scratchvae.cli.vae` for how data and binarization are decided.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

# Mirrors of the library's choices; kept here so building the parser does not import NumPy
# (tests/test_cli.py checks they agree with scratchvae.nn/optim/vae).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")
OPTIMIZERS = ("adam", "adagrad", "sgd")
ESTIMATORS = ("analytic", "mc", "iwae")
POSTERIORS = ("diagonal", "full", "planar", "radial", "householder", "sylvester", "iaf")
SPLIT_INDEX = {"train": 0, "valid": 1, "test": 2}
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
RUN_FILE = "run.json"
DATA_KEYS = ("data", "n_train", "n_valid", "n_test", "valid_fraction", "data_seed", "dequantize",
             "binarize", "binarize_seed")
HF = argparse.ArgumentDefaultsHelpFormatter


# ------------------------------------------------------------------------------- arguments
DATA_DEFAULTS = dict(data="embedded", n_train=None, n_valid=None, n_test=None, valid_fraction=0.1,
                     data_seed=0, dequantize="auto", binarize="auto", binarize_seed=0)
EMBEDDED_COUNTS = {"train": 10000, "valid": 1000, "test": 1000}
SOURCE_KEYS = ("n_train", "n_valid", "n_test", "valid_fraction", "data_seed")  # what a source means
FLAGS = {"n_train": "--n-train", "n_valid": "--n-valid", "n_test": "--n-test",
         "valid_fraction": "--valid-fraction", "seed": "--data-seed"}


def data_group(p, train: bool):
    """Data options. ``train`` gives them defaults; evaluate/sample default to None, meaning
    "as recorded in run.json beside the checkpoint, else the train default"."""
    g = p.add_argument_group("data")
    d = DATA_DEFAULTS if train else dict.fromkeys(DATA_DEFAULTS)
    later = "" if train else "; None: as in run.json beside the checkpoint, else "
    g.add_argument("--data", default=d["data"], metavar="SOURCE",
                   help="'embedded' (digits rendered from matplotlib's fonts, no files), or a "
                        "path: .npz (one array, or keys train/valid/test or x_train/x_valid/"
                        "x_test), .npy (one array (N, D) or (N, H, W)), .csv (one image per line; "
                        "integers = grey levels 0..255, decimals = values in [0, 1]; optional "
                        "header, a first column named 'label' holds labels), a folder of "
                        ".png/.jpg images (converted to 8-bit grey), an IDX file under any name "
                        "(labels and test images beside it are found by name), or "
                        "binarized_mnist_*.amat files; see docs/data.md"
                        + (later and later + "'embedded'"))
    counts = {  # split -> (what the count means, what None means after `later`)
        "train": ("training images: embedded: how many to render (None: 10000); files: a random "
                  "subset of N (seeded by --data-seed; None: all)", "all"),
        "valid": ("validation images: embedded: how many to render (None: 1000); files with a "
                  "validation split: a random subset of N (None: all); files without one: N "
                  "training images set aside (None: --valid-fraction)", "as above"),
        "test": ("test images: embedded: how many to render (None: 1000); files: a random subset "
                 "of N (None: all; never the first N, as a test split may be ordered by class)",
                 "as above")}
    for split, (text, unset) in counts.items():
        g.add_argument(f"--n-{split}", type=int, default=d[f"n_{split}"], metavar="N",
                       help=text + (later and later + unset))
    g.add_argument("--valid-fraction", type=float, default=d["valid_fraction"], metavar="F",
                   help="files without a validation split: this share of the training images, "
                        "drawn at random (seeded by --data-seed), is set aside for validation"
                        + (later and later + "0.1"))
    g.add_argument("--data-seed", type=int, default=d["data_seed"], metavar="SEED",
                   help="embedded: rendering seed; files: seed of the validation carve-out, the "
                        "--n-* subsets and the dequantization noise" + (later and later + "0"))
    g.add_argument("--dequantize", default="auto", choices=("auto", "uniform", "none"),
                   help="uniform: 8-bit grey levels k become x = (k + u)/256, u ~ U(0,1) drawn "
                        "once per split (seeded by --data-seed), and bits/dim are reported on "
                        "the 256-level scale; none: x = k/255, bits/dim of a density on "
                        "[0, 1] (not comparable with published numbers); auto: "
                        + ("" if train else "as in run.json beside the checkpoint, else ")
                        + "uniform for the Gaussian likelihood on 8-bit grey data, else none")
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


def threads_option(p, default=None):
    p.add_argument("--threads", type=int, default=default, metavar="N",
                   help="BLAS threads, set before NumPy loads; 0 leaves the BLAS default, None "
                        "means 1 unless OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set (these "
                        "matrices are small: on a busy 2-core machine two BLAS threads made an "
                        "epoch 20-40x slower than one)")


# ------------------------------------------------------------------------------- helpers
def set_threads(n) -> None:
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


def data_options(args, run: dict) -> dict:
    """The data options: command line first, then run.json, then the defaults."""
    if run and "dequantize" not in run:       # run.json of a version whose --n-* were embedded-only
        run = {**run, "dequantize": "none"}
        if run.get("data") != "embedded":
            run.update(n_train=None, n_test=None)
    given = getattr(args, "data", None)
    if run and given is not None and _source(given) != run.get("data"):
        run = {k: v for k, v in run.items() if k not in SOURCE_KEYS}     # other data: own counts
    out = {}
    for k in DATA_KEYS:
        given = getattr(args, k, None)
        out[k] = given if given is not None and given != "auto" else run.get(k, DATA_DEFAULTS[k])
    out["data"] = _source(out["data"])
    return out


def _source(data) -> str:
    return data if data == "embedded" else os.path.abspath(data)


def read_run(checkpoint) -> dict:
    """run.json of the run a checkpoint (or a run folder) belongs to; {} when there is none."""
    folder = os.path.abspath(checkpoint)
    path = os.path.join(folder if os.path.isdir(folder) else os.path.dirname(folder), RUN_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def stored_image_shape(data, width: int):
    """[H, W] of the images of ``data`` (for run.json) when H * W == ``width``, else None."""
    from ..data import image_shape
    shape = image_shape(data)
    return list(shape) if shape is not None and shape[0] * shape[1] == width else None


def drawing_shape(given, run: dict, width: int) -> tuple[int, int]:
    """(H, W) to draw images of ``width`` pixels: ``--image-shape``, else run.json's
    ``image_shape``, else a square; ValueError naming --image-shape when none fits."""
    for shape, where in ((given, "--image-shape"),
                         (run.get("image_shape"), "run.json's image_shape")):
        if shape is None:
            continue
        if len(shape) != 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                  for n in shape):
            raise ValueError(f"{where} must be two whole numbers H W >= 1, got {shape}")
        h, w = shape
        if h * w != width:
            raise ValueError(f"{where} {h} {w} does not fit the model: H * W must be its x-dim "
                             f"{width}, got {h * w}")
        return h, w
    side = math.isqrt(width)
    if side * side != width:
        why = ("there is no run.json beside the checkpoint" if not run else
               "run.json beside the checkpoint records no image shape (an earlier version wrote "
               "it)" if "image_shape" not in run else "the data store their images as flat rows")
        raise ValueError(f"cannot tell how to draw images of {width} pixels: {why}, and {width} "
                         f"is not a square number; pass --image-shape H W")
    return side, side


def load_splits(opts, dtype, need, likelihood):
    """Splits of floats of ``dtype`` for a model with ``likelihood``; for the embedded digits only
    the splits in ``need`` are rendered. Resolves ``opts["dequantize"]`` to what was done
    ("uniform" or "none"), so run.json records it."""
    import numpy as np

    from ..data import Dataset, Splits, dequantize, grey_levels, load_dataset, to_float_pixels
    if opts["data"] == "embedded":
        if opts["dequantize"] == "uniform":
            raise ValueError("--dequantize uniform needs 8-bit grey levels (uint8 0..255); the "
                             "embedded digits are floats in [0, 1]")
        opts["dequantize"] = "none"
        n = {s: (EMBEDDED_COUNTS[s] if opts[f"n_{s}"] is None else opts[f"n_{s}"]) if s in need
             else int(s == "train") for s in SPLIT_INDEX}
        return load_dataset("embedded", dtype=dtype, n_train=n["train"], n_valid=n["valid"],
                            n_test=n["test"], seed=opts["data_seed"], names=FLAGS)
    raw = load_dataset(opts["data"], valid_fraction=opts["valid_fraction"], n_train=opts["n_train"],
                       n_valid=opts["n_valid"], n_test=opts["n_test"], seed=opts["data_seed"],
                       names=FLAGS)
    grey = grey_levels(raw)
    mode, binarized = opts["dequantize"], opts["binarize"] not in ("auto", "none")
    if mode == "auto":
        mode = "uniform" if likelihood == "gaussian" and grey and not binarized else "none"
    if mode == "uniform" and binarized:
        raise ValueError(f"--dequantize uniform and --binarize {opts['binarize']} exclude each "
                         f"other: dequantized pixels are continuous, binarized ones 0/1")
    if mode == "uniform" and likelihood != "gaussian":
        raise ValueError("--dequantize uniform is for the Gaussian likelihood (the Bernoulli "
                         "likelihood needs 0/1 pixels: see --binarize)")
    if mode == "uniform" and not grey:
        raise ValueError(f"--dequantize uniform needs 8-bit grey levels (uint8 0..255), but "
                         f"{opts['data']} holds {raw.train.x.dtype} values in "
                         f"[{raw.train.x.min()}, {raw.train.x.max()}]")
    opts["dequantize"] = mode
    seed = opts["data_seed"]
    return Splits(*(Dataset(dequantize(ds.x, np.random.default_rng([seed, 3, k]), dtype)
                            if mode == "uniform" else to_float_pixels(ds.x, dtype, grey), ds.y)
                    for k, ds in enumerate(raw)))


def is_binary(x) -> bool:
    import numpy as np
    return bool(np.all((x == 0) | (x == 1)))


def prepare(x, split, likelihood, mode, seed, width=None):
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
        if not is_binary(x):
            raise ValueError(f"{name} has non-binary pixels, but the Bernoulli likelihood needs "
                             f"0/1 data: pass --binarize dynamic, static or threshold, or use "
                             f"--likelihood gaussian")
    return check_data(x, likelihood, "dynamic" if mode == "dynamic" else None, width=width,
                      name=name)


def _eval_mode(opts, likelihood, x) -> str:
    mode = {"dynamic": "static"}.get(opts["binarize"], opts["binarize"])
    if mode == "auto":
        mode = "static" if likelihood == "bernoulli" and not is_binary(x) else "none"
    return mode


def load_for_model(args, vae, split):
    """Data of ``split`` prepared for a trained model, with the options that were used."""
    opts = data_options(args, read_run(args.checkpoint))
    ds = getattr(load_splits(opts, vae.dtype, (split,), vae.likelihood.name), split)
    if len(ds.x) == 0:
        raise ValueError(f"the {split} split of {opts['data']} holds no images (a single file or "
                         f"folder holds training images only, and validation images are carved "
                         f"from them); choose another with --split, e.g. --split valid")
    mode = _eval_mode(opts, vae.likelihood.name, ds.x)
    x = prepare(ds.x, split, vae.likelihood.name, mode, opts["binarize_seed"], width=vae.x_dim)
    return x, ds.y, opts, mode


def describe_data(opts, split, n, mode) -> str:
    src = (f"embedded digits (data seed {opts['data_seed']})" if opts["data"] == "embedded"
           else opts["data"])
    seed = f", seed {opts['binarize_seed'] + SPLIT_INDEX[split]}" if mode == "static" else ""
    if opts.get("dequantize") == "uniform":
        seed += (f", dequantized: x = (k + u)/256, u from default_rng([{opts['data_seed']}, 3, "
                 f"{SPLIT_INDEX[split]}])")
    return f"{src}, {split} split, {n} images, binarization: {mode}{seed}"


def bits_scale(opts, x) -> str:
    """Which scale the bits/dim of data ``x`` are on, for the printed lines and the JSON."""
    if opts.get("dequantize") == "uniform":
        return "256-level"
    return "0/1 pixels" if is_binary(x) else "continuous"


BITS_SCALES = {"256-level": "on the 256-level scale, a bound on -log2 P(k)/D of the 8-bit data "
                            "(x = (k + u)/256; Theis et al. 2016)",
               "0/1 pixels": "of the 0/1 pixels",
               "continuous": "of a density on the data's own scale (not a bound on discrete "
                             "data; not comparable with published bits/dim)"}


def parse_hidden(text) -> tuple:
    try:
        sizes = tuple(int(h) for h in str(text).split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers like 400 or 500,500, "
                         f"got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden widths must be >= 1, got {text!r}")
    return sizes


def parse_obs_scale(text):
    if text == "learned":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"--obs-scale must be a number > 0 or 'learned', got {text!r}")
    return value


def model_str(cfg) -> str:
    sizes = "-".join(map(str, [cfg["x_dim"], *cfg["hidden"], cfg["z_dim"]]))
    lik = cfg["likelihood"]
    if lik == "gaussian":
        lik += f" (sigma {cfg['obs_scale'] or 'learned'})"
    post = cfg["posterior"] + (f" flow (K = {cfg['flow_length']})" if "flow_length" in cfg else "")
    return (f"{sizes} {cfg['activation']}, {post} q(z|x), {lik} p(x|z), "
            f"{cfg['dtype']}")


class Progress:
    """Prints 'log p(x): done/total' to stderr about every tenth of the work."""

    def __init__(self):
        self.next = 0.0

    def __call__(self, done, total):
        if done >= self.next or done == total:
            print(f"  log p(x): {done}/{total} examples", file=sys.stderr, flush=True)
            self.next = done + total / 10


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON atomically (a temporary file, then os.replace)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def list_files(folder) -> list:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if not f.startswith("."))


def subset_rows(n_total, n, seed):
    import numpy as np
    if n < 0:
        raise ValueError(f"--subset must be >= 0, got {n}")
    if n == 0 or n >= n_total:
        return np.arange(n_total), f"all {n_total}"
    idx = np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))
    return idx, (f"{n} of {n_total}, rows np.sort(numpy.random.default_rng({seed}).choice("
                 f"{n_total}, {n}, replace=False)) = [{', '.join(map(str, idx[:8]))}, ...]")


def evaluate_model(vae, x, *, k, seed, elbo_samples=10, k_chunk=1000, progress=None,
                   levels=None) -> dict:
    """The numbers ``evaluate`` and ``demo`` print, as a JSON-ready dict. ``levels``: None, or
    256 for data dequantized as x = (k + u)/256 (bits/dim on the 256-level scale)."""
    import numpy as np

    from ..evaluate import (active_units, bits_per_dim, bits_per_dim_discrete, elbo,
                            kl_per_dimension, log_likelihood)

    def to_bits(nats):
        if levels is None:
            return float(bits_per_dim(nats, vae.x_dim))
        return float(bits_per_dim_discrete(nats, vae.x_dim, levels))

    e = elbo(vae, x, rng=np.random.default_rng([seed, 1]), n_samples=elbo_samples)
    ll = log_likelihood(vae, x, rng=np.random.default_rng([seed, 2]), K=k,
                        k_chunk=min(k, k_chunk), progress=progress)
    # a flow posterior has no closed-form KL, so none per dimension either
    kl_dim = kl_per_dimension(vae, x).tolist() if vae.posterior.has_analytic_kl else None
    n_active, variances = active_units(vae, x)
    mean = lambda a: float(np.mean(a))                                         # noqa: E731
    return {"n": len(x), "elbo": mean(e["elbo"]), "rec": mean(e["rec"]), "kl": mean(e["kl"]),
            "elbo_samples": elbo_samples, "log_px": mean(ll), "K": k,
            "log_px_sem": float(np.std(ll) / np.sqrt(len(ll))),
            "nats": -mean(ll), "bits_per_dim": to_bits(-mean(ll)),
            "elbo_bits_per_dim": to_bits(-mean(e["elbo"])),
            "kl_per_dim": kl_dim, "active_units": n_active,
            "posterior_mean_variance": variances.tolist()}
