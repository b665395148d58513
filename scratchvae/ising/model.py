"""The Ising denoising model as data: the model and result types, the two noise channels with
their per-pixel log-likelihoods, input checks and the error rate.

The equations (prior, likelihoods, mean-field update, ELBO) are stated in the docstring of
:mod:`scratchvae.ising`, which runs inference on these models and re-exports every name here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validate import (check_bool, check_float_array, check_in_range, check_int, check_positive,
                        check_rng, check_same_dtype, check_same_shape)


@dataclass(frozen=True, eq=False)
class IsingModel:
    """Posterior p(z | x) of the Ising denoising model, stored as per-pixel likelihood terms.

    Build one with :func:`gaussian_model`, :func:`flip_model` or :func:`model_from_log_lik`
    (they validate); the constructor only stores its arguments.

    Attributes
    ----------
    half_log_odds : np.ndarray, shape (H, W)
        h = (l(+1) - l(-1)) / 2.
    mean_log_lik : np.ndarray, shape (H, W)
        c = (l(+1) + l(-1)) / 2, so that l(s) = c + s h.
    coupling : float
        J, the weight W_ij of every edge.
    neighbours : int
        4 or 8.
    """
    half_log_odds: np.ndarray
    mean_log_lik: np.ndarray
    coupling: float
    neighbours: int = 4

    @property
    def shape(self) -> tuple:
        return self.half_log_odds.shape


@dataclass(eq=False)
class IsingResult:
    """Output shared by mean field, threshold, ICM and Gibbs (see ``scratchvae.ising.baselines.denoise``).

    Attributes
    ----------
    method : str
    mean : np.ndarray, shape (H, W)
        Posterior-mean estimate of z in [-1, 1] (mu for mean field, z for ICM/threshold,
        the average of the kept samples for Gibbs).
    trace : np.ndarray, shape (n_sweeps + 1,)
        Entry 0 is the initial state, entry k the state after sweep k: the ELBO for mean field,
        the energy -log p~(z, x) for ICM and Gibbs (empty for threshold).
    trace_label : str
    n_sweeps : int
    converged : bool
    seconds_per_sweep : float
        Wall time of the update steps only (the trace evaluation is not counted).
    snapshots : dict
        sweep -> (H, W) copy of ``mean`` after that sweep, for the sweeps asked in ``record``.
    """
    method: str
    mean: np.ndarray
    trace: np.ndarray
    trace_label: str
    n_sweeps: int
    converged: bool
    seconds_per_sweep: float
    snapshots: dict = field(default_factory=dict)

    @property
    def estimate(self) -> np.ndarray:
        """The decoded image sign(mean) in {-1, +1} (mean == 0 maps to +1), shape (H, W)."""
        return np.where(self.mean >= 0, 1, -1).astype(self.mean.dtype)


# ---------------------------------------------------------------- validation helpers
def check_image(name: str, x, *, spins: bool = False) -> np.ndarray:
    """Require a finite non-empty 2-D float array; with ``spins`` (True or False) every value
    must be -1 or +1."""
    check_bool("spins", spins)
    check_float_array(name, x, ndim=2)
    if x.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) image, got shape {x.shape}")
    if spins and not np.all((x == 1) | (x == -1)):
        bad = np.unique(x[(x != 1) & (x != -1)])[:5]
        raise ValueError(f"{name} must contain only -1 and +1 (a binary image), got other values "
                         f"such as {bad.tolist()}")
    return x


def check_model(model) -> IsingModel:
    """Require an :class:`IsingModel` (made by one of the validating factories)."""
    if not isinstance(model, IsingModel):
        raise TypeError(f"model must be an IsingModel (build one with gaussian_model, flip_model "
                        f"or model_from_log_lik), got {type(model).__name__}")
    return model


def check_mean(name: str, mu, model: IsingModel) -> np.ndarray:
    """Require mean parameters of the model's shape and dtype with values in [-1, 1]."""
    check_model(model)
    check_float_array(name, mu, ndim=2)
    check_same_shape(name, mu, "model.half_log_odds", model.half_log_odds)
    check_same_dtype(name, mu, "model.half_log_odds", model.half_log_odds)
    if np.any(np.abs(mu) > 1):
        raise ValueError(f"{name} must lie in [-1, 1] (means of +-1 spins), got values in "
                         f"[{mu.min()!r}, {mu.max()!r}]")
    return mu


