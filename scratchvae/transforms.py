"""Reparameterizations z = g(eps, phi) with their log-Jacobian-determinant, forward and backward.

The seed formula (Kingma & Welling 2019, §2.4.4, eq. 2.33; the reparameterization itself is
Kingma & Welling 2014, §2.4): if eps ~ p(eps) = N(0, I) and z = g(eps, phi) is invertible in eps,
then

    log q(z | x) = log p(eps) - log |det dz/deps|.

Two families (Kingma & Welling 2019, §2.5 factorized and §2.5.1 full-covariance Gaussian):

    diagonal      z = loc + exp(log_scale) * eps     dz/deps = diag(exp(log_scale))
                  log |det dz/deps| = sum_i log_scale_i
    full (tril)   z = loc + L eps, L lower triangular, L_ii > 0     dz/deps = L
                  log |det dz/deps| = sum_i log L_ii   (a triangular matrix's determinant is the
                  product of its diagonal)

and the map from an encoder's unconstrained outputs to a valid Cholesky factor:

    L = diag(exp(log_diag)) + (strictly lower triangle filled from offdiag).

Each forward returns ``(z, log_abs_det, cache)`` (or ``(L, cache)``), batched over leading axes;
each backward takes the upstream gradients and the cache and returns a dict of gradients keyed by
the forward's argument names, each of its argument's shape. Backward is pure: it never writes its
inputs, and any number of forwards may run before their backwards.

Errors: forward inputs of the wrong type, dtype or shape, or holding NaN or inf, are refused with
TypeError / ValueError naming the argument. An upstream gradient of the wrong type, dtype or shape
likewise; one holding NaN or inf raises ``FloatingPointError`` (``scratchvae.validate.check_gradient``):
inside training that is how diverging parameters show up (the VAE's full-covariance encoder at
log L_ii ~ -100 in float32 gives a finite objective but 1 / L_ii = inf), and FloatingPointError
is what the trainer reports as divergence.
"""
from __future__ import annotations

import numpy as np

from .validate import check_cache, check_float_array, check_gradient, check_same_dtype, check_same_shape
from .distributions import HALF_LOG_2PI, check_scale_tril


def _check_vectors(**arrays) -> None:
    """All arrays finite float, at least 1-D, with one shape and one dtype (the first's)."""
    (name0, a0), *rest = arrays.items()
    check_float_array(name0, a0)
    if a0.ndim < 1:
        raise ValueError(f"{name0} must have shape (..., D) with at least one axis, got {a0.shape}")
    for name, a in rest:
        check_float_array(name, a)
        check_same_dtype(name, a, name0, a0)
        check_same_shape(name, a, name0, a0)


def _check_upstream(dz, dlog_abs_det, eps):
    """dz like eps (..., D); dlog_abs_det (...,) or None (meaning zeros). Returns dlog_abs_det."""
    check_gradient("dz", dz, shape=eps.shape, dtype=eps.dtype, like="the forward's eps")
    if dlog_abs_det is None:
        return np.zeros(eps.shape[:-1], dtype=eps.dtype)
    return check_gradient("dlog_abs_det", dlog_abs_det, shape=eps.shape[:-1], dtype=eps.dtype,
                          like="the forward's eps")


def diagonal_affine(eps, loc, log_scale):
    """z = loc + exp(log_scale) * eps and log|det dz/deps| = sum of log_scale over the last axis.

    Parameters
    ----------
    eps, loc, log_scale : ndarray (..., D)
        Noise, mean and log sigma; one shape and one dtype (no broadcasting).

    Returns
    -------
    ``(z (..., D), log_abs_det (...,), cache)``, the cache for :func:`diagonal_affine_backward`.

    Notes
    -----
    Forward: s = exp(log_scale); z = loc + s * eps; log_abs_det = sum_i log_scale_i.
    Backward: deps = dz * s; dloc = dz; dlog_scale = dz * s * eps + dlog_abs_det.
    """
    _check_vectors(eps=eps, loc=loc, log_scale=log_scale)
    scale = np.exp(log_scale)                      # (..., D)
    z = loc + scale * eps                          # (..., D)
    log_abs_det = log_scale.sum(-1)                # (...,)
    return z, log_abs_det, (eps, scale)


