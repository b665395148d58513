"""Evaluating a trained VAE: ELBO, importance-sampled log p(x), bits per dimension, latent usage.

log p(x) by importance sampling (Burda et al. 2016; Rezende et al. 2014 appendix E):

    log p(x) >= L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x),     z_k ~ q(z|x)

L_K is non-decreasing in K and tends to log p(x) as K -> infinity; K = 5000 is the convention
of the VAE/IWAE literature. For memory, the K samples are drawn in chunks of ``k_chunk`` and
combined exactly with log-sum-exp:  L_K = log sum_c k_c exp(L_{k_c}^{(c)}) - log K. ``elbo``
chunks its samples the same way (the ELBOs of chunks combine as a mean weighted by chunk size),
so every evaluation runs in bounded memory whatever the number of samples. When every weight of
an example is 0 (log-weights all -inf) the bound is -inf, not NaN (``scratchvae.stable``).

The "surprisal upper bound" view: -ELBO >= -log p(x), the code length of x in nats under the
model; divided by D ln 2 it is bits per dimension. The gap -ELBO - (-log p(x)) is
KL(q(z|x) || p(z|x)).

Active units (Burda et al. 2016 section 5.2): latent dimension u is active when
Var_x( E_q[z_u | x] ) > 0.01.
"""
from __future__ import annotations

import time

import numpy as np

from .stable import logsumexp
from .runs.threads import blas_threads
from .validate import (check_callable, check_choice, check_float_array, check_has_rows, check_int,
                       check_model, check_positive, check_real, check_rng)
from .vae import ESTIMATORS

_FORWARD = ("x_dim", "z_dim", "dtype", "forward")      # what each function reads of the model
_ENCODE = ("x_dim", "z_dim", "dtype", "encode")


