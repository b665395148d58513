"""Accuracy at the extremes, in float32 and float64, against mpmath (50 digits) or closed forms.

Each test names the regime where a textbook formula loses its digits and checks the library's
form keeps them, to a stated number of ulps (eps = machine epsilon of the dtype):

- log-mean-exp of all -inf log-weights is -inf (every importance weight 0), not NaN;
- e^v - 1 - v and the Gaussian KL of a unit near the prior: relative error a few eps, never < 0
  (the form (s^2 + mu^2 - 1)/2 - log s cancels to noise and goes negative in float32);
- the Bernoulli log-probability of the likely outcome at large |logits| (-softplus(-|t|) ~ -e^-|t|,
  which x t - softplus(t) rounds to 0 from t = 15 in float32 and t = 34 in float64);
- the Normal density at a subnormal or smaller sigma (log sigma = -89 in float32), where
  exp(-log sigma) overflows;
- gradients that overflow in a backward pass raise FloatingPointError (divergence), the error
  the trainer reports, and evaluation runs in bounded memory whatever the sample count.
"""
import mpmath
import numpy as np
import pytest

from scratchvae import evaluate
from scratchvae.distributions import Bernoulli, MultivariateNormal, Normal, bernoulli_log_prob
from scratchvae.generate import reconstruct
from scratchvae.likelihoods import BernoulliLikelihood
from scratchvae.stable import expm1mx, logmeanexp, logsumexp
from scratchvae.vae import VAE

mpmath.mp.dps = 50
DTYPES = [np.float32, np.float64]


def eps(dtype):
    return float(np.finfo(dtype).eps)


def mp(x):
    return mpmath.mpf(float(x))


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want) / np.abs(want)


# ------------------------------------------------------------------------- log-sum-exp
@pytest.mark.parametrize("dtype", DTYPES)
def test_logmeanexp_of_zero_weights_is_minus_inf_not_nan(dtype):
    a = np.array([[-np.inf] * 4, [-np.inf, 0.0, -np.inf, np.log(3.0)], [np.inf, 0.0, 1.0, 2.0]], dtype)
    with np.errstate(all="raise"):                                 # no warning either
        lme, lse = logmeanexp(a), logsumexp(a)
    assert lme[0] == -np.inf and lse[0] == -np.inf
    np.testing.assert_allclose(lme[1], np.log(4.0 / 4), atol=4 * eps(dtype))      # (1 + 3) / 4
    np.testing.assert_allclose(lse[1], np.log(4.0), rtol=4 * eps(dtype))
    assert lme[2] == np.inf and lse[2] == np.inf
    assert lme.dtype == lse.dtype == dtype


def test_iwae_bound_and_log_likelihood_are_minus_inf_when_every_weight_is_zero():
    """A Gaussian decoder with sigma = 1e-300 gives log p(x|z) = -inf for every sample (x is never
    exactly the decoded mean): p(x) under the model is 0 to float64 precision, log p(x) = -inf."""
    vae = VAE(6, 2, rng=np.random.default_rng(0), hidden=(5,), likelihood="gaussian", obs_scale=1e-300,
              dtype=np.float64)
    x = np.random.default_rng(1).random((3, 6))
    eps_ = np.random.default_rng(2).standard_normal((3, 4, 2))
    with np.errstate(over="ignore"):
        bound, cache, _ = vae.forward(x, eps_, "iwae")
        ll = evaluate.log_likelihood(vae, x, rng=np.random.default_rng(3), K=10, k_chunk=3, log=None)
    assert np.all(cache["log_weights"] == -np.inf)
    assert np.all(bound == -np.inf) and np.all(ll == -np.inf)
    assert np.all(evaluate.bits_per_dim(-ll, 6) == np.inf)


def test_logmeanexp_against_mpmath_over_a_wide_range():
    a = np.random.default_rng(0).uniform(-800, 700, (20, 7))
    want = [float(mpmath.log(sum(mpmath.exp(mp(v)) for v in row) / 7)) for row in a]
    assert rel_err(logmeanexp(a), want).max() < 4 * eps(np.float64)


