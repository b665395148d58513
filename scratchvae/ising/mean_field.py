"""Mean-field inference for Ising image denoising (Murphy 2012, MLaPP §21.3.2).

Model
-----
Hidden image z in {-1,+1}^(H x W), observed image x of the same shape::

    prior       p(z) = exp(-E0(z)) / Z0,        E0(z) = - sum_{i~j} W_ij z_i z_j
                W_ij = J for the 4 (or 8) grid neighbours of i, 0 otherwise; free boundary;
                the sum runs over each edge i~j ONCE.
    likelihood  p(x | z) = prod_i exp(l_i(z_i)),   l_i(s) = log p(x_i | z_i = s)
                Gaussian:  x_i = z_i + sigma n_i,
                           l_i(s) = -(x_i - s)^2 / (2 sigma^2) - log(2 pi sigma^2) / 2
                flips:     x_i = -z_i w.p. p,      l_i(s) = log(1 - p) if x_i == s else log p
    joint       log p~(z, x) = sum_{i~j} W_ij z_i z_j + sum_i l_i(z_i) = log p(z, x) + log Z0

Mean field q(z) = prod_i q_i(z_i), mu_i = E_q[z_i] in [-1, 1], q_i(+1) = (1 + mu_i) / 2::

    m_i = sum_{j in nbr(i)} W_ij mu_j
    a_i = m_i + h_i,          h_i = (l_i(+1) - l_i(-1)) / 2     (precomputed once)
                              Gaussian: h_i = x_i / sigma^2;  flips: h_i = x_i log((1 - p) / p) / 2
    mu_i <- (1 - lam) mu_i + lam tanh(a_i)                      (damping lam in (0, 1])

The sign matters: h_i > 0 when x_i favours z_i = +1, so mu is the denoised image, not its
negative (a widely copied port uses l(-1) - l(+1) and returns the photographic negative).

ELBO (exact for mean field; no sampling)::

    L(mu) = E_q[log p~(z, x)] + H(q)
          = sum_{i~j} W_ij mu_i mu_j + sum_i (c_i + h_i mu_i) + sum_i H_i
    c_i   = (l_i(+1) + l_i(-1)) / 2                             (so that l_i(s) = c_i + s h_i)
    H_i   = log 2 - [(1 + mu_i) log(1 + mu_i) + (1 - mu_i) log(1 - mu_i)] / 2
    L(mu) <= log Z(x) = log sum_z p~(z, x) = log p(x) + log Z0.

The only constant dropped is log Z0, the prior's (intractable) partition function; the l_i keep
their normalizing constants. Counting each edge once makes the book's update the exact
coordinate-ascent step of this ELBO (dL/dmu_i = a_i - atanh(mu_i)); a double sum over i and
j in nbr(i) would count every edge twice and turn the exact step into tanh(2 m_i + h_i).

Schedules: "parallel" (Jacobi: every pixel from the previous sweep; undamped it can lower the
ELBO and oscillate) and "checkerboard" (red/black; pixels of one colour share no edge, so each
half-sweep is exact block coordinate ascent and never lowers the ELBO, for any lam in (0, 1]).
With 8 neighbours the diagonal edges need four colours, (i mod 2, j mod 2).

Baselines (threshold, ICM, Gibbs) and the common ``denoise`` interface: ``scratchvae.ising.baselines``;
exact enumeration for tiny grids: ``scratchvae.ising.exact``; per-pixel loop reference: ``scratchvae.ising.reference``.
"""
from __future__ import annotations

import functools
import time

import numpy as np
from scipy.special import xlogy

from ..validate import (check_bool, check_float_array, check_in_range, check_int,
                        check_int_sequence, check_positive, check_same_shape)
from .model import (  # noqa: F401  (re-exported: the public API of this module)
    IsingModel, IsingResult, add_gaussian_noise, check_image, check_mean,
    check_model, check_neighbours, error_rate, flip_log_lik, flip_model, flip_pixels,
    gaussian_log_lik, gaussian_model, model_from_log_lik)

SCHEDULES = ("parallel", "checkerboard")


# ---------------------------------------------------------------- the vectorized engine
def neighbour_sum(mu: np.ndarray, neighbours: int = 4) -> np.ndarray:
    """s_i = sum_{j in nbr(i)} mu_j over the trailing two axes (free boundary), shape of ``mu``.

    ``mu`` is a finite float array (..., H, W); ``neighbours`` 4 or 8. TypeError / ValueError
    naming the argument otherwise.
    """
    check_float_array("mu", mu)
    if mu.ndim < 2:
        raise ValueError(f"mu must have shape (..., H, W) with at least two axes, got {mu.shape}")
    return _neighbour_sum(mu, check_neighbours(neighbours))


