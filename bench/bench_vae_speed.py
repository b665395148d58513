"""Training speed against PyTorch: scratchvae's VAE vs the same VAE in eager PyTorch, same run.

    python bench/bench_vae_speed.py                  # the default matrix, ~10 min on 2 cores
    python bench/bench_vae_speed.py --full           # every combination below (~30 min)
    python bench/bench_vae_speed.py --write-reference   # also replace bench/results/vae_speed.*

The model is the Bernoulli VAE of the PyTorch examples (examples/vae/main.py), built the same way
on both sides: encoder 784-H-40 (ReLU; 20 means and 20 log sigmas), decoder 20-H-784 (ReLU;
logits), Adam lr 1e-3, float32, static binarized MNIST. Objective: the analytic-KL ELBO with one
sample, or the IWAE bound with K samples (Burda et al. 2016); loss = -mean over the batch.

Contestants, each training its own copy from the same initial weights on the same minibatches
in the same order with the same noise eps (drawn by NumPy from one seed), so their losses agree
to float32 rounding (the ``loss`` columns check it):
- **ours**: the inner loop of ``scratchvae.train.train`` through the public API (gather the
  minibatch as the trainer does, draw eps, ``VAE.loss_and_grads``, ``Adam.step``);
- **torch eager**: ``torch.optim.Adam`` with its defaults, no ``torch.compile``;
- **torch fused**: the same with ``Adam(fused=True)`` (one kernel for the whole update).

Same run, interleaved: for each configuration every contestant trains one *segment* (a fixed
number of steps, about ``--segment-seconds`` of ours) per round, in an order that rotates from
round to round; a ratio ours/torch is taken within each round, and the median and min-max over
``--rounds`` rounds are reported. Other jobs on the machine then slow both sides of a ratio
alike. Wall time is the measure; at one thread the ratio of CPU times (``time.process_time``,
not inflated when the scheduler runs another process) is reported beside it.

Threads: ours with OpenBLAS limited to n threads (threadpoolctl), torch with
``torch.set_num_threads(n)``. GEMM-only: the matrix products of one training step alone, NumPy
against ``torch.mm`` on the same shapes, interleaved: the ratio a NumPy program cannot beat by
being clever elsewhere. For the headline model at one thread the script also times the epoch
against its own matrix products (the matmul floor) and profiles where ours spends the rest.

Output: a markdown table and a JSON file with every raw number in ``bench/runs/<timestamp>/``
(git-ignored); ``--write-reference`` also writes them to ``bench/results/vae_speed.{md,json}``.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import shutil
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

from bench_common import DATA, cpu_model, git_revision  # noqa: E402  (bench/ is on sys.path)

X_DIM, Z_DIM, LR = 784, 20, 1e-3
HEADLINE = dict(hidden=400, batch=128, k=1)


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------
def configurations(full: bool, threads) -> list:
    """(threads, hidden, batch, k) tuples; k = 1 is the analytic ELBO, k > 1 the IWAE bound."""
    if full:
        return [(t, h, b, k) for t in threads for h in (400, 1000) for b in (32, 128, 512)
                for k in (1, 5, 50)]
    return [(t, h, b, k) for t in threads
            for h, b, k in ((400, 128, 1), (400, 32, 1), (400, 512, 1), (1000, 128, 1),
                            (400, 128, 5), (400, 128, 50))]


def label(cfg) -> str:
    t, h, b, k = cfg
    return f"{t} thr, H {h}, B {b}, " + ("ELBO" if k == 1 else f"IWAE k={k}")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def load_train(path: Path, n: int) -> np.ndarray:
    """The first ``n`` training images as uint8 0/1 (N, 784): from an .npz with a ``train`` key,
    or from Larochelle's .amat files (a directory holding them, or one of them)."""
    if not path.exists():
        sys.exit(f"error: {path} not found. This benchmark needs static binarized MNIST: see "
                 f"bench/README.md for where it lives and how to fetch it; nothing was measured.")
    if path.suffix == ".npz":
        with np.load(path) as d:
            if "train" not in d.files:
                sys.exit(f"error: {path} has no 'train' array (found {d.files})")
            x = d["train"][:n]
    else:
        from scratchvae.data.formats import load_amat_splits
        x = load_amat_splits(path).train.x[:n]
    if x.ndim != 2 or x.shape[1] != X_DIM or not np.isin(x, (0, 1)).all():
        sys.exit(f"error: {path}: the training images must be (N, 784) of 0/1, got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.uint8)   # the .npz stores Fortran order: rows apart


# --------------------------------------------------------------------------------------------
# The contestants: each trains ``steps`` steps per call, on its own copy of the same stream
# --------------------------------------------------------------------------------------------
class Stream:
    """Minibatch indices and noise, epoch after epoch, as the trainer draws them (one Generator:
    ``perm = rng.permutation(N)`` per epoch, then eps per step)."""

    def __init__(self, n, batch, k, seed):
        self.n, self.batch, self.k = n, batch, k
        self.rng = np.random.default_rng(seed)
        self.perm, self.pos = self.rng.permutation(n), 0

    def next(self):
        if self.pos >= self.n:
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        eps = self.rng.standard_normal((len(idx), self.k, Z_DIM), dtype=np.float32)
        return idx, eps


class Ours:
    name = "ours"

    def __init__(self, x_u8, hidden, batch, k, seed):
        self.vae = VAE(X_DIM, Z_DIM, rng=np.random.default_rng(seed), hidden=(hidden,))
        self.opt = Adam(self.vae.params, lr=LR)
        self.rows = x_u8                          # the trainer's uint8 copy of 0/1 data
        self.estimator = "analytic" if k == 1 else "iwae"
        self.stream = Stream(len(x_u8), batch, k, seed)

    def train(self, steps):
        total = 0.0
        for _ in range(steps):
            idx, eps = self.stream.next()
            xb = gather(self.rows, idx)
            loss, grads, _ = self.vae.loss_and_grads(xb, eps, self.estimator, 1.0, check=False)
            self.opt.step(grads)
            total += loss
        return total / steps


def gather(rows, idx):
    """The trainer's minibatch gather (scratchvae/train.py): rows of its C-contiguous uint8 copy of
    the 0/1 data, as float32; the same array as x_train[idx]."""
    return rows[idx].astype(np.float32)


class Torch:
    def __init__(self, torch, x_u8, ours: VAE, hidden, batch, k, seed, fused):
        self.torch, self.k, self.fused = torch, k, fused
        self.name = "torch fused" if fused else "torch eager"
        nn = torch.nn
        self.X = torch.from_numpy(x_u8.astype(np.float32))                     # (N, 784)
        self.enc = nn.Sequential(nn.Linear(X_DIM, hidden), nn.ReLU(), nn.Linear(hidden, 2 * Z_DIM))
        self.dec = nn.Sequential(nn.Linear(Z_DIM, hidden), nn.ReLU(), nn.Linear(hidden, X_DIM))
        with torch.no_grad():   # our initial weights (ours: W is (in, out); torch: (out, in))
            for net, prefix in ((self.enc, "enc."), (self.dec, "dec.")):
                for i, layer in enumerate(m for m in net if isinstance(m, nn.Linear)):
                    layer.weight.copy_(torch.from_numpy(ours.params[f"{prefix}{i}.W"].T.copy()))
                    layer.bias.copy_(torch.from_numpy(ours.params[f"{prefix}{i}.b"]))
        params = list(self.enc.parameters()) + list(self.dec.parameters())
        self.opt = torch.optim.Adam(params, lr=LR, **({"fused": True} if fused else {}))
        self.stream = Stream(len(x_u8), batch, k, seed)
        self.log_2pi = math.log(2 * math.pi)

    def loss(self, xb, eps):
        t, F = self.torch, self.torch.nn.functional
        h = self.enc(xb)                                                        # (B, 40)
        loc, log_scale = h[:, :Z_DIM], h[:, Z_DIM:]                             # log sigma, as ours
        if self.k == 1:
            z = loc + t.exp(log_scale) * eps[:, 0]                              # (B, 20)
            nll = F.binary_cross_entropy_with_logits(self.dec(z), xb, reduction="none").sum(1)
            kl = (0.5 * (t.exp(2 * log_scale) + loc * loc - 1) - log_scale).sum(1)
            return (nll + kl).mean()
        B, K = eps.shape[:2]
        z = loc[:, None] + t.exp(log_scale)[:, None] * eps                      # (B, K, 20)
        logits = self.dec(z.reshape(B * K, Z_DIM)).reshape(B, K, X_DIM)
        log_px = -F.binary_cross_entropy_with_logits(
            logits, xb[:, None].expand(B, K, X_DIM), reduction="none").sum(-1)  # (B, K)
        log_pz = (-0.5 * z * z - 0.5 * self.log_2pi).sum(-1)
        log_q = (-0.5 * eps * eps - 0.5 * self.log_2pi).sum(-1) - log_scale.sum(-1)[:, None]
        bound = t.logsumexp(log_px + log_pz - log_q, dim=1) - math.log(K)       # (B,)
        return -bound.mean()

    def train(self, steps):
        t, total = self.torch, 0.0
        for _ in range(steps):
            idx, eps = self.stream.next()
            xb = self.X[t.from_numpy(idx)]                                      # (B, 784)
            loss = self.loss(xb, t.from_numpy(eps))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item()
        return total / steps


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def set_threads(n, torch):
    from threadpoolctl import threadpool_limits
    limit = threadpool_limits(limits=n, user_api="blas")    # NumPy's OpenBLAS
    if torch is not None:
        torch.set_num_threads(n)
    return limit


def run_config(cfg, x_u8, torch, args):
    """Warm up, calibrate the segment, then ``args.rounds`` interleaved rounds."""
    threads, hidden, batch, k = cfg
    limit = set_threads(threads, torch)
    ours = Ours(x_u8, hidden, batch, k, args.seed)
    players = [ours]
    if torch is not None:
        players += [Torch(torch, x_u8, ours.vae, hidden, batch, k, args.seed, fused)
                    for fused in (False, True)]
    for p in players:                                        # warm-up, same batches for all
        p.train(args.warmup_steps)
    t0 = time.perf_counter()
    ours.train(3)                                            # calibrate the segment on ours
    steps = max(2, round(args.segment_seconds / max((time.perf_counter() - t0) / 3, 1e-6)))
    for p in players[1:]:
        p.train(3)
    rounds, first_losses = [], {}
    for r in range(args.rounds):
        order = players[r % len(players):] + players[:r % len(players)]
        row = {}
        for p in order:
            w0, c0 = time.perf_counter(), time.process_time()
            loss = p.train(steps)
            row[p.name] = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
                           "loss": loss}
        if r == 0:
            first_losses = {name: v["loss"] for name, v in row.items()}
        rounds.append(row)
    limit.restore_original_limits()
    steps_per_epoch = -(-len(x_u8) // batch)
    out = {"config": dict(threads=threads, hidden=hidden, batch=batch, k=k), "steps": steps,
           "steps_per_epoch": steps_per_epoch, "rounds": rounds, "first_losses": first_losses,
           "order": [p.name for p in players]}
    for p in players:
        out[p.name + " s/epoch"] = statistics.median(r[p.name]["wall"] for r in rounds) / steps * steps_per_epoch
    for p in players[1:]:
        out[f"ours/{p.name}"] = ratio_stats([r["ours"]["wall"] / r[p.name]["wall"] for r in rounds])
        out[f"ours/{p.name} cpu"] = ratio_stats([r["ours"]["cpu"] / r[p.name]["cpu"] for r in rounds])
    return out, ours


def ratio_stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "all": values}


