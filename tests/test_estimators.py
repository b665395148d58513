"""Score-function vs reparameterization estimators: exact objectives against quadrature, each
estimator as the exact gradient of its surrogate (finite differences, with negative controls),
unbiasedness in standard errors, the variance gap, the VAE encoder versions against Gauss-Hermite
quadrature, the full-covariance ELBO, the demo's claims, and input validation."""
import os
import sys

import numpy as np
import pytest
from scipy import integrate, stats

from scratchvae.lab import estimators as est
from scratchvae.lab import estimators_vae as est_vae
from scratchvae.distributions import Normal
from scratchvae.gradcheck import check_gradients
from scratchvae.transforms import tril_from_params
from scratchvae.vae import VAE

TOL_GRAD = 1e-7          # per function (docs/contributing.md)
TOL_MODEL = 1e-6         # whole model
Z_TOL = 4.5              # unbiasedness: every entry within 4.5 standard errors (normal tail ~7e-6)
LOC = np.array([0.5, -1.0, 1.5, 0.2])
LOG_SCALE = np.array([-0.5, 0.0, 0.3, -1.0])
OBJECTIVES = {"quadratic": est.Quadratic(np.array([1.0, 0.5, -0.5, 0.3])),
              "sinusoid": est.Sinusoid(np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.3, -0.2, 1.0, 0.5]))}


# --------------------------------------------------------------------------- the objectives
@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_expectation_matches_quadrature(name):
    """E_q f by scipy.integrate.quad against the density scipy.stats.norm, per coordinate."""
    obj = OBJECTIVES[name]
    total = 0.0
    for i in range(4):
        def integrand(t, i=i):
            z = LOC.copy()
            z[i] = t
            f_i = obj.f(z[None])[0] - obj.f(LOC[None])[0]                 # f is a sum over coordinates
            return f_i * stats.norm.pdf(t, LOC[i], np.exp(LOG_SCALE[i]))
        total += integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13)[0]
    total += obj.f(LOC[None])[0]
    assert abs(obj.expectation(LOC, LOG_SCALE) - total) < 1e-10, (obj.expectation(LOC, LOG_SCALE), total)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_gradients(name):
    obj, rng = OBJECTIVES[name], np.random.default_rng(0)
    z = rng.standard_normal((3, 4)) + 0.3
    r1 = check_gradients(lambda: obj.f(z), lambda d: {"z": d[:, None] * obj.grad_f(z)}, {"z": z}, rng=rng)
    loc, ls = LOC.copy(), LOG_SCALE.copy()
    r2 = check_gradients(lambda: np.array(obj.expectation(loc, ls)),
                         lambda d: obj.expectation_grads(loc, ls), {"loc": loc, "log_scale": ls}, rng=rng)
    assert r1.ok(TOL_GRAD), f"\n{r1}"
    assert r2.ok(TOL_GRAD), f"\n{r2}"


# ------------------------------------------------------------------- estimator = gradient of a surrogate
def _reparam_check(obj, rng, backward):
    eps = rng.standard_normal((2, 5, 4))                                  # 2 repetitions of S = 5
    loc, ls = LOC.copy(), LOG_SCALE.copy()
    forward = lambda: obj.f(loc + np.exp(ls) * eps).mean(-1)              # (2,) MC objectives  # noqa: E731

    def bwd(d):
        g = backward(obj.grad_f, loc, ls, eps)
        return {k: (d[:, None] * g[k]).sum(0) for k in g}
    return check_gradients(forward, bwd, {"loc": loc, "log_scale": ls}, rng=rng)


def test_reparam_estimate_is_the_gradient_of_the_fixed_noise_objective():
    """With eps fixed, (1/S) sum_s f(mu + sigma eps_s) is deterministic; its gradient is the estimate."""
    report = _reparam_check(OBJECTIVES["sinusoid"], np.random.default_rng(1), est.reparam_grad)
    assert report.ok(TOL_GRAD), f"\n{report}"


