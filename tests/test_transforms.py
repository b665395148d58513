"""Reparameterizations: backward vs finite differences, log|det| vs a finite-difference Jacobian,
log q by the Jacobian route vs the direct density (the end-to-end check that catches a log sigma /
log sigma^2 mix-up), dtype preservation, purity of backward and input validation."""
import numpy as np
import pytest
from scipy import stats

from scratchvae.distributions import MultivariateNormal, Normal
from scratchvae.gradcheck import check_gradients
from scratchvae.transforms import (diagonal_affine, diagonal_affine_backward, log_q_via_jacobian,
                                   log_q_via_jacobian_backward, tril_affine, tril_affine_backward,
                                   tril_from_params, tril_from_params_backward)

TOL_GRAD = 1e-7
TOL_REF = 1e-10
BATCH, D = (2, 3), 4
ROWS, COLS = np.tril_indices(D)          # free entries of L (lower triangle incl. diagonal)
M = D * (D - 1) // 2


def _away_from_zero(rng, shape, lo, hi):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _diag_params(rng):
    eps = _away_from_zero(rng, BATCH + (D,), 0.1, 2.0)
    loc = _away_from_zero(rng, BATCH + (D,), 0.2, 1.5)
    log_scale = _away_from_zero(rng, BATCH + (D,), 0.15, 0.8)
    return eps, loc, log_scale


def _tril_params(rng, batch=BATCH):
    """eps, loc (..., D) and the unconstrained log_diag (..., D), offdiag (..., D(D-1)/2)."""
    eps = _away_from_zero(rng, batch + (D,), 0.1, 2.0)
    loc = _away_from_zero(rng, batch + (D,), 0.2, 1.5)
    log_diag = _away_from_zero(rng, batch + (D,), 0.2, 0.7)
    offdiag = _away_from_zero(rng, batch + (M,), 0.2, 0.9)
    return eps, loc, log_diag, offdiag


def _from_entries(entries):
    L = np.zeros(entries.shape[:-1] + (D, D))
    L[..., ROWS, COLS] = entries
    return L


def _pack(z, log_abs_det):
    """One output vector holding z and log|det|, so one check covers both upstream gradients."""
    return np.concatenate([z.reshape(-1), log_abs_det.reshape(-1)])


def _unpack(dout, z_shape):
    n = int(np.prod(z_shape))
    return dout[:n].reshape(z_shape), dout[n:].reshape(z_shape[:-1])


# --------------------------------------------------------------------------- diagonal_affine
def _diag_check(rng, backward_fn):
    eps, loc, log_scale = _diag_params(rng)
    _, _, cache = diagonal_affine(eps, loc, log_scale)

    def backward(dout):
        return backward_fn(*_unpack(dout, eps.shape), cache)

    return check_gradients(lambda: _pack(*diagonal_affine(eps, loc, log_scale)[:2]), backward,
                           {"eps": eps, "loc": loc, "log_scale": log_scale}, rng=rng)


def test_diagonal_affine_gradients():
    report = _diag_check(np.random.default_rng(0), diagonal_affine_backward)
    assert report.ok(TOL_GRAD), str(report)


