"""Using a trained VAE: reconstruct, sample from the prior, interpolate, decode a latent grid.

    reconstruction   x -> E_q[z|x] (or z ~ q(z|x)) -> E[x|z] (or x ~ p(x|z))
    prior sample     z ~ N(0, I) -> E[x|z] (or x ~ p(x|z))
    interpolation    z_t = (1 - t) E_q[z|x_a] + t E_q[z|x_b], t in [0, 1] -> E[x|z_t]
    manifold grid    for a 2-D latent: z on a grid of standard-normal quantiles -> E[x|z]
                     (Kingma & Welling 2014, figure 4)
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from .validate import check_float_array, check_int, check_rng


def encode(vae, x, *, rng=None):
    """E_q[z|x] (rng None) or one draw z ~ q(z|x) (rng given), shape (N, z_dim)."""
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    q, _ = vae.encode(x)
    if rng is None:
        return q.loc.copy()
    return q.sample(check_rng("rng", rng))


def decode(vae, z, *, rng=None, y=None):
    """E[x|z] (rng None) or one draw x ~ p(x|z) (rng given), shape (N, x_dim).

    ``y`` (N, n_classes): one-hot labels, for a conditional VAE (p(x|z, y)) only.
    """
    out = vae.decode(z, y)
    if rng is None:
        return vae.likelihood.mean(out)
    return vae.likelihood.sample(out, check_rng("rng", rng))


def reconstruct(vae, x, *, rng=None):
    """decode(encode(x)): the posterior mean through the decoder mean when ``rng`` is None."""
    return decode(vae, encode(vae, x, rng=rng), rng=None)


def sample_prior(vae, n: int, *, rng, mean: bool = True, y=None):
    """n draws z ~ N(0, I) decoded to E[x|z] (``mean``) or to x ~ p(x|z): (N, x_dim).

    For a conditional VAE give ``y`` (n, n_classes), one-hot: row i is drawn from p(x|z_i, y_i).
    """
    check_int("n", n, minimum=1)
    check_rng("rng", rng)
    z = rng.standard_normal((n, vae.z_dim), dtype=vae.dtype)
    return decode(vae, z, rng=None if mean else rng, y=y)


def interpolate(vae, x_a, x_b, n_steps: int = 10):
    """Decoded means along the straight line between the posterior means of x_a and x_b.

    x_a, x_b : (x_dim,) arrays. Returns (n_steps, x_dim).
    """
    check_int("n_steps", n_steps, minimum=2)
    za, zb = encode(vae, np.stack([x_a, x_b]))
    t = np.linspace(0, 1, n_steps, dtype=vae.dtype)[:, None]
    return decode(vae, ((1 - t) * za + t * zb).astype(vae.dtype))


def latent_grid(vae, n: int = 15, *, quantile_range=(0.05, 0.95)):
    """For a 2-D latent: decoded means on an n x n grid of N(0,1) quantiles.

    Returns (images (n*n, x_dim), z (n*n, 2)), row-major with z_2 decreasing down the rows.
    """
    if vae.z_dim != 2:
        raise ValueError(f"latent_grid needs a 2-D latent space, the model has z_dim={vae.z_dim}")
    check_int("n", n, minimum=2)
    q = norm.ppf(np.linspace(*quantile_range, n))
    z1, z2 = np.meshgrid(q, q[::-1])
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(vae.dtype)
    return decode(vae, z), z