# ------------------------------------------------------------------- KL near the prior
@pytest.mark.parametrize("dtype", DTYPES)
def test_expm1mx_has_full_relative_accuracy(dtype):
    v = np.concatenate([-np.logspace(-9, 2, 200), np.logspace(-9, 1.9, 200), [0.5, -0.5, 0.4999]]).astype(dtype)
    want = np.array([float(mpmath.expm1(mp(x)) - mp(x)) for x in v])
    got = expm1mx(v)
    assert got.dtype == dtype and np.all(got >= 0)
    assert rel_err(got, want).max() < 3 * eps(dtype), v[rel_err(got, want).argmax()]
    assert expm1mx(np.zeros(3, dtype)).tolist() == [0.0, 0.0, 0.0]


def _kl_normal_mp(loc, log_scale):
    s2 = mpmath.exp(2 * mp(log_scale))
    return (s2 + mp(loc) ** 2 - 1) / 2 - mp(log_scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_kl_near_the_prior_is_accurate_and_never_negative(dtype):
    """A collapsed unit: log_scale and loc of 1e-8 .. 1e-1 (the old form gave -1e-8 in float32)."""
    rng = np.random.default_rng(1)
    mag = np.logspace(-8, -1, 300)
    log_scale = (mag * rng.choice([-1, 1], mag.size)).astype(dtype)
    loc = (rng.uniform(0, 1, mag.size) * mag * rng.choice([-1, 1, 0], mag.size)).astype(dtype)
    kl = Normal(loc, log_scale).kl_to_standard_normal()
    want = np.array([float(_kl_normal_mp(m, ls)) for m, ls in zip(loc, log_scale)])
    assert kl.dtype == dtype and np.all(kl >= 0)
    assert rel_err(kl, want).max() < 4 * eps(dtype)
    g = Normal(loc, log_scale).kl_to_standard_normal_grads()["log_scale"]       # s^2 - 1
    want_g = np.array([float(mpmath.expm1(2 * mp(ls))) for ls in log_scale])
    assert rel_err(g, want_g).max() < 2 * eps(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_covariance_kl_near_the_prior(dtype):
    rng = np.random.default_rng(2)
    D, n = 3, 50
    mag = np.logspace(-7, -1, n)[:, None, None]
    L = np.eye(D) + mag * np.tril(rng.standard_normal((n, D, D)))
    loc = mag[:, :, 0] * rng.standard_normal((n, D))
    L, loc = L.astype(dtype), loc.astype(dtype)
    assert np.all(np.diagonal(L, axis1=1, axis2=2) > 0)
    kl = MultivariateNormal(loc, L).kl_to_standard_normal()
    want = []
    for Li, mi in zip(L, loc):
        Lm = mpmath.matrix([[mp(v) for v in row] for row in Li])
        tr = sum(Lm[i, j] ** 2 for i in range(D) for j in range(D))
        want.append(float((tr + sum(mp(v) ** 2 for v in mi) - D) / 2 - sum(mpmath.log(Lm[i, i]) for i in range(D))))
    assert np.all(kl >= 0) and rel_err(kl, want).max() < 8 * eps(dtype)


def _collapsed_vae(posterior, dtype, value=1e-4):
    """A VAE whose encoder ignores x and outputs loc = log_scale (or log_diag) = value: every latent
    unit is (almost) the prior, the case of a collapsed unit after training."""
    vae = VAE(6, 2, rng=np.random.default_rng(0), hidden=(5,), posterior=posterior, dtype=dtype)
    vae.params["enc.1.W"][...] = 0
    vae.params["enc.1.b"][...] = dtype(value)
    return vae


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_per_dimension_of_collapsed_units(dtype):
    vae = _collapsed_vae("diagonal", dtype)
    x = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(dtype)
    v = dtype(1e-4)
    want = float(_kl_normal_mp(v, v))                              # ~1e-8
    got = evaluate.kl_per_dimension(vae, x)
    assert np.all(got >= 0) and rel_err(got, [want] * 2).max() < 8 * eps(dtype), (got, want)


def test_kl_per_dimension_of_collapsed_units_full_covariance():
    """The marginal KL (var - 1 - log var + mu^2)/2 is computed as (expm1mx(log var) + mu^2)/2:
    the direct form cancels and went negative in float32 near the prior."""
    vae = _collapsed_vae("full", np.float32)
    x = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(np.float32)
    got = evaluate.kl_per_dimension(vae, x)
    v = np.float32(1e-4)
    assert np.all(got >= 0) and rel_err(got, [float(_kl_normal_mp(v, v))] * 2).max() < 1e-4, got


# ----------------------------------------------------------------- Bernoulli at large |t|
def _log_p_mp(x, t):
    """log p(x) = x t - softplus(t) = -(x softplus(-t) + (1 - x) softplus(t)), 50 digits (the
    second form: the first would need as many digits as t has beyond the answer's)."""
    x, t = mp(x), mp(t)
    return -(x * mpmath.log1p(mpmath.exp(-t)) + (1 - x) * mpmath.log1p(mpmath.exp(t)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_log_prob_of_the_likely_outcome_keeps_its_digits(dtype):
    """Up to |t| = 80 (float32) or 700 (float64), where e^-|t| is still a normal number."""
    big = [17, 20, 30, 37, 40, 60, 80] + ([100, 300, 700] if dtype == np.float64 else [])
    t = np.array(big + [-v for v in big] + [0.5, -3], dtype)
    x = (t > 0).astype(dtype)                                     # the likely outcome
    want = np.array([float(_log_p_mp(a, b)) for a, b in zip(x, t)])
    for got in (Bernoulli(t).log_prob(x), bernoulli_log_prob(x, t)):
        assert got.dtype == dtype and np.all(got < 0)
        assert rel_err(got, want).max() < 4 * eps(dtype)
    unlikely = bernoulli_log_prob(1 - x, t)                       # -softplus(|t|): no cancellation either
    want_u = np.array([float(_log_p_mp(a, b)) for a, b in zip(1 - x, t)])
    assert rel_err(unlikely, want_u).max() < 4 * eps(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_likelihood_sum_over_pixels_keeps_its_digits(dtype):
    """A confident decoder (|t| ~ 20 on every pixel) gets log p(x|z) ~ -1e-6 nats, not 0 or noise."""
    rng = np.random.default_rng(3)
    x = (rng.random((3, 50)) < 0.5).astype(dtype)
    t = ((2 * x - 1) * rng.uniform(15, 25, (3, 50)))[:, None, :].astype(dtype)   # (B, 1, D)
    log_px, _ = BernoulliLikelihood().log_prob(x, t)
    want = [float(sum(_log_p_mp(a, b) for a, b in zip(xr, tr[0]))) for xr, tr in zip(x, t)]
    assert rel_err(log_px[:, 0], want).max() < 20 * eps(dtype)


def test_bernoulli_grey_levels_match_mpmath():
    x = np.array([0.25, 0.5, 0.9, 0.0, 1.0])
    t = np.array([30.0, -30.0, 3.0, 45.0, -45.0])
    want = np.array([float(_log_p_mp(a, b)) for a, b in zip(x, t)])
    assert rel_err(bernoulli_log_prob(x, t), want).max() < 4 * eps(np.float64)


# -------------------------------------------------------------- Normal at a tiny sigma
@pytest.mark.parametrize("dtype, log_scale", [(np.float32, -89.0), (np.float32, -120.0), (np.float32, -300.0),
                                              (np.float64, -710.0), (np.float64, -800.0)])
def test_normal_log_prob_where_one_over_sigma_overflows(dtype, log_scale):
    """exp(-log_scale) is inf here; r = 0 must give -log_scale - log(2 pi)/2, small r the closed
    form, and r / s beyond the dtype's range -inf, never NaN. The tolerance is the conditioning of
    r / s in log_scale (relative change |log_scale| eps for a change of one ulp in log_scale),
    what sign(r) exp(log|r| - log_scale) achieves."""
    tiny = float(np.finfo(dtype).smallest_subnormal)
    r = np.array([0.0, tiny, -tiny, 1e-39 if dtype == np.float32 else 1e-310], dtype)
    q = Normal(np.zeros(4, dtype), np.full(4, log_scale, dtype))
    with np.errstate(over="raise", invalid="raise"):
        got = q.log_prob(r)
    s = mpmath.exp(mp(log_scale))
    want = [float(-(mp(v) / s) ** 2 / 2 - mp(log_scale) - mpmath.log(2 * mpmath.pi) / 2) for v in r]
    with np.errstate(over="ignore"):
        finite = np.isfinite(np.array(want).astype(dtype))
    assert np.all(np.isfinite(got) == finite) and np.all(got[~finite] == -np.inf), (got, want)
    assert rel_err(got[finite], np.array(want)[finite]).max() < 4 * eps(dtype) * (1 + 2 * abs(log_scale))
    assert q.log_prob_grads(r)["loc"][0] == 0                      # r = 0: d/dloc is 0, not 0 * inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_log_prob_unchanged_in_the_ordinary_range(dtype):
    """The overflow path is not taken when exp(-log_scale) is finite: bit-identical to r / s."""
    rng = np.random.default_rng(4)
    loc, ls, x = (rng.standard_normal(20).astype(dtype), rng.uniform(-5, 5, 20).astype(dtype),
                  rng.standard_normal(20).astype(dtype))
    z = (x - loc) * np.exp(-ls)
    want = -dtype(0.5) * z * z - ls - dtype(0.5 * np.log(2 * np.pi))
    assert np.array_equal(Normal(loc, ls).log_prob(x), want)


# ------------------------------------------------- divergence is reported as divergence
def test_overflowing_full_covariance_gradient_is_a_floating_point_error():
    """log L_ii = -100 in float32: L_ii is subnormal (> 0), the objective is finite, but
    d/dL_ii of log L_ii = 1/L_ii overflows in the backward pass."""
    vae = VAE(6, 3, rng=np.random.default_rng(1), hidden=(5,), posterior="full")
    vae.params["enc.1.b"][3:6] = -100.0
    x = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(np.float32)
    eps_ = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    for estimator in ("analytic", "mc", "iwae"):
        with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="diverged"):
            vae.loss_and_grads(x, eps_, estimator)


def test_reconstruct_with_an_overflowing_posterior_sample_says_diverged():
    vae = VAE(6, 2, rng=np.random.default_rng(1), hidden=(5,))
    vae.params["enc.1.b"][2:] = 100.0                              # log sigma = 100: exp overflows
    x = (np.random.default_rng(0).random((4, 6)) < 0.5).astype(np.float32)
    with pytest.raises(FloatingPointError, match="diverged"):
        reconstruct(vae, x, rng=np.random.default_rng(0))


# --------------------------------------------------------- evaluation in bounded memory
class _Spy:
    """Wraps a VAE and records the number of decoder rows of every forward pass."""

    def __init__(self, vae):
        self.vae, self.rows = vae, []

    def __getattr__(self, name):
        return getattr(self.vae, name)

    def forward(self, x, eps, *args, **kwargs):
        self.rows.append(eps.shape[0] * eps.shape[1])
        return self.vae.forward(x, eps, *args, **kwargs)


@pytest.mark.parametrize("estimator", ["analytic", "mc", "iwae"])
def test_elbo_chunks_its_samples_and_combines_them_exactly(estimator):
    """1,000 samples per example in passes of at most 64 decoder rows give the one-pass result
    (float64: to 1e-12), with the same noise draws."""
    vae = VAE(6, 2, rng=np.random.default_rng(0), hidden=(5,), dtype=np.float64)
    x = (np.random.default_rng(0).random((3, 6)) < 0.5).astype(np.float64)
    spy = _Spy(vae)
    chunked = evaluate.elbo(spy, x, rng=np.random.default_rng(5), n_samples=1000, estimator=estimator,
                            batch_size=64)
    whole = evaluate.elbo(vae, x, rng=np.random.default_rng(5), n_samples=1000, estimator=estimator,
                          batch_size=3000)
    assert max(spy.rows) <= 64 and sum(spy.rows) == 3000
    for k in ("elbo", "rec", "kl"):
        np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-12, atol=1e-12)
