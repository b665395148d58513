"""Continuous data done right: uniform dequantization x = (k + u)/256 and bits/dim on the
256-level scale, bits/dim = -(log p(x) - D log 256) / (D log 2) (Theis, van den Oord & Bethge
2016, sec. 3.1), checked by hand, against the exact probability of a cell, and end to end.
"""
import json
import math

import numpy as np
import pytest
from scipy import special, stats

from scratchvae.cli import main
from scratchvae.data import dequantize, load_embedded_digits
from scratchvae.evaluate import bits_per_dim, bits_per_dim_discrete


# ----------------------------------------------------------------------------- dequantize
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dequantized_pixels_fill_the_cell_of_their_level(dtype):
    k = np.tile(np.arange(256, dtype=np.uint8), (400, 1))                      # (400, 256)
    x = dequantize(k, np.random.default_rng(0), dtype)
    assert x.dtype == dtype and x.shape == k.shape
    assert np.all(x >= k / 256) and np.all(x <= (k + 1.0) / 256)              # closed cell
    on_edge = x == (k + 1.0) / 256                     # rounding of k + u with u near 1 only
    assert on_edge.mean() < (1e-4 if dtype == np.float32 else 1e-12), on_edge.sum()
    np.testing.assert_array_equal(np.floor(x.astype(np.float64) * 256)[~on_edge], k[~on_edge])
    u = x.astype(np.float64) * 256 - k                                          # the noise
    # 102400 draws of U[0, 1): mean 0.5 with s.e. 0.0009; 5 s.e. tolerance
    assert abs(u.mean() - 0.5) < 0.0045, u.mean()
    np.testing.assert_array_equal(x, dequantize(k, np.random.default_rng(0), dtype))   # seeded


