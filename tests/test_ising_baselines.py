"""Threshold, ICM and Gibbs baselines and the shared ``denoise`` interface (fixed seeds)."""
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
