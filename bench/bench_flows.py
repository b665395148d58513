"""Flow posteriors against the diagonal Gaussian on static binarized MNIST, at equal wall time.

    python bench/bench_flows.py [--posteriors diagonal planar iaf sylvester] [--minutes 20]
        [--flow-length planar=16 iaf=4 sylvester=4] [--iaf-hidden 320] [--jobs 2]
        [--eval-k 5000] [--eval-subset 0] [--write-reference] [--estimate]

Every posterior q(z|x) gets the same encoder and decoder (784-500-500 ReLU MLPs, 32 latents,
Bernoulli logits), the same minibatches and noise (one seed), the same estimator (the Monte Carlo
ELBO, "mc": flows have no closed-form KL, so the diagonal row uses it too and the rows differ
only in q), Adam, and the same wall-clock budget (``--minutes``, per posterior):
``bench_common.train_within_budget`` trains one epoch per ``scratchvae.train.train`` call,
starts another only while it fits, and stops early after ``--patience`` epochs without a better
validation score (the ELBO; with ``--estimator iwae``, the validation L_K with the training K,
:func:`scratchvae.runs.validation_scores`). The evaluated model is the best validation epoch
(the trainer's ``best.npz``).

Evaluation on the test split: the ELBO ("mc", ``--elbo-samples`` draws per image, all 10000
images) and log p(x) by importance sampling (``scratchvae.evaluate.log_likelihood``, K =
``--eval-k``, 5000 by default) on the whole split, or on ``--eval-subset N`` images drawn with
``numpy.random.default_rng([seed, 4])``, the images bench_vae_quality.py uses (the split is
ordered by class: its first N images are not a fair sample).

Sizes (``--flow-length``, ``--iaf-hidden``), from the papers, scaled to a CPU budget:
* planar, K = 16: van den Berg et al. (2018) compare flows of up to 16 layers on MNIST;
  Rezende & Mohamed (2015) used K = 10 to 80.
* IAF, K = 4 steps, each a MADE with one hidden layer of 320 units: Kingma et al. (2016,
  Table 1) ran 2 to 8 steps of width 320 or 1920 on MNIST (with 32 latents, the size used
  here); the released code of van den Berg et al. builds one-hidden-layer MADEs of 320 units
  and runs 4 flows in its README's examples.
* Sylvester (triangular, alternating orderings), K = 4: its amortized parameters grow as K z^2
  (1088 numbers per layer at z = 32, against 65 for planar): at K = 16 an epoch took 3.6x as
  long as at K = 4 on one core (97 s against 27 s), too few epochs for the budget; K = 4 is
  the flow length of the released code's README examples.
The papers train for hundreds to thousands of GPU epochs (the defaults of van den Berg et al.'s
main_experiment.py: up to 2000 epochs, Adamax 5e-4, batch 100, 100 warm-up epochs, early
stopping after 100); here every q gets the same minutes of one CPU core.

Outputs go to a run folder ``bench/runs/<timestamp>/`` (git-ignored): ``results.json`` (every
number, learning curves), ``results.md`` (the table, headed by the exact command), and per
posterior its checkpoints and log. ``--write-reference`` also copies the two files to
``bench/results/flows.md`` and ``.json``. ``--jobs 2`` trains and evaluates two posteriors at a
time in separate processes, each with one BLAS thread (``--blas-threads``). ``--estimate``
trains nothing: it times a few steps and a small log p(x) batch per posterior and prints the
seconds per epoch, the seconds per 100 test images and the expected wall time of the run.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

from scratchvae.checkpoint import load_checkpoint  # noqa: E402
from scratchvae.evaluate import elbo, log_likelihood  # noqa: E402
from scratchvae.posteriors import POSTERIORS  # noqa: E402
from scratchvae.runs import validation_key  # noqa: E402
from scratchvae.runs.threads import blas_threads  # noqa: E402
from scratchvae.train import TrainConfig, load_model, train  # noqa: E402
from scratchvae.vae import VAE  # noqa: E402

from bench_common import (DATA, cpu_model, git_revision, load_splits,  # noqa: E402
                          train_within_budget)

FLOW_LENGTH = {"planar": 16, "iaf": 4, "sylvester": 4}   # the module docstring says why
# log p(x) one image at a time, 500 of its K samples per forward pass: the per-sample arrays of
# the flows (Sylvester's D x D matrices) then stay small. Measured at K = 5000 on one thread,
# against the library's default of 20 images x 1000 samples: Sylvester (K = 4) 108 -> 38 s per
# 100 images, IAF 23 -> 15, planar 27 -> 25, diagonal 18 -> 10.
EVAL_CHUNKS = {"batch_size": 1, "k_chunk": 500}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--posteriors", nargs="+", default=["diagonal", "planar", "iaf", "sylvester"],
                   choices=POSTERIORS, metavar="NAME",
                   help=f"families of q(z|x), one row each: {', '.join(POSTERIORS)}")
    p.add_argument("--flow-length", nargs="+", default=[f"{k}={v}" for k, v in FLOW_LENGTH.items()],
                   metavar="[NAME=]K", help="K per flow family (NAME=K), or one K for all")
    p.add_argument("--iaf-hidden", type=int, nargs="+", default=[320],
                   help="hidden widths of each IAF step's MADE")
    p.add_argument("--iaf-context-dim", type=int, default=None, help="IAF context width (None: --z-dim)")
    p.add_argument("--minutes", type=float, default=20.0, help="training budget per posterior")
    p.add_argument("--hidden", type=int, nargs="+", default=[500, 500],
                   help="encoder widths (the decoder mirrors them)")
    p.add_argument("--z-dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--estimator", default="mc", choices=("mc", "iwae"), help="training objective")
    p.add_argument("--n-samples", type=int, default=1, help="samples per example (K of iwae)")
    p.add_argument("--warmup-epochs", type=float, default=0.0, help="KL warm-up length (mc only)")
    p.add_argument("--patience", type=int, default=10, help="early stopping: epochs without improvement")
    p.add_argument("--max-epochs", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-k", type=int, default=5000, help="importance samples for log p(x)")
    p.add_argument("--eval-subset", type=int, default=0,
                   help="test images for log p(x), a seeded random subset (0: all 10000)")
    p.add_argument("--elbo-samples", type=int, default=10, help="samples per image of the test ELBO")
    p.add_argument("--jobs", type=int, default=1, help="posteriors run at once, one process each")
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads per job")
    p.add_argument("--data", default=str(DATA), help="static binarized MNIST .npz (train/valid/test)")
    p.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs"), help="run folders go here")
    p.add_argument("--write-reference", action="store_true", help="also write --reference (+ .json)")
    p.add_argument("--reference", default=str(ROOT / "bench" / "results" / "flows.md"))
    p.add_argument("--estimate", action="store_true",
                   help="time a few steps and a small log p(x) batch per posterior; train nothing")
    args = p.parse_args(argv)
    for name, low in (("minutes", 0), ("lr", 0)):
        if not getattr(args, name) > low:
            p.error(f"--{name.replace('_', '-')} must be > {low}, got {getattr(args, name)}")
    for name in ("warmup_epochs", "eval_subset", "seed"):
        if not getattr(args, name) >= 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name in ("z_dim", "batch_size", "n_samples", "patience", "max_epochs", "eval_k",
                 "elbo_samples", "jobs", "blas_threads", "iaf_context_dim", "hidden", "iaf_hidden"):
        value = getattr(args, name)
        if value is not None and min(np.atleast_1d(value)) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if len(set(args.posteriors)) != len(args.posteriors):
        p.error(f"--posteriors lists a family twice: {args.posteriors}")
    args.flow_lengths = flow_lengths(p, args.flow_length, args.posteriors)
    try:                                  # the library's own checks, before any work starts
        train_config(args).validate()
        for name in args.posteriors:
            build(name, args)
    except (TypeError, ValueError) as exc:
        p.error(str(exc))
    return args


def flow_lengths(p, items, posteriors) -> dict:
    """{family: K} for the flow families in ``posteriors`` from NAME=K items or one K for all."""
    lengths, flows = {}, POSTERIORS[2:]
    for item in items:
        name, _, k = item.rpartition("=")
        if name and name not in flows or not k.isdigit() or int(k) < 1:
            p.error(f"--flow-length takes NAME=K (NAME one of {', '.join(flows)}) or K, an integer "
                    f">= 1; got {item!r}")
        lengths.update({name: int(k)} if name else dict.fromkeys(flows, int(k)))
    missing = [n for n in posteriors if n in flows and n not in lengths]
    if missing:
        p.error(f"--flow-length gives no K for {missing}: add {missing[0]}=K")
    return {n: lengths[n] for n in posteriors if n in flows}


# --------------------------------------------------------------------------------------------
# One posterior: build, train within the budget, evaluate
# --------------------------------------------------------------------------------------------
def build(name, args):
    """The VAE with posterior ``name``, initial weights from ``--seed``."""
    options = {}
    if name in args.flow_lengths:
        options["flow_length"] = args.flow_lengths[name]
    if name == "iaf":
        options.update(iaf_hidden=args.iaf_hidden, iaf_context_dim=args.iaf_context_dim)
    return VAE(784, args.z_dim, rng=np.random.default_rng(args.seed), hidden=tuple(args.hidden),
               posterior=name, **options)


def train_config(args) -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=args.lr,
                       estimator=args.estimator, n_samples=args.n_samples,
                       warmup_epochs=args.warmup_epochs, patience=None, seed=args.seed)


def eval_indices(n_all, args):
    """The test images of log p(x): all, or the first N of a seeded permutation (sorted)."""
    if args.eval_subset in (0, n_all):
        return np.arange(n_all)
    return np.sort(np.random.default_rng([args.seed, 4]).permutation(n_all)[:min(args.eval_subset, n_all)])


def evaluate(vae, x_test, args, log):
    """Test ELBO on every image; log p(x) on ``eval_indices``; their gap on the same images."""
    bound = elbo(vae, x_test, rng=np.random.default_rng([args.seed, 3]), n_samples=args.elbo_samples,
                 estimator="mc")
    idx = eval_indices(len(x_test), args)

    def progress(done, total):                   # a line at every tenth of the images
        if done * 10 // total > (done - 1) * 10 // total:
            spent = time.perf_counter() - t0
            log(f"log p(x), K = {args.eval_k}: {done}/{total} images in {spent / 60:.1f} min, "
                f"about {spent * (total - done) / done / 60:.1f} min left")

    t0 = time.perf_counter()
    logp = log_likelihood(vae, x_test[idx], rng=np.random.default_rng([args.seed, 5]), K=args.eval_k,
                          progress=progress, **EVAL_CHUNKS)
    seconds = time.perf_counter() - t0
    gap = logp - bound["elbo"][idx]
    return {"test_elbo": float(bound["elbo"].mean()), "test_rec": float(bound["rec"].mean()),
            "test_kl": float(bound["kl"].mean()), "logp_images": len(idx),
            "logp_whole_split": len(idx) == len(x_test), "logp_mean": float(logp.mean()),
            "logp_stderr": stderr(logp), "gap_mean": float(gap.mean()), "gap_stderr": stderr(gap),
            "logp_control_variate": float(bound["elbo"].mean() + gap.mean()),
            "eval_seconds": seconds, "eval_seconds_per_100": 100 * seconds / len(idx)}


def stderr(values) -> float:
    """Standard error of the mean over images (NaN for fewer than two)."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


