"""Sylvester flows (van den Berg, Hasenclever, Tomczak & Welling 2018), amortized, with backward.

    z_new = z + Q R h(R~ Q^T z + b)                    (their sec. 3; h = tanh here)

with Q orthogonal (D x D), R and R~ upper triangular, b (..., D). By Sylvester's determinant
identity det(I + A B) = det(I + B A), and because a product of upper triangular
matrices is upper triangular with the product of the diagonals on its diagonal,

    det dz_new/dz = det(I + diag(h'(pre)) R~ R) = prod_i (1 + r~_ii r_ii h'(pre_i)),
    pre = R~ Q^T z + b.

Invertibility. Their sec. 3 proves the map invertible when r_ii r~_ii > -1 / ||h'||_inf and R~ is
invertible (h smooth with bounded positive derivative; ||tanh'||_inf = 1). With triangular R, R~
the first condition alone suffices: in y = Q^T z coordinates, coordinate i of Q^T z_new is
y_i + r_ii tanh(r~_ii y_i + c_i) + e_i, with c_i and e_i depending on y_{i+1}, ..., y_D only; it
is strictly increasing in y_i when 1 + r_ii r~_ii tanh' > 0, so back-substitution from i = D
down to 1 inverts the map (``tests/test_flows.py`` inverts it this way, by bisection). As in the
released code of the paper (github.com/riannevdberg/sylvester-flows, ``models/VAE.py``: "Diagonal
elements of r1 * r2 have to satisfy -1 < r1 * r2 for flow to be invertible", with
``diag_activation = nn.Tanh()``), the encoder's raw diagonal entries pass through tanh,

    r_ii = tanh(raw_r_diag_i),   r~_ii = tanh(raw_r_tilde_diag_i),   so r_ii r~_ii in (-1, 1).

Off-diagonal entries are used as given. (In floating point tanh rounds to +-1 beyond |raw| ~ 19 in
float64, ~10 in float32, so r_ii r~_ii = -1 can occur; the map stays invertible, since
t -> t - tanh(t) is still strictly increasing, and log|det| is finite except where pre_i == 0.)

Each factor is computed as the sum of two terms that are both >= 0,

    1 + rho h'(pre) = tanh(pre)^2 + (1 - tanh(pre)^2)(1 + rho),     rho = r_ii r~_ii,

which avoids the cancellation of 1 + rho h' when rho -> -1 and pre -> 0.

Two choices of Q:
- triangular (T-SNF): Q = I, or the reversal permutation P (Pz = z[::-1]) when ``reverse=True``;
  alternate the flag from layer to layer so that each coordinate sees all others (their sec. 3).
- Householder (H-SNF): Q = H_1 H_2 ... H_K, products of reflections (``householder.reflect``), so
  Q^T z = H_K ... H_1 z; the vectors come as ``v (..., K, D)``.

Upper triangular matrices are built from the diagonal (..., D) and the strictly upper entries
(..., D(D-1)/2) in ``np.triu_indices(D, 1)`` order (row-major: R_01, R_02, ..., R_12, ...).
"""
from __future__ import annotations

import numpy as np

from ..validate import check_cache, check_float_array, check_int
from .householder import reflect, reflect_backward
from .params import (check_nonzero, check_params, check_upstream, check_z, grad_size,
                     layout_functions, n_params, pack, unpack)


def _upper(diag, offdiag):
    D = diag.shape[-1]
    rows, cols = np.triu_indices(D, 1)
    R = np.zeros(diag.shape + (D,), dtype=diag.dtype)            # (..., D, D)
    R[..., rows, cols] = offdiag
    R[..., np.arange(D), np.arange(D)] = diag
    return R


def _matvec(A, x):
    return (A @ x[..., None])[..., 0]                            # (..., D)


def _core_forward(y, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b):
    """out = R tanh(R~ y + b) and sum_i log(1 + r_ii r~_ii tanh'(pre_i)), with y = Q^T z."""
    one = y.dtype.type(1)
    r_diag, rt_diag = np.tanh(raw_r_diag), np.tanh(raw_r_tilde_diag)  # (..., D)
    R, Rt = _upper(r_diag, r_offdiag), _upper(rt_diag, r_tilde_offdiag)  # (..., D, D)
    t = np.tanh(_matvec(Rt, y) + b)                              # (..., D)  h(pre)
    out = _matvec(R, t)                                          # (..., D)
    dh = one - t * t                                             # (..., D)  h'(pre)
    rho = r_diag * rt_diag                                       # (..., D)
    term = t * t + dh * (one + rho)                              # (..., D)  1 + rho h'
    return out, np.log(term).sum(-1), (y, R, Rt, r_diag, rt_diag, t, dh, rho, term)