# --------------------------------------------------------------------------------------------
# GEMM-only ratio and the matmul floor
# --------------------------------------------------------------------------------------------
def step_products(hidden, batch, k, rng):
    """The matrix products of one training step, as (A, B) pairs with the layouts our Linear
    layers use: forward x W, backward dout W^T and x^T dout (the data needs no dx)."""
    f, n = np.float32, batch * k                              # the decoder sees B*K rows
    a = lambda *s: rng.standard_normal(s, dtype=f)            # noqa: E731
    x, h_e, o, z, h_d, y = a(batch, X_DIM), a(batch, hidden), a(batch, 2 * Z_DIM), a(n, Z_DIM), a(n, hidden), a(n, X_DIM)
    W1, W2, W3, W4 = a(X_DIM, hidden), a(hidden, 2 * Z_DIM), a(Z_DIM, hidden), a(hidden, X_DIM)
    return [(x, W1), (h_e, W2), (z, W3), (h_d, W4),                          # forward
            (y, W4.T), (h_d.T, y), (h_d, W3.T), (z.T, h_d),                  # decoder backward
            (o, W2.T), (h_e.T, o), (x.T, h_e)]                               # encoder backward


def gemm_only(cfg, torch, args):
    """Seconds per epoch of one step's products alone, NumPy and torch.mm, interleaved rounds."""
    threads, hidden, batch, k = cfg
    limit = set_threads(threads, torch)
    prods = step_products(hidden, batch, k, np.random.default_rng(args.seed))
    tprods = None if torch is None else [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in prods]
    steps_per_epoch = -(-args.n_train // batch)
    reps = max(3, round(0.3 / (sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in prods) * 2 / 5e10)))
    times = {"numpy": [], "torch": []}
    for _ in range(args.rounds):
        for name in times:
            if name == "torch" and tprods is None:
                continue
            mm = (lambda a, b: a @ b) if name == "numpy" else torch.mm
            pairs = prods if name == "numpy" else tprods
            for a, b in pairs:
                mm(a, b)
            t0 = time.perf_counter()
            for _ in range(reps):
                for a, b in pairs:
                    mm(a, b)
            times[name].append((time.perf_counter() - t0) / reps * steps_per_epoch)
    limit.restore_original_limits()
    out = {"numpy s/epoch": statistics.median(times["numpy"]), "raw": times}
    if tprods is not None:
        out["torch s/epoch"] = statistics.median(times["torch"])
        out["numpy/torch"] = ratio_stats([a / b for a, b in zip(times["numpy"], times["torch"])])
    return out