def run_posterior(name, args, run_dir, data=None):
    """Train and evaluate one posterior; returns its row, also written to ``<name>.json``.

    Runs in a worker process with --jobs > 1 (then ``data`` is None and is loaded here). An
    error is logged with its traceback and becomes the row's ``stop_reason``: the other
    posteriors of a long run still finish.
    """
    with open(run_dir / f"{name}.log", "a") as log_file:
        def log(line):
            print(f"[{name}] {line}", flush=True)
            print(line, file=log_file, flush=True)

        with blas_threads(args.blas_threads):
            try:
                row = train_and_evaluate(name, args, run_dir / name,
                                         data if data is not None else load_splits(args.data), log)
            except Exception as exc:                            # noqa: BLE001 (reported, not hidden)
                log(traceback.format_exc())
                row = {"posterior": name, "flow_length": args.flow_lengths.get(name, 0),
                       "n_params": 0, "epochs_run": 0, "seconds_per_epoch": float("nan"),
                       "train_seconds": float("nan"),
                       "stop_reason": f"failed: {type(exc).__name__}: {exc}"}
    (run_dir / f"{name}.json").write_text(json.dumps(row, indent=1, default=str))
    return row


def train_and_evaluate(name, args, work, data, log):
    vae = build(name, args)
    row = {"posterior": name, "flow_length": args.flow_lengths.get(name, 0),
           "n_params": int(sum(v.size for v in vae.params.values())), "model": vae.config}
    try:
        history, reason, seconds = train_within_budget(
            vae, data, train_config(args), work, minutes=args.minutes, patience=args.patience,
            max_epochs=args.max_epochs, log=log)
    except FloatingPointError as exc:        # keep the epochs before the divergence, if any
        ckpt = work / "checkpoint.npz"
        history = load_checkpoint(ckpt)["meta"]["history"] if ckpt.exists() else []
        reason, seconds = f"diverged: {exc}", float("nan")
    row.update(stop_reason=reason, train_seconds=seconds, epochs_run=len(history), history=history,
               seconds_per_epoch=float(np.median([h["seconds"] for h in history]))
               if history else float("nan"))
    log(f"training stopped ({reason})")
    if not (work / "best.npz").exists():
        return row
    best_vae, meta = load_model(work / "best.npz")
    row["best"] = meta["history"][-1]
    log(f"evaluating epoch {row['best']['epoch']} (best validation "
        f"{'L_K' if validation_key(meta['history']) == 'valid_iwae' else 'ELBO'})")
    row.update(evaluate(best_vae, data["test"], args, log))
    log(f"test ELBO {row['test_elbo']:.2f}, log p(x) {row['logp_mean']:.2f} +- {row['logp_stderr']:.2f}")
    return row


