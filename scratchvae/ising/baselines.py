"""Baselines for Ising denoising and the one interface ``denoise`` shared with mean field.

Same model and notation as :mod:`scratchvae.ising` (Murphy 2012 §21.3.2): local field
a_i = J sum_{j in nbr(i)} z_j + h_i, energy E(z) = -log p~(z, x). All three baselines are
vectorized; ICM and Gibbs update one colour of :func:`~scratchvae.ising.colour_masks` at a time
(pixels of one colour share no edge, so updating them together is exactly a sequential scan).

- threshold:  z_i = sign(h_i)                     (the likelihood alone; 0 -> +1)
- ICM:        z_i <- sign(a_i), keeping z_i when a_i == 0; each colour step sets every pixel of
              that colour to its conditional mode, so E(z) never increases (Besag 1986).
- Gibbs:      z_i ~ p(z_i | z_-i), p(z_i = +1 | z_-i) = sigmoid(2 a_i) = (1 + tanh(a_i)) / 2;
              posterior mean = average of z over the sweeps after ``burn_in`` (Geman & Geman 1984).
"""
from __future__ import annotations

import time

import numpy as np

from ..validate import check_int, check_rng
from .mean_field import (IsingModel, IsingResult, local_field, log_joint_unchecked, check_mean, check_model,
                    colour_masks, mean_field)

METHODS = ("threshold", "mean_field", "icm", "gibbs")


def _spins(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, 1, -1).astype(v.dtype)              # sign with 0 -> +1, (H, W)


def _initial_spins(model: IsingModel, init, rng=None) -> np.ndarray:
    """"likelihood" -> sign(h); "random" -> uniform spins from ``rng``; or a (H, W) +-1 array."""
    h = model.half_log_odds
    if isinstance(init, np.ndarray):
        check_mean("init", init, model)
        if not np.all(np.abs(init) == 1):
            raise ValueError("init must contain only -1 and +1 spins for ICM/Gibbs")
        return init.copy()
    if init == "likelihood":
        return _spins(h)
    if init == "random":
        return np.where(check_rng("rng", rng).random(h.shape) < 0.5, 1, -1).astype(h.dtype)
    raise ValueError(f"init must be 'likelihood', 'random' or an (H, W) array of +-1, got {init!r}")


def threshold(model: IsingModel) -> IsingResult:
    """z = sign(h): the per-pixel maximum-likelihood image (no prior). Returns an IsingResult
    with ``mean`` = z (H, W), an empty trace and 0 sweeps."""
    check_model(model)
    return IsingResult("threshold", _spins(model.half_log_odds), np.empty(0), "", 0, True, 0.0)


def icm(model: IsingModel, *, max_sweeps=50, init="likelihood", record=()) -> IsingResult:
    """Iterated conditional modes with checkerboard sweeps until no pixel changes.

    Parameters
    ----------
    model : IsingModel
    max_sweeps : int >= 0
    init : "likelihood" (sign(h)) or (H, W) array of +-1
    record : iterable of int
        Sweeps after which to keep a copy of z.

    Returns
    -------
    IsingResult
        ``mean`` = z (H, W); ``trace`` = E(z) = -log p~(z, x) after each sweep (entry 0 = init).

    Notes
    -----
    For each colour c: a = J nbr_sum(z) + h; z_i <- sign(a_i) where colour(i) = c and a_i != 0.
    """
    check_model(model)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=0)
    record = {check_int("record entry", r, minimum=0) for r in record}
    z = _initial_spins(model, init)
    energy, snapshots, seconds, sweep, changed = [-float(log_joint_unchecked(model, z))], {}, 0.0, 0, True
    while sweep < max_sweeps and changed:
        t0, old = time.perf_counter(), z
        for mask in colour_masks(z.shape, model.neighbours):
            a = local_field(model, z)                             # (H, W)
            z = np.where(mask & (a != 0), _spins(a), z)
        seconds += time.perf_counter() - t0
        changed, sweep = bool(np.any(z != old)), sweep + 1
        energy.append(-float(log_joint_unchecked(model, z)))
        if sweep in record:
            snapshots[sweep] = z.copy()
    return IsingResult("icm", z, np.asarray(energy), "energy -log p~(z, x)", sweep, not changed,
                       seconds / max(sweep, 1), snapshots)


