"""Mean-field Ising denoising: the vectorized engine against a loop, exact enumeration and the book.

Oracles: ``ising_reference.loop_sweep`` (per-pixel Python loop), ``ising_exact`` (all 2^(H W)
states of a grid up to 4 x 4), a hand-worked 1 x 2 example, finite differences of the ELBO.
All fixtures are float64 with fixed seeds; tolerances are stated in the assertions.
"""
import itertools
import zlib

import numpy as np
import pytest

from scratchvae import ising
from scratchvae.ising import exact as ising_exact
from scratchvae.ising.reference import loop_sweep
from scratchvae.viz.ising import letter_image

LN2 = np.log(2.0)


def random_model(rng, shape, coupling, neighbours=4, kind="random"):
    """A posterior with non-trivial evidence: random log-likelihoods, Gaussian or flip noise."""
    if kind == "gaussian":
        clean = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        return ising.gaussian_model(ising.add_gaussian_noise(clean, 1.3, rng), 1.3,
                                    coupling=coupling, neighbours=neighbours)
    if kind == "flip":
        clean = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        return ising.flip_model(ising.flip_pixels(clean, 0.2, rng), 0.2, coupling=coupling,
                                neighbours=neighbours)
    return ising.model_from_log_lik(rng.normal(size=shape), rng.normal(size=shape),
                                    coupling=coupling, neighbours=neighbours)


# ------------------------------------------------------------------ hand-worked golden example
def golden_model():
    # 1 x 2 grid, J = ln 2 (so e^J = 2), likelihoods L1(+1)=.8 L1(-1)=.2, L2(+1)=.4 L2(-1)=.6
    return ising.model_from_log_lik(np.log([[0.8, 0.4]]), np.log([[0.2, 0.6]]), coupling=LN2)


def test_golden_log_partition_marginals_and_elbo():
    m = golden_model()
    # p~(z) = e^{J z1 z2} L1(z1) L2(z2):  ++ 2*.8*.4=.64  +- .5*.8*.6=.24  -+ .5*.2*.4=.04  -- 2*.2*.6=.24
    # Z = 1.16;  E[z1] = (.64+.24-.04-.24)/1.16 = .60/1.16;  E[z2] = (.64-.24+.04-.24)/1.16 = .20/1.16
    assert ising_exact.log_partition(m) == pytest.approx(np.log(1.16), abs=1e-14)
    np.testing.assert_allclose(ising_exact.marginal_means(m), [[0.60 / 1.16, 0.20 / 1.16]], atol=1e-14)
    # mu = (.6, -.2): q_i(+1) = (.8, .4) equals the normalized likelihood, so per pixel
    # E_q[l_i] + H(q_i) = sum_s q log L - sum_s q log q = 0; only the pair term is left:
    # ELBO = J mu1 mu2 = ln2 * .6 * (-.2) = -.12 ln 2 = -0.0831776616...  <= log Z = 0.1484...
    mu = np.array([[0.6, -0.2]])
    assert ising.elbo(m, mu) == pytest.approx(-0.12 * LN2, abs=1e-14)
    assert ising_exact.brute_force_elbo(m, mu) == pytest.approx(-0.12 * LN2, abs=1e-14)


def test_golden_updates():
    m, mu = golden_model(), np.array([[0.6, -0.2]])
    # h1 = .5 ln(.8/.2) = ln 2,  h2 = .5 ln(.4/.6);  tanh(a) = (e^{2a} - 1) / (e^{2a} + 1)
    # parallel: a1 = J mu2 + h1 = .8 ln 2 -> e^{2 a1} = 4^.8;  a2 = J mu1 + h2 -> e^{2 a2} = 2^1.2 * 2/3
    t = lambda e2a: (e2a - 1) / (e2a + 1)
    par = ising.mean_field_sweep(m, mu, schedule="parallel", damping=1.0)
    np.testing.assert_allclose(par, [[t(4 ** 0.8), t(2 ** 1.2 * 2 / 3)]], atol=1e-15)
    # checkerboard: pixel (0,0) (colour 0) first, then (0,1) reads the new mu1 = t(4^.8)
    cb = ising.mean_field_sweep(m, mu, schedule="checkerboard", damping=1.0)
    np.testing.assert_allclose(cb, [[t(4 ** 0.8), t(2 ** (2 * t(4 ** 0.8)) * 2 / 3)]], atol=1e-15)
    # damping 0.5 on the parallel step: mu <- .5 mu + .5 tanh(a)
    half = ising.mean_field_sweep(m, mu, schedule="parallel", damping=0.5)
    np.testing.assert_allclose(half, 0.5 * mu + 0.5 * par, atol=1e-15)