def _code_key(fn):
    code = fn.__code__
    return (code.co_filename, code.co_firstlineno, code.co_name)


def profile_ours(ours: Ours, steps):
    """cProfile ``steps`` steps of ours; seconds per epoch by bucket (cumulative times of calls
    that do not nest in one another; the rest is glue and small arrays)."""
    buckets = {"matrix products (Linear.forward/backward)": [Linear.forward, Linear.backward],
               "Adam step": [Adam.step],
               "Bernoulli likelihood (log_prob/backward)": [BernoulliLikelihood.log_prob,
                                                            BernoulliLikelihood.backward],
               "ReLU forward/backward": [ReLU.forward, ReLU.backward],
               "minibatch gather": [gather]}
    where = {_code_key(f): name for name, fns in buckets.items() for f in fns}
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    ours.train(steps)
    prof.disable()
    wall = time.perf_counter() - t0
    per_epoch = ours.stream.n / ours.stream.batch / steps
    out = {name: 0.0 for name in buckets}
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    for key, (_, _, _, cumtime, _) in stats.items():
        if key in where:
            out[where[key]] += cumtime
    out["everything else (noise, encoder/decoder glue, KL, small arrays)"] = total - sum(out.values())
    scale = wall / total if total else 1.0
    return {kk: v * scale * per_epoch for kk, v in out.items()}, wall * per_epoch


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def fmt_ratio(r):
    return f"**{r['median']:.2f}x** ({r['min']:.2f}-{r['max']:.2f})"


