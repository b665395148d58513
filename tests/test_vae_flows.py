"""The VAE with a normalizing-flow posterior: whole-model gradient checks for every flow x
likelihood x estimator, log q(z|x) against a numerical Jacobian of eps -> z, flow_length=0 equal
to the diagonal posterior, and the flows through training, checkpoints, evaluation, sampling."""
import itertools

import numpy as np
import pytest

from scratchvae.evaluate import elbo, log_likelihood
from scratchvae.generate import encode, sample_prior
from scratchvae.gradcheck import check_gradients
from scratchvae.train import TrainConfig, load_model, train
from scratchvae.vae import VAE

FLOWS = ["planar", "radial", "householder", "sylvester", "iaf"]
TOL_MODEL = 1e-6
# Central-difference step. Some gradient entries of the flows' raw parameters are ~1e-5 (a tanh
# near saturation in a planar or Sylvester layer), where round-off at h = 1e-4 reaches ~1e-6
# relative; at h = 1e-3 the 5-point stencil's truncation is still negligible. Measured over all
# 40 flow x likelihood x estimator cases: worst 9.6e-8 at seed 0, 4.8e-7 over seeds 0-3.
H_FD = 1e-3
LIKELIHOODS = {"bernoulli": dict(likelihood="bernoulli"),
               "gaussian-fixed": dict(likelihood="gaussian", obs_scale=0.7),
               "gaussian-learned": dict(likelihood="gaussian", obs_scale=None, min_obs_scale=0.05)}


def _model_and_data(posterior, lik="bernoulli", seed=0, B=3, S=2, flow_length=2):
    """A float64 VAE (x 6, z 3, hidden 5, tanh) with non-trivial weights. The IAF's MADE uses
    ELU here: ReLU kinks make central differences jump (tests/test_flows_iaf.py checks the ReLU
    MADE with fixtures kept away from its kinks); the weights are moderate (0.5, the IAF's 0.3)
    so that few units saturate."""
    rng = np.random.default_rng(seed)
    extra = dict(iaf_activation="elu", iaf_hidden=(6,)) if posterior == "iaf" else {}
    vae = VAE(6, 3, rng=rng, hidden=(5,), activation="tanh", posterior=posterior,
              flow_length=flow_length, dtype=np.float64, **extra, **LIKELIHOODS[lik])
    for k, p in vae.params.items():
        p[...] = rng.standard_normal(p.shape) * (0.5 if k.endswith(".b") else
                                                 0.3 if k.startswith("flow.") else 0.5)
    x = (rng.random((B, 6)) < 0.5).astype(np.float64) if lik == "bernoulli" else rng.random((B, 6))
    return vae, x, rng.standard_normal((B, S, 3)), rng


# The fast lane checks every flow x estimator with Bernoulli pixels; the Gaussian likelihoods
# (whose backward is independent of the posterior, and checked with every affine posterior in
# tests/test_vae_gradcheck.py) complete the grid in the slow lane.
GRID = [pytest.param(post, lik, est, marks=[pytest.mark.slow] if lik != "bernoulli" else [])
        for post, lik, est in itertools.product(FLOWS, LIKELIHOODS, ["mc", "iwae"])]


@pytest.mark.parametrize("posterior,lik,estimator", GRID)
def test_whole_model_gradients(posterior, lik, estimator):
    vae, x, eps, rng = _model_and_data(posterior, lik)
    beta = 1.0 if estimator == "iwae" else 0.6
    _, cache, _ = vae.forward(x, eps, estimator, beta)
    report = check_gradients(lambda: vae.forward(x, eps, estimator, beta)[0],
                             lambda d: vae.backward(d, cache), vae.params, rng=rng, h=H_FD)
    assert report.ok(TOL_MODEL), f"\n{report}"
    assert set(report.max_rel_error) == set(vae.params)
    assert any(k.startswith("flow.") for k in vae.params) == (posterior == "iaf")


@pytest.mark.parametrize("posterior", [f for f in FLOWS if f != "householder"])
def test_negative_control_dropping_the_flows_log_det_fails(posterior, monkeypatch):
    """If backward forgets that every layer's log|det| enters log q (passing zeros to the
    layers), the same check must fail. (Householder layers are volume preserving, log|det| = 0:
    there is nothing to drop.)"""
    vae, x, eps, rng = _model_and_data(posterior, "gaussian-fixed")
    _, cache, _ = vae.forward(x, eps, "mc")
    family = vae.posterior
    base_backward = family.base.rsample_backward
    real = type(family).rsample_backward

    def without_flow_log_det(self, dz, dlog_det, c):
        zeros = np.zeros_like(dlog_det)
        dq, grads = real(self, dz, zeros, c)                  # layers see no log-det weight
        dq_base, _ = base_backward(np.zeros_like(dz), dlog_det - zeros, c[0])
        dq["log_scale"] = dq["log_scale"] + dq_base["log_scale"]   # the base keeps its own
        return dq, grads

    monkeypatch.setattr(type(family), "rsample_backward", without_flow_log_det)
    bad = check_gradients(lambda: vae.forward(x, eps, "mc")[0], lambda d: vae.backward(d, cache),
                          vae.params, rng=rng, h=H_FD)
    assert not bad.ok(TOL_MODEL)
    assert bad.overall > 1e-4, f"\n{bad}"


def _numerical_jacobian(f, v, h=1e-6):
    """J[i, j] = d f_i / d v_j by central differences (float64)."""
    J = np.empty((v.size, v.size))
    for j in range(v.size):
        e = np.zeros_like(v)
        e[j] = h
        J[:, j] = (f(v + e) - f(v - e)) / (2 * h)
    return J


