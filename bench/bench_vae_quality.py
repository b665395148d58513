"""Test log p(x) of a VAE trained within a wall-clock budget on static binarized MNIST.

    python bench/bench_vae_quality.py [--minutes 20] [--hidden 500 500] [--z-dim 50]
        [--batch-size 100] [--lr 1e-3] [--patience 10] [--eval-subset 0] [--eval-minutes 30]

Training: ``scratchvae.train.train`` (analytic ELBO, Adam, one sample by default) on the 50000
training images, validation ELBO on the 10000 validation images after every epoch, early stopping
on it (``--patience`` epochs without improvement), and a wall-clock budget (``--minutes``): the
loop calls ``train`` one epoch at a time, resuming from its own checkpoint (bit-exact, so the
run is the uninterrupted run cut short), and starts another epoch only if the last epoch's time
still fits in the budget. The best validation epoch (``best.npz``) is the model evaluated.

Evaluation on the test split, with the best model:
* ELBO (analytic KL, reconstruction averaged over 10 samples) on all 10000 images;
* log p(x) by importance sampling with K = 5000 (``scratchvae.evaluate.log_likelihood``) on all
  10000 images, or, with ``--eval-subset N``, on N images drawn at random with a fixed seed
  (the test split is ordered by class, so its first N images would be a biased sample). With
  ``--eval-minutes`` the evaluation stops early when its time runs out; the images done are then
  a prefix of the same fixed random permutation, i.e. a smaller random subset, and the output
  says how many. For a subset we also report the control-variate estimate
  mean ELBO(all 10000) + mean over the subset of (log p(x) - ELBO), whose error is much smaller
  because the gap varies far less between images than log p(x) does;
* bits per dimension, active units (Var_x E_q[z_u|x] > 0.01) and KL per latent dimension.

Writes bench/results/vae_quality.md and vae_quality.json; checkpoints go to runs/vae_quality/.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

from scratchvae.checkpoint import restore_params  # noqa: E402
from scratchvae.evaluate import active_units, elbo, kl_per_dimension, log_likelihood  # noqa: E402
from scratchvae.train import TrainConfig, load_model  # noqa: E402
from scratchvae.vae import VAE  # noqa: E402

from bench_common import (git_revision, load_splits,  # noqa: E402  (bench/ is on sys.path as a script)
                          train_within_budget)


def set_blas_threads(n):
    """Set NumPy's OpenBLAS thread count through its C API; returns True if it worked."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            if hasattr(lib, name):
                getattr(lib, name)(ctypes.c_int(n))
                return True
    return False


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget for training")
    p.add_argument("--hidden", type=int, nargs="+", default=[500, 500],
                   help="encoder widths (the decoder mirrors them)")
    p.add_argument("--z-dim", type=int, default=50)
    p.add_argument("--activation", default="relu")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--estimator", default="analytic", choices=("analytic", "mc", "iwae"))
    p.add_argument("--n-samples", type=int, default=1, help="L samples (K for iwae) per example")
    p.add_argument("--warmup-epochs", type=float, default=0.0, help="KL warm-up length")
    p.add_argument("--patience", type=int, default=10, help="early stopping: epochs without improvement")
    p.add_argument("--select-by", choices=("elbo", "iwae"), default="elbo",
                   help="validation criterion for early stopping and for the model evaluated: the "
                        "trainer's validation ELBO (its best.npz), or an IWAE bound on validation images")
    p.add_argument("--select-k", type=int, default=50, help="K of the validation IWAE bound")
    p.add_argument("--select-n", type=int, default=1000, help="validation images (fixed random subset)")
    p.add_argument("--max-epochs", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--K", type=int, default=5000, help="importance samples for log p(x)")
    p.add_argument("--eval-subset", type=int, default=0,
                   help="test images for log p(x), drawn at random with a fixed seed (0: all 10000)")
    p.add_argument("--eval-minutes", type=float, default=None,
                   help="stop the log p(x) evaluation after this long (a smaller random subset)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OpenBLAS threads (default: OpenBLAS's own choice)")
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "vae_quality"),
                   help="checkpoints and metrics (emptied at the start)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "vae_quality.md"))
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.K < 1 or args.eval_subset < 0:
        p.error("--minutes must be > 0, --K >= 1, --eval-subset >= 0")
    return args


