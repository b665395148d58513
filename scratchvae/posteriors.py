"""The approximate posterior q(z|x): one family, chosen once when the VAE is built.

A family turns the encoder's raw output h into q's parameters, draws z from standard normal
noise with the log-determinant of that draw, and gives the KL to the prior where one exists.
Every family has the same five steps, each with its backward beside it:

    q, cache             = family.encode(h)                   h (B, n_params)
    z, log_det, cache    = family.rsample(q, eps)              eps (B, S, D) -> z (B, S, D), log_det (B, S)
    kl                   = family.kl_to_prior(q)               KL(q(z|x) || N(0, I)), (B,)
and, walking back,
    dq, grads            = family.rsample_backward(dz, dlog_det, cache)   grads: of family.params
    dq                  += family.kl_to_prior_backward(dkl, q)
    dh                   = family.encode_backward(dq, cache)

where ``log_det`` is log|det dz/deps|, so that (Kingma & Welling 2019, eq. 2.33)

    log q(z|x) = log p(eps) - log|det dz/deps|.

``q`` is a distribution object of :mod:`scratchvae.distributions`; ``dq`` is a dict keyed by
its parameter names (``loc`` and ``log_scale``, or ``loc`` and ``scale_tril``), each of that
parameter's shape (B, ...). These functions are the VAE's inner loop: the VAE checks its inputs
once, at its door, so nothing here re-checks them.

A family may own global parameters (``family.params``, e.g. the IAF's MADE weights); the VAE
adds them to its own as ``"flow.<name>"``.

Families (Kingma & Welling 2019, sections 2.5 and 2.5.1), and the flows built on the first
(:mod:`scratchvae.flows.posterior`: planar, radial, householder, sylvester, iaf):

    diagonal   q = N(mu, diag(sigma^2))      h = [mu, log sigma]
               z = mu + sigma * eps          log|det dz/deps| = sum_i log sigma_i
    full       q = N(mu, L L^T)              h = [mu, log diag(L), strictly lower L]
               z = mu + L eps                log|det dz/deps| = sum_i log L_ii
"""
from __future__ import annotations

import numpy as np

from .distributions import MultivariateNormal, Normal
from .stable import expm1mx
from .transforms import tril_from_params, tril_from_params_backward
from .validate import check_int


class DiagonalGaussian:
    """q(z|x) = N(mu, diag(sigma^2)) with h = [mu (D), log_scale = log sigma (D)]."""

    name = "diagonal"
    has_analytic_kl = True
    params: dict = {}                                             # no global parameters

    def __init__(self, z_dim: int):
        self.z_dim = check_int("z_dim", z_dim, minimum=1)
        self.n_params = 2 * z_dim                                 # encoder outputs per example

    def encode(self, h):
        """q from the encoder's output h (B, 2D); the cache is empty (slicing has no parameters)."""
        D = self.z_dim
        return Normal(h[:, :D], h[:, D:]), None

    def encode_backward(self, dq, cache):
        """dh (B, 2D) = [dloc, dlog_scale]."""
        return np.concatenate([dq["loc"], dq["log_scale"]], axis=1)

    def rsample(self, q, eps):
        """z = mu + sigma * eps for S draws per example: eps (B, S, D) -> z (B, S, D), log_det (B, S).

        Backward (:meth:`rsample_backward`): dmu = sum_s dz; dlog sigma = sum_s dz * sigma * eps
        + dlog_det (d/dlog sigma of sum_i log sigma_i is 1).
        """
        n_samples = eps.shape[1]
        loc = np.repeat(q.loc[:, None, :], n_samples, axis=1)              # (B, S, D)
        log_scale = np.repeat(q.log_scale[:, None, :], n_samples, axis=1)  # (B, S, D)
        scale = np.exp(log_scale)                                          # (B, S, D)
        z = loc + scale * eps                                              # (B, S, D)
        log_det = log_scale.sum(-1)                                        # (B, S)
        return z, log_det, (eps, scale)

    def rsample_backward(self, dz, dlog_det, cache):
        """(dq, grads) from dz (B, S, D) and dlog_det (B, S) or None (the analytic ELBO has no
        log-det); grads is empty: this family has no global parameters."""
        eps, scale = cache
        dlog_scale = dz * scale * eps                                      # (B, S, D)
        if dlog_det is not None:
            dlog_scale = dlog_scale + dlog_det[..., None]
        return {"loc": dz.sum(axis=1), "log_scale": dlog_scale.sum(axis=1)}, {}  # (B, D) each

    def kl_to_prior(self, q):
        """KL(q || N(0, I)) = sum_i (sigma_i^2 + mu_i^2 - 1)/2 - log sigma_i, shape (B,)."""
        return q.kl_to_standard_normal().sum(-1)

    def kl_to_prior_backward(self, dkl, q):
        """dq from dkl (B,): dmu = dkl * mu, dlog sigma = dkl * (sigma^2 - 1)."""
        g = q.kl_to_standard_normal_grads()
        return {"loc": dkl[:, None] * g["loc"], "log_scale": dkl[:, None] * g["log_scale"]}

    def kl_per_dimension(self, q):
        """KL(q(z_i|x) || N(0, 1)) per latent dimension, (B, D); these add up to the KL."""
        return q.kl_to_standard_normal()


