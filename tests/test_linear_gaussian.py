"""The linear-Gaussian (PPCA) model: densities against scipy and brute-force conditioning, the
identity log p(x) - ELBO = KL(q || p(z|x)), hand-written gradients against finite differences
(with negative controls), closed form against Monte Carlo, IWAE, validation and dtypes."""
import numpy as np
import pytest
from scipy import stats

from scratchvae.gradcheck import check_gradients
from scratchvae.lab.linear_gaussian import LinearGaussian
from scratchvae.transforms import tril_from_params, tril_from_params_backward

TOL_GRAD = 1e-7
TOL_REF = 1e-10
D, K, N = 5, 3, 4
ROWS, COLS = np.tril_indices(K)


def _away(rng, shape, lo, hi):
    """Non-trivial fixture values: random sign, magnitude in [lo, hi] (no zeros hide bugs)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _model(rng, d=D, k=K, log_s=-0.3):
    return LinearGaussian(_away(rng, (d, k), 0.2, 1.5), _away(rng, (d,), 0.1, 1.0), np.asarray(log_s))


def _q(rng, n=N, k=K):
    """loc (n, k) and the lower-triangle entries (n, k(k+1)/2) of a full scale_tril."""
    entries = _away(rng, (n, k * (k + 1) // 2), 0.15, 0.7)
    entries[:, ROWS == COLS] = np.abs(entries[:, ROWS == COLS]) + 0.2         # positive diagonal
    return _away(rng, (n, k), 0.2, 1.5), entries


def _tril(entries, k=K):
    L = np.zeros(entries.shape[:-1] + (k, k))
    L[..., ROWS, COLS] = entries
    return L


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    model = _model(rng)
    x = model.sample(N, rng)[0] + 0.3                                         # off the model's mean
    loc, entries = _q(rng)
    return rng, model, x, loc, entries


def _gauss_kl(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)), the textbook formula, written independently of the library."""
    S1inv = np.linalg.inv(S1)
    dm = m1 - m0
    return 0.5 * (np.trace(S1inv @ S0) + dm @ S1inv @ dm - len(m0)
                  + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1])


def test_log_evidence_matches_scipy_multivariate_normal():
    _, model, x, _, _ = _setup()
    W, b, log_s = model.params.values()
    ref = stats.multivariate_normal(b, W @ W.T + np.exp(2 * log_s) * np.eye(D)).logpdf(x)
    out = model.log_evidence(x)[0]
    assert np.max(np.abs(out - ref) / np.abs(ref)) < TOL_REF


def test_posterior_matches_brute_force_conditioning_of_the_joint_gaussian():
    """(z, x) is jointly Gaussian: mean (0, b), cov [[I, W^T], [W, C]]; condition on x (PRML 2.81-2.82)."""
    _, model, x, _, _ = _setup()
    W, b, log_s = model.params.values()
    C = W @ W.T + np.exp(2 * log_s) * np.eye(D)
    loc_ref = (x - b) @ np.linalg.solve(C, W)                                # W^T C^-1 (x - b)
    cov_ref = np.eye(K) - W.T @ np.linalg.solve(C, W)
    loc, L = model.posterior(x)
    assert np.max(np.abs(loc - loc_ref)) < TOL_REF
    assert np.max(np.abs(L @ np.swapaxes(L, -1, -2) - cov_ref)) < TOL_REF
    assert np.allclose(np.linalg.inv(model.posterior_precision()), cov_ref, atol=TOL_REF, rtol=0)


@pytest.mark.parametrize("diagonal", [False, True])
def test_evidence_minus_elbo_is_kl_to_posterior(diagonal):
    _, model, x, loc, entries = _setup()
    L = _tril(entries)
    if diagonal:
        L = L * np.eye(K)
    log_px = model.log_evidence(x)[0]
    elbo = model.elbo(x, loc, L)[0]
    kl = model.kl_to_posterior(x, loc, L)
    assert np.all(kl > 0)
    assert np.max(np.abs((log_px - elbo) - kl) / np.abs(log_px)) < TOL_REF
    mu, Lp = model.posterior(x)
    ref = [_gauss_kl(loc[i], L[i] @ L[i].T, mu[i], Lp[i] @ Lp[i].T) for i in range(N)]
    assert np.max(np.abs(kl - ref) / np.abs(ref)) < TOL_REF
    assert np.max(np.abs(model.kl_to_posterior(x, mu, Lp))) < TOL_REF          # q = p(z|x): KL 0


