"""Metropolis-Hastings recovers a Gaussian's moments (with a negative control), acceptance falls as
the proposal grows, the autocorrelation / tau / ESS estimators on AR(1) chains with known tau (and
the FFT autocorrelation against a plain loop), the banana model against scipy, and the demo's claims."""
import os
import sys

import numpy as np
import pytest
from scipy import integrate, stats

from scratchvae.lab import mcmc
from scratchvae.gradcheck import check_gradients

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.6], [0.6, 2.0]])
PREC = np.linalg.inv(COV)
K_SE = 4.0               # MC tolerance: 4 Monte Carlo standard errors, sd * sqrt(tau / N)


def _gauss_log_prob(z):
    d = z - MEAN
    return -0.5 * d @ PREC @ d


def _moments_within_mc_error(samples, mean, cov):
    """Mean within K_SE * sqrt(var tau / N) and variance within K_SE * var * sqrt(2 tau / N) per
    coordinate, tau estimated from the chain (for z and for (z - mean)^2 respectively)."""
    N = samples.shape[0]
    tau = mcmc.integrated_autocorr_time(samples)
    se_mean = np.sqrt(np.diag(cov) * tau / N)
    tau_sq = mcmc.integrated_autocorr_time((samples - samples.mean(0)) ** 2)
    se_var = np.diag(cov) * np.sqrt(2 * tau_sq / N)
    ok_mean = np.abs(samples.mean(0) - mean) < K_SE * se_mean
    ok_var = np.abs(samples.var(0) - np.diag(cov)) < K_SE * se_var
    return bool(np.all(ok_mean) and np.all(ok_var)), (samples.mean(0), samples.var(0), se_mean, se_var)


def test_mh_recovers_a_correlated_gaussian():
    res = mcmc.metropolis_hastings(_gauss_log_prob, np.zeros(2), 40000, 1.5,
                                   rng=np.random.default_rng(0), burn_in=500)
    ok, info = _moments_within_mc_error(res.samples, MEAN, COV)
    assert ok, info
    corr = np.corrcoef(res.samples.T)[0, 1]
    assert abs(corr - 0.6 / np.sqrt(2.0)) < 0.05, corr
    assert 0.2 < res.acceptance_rate < 0.6


def test_moment_check_negative_control_wrong_target_fails():
    """The same check on a chain that targets N(MEAN, 1.5^2 COV) (a wrong density) must fail."""
    res = mcmc.metropolis_hastings(lambda z: _gauss_log_prob(z) / 2.25, np.zeros(2), 40000, 1.5,
                                   rng=np.random.default_rng(0), burn_in=500)
    ok, info = _moments_within_mc_error(res.samples, MEAN, COV)
    assert not ok, info


def test_acceptance_rate_falls_as_the_proposal_grows():
    rates = [mcmc.metropolis_hastings(_gauss_log_prob, MEAN.copy(), 4000, s,
                                      rng=np.random.default_rng(1)).acceptance_rate
             for s in (0.05, 0.5, 2.0, 20.0)]
    assert rates[0] > 0.9 and rates[-1] < 0.1, rates
    assert all(a > b for a, b in zip(rates, rates[1:])), rates


def test_mh_is_reproducible_and_states_repeat_on_rejection():
    def run():
        return mcmc.metropolis_hastings(_gauss_log_prob, np.zeros(2), 500, 3.0, rng=np.random.default_rng(2))
    a, b = run(), run()
    assert np.array_equal(a.samples, b.samples)
    moved = np.any(np.diff(a.samples, axis=0) != 0, axis=1)
    assert abs(moved.mean() - a.acceptance_rate) <= 1 / 500
    assert np.allclose(a.log_probs, [_gauss_log_prob(z) for z in a.samples])


