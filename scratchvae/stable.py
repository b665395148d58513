"""Numerically stable softplus, sigmoid, log-sum-exp and e^v - 1 - v, shared by the whole package.

    softplus(t) = log(1 + e^t) = max(t, 0) + softplus(-|t|),   softplus(-|t|) = log1p(e^{-|t|})
    sigmoid(t)  = 1 / (1 + e^{-t})  = exp(t - softplus(t))

Neither form overflows: e^{-|t|} is in (0, 1], and t - softplus(t) <= 0. (``np.logaddexp(0, t)``
computes the same softplus but measured ~10x slower on float32 batches here, and the Bernoulli
likelihood evaluates it on every pixel of every example.) For t -> -inf, sigmoid underflows
gracefully to 0; for t -> +inf, exp(t - softplus(t)) -> exp(0) = 1.

Keeping the two parts of softplus apart is what keeps small log-probabilities accurate: the
Bernoulli log-probability x t - softplus(t) is ``(x t - max(t, 0)) - softplus(-|t|)``, whose
first difference is exact for x in {0, 1}; written as ``x t - softplus(t)`` it cancels to 0 for
the likely outcome once softplus(-|t|) < ulp(t) / 2 (t >= 15 in float32, t >= 34 in float64).

log-sum-exp shifts out the max m (Murphy 2012, eq. 3.74): log sum_k e^{a_k} = m + log sum_k
e^{a_k - m}. When every a_k is -inf (all importance weights zero), m = -inf and a - m would be
-inf - (-inf) = NaN; the shift is then 0 instead, and the answer is log 0 = -inf.

Each function checks only that its argument is a float32/float64 ndarray (and, for the reductions
over the last axis, that the axis exists and is not empty): these are the kernels of the hot paths,
and NaN or inf arguments have their IEEE answers (softplus(inf) = inf, logmeanexp of all -inf is
-inf), so values are not scanned.

``expm1mx(v) = e^v - 1 - v`` is the part of a Gaussian KL that cancels near the prior
(KL(N(mu, s^2) || N(0, 1)) = (expm1mx(2 log s) + mu^2) / 2): for |v| < 1/2 it is summed from its
Taylor series v^2/2! + v^3/3! + ... up to v^9/9! in float32 and v^15/15! in float64 (the first
term left out is below eps/4 of the sum), elsewhere ``expm1(v) - v`` loses at most a few ulps.
"""
from __future__ import annotations

import math

import numpy as np

from .validate import check_float_array


def _check(name, a, *, last_axis=False):
    check_float_array(name, a, finite=False)
    if last_axis and (a.ndim == 0 or a.shape[-1] == 0):
        raise ValueError(f"{name} must have a last axis of at least one entry to reduce over, "
                         f"got shape {a.shape}")
    return a


def softplus_neg_abs(t: np.ndarray) -> np.ndarray:
    """softplus(-|t|) = log1p(e^{-|t|}) = softplus(t) - max(t, 0), in (0, log 2], dtype of ``t``."""
    _check("t", t)
    tmp = np.abs(t)                  # one scratch array reused in place: fewer large allocations
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=tmp)           # log1p(e^-|t|)
    return tmp


def softplus(t: np.ndarray) -> np.ndarray:
    """log(1 + e^t) = max(t, 0) + softplus(-|t|) elementwise, in the dtype of ``t``."""
    _check("t", t)
    out = np.maximum(t, t.dtype.type(0))
    out += softplus_neg_abs(t)
    return out