def diagonal_affine_backward(dz, dlog_abs_det, cache):
    """Gradients of sum(z * dz) + sum(log_abs_det * dlog_abs_det): dict(eps, loc, log_scale).

    ``dz`` (..., D); ``dlog_abs_det`` (...,) or None for zeros. See :func:`diagonal_affine`.
    """
    eps, scale = check_cache(cache, 2, "diagonal_affine")
    dlog_abs_det = _check_upstream(dz, dlog_abs_det, eps)
    deps = dz * scale                                          # (..., D)
    dloc = dz.copy()                                           # (..., D)
    dlog_scale = dz * scale * eps + dlog_abs_det[..., None]    # (..., D)
    return {"eps": deps, "loc": dloc, "log_scale": dlog_scale}


def tril_affine(eps, loc, scale_tril):
    """z = loc + L eps and log|det dz/deps| = sum_i log L_ii, with L = ``scale_tril``.

    Parameters
    ----------
    eps, loc : ndarray (..., D)
        Noise and mean; same shape and dtype.
    scale_tril : ndarray (..., D, D)
        Lower triangular with strictly positive diagonal (refused otherwise).

    Returns
    -------
    ``(z (..., D), log_abs_det (...,), cache)``, the cache for :func:`tril_affine_backward`.

    Notes
    -----
    Forward: z = loc + L eps; log_abs_det = sum_i log L_ii.
    Backward: deps = L^T dz; dloc = dz; dL = tril(dz eps^T) + diag(dlog_abs_det / L_ii)
    (only the lower triangle is a parameter: entries above the diagonal get 0).
    """
    _check_vectors(eps=eps, loc=loc)
    check_scale_tril("scale_tril", scale_tril, loc)
    z = loc + (scale_tril @ eps[..., None])[..., 0]            # (..., D)
    diag = np.diagonal(scale_tril, axis1=-2, axis2=-1)         # (..., D)
    log_abs_det = np.log(diag).sum(-1)                         # (...,)
    return z, log_abs_det, (eps, scale_tril, diag)


def tril_affine_backward(dz, dlog_abs_det, cache):
    """Gradients of sum(z * dz) + sum(log_abs_det * dlog_abs_det): dict(eps, loc, scale_tril).

    ``dz`` (..., D); ``dlog_abs_det`` (...,) or None for zeros. See :func:`tril_affine`.
    """
    eps, L, diag = check_cache(cache, 3, "tril_affine")
    dlog_abs_det = _check_upstream(dz, dlog_abs_det, eps)
    deps = (np.swapaxes(L, -1, -2) @ dz[..., None])[..., 0]   # (..., D)   L^T dz
    dloc = dz.copy()                                           # (..., D)
    dL = np.tril(dz[..., :, None] * eps[..., None, :])         # (..., D, D)
    i = np.arange(eps.shape[-1])
    dL[..., i, i] += dlog_abs_det[..., None] / diag            # d/dL_ii of sum log L_ii
    return {"eps": deps, "loc": dloc, "scale_tril": dL}


