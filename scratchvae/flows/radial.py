"""Radial flow (Rezende & Mohamed 2015, sec. 4.1 and appendix A.2), amortized, with its backward.

    f(z) = z + beta h(alpha, r) (z - z_ref),   r = |z - z_ref|,   h(alpha, r) = 1 / (alpha + r)
    det df/dz = [1 + beta h]^(D-1) [1 + beta h + beta h'(alpha, r) r]

with z_ref, the point the flow contracts towards or expands from (R&M call it z_0; here that
name belongs to a flow's base sample), an argument ``z_ref (..., D)``. f is invertible when
beta >= -alpha (their appendix A.2). The raw numbers an encoder emits are mapped to

    alpha = softplus(raw_alpha) > 0,     beta = -alpha + softplus(raw_beta) >= -alpha.

Writing s = softplus(raw_beta) (so beta = s - alpha) and using h' = -h^2, 1 - h r = alpha h:

    1 + beta h           = (r + s) / (alpha + r)
    1 + beta h - beta h^2 r = 1 + alpha beta h^2 = (r^2 + 2 alpha r + alpha s) / (alpha + r)^2

so the log-determinant is computed as a sum of logs of positive terms, without cancellation:

    log|det| = (D - 1) log(r + s) + log(r^2 + 2 alpha r + alpha s) - (D + 1) log(alpha + r).

r = |z - z_ref| is not differentiable at z = z_ref (log|det| has a kink there, z_new does not);
the backward uses dr/dz = (z - z_ref)/r where r > 0 and 0 where r == 0. log|det| is -inf only
when r == 0 and softplus(raw_beta) underflows to 0 (raw_beta below about -745 in float64): there
beta = -alpha exactly and the Jacobian is singular at z_ref, though the map stays one-to-one
(the radius r -> r^2 / (alpha + r) is still strictly increasing).
"""
from __future__ import annotations

import numpy as np

from ..stable import sigmoid, softplus
from ..validate import check_cache, check_float_array, check_same_dtype, check_same_shape
from .params import check_params, check_upstream, check_z, layout_functions


def radial_constrain(raw_alpha, raw_beta):
    """alpha = softplus(raw_alpha) > 0 and beta = -alpha + softplus(raw_beta) >= -alpha.

    Parameters
    ----------
    raw_alpha, raw_beta : ndarray (...,)
        Same shape and dtype.

    Returns
    -------
    alpha, beta : ndarray (...,)
    """
    check_float_array("raw_alpha", raw_alpha)
    check_float_array("raw_beta", raw_beta)
    check_same_dtype("raw_beta", raw_beta, "raw_alpha", raw_alpha)
    check_same_shape("raw_beta", raw_beta, "raw_alpha", raw_alpha)
    alpha = softplus(raw_alpha)                                   # (...,)
    return alpha, softplus(raw_beta) - alpha


def radial_forward(z, z_ref, raw_alpha, raw_beta):
    """z_new = z + beta (z - z_ref) / (alpha + r) and its log|det| (see the module docstring).

    Parameters
    ----------
    z, z_ref : ndarray (..., D)
        Input point and the flow's reference point.
    raw_alpha, raw_beta : ndarray (...,)
        Raw parameters, mapped by :func:`radial_constrain`. All arrays share z's dtype.

    Returns
    -------
    ``(z_new (..., D), log_abs_det (...,), cache)``, the cache for :func:`radial_backward`.

    Notes
    -----
    Forward: alpha = softplus(raw_alpha); s = softplus(raw_beta); beta = s - alpha;
    d = z - z_ref; r = |d|; h = 1 / (alpha + r); z_new = z + beta h d;
    log_abs_det = (D-1) log(r + s) + log(r^2 + 2 alpha r + alpha s) - (D+1) log(alpha + r).
    Backward: see :func:`radial_backward`.
    """
    D = check_z(z)
    check_params(z, {"z_ref": (z_ref, (D,)), "raw_alpha": (raw_alpha, ()),
                     "raw_beta": (raw_beta, ())})
    alpha = softplus(raw_alpha)                                   # (...,)
    s = softplus(raw_beta)                                        # (...,)
    beta = s - alpha                                              # (...,)
    d = z - z_ref                                                 # (..., D)
    r = np.sqrt((d * d).sum(-1))                                  # (...,)
    h = z.dtype.type(1) / (alpha + r)                             # (...,)
    z_new = z + (beta * h)[..., None] * d                         # (..., D)
    quad = r * r + z.dtype.type(2) * alpha * r + alpha * s        # (...,)
    log_abs_det = (z.dtype.type(D - 1) * np.log(r + s) + np.log(quad)
                   - z.dtype.type(D + 1) * np.log(alpha + r))     # (...,)
    return z_new, log_abs_det, (raw_alpha, raw_beta, alpha, s, beta, d, r, h, quad)


