"""Random-walk Metropolis-Hastings and the diagnostics that say how much its samples are worth.

Metropolis-Hastings (Metropolis et al. 1953; Hastings 1970; Murphy 2012 §24.3) for a target
known up to a constant, log p~(z) = log p(z) + const:

    propose  z' = z + s * xi,  xi ~ N(0, I)           (symmetric: q(z'|z) = q(z|z'))
    accept   with probability  alpha = min(1, p~(z') q(z|z') / (p~(z) q(z'|z))) = min(1, p~(z') / p~(z)),
             i.e. when log u < log p~(z') - log p~(z), u ~ U(0, 1); otherwise repeat z.

The chain's states are correlated; the Monte Carlo error of a mean of N states is
Var[f] tau / N with the integrated autocorrelation time (Sokal 1997, §3; Goodman & Weare 2010)

    rho(t) = Cov(f_0, f_t) / Var(f),    tau = 1 + 2 sum_{t >= 1} rho(t),    ESS = N / tau,

estimated from the FFT autocorrelation with Sokal's self-consistent window: the smallest M with
M >= c tau_hat(M), tau_hat(M) = 1 + 2 sum_{t=1}^{M} rho_hat(t) (c = 5). An AR(1) chain
x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t has rho(t) = phi^t and tau = (1 + phi) / (1 - phi): the
known answer the estimator is tested against.

``BananaModel`` is the tiny latent model of the MCMC-vs-VI demo: z ~ N(0, I_2),
x1 | z ~ N(z1, s1^2), x2 | z ~ N(z2 + b z1^2, s2^2); its posterior p(z | x) is correlated and
bent (a "banana") when b != 0.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..validate import (check_callable, check_float_array, check_in_range, check_int,
                        check_positive, check_real, check_rng)


@dataclass
class MHResult:
    """Output of :func:`metropolis_hastings`: ``samples`` (N, D), their ``log_probs`` (N,), the
    fraction of accepted proposals among the N recorded steps, the proposal scale and wall time."""

    samples: np.ndarray
    log_probs: np.ndarray
    acceptance_rate: float
    step_size: float
    seconds: float


def metropolis_hastings(log_prob, x0, n_steps: int, step_size: float, *, rng, burn_in: int = 0):
    """Gaussian random-walk Metropolis-Hastings.

    Parameters
    ----------
    log_prob : callable (D,) -> float
        Log target density up to an additive constant (-inf outside its support).
    x0 : ndarray (D,), float64
        Starting state; log_prob(x0) must be finite.
    n_steps : int
        Recorded steps (states after each accept/reject), after ``burn_in`` discarded ones.
    step_size : float
        Proposal standard deviation s (the same in every coordinate).
    rng : numpy.random.Generator

    Returns
    -------
    MHResult

    Notes
    -----
    z' = z + s xi;  accept iff log u < log_prob(z') - log_prob(z) (symmetric proposal, so the
    Hastings correction q(z|z') / q(z'|z) is 1). The noise and the uniforms are drawn up front.
    """
    check_callable("log_prob", log_prob)
    check_float_array("x0", x0, ndim=1)
    if x0.shape[0] == 0:
        raise ValueError(f"x0 must hold at least one coordinate (D >= 1), got shape {x0.shape}")
    n_steps = check_int("n_steps", n_steps, minimum=1)
    burn_in = check_int("burn_in", burn_in, minimum=0)
    s = check_positive("step_size", step_size)
    check_rng("rng", rng)
    lp = log_prob(x0)
    if isinstance(lp, (bool, np.bool_)) or not isinstance(lp, (int, float, np.number)) or np.ndim(lp):
        raise TypeError(f"log_prob must return a real number, got {type(lp).__name__} {lp!r} for x0")
    lp = float(lp)
    if not np.isfinite(lp):
        raise ValueError(f"log_prob(x0) must be finite to start the chain, got {lp}")
    total, D = burn_in + n_steps, x0.shape[0]
    xi = rng.standard_normal((total, D)) * s                             # (T, D)
    log_u = np.log(rng.random(total))                                    # (T,)
    samples, log_probs = np.empty((n_steps, D)), np.empty(n_steps)
    x, accepted, t0 = x0.astype(np.float64), 0, time.perf_counter()
    for t in range(total):
        prop = x + xi[t]
        lp_prop = float(log_prob(prop))
        if log_u[t] < lp_prop - lp:                                      # alpha = min(1, p'/p)
            x, lp = prop, lp_prop
            accepted += t >= burn_in
        if t >= burn_in:
            samples[t - burn_in], log_probs[t - burn_in] = x, lp
    return MHResult(samples, log_probs, accepted / n_steps, s, time.perf_counter() - t0)


def autocorrelation(x, max_lag: int | None = None):
    """Normalized autocorrelation rho_hat(t), t = 0..max_lag, of each column, by FFT.

    Parameters
    ----------
    x : ndarray (N,) or (N, D)
    max_lag : int, optional (default N - 1)

    Returns
    -------
    ndarray (max_lag + 1,) or (max_lag + 1, D), with rho_hat(0) = 1.

    Notes
    -----
    c(t) = (1/N) sum_{i=0}^{N-1-t} (x_i - m)(x_{i+t} - m) (the biased estimator, which keeps
    rho_hat positive semi-definite), computed as irfft(|rfft(x - m, 2N)|^2); rho_hat = c / c(0).
    """
    check_float_array("x", x)
    if x.ndim not in (1, 2) or x.shape[0] < 2:
        raise ValueError(f"x must have shape (N,) or (N, D) with N >= 2, got {x.shape}")
    N = x.shape[0]
    max_lag = N - 1 if max_lag is None else check_int("max_lag", max_lag, minimum=0)
    if max_lag >= N:
        raise ValueError(f"max_lag must be < N = {N}, got {max_lag}")
    d = x - x.mean(0)
    n_fft = 1 << (2 * N - 1).bit_length()                                # >= 2N - 1: no wrap-around
    f = np.fft.rfft(d, n=n_fft, axis=0)
    c = np.fft.irfft(f * np.conj(f), n=n_fft, axis=0)[:max_lag + 1]     # (max_lag + 1, ...)
    if np.any(c[0] == 0):
        raise ValueError("x has a constant column (zero variance): its autocorrelation is undefined")
    return c / c[0]


def integrated_autocorr_time(x, c: float = 5.0):
    """tau = 1 + 2 sum_{t=1}^{M} rho_hat(t) with Sokal's window M = min{M : M >= c tau(M)}.

    x : (N,) or (N, D). Returns a float, or (D,) for 2-D input. If no window satisfies the
    condition (chain shorter than ~c tau), the last estimate is returned: treat it as a lower bound.
    """
    c = check_positive("c", c)
    rho = autocorrelation(x)
    taus = 2 * np.cumsum(rho, axis=0) - 1                                # tau(M) for M = 0..N-1
    M = np.arange(len(rho)).reshape((-1,) + (1,) * (rho.ndim - 1))
    ok = M >= c * taus
    idx = np.where(ok.any(0), ok.argmax(0), len(rho) - 1)
    return taus[idx] if rho.ndim == 1 else taus[idx, np.arange(rho.shape[1])]


def effective_sample_size(x, c: float = 5.0):
    """ESS = N / tau per column (see :func:`integrated_autocorr_time`)."""
    tau = integrated_autocorr_time(x, c)                                 # validates x and c
    return x.shape[0] / tau


def ar1_chain(phi: float, n: int, *, rng):
    """Stationary AR(1) chain x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, x_0 ~ N(0, 1); (n,) float64.

    Its autocorrelation is phi^t and its integrated autocorrelation time (1 + phi) / (1 - phi).
    """
    phi = check_in_range("phi", phi, -1.0, 1.0, low_open=True, high_open=True)
    n = check_int("n", n, minimum=1)
    check_rng("rng", rng)
    from scipy.signal import lfilter                                     # a linear recursion in C
    a = math.sqrt(1 - phi * phi)
    e = rng.standard_normal(n)
    e[0] /= a                                                            # so that x_0 = e_0 ~ N(0, 1)
    return lfilter([a], [1.0, -phi], e)


class BananaModel:
    """Posterior of a 2-D latent z given x = (x1, x2) in a tiny nonlinear model.

    z ~ N(0, I_2);  x1 | z ~ N(z1, s1^2);  x2 | z ~ N(z2 + b z1^2, s2^2).

    Notes
    -----
    log p(x, z) = -|z|^2/2 - r1^2/2 - r2^2/2 - log(s1 s2) - 2 log(2 pi),
    r1 = (x1 - z1)/s1, r2 = (x2 - z2 - b z1^2)/s2;
    d/dz1 = -z1 + r1/s1 + 2 b z1 r2/s2;   d/dz2 = -z2 + r2/s2.
    """

    def __init__(self, x, b: float = 0.6, s1: float = 1.0, s2: float = 0.35):
        self.x = check_float_array("x", x, shape=(2,))
        self.b = check_real("b", b)
        self.s1, self.s2 = check_positive("s1", s1), check_positive("s2", s2)
        self.const = -math.log(self.s1 * self.s2) - 2 * math.log(2 * math.pi)

    def _residuals(self, z):
        r1 = (self.x[0] - z[..., 0]) / self.s1
        r2 = (self.x[1] - z[..., 1] - self.b * z[..., 0] ** 2) / self.s2
        return r1, r2

    def log_joint(self, z):
        """log p(x, z) for z (..., 2); returns (...)."""
        _check_z(z)
        r1, r2 = self._residuals(z)
        return -0.5 * (z * z).sum(-1) - 0.5 * (r1 * r1 + r2 * r2) + self.const

    def grad_log_joint(self, z):
        """d log p(x, z) / dz, (..., 2)."""
        _check_z(z)
        r1, r2 = self._residuals(z)
        g1 = -z[..., 0] + r1 / self.s1 + 2 * self.b * z[..., 0] * r2 / self.s2
        g2 = -z[..., 1] + r2 / self.s2
        return np.stack([g1, g2], -1)

    def posterior_grid(self, lim1, lim2, n: int = 400):
        """Posterior density on an n x n grid, normalized numerically (Riemann sum).

        Returns z1 (n,), z2 (n,), density (n, n) with density[i, j] at (z1[j], z2[i]), and
        log p(x) = log sum exp(log p(x, z)) dA, the log evidence to grid accuracy.
        ``lim1``, ``lim2``: (low, high) pairs of finite reals with low < high; n >= 2.
        """
        lim1, lim2 = _check_interval("lim1", lim1), _check_interval("lim2", lim2)
        n = check_int("n", n, minimum=2)
        z1, z2 = np.linspace(*lim1, n), np.linspace(*lim2, n)
        Z = np.stack(np.meshgrid(z1, z2), -1)                            # (n, n, 2)
        lj = self.log_joint(Z)
        dA = (z1[1] - z1[0]) * (z2[1] - z2[0])
        m = lj.max()
        log_evidence = m + math.log(np.exp(lj - m).sum() * dA)
        return z1, z2, np.exp(lj - log_evidence), log_evidence


def _check_z(z):
    check_float_array("z", z)
    if z.ndim < 1 or z.shape[-1] != 2:
        raise ValueError(f"z must have shape (..., 2), got {z.shape}")


def _check_interval(name, lim):
    if not isinstance(lim, (tuple, list)) or len(lim) != 2:
        raise TypeError(f"{name} must be a pair (low, high), got {lim!r}")
    low = check_real(f"{name}[0]", lim[0])
    high = check_real(f"{name}[1]", lim[1])
    if not low < high:
        raise ValueError(f"{name} must have low < high, got {lim!r}")
    return low, high


def grid_moments(z1, z2, density):
    """Mean (2,) and covariance (2, 2) of a density tabulated by :meth:`BananaModel.posterior_grid`.

    z1 (n1,), z2 (n2,), density (n2, n1) >= 0 with a positive sum, one float dtype.
    """
    check_float_array("z1", z1, ndim=1)
    check_float_array("z2", z2, ndim=1)
    check_float_array("density", density, shape=(z2.shape[0], z1.shape[0]))
    if np.any(density < 0) or not density.sum() > 0:
        raise ValueError("density must be >= 0 everywhere with a positive sum")
    Z = np.stack(np.meshgrid(z1, z2), -1).reshape(-1, 2)
    w = density.ravel() / density.sum()
    mean = w @ Z
    d = Z - mean
    return mean, (w[:, None] * d).T @ d
