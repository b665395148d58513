"""VAE properties beyond gradients: independent densities, estimator agreement, bounds, dtype,
determinism and input errors."""
import numpy as np
import pytest
from scipy import stats

from scratchvae.optim import Adam
from scratchvae.vae import VAE


def _vae(posterior="diagonal", likelihood="bernoulli", dtype=np.float64, seed=0, **kw):
    return VAE(8, 3, rng=np.random.default_rng(seed), hidden=(6,), activation="tanh",
               posterior=posterior, likelihood=likelihood, dtype=dtype, **kw)


def _binary(n, d=8, seed=1):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float64)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_log_q_and_log_p_against_scipy_end_to_end(posterior):
    """The numpy-ml bug class: each piece passes its own check, yet the sampler and the density
    disagree. Here the VAE's own log p(x|z) + log p(z) - log q(z|x), computed through the
    Jacobian route, is compared with scipy densities evaluated at the z the VAE produced."""
    vae = _vae(posterior)
    x = _binary(4)
    eps = np.random.default_rng(2).standard_normal((4, 3, 3))
    obj, cache, _ = vae.forward(x, eps, "iwae")
    q, _ = vae.encode(x)
    log_w, z = cache["log_weights"], cache["z"]                 # (B, K), (B, K, Dz)
    for b in range(4):
        cov = (np.diag(np.exp(2 * q.log_scale[b])) if posterior == "diagonal"
               else q.scale_tril[b] @ q.scale_tril[b].T)
        for k in range(3):
            logits = vae.decode(z[b, k][None])[0]
            log_px = stats.bernoulli.logpmf(x[b], 1 / (1 + np.exp(-logits))).sum()
            log_pz = stats.multivariate_normal.logpdf(z[b, k], np.zeros(3), np.eye(3))
            log_qz = stats.multivariate_normal.logpdf(z[b, k], q.loc[b], cov)
            assert log_w[b, k] == pytest.approx(log_px + log_pz - log_qz, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_samples_have_the_posterior_moments(posterior):
    """z = g(eps) must be distributed as q: sample mean and covariance match loc and Sigma."""
    vae = _vae(posterior)
    x = _binary(1)
    eps = np.random.default_rng(3).standard_normal((1, 200_000, 3))
    z = vae.forward(x, eps, "mc")[1]["z"][0]             # (S, Dz)
    q, _ = vae.encode(x)
    cov = (np.diag(np.exp(2 * q.log_scale[0])) if posterior == "diagonal"
           else q.scale_tril[0] @ q.scale_tril[0].T)
    se = np.sqrt(np.diag(cov) / 200_000)
    assert np.all(np.abs(z.mean(0) - q.loc[0]) < 5 * se)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.02 * np.abs(cov).max())


def test_gaussian_likelihood_against_scipy():
    vae = _vae(likelihood="gaussian", obs_scale=None, min_obs_scale=0.05)
    x = np.random.default_rng(4).random((2, 8))
    eps = np.random.default_rng(5).standard_normal((2, 1, 3))
    obj, cache, stats_ = vae.forward(x, eps, "analytic")
    z = cache["z"][:, 0]
    out = vae.decode(z)
    loc, raw = out[:, :8], out[:, 8:]
    scale = 0.05 * np.exp(np.logaddexp(0, raw))          # sigma = sigma_min * e^softplus(r)
    ref = stats.norm.logpdf(x, loc, scale).sum(-1)
    np.testing.assert_allclose(stats_["rec"], ref, rtol=1e-12)


def test_learned_scale_floor_bounds_the_log_likelihood():
    """A density is not a probability: with sigma -> 0 a perfectly reconstructed pixel would have
    log-density -> +inf. The floor sigma >= sigma_min bounds each pixel by -log sigma_min - log(2 pi)/2."""
    from scratchvae.likelihoods import GaussianLikelihood
    rng = np.random.default_rng(13)
    x = rng.random((3, 8))
    bound = 8 * (-np.log(0.05) - 0.5 * np.log(2 * np.pi))
    perfect = np.concatenate([x[:, None, :], np.full((3, 1, 8), -60.0)], axis=-1)  # mu = x, r -> -inf
    log_px, _ = GaussianLikelihood(None, min_scale=0.05).log_prob(x, perfect)
    np.testing.assert_allclose(log_px, bound, rtol=1e-12)
    anything = rng.normal(size=(3, 2000, 16)) * 5
    assert np.all(GaussianLikelihood(None, min_scale=0.05).log_prob(x, anything)[0] <= bound)
    # the same perfect fit with a 1e6 times lower floor: 8 * log(1e6) = 110.5 nats higher
    tiny, _ = GaussianLikelihood(None, min_scale=0.05e-6).log_prob(x, perfect)
    np.testing.assert_allclose(tiny - log_px, 8 * np.log(1e6), rtol=1e-10)


