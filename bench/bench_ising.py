"""Mean-field sweeps per second on a 256 x 256 image: vectorized NumPy vs a per-pixel loop.

    python bench/bench_ising.py [--size 256] [--sweeps 400] [--loop-sweeps 2] [--repeat 3]

Both implementations run in the same process on the same model (Gaussian noise sigma = 2 on
random +-1 blobs, J = 1, 4 neighbours, damping 0.5). The vectorized rate is timed inside
``scratchvae.ising.mean_field`` with the ELBO off (update steps only), and once more with the
exact ELBO evaluated after every sweep; the loop is ``scratchvae.ising.reference.loop_sweep``.
Each rate is the best of ``--repeat`` runs (as ``timeit`` does), so that other processes on a
shared machine disturb it less. NumPy's elementwise operations use one core. Prints a table and
writes bench/results/ising.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae import ising
from scratchvae.ising.reference import loop_sweep


def make_model(size, rng):
    clean = np.where(ising.neighbour_sum(rng.standard_normal((size, size))) > 0, 1.0, -1.0)
    noisy = ising.add_gaussian_noise(clean, 2.0, rng)
    return ising.gaussian_model(noisy, 2.0, coupling=1.0)


def time_loop(model, schedule, n):
    mu = np.tanh(model.half_log_odds)
    t0 = time.perf_counter()
    for _ in range(n):
        mu = loop_sweep(model, mu, schedule=schedule, damping=0.5)
    return n / (time.perf_counter() - t0)


def time_vectorized(model, schedule, n, track_elbo):
    t0 = time.perf_counter()
    res = ising.mean_field(model, schedule=schedule, max_sweeps=n, track_elbo=track_elbo)
    # update steps only (timed inside mean_field) or the whole loop including the ELBO
    return 1 / res.seconds_per_sweep if not track_elbo else n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="image side")
    parser.add_argument("--sweeps", type=int, default=400, help="vectorized sweeps timed")
    parser.add_argument("--loop-sweeps", type=int, default=2, help="per-pixel loop sweeps timed")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results", "ising.json"))
    args = parser.parse_args(argv)
    command = "python bench/bench_ising.py " + " ".join(argv if argv is not None else sys.argv[1:])
    model = make_model(args.size, np.random.default_rng(args.seed))
    mu0 = np.tanh(model.half_log_odds)
    rows = []
    for schedule in ising.SCHEDULES:
        fast_step = ising.mean_field_sweep(model, mu0, schedule=schedule, damping=0.5)
        diff = float(np.max(np.abs(fast_step - loop_sweep(model, mu0, schedule=schedule,
                                                           damping=0.5))))
        best = lambda f: max(f() for _ in range(args.repeat))   # noqa: E731
        fast = best(lambda: time_vectorized(model, schedule, args.sweeps, False))
        with_elbo = best(lambda: time_vectorized(model, schedule, max(args.sweeps // 4, 1), True))
        loop = best(lambda: time_loop(model, schedule, args.loop_sweeps))
        rows.append(dict(schedule=schedule, vectorized_sweeps_per_s=fast,
                         vectorized_with_elbo_sweeps_per_s=with_elbo, loop_sweeps_per_s=loop,
                         speedup=fast / loop, max_abs_diff_vs_loop=diff))
    print(f"command: {command.strip()}")
    print(f"{args.size}x{args.size}, 4 neighbours, float64, numpy {np.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} cpu(s), best of {args.repeat}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'schedule':<14}{'vectorized/s':>14}{'+ELBO/s':>10}{'loop/s':>9}{'ratio':>9}"
          f"{'max|diff|':>11}")
    for r in rows:
        print(f"{r['schedule']:<14}{r['vectorized_sweeps_per_s']:>14.0f}"
              f"{r['vectorized_with_elbo_sweeps_per_s']:>10.0f}{r['loop_sweeps_per_s']:>9.2f}"
              f"{r['speedup']:>8.0f}x{r['max_abs_diff_vs_loop']:>11.1e}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(command=command.strip(), size=args.size, repeat=args.repeat,
                       numpy=np.__version__, python=platform.python_version(),
                       cpus=os.cpu_count(), load_average=os.getloadavg(), results=rows), f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
