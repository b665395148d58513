"""The four 2-D test energies of Rezende & Mohamed (2015), with gradients and log Z by quadrature.

Rezende & Mohamed (2015), Table 1 and Fig. 3, define unnormalized densities p~(z) = exp(-U(z)) on
z = (z1, z2) with

    w1 = sin(2 pi z1 / 4),   w2 = 3 exp(-((z1 - 1) / 0.6)^2 / 2),   w3 = 3 sigmoid((z1 - 1) / 0.3)

    U1(z) = ((|z| - 2) / 0.4)^2 / 2 - log[exp(-((z1 - 2) / 0.6)^2 / 2) + exp(-((z1 + 2) / 0.6)^2 / 2)]
    U2(z) = ((z2 - w1) / 0.4)^2 / 2
    U3(z) = -log[exp(-((z2 - w1) / 0.35)^2 / 2) + exp(-((z2 - w1 + w2) / 0.35)^2 / 2)]
    U4(z) = -log[exp(-((z2 - w1) / 0.4)^2 / 2) + exp(-((z2 - w1 + w3) / 0.35)^2 / 2)]

U2, U3 and U4 do not grow along z1 (a band that follows a sine wave forever), so exp(-U) has an
infinite integral and neither log Z nor KL(q || p) exists. Here they get a wall in z1,

    U_k(z) + E(z1),   E(z1) = (z1 / s)^4 / 2,   s = ``ENVELOPE_SCALE`` = 3,

which leaves the density above 90 % of the paper's for |z1| <= 2, at 61 % for |z1| = 3 and 21 % for
|z1| = 4 (the edge of the paper's plots), and below 1 % for |z1| > 5.3. (Stimper's ``normflows``
package adds a quartic envelope to its sinusoidal targets for the same reason.) U1 decays in every
direction and is used as published.

Because each of U2..U4 is a Gaussian in z2 (or a two-component mixture of Gaussians) whose scale
does not depend on z1, the z2 integral is a constant and log Z has a closed form,

    Z_k = c_k * integral exp(-E(z1)) dz1 = c_k * 2 Gamma(5/4) 2^(1/4) s,
    c_2 = 0.4 sqrt(2 pi),  c_3 = 2 (0.35) sqrt(2 pi),  c_4 = (0.4 + 0.35) sqrt(2 pi)

(:func:`log_normalizer_closed_form`), an independent check of the quadrature (:func:`log_normalizer`).

Every ``log_p_tilde_k(z)`` takes z (..., 2) and returns ``(log_p, grad_log_p)``: log p~(z) = -U(z)
of shape (...,) and d log p~ / dz of shape (..., 2), in z's dtype.
"""
from __future__ import annotations

import math

import numpy as np

from ..stable import sigmoid
from ..validate import check_callable, check_float_array, check_positive

ENVELOPE_SCALE = 3.0
HALF_PI = 0.5 * math.pi


def _check_z(z) -> None:
    check_float_array("z", z)
    if z.ndim < 1 or z.shape[-1] != 2:
        raise ValueError(f"z must have shape (..., 2), got {z.shape}")


def _log_add_exp(a1, grad_a1, a2, grad_a2):
    """log(e^a1 + e^a2) and its gradient p1 grad_a1 + p2 grad_a2, p1 = sigmoid(a1 - a2) = 1 - p2."""
    p1 = sigmoid(a1 - a2)[..., None]                              # (..., 1)
    return np.logaddexp(a1, a2), p1 * grad_a1 + (1 - p1) * grad_a2


def _gaussian_band(resid, scale, grad_resid):
    """a = -(resid / scale)^2 / 2 and grad a = -(resid / scale^2) grad_resid."""
    c = resid / scale                                            # (...,)
    return -0.5 * c * c, (-c / scale)[..., None] * grad_resid    # (...,), (..., 2)


def _envelope(z):
    """-E(z1) = -(z1 / s)^4 / 2 and its gradient (-2 z1^3 / s^4, 0)."""
    t = z[..., 0] / ENVELOPE_SCALE                               # (...,)
    grad = np.zeros_like(z)                                      # (..., 2)
    grad[..., 0] = -2 * t ** 3 / ENVELOPE_SCALE
    return -0.5 * t ** 4, grad