# ------------------------------------------------------------------ sign: mu is the image, not its negative
def test_sign_single_pixel_and_likelihood():
    x = np.array([[1.5]])
    m = ising.gaussian_model(x, 1.0)
    # h = (l(+1) - l(-1)) / 2 = ((x+1)^2 - (x-1)^2) / (4 sigma^2) = x / sigma^2 = 1.5
    assert m.half_log_odds[0, 0] == pytest.approx(1.5, abs=1e-15)
    res = ising.mean_field(m, max_sweeps=3)
    assert res.mean[0, 0] == pytest.approx(np.tanh(1.5), abs=1e-15) and res.mean[0, 0] > 0
    lp, ln = ising.flip_log_lik(np.array([[1.0, -1.0]]), 0.1)
    np.testing.assert_allclose(lp, np.log([[0.9, 0.1]]), atol=1e-15)
    np.testing.assert_allclose(ln, np.log([[0.1, 0.9]]), atol=1e-15)


def test_sign_on_an_image_with_negative_control():
    rng = np.random.default_rng(3)
    clean = -np.ones((24, 24))
    clean[6:18, 8:14] = 1.0
    x = ising.add_gaussian_noise(clean, 1.0, rng)
    m = ising.gaussian_model(x, 1.0)
    err = ising.error_rate(ising.mean_field(m, max_sweeps=30).mean, clean)
    assert err < 0.02, f"mean field should recover the block (error {err:.3f} >= 0.02)"
    # the widely copied bug: a = m + (l(-1) - l(+1)) / 2 gives the photographic negative
    lp, ln = ising.gaussian_log_lik(x, 1.0)
    wrong = ising.model_from_log_lik(ln, lp, coupling=1.0)
    err_wrong = ising.error_rate(ising.mean_field(wrong, max_sweeps=30).mean, clean)
    assert err_wrong > 0.98, f"the reversed sign must give the negative (error {err_wrong:.3f})"


# ------------------------------------------------------------------ vectorized == per-pixel loop
@pytest.mark.parametrize("neighbours", [4, 8])
@pytest.mark.parametrize("schedule", ising.SCHEDULES)
def test_vectorized_matches_loop(schedule, neighbours):
    rng = np.random.default_rng(10 + neighbours)
    for shape in [(1, 1), (1, 6), (5, 1), (2, 3), (6, 7), (7, 6), (8, 8)]:
        for coupling, damping in [(0.8, 1.0), (-1.3, 0.37), (2.5, 0.5)]:
            m = random_model(rng, shape, coupling, neighbours)
            mu = np.tanh(2 * rng.normal(size=shape))
            for _ in range(3):                                  # a few chained sweeps
                fast = ising.mean_field_sweep(m, mu, schedule=schedule, damping=damping)
                slow = loop_sweep(m, mu, schedule=schedule, damping=damping)
                assert np.max(np.abs(fast - slow)) <= 1e-12, (shape, coupling, damping)
                mu = fast


def test_sweep_does_not_modify_input():
    rng = np.random.default_rng(0)
    m, mu = random_model(rng, (5, 5), 1.0), np.tanh(rng.normal(size=(5, 5)))
    before = mu.copy()
    for schedule in ising.SCHEDULES:
        ising.mean_field_sweep(m, mu, schedule=schedule)
    np.testing.assert_array_equal(mu, before)


# ------------------------------------------------------------------ fixed point and stationarity
@pytest.mark.parametrize("schedule,damping,coupling", [("checkerboard", 1.0, 1.0),
                                                       ("checkerboard", 0.5, 2.0),
                                                       ("parallel", 0.5, 0.2)])
