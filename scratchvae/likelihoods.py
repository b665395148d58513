"""Decoder likelihoods p(x|z): from the decoder's raw output to log p(x|z) and back.

The decoder network maps a latent z to a raw output ``out``; a likelihood turns ``out`` into
the parameters of a distribution over the D pixels of x and sums the log-density over pixels:

    bernoulli            out = logits t (D values)
        log p(x|z) = sum_d [ x_d t_d - softplus(t_d) ]           (x_d in {0, 1})
                   = sum_d [ (x_d t_d - max(t_d, 0)) - softplus(-|t_d|) ]
        d/dt_d     = x_d - sigmoid(t_d)
    The second form is how it is computed: x t - max(t, 0) is exact for 0/1 pixels, and every
    term is <= 0, so nothing cancels; sum(x t) - sum(softplus(t)) would subtract two sums of
    size ~D |t| and round away the likely pixels' log-probabilities -softplus(-|t|) ~ -e^{-|t|}.

    gaussian, fixed sigma (the ``scale`` argument)        out = loc mu (D values)
        log p(x|z) = sum_d [ -((x_d - mu_d) / sigma)^2 / 2 ] - D (log sigma + log(2 pi) / 2)
        d/dmu_d    = (x_d - mu_d) / sigma^2

    gaussian, learned sigma with a floor                   out = (mu, r) (2D values)
        log sigma_d = log sigma_min + softplus(r_d)        so sigma_d > sigma_min always
        log p(x|z)  = sum_d [ -u_d^2 / 2 - log sigma_d - log(2 pi) / 2 ],   u_d = (x_d - mu_d) / sigma_d
        d/dmu_d     = u_d / sigma_d
        d/dr_d      = (u_d^2 - 1) * sigmoid(r_d)

Why the floor: a density is not a probability. With a learned sigma the decoder can put
sigma_d -> 0 on a pixel it reconstructs exactly (a border pixel that is always 0), and then
log p(x|z) = -log sigma_d -> +infinity: the objective is unbounded above and training diverges.
Bounding sigma below by sigma_min bounds each pixel's log-density by -log sigma_min - log(2 pi)/2.

Shapes: ``x`` is (B, D); ``out`` is (B, L, P) for L latent samples per example (P = D or 2D);
``log_prob`` returns (B, L) and ``backward`` takes the upstream gradient of each (B, L) entry.
"""
from __future__ import annotations

import numpy as np

from .validate import check_positive
from .stable import sigmoid, softplus, softplus_neg_abs

HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


class BernoulliLikelihood:
    """Pixels are independent Bernoulli variables with probabilities sigmoid(logits)."""

    name = "bernoulli"
    learned = False

    def out_dim(self, x_dim: int) -> int:
        return x_dim

    def log_prob(self, x, out):
        """Return (log p(x|z) of shape (B, L), cache); ``out`` are logits (B, L, D)."""
        t, xb = out, x[:, None, :]                     # (B, L, D), (B, 1, D)
        sp = np.maximum(t, t.dtype.type(0))            # max(t, 0)
        tail = softplus_neg_abs(t)                     # softplus(t) - max(t, 0) = log1p(e^-|t|)
        elem = xb * t                                  # (B, L, D)
        elem -= sp                                     # x t - max(t, 0): exact for 0/1 pixels
        elem -= tail                                   # x t - softplus(t), each term <= 0
        log_px = elem.sum(-1)                          # (B, L)
        sp += tail                                     # softplus(t), for the backward
        return log_px, (xb, t, sp)

    def backward(self, dlog_px, cache):
        """Gradient w.r.t. the logits: dlog_px[..., None] * (x - sigmoid(t))."""
        xb, t, sp = cache
        d = np.subtract(t, sp)                         # one (B, L, D) array, then in place:
        np.exp(d, out=d)                               # sigmoid(t) = e^(t - softplus(t))
        np.subtract(xb, d, out=d)                      # x - sigmoid(t)
        d *= dlog_px[..., None]
        return d                                       # (B, L, D)

    def mean(self, out):
        """E[x|z] = sigmoid(logits)."""
        return sigmoid(out)

    def sample(self, out, rng):
        """x ~ Bernoulli(sigmoid(logits)), in the dtype of ``out``."""
        return (rng.random(out.shape) < self.mean(out)).astype(out.dtype)


class GaussianLikelihood:
    """Independent Gaussian pixels: fixed sigma (``scale``) or learned sigma >= ``min_scale``.

    Parameters
    ----------
    scale : float or None
        Fixed standard deviation sigma > 0; None means the decoder learns sigma per pixel.
    min_scale : float
        The floor sigma_min > 0 of a learned sigma (ignored when ``scale`` is given).
    """

    name = "gaussian"

    def __init__(self, scale: float | None = 0.1, min_scale: float = 1e-2):
        self.scale = None if scale is None else check_positive("scale", scale)
        self.min_scale = check_positive("min_scale", min_scale)
        self.learned = scale is None

    def out_dim(self, x_dim: int) -> int:
        return 2 * x_dim if self.learned else x_dim

    def _loc_log_scale(self, out):
        """Split the decoder output into loc and log sigma (and the softplus input r)."""
        dt = out.dtype.type
        if not self.learned:
            return out, dt(np.log(self.scale)), None
        D = out.shape[-1] // 2
        loc, r = out[..., :D], out[..., D:]
        log_scale = dt(np.log(self.min_scale)) + softplus(r)         # log sigma_min + softplus(r)
        return loc, log_scale, r

    def log_prob(self, x, out):
        """Return (log p(x|z) of shape (B, L), cache)."""
        loc, log_scale, r = self._loc_log_scale(out)
        dt = out.dtype.type
        inv_scale = np.exp(-log_scale)
        u = (x[:, None, :] - loc) * inv_scale                       # (B, L, D) standardized residual
        D = x.shape[-1]
        log_px = -dt(0.5) * (u * u).sum(-1) - dt(D * HALF_LOG_2PI)  # (B, L)
        log_px -= log_scale.sum(-1) if self.learned else dt(D) * log_scale
        return log_px, (u, inv_scale, r)

    def backward(self, dlog_px, cache):
        u, inv_scale, r = cache
        w = dlog_px[..., None]
        dloc = u * inv_scale * w                                    # d/dmu = u / sigma
        if not self.learned:
            return dloc
        sig_r = sigmoid(r)                                          # d softplus / dr
        dr = (u * u - 1) * sig_r * w                                # d/dlog sigma = u^2 - 1
        return np.concatenate([dloc, dr], axis=-1)

    def mean(self, out):
        return self._loc_log_scale(out)[0]

    def sample(self, out, rng):
        loc, log_scale, _ = self._loc_log_scale(out)
        noise = rng.standard_normal(loc.shape, dtype=loc.dtype)
        return loc + np.exp(log_scale) * noise


def make_likelihood(name: str, scale: float | None = 0.1, min_scale: float = 1e-2):
    """``"bernoulli"`` or ``"gaussian"`` (fixed ``scale``, or learned when ``scale`` is None)."""
    if name == "bernoulli":
        return BernoulliLikelihood()
    if name == "gaussian":
        return GaussianLikelihood(scale, min_scale)
    raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {name!r}")
