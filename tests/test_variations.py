"""The discretized arc length: its gradient (finite differences, negative control), the identity
"EL residual = -gradient / h", the arc length of a parabola against its closed form, convergence
to the straight line on uniform and non-uniform grids, the demo's claims and input validation."""
import os
import sys

import numpy as np
import pytest

from scratchvae.lab import variations as var
from scratchvae.gradcheck import check_gradients

DEV_TOL = 1e-8           # max |y - straight line| after convergence
RES_TOL = 1e-9           # max |EL residual| after convergence (stopping rule 1e-10)


def _nonuniform_grid(n=25, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([[0.0], np.sort(rng.uniform(0.0, 2.0, n - 2)), [2.0]])
    y = np.sin(2 * x) + 0.3 * rng.standard_normal(n)
    return x, y


def test_arc_length_gradient():
    x, y = _nonuniform_grid()
    rng = np.random.default_rng(1)
    _, cache = var.arc_length(x, y)
    report = check_gradients(lambda: np.array(var.arc_length(x, y)[0]),
                             lambda d: var.arc_length_backward(d, cache), {"y": y}, rng=rng)
    assert report.ok(1e-7), f"\n{report}"


def test_arc_length_gradient_negative_control_fails():
    """Forgetting that y_i also enters the next segment (dJ/dy_i = s_i only) must be caught."""
    x, y = _nonuniform_grid()
    rng = np.random.default_rng(1)
    dy = np.diff(y)
    s = dy / np.hypot(np.diff(x), dy)
    wrong = {"y": np.concatenate([[0.0], s])}
    report = check_gradients(lambda: np.array(var.arc_length(x, y)[0]), lambda d: wrong, {"y": y}, rng=rng)
    assert not report.ok(1e-7) and report.overall > 1e-2


def test_euler_lagrange_residual_is_minus_the_gradient_over_h():
    x, y = _nonuniform_grid()
    _, cache = var.arc_length(x, y)
    grad = var.arc_length_backward(1.0, cache)["y"][1:-1]
    h = 0.5 * (x[2:] - x[:-2])
    np.testing.assert_allclose(var.euler_lagrange_residual(x, y), -grad / h, rtol=1e-12, atol=1e-12)


def test_straight_line_is_stationary_and_arc_length_of_a_parabola():
    x, _ = _nonuniform_grid()
    line = var.straight_line(x, -0.3, 1.1)
    # round-off only: dy = y_i - y_(i-1) cancels, so each slope s is off by ~eps |y| / dx, then / h
    h_min = (0.5 * (x[2:] - x[:-2])).min()
    bound = 10 * np.finfo(float).eps * np.abs(line).max() / (np.diff(x).min() * h_min)
    assert np.abs(var.euler_lagrange_residual(x, line)).max() < bound
    assert var.arc_length(x, line)[0] == pytest.approx(np.hypot(2.0, 1.4), rel=1e-14)
    xp = np.linspace(0.0, 1.0, 4001)                                     # y = x^2, exact length below
    exact = (2 * np.sqrt(5) + np.arcsinh(2)) / 4
    assert abs(var.arc_length(xp, xp ** 2)[0] - exact) < 1e-7            # polyline error O(1/n^2) ~ 1e-8


@pytest.mark.parametrize("grid", ["uniform", "non-uniform"])
def test_gradient_descent_converges_to_the_straight_line(grid):
    if grid == "uniform":
        x = np.linspace(0.0, 1.0, 31)
        y0 = var.straight_line(x, 0.0, 0.5) + 0.3 * np.sin(3 * np.pi * x) - 0.1 * np.sin(7 * np.pi * x)
    else:
        x, y0 = _nonuniform_grid(15, seed=2)
    res = var.minimize_arc_length(x, y0, n_iter=100_000, tol=1e-10)
    line = var.straight_line(x, y0[0], y0[-1])
    assert np.abs(res.y - line).max() < DEV_TOL
    assert np.abs(var.euler_lagrange_residual(x, res.y)).max() < RES_TOL
    assert res.y[0] == y0[0] and res.y[-1] == y0[-1]                     # ends never move
    assert np.all(np.diff(res.history["J"]) <= 1e-15)                    # step min(dx)/4: J never rises
    assert res.n_iter < 100_000


@pytest.mark.slow
def test_demo_calculus_of_variations_claims(tmp_path):
    """21 points: max |y - line| < 1e-8 and max |EL residual| < 1e-9 at the end (it starts > 1);
    scipy's L-BFGS-B with the same gradient lands within 1e-6 of the line."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "demos"))
    import calculus_of_variations as demo
    out = demo.main(["--out", str(tmp_path), "--points", "21"])
    assert out["deviation"] < DEV_TOL and out["residual"] < RES_TOL, out
    assert out["residual_start"] > 1.0
    assert out["J"] == pytest.approx(out["J_line"], abs=1e-12)
    assert out["deviation_lbfgs"] < 1e-6
    assert os.path.getsize(out["path"]) > 10_000


def test_bad_inputs_raise_clear_errors():
    x = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="strictly increasing"):
        var.arc_length(x[::-1].copy(), x)
    with pytest.raises(ValueError, match="same shape"):
        var.arc_length(x, x[:4])
    with pytest.raises(ValueError, match="at least 3 grid points"):
        var.euler_lagrange_residual(x[:2], x[:2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        var.minimize_arc_length(x, np.array([0, np.nan, 0, 0, 0.0]))
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        var.arc_length(x, np.arange(5))
    with pytest.raises(ValueError, match="step must be > 0"):
        var.minimize_arc_length(x, x.copy(), step=-1.0)
