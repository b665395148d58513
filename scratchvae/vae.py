"""The variational autoencoder (Kingma & Welling 2014) and its objectives, forward and backward.

Model:   p(z) = N(0, I),  p_theta(x|z) from a decoder MLP (Bernoulli or Gaussian pixels,
likelihoods.py), and an approximate posterior q_phi(z|x) from an encoder MLP whose family
(diagonal or full-covariance Gaussian, posteriors.py) is chosen once, when the model is built.
With S noise draws eps_s ~ N(0, I) per example and z_s = g(eps_s, phi, x):

  "analytic"  ELBO = (1/S) sum_s log p(x|z_s) - KL(q(z|x) || p(z))            (K&W 2014 eq. 10)
  "mc"        ELBO = (1/S) sum_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)]     (K&W 2014 eq. 6)
              with log q(z_s|x) = log p(eps_s) - log|det dz/deps|   (the change of variables)
  "iwae"      L_S  = log (1/S) sum_s exp(log_weights_s),
              log_weights_s = log p(x|z_s) + log p(z_s) - log q(z_s|x)  (Burda et al. 2016 eq. 8)

KL warm-up multiplies the prior terms by beta in [0, 1] (analytic: E[log p(x|z)] - beta KL;
mc: (1/S) sum_s [log p(x|z_s) + beta (log p(z_s) - log q(z_s|x))]); the IWAE bound takes beta = 1.

A conditional VAE (Kingma, Rezende, Mohamed & Welling 2014, model M2 with the label observed;
Sohn, Lee & Yan 2015) is the same model with a one-hot label y appended to the inputs of both
networks: q(z|x, y) from the encoder on [x, y], p(x|z, y) from the decoder on [z, y]; build it
with ``n_classes=C`` and pass ``y`` to :meth:`VAE.forward`.

Backward. Every objective is a weighted sum of per-sample terms. With upstream gradient g_b for
example b (for a loss of -mean ELBO, g_b = -1/B) the weight of sample s is
    analytic, mc:  weights_bs = g_b / S
    iwae:          weights_bs = g_b * softmax_s(log_weights_bs)   (d logsumexp / d a = softmax)
and :meth:`VAE.backward` walks :meth:`VAE.forward` in reverse, line for line.
With ``eps`` given, ``forward`` is a deterministic function of the parameters, which is what lets
``tests/test_vae_gradcheck.py`` compare the backward pass with finite differences.
"""
from __future__ import annotations

import numpy as np

from .distributions import HALF_LOG_2PI
from .likelihoods import make_likelihood
from .nn import MLP
from .posteriors import make_posterior
from .stable import flush_subnormals, logmeanexp, softmax
from .validate import (check_float_array, check_in_range, check_int, check_int_sequence,
                       check_one_hot, check_positive, check_rng)

ESTIMATORS = ("analytic", "mc", "iwae")


