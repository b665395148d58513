"""Score-function vs reparameterization gradients for the encoder of a VAE.

The same two estimators as :mod:`scratchvae.lab.estimators` (see its docstring for the equations),
applied to f(z) = log p(x, z) - log q(z|x) with q = q_phi(z|x) from a ``VAE``'s encoder; the
reference gradient is the ELBO gradient by Gauss-Hermite quadrature over eps (exact up to
quadrature error for z_dim <= 3).
"""
from __future__ import annotations

import numpy as np

from ..validate import (check_choice, check_float_array, check_has_rows, check_int, check_model,
                        check_rng)
from ..distributions import Normal, standard_normal_log_prob
from .estimators import (METHODS, EstimatorStats, baseline_values, gradient_statistics)

_VAE = ("x_dim", "z_dim", "dtype", "encoder", "decoder", "likelihood", "posterior", "forward",
        "backward", "encode")


# ------------------------------------------------------------------------------ the VAE encoder
def _check_vae(vae):
    check_model("vae", vae, _VAE)
    if vae.posterior.name != "diagonal":
        raise ValueError(f"the encoder-gradient comparison needs a diagonal posterior, got "
                         f"posterior={vae.posterior.name!r}")
    if getattr(vae, "n_classes", None) is not None:
        raise ValueError(f"the encoder-gradient comparison needs a VAE without labels, got "
                         f"n_classes={vae.n_classes}")


def _check_vae_inputs(vae, x, eps):
    _check_vae(vae)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_has_rows("x", x)                           # the gradient of a mean over no data
    check_float_array("eps", eps, ndim=3, shape=(x.shape[0], None, vae.z_dim), dtype=vae.dtype)
    if eps.shape[1] == 0:
        raise ValueError(f"eps must hold at least one sample per example, got shape {eps.shape}")


def vae_log_joint(vae, x, z):
    """log p(x, z) = log p(x|z) + log N(z; 0, I) for x (B, x_dim), z (B, S, z_dim); returns (B, S)."""
    check_model("vae", vae, _VAE)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_float_array("z", z, ndim=3, shape=(x.shape[0], None, vae.z_dim), dtype=vae.dtype)
    B, S, Dz = z.shape
    out, _ = vae.decoder.forward(z.reshape(B * S, Dz))                    # (B*S, P)
    log_px, _ = vae.likelihood.log_prob(x, out.reshape(B, S, out.shape[-1]))  # (B, S)
    return log_px + standard_normal_log_prob(z).sum(-1)


def vae_encoder_grads(vae, x, eps, method: str = "reparam", baseline=None):
    """Estimate of grad_phi (1/B) sum_b ELBO(x_b) for the encoder parameters phi of a ``VAE``.

    Parameters
    ----------
    vae : scratchvae.vae.VAE with posterior="diagonal"
    x : ndarray (B, x_dim);  eps : ndarray (B, S, z_dim), the model's dtype
    method : {"reparam", "score"}
    baseline : None, "loo", float or ndarray (B, S); score function only

    Returns
    -------
    dict keyed like ``vae.encoder.params``

    Notes
    -----
    reparam: ``VAE.forward(x, eps, "mc")`` and ``VAE.backward`` with upstream 1/B (the pathwise
    gradient through z = mu + sigma eps, including the log-det term of -log q).
    score: f_bs = log p(x_b, z_bs) - log q(z_bs|x_b) at the current phi, held fixed;
    w_bs = (f_bs - b_bs) / (B S); dloc_b = sum_s w_bs r_bs / sigma_b, dlog_scale_b =
    sum_s w_bs (r_bs^2 - 1) with r = (z - mu) / sigma; then the encoder MLP's backward of
    concat(dloc, dlog_scale), exactly as ``DiagonalGaussian.encode_backward`` concatenates them. The term
    E_q[-grad_phi log q] = 0 of the integrand's own phi-dependence is left out (it is zero in
    expectation).
    """
    _check_vae_inputs(vae, x, eps)
    check_choice("method", method, METHODS)
    B, S, Dz = eps.shape
    dobj = np.full(B, 1.0 / B, dtype=vae.dtype)
    if method == "reparam":
        if baseline is not None:
            raise ValueError(f"baseline applies to method='score' only, got baseline={baseline!r}")
        _, cache, _ = vae.forward(x, eps, "mc")
        grads = vae.backward(dobj, cache)
        return {k[4:]: g for k, g in grads.items() if k.startswith("enc.")}
    q0, (enc_cache, _) = vae.encode(x)          # FloatingPointError if the encoder's output is not finite
    q = Normal(np.broadcast_to(q0.loc[:, None, :], eps.shape),                # (B, S, Dz) each
               np.broadcast_to(q0.log_scale[:, None, :], eps.shape))
    with np.errstate(over="ignore", invalid="ignore"):
        z = q.rsample(eps)                                                # (B, S, Dz)
    if not np.all(np.isfinite(z)):
        raise FloatingPointError("the draws z = mu + sigma eps are not finite (exp of the encoder's "
                                 "log_scale overflowed): the parameters have diverged")
    f = vae_log_joint(vae, x, z) - q.log_prob(z).sum(-1)                  # (B, S)
    b = baseline_values(f, baseline)
    w = (f - b) * (dobj[:, None] / vae.dtype.type(S))                     # (B, S)
    dlogq = q.log_prob_grads(z)
    dh = np.concatenate([(w[..., None] * dlogq[k]).sum(1) for k in ("loc", "log_scale")], axis=1)
    _, grads = vae.encoder.backward(dh, enc_cache, need_dx=False)
    return grads


