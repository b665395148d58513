"""Exact inference for tiny Ising grids by enumerating all 2^(H W) states (H W <= 16).

Same model as :mod:`scratchvae.ising` (Murphy 2012 §21.3.2)::

    log Z(x)   = log sum_z p~(z, x)                   (log-sum-exp with the max shifted out)
    E[z_i | x] = sum_z z_i exp(log p~(z, x) - log Z(x))
    ELBO(mu)   = sum_z q(z) [log p~(z, x) - log q(z)],  q(z) = prod_i (1 + z_i mu_i) / 2

The last line is the brute-force oracle for the closed-form ``ising.elbo``; Jensen gives
ELBO(mu) <= log Z(x) for every mu, with equality only if p(z | x) factorizes. A 4 x 4 grid has
65,536 states: a (65536, 4, 4) float64 array of 8 MB.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, xlogy

from ..validate import check_dtype, check_int_sequence
from .mean_field import IsingModel, log_joint_unchecked, check_mean, check_model

MAX_PIXELS = 16


def all_states(shape: tuple, dtype=np.float64) -> np.ndarray:
    """Every configuration of +-1 spins on a grid of ``shape``: array (2^(H W), H, W).

    ``shape`` is (H, W), two integers >= 1 with H W <= 16; ``dtype`` float32, float64 or a signed
    integer type. TypeError / ValueError naming the argument otherwise.
    """
    shape = tuple(check_int_sequence("shape", shape, minimum=1))
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), two integers, got {shape}")
    dtype = check_dtype("dtype", dtype, integers=True)
    n = int(np.prod(shape))
    if n > MAX_PIXELS:
        raise ValueError(f"exact enumeration needs H * W <= {MAX_PIXELS} (4 x 4), "
                         f"got shape {shape}")
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1       # (2^n, n)
    return (2 * bits - 1).astype(dtype).reshape((2 ** n,) + tuple(shape))


def _log_weights(model: IsingModel) -> np.ndarray:
    check_model(model)
    return log_joint_unchecked(model, all_states(model.shape, model.half_log_odds.dtype))  # (2^n,)


def log_partition(model: IsingModel) -> float:
    """log Z(x) = log sum_z p~(z, x) over all 2^(H W) states (log Z0 dropped, as in the ELBO)."""
    return float(logsumexp(_log_weights(model)))


def marginal_means(model: IsingModel) -> np.ndarray:
    """Exact posterior means E[z_i | x], shape (H, W)."""
    check_model(model)
    states = all_states(model.shape, model.half_log_odds.dtype)   # (S, H, W)
    lw = log_joint_unchecked(model, states)                                 # (S,)
    w = np.exp(lw - logsumexp(lw))                                 # p(z | x), (S,)
    return np.tensordot(w, states, axes=1)                         # (H, W)


def brute_force_elbo(model: IsingModel, mu) -> float:
    """sum_z q(z) [log p~(z, x) - log q(z)] by enumeration; oracle for ``ising.elbo``."""
    check_mean("mu", mu, model)
    states = all_states(model.shape, mu.dtype)                     # (S, H, W)
    q_i = 0.5 * (1 + states * mu)                                  # q_i(z_i), (S, H, W)
    q = np.prod(q_i, axis=(-2, -1))                                # (S,)
    return float(np.sum(q * log_joint_unchecked(model, states)) - np.sum(xlogy(q, q)))