def environment(torch, torch_note):
    from threadpoolctl import threadpool_info
    blas = [f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')} "
            f"({os.path.basename(i['filepath'])})" for i in threadpool_info() if i["user_api"] == "blas"]
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "numpy": np.__version__,
            "numpy BLAS": "; ".join(blas) or "not found by threadpoolctl",
            "torch": torch_note, "torch BLAS": "MKL" if torch is not None and torch.backends.mkl.is_available() else "-",
            "python": platform.python_version(), "code": git_revision(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset")}


def markdown(command, env, results, gemm, floor, load):
    lines = [f"command: `{command}`", "",
             "; ".join(f"{k}: {v}" for k, v in env.items()),
             f"load average (1 min) {load[0]:.1f} at start, {load[1]:.1f} at end (other jobs share the cores)", "",
             "ratio = ours / torch wall time per round: median (min-max) over the rounds; "
             "cpu = the same for process CPU time (1 thread only: with 2, idle threads spin)", "",
             "| configuration | ours s/epoch | torch eager s/epoch | torch fused s/epoch | ours/eager | ours/fused | cpu ours/eager | cpu ours/fused | rounds x steps | first-segment losses (ours, eager, fused) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for res in results:
        c = res["config"]
        cfg = (c["threads"], c["hidden"], c["batch"], c["k"])
        row = f"| {label(cfg)} | {res['ours s/epoch']:.2f} |"
        if "ours/torch eager" in res:
            cpu = c["threads"] == 1
            row += (f" {res['torch eager s/epoch']:.2f} | {res['torch fused s/epoch']:.2f} | "
                    f"{fmt_ratio(res['ours/torch eager'])} | {fmt_ratio(res['ours/torch fused'])} | "
                    + (f"{res['ours/torch eager cpu']['median']:.2f}x | {res['ours/torch fused cpu']['median']:.2f}x |"
                       if cpu else "- | - |"))
        else:
            row += " - | - | - | - | - | - |"
        losses = ", ".join(f"{v:.3f}" for v in res["first_losses"].values())
        lines.append(row + f" {len(res['rounds'])} x {res['steps']} | {losses} |")
    if gemm:
        lines += ["", "GEMM only (the 11 products of one step, NumPy `@` vs `torch.mm`, same shapes, interleaved):", "",
                  "| configuration | NumPy s/epoch | torch s/epoch | NumPy/torch |", "|---|---:|---:|---:|"]
        for key, g in gemm.items():
            lines.append(f"| {key} | {g['numpy s/epoch']:.2f} | {g.get('torch s/epoch', float('nan')):.2f} | "
                         + (fmt_ratio(g["numpy/torch"]) if "numpy/torch" in g else "-") + " |")
    if floor:
        lines += ["", f"Headline model at 1 thread: epoch {floor['epoch']:.2f} s = **{floor['ratio']:.2f}x** its matmul "
                      f"floor ({floor['floor']:.2f} s, the products alone). Where ours spends the epoch "
                      f"(cProfile, scaled to {floor['profiled_epoch']:.2f} s):", "",
                  "| part | s/epoch | share |", "|---|---:|---:|"]
        total = sum(floor["buckets"].values())
        for kk, v in sorted(floor["buckets"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {kk} | {v:.2f} | {100 * v / total:.0f}% |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--full", action="store_true", help="threads x hidden {400, 1000} x batch "
                   "{32, 128, 512} x {ELBO, IWAE k=5, k=50} instead of the default set")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--only", default="", help="keep the configurations whose label contains this "
                   "text, e.g. 'IWAE k=50' or 'H 1000'")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds per configuration")
    p.add_argument("--segment-seconds", type=float, default=0.5,
                   help="length of one contestant's segment (in steps of about this many seconds)")
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--profile-steps", type=int, default=200, help="cProfile steps of the headline (0: skip)")
    p.add_argument("--n-train", type=int, default=50000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DATA, help=".npz with a 'train' array, or the "
                   "directory of Larochelle's .amat files")
    p.add_argument("--no-torch", action="store_true", help="measure ours only")
    p.add_argument("--out-dir", type=Path, default=None, help="default bench/runs/<timestamp>")
    p.add_argument("--write-reference", action="store_true",
                   help="also write bench/results/vae_speed.{md,json} (the committed reference)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.n_train < 512 or any(t < 1 for t in args.threads) or args.segment_seconds <= 0:
        p.error("--rounds, --threads and --segment-seconds must be positive, --n-train >= 512")
    return args


def import_torch(skip):
    if skip:
        return None, "skipped (--no-torch)"
    try:
        import torch
    except ImportError as exc:
        return None, f"skipped: torch is not importable ({exc}); pip install -e '.[bench]'"
    return torch, f"torch {torch.__version__}"


def main(argv=None) -> int:
    args = parse(argv)
    command = ("python bench/bench_vae_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        sys.exit("error: threadpoolctl is needed to set and report the BLAS threads: "
                 "pip install -e '.[bench]'")
    x_u8 = load_train(args.data, args.n_train)
    torch, torch_note = import_torch(args.no_torch)
    env = environment(torch, torch_note)
    out_dir = args.out_dir or ROOT / "bench" / "runs" / time.strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"command: {command}\n" + "\n".join(f"  {k}: {v}" for k, v in env.items()), flush=True)
    load0 = os.getloadavg()
    results, gemm, floor = [], {}, {}
    for cfg in [c for c in configurations(args.full, args.threads) if args.only in label(c)]:
        res, ours = run_config(cfg, x_u8, torch, args)
        results.append(res)
        line = f"{label(cfg):32s} ours {res['ours s/epoch']:6.2f} s/epoch"
        if torch is not None:
            line += (f"  ours/eager {res['ours/torch eager']['median']:.2f}x  "
                     f"ours/fused {res['ours/torch fused']['median']:.2f}x")
        print(line, flush=True)
        threads, hidden, batch, k = cfg
        if k == 1 and batch == 128:                   # the GEMM-only bound for each width
            gemm[label(cfg)] = g = gemm_only(cfg, torch, args)
            print(f"{'':32s} GEMM only: numpy {g['numpy s/epoch']:.2f} s/epoch"
                  + (f", numpy/torch {g['numpy/torch']['median']:.2f}x" if "numpy/torch" in g else ""), flush=True)
            if (threads, hidden) == (1, HEADLINE["hidden"]) and args.profile_steps:
                limit = set_threads(1, torch)
                buckets, wall = profile_ours(ours, args.profile_steps)
                limit.restore_original_limits()
                floor = {"epoch": res["ours s/epoch"], "floor": g["numpy s/epoch"],
                         "ratio": res["ours s/epoch"] / g["numpy s/epoch"], "buckets": buckets,
                         "profiled_epoch": wall}
    load1 = os.getloadavg()
    text = markdown(command, env, results, gemm, floor, (load0[0], load1[0]))
    print("\n" + text)
    (out_dir / "vae_speed.md").write_text(text)
    (out_dir / "vae_speed.json").write_text(json.dumps(
        {"command": command, "environment": env, "load_average": [load0, load1], "results": results,
         "gemm_only": gemm, "matmul_floor": floor}, indent=1))
    print(f"wrote {out_dir / 'vae_speed.md'} and .json")
    if args.write_reference:
        ref = ROOT / "bench" / "results"
        for name in ("vae_speed.md", "vae_speed.json"):
            shutil.copyfile(out_dir / name, ref / name)
        print(f"wrote the reference {ref / 'vae_speed.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
