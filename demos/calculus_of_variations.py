"""Calculus of variations: the shortest curve between two points, found by gradient descent.

    python demos/calculus_of_variations.py [--out out/] [--seed 0]

The curve y(x) from (0, 0) to (1, 0.5) is discretized on 41 grid points with its ends fixed; the
arc-length functional J[y] = sum_k sqrt(dx^2 + dy_k^2) is minimized over the 39 interior values
by gradient descent with its hand-derived gradient (``scratchvae.lab.variations``), from a wiggly
start (two fixed sine modes plus random ones drawn from --seed). We report the maximum deviation
from the straight line (the Euler-Lagrange solution) and the discrete Euler-Lagrange residual
d/dx (y' / sqrt(1 + y'^2)) at the start and the end, and, as a cross-check, scipy's L-BFGS-B
with the same gradient. Writes ``calculus_of_variations.png``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.optimize import minimize

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae.lab import variations as var
from scratchvae.viz.lab_estimators import variations_figure

Y_A, Y_B = 0.0, 0.5
SNAPSHOTS = (5, 30, 150, 600)


def wiggly_start(x, rng):
    """Straight line + 0.25 sin(3 pi t) + 0.1 sin(8 pi t) + random modes k = 1..6 of sd 0.05 / k."""
    t = (x - x[0]) / (x[-1] - x[0])
    y = var.straight_line(x, Y_A, Y_B) + 0.25 * np.sin(3 * np.pi * t) + 0.1 * np.sin(8 * np.pi * t)
    for k in range(1, 7):
        y += rng.normal(0, 0.05 / k) * np.sin(k * np.pi * t)            # zero at both ends
    return y


def lbfgs(x, y0):
    """scipy L-BFGS-B on the interior values with our gradient; returns (y, iterations)."""
    def fun(inner):
        y = np.concatenate([[y0[0]], inner, [y0[-1]]])
        J, cache = var.arc_length(x, y)
        return J, var.arc_length_backward(1.0, cache)["y"][1:-1]
    r = minimize(fun, y0[1:-1], jac=True, method="L-BFGS-B",
                 options={"gtol": 1e-12, "ftol": 0, "maxiter": 2000})
    return np.concatenate([[y0[0]], r.x, [y0[-1]]]), r.nit


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng")
    parser.add_argument("--points", type=int, default=41, help="grid points including both ends")
    parser.add_argument("--iters", type=int, default=40000, help="maximum gradient-descent iterations")
    parser.add_argument("--tol", type=float, default=1e-10, help="stop when max |EL residual| < tol")
    args = parser.parse_args(argv)
    t0, rng = time.perf_counter(), np.random.default_rng(args.seed)
    x = np.linspace(0.0, 1.0, args.points)
    y0, line = wiggly_start(x, rng), var.straight_line(x, Y_A, Y_B)
    J_line = float(np.hypot(1.0, Y_B - Y_A))
    t1 = time.perf_counter()
    res = var.minimize_arc_length(x, y0, n_iter=args.iters, tol=args.tol, snapshot_at=SNAPSHOTS)
    seconds = time.perf_counter() - t1
    h = res.history
    dev = float(np.abs(res.y - line).max())
    print(f"grid: {args.points} points on [0, 1], ends (0, {Y_A:g}) and (1, {Y_B:g}); "
          f"gradient descent with step min(dx)/4 = {np.diff(x).min() / 4:.4g}")
    print(f"  start: J = {h['J'][0]:.6f}, max |y - line| = {h['deviation'][0]:.4f}, "
          f"max |EL residual| = {h['residual'][0]:.3e}")
    print(f"  end ({res.n_iter} iterations, {seconds:.2f} s): J = {h['J'][-1]:.12f} (straight line "
          f"{J_line:.12f}), max |y - line| = {dev:.2e}, max |EL residual| = {h['residual'][-1]:.2e}")
    print(f"  J never increased: {bool(np.all(np.diff(h['J']) <= 1e-15))}")
    y_lb, nit = lbfgs(x, y0)
    dev_lb = float(np.abs(y_lb - line).max())
    print(f"  cross-check, scipy L-BFGS-B with the same gradient: {nit} iterations, max |y - line| = "
          f"{dev_lb:.2e}, max |EL residual| = {np.abs(var.euler_lagrange_residual(x, y_lb)).max():.2e}")
    caption = (f"J[y] = sum_k sqrt(dx^2 + dy_k^2) on {args.points} points, ends fixed; gradient descent, "
               f"step min(dx)/4; stopping rule max|EL residual| < {args.tol:g}\n"
               f"start: J = {h['J'][0]:.4f}, max|y - line| = {h['deviation'][0]:.3f}, max|EL residual| = "
               f"{h['residual'][0]:.2e}\n"
               f"end ({res.n_iter} iterations): J = {h['J'][-1]:.10f} (line {J_line:.10f}), max|y - line| = "
               f"{dev:.1e}, max|EL residual| = {h['residual'][-1]:.1e}\n"
               f"EL residual R_i = [s_(i+1) - s_i] / h_i with s = y'/sqrt(1 + y'^2) per segment "
               f"(= -dJ/dy_i / h_i); L-BFGS-B cross-check: {nit} iterations, max|y - line| = {dev_lb:.1e}")
    path = variations_figure(
        x, y0, [(it, y) for it, y in res.snapshots], res.y, line,
        {"iteration": h["iteration"],
         "curves": {"max |EL residual|": h["residual"], "max |y - straight line|": h["deviation"],
                    "J - J(line), floored at 1e-16 (round-off)": np.maximum(h["J"] - J_line, 1e-16)}},
        suptitle="Shortest curve between two points: gradient descent on the discretized arc length",
        caption=caption, path=os.path.join(args.out, "calculus_of_variations.png"))
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return {"result": res, "deviation": dev, "residual": float(h["residual"][-1]),
            "residual_start": float(h["residual"][0]), "J": float(h["J"][-1]), "J_line": J_line,
            "deviation_lbfgs": dev_lb, "path": path}


if __name__ == "__main__":
    main()