# --------------------------------------------------------------------------------------------
# Training within a budget
# --------------------------------------------------------------------------------------------
def train_with_budget(vae, data, config, args, log):
    """One ``train`` call per epoch, resumed from the checkpoint (``bench_common.train_within_budget``).

    Returns (history, reason, seconds, selection): ``selection`` is None with ``--select-by
    elbo`` (the trainer's best.npz is the model), else dict(scores, best_epoch, params).
    The time of the validation IWAE bound counts against the budget.
    """
    budget = dict(minutes=args.minutes, patience=args.patience, max_epochs=args.max_epochs, log=log)
    if args.select_by == "elbo":
        return (*train_within_budget(vae, data, config, args.work_dir, **budget), None)
    pick = np.random.default_rng([args.seed, 6]).permutation(len(data["valid"]))[:args.select_n]
    sel = {"x": data["valid"][np.sort(pick)], "scores": [], "best_epoch": 0, "params": None}

    def scores(history):  # same noise every epoch, so epochs are compared on equal terms
        bound = log_likelihood(vae, sel["x"], rng=np.random.default_rng([args.seed, 7]),
                               K=args.select_k, k_chunk=args.select_k)
        sel["scores"].append(float(bound.mean()))
        log(f"  validation IWAE bound (K={args.select_k}, {len(sel['x'])} images): "
            f"{sel['scores'][-1]:.3f}")
        if sel["scores"][-1] >= max(sel["scores"]):
            sel["best_epoch"] = len(history)
            sel["params"] = {k: v.copy() for k, v in vae.params.items()}
        return sel["scores"]

    return (*train_within_budget(vae, data, config, args.work_dir, scores=scores, **budget), sel)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def evaluate(vae, x_test, args, log):
    n_all = len(x_test)
    test_elbo = elbo(vae, x_test, rng=np.random.default_rng([args.seed, 3]), n_samples=10)
    order = np.random.default_rng([args.seed, 4]).permutation(n_all)
    n_target = n_all if args.eval_subset in (0, n_all) else min(args.eval_subset, n_all)
    idx = order[:n_target]        # random order even for the whole split: a cut-short run stays unbiased
    rng = np.random.default_rng([args.seed, 5])
    deadline = None if args.eval_minutes is None else time.perf_counter() + 60 * args.eval_minutes
    t0, done, logp, chunk = time.perf_counter(), 0, [], 100
    while done < n_target:
        part = idx[done:done + chunk]
        logp.append(log_likelihood(vae, x_test[part], rng=rng, K=args.K))
        done += len(part)
        rate = (time.perf_counter() - t0) / done
        log(f"  log p(x): {done}/{n_target} test images, running mean {np.concatenate(logp).mean():.3f}, "
            f"{rate:.3f} s/image")
        if deadline is not None and time.perf_counter() + rate * chunk > deadline and done < n_target:
            log(f"  --eval-minutes {args.eval_minutes:g} reached: stopping at {done} images")
            break
    logp = np.concatenate(logp)
    used = idx[:done]
    gap = logp - test_elbo["elbo"][used]
    n_active, variances = active_units(vae, x_test)
    res = {
        "test_elbo": float(test_elbo["elbo"].mean()),
        "test_rec": float(test_elbo["rec"].mean()),
        "test_kl": float(test_elbo["kl"].mean()),
        "logp_images": int(done),
        "logp_whole_split": bool(done == n_all),
        "logp_mean": float(logp.mean()),
        "logp_stderr": float(logp.std(ddof=1) / math.sqrt(done)) if done > 1 else float("nan"),
        "elbo_same_images": float(test_elbo["elbo"][used].mean()),
        "gap_mean": float(gap.mean()),
        "gap_stderr": float(gap.std(ddof=1) / math.sqrt(done)) if done > 1 else float("nan"),
        "eval_seconds": time.perf_counter() - t0,
        "active_units": n_active,
        "kl_per_dim": [float(v) for v in kl_per_dimension(vae, x_test)],
        "posterior_mean_variance": [float(v) for v in variances],
    }
    res["logp_control_variate"] = res["test_elbo"] + res["gap_mean"]
    res["bits_per_dim"] = -res["logp_mean"] / (vae.x_dim * math.log(2))
    res["elbo_bits_per_dim"] = -res["test_elbo"] / (vae.x_dim * math.log(2))
    return res


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def markdown(rep):
    r, h, b = rep["results"], rep["history"], rep["best"]
    where = ("the whole test split (10000 images)" if r["logp_whole_split"] else
             f"a random subset of {r['logp_images']} test images (fixed seed {rep['settings']['seed']}; "
             f"permutation from numpy.random.default_rng([seed, 4]))")
    m = rep["model"]
    lines = [f"command: `{rep['command']}`", "", rep["environment"], "",
             f"Model: encoder {m['x_dim']}-{'-'.join(map(str, m['hidden']))}-{2 * m['z_dim']}, decoder "
             f"{m['z_dim']}-{'-'.join(map(str, m['hidden'][::-1]))}-{m['x_dim']}, {m['activation']}, "
             f"diagonal Gaussian q, Bernoulli logits p(x|z), float32. Training: "
             + ", ".join(f"{k}={v}" for k, v in rep["train_config"].items() if k != "epochs") + ".",
             "",
             f"Trained {len(h)} epochs in {rep['train_seconds'] / 60:.1f} min "
             f"(median {np.median([e['seconds'] for e in h]):.1f} s per epoch of training steps); "
             f"stopped by {rep['stop_reason']}. Evaluated the best validation epoch, {b['epoch']} "
             f"(validation ELBO {b['valid_elbo']:.2f}" + (
                 f"; selected by the validation IWAE bound, K={rep['settings']['select_k']} on "
                 f"{rep['settings']['select_n']} images: {b['valid_iwae']:.2f}" if "valid_iwae" in b else "")
             + ").", "",
             "| quantity (test split) | value |", "|---|---:|",
             f"| ELBO, all 10000 images (nats) | {r['test_elbo']:.2f} |",
             f"| - reconstruction E_q log p(x\\|z) | {r['test_rec']:.2f} |",
             f"| - KL(q(z\\|x) \\|\\| p(z)) | {r['test_kl']:.2f} |",
             f"| ELBO in bits/dim | {r['elbo_bits_per_dim']:.4f} |",
             f"| **log p(x), K = {rep['settings']['K']}** on {where} | **{r['logp_mean']:.2f}** "
             f"± {r['logp_stderr']:.2f} (s.e. over images) |",
             f"| log p(x) in bits/dim | {r['bits_per_dim']:.4f} |",
             f"| gap log p(x) - ELBO on the same images | {r['gap_mean']:.2f} ± {r['gap_stderr']:.2f} |"]
    if not r["logp_whole_split"]:
        lines.append(f"| log p(x), control variate: ELBO(all) + mean gap(subset) | "
                     f"{r['logp_control_variate']:.2f} ± {r['gap_stderr']:.2f} |")
    lines += [f"| active units (Var E_q[z] > 0.01) | {r['active_units']} of {m['z_dim']} |",
              f"| target log p(x) >= -92 | {'reached' if r['logp_mean'] >= -92 else 'NOT reached'} |",
              "", f"log p(x) evaluation took {r['eval_seconds'] / 60:.1f} min.", "",
              "Learning curve (every epoch):", "",
              "| epoch | train -ELBO | valid ELBO | valid KL | valid IWAE bound | s (train steps) |",
              "|---:|---:|---:|---:|---:|---:|"]
    for e in h:
        iwae = f"{e['valid_iwae']:.2f}" if "valid_iwae" in e else ""
        lines.append(f"| {e['epoch']} | {e['train_loss']:.2f} | {e['valid_elbo']:.2f} | "
                     f"{e['valid_kl']:.2f} | {iwae} | {e['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = ("python bench/bench_vae_quality.py " + " ".join(given)).strip()
    if args.blas_threads is not None and not set_blas_threads(args.blas_threads):
        print("warning: could not set the OpenBLAS thread count; using its default")
    data = load_splits()
    env = (f"{git_revision()}, numpy {np.__version__}, python {platform.python_version()}, "
           f"{os.cpu_count()} cpu(s) "
           f"shared with other jobs (load average at start {os.getloadavg()[0]:.1f}), OpenBLAS threads "
           f"{args.blas_threads if args.blas_threads else 'default'}")
    print(f"command: {command}\n{env}", flush=True)
    work = Path(args.work_dir)
    if work.exists():
        shutil.rmtree(work)
    vae = VAE(784, args.z_dim, rng=np.random.default_rng(args.seed), hidden=tuple(args.hidden),
              activation=args.activation)
    config = TrainConfig(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=args.lr,
                         estimator=args.estimator, n_samples=args.n_samples,
                         warmup_epochs=args.warmup_epochs, patience=None, seed=args.seed)
    log = lambda s: print(s, flush=True)  # noqa: E731
    history, reason, train_seconds, sel = train_with_budget(vae, data, config, args, log)
    best_vae, meta = load_model(work / "best.npz")
    best = meta["history"][-1]
    if sel is not None:  # the epoch with the best validation IWAE bound
        restore_params(best_vae.params, sel["params"], source="selected epoch")
        best = dict(history[sel["best_epoch"] - 1], valid_iwae=sel["scores"][sel["best_epoch"] - 1])
        for h, score in zip(history, sel["scores"]):
            h["valid_iwae"] = score
    print(f"training stopped ({reason}); evaluating epoch {best['epoch']}", flush=True)
    results = evaluate(best_vae, data["test"], args, log)
    rep = {"command": command, "environment": env + f", load average at end {os.getloadavg()[0]:.1f}",
           "settings": vars(args), "model": vae.config,
           "train_config": {k: v for k, v in vars(config).items()}, "stop_reason": reason,
           "train_seconds": train_seconds, "epochs_run": len(history), "best": best,
           "history": history, "results": results}
    text = markdown(rep)
    print("\n" + text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(rep, indent=1, default=str))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