def test_reparam_negative_control_missing_eps_factor_fails():
    """A pathwise gradient that forgets dz/dlog sigma = sigma * eps (uses sigma alone) must fail."""
    def wrong(grad_f, loc, ls, eps):
        g = est.reparam_grad(grad_f, loc, ls, eps)
        z = loc + np.exp(ls) * eps
        g["log_scale"] = (grad_f(z) * np.exp(ls)).mean(-2)
        return g
    report = _reparam_check(OBJECTIVES["sinusoid"], np.random.default_rng(1), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["log_scale"] > 1e-2


def _score_check(obj, rng, baseline, dlogq_scale=1.0):
    """Surrogate (1/S) sum_s (f(z_s) - b_s) log q_phi(z_s), z_s and b_s held fixed."""
    eps = rng.standard_normal((6, 4))
    loc, ls = LOC.copy(), LOG_SCALE.copy()
    z = loc + np.exp(ls) * eps
    fz = obj.f(z)
    if baseline is None:
        b = 0.0
    elif baseline == "loo":
        b = (fz.sum() - fz) / 5                                           # mean of the 5 others
    else:
        b = baseline
    g = est.score_function_grad(obj.f, loc, ls, eps, baseline)
    g = {"loc": g["loc"], "log_scale": dlogq_scale * g["log_scale"]}

    def forward():
        q = Normal(np.broadcast_to(loc, z.shape).copy(), np.broadcast_to(ls, z.shape).copy())
        return np.array(((fz - b)[:, None] * q.log_prob(z)).sum() / 6)
    return check_gradients(forward, lambda d: g, {"loc": loc, "log_scale": ls}, rng=rng)


@pytest.mark.parametrize("baseline", [None, "loo", 2.5])
def test_score_estimate_is_the_gradient_of_its_surrogate(baseline):
    report = _score_check(OBJECTIVES["quadratic"], np.random.default_rng(2), baseline)
    assert report.ok(TOL_GRAD), f"\n{report}"


def test_score_negative_control_log_var_derivative_fails():
    """The log sigma / log sigma^2 confusion (d log q / d log_scale halved) must be caught."""
    report = _score_check(OBJECTIVES["quadratic"], np.random.default_rng(2), None, dlogq_scale=0.5)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["log_scale"] > 1e-2


# --------------------------------------------------------------------------- unbiasedness and variance
VARIANTS = [("reparam", None), ("score", None), ("score", "loo"), ("score", 9.0)]


@pytest.mark.parametrize("name", OBJECTIVES)
def test_both_estimators_are_unbiased(name):
    """R = 4000 repetitions at S = 2 and 16: every mean within Z_TOL standard errors of the exact
    gradient, for reparam, score, score + leave-one-out baseline and score + constant baseline 9."""
    rng = np.random.default_rng(3)
    for method, baseline in VARIANTS:
        st = est.closed_form_statistics(OBJECTIVES[name], LOC, LOG_SCALE, method, [2, 16], 4000,
                                        rng=rng, baseline=baseline)
        worst = np.abs(st.bias_z).max()
        assert worst < Z_TOL, f"{method}/{baseline}: mean {st.mean} vs exact {st.exact}, {worst:.2f} SE"
        assert np.all(st.bias_ratio < 3.0), st.bias_ratio


def test_unbiasedness_negative_control_self_inclusive_baseline_is_caught():
    """A baseline that includes f(z_s) itself (the plain sample mean) scales the estimate by
    (S - 1)/S: at S = 2 it is half the gradient, and the same test must reject it."""
    obj, rng = OBJECTIVES["quadratic"], np.random.default_rng(4)
    eps = rng.standard_normal((4000, 2, 4))
    fz = obj.f(LOC + np.exp(LOG_SCALE) * eps)                             # (R, 2)
    self_inclusive = np.repeat(fz.mean(1, keepdims=True), 2, 1)           # (R, 2)
    g = est.score_function_grad(obj.f, LOC, LOG_SCALE, eps, baseline=self_inclusive)
    g = np.concatenate([g["loc"], g["log_scale"]], 1)                     # (R, 8)
    ex = obj.expectation_grads(LOC, LOG_SCALE)
    z = (g.mean(0) - np.concatenate([ex["loc"], ex["log_scale"]])) / (g.std(0, ddof=1) / np.sqrt(4000))
    assert np.abs(z).max() > 3 * Z_TOL, z
    assert np.allclose(g.mean(0), 0.5 * np.concatenate([ex["loc"], ex["log_scale"]]), atol=0.3)


def test_reparameterization_has_lower_variance_on_the_quadratic():
    """tr Cov(score) / tr Cov(reparam) on f = sum (z - a)^2 at S = 16 (R = 2000): measured 46 without
    and 17 with the leave-one-out baseline; asserted > 20 and > 8."""
    rng = np.random.default_rng(5)
    obj = OBJECTIVES["quadratic"]
    v = {(m, b): est.closed_form_statistics(obj, LOC, LOG_SCALE, m, [16], 2000, rng=rng,
                                            baseline=b).total_var[0]
         for m, b in VARIANTS[:3]}
    rep = v[("reparam", None)]
    assert v[("score", None)] / rep > 20, v
    assert v[("score", "loo")] / rep > 8, v
    assert v[("score", "loo")] < v[("score", None)], v


def test_variance_falls_as_one_over_s():
    """A mean of S i.i.d. terms: tr Cov(S=4) / tr Cov(S=64) = 16 within 15% (R = 3000)."""
    st = est.closed_form_statistics(OBJECTIVES["sinusoid"], LOC, LOG_SCALE, "reparam", [4, 64], 3000,
                                    rng=np.random.default_rng(6))
    assert abs(st.total_var[0] / st.total_var[1] / 16 - 1) < 0.15, st.total_var


# --------------------------------------------------------------------------- the VAE encoder
def _tiny_vae(seed=0, B=3):
    rng = np.random.default_rng(seed)
    vae = VAE(6, 2, rng=rng, hidden=(5,), activation="tanh", dtype=np.float64)
    for k, p in vae.params.items():      # non-trivial, moderate weights: a smooth integrand
        p[...] = rng.standard_normal(p.shape) * (0.5 if k.endswith(".b") else 0.4)
    x = (rng.random((B, 6)) < 0.5).astype(np.float64)
    return vae, x, rng


def test_vae_reparam_encoder_grads_match_finite_differences():
    vae, x, rng = _tiny_vae()
    eps = rng.standard_normal((3, 4, 2))
    g = est_vae.vae_encoder_grads(vae, x, eps, "reparam")
    report = check_gradients(lambda: np.array(vae.forward(x, eps, "mc")[0].mean()), lambda d: g,
                             vae.encoder.params, rng=rng)
    assert report.ok(TOL_MODEL), f"\n{report}"


@pytest.mark.parametrize("baseline", [None, "loo"])
def test_vae_score_encoder_grads_are_the_gradient_of_the_surrogate(baseline):
    """Surrogate (1/B) sum_b (1/S) sum_s (f_bs - b_bs) log q_phi(z_bs|x_b) with z, f, b held fixed."""
    vae, x, rng = _tiny_vae(1)
    eps = rng.standard_normal((3, 4, 2))
    g = est_vae.vae_encoder_grads(vae, x, eps, "score", baseline)
    h = vae.encoder.forward(x)[0]
    q = Normal(np.repeat(h[:, None, :2], 4, 1), np.repeat(h[:, None, 2:], 4, 1))
    z = q.rsample(eps)
    f = est_vae.vae_log_joint(vae, x, z) - q.log_prob(z).sum(-1)              # (B, S)
    b = 0.0 if baseline is None else (f.sum(1, keepdims=True) - f) / 3

    def forward():
        h2 = vae.encoder.forward(x)[0]
        q2 = Normal(np.repeat(h2[:, None, :2], 4, 1), np.repeat(h2[:, None, 2:], 4, 1))
        return np.array(((f - b) * q2.log_prob(z).sum(-1)).mean())
    report = check_gradients(forward, lambda d: g, vae.encoder.params, rng=rng)
    assert report.ok(TOL_MODEL), f"\n{report}"


def test_vae_quadrature_gradient_has_converged():
    """Max relative change 60 -> 80 nodes per axis < 1e-9 (measured 5e-11; 20 nodes: 4e-6)."""
    vae, x, _ = _tiny_vae()
    keys = list(vae.encoder.params)
    g60 = est_vae.flatten_grads(est_vae.vae_exact_encoder_grads(vae, x, 60), keys)
    g80 = est_vae.flatten_grads(est_vae.vae_exact_encoder_grads(vae, x, 80), keys)
    assert np.abs(g60 - g80).max() / np.abs(g80).max() < 1e-9


def test_vae_encoder_estimators_are_unbiased_and_score_is_noisier():
    """R = 1500 repetitions at S = 4 against the 60 x 60 Gauss-Hermite gradient:
    |mean - exact| / sqrt(tr Cov / R) < 3 (about 1 expected) for reparam, score and score + LOO;
    a self-inclusive-mean baseline (negative control, bias factor 1/2 at S = 2) gives > 5.
    Variance: tr Cov(score) / tr Cov(reparam) > 5 (measured 68)."""
    vae, x, rng = _tiny_vae()
    keys = list(vae.encoder.params)
    exact = est_vae.flatten_grads(est_vae.vae_exact_encoder_grads(vae, x, 60), keys)
    st = {(m, b): est_vae.vae_encoder_statistics(vae, x, m, [4], 1500, rng=rng, baseline=b, exact=exact)
          for m, b in (("reparam", None), ("score", None), ("score", "loo"))}
    for k, s in st.items():
        assert s.bias_ratio[0] < 3.0, (k, s.bias_ratio)
    ratio = st[("score", None)].total_var[0] / st[("reparam", None)].total_var[0]
    assert ratio > 5, {k: s.total_var for k, s in st.items()}

    def draw_self_inclusive(S, n):
        out = []
        for _ in range(n):
            eps = rng.standard_normal((3, S, 2))
            h = vae.encoder.forward(x)[0]
            q = Normal(np.repeat(h[:, None, :2], S, 1), np.repeat(h[:, None, 2:], S, 1))
            z = q.rsample(eps)                                            # the z the estimator uses
            f = est_vae.vae_log_joint(vae, x, z) - q.log_prob(z).sum(-1)
            out.append(est_vae.flatten_grads(est_vae.vae_encoder_grads(
                vae, x, eps, "score", np.repeat(f.mean(1, keepdims=True), S, 1)), keys))
        return np.stack(out)
    bad = est.gradient_statistics(draw_self_inclusive, exact, [2], 1500)
    assert bad.bias_ratio[0] > 5.0, bad.bias_ratio


# --------------------------------------------------------------------------- full-covariance ELBO
def _banana_like():
    from scratchvae.lab.mcmc import BananaModel
    return BananaModel(np.array([1.0, 0.5]))


def test_elbo_full_gaussian_gradients():
    model, rng = _banana_like(), np.random.default_rng(7)
    loc, log_diag, offdiag = np.array([0.3, -0.2]), np.array([-0.4, -0.7]), np.array([0.25])
    eps = rng.standard_normal((5, 2))
    params = {"loc": loc, "log_diag": log_diag, "offdiag": offdiag}
    def run():
        return est.elbo_full_gaussian(model.log_joint, model.grad_log_joint, loc, log_diag, offdiag, eps)
    f = lambda: np.array(run()[0])                                       # noqa: E731
    _, g = run()
    report = check_gradients(f, lambda d: g, params, rng=rng)
    assert report.ok(TOL_GRAD), f"\n{report}"
    g_bad = dict(g, log_diag=g["log_diag"] - 1.0)                         # forgot the log-det path
    assert not check_gradients(f, lambda d: g_bad, params, rng=rng).ok(TOL_GRAD)


def test_elbo_full_gaussian_is_zero_when_q_is_the_target():
    """log p = log N(z; m, L L^T) (normalized, from scipy): log p(z) - log q(z) = 0 for every eps."""
    loc, log_diag, offdiag = np.array([0.3, -0.2]), np.array([-0.4, 0.2]), np.array([0.7])
    L, _ = tril_from_params(log_diag, offdiag)
    mvn = stats.multivariate_normal(loc, L @ L.T)
    elbo, _ = est.elbo_full_gaussian(mvn.logpdf, lambda z: z, loc, log_diag, offdiag,
                                     np.random.default_rng(8).standard_normal((50, 2)))
    assert abs(elbo) < 1e-12, elbo


# --------------------------------------------------------------------------- the demo
@pytest.mark.slow
def test_demo_gradient_estimators_claims(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "demos"))
    import gradient_estimators as demo
    out = demo.main(["--out", str(tmp_path), "--reps", "400", "--vae-reps", "20", "--max-log2-s", "5",
                     "--vae-sizes", "2,8", "--train-digits", "200", "--epochs", "1"])
    none, loo = out["ratio_closed"]
    assert np.all(none > 20) and np.all(loo > 5), (none, loo)             # measured ~45 and 17-34
    v_none, v_loo = out["ratio_vae"]
    assert np.all(v_none > 100) and np.all(v_loo > 1), (v_none, v_loo)    # measured ~4e4 and ~10
    assert out["quad_err"] < 1e-8
    for stats_ in out["closed_form"].values():
        for s in stats_.values():
            assert np.abs(s.bias_z).max() < Z_TOL
    assert os.path.getsize(out["path"]) > 10_000