def _core_backward(dout, dlog_abs_det, cache):
    """(dy, dict of the raw parameters' gradients) for :func:`_core_forward`."""
    y, R, Rt, r_diag, rt_diag, t, dh, rho, term = cache
    one, two = y.dtype.type(1), y.dtype.type(2)
    rows, cols = np.triu_indices(y.shape[-1], 1)
    dterm = dlog_abs_det[..., None] / term                       # (..., D)
    dt = _matvec(np.swapaxes(R, -1, -2), dout) - two * rho * t * dterm  # (..., D)
    drho = dterm * dh                                            # (..., D)
    dpre = dt * dh                                               # (..., D)
    dy = _matvec(np.swapaxes(Rt, -1, -2), dpre)                  # (..., D)
    dr_diag = dout * t + drho * rt_diag                          # (..., D)
    drt_diag = dpre * y + drho * r_diag                          # (..., D)
    return dy, {"raw_r_diag": dr_diag * (one - r_diag * r_diag),
                "r_offdiag": dout[..., rows] * t[..., cols],     # (..., D(D-1)/2)
                "raw_r_tilde_diag": drt_diag * (one - rt_diag * rt_diag),
                "r_tilde_offdiag": dpre[..., rows] * y[..., cols],  # (..., D(D-1)/2)
                "b": dpre}


def _check_core(z, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b, extra=None):
    D = check_z(z)
    M = D * (D - 1) // 2
    check_params(z, {**(extra or {}), "raw_r_diag": (raw_r_diag, (D,)),
                     "r_offdiag": (r_offdiag, (M,)), "raw_r_tilde_diag": (raw_r_tilde_diag, (D,)),
                     "r_tilde_offdiag": (r_tilde_offdiag, (M,)), "b": (b, (D,))})


def triangular_sylvester_forward(z, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b,
                                 *, reverse=False):
    """z_new = z + Q R tanh(R~ Q^T z + b) with Q = I, or the reversal permutation if ``reverse``.

    Parameters
    ----------
    z, b : ndarray (..., D)
    raw_r_diag, raw_r_tilde_diag : ndarray (..., D)
        Raw diagonals: r_ii = tanh(raw_r_diag_i), r~_ii = tanh(raw_r_tilde_diag_i).
    r_offdiag, r_tilde_offdiag : ndarray (..., D(D-1)/2)
        Strictly upper entries of R and R~, ``np.triu_indices(D, 1)`` order.
    reverse : bool
        Q = P (z[..., ::-1]) instead of Q = I; alternate it between layers.

    Returns
    -------
    ``(z_new (..., D), log_abs_det (...,), cache)``, the cache for :func:`triangular_sylvester_backward`.

    Notes
    -----
    Forward: y = Q^T z; r = tanh(raw_r_diag); r~ = tanh(raw_r_tilde_diag); t = tanh(R~ y + b);
    z_new = z + Q R t; log_abs_det = sum_i log(t_i^2 + (1 - t_i^2)(1 + r_ii r~_ii)).
    Backward (dz_new, dl; dout = Q^T dz_new; dterm = dl / term):
    dR = dout t^T (upper part); dt = R^T dout - 2 rho t dterm; drho = dterm (1 - t^2);
    dpre = dt (1 - t^2); db = dpre; dR~ = dpre y^T (upper part); dy = R~^T dpre;
    dr_ii += drho r~_ii; dr~_ii += drho r_ii; draw = dr (1 - r^2); dz = dz_new + Q dy.
    """
    _check_core(z, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b)
    y = z[..., ::-1] if reverse else z                           # (..., D)  Q^T z
    out, log_abs_det, cache = _core_forward(y, raw_r_diag, r_offdiag, raw_r_tilde_diag,
                                            r_tilde_offdiag, b)
    z_new = z + (out[..., ::-1] if reverse else out)             # (..., D)
    return z_new, log_abs_det, (bool(reverse), cache)


def triangular_sylvester_backward(dz_new, dlog_abs_det, cache):
    """Gradients of sum(z_new * dz_new) + sum(log_abs_det * dlog_abs_det), keyed like the forward.

    dict(z, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b). ``dz_new`` (..., D);
    ``dlog_abs_det`` (...,) or None (zeros). Pure: writes none of its inputs.
    """
    reverse, core = check_cache(cache, 2, "triangular_sylvester_forward")
    dl = check_upstream(dz_new, dlog_abs_det, core[0].shape, core[0].dtype)
    dy, grads = _core_backward(dz_new[..., ::-1] if reverse else dz_new, dl, core)
    return {"z": dz_new + (dy[..., ::-1] if reverse else dy), **grads}