def test_fixed_point_satisfies_mu_equals_tanh_a(schedule, damping, coupling):
    rng = np.random.default_rng(5)
    m = random_model(rng, (32, 32), coupling, kind="gaussian")
    res = ising.mean_field(m, schedule=schedule, damping=damping, max_sweeps=2000, tol=1e-14)
    assert res.converged, f"no convergence in {res.n_sweeps} sweeps"
    a = m.coupling * ising.neighbour_sum(res.mean) + m.half_log_odds
    resid = np.max(np.abs(res.mean - np.tanh(a)))
    assert resid < 1e-12, f"fixed point residual max|mu - tanh(a)| = {resid:.2e} >= 1e-12"


def test_update_is_exact_coordinate_ascent_of_the_elbo():
    # dL/dmu_i = a_i - atanh(mu_i): zero exactly at mu_i = tanh(a_i). Checked by central differences;
    # this fixes the edge-counting convention (a double-counted prior would give 2 m_i).
    rng = np.random.default_rng(7)
    for neighbours in (4, 8):
        m = random_model(rng, (3, 4), 0.7, neighbours)
        mu = np.tanh(rng.normal(size=(3, 4)))
        a = m.coupling * ising.neighbour_sum(mu, neighbours) + m.half_log_odds
        grad, num, h = a - np.arctanh(mu), np.zeros_like(mu), 1e-6
        for idx in np.ndindex(mu.shape):
            e = np.zeros_like(mu)
            e[idx] = h
            num[idx] = (ising.elbo(m, mu + e) - ising.elbo(m, mu - e)) / (2 * h)
        rel = np.abs(grad - num) / np.maximum(1e-8, np.abs(grad) + np.abs(num))
        assert rel.max() < 1e-7, f"ELBO gradient rel. error {rel.max():.2e} >= 1e-7"


# ------------------------------------------------------------------ exact enumeration on 3x3 and 4x4
TINY_CASES = list(itertools.product([(3, 3), (4, 4), (3, 4)], [-0.7, 0.3, 1.0, 2.0],
                                    ["random", "gaussian", "flip"], [4, 8]))


@pytest.mark.parametrize("shape,coupling,kind,neighbours", TINY_CASES)
def test_elbo_below_log_z_and_equal_to_brute_force(shape, coupling, kind, neighbours):
    rng = np.random.default_rng(zlib.crc32(repr((shape, coupling, kind, neighbours)).encode()))
    m = random_model(rng, shape, coupling, neighbours, kind)
    log_z = ising_exact.log_partition(m)
    traces = [ising.mean_field(m, schedule=s, damping=d, max_sweeps=25).trace
              for s, d in [("parallel", 1.0), ("parallel", 0.5), ("checkerboard", 1.0)]]
    best = max(t.max() for t in traces)
    assert best <= log_z + 1e-12, f"ELBO {best} > log Z {log_z}"
    # closed form == sum_z q(z) [log p~(z, x) - log q(z)], including means at exactly +-1
    for mu in [np.tanh(rng.normal(size=shape)), np.sign(rng.normal(size=shape)) * (rng.random(shape) < 0.3)
               + np.tanh(rng.normal(size=shape)) * 0.5]:
        mu = np.clip(mu, -1, 1)
        assert ising.elbo(m, mu) == pytest.approx(ising_exact.brute_force_elbo(m, mu), abs=1e-10)


def test_mean_field_gap_and_marginal_error_are_reported_honestly():
    # a 4x4 posterior with coupling: mean field is over-confident (|mu| > |E[z]|) and ELBO < log Z
    rng = np.random.default_rng(11)
    m = random_model(rng, (4, 4), 1.0, kind="gaussian")
    exact = ising_exact.marginal_means(m)
    mf = ising.mean_field(m, schedule="checkerboard", damping=1.0, max_sweeps=500, tol=1e-13)
    assert ising_exact.log_partition(m) - mf.trace[-1] > 1e-3
    assert np.mean(np.abs(mf.mean)) > np.mean(np.abs(exact))