def _enveloped(z, log_p, grad):
    """(log_p - E(z1), grad - grad E): a band target made integrable along z1."""
    env, grad_env = _envelope(z)
    return log_p + env, grad + grad_env


def _w1(z):
    """w1 = sin(pi z1 / 2) and grad (w1' = (pi / 2) cos(pi z1 / 2), 0)."""
    grad = np.zeros_like(z)                                      # (..., 2)
    grad[..., 0] = HALF_PI * np.cos(HALF_PI * z[..., 0])
    return np.sin(HALF_PI * z[..., 0]), grad


def _band_residual(z):
    """r = z2 - w1(z1) and grad r = (-w1', 1)."""
    w1, grad_w1 = _w1(z)
    grad = -grad_w1
    grad[..., 1] = 1
    return z[..., 1] - w1, grad


def log_p_tilde_1(z):
    """-U1(z): a ring of radius 2 with two lobes at z1 = +-2 (no envelope needed).

    Parameters
    ----------
    z : ndarray (..., 2)

    Returns
    -------
    log_p : ndarray (...,)
    grad_log_p : ndarray (..., 2)

    Notes
    -----
    log_p = -((r - 2) / 0.4)^2 / 2 + log(e^a1 + e^a2), r = |z|, a_pm = -((z1 -+ 2) / 0.6)^2 / 2.
    grad: -((r - 2) / 0.4^2) z / r  +  (p1 da1 + p2 da2) e_1 with da_pm = -(z1 -+ 2) / 0.6^2.
    At z = 0 the ring term's gradient (whose direction is undefined there) is taken as 0.
    """
    _check_z(z)
    r = np.sqrt((z * z).sum(-1))                                 # (...,)
    r_safe = np.where(r > 0, r, 1)                               # z / r_safe = 0 at the origin
    ring, grad = _gaussian_band(r - 2, 0.4, z / r_safe[..., None])
    e1 = np.zeros_like(z)
    e1[..., 0] = 1
    lobes, grad_lobes = _log_add_exp(*_gaussian_band(z[..., 0] - 2, 0.6, e1),
                                     *_gaussian_band(z[..., 0] + 2, 0.6, e1))
    return ring + lobes, grad + grad_lobes


def log_p_tilde_2(z):
    """-U2(z) - E(z1): a band of width 0.4 around z2 = sin(pi z1 / 2).

    Same arguments and returns as :func:`log_p_tilde_1`.

    Notes
    -----
    log_p = -((z2 - w1) / 0.4)^2 / 2 - (z1 / s)^4 / 2;
    grad = -((z2 - w1) / 0.4^2) (-w1', 1) + (-2 z1^3 / s^4, 0).
    """
    _check_z(z)
    resid, grad_resid = _band_residual(z)
    band, grad = _gaussian_band(resid, 0.4, grad_resid)
    return _enveloped(z, band, grad)


def _two_bands(z, width_1, shift, dshift):
    """log(e^a1 + e^a2) - E(z1): a1 the band of width ``width_1``, a2 the band of width 0.35
    shifted down by ``shift`` (its derivative in z1 is ``dshift``), both (...,)."""
    resid, grad_resid = _band_residual(z)
    grad_shift = grad_resid.copy()                               # (..., 2)
    grad_shift[..., 0] += dshift
    log_p, grad = _log_add_exp(*_gaussian_band(resid, width_1, grad_resid),
                               *_gaussian_band(resid + shift, 0.35, grad_shift))
    return _enveloped(z, log_p, grad)


def log_p_tilde_3(z):
    """-U3(z) - E(z1): the band splits in two around z1 = 1 (the second shifted down by w2).

    Same arguments and returns as :func:`log_p_tilde_1`.

    Notes
    -----
    log_p = log(e^a1 + e^a2) - E, a1 = -((z2 - w1) / 0.35)^2 / 2, a2 = -((z2 - w1 + w2) / 0.35)^2 / 2;
    grad a1 = -((z2 - w1) / 0.35^2) (-w1', 1), grad a2 = -((z2 - w1 + w2) / 0.35^2) (-w1' + w2', 1),
    w2' = -w2 (z1 - 1) / 0.6^2.
    """
    _check_z(z)
    w2 = 3 * np.exp(-0.5 * ((z[..., 0] - 1) / 0.6) ** 2)        # (...,)
    return _two_bands(z, 0.35, w2, -w2 * (z[..., 0] - 1) / 0.36)


