"""Distributions: hand-written derivatives vs finite differences, densities vs scipy.stats,
dtype preservation and input validation.

Fixtures are float64, batched (leading shape (2, 3)), with D = 4 and non-trivial values: no zeros,
no identity Cholesky factors, scales away from 1, because such values hide wrong backward passes.
"""
import numpy as np
import pytest
from scipy import integrate, stats

from scratchvae.distributions import (Bernoulli, MultivariateNormal, Normal, bernoulli_log_prob,
                                      bernoulli_log_prob_grads, gaussian_log_prob,
                                      standard_normal_log_prob, standard_normal_log_prob_grad)
from scratchvae.gradcheck import check_gradients

TOL_GRAD = 1e-7      # max relative error of an analytic gradient (tighter than the whole model's 1e-6)
TOL_REF = 1e-10      # agreement with scipy.stats in float64
BATCH, D = (2, 3), 4
ROWS, COLS = np.tril_indices(D)        # lower triangle incl. diagonal: the free entries of L


def _away_from_zero(rng, shape, lo, hi):
    """Random signs times magnitudes in [lo, hi]: no entry (and no derivative built from it) near 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _normal_params(rng, shape=BATCH + (D,)):
    loc = _away_from_zero(rng, shape, 0.2, 1.5)
    log_scale = _away_from_zero(rng, shape, 0.15, 0.8)   # sigma in [0.45, 0.86] or [1.16, 2.2]: s^2 - 1 != 0
    w = rng.choice([0.2, 0.6, 1.4, 2.0], size=shape) + rng.uniform(0, 0.2, size=shape)
    x = loc + np.exp(log_scale) * rng.choice([-1.0, 1.0], size=shape) * w   # |x - loc|/s away from 0 and 1
    return loc, log_scale, x


def _tril_from_entries(entries):
    """Lower-triangular (..., D, D) from its (..., D(D+1)/2) free entries (zeros above)."""
    L = np.zeros(entries.shape[:-1] + (D, D))
    L[..., ROWS, COLS] = entries
    return L


def _mvn_params(rng, batch=BATCH, d=D):
    """loc (..., d) and lower-triangular L (..., d, d): diagonal in [0.5, 0.77] or [1.3, 2] (so
    L_ii - 1/L_ii, the KL's derivative, is not near 0), off-diagonal magnitudes in [0.2, 0.9] scaled
    by 2/sqrt(d) for large d (keeps L well conditioned)."""
    loc = _away_from_zero(rng, batch + (d,), 0.2, 1.5)
    L = np.tril(_away_from_zero(rng, batch + (d, d), 0.2, 0.9) * min(1.0, 2 / np.sqrt(d)), -1)
    i = np.arange(d)
    L[..., i, i] = rng.uniform(1.3, 2.0, size=batch + (d,)) ** rng.choice([-1.0, 1.0], size=batch + (d,))
    x = _away_from_zero(rng, batch + (d,), 0.1, 2.0)
    return loc, L, x


def _per_batch(fn, *arrays):
    """Apply fn to each leading-index slice (scipy's frozen distributions are not batched)."""
    out = np.empty(BATCH)
    for idx in np.ndindex(*BATCH):
        out[idx] = fn(*(a[idx] for a in arrays))
    return out


# --------------------------------------------------------------------------- standard normal prior
def test_standard_normal_log_prob_matches_scipy_and_its_gradient():
    rng = np.random.default_rng(0)
    x = _away_from_zero(rng, BATCH + (D,), 0.1, 2.5)
    np.testing.assert_allclose(standard_normal_log_prob(x), stats.norm.logpdf(x), rtol=0, atol=TOL_REF)
    report = check_gradients(lambda: standard_normal_log_prob(x),
                             lambda dout: {"x": dout * standard_normal_log_prob_grad(x)}, {"x": x}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


# --------------------------------------------------------------------------- Normal (diagonal)
def test_normal_density_entropy_kl_match_independent_references():
    rng = np.random.default_rng(1)
    loc, log_scale, x = _normal_params(rng)
    q = Normal(loc, log_scale)
    s = np.exp(log_scale)
    np.testing.assert_allclose(q.log_prob(x), stats.norm.logpdf(x, loc, s), rtol=0, atol=TOL_REF)
    np.testing.assert_allclose(gaussian_log_prob(x, loc, log_scale), q.log_prob(x), rtol=0, atol=0)
    np.testing.assert_allclose(q.entropy(), stats.norm.entropy(loc, s), rtol=0, atol=TOL_REF)
    np.testing.assert_allclose(q.scale, s, rtol=1e-15)
    np.testing.assert_allclose(q.var, s ** 2, rtol=1e-15)
    # KL = -H(q) - E_q[log N(z; 0, 1)], with scipy's entropy and the Gaussian cross-entropy
    cross = 0.5 * (loc ** 2 + s ** 2) + 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(q.kl_to_standard_normal(), cross - stats.norm.entropy(loc, s),
                               rtol=0, atol=TOL_REF)
    # and by quadrature of q(z) (log q(z) - log p(z)) for a few entries
    for idx in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        m, sd = loc[idx], s[idx]
        kl, _ = integrate.quad(lambda z: stats.norm.pdf(z, m, sd) * (stats.norm.logpdf(z, m, sd)
                                                                     - stats.norm.logpdf(z)),
                               m - 30 * sd, m + 30 * sd, epsabs=1e-13, epsrel=1e-13, limit=200)
        assert abs(q.kl_to_standard_normal()[idx] - kl) < TOL_REF, (idx, q.kl_to_standard_normal()[idx], kl)


def _normal_log_prob_check(rng, grads_fn):
    loc, log_scale, x = _normal_params(rng)

    def backward(dout):
        return {k: dout * g for k, g in grads_fn(loc, log_scale, x).items()}

    return check_gradients(lambda: Normal(loc, log_scale).log_prob(x), backward,
                           {"x": x, "loc": loc, "log_scale": log_scale}, rng=rng)


def test_normal_log_prob_gradients():
    report = _normal_log_prob_check(np.random.default_rng(2),
                                    lambda m, s, x: Normal(m, s).log_prob_grads(x))
    assert report.ok(TOL_GRAD), str(report)
    assert set(report.max_rel_error) == {"x", "loc", "log_scale"}


def test_normal_negative_control_log_var_confusion_fails():
    """The numpy-ml bug in derivative form: treating log_scale as log sigma^2 halves d/dlog_scale."""
    def wrong(m, s, x):
        g = Normal(m, s).log_prob_grads(x)
        return {**g, "log_scale": 0.5 * g["log_scale"]}
    report = _normal_log_prob_check(np.random.default_rng(2), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["log_scale"] > 0.1, str(report)


def test_normal_entropy_and_kl_gradients():
    rng = np.random.default_rng(3)
    loc, log_scale, _ = _normal_params(rng)
    report = check_gradients(lambda: Normal(loc, log_scale).entropy(),
                             lambda d: {"log_scale": d * Normal(loc, log_scale).entropy_grads()["log_scale"]},
                             {"log_scale": log_scale}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)
    report = check_gradients(lambda: Normal(loc, log_scale).kl_to_standard_normal(),
                             lambda d: {k: d * g for k, g in
                                        Normal(loc, log_scale).kl_to_standard_normal_grads().items()},
                             {"loc": loc, "log_scale": log_scale}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_normal_rsample_and_sample():
    rng = np.random.default_rng(4)
    loc, log_scale, eps = _normal_params(rng)
    q = Normal(loc, log_scale)
    np.testing.assert_allclose(q.rsample(eps), loc + np.exp(log_scale) * eps, rtol=1e-15)
    a, b = q.sample(np.random.default_rng(7)), q.sample(np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == loc.shape
    big = Normal(np.full(200_000, 0.7), np.full(200_000, np.log(1.3))).sample(np.random.default_rng(8))
    se = 1.3 / np.sqrt(big.size)
    assert abs(big.mean() - 0.7) < 5 * se, f"sample mean {big.mean()} vs 0.7, tolerance 5 SE = {5 * se}"
    assert abs(big.std() - 1.3) < 0.01, f"sample std {big.std()} vs 1.3, tolerance 0.01"


# --------------------------------------------------------------------------- MultivariateNormal
def test_mvn_density_entropy_kl_match_independent_references():
    rng = np.random.default_rng(5)
    loc, L, x = _mvn_params(rng)
    q = MultivariateNormal(loc, L)
    cov = L @ np.swapaxes(L, -1, -2)
    np.testing.assert_allclose(q.covariance_matrix, cov, rtol=1e-14)
    ref = _per_batch(lambda m, c, xx: stats.multivariate_normal(m, c).logpdf(xx), loc, cov, x)
    np.testing.assert_allclose(q.log_prob(x), ref, rtol=0, atol=TOL_REF)
    ref = _per_batch(lambda m, c: stats.multivariate_normal(m, c).entropy(), loc, cov)
    np.testing.assert_allclose(q.entropy(), ref, rtol=0, atol=TOL_REF)
    # KL from Sigma itself: (tr Sigma + mu^T mu - D - log det Sigma)/2 with numpy's slogdet
    sign, logdet = np.linalg.slogdet(cov)
    assert np.all(sign > 0)
    kl = 0.5 * (np.trace(cov, axis1=-2, axis2=-1) + (loc ** 2).sum(-1) - D - logdet)
    np.testing.assert_allclose(q.kl_to_standard_normal(), kl, rtol=0, atol=TOL_REF)


def test_mvn_kl_monte_carlo():
    """E_q[log q(z) - log p(z)] with z ~ q, both densities from scipy; tolerance 5 standard errors."""
    rng = np.random.default_rng(6)
    loc, L, _ = _mvn_params(rng, batch=(), d=3)
    q = MultivariateNormal(loc, L)
    z = loc + rng.standard_normal((100_000, 3)) @ L.T
    diff = (stats.multivariate_normal(loc, L @ L.T).logpdf(z)
            - stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z))
    se = diff.std() / np.sqrt(diff.size)
    assert abs(diff.mean() - q.kl_to_standard_normal()) < 5 * se, \
        f"MC KL {diff.mean():.5f} vs analytic {q.kl_to_standard_normal():.5f}, tolerance 5 SE = {5 * se:.5f}"


def _mvn_log_prob_check(rng, grads_fn):
    """Gradient check over x, loc and the free (lower-triangular) entries of L."""
    loc, L, x = _mvn_params(rng)
    tril = L[..., ROWS, COLS].copy()                                  # (2, 3, 10)

    def backward(dout):
        g = grads_fn(loc, _tril_from_entries(tril), x)
        assert np.all(np.triu(g["scale_tril"], 1) == 0), "gradient above the diagonal must be 0"
        return {"x": dout[..., None] * g["x"], "loc": dout[..., None] * g["loc"],
                "tril": (dout[..., None, None] * g["scale_tril"])[..., ROWS, COLS]}

    return check_gradients(lambda: MultivariateNormal(loc, _tril_from_entries(tril)).log_prob(x),
                           backward, {"x": x, "loc": loc, "tril": tril}, rng=rng)


def test_mvn_log_prob_gradients():
    report = _mvn_log_prob_check(np.random.default_rng(7),
                                 lambda m, L, x: MultivariateNormal(m, L).log_prob_grads(x))
    assert report.ok(TOL_GRAD), str(report)


def test_mvn_negative_control_forgotten_log_det_term_fails():
    """Dropping -diag(1/L_ii) (the log-determinant's derivative) must be caught."""
    def wrong(m, L, x):
        g = MultivariateNormal(m, L).log_prob_grads(x)
        return {**g, "scale_tril": g["scale_tril"] + MultivariateNormal(m, L).entropy_grads()["scale_tril"]}
    report = _mvn_log_prob_check(np.random.default_rng(7), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["tril"] > 0.1, str(report)


def test_mvn_entropy_and_kl_gradients():
    rng = np.random.default_rng(8)
    loc, L, _ = _mvn_params(rng)
    tril = L[..., ROWS, COLS].copy()
    mvn = lambda: MultivariateNormal(loc, _tril_from_entries(tril))  # noqa: E731
    report = check_gradients(lambda: mvn().entropy(),
                             lambda d: {"tril": (d[..., None, None] * mvn().entropy_grads()["scale_tril"])
                                        [..., ROWS, COLS]}, {"tril": tril}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)

    def kl_backward(d):
        g = mvn().kl_to_standard_normal_grads()
        assert np.all(np.triu(g["scale_tril"], 1) == 0)
        return {"loc": d[..., None] * g["loc"],
                "tril": (d[..., None, None] * g["scale_tril"])[..., ROWS, COLS]}
    report = check_gradients(lambda: mvn().kl_to_standard_normal(), kl_backward,
                             {"loc": loc, "tril": tril}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_mvn_rsample_and_sample():
    rng = np.random.default_rng(9)
    loc, L, eps = _mvn_params(rng)
    q = MultivariateNormal(loc, L)
    np.testing.assert_allclose(q.rsample(eps), loc + np.einsum("...ij,...j->...i", L, eps), rtol=1e-14)
    assert np.array_equal(q.sample(np.random.default_rng(3)), q.sample(np.random.default_rng(3)))
    n = 100_000
    big = MultivariateNormal(np.broadcast_to(loc[0, 0], (n, D)).copy(),
                             np.broadcast_to(L[0, 0], (n, D, D)).copy()).sample(np.random.default_rng(4))
    cov = L[0, 0] @ L[0, 0].T
    err = np.abs(np.cov(big.T) - cov).max()
    assert err < 0.05, f"sample covariance off by {err:.4f}, tolerance 0.05 (n = {n})"


def test_mvn_batched_is_fast():
    """Batch 128, D = 20: log_prob and its gradients by triangular substitution, no Python loop over the batch."""
    import time
    rng = np.random.default_rng(10)
    loc, L, x = _mvn_params(rng, batch=(128,), d=20)
    q = MultivariateNormal(loc, L)
    t0 = time.perf_counter()
    for _ in range(20):
        q.log_prob(x), q.log_prob_grads(x)
    per_call = (time.perf_counter() - t0) / 20
    ref = np.array([stats.multivariate_normal(loc[b], L[b] @ L[b].T).logpdf(x[b]) for b in range(128)])
    np.testing.assert_allclose(q.log_prob(x), ref, rtol=TOL_REF, atol=TOL_REF)
    assert per_call < 0.05, f"log_prob + log_prob_grads took {per_call * 1e3:.1f} ms, budget 50 ms"


# --------------------------------------------------------------------------- Bernoulli
def _bernoulli_fixture(rng):
    logits = _away_from_zero(rng, BATCH + (D,), 0.3, 3.0)
    x = (rng.random(BATCH + (D,)) < 0.5).astype(np.float64)
    x[0, 0, :2] = [0.0, 1.0]                                          # both outcomes present
    return logits, x


def test_bernoulli_log_prob_entropy_match_scipy_and_are_stable():
    rng = np.random.default_rng(11)
    logits, x = _bernoulli_fixture(rng)
    b = Bernoulli(logits)
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(b.probs, p, rtol=1e-14)
    np.testing.assert_array_equal(b.mean, b.probs)
    np.testing.assert_allclose(b.log_prob(x), stats.bernoulli.logpmf(x, p), rtol=0, atol=TOL_REF)
    np.testing.assert_allclose(bernoulli_log_prob(x, logits), b.log_prob(x), rtol=0, atol=0)
    np.testing.assert_allclose(b.entropy(), stats.bernoulli.entropy(p), rtol=0, atol=TOL_REF)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow at extreme logits
        t = np.array([-1000.0, -40.0, 40.0, 1000.0])
        e = Bernoulli(t)
        assert np.all(np.isfinite(e.log_prob(np.array([0.0, 1.0, 1.0, 0.0]))))
        np.testing.assert_allclose(e.log_prob(np.array([1.0, 1.0, 1.0, 1.0]))[[1, 3]], [-40.0, 0.0], atol=1e-15)
        assert np.all(e.entropy() >= 0) and e.entropy()[0] == 0.0


def test_bernoulli_log_prob_gradients():
    rng = np.random.default_rng(12)
    logits, x = _bernoulli_fixture(rng)
    report = check_gradients(lambda: Bernoulli(logits).log_prob(x),
                             lambda d: {"logits": d * Bernoulli(logits).log_prob_grads(x)["logits"]},
                             {"logits": logits}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)
    # d/dx of the continuous extension x t - softplus(t), evaluated at the 0/1 data
    report = check_gradients(lambda: bernoulli_log_prob(x, logits),
                             lambda d: {"x": d * Bernoulli(logits).log_prob_grads(x)["x"]}, {"x": x}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)
    # the functional helper at grey levels
    grey = rng.random(BATCH + (D,))
    report = check_gradients(lambda: bernoulli_log_prob(grey, logits),
                             lambda d: {k: d * g for k, g in bernoulli_log_prob_grads(grey, logits).items()},
                             {"x": grey, "logits": logits}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_bernoulli_negative_control_wrong_sign_fails():
    rng = np.random.default_rng(12)
    logits, x = _bernoulli_fixture(rng)
    report = check_gradients(lambda: Bernoulli(logits).log_prob(x),
                             lambda d: {"logits": d * (x - Bernoulli(-logits).probs)},   # sigmoid(-t): wrong
                             {"logits": logits}, rng=rng)
    assert not report.ok(TOL_GRAD) and report.overall > 0.1, str(report)


def test_bernoulli_entropy_gradient_and_sample():
    rng = np.random.default_rng(13)
    logits, _ = _bernoulli_fixture(rng)
    report = check_gradients(lambda: Bernoulli(logits).entropy(),
                             lambda d: {"logits": d * Bernoulli(logits).entropy_grads()["logits"]},
                             {"logits": logits}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)
    s = Bernoulli(logits).sample(np.random.default_rng(1))
    assert s.dtype == np.float64 and set(np.unique(s)) <= {0.0, 1.0}
    assert np.array_equal(s, Bernoulli(logits).sample(np.random.default_rng(1)))
    big = Bernoulli(np.full(100_000, 0.8)).sample(np.random.default_rng(2))
    p = 1 / (1 + np.exp(-0.8))
    se = np.sqrt(p * (1 - p) / big.size)
    assert abs(big.mean() - p) < 5 * se, f"sample mean {big.mean()} vs p = {p}, tolerance 5 SE = {5 * se}"


# --------------------------------------------------------------------------- float32 in, float32 out
def _assert_f32(value, what):
    arrays = value.values() if isinstance(value, dict) else [value]
    for a in arrays:
        assert a.dtype == np.float32, f"{what} returned {a.dtype}"


def test_float32_in_float32_out_everywhere():
    rng = np.random.default_rng(14)
    f32 = lambda *arrays: [a.astype(np.float32) for a in arrays]  # noqa: E731
    loc, log_scale, x = f32(*_normal_params(rng))
    _assert_f32(standard_normal_log_prob(x), "standard_normal_log_prob")
    _assert_f32(standard_normal_log_prob_grad(x), "standard_normal_log_prob_grad")
    _assert_f32(gaussian_log_prob(x, loc, log_scale), "gaussian_log_prob")
    q = Normal(loc, log_scale)
    for name in ["log_prob", "log_prob_grads", "rsample"]:
        _assert_f32(getattr(q, name)(x), f"Normal.{name}")
    for name in ["entropy", "entropy_grads", "kl_to_standard_normal", "kl_to_standard_normal_grads"]:
        _assert_f32(getattr(q, name)(), f"Normal.{name}")
    _assert_f32(q.sample(rng), "Normal.sample")
    _assert_f32(q.scale, "Normal.scale"), _assert_f32(q.var, "Normal.var")
    loc, L, x = f32(*_mvn_params(rng))
    m = MultivariateNormal(loc, L)
    for name in ["log_prob", "log_prob_grads", "rsample"]:
        _assert_f32(getattr(m, name)(x), f"MultivariateNormal.{name}")
    for name in ["entropy", "entropy_grads", "kl_to_standard_normal", "kl_to_standard_normal_grads"]:
        _assert_f32(getattr(m, name)(), f"MultivariateNormal.{name}")
    _assert_f32(m.sample(rng), "MultivariateNormal.sample")
    _assert_f32(m.covariance_matrix, "MultivariateNormal.covariance_matrix")
    np.testing.assert_allclose(m.log_prob(x), MultivariateNormal(*[a.astype(np.float64) for a in (loc, L)])
                               .log_prob(x.astype(np.float64)), rtol=1e-5)
    logits, xb = f32(*_bernoulli_fixture(rng))
    b = Bernoulli(logits)
    for name in ["log_prob", "log_prob_grads"]:
        _assert_f32(getattr(b, name)(xb), f"Bernoulli.{name}")
    for name in ["entropy", "entropy_grads"]:
        _assert_f32(getattr(b, name)(), f"Bernoulli.{name}")
    _assert_f32(b.sample(rng), "Bernoulli.sample")
    _assert_f32(b.probs, "Bernoulli.probs")
    _assert_f32(bernoulli_log_prob(xb, logits), "bernoulli_log_prob")
    _assert_f32(bernoulli_log_prob_grads(xb, logits), "bernoulli_log_prob_grads")


# --------------------------------------------------------------------------- errors at the boundary
_r = np.random.default_rng(15)
_LOC, _LS, _X = _normal_params(_r)
_MLOC, _L, _MX = _mvn_params(_r)
_LOGITS, _XB = _bernoulli_fixture(_r)


def _with(a, idx, value):
    a = a.copy()
    a[idx] = value
    return a


BAD_INPUTS = [
    # (call, error type, regex the message must match: the argument and what was expected)
    (lambda: standard_normal_log_prob(np.arange(3)), TypeError, r"x must have dtype float32 or float64"),
    (lambda: Normal([0.0, 1.0], _LS[0, 0, :2]), TypeError, r"loc must be a numpy.ndarray"),
    (lambda: Normal(_LOC, _LS.astype(np.float32)), TypeError, r"loc and log_scale must have the same dtype"),
    (lambda: Normal(_LOC, _LS[..., :3]), ValueError, r"loc and log_scale must have the same shape"),
    (lambda: Normal(_LOC, _with(_LS, (0, 0, 0), np.nan)), ValueError, r"log_scale contains 1 NaN"),
    (lambda: Normal(_with(_LOC, (1, 1, 1), np.inf), _LS), ValueError, r"loc contains 1 NaN or infinite"),
    (lambda: Normal(_LOC, _LS).log_prob(_X[0]), ValueError, r"x and loc must have the same shape"),
    (lambda: Normal(_LOC, _LS).log_prob(_X.astype(np.float32)), TypeError, r"x and loc must have the same dtype"),
    (lambda: Normal(_LOC, _LS).log_prob_grads(_with(_X, (0, 0, 0), np.nan)), ValueError, r"x contains 1 NaN"),
    (lambda: Normal(_LOC, _LS).rsample(_X[..., :2]), ValueError, r"eps and loc must have the same shape"),
    (lambda: Normal(_LOC, _LS).sample(0), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda: MultivariateNormal(_MLOC, _with(_L, (0, 0, 1, 2), 0.1)), ValueError,
     r"scale_tril must be lower triangular .* 1 nonzero entries above"),
    (lambda: MultivariateNormal(_MLOC, _with(_L, (0, 1, 2, 2), 0.0)), ValueError,
     r"scale_tril must have a strictly positive diagonal"),
    (lambda: MultivariateNormal(_MLOC, _with(_L, (1, 1, 0, 0), -0.5)), ValueError,
     r"scale_tril must have a strictly positive diagonal, got 1 .* \(smallest -0.5\)"),
    (lambda: MultivariateNormal(_MLOC, _with(_L, (0, 0, 3, 1), np.nan)), ValueError, r"scale_tril contains 1 NaN"),
    (lambda: MultivariateNormal(_MLOC, _L[..., :3, :3]), ValueError, r"scale_tril must have shape \(2, 3, 4, 4\)"),
    (lambda: MultivariateNormal(_MLOC, _L[..., :3]), ValueError, r"scale_tril must have shape \(\.\.\., D, D\)"),
    (lambda: MultivariateNormal(_MLOC, _L.astype(np.float32)), TypeError, r"scale_tril and loc must have the same dtype"),
    (lambda: MultivariateNormal(np.array(1.0), np.ones((1, 1))), ValueError, r"loc must have shape \(\.\.\., D\)"),
    (lambda: MultivariateNormal(_MLOC, _L).log_prob(_MX[0]), ValueError, r"x and loc must have the same shape"),
    (lambda: MultivariateNormal(_MLOC, _L).log_prob_grads(_MX.astype(np.float32)), TypeError, r"x and loc"),
    (lambda: MultivariateNormal(_MLOC, _L).sample(None), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda: Bernoulli(np.arange(4)), TypeError, r"logits must have dtype float32 or float64"),
    (lambda: Bernoulli(_with(_LOGITS, (0, 0, 0), np.inf)), ValueError, r"logits contains 1 NaN or infinite"),
    (lambda: Bernoulli(_LOGITS).log_prob(_with(_XB, (0, 2, 1), 0.5)), ValueError,
     r"x must contain only 0 and 1 .* got 1 other value\(s\), e.g. 0.5"),
    (lambda: Bernoulli(_LOGITS).log_prob_grads(_with(_XB, (0, 2, 1), 2.0)), ValueError, r"x must contain only 0 and 1"),
    (lambda: Bernoulli(_LOGITS).log_prob(_XB[..., :1]), ValueError, r"x and logits must have the same shape"),
    (lambda: Bernoulli(_LOGITS).log_prob(_XB.astype(np.float32)), TypeError, r"x and logits must have the same dtype"),
    (lambda: Bernoulli(_LOGITS).log_prob(_XB.astype(np.int64)), TypeError, r"x must have dtype float32 or float64"),
    (lambda: Bernoulli(_LOGITS).sample(np.random.RandomState(0)), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda: bernoulli_log_prob(_XB[0], _LOGITS), ValueError, r"x and logits must have the same shape"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_bad_input_is_refused_with_a_message_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
