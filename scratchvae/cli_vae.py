"""``python -m scratchvae demo | train | evaluate | sample``: the VAE from the command line.

    demo       the README's main demo: a 2-D latent VAE on the embedded digits, about a minute
    train      any VAE on embedded digits or MNIST files; checkpoints + metrics in --out
    evaluate   ELBO, importance-sampled log p(x), bits/dim, KL per latent dimension, active units
    sample     prior samples, reconstructions, interpolations, the 2-D manifold, as PNGs

Data and binarization are decided once, here (:func:`_prepare`). The Bernoulli likelihood needs
0/1 pixels, so grey data are binarized: ``dynamic`` draws x_b ~ Bern(x) afresh for every
minibatch (train only); ``static`` draws once, split s with seed ``binarize_seed + k`` (k = 0, 1, 2
for train, valid, test); ``threshold`` is x > 0.5. A model trained with dynamic binarization is
evaluated on the static draw of its test set (the convention of Burda et al. 2016). ``train``
records the data options in ``run.json`` beside its checkpoints, so ``evaluate`` and ``sample``
find the same data without being told again.

NumPy, SciPy and matplotlib are imported inside the command functions, after the BLAS thread
count is set (``--threads``), so ``--help`` is fast.
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
def _common(p, data=True, threads_default=None):
    if data:
        g = p.add_argument_group("data")
        g.add_argument("--data", default=None, metavar="SOURCE",
                       help="'embedded' (digits rendered from matplotlib's fonts, no files), or a "
                            "path: .npz (keys train/valid/test or x_train/x_test), a "
                            "binarized_mnist_*.amat file or folder, an MNIST *-idx3-ubyte[.gz] file "
                            "or folder. None: the run.json beside the checkpoint, else 'embedded'")
        g.add_argument("--n-train", type=int, default=None, help="embedded: training images (10000)")
        g.add_argument("--n-valid", type=int, default=None,
                       help="embedded: validation images (1000); .npz/IDX without a validation "
                            "split: images taken off the end of the training set (10000)")
        g.add_argument("--n-test", type=int, default=None, help="embedded: test images (1000)")
        g.add_argument("--data-seed", type=int, default=None, help="embedded: rendering seed (0)")
        g.add_argument("--binarize-seed", type=int, default=None,
                       help="seed of the static Bernoulli draw; split k = 0, 1, 2 (train, valid, "
                            "test) uses seed + k (0)")
    p.add_argument("--threads", type=int, default=threads_default, metavar="N",
                   help="BLAS threads, set before NumPy loads (0: leave the BLAS default). None: "
                        "1 unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS is set. The matrices here "
                        "are small; on a busy 2-core machine 2 spinning BLAS threads made an "
                        "epoch 20x slower than 1")


def register(subparsers) -> None:
    """Add ``demo``, ``train``, ``evaluate`` and ``sample`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "demo", formatter_class=HF, help="the main demo: a 2-D latent VAE on embedded digits",
        description="Train a VAE with a 2-D latent (784-256-2, Bernoulli pixels, dynamic "
                    "binarization, Adam) on embedded digits, then write PNGs: learning curves, "
                    "prior samples, reconstructions, the latent scatter by digit and the decoded "
                    "manifold; print the test ELBO, log p(x) and bits/dim. About a minute.")
    p.add_argument("--out", default=os.path.join("out", "demo"), metavar="DIR",
                   help="folder for the PNGs, checkpoints and metrics")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--n-train", type=int, default=10000, help="embedded training images")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, model and training")
    p.add_argument("--k", type=int, default=500, help="importance samples for log p(x)")
    p.add_argument("--subset", type=int, default=500, help="test images for log p(x)")
    _common(p, data=False)
    p.set_defaults(func=run_demo)

    p = subparsers.add_parser("train", formatter_class=HF, help="train a VAE",
                              description="Train a VAE; writes checkpoint.npz (last epoch), best.npz "
                                          "(best validation ELBO), metrics.csv/.json and run.json "
                                          "into --out and prints one line per epoch.")
    _common(p)
    p.add_argument("--binarize", default="auto",
                   choices=("auto", "none", "dynamic", "static", "threshold"),
                   help="auto: dynamic for Bernoulli on grey data, none otherwise")
    g = p.add_argument_group("model")
    g.add_argument("--z-dim", type=int, default=20, help="latent dimensions")
    g.add_argument("--hidden", default="400", help="hidden widths, comma separated, e.g. 500,500 "
                                                   "(the decoder mirrors the encoder)")
    g.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="hidden activation")
    g.add_argument("--posterior", default="diagonal", choices=("diagonal", "full"),
                   help="q(z|x): diagonal Gaussian, or full covariance via its Cholesky factor")
    g.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="p(x|z): Bernoulli pixels (0/1 data) or Gaussian pixels")
    g.add_argument("--obs-scale", default="0.1",
                   help="gaussian: fixed pixel sigma, or 'learned' (sigma >= --min-obs-scale)")
    g.add_argument("--min-obs-scale", type=float, default=0.01, help="floor of a learned sigma")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="dtype of parameters and data")
    g = p.add_argument_group("training (scratchvae.train.TrainConfig)")
    g.add_argument("--epochs", type=int, default=10, help="total epochs (counting resumed ones)")
    g.add_argument("--batch-size", type=int, default=128, help="minibatch size")
    g.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="optimizer")
    g.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    g.add_argument("--estimator", default="analytic", choices=ESTIMATORS,
                   help="analytic KL ELBO, full Monte Carlo ELBO, or the IWAE bound")
    g.add_argument("--samples", type=int, default=1, help="L samples per example (K for iwae)")
    g.add_argument("--warmup-epochs", type=float, default=0.0,
                   help="KL warm-up: beta rises linearly from 0 to 1 over this many epochs")
    g.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a better validation ELBO")
    g.add_argument("--seed", type=int, default=0, help="seed of initialization, batches, noise")
    p.add_argument("--out", default=os.path.join("out", "train"), metavar="DIR",
                   help="folder for checkpoints, metrics and run.json")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue from this checkpoint.npz (same options, larger --epochs); "
                        "the result is bit-identical to an uninterrupted run")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate", formatter_class=HF, help="evaluate a checkpoint",
                              description="ELBO, importance-sampled log p(x) (Burda et al. 2016), "
                                          "nats and bits/dim, reconstruction/KL split, KL per "
                                          "latent dimension and active units.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz")
    _common(p)
    p.add_argument("--binarize", default="auto", choices=("auto", "none", "static", "threshold"),
                   help="auto: as in run.json (dynamic -> static), else static for Bernoulli on "
                        "grey data")
    p.add_argument("--split", default="test", choices=tuple(SPLIT_INDEX), help="split to evaluate")
    p.add_argument("--k", type=int, default=5000, help="importance samples K for log p(x)")
    p.add_argument("--k-chunk", type=int, default=1000, help="samples per decoder pass (memory)")
    p.add_argument("--elbo-samples", type=int, default=10, help="samples L for the ELBO estimate")
    p.add_argument("--subset", type=int, default=0,
                   help="evaluate N examples drawn without replacement with --seed (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and of the noise")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON "
                                                                "('-' for stdout)")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("sample", formatter_class=HF, help="draw images from a checkpoint",
                              description="Decode z ~ N(0, I) into a PNG; optionally also "
                                          "reconstructions, interpolations and the 2-D manifold.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz")
    p.add_argument("--n", type=int, default=100, help="prior samples")
    p.add_argument("--ncols", type=int, default=10, help="images per row")
    p.add_argument("--seed", type=int, default=0, help="seed of z and of sampled pixels")
    p.add_argument("--pixels", default="mean", choices=("mean", "sample"),
                   help="show E[x|z] or a draw x ~ p(x|z)")
    p.add_argument("--out", default="samples.png", metavar="PNG",
                   help="output; extra figures go beside it as <name>_<kind>.png")
    p.add_argument("--reconstruct", type=int, default=0, metavar="N",
                   help="also reconstruct the first N images of --split")
    p.add_argument("--interpolate", type=int, default=0, metavar="N",
                   help="also interpolate between N pairs of --split images")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation")
    p.add_argument("--grid", type=int, default=0, metavar="N",
                   help="also decode an N x N grid of latent quantiles (z-dim 2 only)")
    p.add_argument("--split", default="test", choices=tuple(SPLIT_INDEX), help="data split used")
    _common(p)
    p.set_defaults(func=run_sample)


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
    defaults = dict(data="embedded", n_train=10000, n_valid=None, n_test=1000, data_seed=0,
                    binarize="auto", binarize_seed=0)
    out = {}
    for k in DATA_KEYS:
        given = getattr(args, k, None)
        out[k] = given if given is not None and given != "auto" else run.get(k, defaults[k])
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
    from .data import load_dataset
    if opts["data"] == "embedded":
        n = {s: (opts[f"n_{s}"] or 1000) if s in need else 0 for s in SPLIT_INDEX}
        return load_dataset("embedded", dtype=dtype, n_train=max(n["train"], 1), n_valid=n["valid"],
                            n_test=n["test"], seed=opts["data_seed"])
    extra = {} if opts["n_valid"] is None else {"n_valid": opts["n_valid"]}
    return load_dataset(opts["data"], dtype=dtype, **extra)


def _is_binary(x) -> bool:
    import numpy as np
    return bool(np.all((x == 0) | (x == 1)))


def _prepare(x, split, likelihood, mode, seed, width=None):
    """Binarize split ``split`` of the data as ``mode`` says and refuse data unfit for the model."""
    from .data import binarize_static, check_data
    name = f"the {split} data"
    if mode in ("static", "threshold"):
        check_data(x, likelihood, "static", width=width, name=name)
        x = binarize_static(x, "bernoulli" if mode == "static" else "threshold",
                            seed=seed + SPLIT_INDEX[split])
    if mode == "dynamic" and likelihood != "bernoulli":
        raise ValueError("--binarize dynamic is for the Bernoulli likelihood only")
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
        return float(text)
    except ValueError:
        raise ValueError(f"--obs-scale must be a number > 0 or 'learned', got {text!r}") from None


def _files(folder) -> list:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if not f.startswith("."))


# ------------------------------------------------------------------------------- commands
def run_train(args) -> int:
    """``train``: returns 0 after training; errors propagate to :func:`scratchvae.cli.main`."""
    _set_threads(args.threads)
    import numpy as np

    from .train import TrainConfig, train
    from .vae import VAE
    dtype = np.dtype(args.dtype)
    opts = _data_options(args, {})
    splits = _load(opts, dtype, ("train", "valid"))
    mode = opts["binarize"]
    if mode == "auto":
        bern = args.likelihood == "bernoulli"
        mode = "dynamic" if bern and not _is_binary(splits.train.x) else "none"
    x_train = _prepare(splits.train.x, "train", args.likelihood, mode, opts["binarize_seed"])
    x_valid = _prepare(splits.valid.x, "valid", args.likelihood, mode, opts["binarize_seed"],
                       width=x_train.shape[1])
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                         lr=args.lr, estimator=args.estimator, n_samples=args.samples,
                         warmup_epochs=args.warmup_epochs, patience=args.patience,
                         dynamic_binarization=mode == "dynamic", seed=args.seed).validate()
    vae = VAE(x_train.shape[1], args.z_dim, rng=np.random.default_rng([args.seed, 3]),
              hidden=_hidden(args.hidden), activation=args.activation, posterior=args.posterior,
              likelihood=args.likelihood, obs_scale=_obs_scale(args.obs_scale),
              min_obs_scale=args.min_obs_scale, dtype=dtype)
    print(f"data: {_describe(opts, 'train', len(x_train), mode)}; {len(x_valid)} validation")
    print(f"model: {x_train.shape[1]}-{args.hidden}-{args.z_dim} {args.posterior} q, "
          f"{args.likelihood} p(x|z), {sum(p.size for p in vae.params.values())} parameters")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, RUN_FILE), "w") as f:
        json.dump({**opts, "binarize": mode, "argv": sys.argv[1:]}, f, indent=1)
    history = train(vae, x_train, x_valid, config, out_dir=args.out, resume=args.resume)
    best = max(history, key=lambda h: h["valid_elbo"])
    print(f"best validation ELBO {best['valid_elbo']:.3f} nats at epoch {best['epoch']}")
    print("files: " + ", ".join(_files(args.out)))
    return 0


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

    from .evaluate import active_units, bits_per_dim, elbo, kl_per_dimension, log_likelihood
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


def run_evaluate(args) -> int:
    """``evaluate``: print (and optionally write as JSON) the evaluation of a checkpoint."""
    _set_threads(args.threads)
    from .train import load_model
    vae, meta = load_model(args.checkpoint)
    x, _, opts, mode = _load_for_model(args, vae, args.split)
    idx, which = _subset(len(x), args.subset, args.seed)
    print(f"checkpoint {args.checkpoint}: epoch {meta['epoch']}, model {meta['model']}")
    print(f"data: {_describe(opts, args.split, len(x), mode)}")
    print(f"examples: {which}")
    step = max(1, len(idx) // 10)
    report = lambda done, total: (print(f"  log p(x): {done}/{total} examples", file=sys.stderr)
                                  if done % step < 20 or done == total else None)  # noqa: E731
    r = evaluate_model(vae, x[idx], k=args.k, seed=args.seed, elbo_samples=args.elbo_samples,
                       k_chunk=args.k_chunk, progress=report)
    r.update(checkpoint=os.path.abspath(args.checkpoint), split=args.split, binarize=mode,
             seed=args.seed, indices=idx.tolist(), data=opts["data"])
    D = vae.x_dim
    print(f"ELBO          {r['elbo']:10.3f} nats  ({r['elbo_bits_per_dim']:.4f} bits/dim; "
          f"L = {r['elbo_samples']})")
    print(f"  = rec       {r['rec']:10.3f}  E_q[log p(x|z)]")
    print(f"  - KL        {r['kl']:10.3f}  KL(q(z|x) || p(z))")
    print(f"log p(x) >=   {r['log_px']:10.3f} nats  +- {r['log_px_sem']:.3f} (s.e.m.)  "
          f"importance sampled, K = {r['K']}")
    print(f"-log p(x)     {r['nats']:10.3f} nats = {r['bits_per_dim']:.4f} bits/dim (D = {D})")
    print(f"KL per dim    " + " ".join(f"{v:.3f}" for v in r["kl_per_dim"]))
    print(f"active units  {r['active_units']} of {vae.z_dim} (Var_x E_q[z_u|x] > 0.01)")
    if args.json:
        text = json.dumps(r, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
            print(f"wrote {args.json}")
    return 0


def run_sample(args) -> int:
    """``sample``: prior samples to --out, plus the optional figures beside it."""
    _set_threads(args.threads)
    import numpy as np

    from . import generate
    from .train import load_model
    from .viz import vae as fig
    for name in ("n", "ncols", "steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    vae, meta = load_model(args.checkpoint)
    if args.grid and vae.z_dim != 2:
        raise ValueError(f"--grid needs a model with z-dim 2, this one has {vae.z_dim}")
    rng = np.random.default_rng(args.seed)
    stem, kind = os.path.splitext(args.out)[0], "E[x|z]" if args.pixels == "mean" else "x ~ p(x|z)"
    images = generate.sample_prior(vae, args.n, rng=rng, mean=args.pixels == "mean")
    written = [fig.image_grid(images, ncols=args.ncols, path=args.out,
                              title=f"{args.n} prior samples z ~ N(0, I), shown as {kind}",
                              caption=f"{args.checkpoint}, epoch {meta['epoch']}, seed {args.seed}")]
    if args.reconstruct or args.interpolate:
        x, _, opts, mode = _load_for_model(args, vae, args.split)
        need = max(args.reconstruct, 2 * args.interpolate)
        if need > len(x):
            raise ValueError(f"the {args.split} split has {len(x)} images, {need} are needed")
        where = _describe(opts, args.split, len(x), mode)
        if args.reconstruct:
            xs = x[:args.reconstruct]
            written.append(fig.reconstructions(
                xs, generate.reconstruct(vae, xs), path=f"{stem}_reconstructions.png",
                title=f"first {args.reconstruct} {args.split} images and E[x|z = E_q[z|x]]",
                caption=where))
        if args.interpolate:
            rows = [generate.interpolate(vae, x[2 * i], x[2 * i + 1], args.steps)
                    for i in range(args.interpolate)]
            written.append(fig.interpolations(
                rows, path=f"{stem}_interpolations.png", caption=where,
                title=f"decoded latent interpolations between {args.split} images (2i, 2i+1)"))
    if args.grid:
        images, z = generate.latent_grid(vae, args.grid)
        written.append(fig.manifold(images, z, args.grid, path=f"{stem}_manifold.png",
                                    title=f"decoded {args.grid} x {args.grid} grid of N(0,1) "
                                          f"quantiles 0.05..0.95"))
    print("files: " + ", ".join(written))
    return 0


def run_demo(args) -> int:
    """The README's main demo; see the ``demo --help`` description."""
    _set_threads(args.threads)
    import time

    import numpy as np

    from . import generate
    from .data import binarize_static, load_embedded_digits
    from .evaluate import elbo, posterior_means
    from .train import TrainConfig, train
    from .vae import VAE
    from .viz import vae as fig
    t0 = time.perf_counter()
    data = load_embedded_digits(n_train=args.n_train, n_valid=1000, n_test=1000, seed=args.seed)
    x_test = binarize_static(data.test.x, "bernoulli", seed=args.seed + 2)      # (1000, 784)
    vae = VAE(784, 2, rng=np.random.default_rng([args.seed, 3]), hidden=(256,))
    config = TrainConfig(epochs=args.epochs, batch_size=100, lr=2e-3,
                         dynamic_binarization=True, seed=args.seed)
    print(f"demo: VAE 784-256-2 (ReLU, diagonal q, Bernoulli p), Adam lr 2e-3, batch 100, "
          f"{args.epochs} epochs on {args.n_train} embedded digits (dynamic binarization)")
    history = train(vae, data.train.x, data.valid.x, config, out_dir=args.out)
    with open(os.path.join(args.out, RUN_FILE), "w") as f:
        json.dump(dict(data="embedded", n_train=args.n_train, n_valid=1000, n_test=1000,
                       data_seed=args.seed, binarize="dynamic", binarize_seed=args.seed), f)
    t1 = time.perf_counter()
    idx, which = _subset(len(x_test), args.subset, args.seed)
    r = evaluate_model(vae, x_test[idx], k=args.k, seed=args.seed, elbo_samples=10)
    test_elbo = float(elbo(vae, x_test, rng=np.random.default_rng([args.seed, 4]),
                           n_samples=10)["elbo"].mean())
    t2 = time.perf_counter()
    last = history[-1]
    out = args.out
    files = [fig.learning_curves(
        history, path=os.path.join(out, "curves.png"),
        title=f"2-D latent VAE on embedded digits: ELBO = reconstruction - KL, {len(history)} epochs",
        caption=f"final valid ELBO {last['valid_elbo']:.2f} nats (rec {last['valid_rec']:.2f}, "
                f"KL {last['valid_kl']:.2f}); test ELBO {test_elbo:.2f}, test log p(x) >= "
                f"{r['log_px']:.2f} (K = {args.k}, {r['n']} images), {r['bits_per_dim']:.4f} bits/dim")]
    rng = np.random.default_rng([args.seed, 5])
    files.append(fig.image_grid(
        generate.sample_prior(vae, 100, rng=rng), path=os.path.join(out, "prior_samples.png"),
        title="100 prior samples: z ~ N(0, I), shown as E[x|z]",
        caption=f"pixel = probability of ink; test log p(x) >= {r['log_px']:.2f} nats"))
    xs = x_test[:30]
    files.append(fig.reconstructions(
        xs, generate.reconstruct(vae, xs), path=os.path.join(out, "reconstructions.png"),
        title="test images (binarized) and their reconstructions E[x | z = E_q[z|x]]",
        caption=f"test reconstruction term {r['rec']:.2f} nats, KL {r['kl']:.2f} nats per image"))
    z = posterior_means(vae, x_test)
    files.append(fig.latent_scatter(
        z, data.test.y, box=(-1.645, 1.645), path=os.path.join(out, "latent_scatter.png"),
        title=f"posterior means E_q[z|x] of {len(z)} test images, by digit",
        caption=f"active units {r['active_units']}/2; KL per dimension "
                + ", ".join(f"{v:.2f}" for v in r["kl_per_dim"]) + " nats; dashed: the decoded grid"))
    images, zg = generate.latent_grid(vae, 20)
    files.append(fig.manifold(images, zg, 20, path=os.path.join(out, "manifold.png"),
                              title="decoded manifold E[x|z] on a 20 x 20 grid of N(0,1) "
                                    "quantiles 0.05..0.95"))
    print(f"test ELBO      {test_elbo:9.3f} nats ({len(x_test)} test images, L = 10, "
          f"{-test_elbo / (784 * np.log(2)):.4f} bits/dim)")
    print(f"test log p(x) >= {r['log_px']:9.3f} nats +- {r['log_px_sem']:.3f}, K = {args.k}, "
          f"{r['bits_per_dim']:.4f} bits/dim; test images: {which}")
    print(f"time: training {t1 - t0:.1f} s, evaluation {t2 - t1:.1f} s, figures "
          f"{time.perf_counter() - t2:.1f} s")
    print("files:\n  " + "\n  ".join(files + [f for f in _files(out) if f not in files]))
    return 0