def test_diagonal_affine_negative_control_missing_log_det_term_fails():
    def wrong(dz, dlad, cache):
        return diagonal_affine_backward(dz, np.zeros_like(dlad), cache)   # forgets d log|det| / d log_scale
    report = _diag_check(np.random.default_rng(0), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["log_scale"] > 0.1, str(report)


# --------------------------------------------------------------------------- tril_affine
def _tril_check(rng, backward_fn):
    eps, loc, log_diag, offdiag = _tril_params(rng)
    L0, _ = tril_from_params(log_diag, offdiag)
    tril = L0[..., ROWS, COLS].copy()
    _, _, cache = tril_affine(eps, loc, _from_entries(tril))

    def backward(dout):
        g = backward_fn(*_unpack(dout, eps.shape), cache)
        assert np.all(np.triu(g["scale_tril"], 1) == 0), "gradient above the diagonal must be 0"
        return {"eps": g["eps"], "loc": g["loc"], "tril": g["scale_tril"][..., ROWS, COLS]}

    return check_gradients(lambda: _pack(*tril_affine(eps, loc, _from_entries(tril))[:2]), backward,
                           {"eps": eps, "loc": loc, "tril": tril}, rng=rng)


def test_tril_affine_gradients():
    report = _tril_check(np.random.default_rng(1), tril_affine_backward)
    assert report.ok(TOL_GRAD), str(report)


def test_tril_affine_negative_control_untransposed_L_fails():
    def wrong(dz, dlad, cache):
        g = tril_affine_backward(dz, dlad, cache)
        L = cache[1]
        return {**g, "eps": np.einsum("...ij,...j->...i", L, dz)}          # L dz instead of L^T dz
    report = _tril_check(np.random.default_rng(1), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["eps"] > 0.1, str(report)


# --------------------------------------------------------------------------- tril_from_params
def _from_params_check(rng, backward_fn):
    _, _, log_diag, offdiag = _tril_params(rng)
    _, cache = tril_from_params(log_diag, offdiag)
    return check_gradients(lambda: tril_from_params(log_diag, offdiag)[0],
                           lambda dL: backward_fn(dL, cache),             # dL is dense: upper part ignored
                           {"log_diag": log_diag, "offdiag": offdiag}, rng=rng)


def test_tril_from_params_layout_and_gradients():
    rng = np.random.default_rng(2)
    log_diag = np.array([0.1, -0.2, 0.3])
    L, _ = tril_from_params(log_diag, np.array([1.0, 2.0, 3.0]))
    expected = np.array([[np.exp(0.1), 0, 0], [1.0, np.exp(-0.2), 0], [2.0, 3.0, np.exp(0.3)]])
    np.testing.assert_array_equal(L, expected)                 # row-major: L_10, L_20, L_21
    report = _from_params_check(rng, tril_from_params_backward)
    assert report.ok(TOL_GRAD), str(report)


def test_tril_from_params_negative_control_missing_chain_factor_fails():
    def wrong(dL, cache):
        g = tril_from_params_backward(dL, cache)
        return {**g, "log_diag": g["log_diag"] / cache[0]}               # drops the exp(log_diag) factor
    report = _from_params_check(np.random.default_rng(2), wrong)
    assert not report.ok(TOL_GRAD) and report.max_rel_error["log_diag"] > 0.1, str(report)


# --------------------------------------------------------------------------- log q by the Jacobian
def test_log_q_via_jacobian_gradients():
    rng = np.random.default_rng(3)
    eps = _away_from_zero(rng, BATCH + (D,), 0.1, 2.0)
    lad = _away_from_zero(rng, BATCH, 0.2, 2.0)
    report = check_gradients(lambda: log_q_via_jacobian(eps, lad),
                             lambda d: log_q_via_jacobian_backward(d, eps), {"eps": eps, "log_abs_det": lad},
                             rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_full_covariance_chain_gradients():
    """Encoder outputs -> L -> (z, log q): the composition a VAE with a full-covariance posterior runs."""
    rng = np.random.default_rng(4)
    eps, loc, log_diag, offdiag = _tril_params(rng)

    def forward():
        L, _ = tril_from_params(log_diag, offdiag)
        z, lad, _ = tril_affine(eps, loc, L)
        return _pack(z, log_q_via_jacobian(eps, lad))

    def backward(dout):
        dz, dlog_q = _unpack(dout, eps.shape)
        L, c1 = tril_from_params(log_diag, offdiag)
        z, lad, c2 = tril_affine(eps, loc, L)
        g_q = log_q_via_jacobian_backward(dlog_q, eps)
        g_aff = tril_affine_backward(dz, g_q["log_abs_det"], c2)
        return {"loc": g_aff["loc"], **tril_from_params_backward(g_aff["scale_tril"], c1)}

    report = check_gradients(forward, backward, {"loc": loc, "log_diag": log_diag, "offdiag": offdiag}, rng=rng)
    assert report.ok(TOL_GRAD), str(report)


def test_log_q_via_jacobian_equals_direct_density_for_both_families():
    rng = np.random.default_rng(5)
    eps, loc, log_scale = _diag_params(rng)
    z, lad, _ = diagonal_affine(eps, loc, log_scale)
    log_q = log_q_via_jacobian(eps, lad)
    np.testing.assert_allclose(log_q, Normal(loc, log_scale).log_prob(z).sum(-1), rtol=0, atol=TOL_REF)
    np.testing.assert_allclose(log_q, stats.norm.logpdf(z, loc, np.exp(log_scale)).sum(-1), rtol=0, atol=TOL_REF)
    np.testing.assert_array_equal(z, Normal(loc, log_scale).rsample(eps))

    eps, loc, log_diag, offdiag = _tril_params(rng)
    L, _ = tril_from_params(log_diag, offdiag)
    z, lad, _ = tril_affine(eps, loc, L)
    log_q = log_q_via_jacobian(eps, lad)
    np.testing.assert_allclose(log_q, MultivariateNormal(loc, L).log_prob(z), rtol=0, atol=TOL_REF)
    for idx in np.ndindex(*BATCH):
        ref = stats.multivariate_normal(loc[idx], L[idx] @ L[idx].T).logpdf(z[idx])
        assert abs(log_q[idx] - ref) < TOL_REF, (idx, log_q[idx], ref)
    np.testing.assert_allclose(z, MultivariateNormal(loc, L).rsample(eps), rtol=1e-15, atol=1e-15)


def _fd_jacobian(g, eps, h=1e-6):
    """dz/deps (..., D, D) by central differences; z of each batch element depends on its own eps."""
    J = np.empty(eps.shape + (eps.shape[-1],))
    for j in range(eps.shape[-1]):
        e_plus, e_minus = eps.copy(), eps.copy()
        e_plus[..., j] += h
        e_minus[..., j] -= h
        J[..., :, j] = (g(e_plus) - g(e_minus)) / (2 * h)
    return J


def test_log_abs_det_equals_slogdet_of_finite_difference_jacobian():
    rng = np.random.default_rng(6)
    eps, loc, log_scale = _diag_params(rng)
    _, lad, _ = diagonal_affine(eps, loc, log_scale)
    sign, logdet = np.linalg.slogdet(_fd_jacobian(lambda e: diagonal_affine(e, loc, log_scale)[0], eps))
    assert np.all(sign != 0)
    np.testing.assert_allclose(lad, logdet, rtol=0, atol=1e-8)

    eps, loc, log_diag, offdiag = _tril_params(rng)
    L, _ = tril_from_params(log_diag, offdiag)
    _, lad, _ = tril_affine(eps, loc, L)
    sign, logdet = np.linalg.slogdet(_fd_jacobian(lambda e: tril_affine(e, loc, L)[0], eps))
    assert np.all(sign != 0)
    np.testing.assert_allclose(lad, logdet, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- purity, dtype
def test_backward_is_pure_and_caches_are_independent():
    rng = np.random.default_rng(7)
    eps1, loc, log_diag, offdiag = _tril_params(rng)
    eps2 = eps1[..., ::-1].copy()
    L, _ = tril_from_params(log_diag, offdiag)
    saved = [a.copy() for a in (eps1, eps2, loc, L)]
    _, _, c1 = tril_affine(eps1, loc, L)
    _, _, c2 = tril_affine(eps2, loc, L)                        # a second forward before any backward
    dz, dlad = rng.standard_normal(eps1.shape), rng.standard_normal(BATCH)
    g1 = tril_affine_backward(dz, dlad, c1)
    g2 = tril_affine_backward(dz, dlad, c2)
    np.testing.assert_allclose(g1["scale_tril"] - g2["scale_tril"],
                               np.tril(dz[..., :, None] * (eps1 - eps2)[..., None, :]), atol=1e-14)
    g1["loc"] += 1.0                                            # a caller writing into a gradient...
    for a, b in zip((eps1, eps2, loc, L), saved):               # ...touches neither inputs nor dz
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(g2["loc"], dz)
    # dlog_abs_det=None means zeros
    np.testing.assert_array_equal(tril_affine_backward(dz, None, c1)["eps"], g1["eps"])
    eps, loc, log_scale = _diag_params(rng)
    _, _, c = diagonal_affine(eps, loc, log_scale)
    np.testing.assert_array_equal(diagonal_affine_backward(dz, None, c)["log_scale"],
                                  diagonal_affine_backward(dz, np.zeros(BATCH), c)["log_scale"])


def test_float32_in_float32_out_everywhere():
    rng = np.random.default_rng(8)
    eps, loc, log_scale = (a.astype(np.float32) for a in _diag_params(rng))
    dz, dlad = rng.standard_normal(eps.shape, dtype=np.float32), rng.standard_normal(BATCH, dtype=np.float32)
    outs = {}
    z, lad, c = diagonal_affine(eps, loc, log_scale)
    outs.update(diag_z=z, diag_lad=lad, log_q=log_q_via_jacobian(eps, lad))
    outs.update({f"diag_d{k}": v for k, v in diagonal_affine_backward(dz, dlad, c).items()})
    outs.update({f"log_q_d{k}": v for k, v in log_q_via_jacobian_backward(dlad, eps).items()})
    eps, loc, log_diag, offdiag = (a.astype(np.float32) for a in _tril_params(rng))
    L, c1 = tril_from_params(log_diag, offdiag)
    z, lad, c2 = tril_affine(eps, loc, L)
    g = tril_affine_backward(dz, dlad, c2)
    outs.update(L=L, tril_z=z, tril_lad=lad, **{f"tril_d{k}": v for k, v in g.items()})
    outs.update({f"params_d{k}": v for k, v in tril_from_params_backward(g["scale_tril"], c1).items()})
    bad = {k: v.dtype for k, v in outs.items() if v.dtype != np.float32}
    assert not bad, f"float32 inputs gave other dtypes: {bad}"


# --------------------------------------------------------------------------- errors at the boundary
_r = np.random.default_rng(9)
_EPS, _LOC, _LS = _diag_params(_r)
_TEPS, _TLOC, _LD, _OFF = _tril_params(_r)
_L, _LC = tril_from_params(_LD, _OFF)
_DC = diagonal_affine(_EPS, _LOC, _LS)[2]
_TC = tril_affine(_TEPS, _TLOC, _L)[2]


def _with(a, idx, value):
    a = a.copy()
    a[idx] = value
    return a


BAD_INPUTS = [
    (lambda: diagonal_affine(_EPS[..., :3], _LOC, _LS), ValueError, r"loc and eps must have the same shape"),
    (lambda: diagonal_affine(_EPS, _LOC, _LS.astype(np.float32)), TypeError, r"log_scale and eps must have the same dtype"),
    (lambda: diagonal_affine(_EPS, _LOC, _with(_LS, (0, 0, 0), np.nan)), ValueError, r"log_scale contains 1 NaN"),
    (lambda: diagonal_affine(np.array(1.0), np.array(1.0), np.array(1.0)), ValueError, r"eps must have shape \(\.\.\., D\)"),
    (lambda: diagonal_affine(_EPS.astype(np.int64), _LOC, _LS), TypeError, r"eps must have dtype float32 or float64"),
    (lambda: diagonal_affine_backward(_EPS[0], None, _DC), ValueError, r"dz must have shape \(2, 3, 4\)"),
    (lambda: diagonal_affine_backward(_EPS, np.ones(3), _DC), ValueError, r"dlog_abs_det must have shape \(2, 3\)"),
    (lambda: diagonal_affine_backward(_EPS.astype(np.float32), None, _DC), TypeError, r"dz must have dtype float64"),
    (lambda: tril_affine(_TEPS, _TLOC, _with(_L, (0, 0, 0, 3), 0.2)), ValueError, r"scale_tril must be lower triangular"),
    (lambda: tril_affine(_TEPS, _TLOC, _with(_L, (1, 2, 1, 1), -1.0)), ValueError,
     r"scale_tril must have a strictly positive diagonal"),
    (lambda: tril_affine(_TEPS, _TLOC, _with(_L, (1, 2, 1, 1), 0.0)), ValueError,
     r"scale_tril must have a strictly positive diagonal"),
    (lambda: tril_affine(_TEPS, _TLOC, _L[0]), ValueError, r"scale_tril must have shape \(2, 3, 4, 4\)"),
    (lambda: tril_affine(_TEPS, _TLOC[0], _L), ValueError, r"loc and eps must have the same shape"),
    (lambda: tril_affine(_TEPS, _TLOC, _with(_L, (0, 0, 2, 0), np.inf)), ValueError, r"scale_tril contains 1 NaN or inf"),
    (lambda: tril_affine_backward(_TEPS, np.ones((2, 3, 1)), _TC), ValueError, r"dlog_abs_det must have shape \(2, 3\)"),
    (lambda: tril_from_params(_LD, _OFF[..., :5]), ValueError, r"offdiag must have shape \(2, 3, 6\)"),
    (lambda: tril_from_params(_LD, _OFF.astype(np.float32)), TypeError, r"offdiag and log_diag must have the same dtype"),
    (lambda: tril_from_params(np.array(0.5), _OFF), ValueError, r"log_diag must have shape \(\.\.\., D\)"),
    (lambda: tril_from_params(_with(_LD, (0, 0, 0), np.nan), _OFF), ValueError, r"log_diag contains 1 NaN"),
    (lambda: tril_from_params_backward(_L[..., :3], _LC), ValueError, r"dL must have shape \(2, 3, 4, 4\)"),
    (lambda: log_q_via_jacobian(_EPS, np.zeros((2, 3, 4))), ValueError, r"log_abs_det must have shape \(2, 3\)"),
    (lambda: log_q_via_jacobian(_EPS, np.zeros((2, 3), np.float32)), TypeError, r"log_abs_det must have dtype float64"),
    (lambda: log_q_via_jacobian([0.0, 1.0], np.zeros(())), TypeError, r"eps must be a numpy.ndarray"),
    (lambda: log_q_via_jacobian_backward(np.ones(3), _EPS), ValueError, r"dlog_q must have shape \(2, 3\)"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_bad_input_is_refused_with_a_message_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
