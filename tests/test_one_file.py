"""demos/vae_one_file.py against the library: same initialisation, same objectives, same gradients.

The one-file edition is a second, independent implementation of VAE(posterior="diagonal",
likelihood="bernoulli") with one hidden layer: each checks the other. Its backward pass is also
checked on its own against finite differences, and its Monte Carlo ELBO against scipy densities.
"""
import importlib.util
import pathlib

import numpy as np
import pytest
from scipy import stats

from scratchvae.gradcheck import check_gradients
from scratchvae.vae import VAE

DEMO = pathlib.Path(__file__).resolve().parents[1] / "demos" / "vae_one_file.py"
_spec = importlib.util.spec_from_file_location("vae_one_file", DEMO)
one = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(one)

D, H, Z, B = 784, 7, 3, 5
TOL_SAME = 1e-12     # two implementations of the same float64 arithmetic, summed in other orders
TOL_FD = 1e-6        # whole-model finite-difference check (docs/contributing.md)


def _rel_diff(a, b):
    """max |a - b| / max |b|: the difference relative to the array's scale. (Entrywise relative
    error is not used: an entry that is a sum of cancelling terms may be near 0 in both.)"""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _problem(L, seed=0, d=D, h=H, z=Z, b=B):
    """Non-trivial float64 weights (random biases too: zeros hide wrong backward passes), binary
    x with about 30% ones, and noise eps (b, L, z)."""
    rng = np.random.default_rng(seed)
    p = one.init_params(d, h, z, rng, dtype=np.float64)
    for k in p:
        if k.endswith(".b"):
            p[k][...] = 0.3 * rng.standard_normal(p[k].shape)
    x = (rng.random((b, d)) < 0.3).astype(np.float64)       # (b, d)
    eps = rng.standard_normal((b, L, z))                     # (b, L, z)
    return p, x, eps, rng


def _library_twin(p):
    vae = VAE(D, Z, rng=np.random.default_rng(99), hidden=(H,), posterior="diagonal",
              likelihood="bernoulli", dtype=np.float64)
    assert vae.params.keys() == p.keys()
    for k in p:
        vae.params[k][...] = p[k]
    return vae


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initialisation_is_the_librarys(dtype):
    """Same rng seed -> bit-identical weights, names and shapes as VAE(784, Z, hidden=(H,))."""
    mine = one.init_params(D, H, Z, np.random.default_rng(5), dtype=dtype)
    lib = VAE(D, Z, rng=np.random.default_rng(5), hidden=(H,), dtype=dtype).params
    assert list(mine) == list(lib)
    for k in lib:
        assert mine[k].dtype == lib[k].dtype and np.array_equal(mine[k], lib[k]), k


@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("objective", ["analytic", "mc"])
def test_objective_and_gradients_equal_the_librarys(objective, L):
    p, x, eps, _ = _problem(L)
    vae = _library_twin(p)
    elbo, cache = one.forward(p, x, eps, objective)
    obj, lib_cache, _ = vae.forward(x, eps, estimator=objective)
    assert elbo.shape == obj.shape == (B,)
    assert _rel_diff(elbo, obj) < TOL_SAME, (elbo, obj)
    grads = one.backward(p, np.full(B, -1.0 / B), cache)
    lib_grads = vae.backward(np.full(B, -1.0 / B), lib_cache)
    assert grads.keys() == lib_grads.keys() == p.keys()
    for k in p:
        assert grads[k].shape == p[k].shape and grads[k].dtype == np.float64, k
        assert _rel_diff(grads[k], lib_grads[k]) < TOL_SAME, (k, _rel_diff(grads[k], lib_grads[k]))


def test_equivalence_check_catches_a_perturbed_gradient():
    """Negative control: one entry off by one part in 1e9 is enough to fail the comparison above."""
    p, x, eps, _ = _problem(L=3)
    vae = _library_twin(p)
    grads = one.backward(p, np.full(B, -1.0 / B), one.forward(p, x, eps, "mc")[1])
    lib_grads = vae.backward(np.full(B, -1.0 / B), vae.forward(x, eps, estimator="mc")[1])
    k = "enc.1.W"
    i = np.unravel_index(np.argmax(np.abs(grads[k])), grads[k].shape)
    wrong = grads[k].copy()
    wrong[i] *= 1 + 1e-9
    assert _rel_diff(grads[k], lib_grads[k]) < TOL_SAME
    assert _rel_diff(wrong, lib_grads[k]) > TOL_SAME


