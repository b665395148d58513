"""Calculus of variations by brute force: the shortest curve between two points, discretized.

The functional (Gelfand & Fomin 1963, §1.4 example 1; the VI notes derive the mean-field update
the same way, by setting a functional derivative to zero):

    J[y] = integral_a^b F(y') dx,   F(y') = sqrt(1 + y'^2),   y(a) = y_a, y(b) = y_b.

Euler-Lagrange: dF/dy - d/dx dF/dy' = 0, and F has no y, so d/dx (y' / sqrt(1 + y'^2)) = 0:
y' is constant and the extremal is the straight line.

Discretization on a grid x_0 < ... < x_n with y_0 = y_a, y_n = y_b fixed (segment k joins
points k-1 and k, k = 1..n):

    J(y) = sum_k l_k,   l_k = sqrt(dx_k^2 + dy_k^2),   dx_k = x_k - x_{k-1},  dy_k = y_k - y_{k-1}.

With s_k = dy_k / l_k (= y'/sqrt(1 + y'^2) on segment k, the sine of its angle), the gradient at
an interior point is

    dJ/dy_i = s_i - s_{i+1},                                     i = 1..n-1,

and the discrete Euler-Lagrange residual (a centred difference of s) is

    R_i = (s_{i+1} - s_i) / h_i,   h_i = (x_{i+1} - x_{i-1}) / 2,   so  R_i = -(dJ/dy_i) / h_i:

the stationarity of the discretized functional *is* the discretized Euler-Lagrange equation.
J is convex in y (a sum of convex functions of the differences) and each l_k has
d^2 l_k / d dy_k^2 = dx_k^2 / l_k^3 <= 1 / dx_k, so the Hessian is at most 4 / min_k dx_k
(the second-difference matrix has eigenvalues < 4): gradient descent with step min dx / 4
decreases J at every step and converges to the unique minimizer, the straight line sampled on
the grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validate import (check_cache, check_float_array, check_int, check_int_sequence,
                        check_positive, check_real, check_same_dtype, check_same_shape)


def _check_curve(x, y, y_name="y"):
    check_float_array("x", x, ndim=1)
    check_float_array(y_name, y, ndim=1)
    check_same_shape("x", x, y_name, y)
    check_same_dtype(y_name, y, "x", x)
    if x.shape[0] < 3:
        raise ValueError(f"x must hold at least 3 grid points (2 fixed ends and 1 free), got {x.shape[0]}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing (a grid from a to b)")


def arc_length(x, y):
    """J = sum_k sqrt(dx_k^2 + dy_k^2) of the polyline through (x_k, y_k); returns (J, cache).

    x, y : ndarray (n + 1,), x strictly increasing.

    Notes
    -----
    Forward: dx = diff(x), dy = diff(y), l = sqrt(dx^2 + dy^2), J = sum(l).
    Backward (:func:`arc_length_backward`): s = dy / l; dy_i = dJ (s_i - s_{i+1}) with s_0 = s_{n+1} = 0.
    """
    _check_curve(x, y)
    return _arc_length(x, y)


def _arc_length(x, y):
    dx, dy = np.diff(x), np.diff(y)                                      # (n,)
    length = np.sqrt(dx * dx + dy * dy)                                  # (n,)
    return float(length.sum()), (dy, length)


def arc_length_backward(dJ, cache):
    """Gradient dict(y (n + 1,)) of J * dJ w.r.t. every y_i, the fixed ends included."""
    dJ = check_real("dJ", dJ)
    dy, length = check_cache(cache, 2, "arc_length")
    s = dy / length                                                      # (n,) dl_k / d dy_k
    dyy = np.zeros(s.shape[0] + 1)
    dyy[1:] += s                                                         # y_k enters dy_k with +1
    dyy[:-1] -= s                                                        # and dy_{k+1} with -1
    return {"y": dJ * dyy}


def euler_lagrange_residual(x, y):
    """R_i = (s_{i+1} - s_i) / h_i at the interior points i = 1..n-1, shape (n - 1,).

    s_k = dy_k / sqrt(dx_k^2 + dy_k^2) = y'/sqrt(1 + y'^2) on segment k, h_i = (x_{i+1} - x_{i-1}) / 2:
    a centred difference of d/dx (y' / sqrt(1 + y'^2)), zero on the straight line.
    """
    _check_curve(x, y)
    return _residual(x, y)


def _residual(x, y):
    dx, dy = np.diff(x), np.diff(y)
    s = dy / np.sqrt(dx * dx + dy * dy)
    return np.diff(s) / (0.5 * (x[2:] - x[:-2]))


def straight_line(x, y_a: float, y_b: float):
    """The Euler-Lagrange solution y = y_a + (y_b - y_a) (x - x_0) / (x_n - x_0) on the grid x.

    x (n + 1,) strictly increasing with n >= 1; y_a, y_b finite reals. Returns (n + 1,).
    """
    check_float_array("x", x, ndim=1)
    if x.shape[0] < 2 or np.any(np.diff(x) <= 0):
        raise ValueError(f"x must be a strictly increasing grid of at least 2 points, got shape {x.shape}")
    check_real("y_a", y_a)
    check_real("y_b", y_b)
    return y_a + (y_b - y_a) * (x - x[0]) / (x[-1] - x[0])


@dataclass
class ShortestPathResult:
    """y: final curve; history: iteration, J, max |EL residual|, max |y - line| every ``record_every``
    steps (and at the last); snapshots: (iteration, y) at the requested iterations."""

    y: np.ndarray
    n_iter: int
    history: dict = field(default_factory=dict)
    snapshots: list = field(default_factory=list)


def minimize_arc_length(x, y0, *, n_iter: int = 20000, step: float | None = None, tol: float = 1e-10,
                        record_every: int = 50, snapshot_at=()):
    """Gradient descent on J(y) over the interior points, ends fixed at y0[0] and y0[-1].

    Parameters
    ----------
    x, y0 : ndarray (n + 1,)
        Grid (strictly increasing) and starting curve.
    n_iter : int
        Maximum iterations.
    step : float, optional
        Step size; default min(dx) / 4, which is <= 1 / (largest Hessian eigenvalue) everywhere.
    tol : float
        Stop when max_i |R_i| (the Euler-Lagrange residual) < tol.
    record_every : int
        History sampling period.
    snapshot_at : iterable of int
        Iterations whose curves are kept (0 is the start).

    Notes
    -----
    y_i <- y_i - step * dJ/dy_i for i = 1..n-1, dJ/dy from :func:`arc_length_backward`.
    """
    _check_curve(x, y0, "y0")
    n_iter = check_int("n_iter", n_iter, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    tol = check_positive("tol", tol)
    step = np.diff(x).min() / 4 if step is None else check_positive("step", step)
    wanted = set(check_int_sequence("snapshot_at", snapshot_at, minimum=0))
    y, line = y0.astype(np.float64), straight_line(x, y0[0], y0[-1])
    hist = {"iteration": [], "J": [], "residual": [], "deviation": []}
    snaps = []
    for it in range(n_iter + 1):
        J, cache = _arc_length(x, y)                                     # inputs checked above
        res = np.abs(_residual(x, y)).max()
        done = res < tol or it == n_iter
        if it % record_every == 0 or done:
            for k, v in zip(hist, (it, J, res, np.abs(y - line).max())):
                hist[k].append(v)
        if it in wanted:
            snaps.append((it, y.copy()))
        if done:
            break
        dy = arc_length_backward(1.0, cache)["y"]
        y[1:-1] -= step * dy[1:-1]                                       # ends stay fixed
    return ShortestPathResult(y, it, {k: np.array(v) for k, v in hist.items()}, snaps)