def test_dequantize_refuses_what_is_not_8_bit():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="k must be a uint8 numpy.ndarray .* got float32"):
        dequantize(np.zeros(3, np.float32), rng)
    with pytest.raises(TypeError, match="got int64"):
        dequantize(np.zeros(3, np.int64), rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        dequantize(np.zeros(3, np.uint8), 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        dequantize(np.zeros(3, np.uint8), rng, np.float16)


# ----------------------------------------------------------------------------- bits/dim
def test_bits_per_dim_discrete_hand_worked():
    """D = 2 pixels, p = N(mu = (0.5, 0.5), sigma = 0.25 I), at x = (0.5, 0.75):
    log p(x) = 2 (-log 0.25 - log(2 pi)/2) - (0.25/0.25)^2 / 2
             = 2 (1.3862944 - 0.9189385) - 0.5 = 0.4347117 nats (a density above 1: log p > 0)
    continuous bits/dim = -0.4347117 / (2 ln 2) = -0.3135782                (negative)
    256-level bits/dim  = -(0.4347117 - 2 ln 256) / (2 ln 2)
                        = (11.0903549 - 0.4347117) / 1.3862944 = 7.6864218 = -0.3135782 + 8
    """
    log_p = stats.norm.logpdf([0.5, 0.75], 0.5, 0.25).sum()
    np.testing.assert_allclose(log_p, 0.4347117, atol=1e-7)
    np.testing.assert_allclose(bits_per_dim(-log_p, 2), -0.3135782, atol=1e-7)
    np.testing.assert_allclose(bits_per_dim_discrete(-log_p, 2), 7.6864218, atol=1e-7)
    np.testing.assert_allclose(bits_per_dim_discrete(np.array([-log_p, 0.0]), 2, levels=4),
                               [-0.3135782 + 2, 2.0], atol=1e-7)


def _expected_log_density(k, levels, mu, sigma):
    """E_u[log N((k + u)/levels; mu, sigma^2)], u ~ U[0, 1), per pixel, in closed form:
    with a = k/levels - mu and b = 1/levels, E[(a + b u)^2] = a^2 + a b + b^2/3."""
    a, b = k / levels - mu, 1.0 / levels
    return -(a * a + a * b + b * b / 3) / (2 * sigma ** 2) - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def _log_cell(lo, hi, mu, sigma):
    """log(Phi(hi) - Phi(lo)) of N(mu, sigma^2), per pixel, accurate in both tails (right of the
    mean as Phi(-lo) - Phi(-hi))."""
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    right = a > 0
    top = np.where(right, special.log_ndtr(-a), special.log_ndtr(b))
    low = np.where(right, special.log_ndtr(-b), special.log_ndtr(a))
    return top + np.log1p(-np.exp(low - top))


@pytest.mark.parametrize("levels, mu, sigma", [(4, (0.3, 0.8), (0.2, 0.5)),
                                               (256, (0.05, 0.6), (0.01, 0.1))])
def test_bits_bound_the_exact_probability_of_every_cell(levels, mu, sigma):
    """The exact P(k) = prod_d [Phi((k_d + 1)/levels) - Phi(k_d/levels)] of a Gaussian density:
    the 256-level bits/dim of E_u[log p(x)] bound -log2 P(k) / D from above, for every k."""
    mu, sigma = np.array(mu), np.array(sigma)
    grid = np.stack(np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij"), -1)
    k = grid.reshape(-1, 2)[:: max(1, levels * levels // 4096)]                # (K, 2) cells
    exact = -_log_cell(k / levels, (k + 1) / levels, mu, sigma).sum(axis=1) / (2 * np.log(2))
    bound = bits_per_dim_discrete(-_expected_log_density(k, levels, mu, sigma).sum(axis=1), 2,
                                  levels)
    assert np.all(np.isfinite(exact)) and np.all(bound >= exact - 1e-9), np.max(exact - bound)
    continuous = bound - np.log2(levels)                    # negative control: no D log(levels)
    assert np.any(continuous < exact - 1), "without the cell volume it is not a bound"
    near = np.all(np.abs(k / levels - mu) < sigma, axis=1)           # where p is smooth on a cell
    assert np.max(bound[near] - exact[near]) < 0.1, "Jensen's gap is small where p is smooth"


def test_dequantize_draws_estimate_the_expected_log_density():
    k = np.array([[10, 200]], dtype=np.uint8).repeat(20000, axis=0)
    x = dequantize(k, np.random.default_rng(1), np.float64)
    mc = stats.norm.logpdf(x, [0.05, 0.8], [0.1, 0.1]).sum(axis=1)
    exact = _expected_log_density(k[0].astype(float), 256, np.array([0.05, 0.8]), 0.1).sum()
    assert abs(mc.mean() - exact) < 5 * mc.std() / np.sqrt(len(mc)) + 1e-12, (mc.mean(), exact)


def test_uniform_density_on_the_unit_cube_is_exactly_8_bits():
    """p = 1 on [0, 1)^D spreads P(k) = 256^-D evenly: log p = 0 gives exactly 8 bits/dim."""
    assert bits_per_dim_discrete(0.0, 784) == 8.0
    with pytest.raises(ValueError, match="levels must be >= 2"):
        bits_per_dim_discrete(0.0, 784, levels=1)


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_gaussian_bits_per_dim_on_grey_digits_is_positive_on_the_256_level_scale(tmp_path, capsys):
    """400 embedded digits stored as 8-bit grey levels (round(255 x)), a Gaussian VAE with a
    learned sigma, 3 epochs. Measured: 7.74 bits/dim on the 256-level scale; the same run
    without dequantization reports -0.26 bits/dim (a density on [0, 1], not a bound)."""
    x = load_embedded_digits(n_train=400, n_valid=0, n_test=0, seed=3).train.x
    np.save(tmp_path / "grey.npy", np.round(x * 255).astype(np.uint8))
    common = ["--data", str(tmp_path / "grey.npy"), "--likelihood", "gaussian", "--obs-scale",
              "learned", "--hidden", "64", "--z-dim", "8", "--batch-size", "50", "--epochs", "3"]
    results = {}
    for mode in ("auto", "none"):
        out = tmp_path / mode
        assert main(["train", *common, "--dequantize", mode, "--out", str(out)]) == 0
        train_out = capsys.readouterr().out
        assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--split", "valid",
                     "--k", "20", "--json", str(out / "e.json")]) == 0
        results[mode] = (train_out, capsys.readouterr().out,
                         json.loads((out / "e.json").read_text()))
    train_out, eval_out, r = results["auto"]
    assert "dequantized: x = (k + u)/256" in train_out and "on the 256-level scale" in train_out
    assert json.loads((tmp_path / "auto" / "run.json").read_text())["dequantize"] == "uniform"
    assert r["bits_per_dim_scale"] == "256-level" and "bits/dim (D = 784) on the 256-level" in eval_out
    assert 0 < r["bits_per_dim"] < 8, r["bits_per_dim"]               # beats the uniform 8 bits
    assert math.isclose(r["bits_per_dim"], r["nats"] / (784 * math.log(2)) + 8, rel_tol=1e-12)
    assert math.isclose(r["elbo_bits_per_dim"], -r["elbo"] / (784 * math.log(2)) + 8, rel_tol=1e-12)
    _, eval_out, r = results["none"]
    assert r["bits_per_dim_scale"] == "continuous" and "not a bound on discrete data" in eval_out
    assert r["bits_per_dim"] < 0, r["bits_per_dim"]            # what the 256-level scale corrects