def _neighbour_sum(mu, neighbours):
    """:func:`neighbour_sum` without checks: the engine of every sweep and ELBO here."""
    s = np.zeros_like(mu)                                         # (..., H, W)
    s[..., 1:, :] += mu[..., :-1, :]
    s[..., :-1, :] += mu[..., 1:, :]
    s[..., :, 1:] += mu[..., :, :-1]
    s[..., :, :-1] += mu[..., :, 1:]
    if neighbours == 8:
        s[..., 1:, 1:] += mu[..., :-1, :-1]
        s[..., :-1, :-1] += mu[..., 1:, 1:]
        s[..., 1:, :-1] += mu[..., :-1, 1:]
        s[..., :-1, 1:] += mu[..., 1:, :-1]
    return s


@functools.lru_cache(maxsize=32)
def colour_masks(shape: tuple, neighbours: int = 4) -> tuple:
    """Boolean (H, W) masks of an independent-set colouring: 2 colours ((i+j) mod 2) for 4
    neighbours, 4 colours (2 (i mod 2) + j mod 2) for 8; the order used by checkerboard sweeps."""
    i, j = np.indices(shape)
    colour = (i + j) % 2 if neighbours == 4 else 2 * (i % 2) + j % 2
    masks = tuple(colour == c for c in range(2 if neighbours == 4 else 4))
    for m in masks:
        m.flags.writeable = False
    return masks


def local_field(model: IsingModel, mu: np.ndarray) -> np.ndarray:
    """a = J * neighbour_sum(mu) + h, shape (H, W), for means ``mu`` (H, W) in [-1, 1]."""
    return _local_field(model, check_mean("mu", mu, model))


def _local_field(model, mu):
    J = mu.dtype.type(model.coupling)
    return J * _neighbour_sum(mu, model.neighbours) + model.half_log_odds


# Each colour of ``colour_masks`` as (row parity, column parity) sub-lattices mu[r0::2, c0::2].
_SUBLATTICES = {4: (((0, 0), (1, 1)), ((0, 1), (1, 0))),
                8: (((0, 0),), ((0, 1),), ((1, 0),), ((1, 1),))}
_OFFSETS = {4: ((-1, 0), (1, 0), (0, -1), (0, 1))}
_OFFSETS[8] = _OFFSETS[4] + ((-1, -1), (-1, 1), (1, -1), (1, 1))


def _checkerboard_sweep(model: IsingModel, mu: np.ndarray, lam) -> np.ndarray:
    """Colour by colour, updating only that colour's pixels, in a zero-padded copy of mu.

    Equivalent to ``np.where(mask, (1-lam) mu + lam tanh(a), mu)`` per colour mask, but works on
    strided sub-lattices so each pixel's tanh is computed once per sweep (about 2.5x faster).
    """
    H, W = mu.shape
    P = np.zeros((H + 2, W + 2), dtype=mu.dtype)                  # zero border = free boundary
    P[1:-1, 1:-1] = mu
    J = mu.dtype.type(model.coupling)
    for colour in _SUBLATTICES[model.neighbours]:
        for r0, c0 in colour:
            nr, nc = (H - r0 + 1) // 2, (W - c0 + 1) // 2          # sub-lattice shape
            if nr == 0 or nc == 0:
                continue
            at = lambda di, dj: P[1 + r0 + di:r0 + di + 2 * nr:2, 1 + c0 + dj:c0 + dj + 2 * nc:2]
            m = sum(at(di, dj) for di, dj in _OFFSETS[model.neighbours])  # (nr, nc)
            own = at(0, 0)                                                 # view into P
            own += lam * (np.tanh(J * m + model.half_log_odds[r0::2, c0::2]) - own)
    return P[1:-1, 1:-1].copy()


def _sweep(model: IsingModel, mu: np.ndarray, schedule: str, damping: float) -> np.ndarray:
    lam = mu.dtype.type(damping)
    if schedule == "parallel":
        return mu + lam * (np.tanh(_local_field(model, mu)) - mu)  # (1-lam) mu + lam tanh(a)
    return _checkerboard_sweep(model, mu, lam)


def check_schedule(schedule, damping) -> float:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return check_in_range("damping", damping, 0.0, 1.0, low_open=True)


def mean_field_sweep(model: IsingModel, mu, *, schedule="parallel", damping=1.0) -> np.ndarray:
    """One mean-field sweep; returns the new means, shape (H, W) (``mu`` is not modified).

    Parameters
    ----------
    model : IsingModel
    mu : np.ndarray, shape (H, W), values in [-1, 1]
    schedule : {"parallel", "checkerboard"}
    damping : float in (0, 1]
        lam in mu_i <- (1 - lam) mu_i + lam tanh(a_i).

    Notes
    -----
    a = J neighbour_sum(mu) + h; parallel updates every pixel from the old mu at once;
    checkerboard updates each colour of :func:`colour_masks` in turn with the newest mu.
    """
    damping = check_schedule(schedule, damping)
    return _sweep(model, check_mean("mu", mu, model), schedule, damping)


def _binary_entropy(mu: np.ndarray) -> np.ndarray:
    # H = log 2 - [(1+mu) log(1+mu) + (1-mu) log(1-mu)] / 2, with 0 log 0 = 0 at mu = +-1 (xlogy)
    return np.log(2.0) - 0.5 * (xlogy(1 + mu, 1 + mu) + xlogy(1 - mu, 1 - mu))