def radial_backward(dz_new, dlog_abs_det, cache):
    """Gradients of sum(z_new * dz_new) + sum(log_abs_det * dlog_abs_det).

    Returns dict(z, z_ref, raw_alpha, raw_beta), each the shape of that argument. ``dz_new``
    (..., D); ``dlog_abs_det`` (...,) or None (zeros). Pure: writes none of its inputs.

    Notes
    -----
    In reverse order of the forward (dl = dlog_abs_det):
    z_new = z + beta h d:  dz = dz_new;  dd = beta h dz_new;  dq = dz_new.d;
                           dbeta = dq h;  dh = dq beta
    h = 1/(alpha + r):     dalpha = dr = -dh h^2
    log_abs_det:           dr += dl [(D-1)/(r+s) + (2r + 2 alpha)/quad - (D+1)/(alpha+r)]
                           ds = dl [(D-1)/(r+s) + alpha/quad]
                           dalpha += dl [(2r + s)/quad - (D+1)/(alpha+r)]
    beta = s - alpha:      ds += dbeta;  dalpha -= dbeta
    r = |d|:               dd += dr d / r;  dz += dd;  dz_ref = -dd
    softplus:              draw_alpha = dalpha sigmoid(raw_alpha);  draw_beta = ds sigmoid(raw_beta)
    """
    raw_alpha, raw_beta, alpha, s, beta, d, r, h, quad = check_cache(cache, 9, "radial_forward")
    dl = check_upstream(dz_new, dlog_abs_det, d.shape, d.dtype)
    D = d.shape[-1]
    k_lo, k_hi, two = d.dtype.type(D - 1), d.dtype.type(D + 1), d.dtype.type(2)
    dq = (dz_new * d).sum(-1)                                     # (...,)
    dbeta, dh = dq * h, dq * beta                                 # (...,)
    dr = -dh * h * h                                              # (...,)
    dalpha = dr.copy()                                            # (...,)
    dr += dl * (k_lo / (r + s) + two * (r + alpha) / quad - k_hi * h)
    ds = dl * (k_lo / (r + s) + alpha / quad) + dbeta             # (...,)
    dalpha += dl * ((two * r + s) / quad - k_hi * h) - dbeta
    dir_r = np.divide(d, r[..., None], out=np.zeros_like(d), where=r[..., None] > 0)  # (..., D)
    dd = (beta * h)[..., None] * dz_new + dr[..., None] * dir_r   # (..., D)
    return {"z": dz_new + dd, "z_ref": -dd,
            "raw_alpha": dalpha * sigmoid(raw_alpha), "raw_beta": ds * sigmoid(raw_beta)}


def _layout(D: int) -> tuple:
    return (("z_ref", D), ("raw_alpha", None), ("raw_beta", None))


radial_n_params, radial_unpack, radial_pack_grads = layout_functions(
    "radial", _layout, "z_ref", "D + 2: z_ref (D), raw_alpha (1), raw_beta (1)")
