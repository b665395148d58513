"""Seconds per epoch: scratchvae's 784-400-20 Bernoulli VAE vs a PyTorch eager reference.

    python bench/bench_vae_speed.py [--pairs 3] [--threads 2] [--profile-steps 200] [--seed 0]

The model is the VAE of the PyTorch examples (examples/vae/main.py), built the same way on both
sides: encoder 784-400-40 (ReLU; 20 means and 20 log sigmas), decoder 20-400-784 (ReLU; Bernoulli
logits), one reparameterized sample, analytic KL, loss = mean over the batch of -ELBO, Adam
lr 1e-3, batch 128, float32, the 50000 training images of static binarized MNIST.

Fairness: both models start from the same weights (ours copied into torch), see the same
minibatches in the same order and the same noise eps (both drawn by NumPy with the same seed,
so the two training losses agree to float32 rounding in the first epoch), and do the same work
per step (batch gather, noise, forward, backward, Adam step, loss to a Python float).
Ours is timed through the public API exactly as ``scratchvae.train.train`` runs it
(``VAE.loss_and_grads`` + ``Adam.step``); torch is eager (no compile), Adam with its defaults.
Epochs alternate ours/torch (order flipped every repetition) so load from other processes on
the machine hits both alike; the ratio ours/torch is taken per pair, and the medians reported.

Threads: ``--threads 2`` runs ours with OpenBLAS set to 2 threads and torch with
``torch.set_num_threads(2)``; ``--threads 2 1`` also measures both at 1 thread in the same run.
OpenBLAS's thread count is set at run time through its C API (``ctypes``).

After timing, ``--profile-steps`` steps of ours run under cProfile, bucketed into matrix
products (``Linear.forward/backward``), the Bernoulli likelihood, ReLU, Adam and the rest, and
the matrix products of one step are timed alone (the floor a NumPy VAE cannot beat).
Writes bench/results/vae_speed.md and vae_speed.json.
"""
from __future__ import annotations

import argparse
import cProfile
import ctypes
import glob
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

from scratchvae.likelihoods import BernoulliLikelihood  # noqa: E402
from scratchvae.nn import Linear, ReLU  # noqa: E402
from scratchvae.optim import Adam  # noqa: E402
from scratchvae.vae import VAE  # noqa: E402

from bench_common import DATA, git_revision  # noqa: E402  (bench/ is on sys.path when run as a script)
X_DIM, HIDDEN, Z_DIM, BATCH, LR = 784, 400, 20, 128, 1e-3


# --------------------------------------------------------------------------------------------
# Data and BLAS threads
# --------------------------------------------------------------------------------------------
def load_train(n):
    if not DATA.exists():
        sys.exit(f"error: {DATA} not found. This benchmark needs the static binarized MNIST file "
                 f"(see ../shared/data/README.md); nothing was measured.")
    with np.load(DATA) as d:
        return d["train"][:n].astype(np.float32)                        # (N, 784) of 0/1


class Blas:
    """NumPy's OpenBLAS thread count through its C API (what threadpoolctl does), or nothing."""

    def __init__(self):
        self.lib, self.set, self.get = None, None, None
        libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
        for path in libs:
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    s, g = f"{prefix}set_num_threads{suffix}", f"{prefix}get_num_threads{suffix}"
                    if hasattr(lib, s) and hasattr(lib, g):
                        self.lib, self.set, self.get = path, getattr(lib, s), getattr(lib, g)
                        return

    def threads(self):
        return int(self.get()) if self.get else None

    def set_threads(self, n):
        if self.set is None:
            print("warning: cannot set OpenBLAS threads (no OpenBLAS found); keeping the default")
            return
        self.set(ctypes.c_int(n))