def vae_exact_encoder_grads(vae, x, n_nodes: int = 24):
    """grad_phi (1/B) sum_b ELBO(x_b) by tensor Gauss-Hermite quadrature over eps (n_nodes^z_dim).

    Notes
    -----
    ELBO(x) = E_{eps ~ N(0, I)}[h(eps)] with h the "mc" integrand at z = mu + sigma eps, so
    ELBO ~ sum_k w_k h(t_k) with probabilists' Hermite nodes t_k and weights w_k / sqrt(2 pi)
    (exact for polynomials of degree < 2 n_nodes per axis). Each (x_b, t_k) is one row of a
    ``VAE.forward(., ., "mc")`` call with L = 1 and upstream gradient w_k / B; ``VAE.backward``
    then returns the quadrature of the pathwise gradient, the exact gradient up to quadrature error.
    """
    _check_vae(vae)
    n_nodes = check_int("n_nodes", n_nodes, minimum=1)
    Dz = vae.z_dim
    if n_nodes ** Dz > 200_000:
        raise ValueError(f"n_nodes**z_dim = {n_nodes}**{Dz} quadrature nodes is too many; use a "
                         f"latent of dimension <= 3 or fewer nodes")
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_has_rows("x", x)
    t, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    grid = np.stack(np.meshgrid(*[t] * Dz, indexing="ij"), -1).reshape(-1, Dz)        # (K, Dz)
    wk = np.prod(np.stack(np.meshgrid(*[w / np.sqrt(2 * np.pi)] * Dz, indexing="ij"), -1).reshape(-1, Dz), 1)
    B, K = x.shape[0], grid.shape[0]
    eps = np.tile(grid, (B, 1))[:, None, :].astype(vae.dtype)                          # (B K, 1, Dz)
    _, cache, _ = vae.forward(np.repeat(x, K, axis=0), eps, "mc")
    grads = vae.backward((np.tile(wk, B) / B).astype(vae.dtype), cache)
    return {k[4:]: g for k, g in grads.items() if k.startswith("enc.")}


def flatten_grads(grads: dict, keys) -> np.ndarray:
    """Concatenate ``grads[k].ravel()`` for k in ``keys`` (float64), one vector."""
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of name -> ndarray, got {type(grads).__name__}")
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__iter__"):
        raise TypeError(f"keys must be a sequence of names, got {type(keys).__name__} {keys!r}")
    keys = list(keys)
    missing = [k for k in keys if k not in grads]
    if missing:
        raise ValueError(f"keys name entries grads does not have: {missing} (grads has {sorted(grads)})")
    for k in keys:
        check_float_array(f"grads[{k!r}]", grads[k])
    return np.concatenate([np.asarray(grads[k], dtype=np.float64).ravel() for k in keys])


def vae_encoder_statistics(vae, x, method, sample_sizes, n_rep, *, rng, baseline=None,
                           exact=None) -> EstimatorStats:
    """:func:`gradient_statistics` of :func:`vae_encoder_grads`, against ``exact`` (default:
    :func:`vae_exact_encoder_grads`), entries in the order of ``vae.encoder.params``."""
    _check_vae(vae)
    check_float_array("x", x, ndim=2, shape=(None, vae.x_dim), dtype=vae.dtype)
    check_has_rows("x", x)
    check_choice("method", method, METHODS)
    check_rng("rng", rng)
    check_int("n_rep", n_rep, minimum=2)
    keys = list(vae.encoder.params)
    P = sum(vae.encoder.params[k].size for k in keys)
    if exact is None:
        exact = flatten_grads(vae_exact_encoder_grads(vae, x), keys)
    check_float_array("exact", exact, shape=(P,))
    B = x.shape[0]

    def draw(S, n):
        return np.stack([flatten_grads(vae_encoder_grads(
            vae, x, rng.standard_normal((B, S, vae.z_dim), dtype=vae.dtype), method, baseline), keys)
            for _ in range(n)])
    return gradient_statistics(draw, exact, sample_sizes, n_rep, chunk=16)