@pytest.mark.parametrize("objective", ["analytic", "mc"])
def test_backward_against_finite_differences(objective):
    p, x, eps, rng = _problem(L=2, seed=1, d=6, h=4, z=2, b=3)
    _, cache = one.forward(p, x, eps, objective)
    report = check_gradients(lambda: one.forward(p, x, eps, objective)[0],
                             lambda dout: one.backward(p, dout, cache), p, rng=rng)
    assert report.ok(TOL_FD), f"\n{report}"


def test_finite_differences_catch_the_other_objectives_gradient():
    """Negative control: the "mc" backward for the "analytic" forward (equal in expectation over
    eps, different for a fixed eps) is a wrong gradient, and the check says so."""
    p, x, eps, rng = _problem(L=2, seed=1, d=6, h=4, z=2, b=3)
    _, mc_cache = one.forward(p, x, eps, "mc")
    report = check_gradients(lambda: one.forward(p, x, eps, "analytic")[0],
                             lambda dout: one.backward(p, dout, mc_cache), p, rng=rng)
    assert not report.ok(TOL_FD), f"\n{report}"
    assert report.max_rel_error["enc.1.W"] > 1e-3, f"\n{report}"


def test_mc_elbo_against_scipy_densities():
    """End to end against independent densities at the z the one-file model drew: catches a
    log_scale read as a log-variance, which each piece's own check would not."""
    p, x, eps, _ = _problem(L=3)
    elbo, c = one.forward(p, x, eps, "mc")
    sigma = np.exp(c["log_scale"])[:, None, :]                                    # (B, 1, Z)
    log_q = stats.norm.logpdf(c["z"], c["mu"][:, None, :], sigma).sum(-1)         # (B, L)
    log_pz = stats.norm.logpdf(c["z"]).sum(-1)                                    # (B, L)
    probs = 1 / (1 + np.exp(-c["logits"]))                                        # (B, L, D)
    log_px = stats.bernoulli.logpmf(x[:, None, :], probs).sum(-1)                 # (B, L)
    expected = (log_px + log_pz - log_q).mean(axis=1)                             # (B,)
    np.testing.assert_allclose(elbo, expected, rtol=1e-10)


@pytest.mark.parametrize("objective", ["analytic", "mc"])
def test_float32_in_float32_out(objective):
    """No silent upcast: float32 weights, data and noise give float32 ELBOs and gradients."""
    p, x, eps, _ = _problem(L=2)
    p = {k: w.astype(np.float32) for k, w in p.items()}
    elbo, cache = one.forward(p, x.astype(np.float32), eps.astype(np.float32), objective)
    grads = one.backward(p, np.full(B, -1.0 / B, np.float32), cache)
    assert elbo.dtype == np.float32
    assert {k: g.dtype for k, g in grads.items()} == {k: np.dtype(np.float32) for k in p}
    m = {k: np.zeros_like(w) for k, w in p.items()}
    v = {k: np.zeros_like(w) for k, w in p.items()}
    one.adam_step(p, grads, m, v, step=1)
    assert all(w.dtype == np.float32 for d in (p, m, v) for w in d.values())


def test_adam_first_step_is_lr_times_the_sign():
    """Algorithm 1 at step 1: m_hat = g, v_hat = g^2, so each entry moves by
    -lr g / (|g| + 1e-8), which is -lr sign(g) within lr 1e-8 / |g| <= 1e-9 here (|g| >= 0.1)."""
    p = {"w": np.array([1.0, -2.0, 0.5])}
    g = {"w": np.array([0.3, -0.1, 4.0])}
    m, v = {"w": np.zeros(3)}, {"w": np.zeros(3)}
    one.adam_step(p, g, m, v, step=1, lr=0.01)
    np.testing.assert_allclose(p["w"], [1.0 - 0.01, -2.0 + 0.01, 0.5 - 0.01], rtol=0, atol=2e-9)


def test_unknown_objective_is_refused():
    p, x, eps, _ = _problem(L=1)
    with pytest.raises(ValueError, match="objective must be 'analytic' or 'mc', got 'iwae'"):
        one.forward(p, x, eps, "iwae")


def test_one_small_epoch_improves_the_validation_elbo(capsys):
    """Ten Adam steps on 1000 images (about 1 s): the held-out ELBO rises (measured: by 49 nats)."""
    valid, test = one.train(seed=0, epochs=1, n_train=1000, n_held_out=200, H=32, Z=4)
    out = capsys.readouterr().out
    assert "epoch   1  train -ELBO" in out and "test ELBO" in out
    assert len(valid) == 2 and np.isfinite(test)
    assert valid[1] > valid[0] + 20, f"validation ELBO {valid[0]:.1f} -> {valid[1]:.1f} nats"