def run_all(args, run_dir, data):
    """Every posterior, ``--jobs`` at a time (separate processes when > 1); rows in order."""
    if args.jobs == 1:
        return [run_posterior(name, args, run_dir, data) for name in args.posteriors]
    spawn = multiprocessing.get_context("spawn")     # fresh interpreters: no inherited BLAS threads
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(run_posterior, name, args, run_dir) for name in args.posteriors]
        return [f.result() for f in futures]


# --------------------------------------------------------------------------------------------
# --estimate: seconds per epoch and per 100 test images, without training
# --------------------------------------------------------------------------------------------
def estimate(args, data, log=print):
    """Time 10 training steps, a validation pass on 1000 images and log p(x) on 20 test images
    (K = --eval-k) per posterior; print them and the run's expected wall time."""
    n_train, n_valid, n_test = len(data["train"]), len(data["valid"]), len(data["test"])
    steps_per_epoch, n_eval = -(-n_train // args.batch_size), len(eval_indices(n_test, args))
    rows = []
    with blas_threads(args.blas_threads):
        for name in args.posteriors:
            vae = build(name, args)
            config = train_config(args)
            h = train(vae, data["train"][:10 * args.batch_size], None, config, log=None)[0]
            t0 = time.perf_counter()
            elbo(vae, data["valid"][:1000], rng=np.random.default_rng(0))
            t_valid = (time.perf_counter() - t0) * n_valid / 1000
            t0 = time.perf_counter()
            log_likelihood(vae, data["test"][:20], rng=np.random.default_rng(0), K=args.eval_k,
                           log=None, **EVAL_CHUNKS)
            per_100 = (time.perf_counter() - t0) * 5
            epoch = h["seconds"] / 10 * steps_per_epoch
            total = 60 * args.minutes + per_100 * n_eval / 100 + t_valid * args.elbo_samples
            rows.append((name, epoch, t_valid, per_100, total))
            log(f"{name:12s} {epoch:6.1f} s/epoch of steps + {t_valid:4.1f} s validation; log p(x) "
                f"K={args.eval_k}: {per_100:5.1f} s per 100 images; about {total / 60:5.1f} min "
                f"for this posterior ({args.minutes:g} min training, {n_eval} images)")
    finish = [0.0] * args.jobs                    # jobs take the next posterior as they free up
    for *_, total in rows:
        finish[int(np.argmin(finish))] += total
    log(f"expected wall time of the run with --jobs {args.jobs}: about {max(finish) / 60:.0f} min "
        f"(less when early stopping ends training before the budget)")
    return rows


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def markdown(rep):
    s, rows = rep["settings"], rep["rows"]
    done = [r for r in rows if "logp_mean" in r]
    where = ("the whole test split" if not done or done[0]["logp_whole_split"] else
             f"a random subset of {done[0]['logp_images']} test images (numpy.random.default_rng("
             f"[{s['seed']}, 4]); the split is ordered by class)")
    hidden = "-".join(map(str, s["hidden"]))
    lines = [f"command: `{rep['command']}`", "", rep["environment"], "",
             f"Model: encoder 784-{hidden}-(q's parameters), decoder {s['z_dim']}-"
             f"{'-'.join(map(str, s['hidden'][::-1]))}-784, ReLU, Bernoulli logits, float32. "
             f"Training: Adam lr {s['lr']}, batch {s['batch_size']}, estimator {s['estimator']} "
             f"(S = {s['n_samples']}), warm-up {s['warmup_epochs']:g} epochs, {s['minutes']:g} min "
             f"per posterior, early stopping after {s['patience']} epochs without a better "
             f"validation {'L_K' if s['estimator'] == 'iwae' else 'ELBO'}; the best validation "
             f"epoch is evaluated. Test ELBO: mc, "
             f"{s['elbo_samples']} samples per image, all 10000 images. log p(x): K = {s['eval_k']} "
             f"on {where}.", "",
             "| q(z\\|x) | K | parameters | epochs run (best) | s/epoch | training min | stopped by | "
             "test ELBO | **test log p(x)** ± s.e. | L_K − ELBO | log p(x) s/100 images |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r["posterior"], r["flow_length"], f"{r['n_params']:,}",
                 f"{r['epochs_run']}" + (f" ({r['best']['epoch']})" if "best" in r else ""),
                 f"{r['seconds_per_epoch']:.1f}", f"{r['train_seconds'] / 60:.1f}",
                 r["stop_reason"].split(":")[0]]
        if "logp_mean" in r:
            cells += [f"{r['test_elbo']:.2f}", f"**{r['logp_mean']:.2f}** ± {r['logp_stderr']:.2f}",
                      f"{r['gap_mean']:.2f} ± {r['gap_stderr']:.2f}", f"{r['eval_seconds_per_100']:.1f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "Why each run stopped: " + "; ".join(f"{r['posterior']}: {r['stop_reason']}"
                                                       for r in rows) + ".", "",
              "s/epoch: median seconds of an epoch's training steps (validation and checkpoints "
              "excluded). L_K − ELBO, both on the same images, estimates KL(q(z|x) || p(z|x)) "
              "from below (L_K <= log p(x)): how far q is from its own model's posterior."]
    if done and not done[0]["logp_whole_split"]:
        lines.append("With a subset, ELBO(all) + mean gap(subset) is the lower-variance estimate: "
                     + ", ".join(f"{r['posterior']} {r['logp_control_variate']:.2f}" for r in done)
                     + ".")
    return "\n".join(lines) + "\n"