def tril_from_params(log_diag, offdiag):
    """Cholesky factor L from unconstrained numbers: diag exp(log_diag), strict lower = offdiag.

    Parameters
    ----------
    log_diag : ndarray (..., D)
        Log of the diagonal of L (any real number gives L_ii > 0).
    offdiag : ndarray (..., D(D-1)/2), dtype of ``log_diag``
        Strictly-lower entries in ``np.tril_indices(D, -1)`` order (row-major: L_10, L_20, L_21, ...).

    Returns
    -------
    L : ndarray (..., D, D)
    cache : tuple
        For :func:`tril_from_params_backward`.

    Notes
    -----
    Forward: L[i, j] = offdiag[k] for the k-th (i > j) of np.tril_indices(D, -1);
    L[i, i] = exp(log_diag[i]); zeros above the diagonal.
    Backward: doffdiag[k] = dL[i, j]; dlog_diag[i] = dL[i, i] * exp(log_diag[i]).
    exp(log_diag) over- or underflows for |log_diag| beyond ~88 (float32) / ~709 (float64); a later
    ``tril_affine`` then refuses L with an error naming ``scale_tril``.
    """
    check_float_array("log_diag", log_diag)
    if log_diag.ndim < 1:
        raise ValueError(f"log_diag must have shape (..., D) with at least one axis, got {log_diag.shape}")
    D = log_diag.shape[-1]
    check_float_array("offdiag", offdiag, shape=log_diag.shape[:-1] + (D * (D - 1) // 2,),
                      like=f"log_diag of shape {log_diag.shape} (D(D-1)/2 = {D * (D - 1) // 2} per row)")
    check_same_dtype("offdiag", offdiag, "log_diag", log_diag)
    rows, cols = np.tril_indices(D, -1)
    i = np.arange(D)
    L = np.zeros(log_diag.shape + (D,), dtype=log_diag.dtype)  # (..., D, D)
    L[..., rows, cols] = offdiag
    diag = np.exp(log_diag)                                    # (..., D)
    L[..., i, i] = diag
    return L, (diag,)


def tril_from_params_backward(dL, cache):
    """Gradients dict(log_diag (..., D), offdiag (..., D(D-1)/2)) from dL (..., D, D).

    Entries of ``dL`` above the diagonal are ignored (L does not depend on anything there).
    See :func:`tril_from_params`. NaN or inf in ``dL`` raises FloatingPointError (see the module
    docstring: a Cholesky diagonal near underflow makes d/dL_ii of log L_ii overflow).
    """
    (diag,) = check_cache(cache, 1, "tril_from_params")
    D = diag.shape[-1]
    check_gradient("dL", dL, shape=diag.shape + (D,), dtype=diag.dtype, like="the forward's L")
    rows, cols = np.tril_indices(D, -1)
    i = np.arange(D)
    return {"log_diag": dL[..., i, i] * diag, "offdiag": dL[..., rows, cols]}


def log_q_via_jacobian(eps, log_abs_det):
    """log q(z) = sum_i log N(eps_i; 0, 1) - log|det dz/deps|, the change-of-variables density.

    Parameters
    ----------
    eps : ndarray (..., D)
        The noise that produced z.
    log_abs_det : ndarray (...,)
        From :func:`diagonal_affine` or :func:`tril_affine`; eps's dtype.

    Returns
    -------
    log_q : ndarray (...,)

    Notes
    -----
    Forward: log_q = sum_i (-eps_i^2/2 - log(2 pi)/2) - log_abs_det.
    Backward (:func:`log_q_via_jacobian_backward`): deps = -dlog_q * eps; dlog_abs_det = -dlog_q.
    """
    check_float_array("eps", eps)
    if eps.ndim < 1:
        raise ValueError(f"eps must have shape (..., D) with at least one axis, got {eps.shape}")
    check_float_array("log_abs_det", log_abs_det, shape=eps.shape[:-1], dtype=eps.dtype, like="eps")
    D = eps.shape[-1]
    log_p_eps = -eps.dtype.type(0.5) * (eps * eps).sum(-1) - eps.dtype.type(D * HALF_LOG_2PI)  # (...,)
    return log_p_eps - log_abs_det


def log_q_via_jacobian_backward(dlog_q, eps):
    """Gradients dict(eps (..., D), log_abs_det (...,)) of sum(log_q * dlog_q); dlog_q (...,)."""
    check_float_array("eps", eps)
    if eps.ndim < 1:
        raise ValueError(f"eps must have shape (..., D) with at least one axis, got {eps.shape}")
    check_gradient("dlog_q", dlog_q, shape=eps.shape[:-1], dtype=eps.dtype, like="eps")
    return {"eps": -dlog_q[..., None] * eps, "log_abs_det": -dlog_q}
