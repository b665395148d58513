"""Householder flow (Tomczak & Welling 2016), amortized, with its backward.

One layer reflects z in the hyperplane orthogonal to v:

    z_new = H z,   H = I - 2 v v^T / |v|^2        (Tomczak & Welling 2016, sec. 3)

H is symmetric and orthogonal (H H = I, so the layer is its own inverse) with det H = -1, hence
the flow is volume preserving: log|det dz_new/dz| = 0. A chain of K layers, one reflection
vector v_k each, reaches any orthogonal matrix for K = D (every orthogonal D x D matrix is a
product of at most D reflections), which turns a diagonal-covariance Gaussian into a
full-covariance one.

With c = v.z / |v|^2, z_new = z - 2 c v, and the backward (``dz_new`` upstream) is

    dz = H dz_new = dz_new - 2 (v.dz_new / |v|^2) v
    dv = -2 [c dz_new + (v.dz_new / |v|^2) z_new]

(the second line: dc = -2 v.dz_new and dc/dv = (z - 2 c v) / |v|^2 = z_new / |v|^2).
"""
from __future__ import annotations

import numpy as np

from ..validate import check_cache
from .params import check_nonzero, check_params, check_upstream, check_z, layout_functions


def reflect(z, v):
    """z_new = z - 2 (v.z / |v|^2) v and a cache for :func:`reflect_backward`.

    No checks: the building block for flows that validated z and v at their own door
    (:func:`householder_forward`, ``sylvester.householder_sylvester_forward``).
    """
    vv = (v * v).sum(-1)                                          # (...,)
    c = (v * z).sum(-1) / vv                                      # (...,)
    z_new = z - z.dtype.type(2) * c[..., None] * v                # (..., D)
    return z_new, (v, vv, c, z_new)


def reflect_backward(dz_new, cache):
    """(dz, dv) of sum(z_new * dz_new) for :func:`reflect` (no checks)."""
    v, vv, c, z_new = cache
    two = v.dtype.type(2)
    k = (v * dz_new).sum(-1) / vv                                 # (...,)  v.dz_new / |v|^2
    dz = dz_new - two * k[..., None] * v                          # (..., D)
    dv = -two * (c[..., None] * dz_new + k[..., None] * z_new)    # (..., D)
    return dz, dv


def householder_forward(z, v):
    """z_new = (I - 2 v v^T / |v|^2) z; log_abs_det = 0 (a reflection preserves volume).

    Parameters
    ----------
    z, v : ndarray (..., D)
        Input point and reflection vector (nonzero in every example); same dtype.

    Returns
    -------
    z_new : ndarray (..., D)
    log_abs_det : ndarray (...,)
        Zeros, returned so that every flow layer has one signature.
    cache : tuple
        For :func:`householder_backward`.

    Notes
    -----
    Forward: c = v.z / |v|^2; z_new = z - 2 c v.
    Backward: k = v.dz_new / |v|^2; dz = dz_new - 2 k v; dv = -2 (c dz_new + k z_new).
    """
    D = check_z(z)
    check_params(z, {"v": (v, (D,))})
    check_nonzero("v", (v * v).sum(-1), "H divides by |v|^2")
    z_new, cache = reflect(z, v)
    return z_new, np.zeros(z.shape[:-1], dtype=z.dtype), cache


def householder_backward(dz_new, dlog_abs_det, cache):
    """Gradients dict(z, v) of sum(z_new * dz_new); log_abs_det is constant, dlog_abs_det drops out.

    ``dz_new`` (..., D); ``dlog_abs_det`` (...,) or None. Pure: writes none of its inputs.
    """
    z_new = check_cache(cache, 4, "householder_forward")[3]
    check_upstream(dz_new, dlog_abs_det, z_new.shape, z_new.dtype)
    dz, dv = reflect_backward(dz_new, cache)
    return {"z": dz, "v": dv}


def _layout(D: int) -> tuple:
    return (("v", D),)


householder_n_params, householder_unpack, householder_pack_grads = layout_functions(
    "householder", _layout, "v", "D: the reflection vector v")
