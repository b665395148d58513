"""Threshold, ICM and Gibbs baselines and the shared ``denoise`` interface (fixed seeds)."""
import math

import numpy as np
import pytest

from scratchvae import ising
from scratchvae.ising import exact as ising_exact
from scratchvae.ising.baselines import METHODS, denoise, gibbs, icm, threshold


def random_model(rng, shape, coupling, neighbours=4):
    return ising.model_from_log_lik(rng.normal(size=shape), rng.normal(size=shape),
                                    coupling=coupling, neighbours=neighbours)


def test_threshold_is_sign_of_half_log_odds():
    x = np.array([[0.3, -0.2], [0.0, -5.0]])
    res = threshold(ising.gaussian_model(x, 1.0))
    np.testing.assert_array_equal(res.mean, [[1, -1], [1, -1]])     # h = x / sigma^2, 0 -> +1
    assert res.n_sweeps == 0 and res.trace.size == 0


@pytest.mark.parametrize("neighbours", [4, 8])
def test_icm_never_increases_energy_and_ends_in_a_local_minimum(neighbours):
    rng = np.random.default_rng(0)
    for coupling in [0.3, 1.0, 2.0, -1.0]:
        m = random_model(rng, (32, 32), coupling, neighbours)
        for init in ["likelihood", np.where(rng.random((32, 32)) < 0.5, 1.0, -1.0)]:
            res = icm(m, max_sweeps=200, init=init)
            tol = 1e-12 * np.abs(res.trace).max()
            assert np.all(np.diff(res.trace) <= tol), (coupling, np.diff(res.trace).max())
            assert res.trace[-1] == pytest.approx(-float(ising.log_joint(m, res.mean)), abs=1e-9)
            assert res.converged, f"ICM did not stop within 200 sweeps (J={coupling})"
            a = m.coupling * ising.neighbour_sum(res.mean, neighbours) + m.half_log_odds
            assert np.all(a * res.mean >= 0), "a single flip would lower the energy"


def test_gibbs_means_converge_to_exact_marginals_with_negative_control():
    # 3x3 grid, J = 0.3; 20,000 sweeps: per-pixel standard error <= sqrt(tau / 20000) ~ 0.01 for
    # an integrated autocorrelation time tau ~ 2, so 0.04 is about 4 standard errors.
    rng = np.random.default_rng(1)
    m = random_model(rng, (3, 3), 0.3)
    exact = ising_exact.marginal_means(m)
    res = gibbs(m, rng=np.random.default_rng(2), n_sweeps=20000, burn_in=200)
    err = np.max(np.abs(res.mean - exact))
    assert err < 0.04, f"Gibbs vs exact marginals: max error {err:.4f} >= 0.04"
    # negative control: the same sampler on the model without coupling misses by far more
    m0 = ising.IsingModel(m.half_log_odds, m.mean_log_lik, 0.0, 4)
    wrong = gibbs(m0, rng=np.random.default_rng(2), n_sweeps=20000, burn_in=200)
    assert np.max(np.abs(wrong.mean - exact)) > 0.1


def test_gibbs_is_reproducible_and_records_running_means():
    m = random_model(np.random.default_rng(3), (6, 5), 0.8)
    a = gibbs(m, rng=np.random.default_rng(9), n_sweeps=30, burn_in=10, record=(20,))
    b = gibbs(m, rng=np.random.default_rng(9), n_sweeps=30, burn_in=10)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert set(a.snapshots) == {20} and a.trace.shape == (31,)
    assert np.all(np.abs(a.mean) <= 1) and np.allclose(a.mean * 20, np.round(a.mean * 20))


@pytest.mark.parametrize("method", METHODS)
def test_denoise_interface(method):
    m = random_model(np.random.default_rng(4), (10, 12), 1.0)
    rng = np.random.default_rng(0) if method == "gibbs" else None
    res = denoise(m, method, rng=rng)
    assert res.mean.shape == (10, 12) and np.all(np.abs(res.mean) <= 1)
    assert set(np.unique(res.estimate)) <= {-1.0, 1.0}
    assert res.trace.shape == ((0,) if method == "threshold" else (res.n_sweeps + 1,))
    assert res.seconds_per_sweep >= 0