def new_run_dir(runs_dir) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(100):
        path = Path(runs_dir) / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name {stamp}-N under {runs_dir}")


def main(argv=None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    args = parse(given)
    command = f"python bench/bench_flows.py {shlex.join(given)}".strip()
    data = load_splits(args.data)
    env = (f"{git_revision()}, numpy {np.__version__}, python {platform.python_version()}; CPU: "
           f"{cpu_model()}, {os.cpu_count()} cpu(s) (load average at start "
           f"{os.getloadavg()[0]:.1f}); {args.jobs} job(s) at a time, {args.blas_threads} BLAS "
           f"thread(s) each")
    print(f"command: {command}\n{env}", flush=True)
    if args.estimate:
        estimate(args, data)
        return 0
    run_dir = new_run_dir(args.runs_dir)
    print(f"run folder: {run_dir}", flush=True)
    rows = run_all(args, run_dir, data)
    rep = {"command": command, "environment": env + f", load average at end {os.getloadavg()[0]:.1f}",
           "settings": {k: v for k, v in vars(args).items() if k != "flow_lengths"},
           "flow_lengths": args.flow_lengths, "rows": rows}
    text = markdown(rep)
    print("\n" + text)
    (run_dir / "results.md").write_text(text)
    (run_dir / "results.json").write_text(json.dumps(rep, indent=1, default=str))
    print(f"wrote {run_dir / 'results.md'} and results.json")
    if args.write_reference:
        ref = Path(args.reference)
        ref.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "results.md", ref)
        shutil.copyfile(run_dir / "results.json", ref.with_suffix(".json"))
        print(f"wrote {ref} and {ref.with_suffix('.json')}")
    return 0 if all("logp_mean" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