def test_closed_form_elbo_matches_independent_monte_carlo():
    """E_q[log p(x|z) + log p(z) - log q(z)] with every density from scipy.stats; 200k samples,
    tolerance 4 standard errors (a false failure has probability ~6e-5 per point)."""
    rng, model, x, loc, entries = _setup()
    L = _tril(entries)
    W, b, log_s = model.params.values()
    elbo = model.elbo(x, loc, L)[0]
    for i in range(N):
        z = stats.multivariate_normal(loc[i], L[i] @ L[i].T).rvs(200_000, random_state=rng)
        lw = (stats.norm(z @ W.T + b, np.exp(log_s)).logpdf(x[i]).sum(-1)
              + stats.multivariate_normal(np.zeros(K)).logpdf(z)
              - stats.multivariate_normal(loc[i], L[i] @ L[i].T).logpdf(z))
        se = lw.std(ddof=1) / np.sqrt(lw.size)
        assert abs(lw.mean() - elbo[i]) < 4 * se, \
            f"point {i}: MC {lw.mean():.5f} vs closed {elbo[i]:.5f}, tolerance 4 se = {4 * se:.5f}"


def test_log_weight_terms_match_scipy_densities_exactly():
    """For given eps every term is deterministic: log q via the Jacobian route vs scipy's density of z."""
    rng, model, x, loc, entries = _setup()
    L = _tril(entries)
    W, b, log_s = model.params.values()
    eps = rng.standard_normal((7, N, K))
    t = model.log_weight_terms(x, loc, L, eps)
    z = loc + np.einsum("nij,snj->sni", L, eps)                              # (7, N, K)
    for i in range(N):
        log_q = stats.multivariate_normal(loc[i], L[i] @ L[i].T).logpdf(z[:, i])
        log_lik = stats.norm(z[:, i] @ W.T + b, np.exp(log_s)).logpdf(x[i]).sum(-1)
        assert np.allclose(t["log_q"][:, i], log_q, rtol=TOL_REF, atol=0)
        assert np.allclose(t["log_lik"][:, i], log_lik, rtol=TOL_REF, atol=0)
    assert np.allclose(t["log_abs_det"], np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1))
    direct = np.log(np.exp(t["log_w"]).mean(0))                             # small K: no overflow here
    assert np.allclose(model.iwae(x, loc, L, eps), direct, rtol=TOL_REF, atol=0)


def test_iwae_is_stable_and_k1_is_the_elbo_estimate():
    rng, model, x, loc, entries = _setup()
    L = _tril(entries) * 0.05                                                # a far-too-narrow q
    eps = rng.standard_normal((50, N, K))
    est = model.iwae(x, loc, L, eps)
    assert np.all(np.isfinite(est)) and np.all(est < model.log_evidence(x)[0] + 1.0)
    one = model.iwae(x, loc, L, eps[:1])
    assert np.allclose(one, model.log_weight_terms(x, loc, L, eps[:1])["log_w"][0])


def test_expected_log_joint_terms_add_up_to_the_elbo():
    """ELBO = E_q log p(x|z) + E_q log p(z) + H(N(0, I)) + log|det L| (another route than KL)."""
    _, model, x, loc, entries = _setup()
    L = _tril(entries)
    t = model.expected_log_joint_terms(x, loc, L)
    H_eps = K * 0.5 * (1 + np.log(2 * np.pi))
    total = t["log_lik"] + t["log_prior"] + H_eps + t["log_abs_det"]
    elbo = model.elbo(x, loc, L)[0]
    assert np.max(np.abs(total - elbo) / np.abs(elbo)) < TOL_REF


# ------------------------------------------------------------------------------------ gradients
def _elbo_check(model, x, loc, entries, rng, corrupt=None):
    def forward():
        return model.elbo(x, loc, _tril(entries))[0]

    def backward(dout):
        g = model.elbo_backward(dout, model.elbo(x, loc, _tril(entries))[1])
        g["entries"] = g.pop("scale_tril")[:, ROWS, COLS]
        if corrupt:
            corrupt(g, dout)
        return g
    return check_gradients(forward, backward, dict(model.params, loc=loc, entries=entries), rng=rng)


def test_elbo_gradients_wrt_theta_loc_and_scale_tril():
    rng, model, x, loc, entries = _setup()
    report = _elbo_check(model, x, loc, entries, rng)
    assert report.ok(TOL_GRAD), str(report)