def log_p_tilde_4(z):
    """-U4(z) - E(z1): the band steps down by w3 = 3 sigmoid((z1 - 1) / 0.3), leaving a copy behind.

    Same arguments and returns as :func:`log_p_tilde_1`.

    Notes
    -----
    log_p = log(e^a1 + e^a2) - E, a1 = -((z2 - w1) / 0.4)^2 / 2, a2 = -((z2 - w1 + w3) / 0.35)^2 / 2;
    grad a2 = -((z2 - w1 + w3) / 0.35^2) (-w1' + w3', 1), w3' = 3 sigma (1 - sigma) / 0.3.
    """
    _check_z(z)
    sig = sigmoid((z[..., 0] - 1) / 0.3)                         # (...,)
    return _two_bands(z, 0.4, 3 * sig, 3 * sig * (1 - sig) / 0.3)


TARGETS = {"U1": log_p_tilde_1, "U2": log_p_tilde_2, "U3": log_p_tilde_3, "U4": log_p_tilde_4}

# c_k of the module docstring: the z2 integral of exp(-U_k) at fixed z1.
_Z2_INTEGRAL = {"U2": 0.4, "U3": 2 * 0.35, "U4": 0.4 + 0.35}


def log_normalizer_closed_form(name: str) -> float:
    """log Z of "U2", "U3" or "U4" (with the envelope) in closed form; see the module docstring."""
    if name not in _Z2_INTEGRAL:
        raise ValueError(f"name must be one of {sorted(_Z2_INTEGRAL)} (U1 has no closed form), "
                         f"got {name!r}")
    z1_integral = 2 * math.gamma(1.25) * 2 ** 0.25 * ENVELOPE_SCALE
    return math.log(_Z2_INTEGRAL[name] * math.sqrt(2 * math.pi) * z1_integral)


def grid(half_width: float, step: float):
    """Points z1 = z2 = -half_width, -half_width + step, ..., half_width: (n,), (n,), z (n, n, 2).

    ``z[i, j] = (z1[j], z2[i])`` (rows are z2, as ``imshow`` and ``contour`` expect).
    ``half_width / step`` must be an integer (to 1e-9), so that the grid is symmetric.
    """
    half_width = check_positive("half_width", half_width)
    step = check_positive("step", step)
    n_half = round(half_width / step)
    if abs(n_half * step - half_width) > 1e-9 * half_width:
        raise ValueError(f"half_width / step must be an integer, got {half_width} / {step} = "
                         f"{half_width / step}")
    axis = step * np.arange(-n_half, n_half + 1)                 # (n,)
    return axis, axis, np.stack(np.meshgrid(axis, axis), -1)     # (n,), (n,), (n, n, 2)


def log_normalizer(log_p_tilde, half_width: float = 8.0, step: float = 0.05) -> float:
    """log Z = log of the integral of exp(log_p_tilde(z)) over the plane, by the trapezoidal rule.

    Parameters
    ----------
    log_p_tilde : callable z (..., 2) -> (log_p (...,), grad)
        One of :data:`TARGETS` (or any function of that form whose mass lies in the box).
    half_width, step : float
        The box [-half_width, half_width]^2 and the grid step (see :func:`grid`).

    Returns
    -------
    log_Z : float

    Notes
    -----
    Z ~= step^2 sum_ij exp(log_p(z_ij)), summed as a log-sum-exp with the max shifted out. The
    integrand is negligible on the box's edge, so this is the trapezoidal rule applied along each
    axis, whose error falls exponentially in 1 / step for an integrand analytic in a strip around
    the real line that decays along it (Trefethen & Weideman 2014, SIAM Review 56(3), sec. 5).
    U1's |z| has a kink at the origin, where exp(-U1) is 3e-8 of its peak: that caps the accuracy
    near 1e-12 at step 0.05. docs/flows_2d.md gives the measured changes with the step and the box.
    """
    check_callable("log_p_tilde", log_p_tilde)
    _, _, z = grid(half_width, step)
    log_p = log_p_tilde(z)[0]                                    # (n, n)
    m = log_p.max()
    return float(m + math.log(np.exp(log_p - m).sum()) + 2 * math.log(step))