def householder_sylvester_forward(z, v, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag,
                                  b):
    """z_new = z + Q R tanh(R~ Q^T z + b) with Q = H(v_1) H(v_2) ... H(v_K), K reflections.

    Parameters
    ----------
    z : ndarray (..., D)
    v : ndarray (..., K, D)
        Reflection vectors, K >= 1, each nonzero; H(v) = I - 2 v v^T / |v|^2.
    raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b
        As in :func:`triangular_sylvester_forward`.

    Returns
    -------
    ``(z_new (..., D), log_abs_det (...,), cache)``, the cache for :func:`householder_sylvester_backward`.

    Notes
    -----
    Forward: y = H_K ... H_1 z; (out, log_abs_det) as in the triangular flow with y;
    z_new = z + H_1 ... H_K out.
    Backward: dout = H_K ... H_1 dz_new (each reflection's backward, collecting dv_k);
    the triangular core's backward gives dy; dz = dz_new + H_1 ... H_K dy (collecting dv_k again).
    """
    D = check_z(z)
    check_float_array("v", v)
    if v.ndim != z.ndim + 1 or v.shape[-1] != D or v.shape[-2] < 1:
        raise ValueError(f"v must have shape {z.shape[:-1]} + (n_reflections >= 1, {D}) (z's "
                         f"leading axes and D of z, shape {z.shape}), got {v.shape}")
    _check_core(z, raw_r_diag, r_offdiag, raw_r_tilde_diag, r_tilde_offdiag, b,
                extra={"v": (v, v.shape[-2:])})
    check_nonzero("v", (v * v).sum(-1), "H(v_k) divides by |v_k|^2")
    K = v.shape[-2]
    y, into = z, []
    for k in range(K):                                           # Q^T z = H_K ... H_1 z
        y, c = reflect(y, v[..., k, :])
        into.append(c)
    out, log_abs_det, core = _core_forward(y, raw_r_diag, r_offdiag, raw_r_tilde_diag,
                                           r_tilde_offdiag, b)
    back = []
    for k in reversed(range(K)):                                 # Q out = H_1 ... H_K out
        out, c = reflect(out, v[..., k, :])
        back.append(c)
    return z + out, log_abs_det, (v.shape, into, core, back[::-1])


def householder_sylvester_backward(dz_new, dlog_abs_det, cache):
    """Gradients keyed like :func:`householder_sylvester_forward`: dict(z, v, raw_r_diag, ...).

    ``dz_new`` (..., D); ``dlog_abs_det`` (...,) or None (zeros). Pure: writes none of its inputs.
    """
    v_shape, into, core, back = check_cache(cache, 4, "householder_sylvester_forward")
    y = core[0]
    dl = check_upstream(dz_new, dlog_abs_det, y.shape, y.dtype)
    dv = np.zeros(v_shape, dtype=y.dtype)                        # (..., K, D)
    dout = dz_new
    for k, c in enumerate(back):                                 # undo H_1 first: it ran last
        dout, dv_k = reflect_backward(dout, c)
        dv[..., k, :] += dv_k
    dy, grads = _core_backward(dout, dl, core)
    for k in reversed(range(len(into))):                         # undo H_K first: it ran last
        dy, dv_k = reflect_backward(dy, into[k])
        dv[..., k, :] += dv_k
    return {"z": dz_new + dy, "v": dv, **grads}


def _layout(D: int, n_reflections: int = 0) -> tuple:
    M = D * (D - 1) // 2
    v = (("v", (n_reflections, D)),) if n_reflections else ()
    return v + (("raw_r_diag", D), ("r_offdiag", M), ("raw_r_tilde_diag", D),
                ("r_tilde_offdiag", M), ("b", D))


(triangular_sylvester_n_params, triangular_sylvester_unpack,
 triangular_sylvester_pack_grads) = layout_functions(
    "triangular_sylvester", _layout, "b",
    "D^2 + 2D: two raw diagonals (D each), two strict upper triangles (D(D-1)/2 each), b (D)")


def householder_sylvester_n_params(D: int, n_reflections: int) -> int:
    """K D + D^2 + 2D raw numbers per example: v (K, D) first, then as the triangular flow."""
    return n_params(_layout(check_int("D", D, minimum=1),
                            check_int("n_reflections", n_reflections, minimum=1)))


def householder_sylvester_unpack(raw, n_reflections: int):
    """dict(v (..., K, D), raw_r_diag, ...) as views of raw (..., K D + D^2 + 2D); K given."""
    K = check_int("n_reflections", n_reflections, minimum=1)
    return unpack(raw, lambda D: _layout(D, K), "householder_sylvester")


def householder_sylvester_pack_grads(grads):
    """Inverse of :func:`householder_sylvester_unpack` for gradients: (..., K D + D^2 + 2D)."""
    return pack(grads, _layout(grad_size(grads, "b"), grad_size(grads, "v", axis=-2)))
