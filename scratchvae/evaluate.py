"""Evaluating a trained VAE: ELBO, importance-sampled log p(x), bits per dimension, latent usage.

log p(x) by importance sampling (Burda et al. 2016; Rezende et al. 2014 appendix E):

    log p(x) >= L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x),     z_k ~ q(z|x)

L_K is non-decreasing in K and tends to log p(x) as K -> infinity; K = 5000 is the convention
of the VAE/IWAE literature. For memory, the K samples are drawn in chunks of ``k_chunk`` and
combined exactly with log-sum-exp:  L_K = log sum_c k_c exp(L_{k_c}^{(c)}) - log K.

The "surprisal upper bound" view: -ELBO >= -log p(x), the code length of x in nats under the
model; divided by D ln 2 it is bits per dimension. The gap -ELBO - (-log p(x)) is
KL(q(z|x) || p(z|x)).

Active units (Burda et al. 2016 section 5.2): latent dimension u is active when
Var_x( E_q[z_u | x] ) > 0.01.
"""
from __future__ import annotations

import numpy as np

from .validate import check_float_array, check_int, check_rng


def _batches(n, size):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def elbo(vae, x, *, rng, n_samples: int = 1, estimator: str = "analytic", batch_size: int = 500,
         y=None):
    """Per-example ELBO (or IWAE bound) and its parts: dict of (N,) arrays elbo, rec, kl.

    ``y`` (N, n_classes): one-hot labels, for a conditional VAE only.
    """
    check_rng("rng", rng)
    check_int("n_samples", n_samples, minimum=1)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    out = {"elbo": [], "rec": [], "kl": []}
    for s in _batches(len(x), batch_size):
        eps = rng.standard_normal((s.stop - s.start, n_samples, vae.z_dim), dtype=vae.dtype)
        obj, _, stats = vae.forward(x[s], eps, estimator, y=None if y is None else y[s])
        out["elbo"].append(obj)
        out["rec"].append(stats["rec"])
        out["kl"].append(stats["kl"])
    return {k: np.concatenate(v) for k, v in out.items()}


def log_likelihood(vae, x, *, rng, K: int = 5000, batch_size: int = 20, k_chunk: int = 1000,
                   progress=None):
    """Importance-sampled estimate L_K of log p(x) for every row of x, shape (N,), float64.

    The model runs in its own dtype; only the per-chunk bounds are combined in float64 (a
    log-sum-exp over up to K / k_chunk numbers per example), which is why the result is float64.

    Memory is bounded by ``batch_size * k_chunk`` decoder rows at a time (20 x 1000 rows of 784
    float32 pixels is ~60 MB per intermediate array). ``progress(done, total)`` is called after
    each batch if given.
    """
    check_rng("rng", rng)
    check_int("K", K, minimum=1)
    check_int("k_chunk", k_chunk, minimum=1)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    result = np.empty(len(x), dtype=np.float64)
    for s in _batches(len(x), batch_size):
        xb, parts, sizes = x[s], [], []
        for k0 in range(0, K, k_chunk):
            k = min(k_chunk, K - k0)
            eps = rng.standard_normal((len(xb), k, vae.z_dim), dtype=vae.dtype)
            bound, _, _ = vae.forward(xb, eps, "iwae")                 # (b,) log mean over the chunk
            parts.append(bound.astype(np.float64) + np.log(k))         # log sum over the chunk
            sizes.append(k)
        parts = np.stack(parts, axis=1)                                # (b, n_chunks)
        m = parts.max(axis=1)
        result[s] = m + np.log(np.exp(parts - m[:, None]).sum(axis=1)) - np.log(K)
        if progress is not None:
            progress(s.stop, len(x))
    return result


def bits_per_dim(nats, x_dim: int):
    """Convert a negative log-likelihood in nats per example to bits per dimension."""
    return np.asarray(nats) / (x_dim * np.log(2.0))


def posterior_means(vae, x, batch_size: int = 1000):
    """E_q[z|x] for every row of x, shape (N, z_dim)."""
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    return np.concatenate([vae.encode(x[s])[0].loc for s in _batches(len(x), batch_size)])


def kl_per_dimension(vae, x, batch_size: int = 1000):
    """Mean over the data of KL(q(z_u|x) || N(0, 1)) for each latent dimension u, shape (z_dim,).

    For the diagonal posterior these add up to the full KL. For the full-covariance posterior
    each term is the KL of the *marginal* q(z_u|x) = N(mu_u, Sigma_uu); their sum is then a lower
    bound on the full KL (the difference is the total correlation of q).
    """
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    total = np.zeros(vae.z_dim)
    for s in _batches(len(x), batch_size):
        q, _ = vae.encode(x[s])
        total += vae.posterior.kl_per_dimension(q).sum(axis=0)        # (Dz,)
    return total / len(x)


def active_units(vae, x, threshold: float = 0.01):
    """Number of latent dimensions with Var_x(E_q[z_u|x]) > threshold, and those variances."""
    variances = posterior_means(vae, x).astype(np.float64).var(axis=0)
    return int((variances > threshold).sum()), variances
