"""Whole-model finite-difference checks of the VAE objectives: every posterior x likelihood x
estimator, in float64 with fixed noise eps (which makes each objective deterministic)."""
import itertools

import numpy as np
import pytest

from scratchvae.gradcheck import check_gradients
from scratchvae.vae import VAE

TOL_MODEL = 1e-6
LIKELIHOODS = {"bernoulli": dict(likelihood="bernoulli"),
               "gaussian-fixed": dict(likelihood="gaussian", obs_scale=0.7),
               "gaussian-learned": dict(likelihood="gaussian", obs_scale=None, min_obs_scale=0.05)}


def _model_and_data(posterior, lik, seed=0, B=3, L=2):
    rng = np.random.default_rng(seed)
    vae = VAE(6, 3, rng=rng, hidden=(5,), activation="tanh", posterior=posterior,
              dtype=np.float64, **LIKELIHOODS[lik])
    for k, p in vae.params.items():      # non-trivial biases; larger weights for a curved objective
        p[...] = rng.standard_normal(p.shape) * (0.5 if k.endswith(".b") else 0.7)
    if lik == "bernoulli":
        x = (rng.random((B, 6)) < 0.5).astype(np.float64)
    else:
        x = rng.random((B, 6))
    eps = rng.standard_normal((B, L, 3))
    return vae, x, eps, rng


@pytest.mark.parametrize("posterior,lik,estimator",
                         list(itertools.product(["diagonal", "full"], LIKELIHOODS,
                                                ["analytic", "mc", "iwae"])))
def test_whole_model_gradients(posterior, lik, estimator):
    vae, x, eps, rng = _model_and_data(posterior, lik)
    beta = 1.0 if estimator == "iwae" else 0.6     # warm-up weight exercised where allowed
    obj, cache, _ = vae.forward(x, eps, estimator, beta)
    report = check_gradients(lambda: vae.forward(x, eps, estimator, beta)[0],
                             lambda d: vae.backward(d, cache), vae.params, rng=rng)
    assert report.ok(TOL_MODEL), f"\n{report}"
    assert len(report.max_rel_error) == len(vae.params)


def test_negative_control_wrong_noise_in_backward_fails():
    """A known peer bug: backward uses different noise than forward. The check must catch it."""
    vae, x, eps, rng = _model_and_data("diagonal", "bernoulli", seed=1)
    _, cache_other, _ = vae.forward(x, eps + 0.3, "mc")
    report = check_gradients(lambda: vae.forward(x, eps, "mc")[0],
                             lambda d: vae.backward(d, cache_other), vae.params, rng=rng)
    assert not report.ok(TOL_MODEL)
    assert report.overall > 1e-3


def test_negative_control_missing_logdet_path_fails():
    """Dropping the log|det dz/deps| term from the backward (a skipped path) must be caught,
    while the same check passes with the path in place."""
    vae, x, eps, rng = _model_and_data("diagonal", "gaussian-fixed", seed=2)
    _, cache, _ = vae.forward(x, eps, "mc")
    real = vae.posterior.rsample_backward

    def backward_without_logdet(d):
        vae.posterior.rsample_backward = lambda dz, dlog_det, c: real(dz, None, c)
        try:
            return vae.backward(d, cache)
        finally:
            del vae.posterior.rsample_backward          # back to the class's method

    forward = lambda: vae.forward(x, eps, "mc")[0]
    bad = check_gradients(forward, backward_without_logdet, vae.params, rng=np.random.default_rng(0))
    good = check_gradients(forward, lambda d: vae.backward(d, cache), vae.params,
                           rng=np.random.default_rng(0))
    assert good.ok(TOL_MODEL) and not bad.ok(TOL_MODEL)
    assert bad.max_rel_error["enc.1.W"] > 1e-3       # the encoder's log-scale outputs are wrong
    assert bad.max_rel_error["dec.1.W"] < TOL_MODEL  # the decoder does not see that path


def test_negative_control_iwae_without_softmax_weights_fails(monkeypatch):
    """The IWAE gradient weights each sample by its normalized importance weight
    softmax_k(log w_k); a backward that averages the samples uniformly (the ELBO's weights 1/K)
    must fail the check that the real backward passes."""
    import scratchvae.vae as vae_module
    vae, x, eps, rng = _model_and_data("diagonal", "gaussian-fixed", seed=2, L=3)
    _, cache, _ = vae.forward(x, eps, "iwae")
    forward = lambda: vae.forward(x, eps, "iwae")[0]
    good = check_gradients(forward, lambda d: vae.backward(d, cache), vae.params,
                           rng=np.random.default_rng(0))
    monkeypatch.setattr(vae_module, "softmax", lambda a: np.full_like(a, 1.0 / a.shape[-1]))
    bad = check_gradients(forward, lambda d: vae.backward(d, cache), vae.params,
                          rng=np.random.default_rng(0))
    assert good.ok(TOL_MODEL) and not bad.ok(TOL_MODEL)
    assert bad.overall > 1e-3, f"\n{bad}"


def test_negative_control_learned_scale_without_softplus_factor_fails(monkeypatch):
    """A learned sigma is log sigma = log sigma_min + softplus(r), so d/dr carries the factor
    d softplus/dr = sigmoid(r). Dropping it (treating r as log sigma) must fail the check, and only
    in the decoder's log-scale outputs, which is where that factor lives."""
    import scratchvae.likelihoods as lik_module
    vae, x, eps, rng = _model_and_data("diagonal", "gaussian-learned", seed=2)
    _, cache, _ = vae.forward(x, eps, "mc")
    forward = lambda: vae.forward(x, eps, "mc")[0]
    good = check_gradients(forward, lambda d: vae.backward(d, cache), vae.params,
                           rng=np.random.default_rng(0))
    monkeypatch.setattr(lik_module, "sigmoid", np.ones_like)
    bad = check_gradients(forward, lambda d: vae.backward(d, cache), vae.params,
                          rng=np.random.default_rng(0))
    assert good.ok(TOL_MODEL) and not bad.ok(TOL_MODEL)
    assert bad.max_rel_error["dec.1.b"] > 1e-3, f"\n{bad}"