def check_neighbours(neighbours) -> int:
    """Require the integer 4 or 8, the grid neighbourhood."""
    if check_int("neighbours", neighbours) not in (4, 8):
        raise ValueError(f"neighbours must be 4 or 8, got {neighbours}")
    return int(neighbours)


def check_structure(coupling, neighbours) -> tuple[float, int]:
    """Require a finite real ``coupling`` J and ``neighbours`` 4 or 8; returns (J, neighbours)."""
    return check_in_range("coupling", coupling, -np.inf, np.inf), check_neighbours(neighbours)


# ---------------------------------------------------------------- likelihoods and models
def gaussian_log_lik(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel log-likelihoods (l(+1), l(-1)) of x_i = z_i + sigma n_i, each shape (H, W).

    Notes
    -----
    l(s) = -(x - s)^2 / (2 sigma^2) - log(2 pi sigma^2) / 2; elementwise, no reduction.
    """
    check_image("x", x)
    s2 = x.dtype.type(check_positive("sigma", sigma) ** 2)
    const = x.dtype.type(0.5 * np.log(2 * np.pi * float(s2)))
    return -(x - 1) ** 2 / (2 * s2) - const, -(x + 1) ** 2 / (2 * s2) - const


def flip_log_lik(x: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel log-likelihoods (l(+1), l(-1)) of the binary symmetric channel, each (H, W).

    Notes
    -----
    x_i = -z_i with probability p, else z_i: l(s) = log(1 - p) if x == s else log(p).
    """
    check_image("x", x, spins=True)
    p = check_in_range("p", p, 0.0, 0.5, low_open=True, high_open=True)
    keep, flip = x.dtype.type(np.log1p(-p)), x.dtype.type(np.log(p))
    return np.where(x > 0, keep, flip), np.where(x < 0, keep, flip)


def model_from_log_lik(log_lik_pos, log_lik_neg, *, coupling=1.0, neighbours=4) -> IsingModel:
    """Build an :class:`IsingModel` from l(+1) and l(-1), each a (H, W) float array."""
    check_image("log_lik_pos", log_lik_pos)
    check_image("log_lik_neg", log_lik_neg)
    check_same_shape("log_lik_pos", log_lik_pos, "log_lik_neg", log_lik_neg)
    check_same_dtype("log_lik_pos", log_lik_pos, "log_lik_neg", log_lik_neg)
    J, nbrs = check_structure(coupling, neighbours)
    half = log_lik_pos.dtype.type(0.5)
    h = half * (log_lik_pos - log_lik_neg)                        # (H, W)
    c = half * (log_lik_pos + log_lik_neg)                        # (H, W)
    return IsingModel(h, c, J, nbrs)


def gaussian_model(x, sigma, *, coupling=1.0, neighbours=4) -> IsingModel:
    """Posterior for Gaussian noise of scale ``sigma`` on the observed (H, W) image ``x``."""
    return model_from_log_lik(*gaussian_log_lik(x, sigma), coupling=coupling, neighbours=neighbours)


def flip_model(x, p, *, coupling=1.0, neighbours=4) -> IsingModel:
    """Posterior for pixels flipped with probability ``p`` in (0, 0.5); ``x`` in {-1,+1}^(H, W)."""
    return model_from_log_lik(*flip_log_lik(x, p), coupling=coupling, neighbours=neighbours)


# ---------------------------------------------------------------- noise and metrics
def add_gaussian_noise(clean, sigma, rng) -> np.ndarray:
    """x = clean + sigma n, n ~ N(0, 1) from ``rng``; ``clean`` in {-1,+1}^(H, W)."""
    check_image("clean", clean, spins=True)
    sigma, rng = check_positive("sigma", sigma), check_rng("rng", rng)
    return clean + clean.dtype.type(sigma) * rng.standard_normal(clean.shape, dtype=clean.dtype)


def flip_pixels(clean, p, rng) -> np.ndarray:
    """x = -clean with probability ``p`` per pixel, else clean; ``clean`` in {-1,+1}^(H, W)."""
    check_image("clean", clean, spins=True)
    p, rng = check_in_range("p", p, 0.0, 0.5, low_open=True, high_open=True), check_rng("rng", rng)
    return np.where(rng.random(clean.shape) < p, -clean, clean)


def error_rate(mean, clean) -> float:
    """Fraction of pixels where sign(mean) (0 -> +1) differs from ``clean`` in {-1,+1}^(H, W)."""
    check_image("mean", mean)
    check_image("clean", clean, spins=True)
    check_same_shape("mean", mean, "clean", clean)
    return float(np.mean(np.where(mean >= 0, 1, -1) != clean))
