"""``python -m scratchvae train | evaluate | sample``: the VAE from the command line.

    train      any VAE on embedded digits or your own files (docs/data.md); checkpoints + metrics
    evaluate   ELBO, importance-sampled log p(x), bits/dim, KL per latent dimension, active units
    sample     prior samples, reconstructions, interpolations, the 2-D manifold, as PNGs

(``demo``, the README's main demo, is :mod:`scratchvae.cli.demo`; the shared argument groups
and helpers are in :mod:`scratchvae.cli.support`.)

Data and binarization are decided once, here (:func:`prepare`). The Bernoulli likelihood needs
0/1 pixels, so grey data are binarized: ``dynamic`` draws x_b ~ Bern(x) afresh for every
minibatch (train only); ``static`` draws once, split s with seed ``binarize_seed + k`` (k = 0, 1, 2
for train, valid, test); ``threshold`` is x > 0.5. A model trained with dynamic binarization is
evaluated on the static draw of its test set (the convention of Burda et al. 2016). The
Gaussian likelihood on 8-bit grey levels k gets x = (k + u)/256 (``--dequantize``, :func:`load_splits`),
and its bits/dim are reported on the 256-level scale (docs/data.md). ``train``
records the data options in ``run.json`` beside its checkpoints, so ``evaluate`` and ``sample``
find the same data without being told again.

NumPy, SciPy and matplotlib are imported inside the command functions, after the BLAS thread
count is set (``--threads``), so ``--help`` is fast.
"""
from __future__ import annotations

import json
import math
import os
import sys

from .runs import (  # run folders: --out, --resume, Ctrl-C
    add_out_options, as_flags, check_counts, check_out, options_from_checkpoint, png_path,
    report_interrupt)
from .support import (  # the shared argument groups and helpers
    ACTIVATIONS, BITS_SCALES, ESTIMATORS, HF, OPTIMIZERS, POSTERIORS, RUN_FILE, SPLIT_INDEX,
    bits_scale, data_group, data_options, describe_data, drawing_shape, evaluate_model, is_binary,
    list_files, load_for_model, load_splits, model_str, parse_hidden, parse_obs_scale, prepare,
    Progress, read_run, set_threads, stored_image_shape, subset_rows, threads_option, write_json)