def gibbs(model: IsingModel, *, rng, n_sweeps=500, burn_in=100, init="likelihood",
          record=()) -> IsingResult:
    """Checkerboard Gibbs sampling; the posterior mean is the average of z after ``burn_in``.

    Parameters
    ----------
    model : IsingModel
    rng : numpy.random.Generator
        The only source of randomness (one uniform array per colour per sweep).
    n_sweeps : int >= 1
        Total sweeps, including the burn-in.
    burn_in : int in [0, n_sweeps)
        Sweeps discarded before averaging.
    init : "likelihood", "random" or (H, W) array of +-1
    record : iterable of int
        Sweeps after which to keep a copy of the running posterior-mean estimate.

    Returns
    -------
    IsingResult
        ``mean`` = (1 / (n_sweeps - burn_in)) sum_{t > burn_in} z^(t), shape (H, W);
        ``trace`` = energy of the current sample after each sweep (entry 0 = init).

    Notes
    -----
    For each colour c: a = J nbr_sum(z) + h; z_i <- +1 if u_i < (1 + tanh(a_i)) / 2 else -1,
    u_i ~ U(0, 1), for colour(i) = c.
    """
    check_model(model)
    rng = check_rng("rng", rng)
    n_sweeps = check_int("n_sweeps", n_sweeps, minimum=1)
    burn_in = check_int("burn_in", burn_in, minimum=0)
    if burn_in >= n_sweeps:
        raise ValueError(f"burn_in must be < n_sweeps ({n_sweeps}), got {burn_in}")
    record = {check_int("record entry", r, minimum=0) for r in record}
    z = _initial_spins(model, init, rng)
    one, half = z.dtype.type(1), z.dtype.type(0.5)
    total, energy, snapshots, seconds = np.zeros_like(z), [-float(log_joint_unchecked(model, z))], {}, 0.0
    for sweep in range(1, n_sweeps + 1):
        t0 = time.perf_counter()
        for mask in colour_masks(z.shape, model.neighbours):
            p_plus = half * (one + np.tanh(local_field(model, z)))  # p(z_i = +1 | rest), (H, W)
            z = np.where(mask, np.where(rng.random(z.shape) < p_plus, one, -one), z)
        seconds += time.perf_counter() - t0
        if sweep > burn_in:
            total += z
        energy.append(-float(log_joint_unchecked(model, z)))
        if sweep in record and sweep > burn_in:
            snapshots[sweep] = total / (sweep - burn_in)
    return IsingResult("gibbs", total / z.dtype.type(n_sweeps - burn_in), np.asarray(energy),
                       "energy -log p~(z, x)", n_sweeps, True, seconds / n_sweeps, snapshots)


def denoise(model: IsingModel, method: str = "mean_field", *, rng=None, **options) -> IsingResult:
    """One entry point for every method: ``denoise(model, "gibbs", rng=rng, n_sweeps=1000)``.

    Parameters
    ----------
    model : IsingModel
    method : {"threshold", "mean_field", "icm", "gibbs"}
    rng : numpy.random.Generator, optional
        Required by "gibbs"; the other methods are deterministic and refuse it.
    **options
        Keyword arguments of :func:`~scratchvae.ising.mean_field`, :func:`icm` or :func:`gibbs`.

    Returns
    -------
    IsingResult
        ``result.mean`` (H, W) is the posterior-mean estimate, ``result.estimate`` its sign.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "gibbs":
        return gibbs(model, rng=rng, **options)
    if rng is not None:
        raise TypeError(f"method {method!r} is deterministic and takes no rng")
    if method == "threshold":
        if options:
            raise TypeError(f"threshold takes no options, got {sorted(options)}")
        return threshold(model)
    return mean_field(model, **options) if method == "mean_field" else icm(model, **options)