def _batches(n, size):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def elbo(vae, x, *, rng, n_samples: int = 1, estimator: str | None = None, batch_size: int = 500,
         y=None):
    """Per-example ELBO (or IWAE bound) and its parts: dict of (N,) arrays elbo, rec, kl.

    Parameters
    ----------
    vae : VAE
    x : ndarray (N, x_dim), the model's dtype
        N = 0 gives three empty arrays.
    rng : numpy.random.Generator
    n_samples : int >= 1
        Noise draws S per example (the K of "iwae").
    estimator : {"analytic", "mc", "iwae"} or None
        None: "analytic" where the posterior has a closed-form KL, else "mc" (flow posteriors).
    batch_size : int >= 1
        Decoder rows (examples x samples) per forward pass, the memory bound: batch_size // S
        examples at a time with all their samples, or, when S > batch_size, one example at a time
        with its samples in chunks of batch_size.
    y : ndarray (N, n_classes) or None
        One-hot labels, for a conditional VAE only.

    Returns
    -------
    dict of (N,) arrays of the model's dtype: ``elbo``, ``rec`` (mean log p(x|z)), ``kl``.

    Notes
    -----
    Chunks combine exactly: the "analytic" and "mc" ELBOs and ``rec`` are means over samples,
    so the chunk means weighted by chunk size; the "iwae" bound is log (1/S) sum_s w_s =
    log sum_c k_c exp(L^(c)) - log S over chunk bounds L^(c) (log-sum-exp in float64). The noise
    is drawn example by example (all S draws of one example, then the next), as one
    (N, S, z_dim) draw would be, so the chunking changes results by rounding only.
    """
    check_model("vae", vae, _FORWARD + ("check_labels",))
    check_rng("rng", rng)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    if estimator is None:
        estimator = "analytic" if vae.posterior.has_analytic_kl else "mc"
    check_choice("estimator", estimator, ESTIMATORS)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    vae.check_labels("y", y, len(x))
    out = {k: np.empty(len(x), dtype=vae.dtype) for k in ("elbo", "rec", "kl")}
    if n_samples <= batch_size:                          # whole examples, all samples at once
        for s in _batches(len(x), batch_size // n_samples):
            eps = rng.standard_normal((s.stop - s.start, n_samples, vae.z_dim), dtype=vae.dtype)
            obj, _, stats = vae.forward(x[s], eps, estimator, y=None if y is None else y[s])
            out["elbo"][s], out["rec"][s], out["kl"][s] = obj, stats["rec"], stats["kl"]
        return out
    for i in range(len(x)):                              # one example, samples in chunks
        s = slice(i, i + 1)
        parts = [vae.forward(x[s], rng.standard_normal((1, k.stop - k.start, vae.z_dim), dtype=vae.dtype),
                             estimator, y=None if y is None else y[s])
                 for k in _batches(n_samples, batch_size)]
        sizes = np.array([k.stop - k.start for k in _batches(n_samples, batch_size)], dtype=np.float64)
        bounds = np.array([p[0][0] for p in parts], dtype=np.float64)              # (n_chunks,)
        if estimator == "iwae":
            out["elbo"][i] = logsumexp(bounds + np.log(sizes)) - np.log(n_samples)
        else:
            out["elbo"][i] = sizes @ bounds / n_samples
        out["rec"][i] = sizes @ np.array([p[2]["rec"][0] for p in parts], dtype=np.float64) / n_samples
        out["kl"][i] = parts[0][2]["kl"][0]
    return out


PROGRESS_SECONDS = 10.0   # log_likelihood reports its progress this often (seconds)


def log_likelihood(vae, x, *, rng, K: int = 5000, batch_size: int = 20, k_chunk: int = 1000,
                   progress=None, log=print, threads=None):
    """Importance-sampled estimate L_K of log p(x) for every row of x, shape (N,), float64.

    The model runs in its own dtype; only the per-chunk bounds are combined in float64 (a
    log-sum-exp over up to K / k_chunk numbers per example), which is why the result is float64.

    Memory is bounded by ``batch_size * k_chunk`` decoder rows at a time (20 x 1000 rows of 784
    float32 pixels is ~60 MB per intermediate array). ``progress(done, total)`` is called after
    each batch if given, in place of the default report: ``log`` (``print`` by default, None
    silences) receives a line every ``PROGRESS_SECONDS`` (10 s) with the examples done and the
    time left, and a last line, once the work has taken that long (K = 5000 on a thousand images
    runs for minutes). ``threads``: BLAS threads during the call, as in
    :func:`scratchvae.train.train` (None: one, unless the environment sets a BLAS thread count).
    """
    check_model("vae", vae, _FORWARD)
    check_rng("rng", rng)
    check_int("K", K, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("k_chunk", k_chunk, minimum=1)
    if progress is not None:
        check_callable("progress", progress)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    if log is not None:
        check_callable("log", log)
    result = np.empty(len(x), dtype=np.float64)
    t0 = last = time.monotonic()
    with blas_threads(threads):
        for s in _batches(len(x), batch_size):
            xb, parts, sizes = x[s], [], []
            for k0 in range(0, K, k_chunk):
                k = min(k_chunk, K - k0)
                eps = rng.standard_normal((len(xb), k, vae.z_dim), dtype=vae.dtype)
                bound, _, _ = vae.forward(xb, eps, "iwae")             # (b,) log mean over the chunk
                parts.append(bound.astype(np.float64) + np.log(k))     # log sum over the chunk
                sizes.append(k)
            result[s] = logsumexp(np.stack(parts, axis=1)) - np.log(K)  # (b, n_chunks) -> (b,)
            if progress is not None:
                progress(s.stop, len(x))
            elif log is not None and (time.monotonic() - last >= PROGRESS_SECONDS
                                      or (s.stop == len(x) and last > t0)):  # last line, if any
                last = time.monotonic()
                left = (f", about {(last - t0) * (len(x) - s.stop) / s.stop:.0f} s left"
                        if s.stop < len(x) else ", done")
                log(f"log p(x), K = {K}: {s.stop}/{len(x)} examples ({100 * s.stop / len(x):.0f}%) "
                    f"in {last - t0:.0f} s{left}")
    return result


def bits_per_dim(nats, x_dim: int):
    """Convert a negative log-likelihood in nats per example to bits per dimension.

    ``nats``: a real number or a float array of any shape (+inf allowed: an example the model
    gives probability 0; NaN refused). ``x_dim`` >= 1. Returns nats / (x_dim ln 2), nats' shape.
    """
    x_dim = check_int("x_dim", x_dim, minimum=1)
    if isinstance(nats, np.ndarray):
        check_float_array("nats", nats, finite=False)
        if np.any(np.isnan(nats)):
            raise ValueError(f"nats contains {int(np.isnan(nats).sum())} NaN value(s)")
    else:
        check_real("nats", nats, finite=False)
    return np.asarray(nats) / (x_dim * np.log(2.0))


def bits_per_dim_discrete(nats, x_dim: int, levels: int = 256):
    """Bits per dimension of discrete data, from a density fit to the dequantized data.

    For pixels k in {0, ..., levels - 1} dequantized as x = (k + u) / levels, u ~ U[0, 1)^D
    (:func:`scratchvae.data.dequantize`, levels = 256), and a density p on [0, 1)^D::

        log P(k) = log E_u[p(x)] - D log(levels) >= E_u[log p(x)] - D log(levels)
        bits/dim = -(log p(x) - D log(levels)) / (D log 2) = nats / (D log 2) + log2(levels)

    (Theis, van den Oord & Bethge 2016, sec. 3.1: the cells of the levels tile [0, 1) with
    volume levels^-D, and Jensen's inequality gives the bound). Averaged over u this is an upper
    bound on -log2 P(k) / D, comparable with discrete models of the same levels; 8 bits/dim is
    the uniform distribution over 256 levels. A lower bound on log p(x) (ELBO, L_K) in place of
    log p(x) keeps it an upper bound.

    Parameters
    ----------
    nats : float or float ndarray, any shape
        -log p(x) in nats per example, p the density of x = (k + u) / levels on [0, 1)^D.
    x_dim : int >= 1
        D, the pixels per example.
    levels : int >= 2
        Levels of the discrete data (256 for 8-bit grey).

    Returns
    -------
    float ndarray, the shape of ``nats``.

    Raises
    ------
    TypeError, ValueError
        As :func:`bits_per_dim`; ``levels`` not an integer >= 2.
    """
    levels = check_int("levels", levels, minimum=2)
    return bits_per_dim(nats, x_dim) + np.log2(levels)


def posterior_means(vae, x, batch_size: int = 1000):
    """E_q[z|x] for every row of x (N, x_dim), shape (N, z_dim); N = 0 gives (0, z_dim)."""
    check_model("vae", vae, _ENCODE)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    out = np.empty((len(x), vae.z_dim), dtype=vae.dtype)
    for s in _batches(len(x), batch_size):
        out[s] = vae.encode(x[s])[0].loc
    return out


def kl_per_dimension(vae, x, batch_size: int = 1000):
    """Mean over the data of KL(q(z_u|x) || N(0, 1)) for each latent dimension u, shape (z_dim,).

    For the diagonal posterior these add up to the full KL. For the full-covariance posterior
    each term is the KL of the *marginal* q(z_u|x) = N(mu_u, Sigma_uu); their sum is then a lower
    bound on the full KL (the difference is the total correlation of q).
    ``x`` (N, x_dim) must hold at least one row (a mean over no data is undefined).
    """
    check_model("vae", vae, _ENCODE)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_has_rows("x", x)
    total = np.zeros(vae.z_dim)
    for s in _batches(len(x), batch_size):
        q, _ = vae.encode(x[s])
        total += vae.posterior.kl_per_dimension(q).sum(axis=0)        # (Dz,)
    return total / len(x)


def active_units(vae, x, threshold: float = 0.01):
    """Number of latent dimensions with Var_x(E_q[z_u|x]) > threshold, and those variances.

    ``x`` (N, x_dim) with N >= 1 (a variance over no data is undefined); ``threshold`` >= 0.
    Returns (int, (z_dim,) float64).
    """
    check_model("vae", vae, _ENCODE)
    threshold = check_positive("threshold", threshold, strict=False)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_has_rows("x", x)
    variances = posterior_means(vae, x).astype(np.float64).var(axis=0)
    return int((variances > threshold).sum()), variances