def _elbo(model: IsingModel, mu: np.ndarray) -> float:
    s = _neighbour_sum(mu, model.neighbours)                      # (H, W)
    pair = 0.5 * model.coupling * np.sum(mu * s)                  # each edge once
    lik = np.sum(model.mean_log_lik + model.half_log_odds * mu)
    return float(pair + lik + np.sum(_binary_entropy(mu)))


def elbo(model: IsingModel, mu) -> float:
    """Exact mean-field ELBO E_q[log p~(z, x)] + H(q) (log Z0 dropped) for means ``mu`` (H, W).

    Notes
    -----
    L = sum_{i~j} J mu_i mu_j + sum_i (c_i + h_i mu_i) + sum_i H_b((1 + mu_i) / 2).
    """
    return _elbo(model, check_mean("mu", mu, model))


def log_joint(model: IsingModel, z) -> np.ndarray:
    """log p~(z, x) = sum_{i~j} J z_i z_j + sum_i (c_i + h_i z_i) for z of shape (..., H, W).

    Returns shape (...,). Energy = -log_joint. Works for any real z; spins are z in {-1,+1}.
    """
    check_model(model)
    check_float_array("z", z)
    if z.shape[-2:] != model.shape:
        raise ValueError(f"z must have shape (..., {model.shape[0]}, {model.shape[1]}), "
                         f"got {z.shape}")
    return log_joint_unchecked(model, z)


def log_joint_unchecked(model: IsingModel, z: np.ndarray) -> np.ndarray:
    pair = 0.5 * model.coupling * np.sum(z * _neighbour_sum(z, model.neighbours), axis=(-2, -1))
    return pair + np.sum(model.mean_log_lik + model.half_log_odds * z, axis=(-2, -1))


def initial_mean(model: IsingModel, init, x=None) -> np.ndarray:
    """Starting means, shape (H, W).

    "likelihood" -> tanh(h) (each q_i from its likelihood alone); "data" -> clip(x, -1, 1) (the
    book's mu = x, clipped because the mean of a +-1 spin lies in [-1, 1] and the entropy of q
    is undefined outside); or an explicit (H, W) array of means.
    """
    check_model(model)
    if isinstance(init, np.ndarray):
        return check_mean("init", init, model).copy()
    if init == "likelihood":
        return np.tanh(model.half_log_odds)
    if init == "data":
        if x is None:
            raise ValueError("init='data' needs the observed image x")
        check_image("x", x)
        check_same_shape("x", x, "model.half_log_odds", model.half_log_odds)
        return np.clip(x, -1, 1).astype(model.half_log_odds.dtype)
    raise ValueError(f"init must be 'likelihood', 'data' or an (H, W) array, got {init!r}")


def mean_field(model: IsingModel, *, schedule="parallel", damping=0.5, max_sweeps=15, tol=0.0,
               init="likelihood", x=None, record=(), track_elbo=True) -> IsingResult:
    """Run mean-field sweeps until max |mu_new - mu_old| < ``tol`` or ``max_sweeps`` sweeps.

    Parameters
    ----------
    model : IsingModel
    schedule : {"parallel", "checkerboard"}
    damping : float in (0, 1]
    max_sweeps : int >= 0
    tol : float >= 0
        0 runs exactly ``max_sweeps`` sweeps (the textbook experiment).
    init : "likelihood", "data" or np.ndarray of shape (H, W)
        See :func:`initial_mean`; "data" needs ``x``.
    record : sequence of int >= 0
        Sweeps after which to keep a copy of mu in ``result.snapshots``.
    track_elbo : bool (True or False)
        If False the trace is empty (pure speed measurement).

    Returns
    -------
    IsingResult
        ``mean`` = mu (H, W); ``trace`` = ELBO after each sweep (entry 0 = initial mu).
    """
    check_model(model)
    damping = check_schedule(schedule, damping)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=0)
    tol = check_positive("tol", tol, strict=False)
    record = set(check_int_sequence("record", record, minimum=0))
    track_elbo = check_bool("track_elbo", track_elbo)
    mu = initial_mean(model, init, x)
    trace = [_elbo(model, mu)] if track_elbo else []
    snapshots = {0: mu.copy()} if 0 in record else {}
    seconds, converged, sweep = 0.0, False, 0
    while sweep < max_sweeps and not converged:
        t0 = time.perf_counter()
        new = _sweep(model, mu, schedule, damping)
        seconds += time.perf_counter() - t0
        converged = bool(np.max(np.abs(new - mu)) < tol)
        mu, sweep = new, sweep + 1
        if track_elbo:
            trace.append(_elbo(model, mu))
        if sweep in record:
            snapshots[sweep] = mu.copy()
    return IsingResult(f"mean_field/{schedule}", mu, np.asarray(trace), "ELBO", sweep, converged,
                       seconds / max(sweep, 1), snapshots)