def test_learned_scale_starts_at_init_obs_scale():
    vae = VAE(8, 3, rng=np.random.default_rng(14), hidden=(6,), likelihood="gaussian",
              obs_scale=None, min_obs_scale=0.01, init_obs_scale=0.4, dtype=np.float64)
    vae.params["dec.1.W"][...] = 0.0                     # sigma then depends on the bias alone
    out = vae.decode(np.random.default_rng(15).standard_normal((4, 3)))
    log_scale = np.log(0.01) + np.logaddexp(0, out[:, 8:])
    np.testing.assert_allclose(np.exp(log_scale), 0.4, rtol=1e-12)
    with pytest.raises(ValueError, match="init_obs_scale must exceed min_obs_scale=0.01, got 0.005"):
        VAE(8, 3, rng=np.random.default_rng(0), likelihood="gaussian", obs_scale=None,
            min_obs_scale=0.01, init_obs_scale=0.005)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_estimators_agree_in_expectation(posterior):
    """With the same draws z_l, analytic - mc = mean_l [log q(z_l|x) - log p(z_l)] - KL: the
    Monte Carlo KL minus the analytic one, whose expectation is 0. Over S = 20000 draws it must be
    within 5 standard errors for each of 3 examples, and the test must have power (SE << KL)."""
    vae = _vae(posterior, seed=6)
    x = _binary(3, seed=7)
    eps = np.random.default_rng(8).standard_normal((3, 20000, 3))
    analytic, _, st = vae.forward(x, eps, "analytic")
    mc, cache, _ = vae.forward(x, eps, "mc")
    z = cache["z"]                                                         # (B, S, Dz)
    out = vae.decode(z.reshape(-1, 3)).reshape(3, 20000, -1)
    log_px, _ = vae.likelihood.log_prob(x, out)                            # (B, S) per draw
    kl_terms = log_px - cache["log_weights"]                                     # log q - log p(z), (B, S)
    se = kl_terms.std(axis=1) / np.sqrt(eps.shape[1])
    np.testing.assert_allclose(analytic - mc, kl_terms.mean(axis=1) - st["kl"], atol=1e-9)
    assert np.all(np.abs(kl_terms.mean(axis=1) - st["kl"]) < 5 * se), (kl_terms.mean(1), st["kl"], se)
    assert np.all(se < 0.05 * st["kl"])


def test_iwae_bound_above_elbo_and_nondecreasing_in_k():
    """E[L_K] >= E[L_1] = ELBO and E[L_K] non-decreasing in K (Burda et al. 2016, theorem 1).
    Averages over 400 replicate draws; the checked differences are > 10 standard errors."""
    vae = _vae(seed=9)
    x = _binary(2, seed=10)
    rng = np.random.default_rng(11)
    means = {}
    for K in (1, 5, 50):
        vals = [vae.forward(x, rng.standard_normal((2, K, 3)), "iwae")[0] for _ in range(400)]
        means[K] = np.mean(vals, axis=0)                  # (B,)
    elbo = np.mean([vae.forward(x, rng.standard_normal((2, 50, 3)), "mc")[0] for _ in range(40)], 0)
    np.testing.assert_allclose(means[1], elbo, atol=0.05 * np.abs(elbo).max())
    assert np.all(means[5] > means[1]) and np.all(means[50] > means[5])


def test_float32_step_stays_float32_and_is_deterministic():
    def run():
        rng = np.random.default_rng(12)
        vae = VAE(8, 3, rng=rng, hidden=(6,), dtype=np.float32, posterior="full")
        opt = Adam(vae.params, lr=1e-2)
        x = (rng.random((5, 8)) < 0.5).astype(np.float32)
        for _ in range(4):
            eps = rng.standard_normal((5, 2, 3), dtype=np.float32)
            loss, grads, _ = vae.loss_and_grads(x, eps, "mc")
            assert all(g.dtype == np.float32 for g in grads.values())
            opt.step(grads)
        obj, cache, st = vae.forward(x, eps, "iwae")
        assert obj.dtype == np.float32 and st["kl"].dtype == np.float32
        assert all(p.dtype == np.float32 for p in vae.params.values())
        return vae.params

    a, b = run(), run()
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_bad_inputs():
    vae = _vae()
    x, eps = _binary(2), np.zeros((2, 1, 3))
    with pytest.raises(ValueError, match="x must be binary"):
        vae.forward(x + 0.5, eps)
    with pytest.raises(ValueError, match=r"x must have shape \(\?, 8\), got \(2, 7\)"):
        vae.forward(x[:, :7], eps)
    with pytest.raises(ValueError, match=r"eps must have shape \(2, \?, 3\), got \(3, 1, 3\)"):
        vae.forward(x, np.zeros((3, 1, 3)))
    with pytest.raises(TypeError, match="eps must have dtype float64"):
        vae.forward(x, eps.astype(np.float32))
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        vae.forward(x_nan, eps)
    with pytest.raises(ValueError, match="estimator must be one of"):
        vae.forward(x, eps, "elbo")
    with pytest.raises(ValueError, match="beta must be 1 for the iwae bound"):
        vae.forward(x, eps, "iwae", beta=0.5)
    with pytest.raises(ValueError, match=r"beta must lie in \[0.0, 1.0\]"):
        vae.forward(x, eps, "mc", beta=1.5)
    _, cache, _ = vae.forward(x, eps)
    with pytest.raises(ValueError, match=r"dobjective must have shape \(2,\), got \(1,\)"):
        vae.backward(np.array([-0.5]), cache)
    with pytest.raises(TypeError, match="dobjective must have dtype float64"):
        vae.backward(np.full(2, -0.5, dtype=np.float32), cache)
    with pytest.raises(ValueError, match="posterior must be one of"):
        _vae(posterior="lowrank")
    with pytest.raises(ValueError, match="likelihood must be 'bernoulli' or 'gaussian'"):
        _vae(likelihood="poisson")
    with pytest.raises(ValueError, match="obs_scale must be > 0"):
        _vae(likelihood="gaussian", obs_scale=0.0)
    with pytest.raises(ValueError, match="min_obs_scale must be > 0"):
        _vae(likelihood="gaussian", obs_scale=None, min_obs_scale=-1.0)
