"""Finite-difference gradient checking: the proof that a hand-written backward pass is right.

For a function ``out = f(inputs)`` with an array output, pick a random upstream gradient
``dout`` (same shape as ``out``) and compare, for every entry ``x_i`` of every input array,

    analytic:   g_i = (backward(dout))[name][i]
    numerical:  n_i = d/dx_i sum(f(x) * dout), by a central difference of F = sum(f * dout):
        3-point:  [F(x + h e_i) - F(x - h e_i)] / (2 h)                                error O(h^2)
        5-point:  [-F(x + 2h e_i) + 8 F(x + h e_i) - 8 F(x - h e_i) + F(x - 2h e_i)] / (12 h)
                                                                                       error O(h^4)

with the relative error (cs231n's ``gradient_check.py`` convention)

    rel_i = |g_i - n_i| / max(1e-8, |g_i| + |n_i|).

Each stencil trades truncation error against round-off O(eps_mach |F| / h). The 3-point rule at
h = 1e-6 leaves ~1e-10 absolute error, too much for a *relative* error below 1e-7 on gradient
entries of size 1e-4 (they occur in every real network). The default is therefore the 5-point
rule at h = 1e-4: truncation ~h^4 = 1e-16, round-off ~1e-12. Checks run in float64 only
(float32 round-off, ~1e-7, would swamp any difference); the tests' tolerances are 1e-7 per
layer and 1e-6 for whole models.

The arrays in ``inputs`` are perturbed *in place* (one entry at a time) and restored exactly,
so ``f`` may read them through any closure (a layer's ``params`` dict, a model, a plain array).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .validate import (check_callable, check_float_array, check_int, check_positive, check_real,
                       check_rng, check_same_shape)


def rel_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise |a - b| / max(1e-8, |a| + |b|); a and b float arrays of one shape."""
    check_float_array("a", a, finite=False)
    check_float_array("b", b, finite=False)
    check_same_shape("a", a, "b", b)
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


# (step multiple k, weight w): n_i = sum_k w * [F(x + k h e_i) - F(x - k h e_i)] / h.
# Differences are formed before weighting, so an input that does not change F gives exactly 0.
_STENCILS = {3: ((1, 1.0 / 2.0),), 5: ((1, 8.0 / 12.0), (2, -1.0 / 12.0))}


def _check_stencil(stencil):
    if check_int("stencil", stencil) not in _STENCILS:
        raise ValueError(f"stencil must be 3 or 5, got {stencil!r}")


def numerical_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout, h: float = 1e-4,
                       stencil: int = 5) -> np.ndarray:
    """Central-difference gradient of ``sum(f() * dout)`` with respect to the array ``x``.

    ``x`` is modified in place during the computation and restored bit for bit afterwards.
    ``dout`` may be a scalar 1.0 when ``f`` returns a scalar. ``stencil`` is 3 or 5 points.
    """
    check_callable("f", f)
    check_float_array("x", x)
    if isinstance(dout, np.ndarray):
        check_float_array("dout", dout)
    else:
        check_real("dout", dout)
    h = check_positive("h", h)
    _check_stencil(stencil)
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing it perturbs x
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    for i in range(flat.size):
        old = flat[i]
        total = 0.0
        for k, weight in _STENCILS[stencil]:
            flat[i] = old + k * h
            f_plus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
            flat[i] = old - k * h
            f_minus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
            total += weight * (f_plus - f_minus)
        flat[i] = old
        grad.reshape(-1)[i] = total / h
    return grad


@dataclass
class GradCheckReport:
    """Result of :func:`check_gradients`: the maximum relative error per input array.

    ``worst[name]`` holds ``(index, analytic, numerical)`` of the entry with the largest error.
    """

    max_rel_error: dict = field(default_factory=dict)
    worst: dict = field(default_factory=dict)

    @property
    def overall(self) -> float:
        """Largest relative error over all arrays."""
        return max(self.max_rel_error.values()) if self.max_rel_error else 0.0

    def ok(self, tol: float) -> bool:
        """True when every array's max relative error is below ``tol`` (> 0)."""
        return self.overall < check_positive("tol", tol)

    def __str__(self) -> str:
        lines = [f"{'array':<24} {'max rel err':>12}   worst entry (analytic vs numerical)"]
        for name, err in self.max_rel_error.items():
            idx, a, n = self.worst[name]
            lines.append(f"{name:<24} {err:12.3e}   {idx}: {a:+.10e} vs {n:+.10e}")
        return "\n".join(lines)


def check_gradients(forward: Callable[[], np.ndarray], backward: Callable[[np.ndarray], dict],
                    inputs: dict, *, rng: np.random.Generator, h: float = 1e-4,
                    stencil: int = 5) -> GradCheckReport:
    """Compare a hand-written backward pass with central finite differences.

    Parameters
    ----------
    forward : callable () -> ndarray
        Recomputes the output from the *current* contents of the arrays in ``inputs``.
    backward : callable (dout) -> dict
        The analytic gradient of ``sum(out * dout)`` for each name in ``inputs``, evaluated at the
        unperturbed inputs (it is called once, before any perturbation).
    inputs : dict of str -> float64 ndarray
        The arrays to differentiate with respect to; perturbed in place and restored.
    rng : numpy.random.Generator
        Source of the random upstream gradient ``dout`` (standard normal, shape of the output).
    h : float
        Step of the central difference (default 1e-4 with the 5-point stencil; about 1e-6 suits
        ``stencil=3``).
    stencil : {3, 5}
        Points of the central difference (5, the default, is fourth-order accurate).

    Returns
    -------
    GradCheckReport
    """
    check_callable("forward", forward)
    check_callable("backward", backward)
    check_rng("rng", rng)
    check_positive("h", h)
    _check_stencil(stencil)
    if not isinstance(inputs, dict) or not inputs:
        raise TypeError(f"inputs must be a non-empty dict of name -> float64 ndarray, got "
                        f"{type(inputs).__name__} {inputs!r}")
    for name, x in inputs.items():
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            raise TypeError(f"inputs[{name!r}] must be a float64 ndarray for a finite-difference check "
                            f"(float32 round-off swamps the difference), got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
    out = np.asarray(forward(), dtype=np.float64)
    dout = rng.standard_normal(out.shape) if out.ndim else np.float64(1.0)
    analytic = backward(dout)
    if not isinstance(analytic, dict):
        raise TypeError(f"backward must return a dict of name -> gradient, got {type(analytic).__name__}")
    report = GradCheckReport()
    for name, x in inputs.items():
        if name not in analytic:
            raise KeyError(f"backward() returned no gradient for input {name!r}")
        g = np.asarray(analytic[name], dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"gradient for {name!r} has shape {g.shape}, input has shape {x.shape}")
        num = numerical_gradient(forward, x, dout, h, stencil)
        err = rel_error(g, num)
        k = int(np.argmax(err)) if err.size else 0
        idx = np.unravel_index(k, err.shape) if err.size else ()
        report.max_rel_error[name] = float(err.max()) if err.size else 0.0
        report.worst[name] = (tuple(int(i) for i in idx), float(g[idx]) if err.size else 0.0,
                              float(num[idx]) if err.size else 0.0)
    return report
