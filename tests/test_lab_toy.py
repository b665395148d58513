"""The toy VAE (demos/toy_vae.py): the toy 2-D VAE collapses when its decoder starts broad, and KL
warm-up cures it. The demo's claims are asserted on its own output, with small settings (2 seeds,
100 epochs, about 6 s) and margins set well inside what was measured (numbers in the comments)."""
import os

import numpy as np
import pytest

from scratchvae.vae import VAE
from support import load_demo

pytestmark = pytest.mark.slow   # end-to-end: the maths lane is pytest -m "not slow"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


toy = load_demo("toy_vae")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    res = toy.main(["--out", str(out), "--seed", "0", "--seeds", "2", "--epochs", "100"])
    res["out"] = out
    return res


def test_without_warm_up_the_posterior_collapses(result):
    # measured (seeds 0, 1): KL 0.003, 0.004 nats; per dimension <= 0.003; active units 0, 0;
    # decoder sigma 0.299, 0.310 (the data's spread, 0.30); ELBO -0.452, -0.459 vs -0.443 for the
    # best single Gaussian
    for r in result["runs"]["broad start, no warm-up"]:
        assert r["kl"] < 0.1, r["kl"]
        assert np.all(r["kl_per_dim"] < 0.05), r["kl_per_dim"]
        assert 0.25 < r["sigma"] < 0.35, r["sigma"]
        assert abs(r["elbo"] - result["broad_gaussian"]) < 0.1, (r["elbo"], result["broad_gaussian"])


def test_warm_up_cures_it_by_a_wide_margin(result):
    # measured: KL 1.95, 2.06 nats; every dimension >= 0.87; active units 2, 2; decoder sigma
    # 0.050, 0.055; ELBO 0.975, 0.775, i.e. 1.43 and 1.23 nats above the collapsed runs
    off, on = result["runs"]["broad start, no warm-up"], result["runs"]["broad start, warm-up"]
    for a, b in zip(off, on):
        assert b["kl"] > 1.0 and np.all(b["kl_per_dim"] > 0.5), b["kl_per_dim"]
        assert b["active_units"] == 2 and b["sigma"] < 0.1
        assert b["elbo"] > a["elbo"] + 0.8, (a["elbo"], b["elbo"])
        assert b["active_units"] >= a["active_units"] + 1
    assert sum(b["active_units"] for b in on) >= sum(a["active_units"] for a in off) + 3
    assert result["summary"]["broad start, no warm-up"]["collapsed"] == 2
    assert result["summary"]["broad start, warm-up"]["collapsed"] == 0


def test_bounds_and_density_are_consistent(result):
    # log p(x) (IWAE, K = 500) >= ELBO for every run (measured gaps 0.000-0.38 nats); the model's
    # density integrates to about 1 over the grid (measured 0.992); no run beats the true density
    for rs in result["runs"].values():
        for r in rs:
            assert r["log_px"] >= r["elbo"] - 0.01
            assert r["log_px"] < result["true_log_px"]
    assert 0.85 < result["integral"] < 1.15, result["integral"]
    for name in ("toy_vae.png", "toy_collapse.png"):
        assert os.path.getsize(result["out"] / name) > 20_000


def test_true_density_integrates_to_one_and_initial_scale_is_exact():
    g = np.linspace(-0.3, 1.3, 321)
    x1, x2 = np.meshgrid(g, g)
    p = np.exp(toy.true_log_density(np.stack([x1.ravel(), x2.ravel()], 1)))
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1) < 1e-6
    vae = VAE(2, 2, rng=np.random.default_rng(0), hidden=(4,), likelihood="gaussian", obs_scale=None,
              min_obs_scale=toy.MIN_OBS_SCALE, init_obs_scale=3.0)
    vae.params["dec.1.W"][...] = 0.0           # no z-dependence: sigma is the bias term alone
    z = np.random.default_rng(1).standard_normal((5, 2)).astype(np.float32)
    assert abs(toy.decoder_scale(vae, z) - 3.0) < 1e-5