# --------------------------------------------------------------------------------------------
# The two contestants: one epoch each, same data order and noise
# --------------------------------------------------------------------------------------------
class Ours:
    name = "scratchvae"

    def __init__(self, seed):
        self.vae = VAE(X_DIM, Z_DIM, rng=np.random.default_rng(seed), hidden=(HIDDEN,))
        self.opt = Adam(self.vae.params, lr=LR)

    def epoch(self, X, rng, steps=None):
        """The inner loop of scratchvae.train.train (analytic ELBO, one sample, beta = 1)."""
        perm = rng.permutation(len(X))
        n_steps = -(-len(X) // BATCH) if steps is None else steps
        total = 0.0
        for i in range(n_steps):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            xb = gather(X, idx)                                                 # (B, 784)
            eps = noise(rng, len(idx))                                          # (B, 1, 20)
            loss, grads, _ = self.vae.loss_and_grads(xb, eps, "analytic", 1.0, check=False)
            if not np.isfinite(loss):
                raise FloatingPointError(f"ours: loss {loss} at step {i}")
            self.opt.step(grads)
            total += loss * len(idx)
        return total / min(len(X), n_steps * BATCH)


def gather(X, idx):
    return X[idx]


def noise(rng, b):
    return rng.standard_normal((b, 1, Z_DIM), dtype=np.float32)


class Torch:
    name = "torch"

    def __init__(self, torch, ours: VAE):
        self.torch = torch
        nn = torch.nn
        self.enc = nn.Sequential(nn.Linear(X_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2 * Z_DIM))
        self.dec = nn.Sequential(nn.Linear(Z_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, X_DIM))
        with torch.no_grad():  # same initial weights as ours (ours: W is (in, out); torch: (out, in))
            for net, prefix in ((self.enc, "enc."), (self.dec, "dec.")):
                for k, layer in enumerate(m for m in net if isinstance(m, nn.Linear)):
                    layer.weight.copy_(torch.from_numpy(ours.params[f"{prefix}{k}.W"].T.copy()))
                    layer.bias.copy_(torch.from_numpy(ours.params[f"{prefix}{k}.b"]))
        params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.opt = torch.optim.Adam(params, lr=LR)

    def loss(self, xb, eps):
        F = self.torch.nn.functional
        h = self.enc(xb)                                                        # (B, 40)
        loc, log_scale = h[:, :Z_DIM], h[:, Z_DIM:]                             # log sigma, as ours
        z = loc + self.torch.exp(log_scale) * eps                               # (B, 20)
        logits = self.dec(z)                                                    # (B, 784)
        nll = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(1)
        kl = (0.5 * (self.torch.exp(2 * log_scale) + loc * loc - 1) - log_scale).sum(1)
        return (nll + kl).mean()

    def epoch(self, X, rng, steps=None):
        torch = self.torch
        Xt = torch.from_numpy(X)                                                # shares memory
        perm = rng.permutation(len(X))
        n_steps = -(-len(X) // BATCH) if steps is None else steps
        total = 0.0
        for i in range(n_steps):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            xb = Xt[torch.from_numpy(idx)]                                      # (B, 784)
            eps = torch.from_numpy(noise(rng, len(idx))[:, 0])                  # (B, 20)
            loss = self.loss(xb, eps)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"torch: loss {value} at step {i}")
            total += value * len(idx)
        return total / min(len(X), n_steps * BATCH)


# --------------------------------------------------------------------------------------------
# Where our time goes
# --------------------------------------------------------------------------------------------
def _code_key(fn):
    code = fn.__code__
    return (code.co_filename, code.co_firstlineno, code.co_name)


def profile_ours(model, X, seed, steps):
    """cProfile ``steps`` training steps of ours; seconds per epoch by bucket.

    Each bucket is the cumulative time of top-level calls that do not nest in one another
    (a Linear call is never inside the likelihood, and so on); the rest is Python glue and small
    array operations (encoder output split, KL, reparameterization, checks, dict building).
    """
    buckets = {
        "matrix products (Linear.forward/backward)": [Linear.forward, Linear.backward],
        "Bernoulli likelihood (log_prob/backward)": [BernoulliLikelihood.log_prob,
                                                     BernoulliLikelihood.backward],
        "ReLU forward/backward": [ReLU.forward, ReLU.backward],
        "Adam step": [type(model.opt).step],
        "batch gather + noise": [gather, noise],
    }
    where = {_code_key(f): name for name, fns in buckets.items() for f in fns}
    prof = cProfile.Profile()
    rng = np.random.default_rng([seed, 99])
    t0 = time.perf_counter()
    prof.enable()
    model.epoch(X, rng, steps=steps)
    prof.disable()
    wall = time.perf_counter() - t0
    per_epoch = (-(-len(X) // BATCH)) / steps
    out = {name: 0.0 for name in buckets}
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())                 # all tottimes = profiled time
    for key, (_, _, _, cumtime, _) in stats.items():
        if key in where:
            out[where[key]] += cumtime
    out["everything else (glue, small arrays, numpy calls)"] = total - sum(out.values())
    scale = wall / total if total else 1.0    # spread cProfile's own overhead proportionally
    return {k: v * scale * per_epoch for k, v in out.items()}, wall * per_epoch


def matmul_floor(reps, seed, steps_per_epoch):
    """Seconds per epoch of the 11 matrix products of one training step, alone."""
    rng = np.random.default_rng(seed)
    f = np.float32
    x, h = rng.random((BATCH, X_DIM), dtype=f), rng.random((BATCH, HIDDEN), dtype=f)
    z, o = rng.random((BATCH, Z_DIM), dtype=f), rng.random((BATCH, 2 * Z_DIM), dtype=f)
    y = rng.random((BATCH, X_DIM), dtype=f)
    W1, W2 = rng.random((X_DIM, HIDDEN), dtype=f), rng.random((HIDDEN, 2 * Z_DIM), dtype=f)
    W3, W4 = rng.random((Z_DIM, HIDDEN), dtype=f), rng.random((HIDDEN, X_DIM), dtype=f)
    products = [(x, W1), (h, W2), (z, W3), (h, W4),                              # forward
                (y, W4.T), (h.T, y), (h, W3.T), (z.T, h),                        # decoder back
                (o, W2.T), (h.T, o), (x.T, h)]                                   # encoder back
    for a, b in products:
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        for a, b in products:
            a @ b
    return (time.perf_counter() - t0) / reps * steps_per_epoch


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pairs", type=int, default=3, help="timed (ours, torch) epoch pairs per thread count")
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="thread counts to compare (OpenBLAS for ours, torch.set_num_threads for torch)")
    p.add_argument("--n-train", type=int, default=50000, help="training images per epoch")
    p.add_argument("--warmup-steps", type=int, default=50, help="untimed steps per side first")
    p.add_argument("--profile-steps", type=int, default=200, help="steps of ours under cProfile (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torch", action="store_true", help="skip the torch reference")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "vae_speed.md"))
    args = p.parse_args(argv)
    if args.pairs < 1 or args.n_train < BATCH or any(t < 1 for t in args.threads):
        p.error("--pairs and --threads must be >= 1 and --n-train >= the batch size 128")
    return args


