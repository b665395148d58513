"""``python -m scratchvae demo``: the README's main demo.

Trains a VAE with a 2-D latent (784-256-256-2, Bernoulli pixels, dynamic binarization, Adam) on
the embedded digits in about a minute on 2 cores, then writes learning curves, prior samples,
reconstructions, the latent scatter coloured by digit and the decoded manifold, and prints the
test ELBO, an importance-sampled log p(x) and bits per dimension.
"""
from __future__ import annotations

import os

from .runs import add_out_options
from .support import (
    HF, RUN_FILE, list_files, model_str, set_threads, subset_rows, threads_option, evaluate_model)


def register(subparsers) -> None:
    """Add ``demo`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "demo", formatter_class=HF, help="the main demo: a 2-D latent VAE on embedded digits",
        description="Train a VAE with a 2-D latent (784-256-256-2, Bernoulli pixels, dynamic "
                    "binarization, Adam) on embedded digits, then write PNGs: learning curves, "
                    "prior samples, reconstructions, the latent scatter by digit and the decoded "
                    "manifold; print the test ELBO, log p(x) and bits/dim. About 30 s on 2 cores.")
    add_out_options(p, os.path.join("out", "demo"),
                    "folder for the PNGs, checkpoints and metrics; empty, absent, or an earlier "
                    "demo's (which this run replaces)",
                    "use an --out folder that holds other files; its checkpoints, metrics and "
                    "run.json are replaced, other files stay")
    p.add_argument("--epochs", type=int, default=40, help="training epochs")
    p.add_argument("--n-train", type=int, default=10000, help="embedded training images")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, model and training")
    p.add_argument("--k", type=int, default=500, help="importance samples for log p(x)")
    p.add_argument("--subset", type=int, default=500, help="test images for log p(x)")
    threads_option(p)
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    """The README's main demo; see the ``demo --help`` description."""
    set_threads(args.threads)
    _check_out(args.out, args.overwrite)
    import json
    import time

    import numpy as np

    from ..checkpoint import write_text_atomic
    from ..data import binarize_static, load_embedded_digits
    from ..evaluate import bits_per_dim, elbo
    from ..train import TrainConfig, train
    from ..vae import VAE
    t0 = time.perf_counter()
    data = load_embedded_digits(n_train=args.n_train, n_valid=1000, n_test=1000, seed=args.seed)
    x_test = binarize_static(data.test.x, "bernoulli", seed=args.seed + 2)      # (1000, 784)
    vae = VAE(784, 2, rng=np.random.default_rng([args.seed, 3]), hidden=(256, 256))
    config = TrainConfig(epochs=args.epochs, batch_size=100, lr=2e-3,
                         dynamic_binarization=True, seed=args.seed)
    print(f"demo: VAE {model_str(vae.config)}; Adam lr 2e-3, batch 100, {args.epochs} epochs "
          f"on {args.n_train} embedded digits, dynamic binarization")
    record = dict(command="demo", data="embedded", n_train=args.n_train, n_valid=1000,
                  n_test=1000, data_seed=args.seed, binarize="dynamic", binarize_seed=args.seed)

    def log(line):        # run.json (lets evaluate/sample find the data) once training starts
        if record:
            write_text_atomic(os.path.join(args.out, RUN_FILE), json.dumps(record, indent=1))
            record.clear()
        print(line, flush=True)

    history = train(vae, data.train.x, data.valid.x, config, out_dir=args.out, overwrite=True,
                    threads=args.threads, log=log)
    t1 = time.perf_counter()
    full = {k: float(v.mean()) for k, v in
            elbo(vae, x_test, rng=np.random.default_rng([args.seed, 4]), n_samples=10).items()}
    full["bits_per_dim"] = float(bits_per_dim(-full["elbo"], 784))
    idx, which = subset_rows(len(x_test), args.subset, args.seed)
    r = evaluate_model(vae, x_test[idx], k=args.k, seed=args.seed, elbo_samples=10)
    t2 = time.perf_counter()
    files = _demo_figures(vae, history, data.test.y, x_test, full, r, args)
    print(f"test ELBO        {full['elbo']:9.3f} nats = rec {full['rec']:.3f} - KL {full['kl']:.3f}"
          f"  ({len(x_test)} test images, L = 10; {full['bits_per_dim']:.4f} bits/dim)")
    print(f"test log p(x) >= {r['log_px']:9.3f} nats +- {r['log_px_sem']:.3f} (s.e.m.)  "
          f"importance sampled, K = {args.k}; {r['bits_per_dim']:.4f} bits/dim; ELBO on the "
          f"same images {r['elbo']:.3f}")
    print(f"  log p(x) test images: {which}")
    print(f"time: data + training {t1 - t0:.1f} s, evaluation {t2 - t1:.1f} s, figures "
          f"{time.perf_counter() - t2:.1f} s")
    print("files:\n  " + "\n  ".join(files + [f for f in list_files(args.out) if f not in files]))
    return 0