@pytest.mark.parametrize("posterior", FLOWS + ["diagonal", "full"])
def test_log_q_is_log_p_eps_minus_log_det_of_a_numerical_jacobian(posterior):
    """The cache's z (B, S, Dz) and log_q (B, S): for each example and sample,
    log q(z|x) = log N(eps; 0, I) - log|det dz/deps| with the Jacobian taken numerically by
    running the VAE's own forward on perturbed noise."""
    flow_length = 0 if posterior in ("diagonal", "full") else 3
    vae, x, eps, _ = _model_and_data(posterior, seed=1, flow_length=flow_length)
    _, cache, _ = vae.forward(x, eps, "mc")
    assert cache["z"].shape == eps.shape and cache["log_q"].shape == eps.shape[:2]
    for b, s in itertools.product(range(eps.shape[0]), range(eps.shape[1])):
        def z_of(e):
            noise = eps.copy()
            noise[b, s] = e
            return vae.forward(x, noise, "mc")[1]["z"][b, s]
        sign, log_det = np.linalg.slogdet(_numerical_jacobian(z_of, eps[b, s]))
        log_p_eps = -0.5 * eps[b, s] @ eps[b, s] - 1.5 * np.log(2 * np.pi)
        expected_sign = -1.0 if posterior == "householder" and flow_length % 2 else 1.0
        assert sign == expected_sign
        np.testing.assert_allclose(cache["log_q"][b, s], log_p_eps - log_det, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("posterior", FLOWS)
def test_flow_length_zero_is_exactly_the_diagonal_posterior(posterior):
    x = (np.random.default_rng(5).random((4, 6)) < 0.5).astype(np.float32)
    eps = np.random.default_rng(6).standard_normal((4, 3, 2), dtype=np.float32)
    results = []
    for name in ("diagonal", posterior):
        vae = VAE(6, 2, rng=np.random.default_rng(7), hidden=(8,), posterior=name, flow_length=0)
        assert vae.posterior.n_params == 4
        for estimator in ("mc", "iwae"):
            obj, cache, _ = vae.forward(x, eps, estimator)
            results.append((obj, vae.backward(np.full(4, -0.25, np.float32), cache)))
    for (o1, g1), (o2, g2) in zip(results[:2], results[2:]):
        np.testing.assert_array_equal(o1, o2)
        assert g1.keys() == g2.keys()
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("posterior", FLOWS)
def test_analytic_elbo_is_refused_not_a_wrong_number(posterior):
    vae, x, eps, _ = _model_and_data(posterior)
    with pytest.raises(ValueError, match="estimator='analytic' needs a closed-form KL"):
        vae.forward(x, eps, "analytic")
    with pytest.raises(ValueError, match="closed-form KL"):
        train(vae, x, x, TrainConfig(epochs=1, estimator="analytic"), log=None)


def test_flow_options_are_checked():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="flow_length applies to the flow posteriors"):
        VAE(6, 2, rng=rng, posterior="diagonal", flow_length=3)
    with pytest.raises(ValueError, match="flow_length must be >= 0"):
        VAE(6, 2, rng=rng, posterior="planar", flow_length=-1)
    with pytest.raises(ValueError, match="apply to posterior='iaf' only"):
        VAE(6, 2, rng=rng, posterior="planar", flow_length=2, iaf_hidden=(8,))
    with pytest.raises(ValueError, match="posterior must be one of"):
        VAE(6, 2, rng=rng, posterior="maf")


@pytest.mark.slow
@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_train_checkpoint_evaluate_and_sample_with_a_flow(posterior, tmp_path):
    """One short run end to end: training lowers the loss, the checkpoint rebuilds the same model
    (flow weights included), log p(x) >= ELBO on average, and sampling and encoding work."""
    rng = np.random.default_rng(0)
    x = (rng.random((200, 12)) < np.linspace(0.1, 0.9, 12)).astype(np.float32)
    vae = VAE(12, 3, rng=np.random.default_rng(1), hidden=(16,), posterior=posterior,
              flow_length=2)
    hist = train(vae, x[:160], x[160:], TrainConfig(epochs=4, batch_size=20, lr=1e-2,
                                                    estimator="mc"), out_dir=tmp_path, log=None)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    again, meta = load_model(tmp_path / "checkpoint.npz")
    assert again.config == vae.config and again.params.keys() == vae.params.keys()
    eps = np.random.default_rng(2).standard_normal((40, 2, 3), dtype=np.float32)
    np.testing.assert_array_equal(again.forward(x[160:], eps, "mc")[0],
                                  vae.forward(x[160:], eps, "mc")[0])
    e = elbo(vae, x[160:], rng=np.random.default_rng(3), n_samples=4)
    lp = log_likelihood(vae, x[160:], rng=np.random.default_rng(4), K=64)
    assert lp.mean() > e["elbo"].mean()
    assert sample_prior(vae, 5, rng=np.random.default_rng(5)).shape == (5, 12)
    assert encode(vae, x[:3]).shape == encode(vae, x[:3], rng=np.random.default_rng(6)).shape == (3, 3)


@pytest.mark.parametrize("posterior", FLOWS)
def test_a_blank_image_at_initialization_trains(posterior):
    """With zero biases an all-zero image makes every encoder output exactly 0, and planar (w)
    and Householder (v) layers divide by |w|^2: their encoder biases start at |w| = 1 instead."""
    vae = VAE(784, 4, rng=np.random.default_rng(0), hidden=(16,), posterior=posterior,
              flow_length=3)
    eps = np.random.default_rng(1).standard_normal((2, 1, 4), dtype=np.float32)
    loss, grads, _ = vae.loss_and_grads(np.zeros((2, 784), np.float32), eps, "mc")
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
