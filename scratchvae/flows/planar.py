"""Planar flow (Rezende & Mohamed 2015, sec. 4.1 and appendix A.1), amortized, with its backward.

    f(z) = z + u_hat tanh(w.z + b)                                  z, u, w (..., D), b (...,)
    log|det df/dz| = log|1 + u_hat.psi(z)|,   psi(z) = tanh'(w.z + b) w

f is invertible when w.u_hat >= -1 (their appendix A.1). The raw ``u`` an encoder emits is
mapped to a ``u_hat`` that satisfies this for every raw (u, w):

    u_hat = u + (m(w.u) - w.u) w / |w|^2,     m(a) = -1 + softplus(a),

so that w.u_hat = m(w.u) > -1. The determinant is then 1 + tanh'(a) m with a = w.z + b; since
tanh' = 1 - tanh^2, it equals

    g = tanh(a)^2 + (1 - tanh(a)^2) softplus(w.u)              (two terms, both >= 0)

which is how it is computed: ``1 + tanh'(a) m`` would cancel to 0 in floating point when
m -> -1 (u huge and anti-aligned with w) and |a| -> 0. g is 0 only if a == 0 exactly and
softplus(w.u) underflows (w.u below about -745 in float64, -104 in float32).

Gradients are with respect to the raw u, w, b (through the u -> u_hat map) and z.
"""
from __future__ import annotations

import numpy as np

from ..stable import sigmoid, softplus
from ..validate import check_cache
from .params import check_nonzero, check_params, check_upstream, check_z, layout_functions


def _constrain(u, w, wsq):
    """u_hat and the pieces its backward needs (no checks).

    u_hat = u + c w with c = (m - w.u) / |w|^2 is computed as u_perp + (m / |w|^2) w, where
    u_perp = u - (w.u / |w|^2) w is projected a second time ("twice is enough", Gram-Schmidt):
    when |u| >> 1 along w the first projection leaves a rounding residue of order eps |u| |w|
    along w, which would let w.u_hat dip below -1. The second pass is exactly zero in real
    arithmetic, so the derivative (and the backward) is that of u + c w.
    """
    wu = (w * u).sum(-1)                                         # (...,)
    sp = softplus(wu)                                            # (...,)
    m = sp - u.dtype.type(1)                                     # (...,)  m(w.u) = -1 + softplus
    coef = (m - wu) / wsq                                        # (...,)  (m - w.u) / |w|^2
    u_perp = u - (wu / wsq)[..., None] * w                       # (..., D)
    u_perp -= ((w * u_perp).sum(-1) / wsq)[..., None] * w        # second pass
    u_hat = u_perp + (m / wsq)[..., None] * w                    # (..., D)  w.u_hat = m
    return u_hat, (wu, sp, wsq, coef)


def planar_constrain(u, w):
    """u_hat = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a), so that w.u_hat > -1.

    Parameters
    ----------
    u, w : ndarray (..., D)
        Raw parameters; same shape and dtype; w nonzero in every example.

    Returns
    -------
    u_hat : ndarray (..., D)
    """
    D = check_z(u, "u")
    check_params(u, {"w": (w, (D,))}, z_name="u")
    wsq = (w * w).sum(-1)                                        # (...,)
    check_nonzero("w", wsq, "u_hat divides by |w|^2")
    return _constrain(u, w, wsq)[0]


def planar_forward(z, u, w, b):
    """z_new = z + u_hat tanh(w.z + b) and log|det dz_new/dz| = log(t^2 + (1 - t^2) softplus(w.u)).

    Parameters
    ----------
    z, u, w : ndarray (..., D)
        Input point and raw parameters (u is mapped to u_hat by :func:`planar_constrain`).
    b : ndarray (...,)
        Bias; z's leading axes. All arrays share z's dtype.

    Returns
    -------
    ``(z_new (..., D), log_abs_det (...,), cache)``, the cache for :func:`planar_backward`.

    Notes
    -----
    Forward: w.u; sp = softplus(w.u); c = (sp - 1 - w.u) / |w|^2; u_hat = u + c w;
    a = w.z + b; t = tanh(a); z_new = z + t u_hat; g = t^2 + (1 - t^2) sp; log_abs_det = log g.
    Backward: see :func:`planar_backward`.
    """
    D = check_z(z)
    check_params(z, {"u": (u, (D,)), "w": (w, (D,)), "b": (b, ())})
    wsq = (w * w).sum(-1)                                        # (...,)
    check_nonzero("w", wsq, "u_hat divides by |w|^2")
    u_hat, pieces = _constrain(u, w, wsq)
    t = np.tanh((w * z).sum(-1) + b)                             # (...,)
    z_new = z + t[..., None] * u_hat                             # (..., D)
    one = z.dtype.type(1)
    g = t * t + (one - t * t) * pieces[1]                        # (...,)  1 + u_hat.psi
    return z_new, np.log(g), (z, u, w, u_hat, t, g, pieces)


def planar_backward(dz_new, dlog_abs_det, cache):
    """Gradients of sum(z_new * dz_new) + sum(log_abs_det * dlog_abs_det): dict(z, u, w, b).

    ``dz_new`` (..., D); ``dlog_abs_det`` (...,) or None (zeros). Pure: writes none of its inputs.

    Notes
    -----
    In reverse order of the forward (dg = dlog_abs_det / g):
    log g:          dt = dg 2t (1 - sp);  dsp = dg (1 - t^2)
    z_new:          dz = dz_new;  du_hat = t dz_new;  dt += dz_new.u_hat
    t = tanh(a):    da = dt (1 - t^2);  dz += da w;  dw = da z;  db = da
    u_hat = u + cw: du = du_hat;  dc = du_hat.w;  dw += c du_hat
    c:              dsp += dc / |w|^2;  dwu = -dc / |w|^2;  dw += -2 c dc w / |w|^2
    sp = softplus:  dwu += dsp sigmoid(w.u);  du += dwu w;  dw += dwu u
    """
    z, u, w, u_hat, t, g, (wu, sp, wsq, coef) = check_cache(cache, 7, "planar_forward")
    dlog_abs_det = check_upstream(dz_new, dlog_abs_det, z.shape, z.dtype)
    one, two = z.dtype.type(1), z.dtype.type(2)
    dg = dlog_abs_det / g                                        # (...,)
    dt = dg * two * t * (one - sp)                               # (...,)
    dsp = dg * (one - t * t)                                     # (...,)
    du_hat = t[..., None] * dz_new                               # (..., D)
    dt = dt + (dz_new * u_hat).sum(-1)                           # (...,)
    da = dt * (one - t * t)                                      # (...,)
    dz = dz_new + da[..., None] * w                              # (..., D)
    dw = da[..., None] * z + coef[..., None] * du_hat            # (..., D)
    dcoef = (du_hat * w).sum(-1)                                 # (...,)
    dsp = dsp + dcoef / wsq                                      # (...,)
    dwu = -dcoef / wsq + dsp * sigmoid(wu)                       # (...,)
    dw += (-two * coef * dcoef / wsq)[..., None] * w             # d|w|^2 / dw = 2w
    du = du_hat + dwu[..., None] * w                             # (..., D)
    dw += dwu[..., None] * u                                     # (..., D)
    return {"z": dz, "u": du, "w": dw, "b": da}


def _layout(D: int) -> tuple:
    return (("u", D), ("w", D), ("b", None))


planar_n_params, planar_unpack, planar_pack_grads = layout_functions(
    "planar", _layout, "u", "2D + 1: u (D), w (D), b (1)")