def test_denoise_rejects_bad_use():
    m = random_model(np.random.default_rng(4), (4, 4), 1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        denoise(m, "loopy_bp")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        denoise(m, "gibbs", rng=0)
    with pytest.raises(TypeError, match="deterministic and takes no rng"):
        denoise(m, "icm", rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="threshold takes no options"):
        denoise(m, "threshold", max_sweeps=3)
    with pytest.raises(ValueError, match="burn_in must be < n_sweeps"):
        gibbs(m, rng=np.random.default_rng(0), n_sweeps=10, burn_in=10)
    with pytest.raises(ValueError, match="only -1 and \\+1 spins"):
        icm(m, init=np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="init must be"):
        icm(m, init="zeros")


# ------------------------------------------------------------------ sub-lattice sweeps == per-pixel loops
# The textbook scan, one pixel at a time with Python floats, sharing nothing with the vectorized
# sweeps but the model's h and J: colour by colour ((i + j) mod 2 with 4 neighbours,
# 2 (i mod 2) + j mod 2 with 8), always reading the newest spins.
_NBRS = {4: ((-1, 0), (1, 0), (0, -1), (0, 1))}
_NBRS[8] = _NBRS[4] + ((-1, -1), (-1, 1), (1, -1), (1, 1))


def _loop_field(m, z, i, j):
    H, W = z.shape
    s = sum(z[i + di, j + dj] for di, dj in _NBRS[m.neighbours] if 0 <= i + di < H and 0 <= j + dj < W)
    return m.coupling * s + m.half_log_odds[i, j]


def _colour_sublattices(neighbours):
    """Each colour as its (row parity, column parity) sub-lattices, in sweep order."""
    if neighbours == 4:
        return (((0, 0), (1, 1)), ((0, 1), (1, 0)))
    return (((0, 0),), ((0, 1),), ((1, 0),), ((1, 1),))


def loop_icm_sweep(m, z):
    z = z.copy()
    for colour in _colour_sublattices(m.neighbours):
        for p, q in colour:
            for i in range(p, z.shape[0], 2):
                for j in range(q, z.shape[1], 2):
                    a = _loop_field(m, z, i, j)
                    z[i, j] = 1.0 if a > 0 else -1.0 if a < 0 else z[i, j]   # keep z when a == 0
    return z


def loop_gibbs_sweep(m, z, rng):
    """z_i = +1 with probability (1 + tanh(a_i)) / 2, drawn as v_i <= tanh(a_i) with v ~ U(-1, 1):
    per sub-lattice of a colour, one array v of its shape, read in raster order."""
    z = z.copy()
    for colour in _colour_sublattices(m.neighbours):
        for p, q in colour:
            rows, cols = range(p, z.shape[0], 2), range(q, z.shape[1], 2)
            v = 2 * rng.random((len(rows), len(cols))) - 1
            for k, i in enumerate(rows):
                for l, j in enumerate(cols):
                    z[i, j] = 1.0 if v[k, l] <= math.tanh(_loop_field(m, z, i, j)) else -1.0
    return z


SHAPES = [(8, 8), (7, 9), (1, 6), (6, 1), (2, 3), (13, 10)]


@pytest.mark.parametrize("neighbours", [4, 8])
def test_icm_matches_the_per_pixel_loop(neighbours):
    rng = np.random.default_rng(5)
    for shape in SHAPES:
        for coupling in [0.7, -1.3]:
            m = random_model(rng, shape, coupling, neighbours)
            z0 = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
            ref = z0
            for sweeps in range(1, 5):
                ref = loop_icm_sweep(m, ref)
                res = icm(m, max_sweeps=sweeps, init=z0)
                np.testing.assert_array_equal(res.mean, ref, err_msg=f"{shape} J={coupling} sweep {sweeps}")
                assert res.trace[-1] == pytest.approx(-float(ising.log_joint(m, ref)), rel=1e-12, abs=1e-12)


def test_icm_keeps_a_spin_whose_field_is_exactly_zero():
    # h = 0 everywhere, J = 1: the centre of a plus-shaped pattern sees 2 up and 2 down neighbours
    z0 = np.array([[-1., 1., -1.], [-1., -1., 1.], [1., -1., 1.]])
    m = ising.IsingModel(np.zeros((3, 3)), np.zeros((3, 3)), 1.0, 4)
    assert _loop_field(m, z0, 1, 1) == 0
    res = icm(m, max_sweeps=1, init=z0)
    np.testing.assert_array_equal(res.mean, loop_icm_sweep(m, z0))
    assert res.mean[1, 1] == z0[1, 1]


@pytest.mark.parametrize("neighbours", [4, 8])
def test_gibbs_sample_matches_the_per_pixel_loop_for_the_same_uniforms(neighbours):
    """With burn_in = n_sweeps - 1 the mean is the last sample itself; the loop draws the same
    uniforms in the same order, so the samples agree exactly (only a v within an ulp of tanh's
    rounding could part them)."""
    rng = np.random.default_rng(6)
    for shape in SHAPES:
        m = random_model(rng, shape, 0.8, neighbours)
        z0 = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        ref, loop_rng = z0, np.random.default_rng(11)
        for sweeps in range(1, 4):
            ref = loop_gibbs_sweep(m, ref, loop_rng)
            res = gibbs(m, rng=np.random.default_rng(11), n_sweeps=sweeps, burn_in=sweeps - 1, init=z0)
            np.testing.assert_array_equal(res.mean, ref, err_msg=f"{shape} sweep {sweeps}")
            assert res.trace[-1] == pytest.approx(-float(ising.log_joint(m, ref)), rel=1e-12, abs=1e-12)


def test_gibbs_and_icm_keep_float32():
    rng = np.random.default_rng(7)
    m = ising.model_from_log_lik(rng.normal(size=(9, 8)).astype(np.float32),
                                 rng.normal(size=(9, 8)).astype(np.float32), coupling=0.5)
    for res in (icm(m, max_sweeps=3), gibbs(m, rng=np.random.default_rng(0), n_sweeps=4, burn_in=1)):
        assert res.mean.dtype == np.float32
    np.testing.assert_array_equal(icm(m, max_sweeps=3).mean,
                                  loop_icm_sweep(m, loop_icm_sweep(m, loop_icm_sweep(
                                      m, np.where(m.half_log_odds >= 0, 1.0, -1.0).astype(np.float32)))))