def test_elbo_gradient_wrt_diagonal_log_scale():
    """Diagonal q: L = diag(exp(log_scale)) via tril_from_params with fixed zero offdiag."""
    rng, model, x, loc, _ = _setup()
    log_scale = _away(rng, (N, K), 0.1, 0.8)
    off = np.zeros((N, K * (K - 1) // 2))

    def forward():
        return model.elbo(x, loc, tril_from_params(log_scale, off)[0])[0]

    def backward(dout):
        L, cache_L = tril_from_params(log_scale, off)
        g = model.elbo_backward(dout, model.elbo(x, loc, L)[1])
        return {"loc": g["loc"], "log_scale": tril_from_params_backward(g["scale_tril"], cache_L)["log_diag"]}
    report = check_gradients(forward, backward, {"loc": loc, "log_scale": log_scale}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_log_evidence_gradients_wrt_theta():
    rng, model, x, _, _ = _setup()
    report = check_gradients(lambda: model.log_evidence(x)[0],
                             lambda g: model.log_evidence_backward(g, model.log_evidence(x)[1]),
                             model.params, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


@pytest.mark.parametrize("bug", ["forgot_var_of_z_in_dW", "log_var_convention_for_noise"])
def test_negative_controls_fail_the_gradient_check(bug):
    """Two plausible hand-derivation slips must be caught: dropping -W S/s^2 from dW (treating
    E_q|x - W z|^2 as |x - W m|^2), and differentiating w.r.t. log s^2 instead of log s."""
    rng, model, x, loc, entries = _setup()
    W, s2 = model.params["W"], np.exp(2 * model.params["log_noise_scale"])
    L = _tril(entries)

    def corrupt(g, dout):
        if bug == "forgot_var_of_z_in_dW":
            g["W"] = g["W"] + W @ np.einsum("n,nij,nkj->ik", dout, L, L) / s2
        else:
            g["log_noise_scale"] = g["log_noise_scale"] / 2
    report = _elbo_check(model, x, loc, entries, rng, corrupt)
    assert report.overall > 1e-3, str(report)


def test_elbo_theta_gradient_at_exact_posterior_equals_evidence_gradient():
    """Fisher's identity (the EM property): with q = p(z|x, theta), grad_theta ELBO = grad_theta log p(x)."""
    rng, model, x, _, _ = _setup()
    mu, Lp = model.posterior(x)
    dout = rng.standard_normal(N)
    g_elbo = model.elbo_backward(dout, model.elbo(x, mu, Lp)[1])
    g_ev = model.log_evidence_backward(dout, model.log_evidence(x)[1])
    for name in model.params:
        assert np.allclose(g_elbo[name], g_ev[name], rtol=1e-9, atol=1e-11), name


def test_maximum_likelihood_is_a_stationary_point_and_beats_the_truth():
    rng = np.random.default_rng(3)
    true = _model(rng, d=6, k=2, log_s=np.log(0.4))
    x = true.sample(400, rng)[0]
    ml = LinearGaussian.maximum_likelihood(x, 2)
    ll, cache = ml.log_evidence(x)
    g = ml.log_evidence_backward(np.ones(len(x)) / len(x), cache)
    assert max(np.abs(v).max() for v in g.values()) < 1e-10
    assert ll.mean() >= true.log_evidence(x)[0].mean()
    for _ in range(5):                                                         # random nearby models
        other = LinearGaussian(ml.params["W"] + 0.01 * rng.standard_normal((6, 2)), ml.params["b"] + 0.01,
                               np.asarray(ml.params["log_noise_scale"] + 0.01))
        assert other.log_evidence(x)[0].mean() < ll.mean()


def test_mean_field_optimum_is_the_best_diagonal_q_and_its_gap_formula():
    rng, model, x, _, _ = _setup()
    loc, log_scale, gap = model.mean_field_optimum(x)
    L = np.exp(log_scale)[..., None] * np.eye(K)
    elbo = model.elbo(x, loc, L)[0]
    assert np.allclose(model.log_evidence(x)[0] - elbo, gap, rtol=TOL_REF, atol=0)
    assert np.allclose(model.kl_to_posterior(x, loc, L), gap, rtol=TOL_REF, atol=0)
    for _ in range(10):                                                        # every perturbation is worse
        dl, ds = 1e-3 * rng.standard_normal(loc.shape), 1e-3 * rng.standard_normal(loc.shape)
        assert np.all(model.elbo(x, loc + dl, np.exp(log_scale + ds)[..., None] * np.eye(K))[0] < elbo)
    rho = -0.85                                                                # 2-D: gap = -log(1 - rho^2)/2
    sd = np.array([0.3, 0.2])
    cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
    R = np.linalg.cholesky(0.25 * (np.linalg.inv(cov) - np.eye(2))).T
    m2 = LinearGaussian(np.linalg.qr(rng.standard_normal((4, 2)))[0] @ R, np.zeros(4), np.asarray(np.log(0.5)))
    assert abs(m2.mean_field_optimum(np.ones((1, 4)))[2][0] + 0.5 * np.log(1 - rho ** 2)) < TOL_REF


def test_log_weight_second_moment_matches_grid_quadrature():
    """log E_q[(p(z|x)/q(z))^2] = log of the integral of p(z|x)^2 / q(z), on a fine 2-D grid."""
    rng = np.random.default_rng(4)
    model = _model(rng, d=4, k=2)
    x = model.sample(1, rng)[0]
    mu, Lp = model.posterior(x)
    S = Lp[0] @ Lp[0].T
    loc, L = mu + 0.1, np.array([[[1.1, 0.0], [0.3, 1.2]]]) * np.sqrt(S.max())
    half = 10 * np.sqrt(S.max())
    g = np.linspace(-half, half, 801)
    Z = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2) + mu[0]
    integrand = (2 * stats.multivariate_normal(mu[0], S).logpdf(Z)
                 - stats.multivariate_normal(loc[0], L[0] @ L[0].T).logpdf(Z))
    ref = np.log(np.exp(integrand).sum() * (g[1] - g[0]) ** 2)
    assert abs(model.log_weight_second_moment(x, loc, L)[0] - ref) < 1e-8
    narrow = L * 0.5                                                           # 2M - S^-1 not PD: diverges
    assert model.log_weight_second_moment(x, mu, narrow)[0] == np.inf


# ----------------------------------------------------------------------------- contracts
def test_backward_is_pure_and_forwards_are_independent():
    rng, model, x, loc, entries = _setup()
    L = _tril(entries)
    out1, cache1 = model.elbo(x, loc, L)
    model.elbo(x, loc + 1.0, L * 0.5)                                          # a second forward
    before = {k: v.copy() for k, v in model.params.items()}
    g1 = model.elbo_backward(np.ones(N), cache1)
    g2 = model.elbo_backward(np.ones(N), model.elbo(x, loc, L)[1])
    for name in g1:
        assert np.array_equal(g1[name], g2[name])
    for name, v in model.params.items():
        assert np.array_equal(v, before[name])


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    model = LinearGaussian(rng.standard_normal((D, K)).astype(np.float32), np.zeros(D, np.float32),
                           np.asarray(-0.2, np.float32))
    x = rng.standard_normal((N, D)).astype(np.float32)
    loc = np.zeros((N, K), np.float32)
    L = np.broadcast_to(np.eye(K, dtype=np.float32), (N, K, K)).copy()
    elbo, cache = model.elbo(x, loc, L)
    assert elbo.dtype == np.float32 and model.log_evidence(x)[0].dtype == np.float32
    assert all(v.dtype == np.float32 for v in model.elbo_backward(np.ones(N, np.float32), cache).values())
    assert model.iwae(x, loc, L, rng.standard_normal((3, N, K)).astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("case, error, words", [
    ("W_int", TypeError, "W must have dtype"),
    ("b_shape", ValueError, "b must have shape"),
    ("log_s_shape", ValueError, "log_noise_scale must have shape"),
    ("x_shape", ValueError, "x must have shape"),
    ("x_dtype", TypeError, "x must have dtype"),
    ("loc_shape", ValueError, "loc must have shape"),
    ("upper", ValueError, "scale_tril must be lower triangular"),
    ("eps_shape", ValueError, "eps must have shape"),
    ("ml_k", ValueError, "k must be smaller"),
])
def test_validation_names_the_argument(case, error, words):
    rng, model, x, loc, entries = _setup()
    L = _tril(entries)
    calls = {
        "W_int": lambda: LinearGaussian(np.ones((D, K), dtype=int), np.zeros(D), np.asarray(0.0)),
        "b_shape": lambda: LinearGaussian(np.ones((D, K)), np.zeros(D + 1), np.asarray(0.0)),
        "log_s_shape": lambda: LinearGaussian(np.ones((D, K)), np.zeros(D), np.zeros(1)),
        "x_shape": lambda: model.log_evidence(np.ones((N, D + 1))),
        "x_dtype": lambda: model.elbo(x.astype(np.float32), loc, L),
        "loc_shape": lambda: model.elbo(x, loc[:, :2], L),
        "upper": lambda: model.elbo(x, loc, L + np.triu(np.ones((K, K)), 1)),
        "eps_shape": lambda: model.iwae(x, loc, L, np.ones((3, N, K + 1))),
        "ml_k": lambda: LinearGaussian.maximum_likelihood(x, D),
    }
    with pytest.raises(error, match=words):
        calls[case]()