# --------------------------------------------------------------------------- validation
def test_bad_inputs_raise_clear_errors():
    f, eps = OBJECTIVES["quadratic"].f, np.zeros((3, 4))
    with pytest.raises(ValueError, match="eps must have shape"):
        est.score_function_grad(f, LOC, LOG_SCALE, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="eps must have shape"):
        est.reparam_grad(f, LOC, LOG_SCALE, np.zeros(4))
    with pytest.raises(TypeError, match="eps must have dtype float64"):
        est.score_function_grad(f, LOC, LOG_SCALE, eps.astype(np.float32))
    with pytest.raises(ValueError, match="loc and log_scale must have the same shape"):
        est.score_function_grad(f, LOC, LOG_SCALE[:3], eps)
    with pytest.raises(ValueError, match="baseline must be None, 'loo'"):
        est.score_function_grad(f, LOC, LOG_SCALE, eps, baseline="mean")
    with pytest.raises(ValueError, match="S >= 2"):
        est.score_function_grad(f, LOC, LOG_SCALE, np.zeros((1, 4)), baseline="loo")
    with pytest.raises(ValueError, match=r"baseline must have shape \(3,\)"):
        est.score_function_grad(f, LOC, LOG_SCALE, eps, baseline=np.zeros(4))
    with pytest.raises(TypeError, match="baseline must be None"):
        est.score_function_grad(f, LOC, LOG_SCALE, eps, baseline=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="method must be one of"):
        est.gradient_estimate((f, f), LOC, LOG_SCALE, eps, "pathwise")
    with pytest.raises(ValueError, match="baseline applies to the score-function"):
        est.gradient_estimate((f, f), LOC, LOG_SCALE, eps, "reparam", baseline="loo")
    with pytest.raises(ValueError, match="n_rep must be >= 2"):
        est.closed_form_statistics(OBJECTIVES["quadratic"], LOC, LOG_SCALE, "score", [2], 1,
                                   rng=np.random.default_rng(0))
    vae, x, _ = _tiny_vae()
    with pytest.raises(ValueError, match="eps must have shape"):
        est_vae.vae_encoder_grads(vae, x, np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        est_vae.vae_encoder_grads(vae, x, np.zeros((3, 4, 2)), "exact")
    with pytest.raises(ValueError, match="too many"):
        est_vae.vae_exact_encoder_grads(VAE(6, 4, rng=np.random.default_rng(0), hidden=(5,), dtype=np.float64),
                                    x, 24)
    full = VAE(6, 2, rng=np.random.default_rng(0), hidden=(5,), posterior="full", dtype=np.float64)
    with pytest.raises(ValueError, match="diagonal posterior"):
        est_vae.vae_encoder_grads(full, x, np.zeros((3, 4, 2)))
