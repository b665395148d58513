"""The variational autoencoder (Kingma & Welling 2014) and its objectives, forward and backward.

Model:   p(z) = N(0, I),  p_theta(x|z) from a decoder MLP (Bernoulli or Gaussian pixels).
Posterior approximation q_phi(z|x) from an encoder MLP, one of
    diagonal:  q = N(mu, diag(sigma^2)),  z = mu + sigma * eps          log|det dz/deps| = sum log sigma
    full:      q = N(mu, L L^T),          z = mu + L eps  (L lower, L_ii > 0)
                                                                      log|det dz/deps| = sum log L_ii
with eps ~ N(0, I) (the reparameterization trick, Kingma & Welling 2014 section 2.4).

Objectives for one example x with L (or K) noise draws eps_l, z_l = g(eps_l, phi, x):

  "analytic"  ELBO = (1/L) sum_l log p(x|z_l) - KL(q(z|x) || p(z))            (K&W 2014 eq. 10)
  "mc"        ELBO = (1/L) sum_l [log p(x|z_l) + log p(z_l) - log q(z_l|x)]     (K&W 2014 eq. 6)
              with log q(z_l|x) = log p(eps_l) - log|det dz/deps|   (the change of variables)
  "iwae"      L_K  = log (1/K) sum_k w_k,  log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)
                                                                       (Burda et al. 2016 eq. 8)

KL warm-up multiplies the prior terms by beta in [0, 1]: analytic  E[log p(x|z)] - beta KL;
mc  (1/L) sum_l [log p(x|z_l) + beta (log p(z_l) - log q(z_l|x))]. (IWAE takes beta = 1 only.)

Backward. Every objective is a weighted sum of per-sample terms; with upstream gradient g_b for
example b (for a loss of -mean ELBO, g_b = -1/B) the per-sample weights are
    analytic, mc:  w_bl = g_b / L
    iwae:          w_bk = g_b * softmax_k(log w_bk)     (d log sum_k e^{a_k} / d a_k = softmax)
and the chain rule runs backwards through the code of ``forward``:
    log p(x|z)          -> decoder output (likelihoods.py) -> decoder MLP -> dz
    log p(z) = sum log N(z; 0, 1)                         dz += w * beta * (-z)
    -log q = -log p(eps) + log|det|   (eps is fixed noise: only log|det| depends on phi)
                                                          dlog|det| = w * beta
    z = g(eps, phi)  (transforms.py)                      -> dmu, dlog sigma (or dL)
    analytic KL                                           dmu += -beta g mu, ... (distributions.py)
    -> encoder MLP.
With ``eps`` given, ``forward`` is a deterministic function of the parameters, which is what
lets ``tests/test_vae_gradcheck.py`` compare this backward pass with finite differences.
"""
from __future__ import annotations

import numpy as np

from .validate import check_float_array, check_in_range, check_int, check_positive, check_rng
from .distributions import MultivariateNormal, Normal, standard_normal_log_prob
from .likelihoods import make_likelihood
from .nn import MLP
from .transforms import (diagonal_affine, diagonal_affine_backward, log_q_via_jacobian,
                         tril_affine, tril_affine_backward, tril_from_params,
                         tril_from_params_backward)

ESTIMATORS = ("analytic", "mc", "iwae")
POSTERIORS = ("diagonal", "full")


