"""Ising speed: mean-field sweeps (vectorized vs a per-pixel loop) and ICM/Gibbs sweeps (the
library's sub-lattice form vs the masked form it replaced).

    python bench/bench_ising.py [--size 256] [--sweeps 400] [--loop-sweeps 2] [--repeat 3]
                                [--baseline-size 1024] [--baseline-sweeps 10] [--write-reference]

Mean field, on a ``--size`` image (Gaussian noise sigma = 2 on random +-1 blobs, J = 1, 4
neighbours, damping 0.5): the vectorized rate is timed inside ``scratchvae.ising.mean_field``
with the ELBO off (update steps only), and once more with the exact ELBO after every sweep; the
loop is ``scratchvae.ising.reference.loop_sweep``.

ICM and Gibbs, on a ``--baseline-size`` image of the same kind, with 4 and 8 neighbours: the
library's ``icm``/``gibbs`` (spins kept as four contiguous sub-lattices) against the masked form
below (a full-image field and ``np.where`` per colour: the previous implementation, kept here as
the reference). Two times per sweep: the update steps alone, and the whole call (with the
energy trace after every sweep). ICM is deterministic, so both forms must end in the same
spins and energies (checked); Gibbs draws its uniforms per sub-lattice now, so its samples
differ from the masked form's and only the speed is compared.

Each rate is the best of ``--repeat`` runs (as ``timeit`` does), so that other processes on a
shared machine disturb it less; the runs of the two forms alternate. NumPy's elementwise
operations use one core. Prints a table and writes ``ising.json`` into ``bench/runs/<timestamp>/``
(or ``--out``); ``--write-reference`` also writes ``bench/results/ising.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

import numpy as np

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae import ising
from scratchvae.ising.mean_field import log_joint_unchecked
from scratchvae.ising.reference import loop_sweep

HERE = os.path.dirname(os.path.abspath(__file__))


def make_model(size, rng, neighbours=4):
    clean = np.where(ising.neighbour_sum(rng.standard_normal((size, size))) > 0, 1.0, -1.0)
    noisy = ising.add_gaussian_noise(clean, 2.0, rng)
    return ising.gaussian_model(noisy, 2.0, coupling=1.0, neighbours=neighbours)


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


# ---------------------------------------------------------------- the masked form (reference)
def _field(model, z):
    return z.dtype.type(model.coupling) * ising.neighbour_sum(z, model.neighbours) + model.half_log_odds


def masked_icm(model, n_sweeps):
    """ICM as a full-image field and np.where per colour mask. Returns (z, energies, seconds of
    the update steps); stops early when no pixel changes, like ``icm``."""
    z = np.where(model.half_log_odds >= 0, 1.0, -1.0).astype(model.half_log_odds.dtype)
    energy, seconds = [-float(log_joint_unchecked(model, z))], 0.0
    for _ in range(n_sweeps):
        t0, old = time.perf_counter(), z
        for mask in ising.colour_masks(z.shape, model.neighbours):
            a = _field(model, z)
            z = np.where(mask & (a != 0), np.where(a >= 0, 1.0, -1.0).astype(z.dtype), z)
        seconds += time.perf_counter() - t0
        energy.append(-float(log_joint_unchecked(model, z)))
        if not np.any(z != old):
            break
    return z, np.asarray(energy), seconds


def masked_gibbs(model, n_sweeps, rng):
    """Gibbs as a full-image field, a full-image uniform array and np.where per colour mask."""
    z = np.where(model.half_log_odds >= 0, 1.0, -1.0).astype(model.half_log_odds.dtype)
    one, half = z.dtype.type(1), z.dtype.type(0.5)
    total, seconds = np.zeros_like(z), 0.0
    for _ in range(n_sweeps):
        t0 = time.perf_counter()
        for mask in ising.colour_masks(z.shape, model.neighbours):
            p_plus = half * (one + np.tanh(_field(model, z)))
            z = np.where(mask, np.where(rng.random(z.shape) < p_plus, one, -one), z)
        seconds += time.perf_counter() - t0
        total += z
        log_joint_unchecked(model, z)                    # the energy trace, as ``gibbs`` keeps
    return total / n_sweeps, seconds


def baselines(args):
    """ICM and Gibbs per sweep (ms): library vs masked form, best of --repeat, alternating."""
    rows = []
    for neighbours in (4, 8):
        model = make_model(args.baseline_size, np.random.default_rng(args.seed), neighbours)
        n = args.baseline_sweeps
        ref_z, ref_energy, _ = masked_icm(model, n)
        lib = ising.icm(model, max_sweeps=n)
        same = bool(np.array_equal(lib.mean, ref_z))
        energy_diff = float(np.max(np.abs(lib.trace - ref_energy))) if lib.trace.shape == ref_energy.shape else float("inf")
        for method in ("icm", "gibbs"):
            best = {"library": [np.inf, np.inf], "masked": [np.inf, np.inf]}    # [update, whole call]
            for _ in range(args.repeat):
                for form in ("masked", "library"):
                    t0 = time.perf_counter()
                    if method == "icm":
                        if form == "library":
                            res = ising.icm(model, max_sweeps=n)
                            sweeps, update = res.n_sweeps, res.seconds_per_sweep * res.n_sweeps
                        else:
                            _, energies, update = masked_icm(model, n)
                            sweeps = len(energies) - 1
                    elif form == "library":
                        res = ising.gibbs(model, rng=np.random.default_rng(1), n_sweeps=n, burn_in=0)
                        sweeps, update = n, res.seconds_per_sweep * n
                    else:
                        _, update = masked_gibbs(model, n, np.random.default_rng(1))
                        sweeps = n
                    whole = time.perf_counter() - t0
                    best[form][0] = min(best[form][0], 1e3 * update / sweeps)
                    best[form][1] = min(best[form][1], 1e3 * whole / sweeps)
            rows.append(dict(method=method, neighbours=neighbours, size=args.baseline_size, sweeps=n,
                             masked_update_ms=best["masked"][0], library_update_ms=best["library"][0],
                             masked_call_ms=best["masked"][1], library_call_ms=best["library"][1],
                             update_speedup=best["masked"][0] / best["library"][0],
                             call_speedup=best["masked"][1] / best["library"][1],
                             **({"same_spins_as_masked": same, "max_energy_diff": energy_diff}
                                if method == "icm" else {})))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="image side (mean field)")
    parser.add_argument("--sweeps", type=int, default=400, help="vectorized sweeps timed")
    parser.add_argument("--loop-sweeps", type=int, default=2, help="per-pixel loop sweeps timed")
    parser.add_argument("--baseline-size", type=int, default=1024, help="image side (ICM and Gibbs)")
    parser.add_argument("--baseline-sweeps", type=int, default=10, help="ICM and Gibbs sweeps per run")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="the JSON file to write (default "
                        "bench/runs/<timestamp>/ising.json)")
    parser.add_argument("--write-reference", action="store_true",
                        help="also write bench/results/ising.json (the committed reference)")
    args = parser.parse_args(argv)
    if min(args.size, args.sweeps, args.loop_sweeps, args.baseline_size, args.baseline_sweeps,
           args.repeat) < 1:
        parser.error("sizes, sweeps and --repeat must be >= 1")
    command = ("python bench/bench_ising.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
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
    base = baselines(args)
    load = os.getloadavg()
    print(f"command: {command}")
    print(f"numpy {np.__version__}, python {platform.python_version()}, {os.cpu_count()} cpu(s), "
          f"float64, best of {args.repeat}, load average {load[0]:.1f}")
    print(f"\nmean field, {args.size}x{args.size}, 4 neighbours")
    print(f"{'schedule':<14}{'vectorized/s':>14}{'+ELBO/s':>10}{'loop/s':>9}{'ratio':>9}"
          f"{'max|diff|':>11}")
    for r in rows:
        print(f"{r['schedule']:<14}{r['vectorized_sweeps_per_s']:>14.0f}"
              f"{r['vectorized_with_elbo_sweeps_per_s']:>10.0f}{r['loop_sweeps_per_s']:>9.2f}"
              f"{r['speedup']:>8.0f}x{r['max_abs_diff_vs_loop']:>11.1e}")
    print(f"\nICM and Gibbs, {args.baseline_size}x{args.baseline_size}, ms per sweep: masked form "
          f"-> sub-lattice form (update steps; whole call with the energy trace)")
    print(f"{'method':<8}{'nbrs':>5}{'update masked':>15}{'library':>9}{'ratio':>8}"
          f"{'call masked':>13}{'library':>9}{'ratio':>8}  ICM spins/energies as masked")
    for r in base:
        same = (f"  {r['same_spins_as_masked']} / max |dE| {r['max_energy_diff']:.1e}"
                if r["method"] == "icm" else "  (other draws)")
        print(f"{r['method']:<8}{r['neighbours']:>5}{r['masked_update_ms']:>15.2f}"
              f"{r['library_update_ms']:>9.2f}{r['update_speedup']:>7.1f}x{r['masked_call_ms']:>13.2f}"
              f"{r['library_call_ms']:>9.2f}{r['call_speedup']:>7.1f}x{same}")
    out = args.out or os.path.join(HERE, "runs", time.strftime("%Y%m%d-%H%M%S"), "ising.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(dict(command=command, size=args.size, repeat=args.repeat,
                       numpy=np.__version__, python=platform.python_version(),
                       cpus=os.cpu_count(), load_average=load, results=rows,
                       icm_gibbs=base), f, indent=2)
    print(f"wrote {out}")
    if args.write_reference:
        ref = os.path.join(HERE, "results", "ising.json")
        shutil.copyfile(out, ref)
        print(f"wrote the reference {ref}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