def register(subparsers) -> None:
    """Add ``train``, ``evaluate`` and ``sample`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "train", formatter_class=HF, help="train a VAE",
        description="Train a VAE; writes checkpoint.npz (last epoch), best.npz (best validation "
                    "ELBO; L_K for --estimator iwae), metrics.csv/.json and run.json (the data "
                    "options, for evaluate and sample) into --out and prints one line per epoch.")
    data_group(p, train=True)
    g = p.add_argument_group("model")
    g.add_argument("--z-dim", type=int, default=20, help="latent dimensions")
    g.add_argument("--hidden", default="400", help="hidden widths, comma separated, e.g. 500,500 "
                                                   "(the decoder mirrors the encoder)")
    g.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="hidden activation")
    g.add_argument("--posterior", default="diagonal", choices=POSTERIORS,
                   help="q(z|x): diagonal Gaussian, full covariance via its Cholesky factor, or a "
                        "normalizing flow on the diagonal Gaussian (train it with --estimator mc "
                        "or iwae)")
    g.add_argument("--flow-length", type=int, default=0, metavar="K",
                   help="flow posteriors: number of layers (IAF: autoregressive steps)")
    g.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="p(x|z): Bernoulli pixels (0/1 data) or Gaussian pixels")
    g.add_argument("--obs-scale", default="0.1",
                   help="gaussian: fixed pixel sigma, or 'learned' (sigma >= --min-obs-scale)")
    g.add_argument("--min-obs-scale", type=float, default=0.01, help="floor of a learned sigma")
    g.add_argument("--init-obs-scale", type=float, default=0.5,
                   help="starting value of a learned sigma (every pixel)")
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
    g.add_argument("--divergence-factor", type=float, default=10.0, metavar="F",
                   help="stop when the validation ELBO falls, or the training objective rises "
                        "above it, by more than F times the run's scale (scratchvae.runs.divergence); "
                        "0 turns the check off")
    add_out_options(p, os.path.join("out", "train"),
                    "folder for checkpoints, metrics and run.json; a new run needs it empty or "
                    "absent (with --resume: the checkpoint's folder)",
                    "start a new run in an --out folder that holds one: its checkpoints, metrics "
                    "and run.json are deleted before the first epoch")
    p.add_argument("--resume", default=None, metavar="RUN_DIR_OR_CHECKPOINT",
                   help="continue a run: its folder (checkpoint.npz inside) or a checkpoint "
                        "file. Model, training and data options come from the checkpoint and "
                        "run.json; give only --epochs to train longer. The result is "
                        "bit-identical to an uninterrupted run")
    threads_option(p)
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate", formatter_class=HF, help="evaluate a checkpoint",
                              description="ELBO, importance-sampled log p(x) (Burda et al. 2016), "
                                          "nats and bits/dim, reconstruction/KL split, KL per "
                                          "latent dimension and active units.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz, or a run folder (its checkpoint.npz)")
    data_group(p, train=False)
    p.add_argument("--split", default="test", choices=tuple(SPLIT_INDEX), help="split to evaluate")
    p.add_argument("--k", type=int, default=5000, help="importance samples K for log p(x)")
    p.add_argument("--k-chunk", type=int, default=1000, help="samples per decoder pass (memory)")
    p.add_argument("--elbo-samples", type=int, default=10, help="samples L for the ELBO estimate")
    p.add_argument("--subset", type=int, default=0,
                   help="evaluate N examples drawn without replacement with --seed (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and of the noise")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON "
                                                                "('-' for stdout)")
    threads_option(p)
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("sample", formatter_class=HF, help="draw images from a checkpoint",
                              description="Decode z ~ N(0, I) into a PNG; optionally also "
                                          "reconstructions, interpolations and the 2-D manifold.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz, or a run folder (its checkpoint.npz)")
    p.add_argument("--n", type=int, default=100, help="prior samples")
    p.add_argument("--ncols", type=int, default=10, help="images per row")
    p.add_argument("--seed", type=int, default=0, help="seed of z and of sampled pixels")
    p.add_argument("--pixels", default="mean", choices=("mean", "sample"),
                   help="show E[x|z] or a draw x ~ p(x|z)")
    p.add_argument("--out", default="samples.png", metavar="PNG_OR_DIR",
                   help="a .png file, or a folder (existing, or written with a trailing /) to "
                        "hold samples.png; extra figures go beside it as <name>_<kind>.png")
    p.add_argument("--reconstruct", type=int, default=0, metavar="N",
                   help="also reconstruct the first N images of --split")
    p.add_argument("--interpolate", type=int, default=0, metavar="N",
                   help="also interpolate between N pairs of --split images")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation")
    p.add_argument("--grid", type=int, default=0, metavar="N",
                   help="also decode an N x N grid of latent quantiles (z-dim 2 only)")
    p.add_argument("--image-shape", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="height and width of an image (H * W = the model's x-dim); default: as "
                        "in run.json beside the checkpoint, else square")
    threads_option(p)
    p.add_argument("--split", default="test", choices=tuple(SPLIT_INDEX), help="data split used")
    data_group(p, train=False)
    p.set_defaults(func=run_sample)


# ------------------------------------------------------------------------------- commands
def run_train(args) -> int:
    """``train``: returns 0 after training; errors propagate to :func:`scratchvae.cli.main`."""
    set_threads(args.threads)
    import numpy as np

    from ..train import TrainConfig, train
    from ..vae import VAE
    check_counts(args)
    if args.resume is not None:
        options_from_checkpoint(args)
    check_out(args)
    dtype = np.dtype(args.dtype)
    opts = data_options(args, {})
    splits = load_splits(opts, dtype, ("train", "valid"), args.likelihood)
    mode = opts["binarize"]
    if mode == "auto":
        bern = args.likelihood == "bernoulli"
        mode = "dynamic" if bern and not is_binary(splits.train.x) else "none"
    x_train = prepare(splits.train.x, "train", args.likelihood, mode, opts["binarize_seed"])
    x_valid = prepare(splits.valid.x, "valid", args.likelihood, mode, opts["binarize_seed"],
                       width=x_train.shape[1])
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                         lr=args.lr, estimator=args.estimator, n_samples=args.samples,
                         warmup_epochs=args.warmup_epochs, patience=args.patience,
                         dynamic_binarization=mode == "dynamic", seed=args.seed,
                         divergence_factor=args.divergence_factor or None).validate()
    vae = VAE(x_train.shape[1], args.z_dim, rng=np.random.default_rng([args.seed, 3]),
              hidden=parse_hidden(args.hidden), activation=args.activation, posterior=args.posterior,
              flow_length=args.flow_length,
              likelihood=args.likelihood, obs_scale=parse_obs_scale(args.obs_scale),
              min_obs_scale=args.min_obs_scale, init_obs_scale=args.init_obs_scale, dtype=dtype)
    print(f"data: {describe_data(opts, 'train', len(x_train), mode)}; {len(x_valid)} validation")
    if opts["dequantize"] == "uniform":
        print("bits/dim in the epoch lines: -ELBO / (D ln 2) of the density of x = (k + u)/256; "
              "add 8 for the 256-level scale")
    print(f"model: {model_str(vae.config)}, {sum(p.size for p in vae.params.values())} "
          f"parameters")
    record = {**opts, "binarize": mode, "image_shape": stored_image_shape(opts["data"], vae.x_dim),
              "argv": sys.argv[1:]}
    history = _train_or_explain(train, vae, x_train, x_valid, config, args, record)
    if history is None:                        # Ctrl-C: what was saved has been printed
        return 130
    bad = [h for h in history if not math.isfinite(h["valid_elbo"])]
    if bad:                                    # the last step of an epoch can diverge unnoticed
        raise ValueError(f"training diverged: the validation ELBO is {bad[0]['valid_elbo']} at "
                         f"epoch {bad[0]['epoch']}; lower the learning rate (--lr {args.lr})")
    from ..runs import validation_key, validation_scores
    best = history[int(np.argmax(validation_scores(history)))]  # ELBO, or L_K for iwae
    key = validation_key(history)
    name = f"IWAE bound L_{args.samples}" if key == "valid_iwae" else "ELBO"
    score = best[key]
    on_256 = ""
    if opts["dequantize"] == "uniform":
        from ..evaluate import bits_per_dim_discrete
        on_256 = (f" = {float(bits_per_dim_discrete(-score, vae.x_dim)):.4f} "
                  f"bits/dim on the 256-level scale")
    print(f"best validation {name} {score:.3f} nats{on_256} at epoch {best['epoch']}")
    print("files: " + ", ".join(list_files(args.out)))
    return 0


def _train_or_explain(train, vae, x_train, x_valid, config, args, record):
    """``train(...)``, with a divergence reported as one line instead of warnings and a crash,
    and Ctrl-C as what was saved plus the command that continues (returns None then).

    ``record`` goes to ``run.json`` when the first line is logged, i.e. once the run (or the
    resumed run) has been accepted, just before its first checkpoint is written. The data were
    validated by :func:`prepare`, so the trainer's FloatingPointError means the numbers blew
    up; it is reported with the command-line flags to change.
    """
    import numpy as np

    from ..checkpoint import write_text_atomic

    def log(line):
        if record:
            os.makedirs(args.out, exist_ok=True)
            write_text_atomic(os.path.join(args.out, RUN_FILE), json.dumps(record, indent=1))
            record.clear()
        print(as_flags(line), flush=True)

    with np.errstate(over="ignore", invalid="ignore"):     # reported once, below
        try:
            return train(vae, x_train, x_valid, config, out_dir=args.out, resume=args.resume,
                         overwrite=args.overwrite, threads=args.threads, log=log)
        except FloatingPointError as exc:
            raise ValueError(as_flags(str(exc))) from None
        except KeyboardInterrupt:
            report_interrupt(args.out, config.epochs)
            return None


def run_evaluate(args) -> int:
    """``evaluate``: print (and optionally write as JSON) the evaluation of a checkpoint."""
    set_threads(args.threads)
    from ..train import load_model
    vae, meta = load_model(args.checkpoint)
    x, _, opts, mode = load_for_model(args, vae, args.split)
    idx, which = subset_rows(len(x), args.subset, args.seed)
    print(f"checkpoint {args.checkpoint}: epoch {meta['epoch']}, model {model_str(meta['model'])}")
    print(f"data: {describe_data(opts, args.split, len(x), mode)}")
    print(f"examples: {which}")
    scale = bits_scale(opts, x)
    r = evaluate_model(vae, x[idx], k=args.k, seed=args.seed, elbo_samples=args.elbo_samples,
                       k_chunk=args.k_chunk, progress=Progress(),
                       levels=256 if scale == "256-level" else None)
    r.update(checkpoint=os.path.abspath(args.checkpoint), split=args.split, binarize=mode,
             seed=args.seed, indices=idx.tolist(), data=opts["data"], bits_per_dim_scale=scale)
    D = vae.x_dim
    print(f"ELBO          {r['elbo']:10.3f} nats  ({r['elbo_bits_per_dim']:.4f} bits/dim, "
          f"{scale}; L = {r['elbo_samples']})")
    print(f"  = rec       {r['rec']:10.3f}  E_q[log p(x|z)]")
    print(f"  - KL        {r['kl']:10.3f}  KL(q(z|x) || p(z))")
    print(f"log p(x) >=   {r['log_px']:10.3f} nats  +- {r['log_px_sem']:.3f} (s.e.m.)  "
          f"importance sampled, K = {r['K']}")
    print(f"-log p(x)     {r['nats']:10.3f} nats = {r['bits_per_dim']:.4f} bits/dim (D = {D}) "
          f"{BITS_SCALES[scale]}")
    if r["kl_per_dim"] is not None:
        print("KL per dim    " + " ".join(f"{v:.3f}" for v in r["kl_per_dim"]))
    print(f"active units  {r['active_units']} of {vae.z_dim} (Var_x E_q[z_u|x] > 0.01)")
    if args.json:
        if args.json == "-":
            print(json.dumps(r, indent=1))
        else:
            write_json(args.json, r)
            print(f"wrote {args.json}")
    return 0


def run_sample(args) -> int:
    """``sample``: prior samples to --out, plus the optional figures beside it."""
    set_threads(args.threads)
    import numpy as np

    from .. import generate
    from ..train import load_model
    from ..viz import vae as fig
    for name, low in (("n", 1), ("ncols", 1), ("steps", 1), ("reconstruct", 0),
                      ("interpolate", 0), ("grid", 0)):
        if getattr(args, name) < low:
            raise ValueError(f"--{name} must be >= {low}, got {getattr(args, name)}")
    args.out = png_path(args.out)
    vae, meta = load_model(args.checkpoint)
    run = read_run(args.checkpoint)
    data = data_options(args, run)["data"]
    if args.data is not None and data != run.get("data"):      # other data than the training's
        run = {**run, "image_shape": stored_image_shape(data, vae.x_dim)}
    shape = drawing_shape(args.image_shape, run, vae.x_dim)
    if args.grid and vae.z_dim != 2:
        raise ValueError(f"--grid needs a model with z-dim 2, this one has {vae.z_dim}")
    rng = np.random.default_rng(args.seed)
    stem, kind = os.path.splitext(args.out)[0], "E[x|z]" if args.pixels == "mean" else "x ~ p(x|z)"
    images = generate.sample_prior(vae, args.n, rng=rng, mean=args.pixels == "mean")
    written = [fig.image_grid(images, ncols=args.ncols, shape=shape, path=args.out,
                              title=f"{args.n} prior samples z ~ N(0, I), shown as {kind}",
                              caption=f"{args.checkpoint}, epoch {meta['epoch']}, "
                                      f"seed {args.seed}")]
    if args.reconstruct or args.interpolate:
        x, _, opts, mode = load_for_model(args, vae, args.split)
        need = max(args.reconstruct, 2 * args.interpolate)
        if need > len(x):
            raise ValueError(f"the {args.split} split has {len(x)} images, {need} are needed")
        where = describe_data(opts, args.split, len(x), mode)
        if args.reconstruct:
            xs = x[:args.reconstruct]
            written.append(fig.reconstructions(
                xs, generate.reconstruct(vae, xs), shape=shape, path=f"{stem}_reconstructions.png",
                title=f"first {args.reconstruct} {args.split} images and E[x|z = E_q[z|x]]",
                caption=where))
        if args.interpolate:
            rows = [generate.interpolate(vae, x[2 * i], x[2 * i + 1], args.steps)
                    for i in range(args.interpolate)]
            written.append(fig.interpolations(
                rows, labels=[f"{2 * i} -> {2 * i + 1}" for i in range(args.interpolate)],
                shape=shape,
                path=f"{stem}_interpolations.png", caption=where,
                title=f"decoded latent interpolations between {args.split} images a -> b"))
    if args.grid:
        images, z = generate.latent_grid(vae, args.grid)
        written.append(fig.manifold(images, z, args.grid, shape=shape, path=f"{stem}_manifold.png",
                                    title=f"decoded {args.grid} x {args.grid} grid of N(0,1) "
                                          f"quantiles 0.05..0.95"))
    print("files: " + ", ".join(written))
    return 0