class VAE:
    """Encoder q(z|x), decoder p(x|z), prior N(0, I).

    Parameters
    ----------
    x_dim, z_dim : int
        Data and latent dimensions.
    rng : numpy.random.Generator
        Draws the initial weights (encoder first, then decoder).
    hidden : sequence of int
        Hidden widths of the encoder; the decoder mirrors them (e.g. (400,) gives 784-400-2z for
        the encoder and z-400-784 for the decoder).
    activation : str
        Hidden activation of both networks.
    posterior : {"diagonal", "full"}
    likelihood : {"bernoulli", "gaussian"}
    obs_scale : float or None
        Gaussian likelihood only: fixed sigma, or None for a learned sigma >= ``min_obs_scale``.
    min_obs_scale : float
        The floor sigma_min of a learned sigma (see likelihoods.py for why it must exist).
    init_obs_scale : float
        A learned sigma starts at this value for every pixel: the decoder's biases r0 of the
        log-scale outputs are set so that log sigma_min + softplus(r0) = log init_obs_scale, i.e.
        r0 = log(expm1(log(init_obs_scale / sigma_min))). (With r0 = 0, sigma would start at
        2 sigma_min, far narrower than the data's residuals, and the first steps would see
        -ELBO of order 1e5 nats.)
    dtype : np.float32 (speed) or np.float64 (checks)
    """

    def __init__(self, x_dim: int, z_dim: int, *, rng: np.random.Generator, hidden=(400,),
                 activation: str = "relu", posterior: str = "diagonal",
                 likelihood: str = "bernoulli", obs_scale: float | None = 0.1,
                 min_obs_scale: float = 1e-2, init_obs_scale: float = 0.5, dtype=np.float32):
        check_int("x_dim", x_dim, minimum=1)
        check_int("z_dim", z_dim, minimum=1)
        check_rng("rng", rng)
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        self.x_dim, self.z_dim, self.posterior = x_dim, z_dim, posterior
        self.likelihood = make_likelihood(likelihood, obs_scale, min_obs_scale)
        hidden = [check_int(f"hidden[{i}]", h, minimum=1) for i, h in enumerate(hidden)]
        n_q = 2 * z_dim if posterior == "diagonal" else 2 * z_dim + z_dim * (z_dim - 1) // 2
        self.encoder = MLP([x_dim, *hidden, n_q], activation, rng=rng, dtype=dtype)
        self.decoder = MLP([z_dim, *hidden[::-1], self.likelihood.out_dim(x_dim)], activation,
                           rng=rng, dtype=dtype)
        self.dtype = self.encoder.dtype
        if self.likelihood.learned:
            init = check_positive("init_obs_scale", init_obs_scale)
            if init <= min_obs_scale:
                raise ValueError(f"init_obs_scale must exceed min_obs_scale={min_obs_scale}, got {init}")
            r0 = np.log(np.expm1(np.log(init / min_obs_scale)))   # softplus^-1(log(init / sigma_min))
            self.decoder.params[f"{len(hidden)}.b"][x_dim:] = r0
        self.params = {**{"enc." + k: v for k, v in self.encoder.params.items()},
                       **{"dec." + k: v for k, v in self.decoder.params.items()}}
        self.config = dict(x_dim=x_dim, z_dim=z_dim, hidden=hidden, activation=activation,
                           posterior=posterior, likelihood=likelihood, obs_scale=obs_scale,
                           min_obs_scale=min_obs_scale, init_obs_scale=init_obs_scale,
                           dtype=self.dtype.name)

    # ---------------------------------------------------------------------------------------
    # q(z|x)
    # ---------------------------------------------------------------------------------------
    def encode(self, x):
        """Posterior parameters for a batch: ``(q, cache)`` where ``q`` is a ``Normal`` (loc,
        log_scale of shape (B, Dz)) or a ``MultivariateNormal`` (loc (B, Dz), scale_tril
        (B, Dz, Dz))."""
        h, enc_cache = self.encoder.forward(x)                       # (B, n_q)
        if not np.all(np.isfinite(h)):   # (B, n_q) numbers: cheap; q's own checks would blame q
            raise FloatingPointError("the encoder's output is not finite: the parameters have "
                                     "diverged (or x holds huge values)")
        Dz = self.z_dim
        if self.posterior == "diagonal":
            return Normal(h[:, :Dz], h[:, Dz:]), (enc_cache, None)
        with np.errstate(over="ignore", under="ignore"):
            L, tril_cache = tril_from_params(h[:, Dz:2 * Dz], h[:, 2 * Dz:])  # (B, Dz, Dz)
        if not np.all(np.diagonal(L, axis1=1, axis2=2) > 0) or not np.all(np.isfinite(L)):
            raise FloatingPointError("the posterior's Cholesky factor has a diagonal that over- or "
                                     "underflowed (exp of the encoder's log_diag): the parameters "
                                     "have diverged")
        return MultivariateNormal(h[:, :Dz], L), (enc_cache, tril_cache)

    def _encode_backward(self, dloc, dq2, cache):
        """Encoder gradients from dloc (B, Dz) and dlog_scale (B, Dz) or dscale_tril (B, Dz, Dz)."""
        enc_cache, tril_cache = cache
        if self.posterior == "diagonal":
            dh = np.concatenate([dloc, dq2], axis=1)
        else:
            g = tril_from_params_backward(dq2, tril_cache)
            dh = np.concatenate([dloc, g["log_diag"], g["offdiag"]], axis=1)
        _, grads = self.encoder.backward(dh, enc_cache, need_dx=False)
        return grads

    # ---------------------------------------------------------------------------------------
    # The objective: forward
    # ---------------------------------------------------------------------------------------
    def forward(self, x, eps, estimator: str = "analytic", beta: float = 1.0, check: bool = True):
        """Per-example objective (ELBO or IWAE bound) and a cache for :meth:`backward`.

        Parameters
        ----------
        x : ndarray (B, x_dim), the model's dtype
        eps : ndarray (B, L, z_dim), the model's dtype
            Standard normal noise; L samples per example (K for "iwae").
        estimator : {"analytic", "mc", "iwae"}
        beta : float in [0, 1]
            KL warm-up weight (must be 1 for "iwae").
        check : bool
            Validate ``x`` and ``eps`` (the trainer validates its data once and passes False).

        Returns
        -------
        objective : ndarray (B,)
        cache : dict
            What backward needs; also ``z`` (B, L, Dz) and, for "mc" and "iwae", ``log_w``
            (B, L) = log p(x|z_l) + log p(z_l) - log q(z_l|x), the per-sample ELBO terms.
        stats : dict of (B,) arrays: ``rec`` (mean log p(x|z)), ``kl`` (analytic KL(q||p)).
        """
        if check:
            self._check_inputs(x, eps, estimator, beta)
        B, L, Dz = eps.shape
        q, q_cache = self.encode(x)
        loc_r = np.repeat(q.loc[:, None, :], L, axis=1)                        # (B, L, Dz)
        if self.posterior == "diagonal":
            log_scale_r = np.repeat(q.log_scale[:, None, :], L, axis=1)        # (B, L, Dz)
            z, log_abs_det, t_cache = diagonal_affine(eps, loc_r, log_scale_r)
        else:
            L_r = np.repeat(q.scale_tril[:, None], L, axis=1)                  # (B, L, Dz, Dz)
            z, log_abs_det, t_cache = tril_affine(eps, loc_r, L_r)             # (B, L, Dz), (B, L)
        out, dec_cache = self.decoder.forward(z.reshape(B * L, Dz))            # (B*L, P)
        log_px, lik_cache = self.likelihood.log_prob(x, out.reshape(B, L, -1))  # (B, L)
        kl = q.kl_to_standard_normal()
        kl = kl.sum(-1) if self.posterior == "diagonal" else kl                # (B,)
        rec = log_px.mean(axis=1)                                              # (B,)
        log_w = None
        if estimator == "analytic":
            objective = rec - x.dtype.type(beta) * kl
        else:
            log_pz = standard_normal_log_prob(z).sum(-1)                       # (B, L)
            log_qz = log_q_via_jacobian(eps, log_abs_det)                      # (B, L)
            log_w = log_px + log_pz - log_qz                                   # (B, L)
            if estimator == "mc":
                objective = rec + x.dtype.type(beta) * (log_pz - log_qz).mean(axis=1)
            else:
                objective = _logmeanexp(log_w)
        cache = dict(estimator=estimator, beta=beta, q=q, q_cache=q_cache, z=z, t_cache=t_cache,
                     dec_cache=dec_cache, lik_cache=lik_cache, log_w=log_w, n_samples=L)
        return objective, cache, {"rec": rec, "kl": kl}

    # ---------------------------------------------------------------------------------------
    # The objective: backward
    # ---------------------------------------------------------------------------------------
    def backward(self, dobjective, cache):
        """Gradients of sum_b objective_b * dobjective_b for every parameter (keys of params)."""
        c = cache
        estimator, beta, q, z, log_w, L = (c["estimator"], c["beta"], c["q"], c["z"], c["log_w"],
                                           c["n_samples"])
        B, _, Dz = z.shape
        check_float_array("dobjective", dobjective, shape=(B,), dtype=self.dtype)
        dt = z.dtype.type
        if estimator == "iwae":
            w = dobjective[:, None] * _softmax(log_w)                # (B, K) normalized weights
            b = dt(1)
        else:
            w = np.repeat(dobjective[:, None] / dt(L), L, axis=1)   # (B, L)
            b = dt(beta)
        dout = self.likelihood.backward(w, c["lik_cache"])                # (B, L, P)
        dz, dec_grads = self.decoder.backward(dout.reshape(B * L, -1), c["dec_cache"])
        dz = dz.reshape(B, L, Dz)
        dlog_abs_det = None
        if estimator != "analytic":
            dz = dz - (b * w)[..., None] * z                          # log p(z): d/dz = -z
            dlog_abs_det = b * w                                      # -log q = ... + log|det|
        if self.posterior == "diagonal":
            g = diagonal_affine_backward(dz, dlog_abs_det, c["t_cache"])
            dq2 = g["log_scale"].sum(axis=1)                         # (B, Dz)
        else:
            g = tril_affine_backward(dz, dlog_abs_det, c["t_cache"])
            dq2 = g["scale_tril"].sum(axis=1)                        # (B, Dz, Dz)
        dloc = g["loc"].sum(axis=1)                                  # (B, Dz)
        if estimator == "analytic":                                  # - beta * KL(q || p)
            gkl = q.kl_to_standard_normal_grads()
            coef = -dt(beta) * dobjective
            dloc = dloc + coef[:, None] * gkl["loc"]
            if self.posterior == "diagonal":
                dq2 = dq2 + coef[:, None] * gkl["log_scale"]
            else:
                dq2 = dq2 + coef[:, None, None] * gkl["scale_tril"]
        enc_grads = self._encode_backward(dloc, dq2, c["q_cache"])
        return {**{"enc." + k: v for k, v in enc_grads.items()},
                **{"dec." + k: v for k, v in dec_grads.items()}}

    def loss_and_grads(self, x, eps, estimator="analytic", beta=1.0, check=True):
        """Loss = -mean_b objective_b, its gradients, and batch-mean statistics (floats)."""
        objective, cache, stats = self.forward(x, eps, estimator, beta, check)
        if not np.all(np.isfinite(objective)):   # B numbers: cheap, and backward would fail less clearly
            raise FloatingPointError(f"the {estimator} objective is not finite for "
                                     f"{int(np.sum(~np.isfinite(objective)))} of {len(objective)} "
                                     f"examples: the parameters have diverged")
        B = x.shape[0]
        grads = self.backward(np.full(B, -1.0 / B, dtype=self.dtype), cache)
        means = {k: float(v.mean()) for k, v in stats.items()}
        means["objective"] = float(objective.mean())
        return -means["objective"], grads, means

    # ---------------------------------------------------------------------------------------
    # p(x|z)
    # ---------------------------------------------------------------------------------------
    def decode(self, z):
        """Decoder output for latents z (N, Dz): the likelihood's parameters (logits or loc...)."""
        check_float_array("z", z, ndim=2, shape=(None, self.z_dim), dtype=self.dtype)
        return self.decoder.forward(z)[0]

    def _check_inputs(self, x, eps, estimator, beta):
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        check_in_range("beta", beta, 0.0, 1.0)
        if estimator == "iwae" and beta != 1.0:
            raise ValueError(f"beta must be 1 for the iwae bound (warm-up applies to ELBOs), got {beta}")
        check_float_array("x", x, ndim=2, shape=(None, self.x_dim), dtype=self.dtype)
        check_float_array("eps", eps, ndim=3, shape=(x.shape[0], None, self.z_dim), dtype=self.dtype)
        if eps.shape[1] < 1:
            raise ValueError(f"eps must hold at least one sample per example, got shape {eps.shape}")
        if self.likelihood.name == "bernoulli" and not np.all((x == 0) | (x == 1)):
            raise ValueError("x must be binary (0/1) for a Bernoulli likelihood; binarize it first "
                             "(scratchvae.data) or use likelihood='gaussian'")


def _logmeanexp(a):
    """log (1/K) sum_k exp(a_k) over the last axis, with the max shifted out (no overflow)."""
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).mean(axis=-1, keepdims=True)))[..., 0]


def _softmax(a):
    """exp(a_k - logsumexp(a)) over the last axis, max-shifted."""
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
