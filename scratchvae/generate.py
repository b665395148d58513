"""Using a trained VAE: reconstruct, sample from the prior, interpolate, decode a latent grid.

    reconstruction   x -> E_q[z|x] (or z ~ q(z|x)) -> E[x|z] (or x ~ p(x|z))
    prior sample     z ~ N(0, I) -> E[x|z] (or x ~ p(x|z))
    interpolation    z_t = (1 - t) E_q[z|x_a] + t E_q[z|x_b], t in [0, 1] -> E[x|z_t]
    manifold grid    for a 2-D latent: z on a grid of standard-normal quantiles -> E[x|z]
                     (Kingma & Welling 2014, figure 4)

Inputs are checked here, at the door; N = 0 rows give empty results of the right width. A
non-finite posterior sample or decoder output (exp of a huge encoder log_scale, NaN weights)
raises FloatingPointError saying the parameters have diverged, rather than an error about an
intermediate array the caller never saw.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from .validate import check_bool, check_float_array, check_in_range, check_int, check_model, check_rng

_MODEL = ("x_dim", "z_dim", "dtype", "encode", "decode", "likelihood")


def _finite(name, a, what):
    if not np.all(np.isfinite(a)):
        raise FloatingPointError(f"{name} is not finite ({what}): the parameters have diverged")
    return a


def encode(vae, x, *, rng=None):
    """E_q[z|x] (rng None) or one draw z ~ q(z|x) (rng given), shape (N, z_dim); x (N, x_dim)."""
    check_model("vae", vae, _MODEL)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    if rng is not None:
        check_rng("rng", rng)
    q, _ = vae.encode(x)
    if rng is None:
        return q.loc.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        z = q.sample(rng)
    return _finite("the posterior sample z", z, "the encoder's scale overflowed")


def decode(vae, z, *, rng=None, y=None):
    """E[x|z] (rng None) or one draw x ~ p(x|z) (rng given), shape (N, x_dim).

    ``z`` (N, z_dim); ``y`` (N, n_classes): one-hot labels, for a conditional VAE (p(x|z, y)) only.
    """
    check_model("vae", vae, _MODEL)
    if rng is not None:
        check_rng("rng", rng)
    out = vae.decode(z, y)
    _finite("the decoder's output", out, "for finite z")
    if rng is None:
        return vae.likelihood.mean(out)
    return vae.likelihood.sample(out, rng)


def reconstruct(vae, x, *, rng=None):
    """decode(encode(x)): the posterior mean through the decoder mean when ``rng`` is None."""
    return decode(vae, encode(vae, x, rng=rng), rng=None)


def sample_prior(vae, n: int, *, rng, mean: bool = True, y=None):
    """n draws z ~ N(0, I) decoded to E[x|z] (``mean``) or to x ~ p(x|z): (N, x_dim).

    For a conditional VAE give ``y`` (n, n_classes), one-hot: row i is drawn from p(x|z_i, y_i).
    """
    check_model("vae", vae, _MODEL)
    check_int("n", n, minimum=1)
    check_rng("rng", rng)
    check_bool("mean", mean)
    z = rng.standard_normal((n, vae.z_dim), dtype=vae.dtype)
    return decode(vae, z, rng=None if mean else rng, y=y)


def interpolate(vae, x_a, x_b, n_steps: int = 10):
    """Decoded means along the straight line between the posterior means of x_a and x_b.

    x_a, x_b : (x_dim,) arrays of the model's dtype. Returns (n_steps, x_dim).
    """
    check_model("vae", vae, _MODEL)
    for name, xi in (("x_a", x_a), ("x_b", x_b)):
        check_float_array(name, xi, shape=(vae.x_dim,), dtype=vae.dtype)
    check_int("n_steps", n_steps, minimum=2)
    za, zb = encode(vae, np.stack([x_a, x_b]))
    t = np.linspace(0, 1, n_steps, dtype=vae.dtype)[:, None]
    return decode(vae, (1 - t) * za + t * zb)


def latent_grid(vae, n: int = 15, *, quantile_range=(0.05, 0.95)):
    """For a 2-D latent: decoded means on an n x n grid of N(0,1) quantiles.

    Returns (images (n*n, x_dim), z (n*n, 2)), row-major with z_2 decreasing down the rows.
    ``quantile_range`` (lo, hi) with 0 < lo < hi < 1: the grid's extreme quantiles.
    """
    check_model("vae", vae, _MODEL)
    if vae.z_dim != 2:
        raise ValueError(f"latent_grid needs a 2-D latent space, the model has z_dim={vae.z_dim}")
    check_int("n", n, minimum=2)
    if not isinstance(quantile_range, (tuple, list)) or len(quantile_range) != 2:
        raise TypeError(f"quantile_range must be a pair (lo, hi), got {quantile_range!r}")
    lo = check_in_range("quantile_range[0]", quantile_range[0], 0.0, 1.0, low_open=True, high_open=True)
    hi = check_in_range("quantile_range[1]", quantile_range[1], lo, 1.0, low_open=True, high_open=True)
    q = norm.ppf(np.linspace(lo, hi, n))
    z1, z2 = np.meshgrid(q, q[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(vae.dtype)
    return decode(vae, z), z