def _check_out(out, overwrite) -> None:
    """--out may be absent, empty or an earlier demo's folder; anything else needs --overwrite."""
    import json

    from ..runs import contents
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a file; expected a folder (created if missing)")
    here = contents(out)
    if not here or overwrite:
        return
    try:
        with open(os.path.join(out, RUN_FILE)) as f:
            if json.load(f).get("command") == "demo":
                return
    except (OSError, ValueError, AttributeError):
        pass
    shown = ", ".join(here[:4]) + (", ..." if len(here) > 4 else "")
    raise ValueError(f"--out {out!r} holds files that are not an earlier demo's ({shown}): pass "
                     f"--overwrite to replace its checkpoints and metrics, or choose another --out")


def _demo_figures(vae, history, labels, x_test, full, r, args) -> list:
    """The demo's five PNGs; returns their paths."""
    import numpy as np

    from .. import generate
    from ..evaluate import posterior_means
    from ..viz import vae as fig
    out, last = args.out, history[-1]
    ll = f"test log p(x) >= {r['log_px']:.2f} nats (K = {args.k}, {r['n']} images)"
    files = [fig.learning_curves(
        history, path=os.path.join(out, "curves.png"),
        title=f"2-D latent VAE on embedded digits: ELBO = reconstruction - KL, "
              f"{len(history)} epochs",
        caption=f"final valid ELBO {last['valid_elbo']:.2f} nats (rec {last['valid_rec']:.2f}, "
                f"KL {last['valid_kl']:.2f}); test ELBO {full['elbo']:.2f}; {ll}, "
                f"{r['bits_per_dim']:.4f} bits/dim")]
    samples = generate.sample_prior(vae, 100, rng=np.random.default_rng([args.seed, 5]))
    files.append(fig.image_grid(samples, path=os.path.join(out, "prior_samples.png"),
                                title="100 prior samples: z ~ N(0, I), shown as E[x|z]",
                                caption=f"grey level = probability of ink; {ll}"))
    xs = x_test[:30]
    files.append(fig.reconstructions(
        xs, generate.reconstruct(vae, xs), path=os.path.join(out, "reconstructions.png"),
        title="test images (binarized) above their reconstructions E[x | z = E_q[z|x]]",
        caption=f"over the {len(x_test)} test images: reconstruction term {full['rec']:.2f} "
                f"nats, KL {full['kl']:.2f} nats, ELBO {full['elbo']:.2f} nats per image"))
    z = posterior_means(vae, x_test)
    files.append(fig.latent_scatter(
        z, labels, box=(-1.645, 1.645), path=os.path.join(out, "latent_scatter.png"),
        title=f"posterior means E_q[z|x] of the {len(z)} test images, coloured by digit",
        caption=f"active units {r['active_units']}/2; KL per dimension "
                + ", ".join(f"{v:.2f}" for v in r["kl_per_dim"])
                + " nats; dashed square: the region decoded in manifold.png"))
    images, zg = generate.latent_grid(vae, 20)
    files.append(fig.manifold(
        images, zg, 20, path=os.path.join(out, "manifold.png"),
        title="decoded manifold E[x|z] on a 20 x 20 grid of N(0,1) quantiles 0.05..0.95",
        caption="z_1 increases to the right, z_2 upwards, as in latent_scatter.png"))
    return files