# ------------------------------------------------------------------ monotone checkerboard, oscillating parallel
def test_checkerboard_never_lowers_elbo():
    rng = np.random.default_rng(2)
    for shape in [(3, 3), (4, 4), (16, 16), (15, 21)]:
        for coupling in [-2.0, -0.5, 0.3, 1.0, 2.0, 4.0]:
            for neighbours, damping in [(4, 1.0), (4, 0.3), (8, 1.0)]:
                m = random_model(rng, shape, coupling, neighbours)
                init = np.tanh(3 * rng.normal(size=shape))
                t = ising.mean_field(m, schedule="checkerboard", damping=damping, max_sweeps=60,
                                     init=init).trace
                tol = 1e-12 * max(1.0, np.abs(t).max())
                assert np.all(np.diff(t) >= -tol), (shape, coupling, neighbours, damping,
                                                    np.diff(t).min())


def test_undamped_parallel_can_lower_the_elbo_and_oscillate():
    # staggered start at strong coupling: every neighbour disagrees, so all pixels flip together
    shape = (8, 8)
    m = ising.model_from_log_lik(np.full(shape, 0.01), np.zeros(shape), coupling=1.0)
    stagger = 0.5 * np.where(np.indices(shape).sum(0) % 2 == 0, 1.0, -1.0)
    par = ising.mean_field(m, schedule="parallel", damping=1.0, max_sweeps=20, tol=1e-6,
                           init=stagger, record=(19,))
    assert not par.converged
    assert np.any(np.diff(par.trace) < -1.0), "undamped parallel should lower the ELBO here"
    assert np.all(np.sign(par.mean) != np.sign(par.snapshots[19])), "period-2 oscillation"
    cb = ising.mean_field(m, schedule="checkerboard", damping=1.0, max_sweeps=20, init=stagger)
    assert np.all(np.diff(cb.trace) >= -1e-12) and cb.trace[-1] > par.trace[-1] + 10


# ------------------------------------------------------------------ the textbook experiment
@pytest.fixture(scope="module")
def letters():
    return letter_image("VI", 128)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_textbook_quality_gaussian(letters, seed):
    rng = np.random.default_rng(seed)
    x = ising.add_gaussian_noise(letters, 2.0, rng)
    m = ising.gaussian_model(x, 2.0, coupling=1.0)
    thr = ising.error_rate(x, letters)
    mf = ising.mean_field(m, schedule="parallel", damping=0.5, max_sweeps=15)
    err = ising.error_rate(mf.mean, letters)
    assert 0.29 < thr < 0.33, f"thresholding error {thr:.3f}, expected about 1 - Phi(1/2) = 0.309"
    assert err <= 0.03, f"mean field correct on {100 * (1 - err):.2f}% < 97% of pixels"
    assert np.all(np.diff(mf.trace) > 0), "damped parallel ELBO should rise on the textbook run"


def test_textbook_quality_flips(letters):
    rng = np.random.default_rng(0)
    x = ising.flip_pixels(letters, 0.3, rng)
    m = ising.flip_model(x, 0.3, coupling=1.0)
    err = ising.error_rate(ising.mean_field(m, max_sweeps=15).mean, letters)
    assert 0.28 < ising.error_rate(x, letters) < 0.32
    assert err <= 0.035, f"mean field error {err:.4f} > 3.5% on flipped pixels p = 0.3"


def test_float32_stays_float32_and_seeds_reproduce():
    clean = np.where(np.random.default_rng(0).random((16, 16)) < 0.5, 1.0, -1.0).astype(np.float32)
    x1 = ising.add_gaussian_noise(clean, 1.0, np.random.default_rng(4))
    x2 = ising.add_gaussian_noise(clean, 1.0, np.random.default_rng(4))
    np.testing.assert_array_equal(x1, x2)
    m = ising.gaussian_model(x1, 1.0)
    res = ising.mean_field(m, max_sweeps=5, record=(2,))
    assert x1.dtype == m.half_log_odds.dtype == res.mean.dtype == res.snapshots[2].dtype == np.float32