class FullGaussian:
    """q(z|x) = N(mu, L L^T), L lower triangular with L_ii > 0.

    h = [mu (D), log_diag (D), offdiag (D(D-1)/2)], L_ii = exp(log_diag_i), and the strictly
    lower triangle filled row by row from offdiag (:func:`scratchvae.transforms.tril_from_params`).
    """

    name = "full"
    has_analytic_kl = True
    params: dict = {}

    def __init__(self, z_dim: int):
        self.z_dim = check_int("z_dim", z_dim, minimum=1)
        self.n_params = 2 * z_dim + z_dim * (z_dim - 1) // 2

    def encode(self, h):
        """q from h (B, n_params). Raises FloatingPointError when exp(log_diag) over/underflows."""
        D = self.z_dim
        with np.errstate(over="ignore", under="ignore"):
            scale_tril, tril_cache = tril_from_params(h[:, D:2 * D], h[:, 2 * D:])  # (B, D, D)
        diag = np.diagonal(scale_tril, axis1=1, axis2=2)                            # (B, D)
        if not (np.all(diag > 0) and np.all(np.isfinite(diag))):
            raise FloatingPointError("the posterior's Cholesky factor has a diagonal that over- or "
                                     "underflowed (exp of the encoder's log_diag): the parameters "
                                     "have diverged")
        return MultivariateNormal(h[:, :D], scale_tril), tril_cache

    def encode_backward(self, dq, cache):
        """dh (B, n_params) = [dloc, dlog_diag, doffdiag]."""
        g = tril_from_params_backward(dq["scale_tril"], cache)
        return np.concatenate([dq["loc"], g["log_diag"], g["offdiag"]], axis=1)

    def rsample(self, q, eps):
        """z = mu + L eps: eps (B, S, D) -> z (B, S, D), log_det = sum_i log L_ii (B, S).

        Backward (:meth:`rsample_backward`): dmu = sum_s dz; dL = sum_s tril(dz eps^T)
        + diag(dlog_det / L_ii) (only the lower triangle is a parameter).
        """
        n_samples = eps.shape[1]
        scale_tril = q.scale_tril                                          # (B, D, D)
        z = q.loc[:, None, :] + np.einsum("bij,bsj->bsi", scale_tril, eps)  # (B, S, D)
        diag = np.diagonal(scale_tril, axis1=1, axis2=2)                   # (B, D)
        log_det = np.repeat(np.log(diag).sum(-1)[:, None], n_samples, axis=1)  # (B, S)
        return z, log_det, (eps, diag)

    def rsample_backward(self, dz, dlog_det, cache):
        """(dq, {}) from dz (B, S, D) and dlog_det (B, S) or None."""
        eps, diag = cache
        dscale_tril = np.tril(np.einsum("bsi,bsj->bij", dz, eps))          # (B, D, D)
        if dlog_det is not None:
            i = np.arange(self.z_dim)
            dscale_tril[:, i, i] += dlog_det.sum(axis=1)[:, None] / diag   # d sum log L_ii / dL_ii
        return {"loc": dz.sum(axis=1), "scale_tril": dscale_tril}, {}

    def kl_to_prior(self, q):
        """KL(N(mu, L L^T) || N(0, I)) = (tr(L L^T) + mu.mu - D)/2 - sum_i log L_ii, (B,)."""
        return q.kl_to_standard_normal()

    def kl_to_prior_backward(self, dkl, q):
        """dq from dkl (B,): dmu = dkl * mu, dL = dkl * (L - diag(1 / L_ii))."""
        g = q.kl_to_standard_normal_grads()
        return {"loc": dkl[:, None] * g["loc"], "scale_tril": dkl[:, None, None] * g["scale_tril"]}

    def kl_per_dimension(self, q):
        """KL of each marginal q(z_i|x) = N(mu_i, Sigma_ii) to N(0, 1), (B, D).

        Their sum is a lower bound on the full KL; the difference is q's total correlation.
        """
        var = (q.scale_tril ** 2).sum(-1)                                  # Sigma_ii = sum_j L_ij^2
        return 0.5 * (expm1mx(np.log(var)) + q.loc ** 2)   # var - 1 - log var without cancelling


GAUSSIANS = {"diagonal": DiagonalGaussian, "full": FullGaussian}
POSTERIORS = (*GAUSSIANS, "planar", "radial", "householder", "sylvester", "iaf")


def make_posterior(name: str, z_dim: int, *, flow_length: int = 0, rng=None, dtype=np.float32,
                   **flow_options):
    """The family called ``name`` (one of :data:`POSTERIORS`) for latents of size ``z_dim``.

    The Gaussians take no other argument; a flow family (:mod:`scratchvae.flows.posterior`)
    takes ``flow_length`` K >= 0, ``rng`` (for IAF's weights), ``dtype`` and its options.
    """
    if not isinstance(name, str) or name not in POSTERIORS:
        raise ValueError(f"posterior must be one of {POSTERIORS}, got {name!r}")
    check_int("z_dim", z_dim, minimum=1)
    check_int("flow_length", flow_length, minimum=0)
    if name in GAUSSIANS:
        if flow_length:
            raise ValueError(f"flow_length applies to the flow posteriors {POSTERIORS[2:]}, got "
                             f"flow_length={flow_length} with posterior={name!r}")
        return GAUSSIANS[name](z_dim)
    from .flows.posterior import FlowPosterior      # flows build on DiagonalGaussian above
    return FlowPosterior(name, z_dim, flow_length, rng=rng, dtype=dtype, **flow_options)