def import_torch(skip):
    if skip:
        return None, "skipped (--no-torch)"
    try:
        import torch
    except ImportError as exc:
        return None, f"skipped: torch is not importable ({exc})"
    return torch, f"torch {torch.__version__}"


def run_pairs(args, X, blas, torch):
    rows = []
    for threads in args.threads:
        blas.set_threads(threads)
        ours = Ours(args.seed)
        rng_ours = np.random.default_rng(args.seed)
        contestants = [(ours, rng_ours)]
        if torch is not None:
            torch.set_num_threads(threads)
            contestants.append((Torch(torch, ours.vae), np.random.default_rng(args.seed)))
        for model, rng in contestants:  # warm-up on the same batches (not timed)
            model.epoch(X, np.random.default_rng([args.seed, 7]),
                        steps=min(args.warmup_steps, len(X) // BATCH))
        for rep in range(args.pairs):
            order = contestants if rep % 2 == 0 else contestants[::-1]
            row = {"threads": threads, "pair": rep + 1, "order": [m.name for m, _ in order]}
            for model, rng in order:
                t0 = time.perf_counter()
                loss = model.epoch(X, rng)
                row[model.name] = time.perf_counter() - t0
                row[model.name + "_loss"] = loss
            if torch is not None:
                row["ratio"] = row["scratchvae"] / row["torch"]
            rows.append(row)
            print("  " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in row.items()), flush=True)
        if args.profile_steps:
            prof, wall = profile_ours(ours, X, args.seed, args.profile_steps)
            floor = matmul_floor(max(20, args.profile_steps // 2), args.seed, -(-len(X) // BATCH))
            rows[-1]["profile"] = {"threads": threads, "buckets": prof, "profiled_epoch": wall,
                                   "matmul_floor": floor}
    return rows


def summarize(rows, threads, have_torch):
    out = []
    for t in threads:
        rs = [r for r in rows if r["threads"] == t]
        s = {"threads": t, "ours_median": statistics.median(r["scratchvae"] for r in rs)}
        if have_torch:
            s["torch_median"] = statistics.median(r["torch"] for r in rs)
            s["ratio_median"] = statistics.median(r["ratio"] for r in rs)
            s["ratios"] = [r["ratio"] for r in rs]
        out.append(s)
    return out


def markdown(command, env, rows, summary, have_torch):
    lines = [f"command: `{command}`", "", env, ""]
    head = "| threads | pair | order | ours s/epoch | ours loss |"
    sep = "|---:|---:|---|---:|---:|"
    if have_torch:
        head += " torch s/epoch | torch loss | ours/torch |"
        sep += "---:|---:|---:|"
    lines += [head, sep]
    for r in rows:
        line = (f"| {r['threads']} | {r['pair']} | {' then '.join(r['order'])} | {r['scratchvae']:.2f} "
                f"| {r['scratchvae_loss']:.2f} |")
        if have_torch:
            line += f" {r['torch']:.2f} | {r['torch_loss']:.2f} | {r['ratio']:.2f}x |"
        lines.append(line)
    lines += ["", "| threads | ours median s/epoch |"
              + (" torch median s/epoch | median ours/torch |" if have_torch else ""),
              "|---:|---:|" + ("---:|---:|" if have_torch else "")]
    for s in summary:
        line = f"| {s['threads']} | {s['ours_median']:.2f} |"
        if have_torch:
            line += f" {s['torch_median']:.2f} | **{s['ratio_median']:.2f}x** |"
        lines.append(line)
    for r in rows:
        if "profile" not in r:
            continue
        p = r["profile"]
        lines += ["", f"Where our time goes ({p['threads']} BLAS thread(s); cProfile, scaled to one "
                      f"epoch of {p['profiled_epoch']:.2f} s):", "",
                  "| part | s/epoch | share |", "|---|---:|---:|"]
        total = sum(p["buckets"].values())
        for k, v in sorted(p["buckets"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {k} | {v:.2f} | {100 * v / total:.0f}% |")
        lines.append(f"| *the 11 matrix products alone, timed in a tight loop* | {p['matmul_floor']:.2f} | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(argv)
    command = "python bench/bench_vae_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    command = command.strip()
    X = load_train(args.n_train)
    blas = Blas()
    default_threads = blas.threads()
    torch, torch_note = import_torch(args.no_torch)
    load0 = os.getloadavg()
    env = (f"{git_revision()}, numpy {np.__version__} (OpenBLAS, {default_threads} threads by default), "
           f"{torch_note}, "
           f"python {platform.python_version()}, {os.cpu_count()} cpu(s), float32, batch {BATCH}, "
           f"{len(X)} images/epoch, {-(-len(X) // BATCH)} steps/epoch; threads per side as listed "
           f"(torch.set_num_threads(n), OpenBLAS n threads)")
    print(f"command: {command}\n{env}")
    if torch is None:
        print(f"torch reference {torch_note}; reporting absolute numbers only")
    rows = run_pairs(args, X, blas, torch)
    load1 = os.getloadavg()
    env += (f"; load average (1 min) {load0[0]:.1f} at start, {load1[0]:.1f} at end "
            f"(other jobs share the cores)")
    summary = summarize(rows, args.threads, torch is not None)
    text = markdown(command, env, rows, summary, torch is not None)
    print("\n" + text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(
        {"command": command, "environment": env, "torch": torch_note, "rows": rows,
         "summary": summary, "load_average": [load0, load1]}, indent=1))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
