"""Why Adam flushes subnormals: time per step as momentum of never-updated weights decays.

A 784x400 float32 weight matrix (the first layer of the MNIST VAE) whose rows for "dead" pixels
(a fraction ``--dead``, like MNIST's always-0 border) get exactly zero gradient after the first
step; the rest get fresh random gradients. Without flushing, the dead rows' first moment decays
as 0.9^t and enters the subnormal range (< 1.2e-38) after ~800 steps, where x86 arithmetic is
slow. Both variants run interleaved in the same process, window by window.

    python bench/bench_adam_subnormal.py [--steps 3000] [--window 250] [--dead 0.3]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from scratchvae.optim import Adam


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--window", type=int, default=250)
    ap.add_argument("--dead", type=float, default=0.3, help="fraction of rows with zero gradient")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "adam_subnormal.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (784, 400)
    live = rng.random(shape[0]) >= args.dead
    grads = [rng.standard_normal(shape).astype(np.float32) * 1e-2 for _ in range(8)]
    for g in grads[1:]:
        g[~live] = 0.0
    opts = {name: Adam({"W": np.zeros(shape, np.float32)}, lr=1e-3, flush_every=fe)
            for name, fe in (("flush every step", 1), ("no flush", 0))}
    rows = []
    for start in range(0, args.steps, args.window):
        row = {"steps": f"{start + 1}-{start + args.window}"}
        for name, opt in opts.items():
            t0 = time.perf_counter()
            for t in range(start, start + args.window):
                opt.step({"W": grads[0] if t == 0 else grads[1 + t % 7]})
            row[name] = (time.perf_counter() - t0) / args.window * 1e3
        m = opts["no flush"].state["W"]["m"]
        row["subnormal entries (no flush)"] = int(np.count_nonzero((m != 0) & (np.abs(m) < np.finfo(np.float32).tiny)))
        row["ratio"] = row["no flush"] / row["flush every step"]
        rows.append(row)
    print(f"command: python bench/bench_adam_subnormal.py {' '.join(argv or sys.argv[1:])}")
    print(f"784x400 float32, {args.dead:.0%} dead rows, ms per Adam step (interleaved windows)\n")
    print("| steps | flush every step | no flush | no flush / flush | subnormal m entries (no flush) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['steps']} | {r['flush every step']:.3f} | {r['no flush']:.3f} | "
              f"{r['ratio']:.2f}x | {r['subnormal entries (no flush)']} |")
    per_op = _per_op_penalty()
    print(f"\nraw penalty on this CPU: time of y = 0.9 x on 1e6 float32 subnormals / on normals "
          f"= {per_op:.2f} (about 1 means this CPU handles subnormals at full speed)")
    print("(0.9 * smallest subnormal rounds back to itself, so unflushed m entries stay subnormal forever)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"argv": argv or sys.argv[1:], "rows": rows, "per_op_penalty": per_op}, f, indent=1)


def _per_op_penalty(n=1_000_000, reps=50):
    """Median over 5 interleaved rounds of the time ratio subnormal / normal for x *= 0.9."""
    tiny = np.finfo(np.float32).tiny
    ratios = []
    for _ in range(5):
        times = []
        for value in (tiny / 8, 1e-3):
            x, y = np.full(n, value, dtype=np.float32), np.empty(n, dtype=np.float32)
            t0 = time.perf_counter()
            for _ in range(reps):
                np.multiply(x, np.float32(0.9), out=y)   # subnormal in, subnormal out
            times.append(time.perf_counter() - t0)
        ratios.append(times[0] / times[1])
    return float(np.median(ratios))


if __name__ == "__main__":
    main()