class VAE:
    """Encoder q(z|x), decoder p(x|z), prior N(0, I); optionally conditioned on a label y.

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
    posterior : {"diagonal", "full", "planar", "radial", "householder", "sylvester", "iaf"}
        The family of q(z|x) (see :mod:`scratchvae.posteriors`); the last five are normalizing
        flows on the diagonal Gaussian (:mod:`scratchvae.flows.posterior`), trained with the
        "mc" or "iwae" estimator (they have no closed-form KL).
    flow_length : int
        K, the number of flow layers (flow posteriors only; 0 is exactly "diagonal").
    iaf_hidden, iaf_context_dim, iaf_activation : sequence of int, int, {"relu", "elu"}
        "iaf" only: hidden widths of each step's MADE (default (4 z_dim,)), the width of the
        context vector the encoder emits (default z_dim), and the MADE's hidden activation.
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
    n_classes : int or None
        None for the VAE; C >= 2 for the conditional VAE with one-hot labels y of width C.
    dtype : np.float32 (speed) or np.float64 (checks)
    """

    def __init__(self, x_dim: int, z_dim: int, *, rng: np.random.Generator, hidden=(400,),
                 activation: str = "relu", posterior: str = "diagonal",
                 likelihood: str = "bernoulli", obs_scale: float | None = 0.1,
                 min_obs_scale: float = 1e-2, init_obs_scale: float = 0.5,
                 n_classes: int | None = None, flow_length: int = 0, iaf_hidden=None,
                 iaf_context_dim: int | None = None, iaf_activation: str = "relu",
                 dtype=np.float32):
        check_int("x_dim", x_dim, minimum=1)
        check_int("z_dim", z_dim, minimum=1)
        check_rng("rng", rng)
        if n_classes is not None:
            check_int("n_classes", n_classes, minimum=2)
        hidden = check_int_sequence("hidden", hidden, minimum=1)
        self.x_dim, self.z_dim, self.n_classes = x_dim, z_dim, n_classes
        check_int("flow_length", flow_length, minimum=0)
        flow_options = {}
        if posterior == "iaf":
            flow_options = dict(iaf_hidden=list(iaf_hidden or (4 * z_dim,)),
                                iaf_context_dim=iaf_context_dim or z_dim,
                                iaf_activation=iaf_activation)
        elif iaf_hidden is not None or iaf_context_dim is not None or iaf_activation != "relu":
            raise ValueError(f"iaf_hidden, iaf_context_dim and iaf_activation apply to "
                             f"posterior='iaf' only, got posterior={posterior!r}")
        self.posterior = make_posterior(posterior, z_dim, flow_length=flow_length, rng=rng,
                                        dtype=dtype, **flow_options)
        if obs_scale is not None:
            check_positive("obs_scale", obs_scale)
        check_positive("min_obs_scale", min_obs_scale)
        self.likelihood = make_likelihood(likelihood, obs_scale, min_obs_scale)
        C = n_classes or 0                                     # label columns appended to inputs
        self.encoder = MLP([x_dim + C, *hidden, self.posterior.n_params], activation, rng=rng,
                           dtype=dtype)
        self.decoder = MLP([z_dim + C, *hidden[::-1], self.likelihood.out_dim(x_dim)], activation,
                           rng=rng, dtype=dtype)
        self.dtype = self.encoder.dtype
        if hasattr(self.posterior, "initial_bias"):   # flows whose layers divide by |w|^2
            self.encoder.params[f"{len(hidden)}.b"] += self.posterior.initial_bias(self.dtype)
        if self.likelihood.learned:
            init = check_positive("init_obs_scale", init_obs_scale)
            if init <= min_obs_scale:
                raise ValueError(f"init_obs_scale must exceed min_obs_scale={min_obs_scale}, got {init}")
            r0 = np.log(np.expm1(np.log(init / min_obs_scale)))   # softplus^-1(log(init / sigma_min))
            self.decoder.params[f"{len(hidden)}.b"][x_dim:] = r0
        self.params = {**{"enc." + k: v for k, v in self.encoder.params.items()},
                       **{"dec." + k: v for k, v in self.decoder.params.items()},
                       **{"flow." + k: v for k, v in self.posterior.params.items()}}
        self.config = dict(x_dim=x_dim, z_dim=z_dim, hidden=hidden, activation=activation,
                           posterior=posterior, likelihood=likelihood, obs_scale=obs_scale,
                           min_obs_scale=min_obs_scale, init_obs_scale=init_obs_scale,
                           dtype=self.dtype.name)
        if n_classes is not None:
            self.config["n_classes"] = n_classes
        if posterior not in ("diagonal", "full"):
            self.config.update(flow_length=flow_length, **flow_options)

    # ---------------------------------------------------------------------------------------
    # q(z|x) and p(x|z) on their own
    # ---------------------------------------------------------------------------------------
    def encode(self, x, y=None):
        """q(z|x) (or q(z|x, y)) for a batch: ``(q, cache)``, q a distribution object with
        ``loc`` (B, z_dim) (see :mod:`scratchvae.posteriors`). ``x`` (B, x_dim) is checked."""
        check_float_array("x", x, ndim=2, shape=(None, self.x_dim), dtype=self.dtype)
        self.check_labels("y", y, len(x))
        return self._encode(x, y)

    def _encode(self, x, y):
        h, enc_cache = self.encoder.forward(_with_labels(x, y))                 # (B, n_params)
        if not np.all(np.isfinite(h)):   # (B, n_params) numbers: cheap, and names the real cause
            raise FloatingPointError("the encoder's output is not finite: the parameters have "
                                     "diverged (or x holds huge values)")
        q, q_cache = self.posterior.encode(h)
        return q, (enc_cache, q_cache)

    def decode(self, z, y=None):
        """Decoder output for latents z (N, z_dim): the likelihood's parameters (logits or loc)."""
        check_float_array("z", z, ndim=2, shape=(None, self.z_dim), dtype=self.dtype)
        self.check_labels("y", y, len(z))
        return self.decoder.forward(_with_labels(z, y))[0]

    # ---------------------------------------------------------------------------------------
    # The objective: forward
    # ---------------------------------------------------------------------------------------
    def forward(self, x, eps, estimator: str = "analytic", beta: float = 1.0, *, y=None,
                check: bool = True):
        """Per-example objective (ELBO or IWAE bound) and a cache for :meth:`backward`.

        Parameters
        ----------
        x : ndarray (B, x_dim), the model's dtype
        eps : ndarray (B, S, z_dim), the model's dtype
            Standard normal noise; S samples per example.
        estimator : {"analytic", "mc", "iwae"}
        beta : float in [0, 1]
            KL warm-up weight (must be 1 for "iwae").
        y : ndarray (B, n_classes) or None
            One-hot labels, for a model built with ``n_classes`` (see
            :func:`scratchvae.data.one_hot`).
        check : bool
            Validate the inputs (the trainer validates its data once and passes False).

        Returns
        -------
        objective : ndarray (B,)
        cache : dict
            What backward needs; also ``z`` (B, S, z_dim), the samples, and for "mc" and "iwae"
            ``log_q`` (B, S) = log q(z_s|x) and ``log_weights`` (B, S) =
            log p(x|z_s) + log p(z_s) - log q(z_s|x).
        stats : dict of (B,) arrays: ``rec`` (mean log p(x|z)), ``kl`` (KL(q||p): analytic, or
            for a flow posterior its Monte Carlo estimate mean_s [log q(z_s|x) - log p(z_s)]).
        """
        if check:
            self._check_inputs(x, eps, estimator, beta, y)
        B, S, Dz = eps.shape
        dt = x.dtype.type
        q, q_cache = self._encode(x, y)                                         # q(z|x)
        z, log_det, z_cache = self.posterior.rsample(q, eps)                    # (B, S, Dz), (B, S)
        zy = _with_labels(z.reshape(B * S, Dz), _repeat_rows(y, S))             # (B*S, Dz [+ C])
        out, dec_cache = self.decoder.forward(zy)                               # (B*S, P)
        log_px, lik_cache = self.likelihood.log_prob(x, out.reshape(B, S, out.shape[-1]))  # (B, S)
        rec = log_px.mean(axis=1)                                               # (B,)
        log_q = log_weights = None
        if estimator == "analytic":
            kl = self.posterior.kl_to_prior(q)                                  # (B,)
            objective = rec - dt(beta) * kl                                     # (B,)
        else:
            log_pz = (-dt(0.5) * z * z - dt(HALF_LOG_2PI)).sum(-1)              # (B, S) log N(z; 0, I)
            log_p_eps = -dt(0.5) * (eps * eps).sum(-1) - dt(Dz * HALF_LOG_2PI)  # (B, S) log N(eps; 0, I)
            log_q = log_p_eps - log_det                                         # (B, S) change of variables
            log_weights = log_px + log_pz - log_q                               # (B, S)
            kl = (self.posterior.kl_to_prior(q) if self.posterior.has_analytic_kl  # (B,)
                  else (log_q - log_pz).mean(axis=1))        # else its Monte Carlo estimate
            if estimator == "mc":
                objective = rec + dt(beta) * (log_pz - log_q).mean(axis=1)      # (B,)
            else:
                objective = logmeanexp(log_weights)                             # (B,)
        cache = dict(estimator=estimator, beta=beta, n_samples=S, q=q, q_cache=q_cache, z=z,
                     z_cache=z_cache, dec_cache=dec_cache, lik_cache=lik_cache, log_q=log_q,
                     log_weights=log_weights)
        return objective, cache, {"rec": rec, "kl": kl}

    # ---------------------------------------------------------------------------------------
    # The objective: backward (the lines of forward, bottom to top)
    # ---------------------------------------------------------------------------------------
    def backward(self, dobjective, cache):
        """Gradients of sum_b objective_b * dobjective_b for every parameter (keys of params).

        ``dobjective`` (B,), the model's dtype; for a loss of -mean objective it is -1/B.
        """
        if not isinstance(cache, dict) or "lik_cache" not in cache:
            raise TypeError(f"cache must be the cache dict returned by VAE.forward, got "
                            f"{type(cache).__name__}")
        c = cache
        estimator, beta, S, q, z = c["estimator"], c["beta"], c["n_samples"], c["q"], c["z"]
        B, _, Dz = z.shape
        check_float_array("dobjective", dobjective, shape=(B,), dtype=self.dtype)
        dt = z.dtype.type
        # - beta KL(q || p), the last line of the analytic objective
        if estimator == "analytic":
            dq_kl = self.posterior.kl_to_prior_backward(-dt(beta) * dobjective, q)
        # objective -> the gradient of each sample's log p(x|z_s) and log p(z_s) - log q(z_s|x)
        if estimator == "iwae":
            dlog_px = dobjective[:, None] * softmax(c["log_weights"])         # (B, S)
            dlog_pz = dlog_px                                                 # beta = 1
        else:
            dlog_px = np.repeat(dobjective[:, None] / dt(S), S, axis=1)      # (B, S)
            dlog_pz = dt(beta) * dlog_px
        # log p(x|z) -> decoder -> dz
        dout = self.likelihood.backward(dlog_px, c["lik_cache"])             # (B, S, P)
        if estimator == "iwae":  # IWAE weights below ~e^-87 leave subnormal entries in dout
            flush_subnormals(dout)
        dzy, dec_grads = self.decoder.backward(dout.reshape(B * S, dout.shape[-1]), c["dec_cache"])
        dz = dzy[:, :Dz].reshape(B, S, Dz)                  # (B, S, Dz); label columns: no gradient
        # log p(z) - log q(z|x) = log p(z) - log p(eps) + log|det dz/deps|
        dlog_det = None
        if estimator != "analytic":
            dz = dz - dlog_pz[..., None] * z                                 # d log N(z; 0, I)/dz = -z
            dlog_det = dlog_pz                                               # (B, S)
        # z = g(eps, q) -> dq
        dq, flow_grads = self.posterior.rsample_backward(dz, dlog_det, c["z_cache"])
        if estimator == "analytic":
            dq = {k: dq[k] + dq_kl[k] for k in dq}
        # q <- encoder
        dh = self.posterior.encode_backward(dq, c["q_cache"][1])             # (B, n_params)
        _, enc_grads = self.encoder.backward(dh, c["q_cache"][0], need_dx=False)
        return {**{"enc." + k: v for k, v in enc_grads.items()},
                **{"dec." + k: v for k, v in dec_grads.items()},
                **{"flow." + k: v for k, v in flow_grads.items()}}

    def loss_and_grads(self, x, eps, estimator="analytic", beta=1.0, *, y=None, check=True):
        """Loss = -mean_b objective_b, its gradients, and batch-mean statistics (floats).

        Raises FloatingPointError when the objective is not finite (diverged parameters).
        """
        objective, cache, stats = self.forward(x, eps, estimator, beta, y=y, check=check)
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
    # Input checks (at the door)
    # ---------------------------------------------------------------------------------------
    def check_data(self, name, x, *, labels=None):
        """Validate data for this model: (N, x_dim) of its dtype, binary for a Bernoulli
        likelihood, and one-hot ``labels`` (N, n_classes) exactly when the model has classes."""
        check_float_array(name, x, ndim=2, shape=(None, self.x_dim), dtype=self.dtype)
        if self.likelihood.name == "bernoulli" and not np.all((x == 0) | (x == 1)):
            raise ValueError(f"{name} must be binary (0/1) for a Bernoulli likelihood; binarize it "
                             f"first (scratchvae.data) or use likelihood='gaussian'")
        self.check_labels("y", labels, len(x))

    def check_labels(self, name, y, n):
        """Require one-hot ``y`` (n, n_classes) for a conditional VAE and None otherwise."""
        if self.n_classes is None:
            if y is not None:
                raise ValueError(f"{name} was given, but this model has no labels (build it with "
                                 f"n_classes=C for a conditional VAE)")
            return
        if y is None:
            raise ValueError(f"{name} is required: this is a conditional VAE with n_classes="
                             f"{self.n_classes} (one-hot rows, see scratchvae.data.one_hot)")
        check_one_hot(name, y, n, self.n_classes, dtype=self.dtype)

    def check_objective(self, estimator, beta=1.0):
        """Require an estimator this model can compute and a warm-up weight it accepts."""
        if not isinstance(estimator, str) or estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        check_in_range("beta", beta, 0.0, 1.0)
        if estimator == "analytic" and not self.posterior.has_analytic_kl:
            raise ValueError(f"estimator='analytic' needs a closed-form KL, which the "
                             f"{self.posterior.name!r} posterior has not: use 'mc' or 'iwae'")
        if estimator == "iwae" and beta != 1.0:
            raise ValueError(f"beta must be 1 for the iwae bound (warm-up applies to ELBOs), got {beta}")

    def _check_inputs(self, x, eps, estimator, beta, y):
        self.check_objective(estimator, beta)
        check_float_array("eps", eps, ndim=3, shape=(len(x), None, self.z_dim), dtype=self.dtype)
        if eps.shape[1] < 1:
            raise ValueError(f"eps must hold at least one sample per example, got shape {eps.shape}")
        self.check_data("x", x, labels=y)


def _with_labels(a, y):
    """[a, y] along the feature axis, or ``a`` itself when there are no labels."""
    return a if y is None else np.concatenate([a, y], axis=1)


def _repeat_rows(y, n_samples):
    """Each label row repeated for the S samples of its example: (B, C) -> (B*S, C)."""
    return None if y is None else np.repeat(y, n_samples, axis=0)