# --------------------------------------------------------------------------- autocorrelation, tau, ESS
def test_autocorrelation_fft_matches_a_loop():
    x = np.random.default_rng(3).standard_normal((50, 2)).cumsum(0)
    d = x - x.mean(0)
    loop = np.array([[(d[:50 - t, j] * d[t:, j]).sum() for j in range(2)] for t in range(20)])
    np.testing.assert_allclose(mcmc.autocorrelation(x, 19), loop / loop[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_tau_and_ess_on_ar1_chains(phi):
    """AR(1), N = 200,000: tau = (1 + phi)/(1 - phi) within 10% (the estimator's sd is ~4% at
    phi = 0.9); rho(t) = phi^t within 0.02 for t <= 5; ESS = N / tau."""
    x = mcmc.ar1_chain(phi, 200_000, rng=np.random.default_rng(4))
    tau, exact = mcmc.integrated_autocorr_time(x), (1 + phi) / (1 - phi)
    assert abs(tau / exact - 1) < 0.10, (tau, exact)
    np.testing.assert_allclose(mcmc.autocorrelation(x, 5), phi ** np.arange(6), atol=0.02)
    assert mcmc.effective_sample_size(x) == pytest.approx(200_000 / tau)
    assert abs(x.var() - 1) < 0.05                                         # stationary start


def test_tau_of_a_two_column_chain_is_per_column():
    rng = np.random.default_rng(5)
    x = np.stack([mcmc.ar1_chain(0.5, 100_000, rng=rng), mcmc.ar1_chain(0.8, 100_000, rng=rng)], 1)
    tau = mcmc.integrated_autocorr_time(x)
    assert tau.shape == (2,)
    assert abs(tau[0] / 3 - 1) < 0.1 and abs(tau[1] / 9 - 1) < 0.1, tau


# --------------------------------------------------------------------------- the banana model
def test_banana_log_joint_matches_scipy_and_its_gradient():
    m = mcmc.BananaModel(np.array([1.0, 0.5]), b=0.6, s1=1.0, s2=0.35)
    z = np.array([[0.3, -0.7], [1.2, 0.4], [-0.8, 1.1]])
    ref = (stats.norm.logpdf(z).sum(1) + stats.norm.logpdf(1.0, z[:, 0], 1.0)
           + stats.norm.logpdf(0.5, z[:, 1] + 0.6 * z[:, 0] ** 2, 0.35))
    np.testing.assert_allclose(m.log_joint(z), ref, rtol=1e-12)
    rng = np.random.default_rng(6)
    report = check_gradients(lambda: m.log_joint(z), lambda d: {"z": d[:, None] * m.grad_log_joint(z)},
                             {"z": z}, rng=rng)
    assert report.ok(1e-7), f"\n{report}"
    def wrong(d):                                    # negative control: drops 2 b z1 r2 / s2
        g = m.grad_log_joint(z)
        r2 = (0.5 - z[:, 1] - 0.6 * z[:, 0] ** 2) / 0.35
        g[:, 0] -= 2 * 0.6 * z[:, 0] * r2 / 0.35
        return {"z": d[:, None] * g}
    assert not check_gradients(lambda: m.log_joint(z), wrong, {"z": z}, rng=rng).ok(1e-7)


def test_banana_grid_evidence_matches_dblquad():
    """A wide 800^2 grid agrees with scipy's dblquad to 1e-9 in log p(x); the demo's 400^2 plotting
    window to 5e-6 (it leaves out ~1.4e-6 of the posterior mass, below its lower edge)."""
    m = mcmc.BananaModel(np.array([1.0, 0.5]))
    ref, _ = integrate.dblquad(lambda z2, z1: np.exp(m.log_joint(np.array([z1, z2]))), -6, 7, -9, 5,
                               epsabs=1e-12, epsrel=1e-10)
    wide = m.posterior_grid((-5.0, 6.0), (-7.0, 4.0), 800)[3]
    demo = m.posterior_grid((-2.5, 3.5), (-3.5, 2.5), 400)[3]
    assert abs(wide - np.log(ref)) < 1e-9, (wide, np.log(ref))
    assert abs(demo - np.log(ref)) < 5e-6, (demo, np.log(ref))


# --------------------------------------------------------------------------- the demo
@pytest.mark.slow
def test_demo_mcmc_vs_vi_claims(tmp_path):
    """Fast settings (6000 MH steps, 600 VI steps): acceptance falls with the scale; the good scale
    has the largest ESS per second and a mean error < 0.1; VI's KL(q||p) = log p(x) - ELBO lies in
    (0.15, 0.4) nats (0.22 at convergence: the Gaussian cannot bend) and q is too narrow."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "demos"))
    import mcmc_vs_vi as demo
    out = demo.main(["--out", str(tmp_path), "--steps", "6000", "--burn-in", "500", "--vi-steps", "600"])
    ch = list(out["chains"].values())
    acc = [r.acceptance_rate for r, *_ in ch]
    assert acc[0] > 0.85 and acc[0] > acc[1] > acc[2] and acc[2] < 0.05, acc
    ess_per_s = {k: ess.min() / r.seconds for k, (r, tau, ess, err) in out["chains"].items()}
    assert max(ess_per_s, key=ess_per_s.get) == out["good"], ess_per_s
    assert out["chains"][out["good"]][3] < 0.1
    assert 0.15 < out["gap"] < 0.4, out["gap"]
    (_, cov, _), (_, q_cov, _) = out["truth"], out["vi"]
    assert np.all(np.diag(q_cov) < np.diag(cov)), (q_cov, cov)
    assert os.path.getsize(out["path"]) > 10_000


# --------------------------------------------------------------------------- validation
def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        mcmc.metropolis_hastings(_gauss_log_prob, np.zeros(2), 10, 0.0, rng=rng)
    with pytest.raises(ValueError, match=r"log_prob\(x0\) must be finite"):
        mcmc.metropolis_hastings(lambda z: -np.inf, np.zeros(2), 10, 1.0, rng=rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        mcmc.metropolis_hastings(_gauss_log_prob, np.zeros(2), 10, 1.0, rng=0)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        mcmc.metropolis_hastings(_gauss_log_prob, np.zeros(2), 0, 1.0, rng=rng)
    with pytest.raises(ValueError, match="x0 must be 1-dimensional"):
        mcmc.metropolis_hastings(_gauss_log_prob, np.zeros((1, 2)), 10, 1.0, rng=rng)
    with pytest.raises(ValueError, match="zero variance"):
        mcmc.autocorrelation(np.ones(10))
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, D\)"):
        mcmc.autocorrelation(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="max_lag must be < N"):
        mcmc.autocorrelation(rng.standard_normal(10), 10)
    with pytest.raises(ValueError, match="phi must lie in"):
        mcmc.ar1_chain(1.0, 10, rng=rng)
    with pytest.raises(ValueError, match="x must have shape"):
        mcmc.BananaModel(np.zeros(3))
    with pytest.raises(ValueError, match="s2 must be > 0"):
        mcmc.BananaModel(np.zeros(2), s2=0.0)