def sigmoid(t: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-t) elementwise, in the dtype of ``t``."""
    _check("t", t)
    return np.exp(t - softplus(t))


def _shift(a: np.ndarray) -> np.ndarray:
    """max_k a_k over the last axis (keepdims), replaced by 0 where it is not finite.

    -inf (every a_k = -inf) would turn a - m into NaN; +inf or NaN give inf or NaN either way.
    """
    m = a.max(axis=-1, keepdims=True)
    return np.where(np.isfinite(m), m, m.dtype.type(0))


def logmeanexp(a: np.ndarray) -> np.ndarray:
    """log (1/K) sum_k exp(a_k) over the last axis, with the max shifted out: (..., K) -> (...,).

    m + log mean exp(a - m) with m = max_k a_k, so no exp overflows and the largest term is 1.
    All a_k = -inf gives -inf (not NaN); any a_k = +inf gives +inf; NaN propagates.
    """
    m = _shift(_check("a", a, last_axis=True))
    with np.errstate(divide="ignore"):                           # log 0 = -inf is the answer
        return (m + np.log(np.exp(a - m).mean(axis=-1, keepdims=True)))[..., 0]


def logsumexp(a: np.ndarray) -> np.ndarray:
    """log sum_k exp(a_k) over the last axis, max shifted out: (..., K) -> (...,). See logmeanexp."""
    m = _shift(_check("a", a, last_axis=True))
    with np.errstate(divide="ignore"):
        return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def softmax(a: np.ndarray) -> np.ndarray:
    """exp(a_k - logsumexp(a)) over the last axis, max-shifted: the derivative of logsumexp."""
    _check("a", a, last_axis=True)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# 1/n! for n = n_max, ..., 3, 2: Horner coefficients of (e^v - 1 - v) / v^2 = sum_n v^(n-2) / n!.
# For |v| < 1/2 the first omitted term over the sum is < 2 (1/2)^(n_max - 1) / (n_max + 1)!:
# 2e-9 for n_max = 9 (float32 eps 1.2e-7) and 6e-18 for n_max = 15 (float64 eps 2.2e-16).
_EXPM1MX_SERIES = {np.dtype(np.float32): tuple(1.0 / math.factorial(n) for n in range(9, 1, -1)),
                   np.dtype(np.float64): tuple(1.0 / math.factorial(n) for n in range(15, 1, -1))}


def expm1mx(v: np.ndarray) -> np.ndarray:
    """e^v - 1 - v >= 0 elementwise with full relative accuracy, also near v = 0; dtype of ``v``.

    Taylor series for |v| < 1/2 (no cancellation: every term has the sign of v^2 / 2 for v > 0,
    and alternates with decreasing size for v < 0), ``expm1(v) - v`` elsewhere (cancellation at
    most a factor ~8 there). Overflows to +inf for v above log(max float), like e^v.
    """
    _check("v", v)
    dt, series = v.dtype.type, _EXPM1MX_SERIES[v.dtype]
    poly = np.full_like(v, dt(series[0]))
    for c in series[1:]:
        poly *= v
        poly += dt(c)
    small = np.abs(v) < dt(0.5)
    with np.errstate(over="ignore"):                             # e^v = inf is the answer there
        return np.where(small, poly * v * v, np.expm1(v) - v)


def flush_subnormals(a: np.ndarray) -> None:
    """Round the subnormal entries of ``a`` (|a| < finfo.tiny: 1.2e-38 in float32) to 0, in place.

    (a + c) - c with c = 4 tiny / eps: ulp(c) >= 2 tiny, so every |a| < tiny rounds to c and back
    to 0, and every |a| > 2 c / eps (7e-24 in float32) is unchanged; entries in between move by
    at most 3e-38. Why: x86 matrix products take a slow path on subnormal operands. The IWAE
    weights softmax(log_weights) of samples far worse than the best are e^-87 and below, so about
    1% of the gradient at the decoder output is subnormal, and the two backward products of the
    output layer ran 2.4x slower at K = 50 (bench/README.md). Adam's decaying moments
    (scratchvae.optim) are flushed the same way. It is a change: a flushed gradient is not
    bit-identical to the unflushed one, only equal to well below its rounding error.
    """
    _check("a", a)
    info = np.finfo(a.dtype)
    c = a.dtype.type(4 * info.tiny / info.eps)   # float32: 4.0e-31, float64: 4.0e-292
    a += c
    a -= c
