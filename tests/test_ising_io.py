"""Ising: every input error names its argument; the CLI, the letter image, the demo and the bench run."""
import os
import subprocess
import sys

import numpy as np
import pytest

from scratchvae import ising
from scratchvae.ising import exact as ising_exact
from scratchvae.cli import build_parser, main
from scratchvae.ising.reference import loop_sweep
from scratchvae.viz.ising import letter_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLEAN = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
RNG = np.random.default_rng(0)


def model(shape=(2, 3), **kw):
    return ising.model_from_log_lik(np.full(shape, -0.3), np.full(shape, -1.1), **kw)


# ------------------------------------------------------------------ bad inputs: one check per error
@pytest.mark.parametrize("fn", [lambda c: ising.add_gaussian_noise(c, 1.0, RNG),
                                lambda c: ising.flip_pixels(c, 0.1, RNG),
                                lambda c: ising.error_rate(CLEAN, c)])
def test_clean_image_must_be_binary_finite_2d_float(fn):
    with pytest.raises(ValueError, match=r"clean must contain only -1 and \+1.*0.5"):
        fn(np.array([[1.0, 0.5], [-1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"clean contains 1 NaN"):
        fn(np.array([[1.0, np.nan], [-1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"clean must be 2-dimensional, got shape \(4,\)"):
        fn(np.ones(4))
    with pytest.raises(ValueError, match=r"clean must be 2-dimensional, got shape \(1, 2, 2\)"):
        fn(np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"clean must be a non-empty \(H, W\) image, got shape \(0, 3\)"):
        fn(np.ones((0, 3)))
    with pytest.raises(TypeError, match="clean must have dtype float32 or float64, got int64"):
        fn(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="clean must be a numpy.ndarray"):
        fn([[1.0, -1.0]])


@pytest.mark.parametrize("sigma", [0.0, -1.0, np.inf, np.nan])
def test_sigma_must_be_positive(sigma):
    with pytest.raises(ValueError, match=f"sigma must be > 0 and finite, got {sigma!r}"):
        ising.gaussian_model(CLEAN, sigma)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        ising.add_gaussian_noise(CLEAN, sigma, RNG)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.7, -0.1, np.nan])
def test_p_must_lie_strictly_between_0_and_half(p):
    with pytest.raises(ValueError, match=r"p must lie in \(0.0, 0.5\), got"):
        ising.flip_model(CLEAN, p)
    with pytest.raises(ValueError, match=r"p must lie in \(0.0, 0.5\)"):
        ising.flip_pixels(CLEAN, p, RNG)


@pytest.mark.parametrize("damping", [0.0, -0.5, 1.5, np.nan])
def test_damping_must_lie_in_0_1(damping):
    m, mu = model(), np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"damping must lie in \(0.0, 1.0\], got"):
        ising.mean_field(m, damping=damping)
    with pytest.raises(ValueError, match=r"damping must lie in \(0.0, 1.0\]"):
        ising.mean_field_sweep(m, mu, damping=damping)
    with pytest.raises(ValueError, match=r"damping must lie in \(0.0, 1.0\]"):
        loop_sweep(m, mu, damping=damping)


def test_observations_and_log_likelihoods_are_checked():
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        ising.gaussian_model(np.array([[0.2, np.nan]]), 1.0)
    with pytest.raises(ValueError, match=r"x must contain only -1 and \+1"):
        ising.flip_model(np.array([[1.0, 0.2]]), 0.1)
    with pytest.raises(TypeError, match="sigma must be a real number, got NoneType"):
        ising.gaussian_model(CLEAN, None)
    with pytest.raises(ValueError, match=r"log_lik_pos and log_lik_neg must have the same shape"):
        ising.model_from_log_lik(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="log_lik_pos and log_lik_neg must have the same dtype"):
        ising.model_from_log_lik(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="neighbours must be 4 or 8, got 6"):
        model(neighbours=6)
    with pytest.raises(ValueError, match=r"coupling must lie in \[-inf, inf\], got nan"):
        model(coupling=np.nan)


def test_means_schedules_and_counts_are_checked():
    m = model()
    with pytest.raises(ValueError, match=r"mu and model.half_log_odds must have the same shape .* \(3, 2\) and \(2, 3\)"):
        ising.elbo(m, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"mu must lie in \[-1, 1\]"):
        ising.mean_field_sweep(m, np.full((2, 3), 1.5))
    with pytest.raises(TypeError, match="mu and model.half_log_odds must have the same dtype"):
        ising.elbo(m, np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="mu contains 1 NaN"):
        ising.elbo(m, np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="schedule must be one of"):
        ising.mean_field(m, schedule="random")
    with pytest.raises(ValueError, match="max_sweeps must be >= 0, got -1"):
        ising.mean_field(m, max_sweeps=-1)
    with pytest.raises(TypeError, match="max_sweeps must be an integer, got float"):
        ising.mean_field(m, max_sweeps=1.5)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        ising.mean_field(m, tol=-1.0)
    with pytest.raises(ValueError, match="init must be 'likelihood', 'data' or"):
        ising.mean_field(m, init="zeros")
    with pytest.raises(ValueError, match="init='data' needs the observed image x"):
        ising.mean_field(m, init="data")
    with pytest.raises(ValueError, match=r"x and model.half_log_odds must have the same shape"):
        ising.mean_field(m, init="data", x=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"mean and clean must have the same shape"):
        ising.error_rate(np.zeros((3, 2)), CLEAN)


def test_model_and_configurations_are_checked():
    from scratchvae.ising.baselines import denoise
    for call in [lambda: ising.mean_field(np.zeros((2, 3))), lambda: denoise("model", "icm"),
                 lambda: ising_exact.log_partition(None), lambda: ising.elbo({}, np.zeros((2, 3)))]:
        with pytest.raises(TypeError, match="model must be an IsingModel"):
            call()
    with pytest.raises(ValueError, match=r"z must have shape \(..., 2, 3\), got \(3, 2\)"):
        ising.log_joint(model(), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"record\[0\] must be an integer"):
        ising.mean_field(model(), record=(1.5,))


def test_exact_enumeration_refuses_large_grids():
    with pytest.raises(ValueError, match=r"H \* W <= 16 \(4 x 4\), got shape \(5, 4\)"):
        ising_exact.log_partition(model((5, 4)))


def test_data_init_clips_the_observation():
    x = np.array([[2.5, -0.3, -4.0]])
    m = ising.gaussian_model(x, 2.0)
    res = ising.mean_field(m, init="data", x=x, max_sweeps=0, record=(0,))
    np.testing.assert_array_equal(res.snapshots[0], [[1.0, -0.3, -1.0]])


# ------------------------------------------------------------------ letter image orientation
def test_letter_image_is_upright_and_not_mirrored():
    img = letter_image("L", 32)
    assert img.shape == (32, 32) and img.dtype == np.float64 and set(np.unique(img)) == {-1.0, 1.0}
    rows = np.flatnonzero((img > 0).any(axis=1))
    top, bottom = (img[rows[0]] > 0).sum(), (img[rows[-1]] > 0).sum()
    assert bottom > 2 * top, "the bar of an L is at the bottom (row 0 is the top)"
    assert (img[:, :16] > 0).sum() > (img[:, 16:] > 0).sum(), "the stem of an L is on the left"
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        letter_image("  ")


# ------------------------------------------------------------------ CLI, demo, bench
def test_cli_help_explains_every_option():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["ising"]
    for action in sub._actions:
        assert action.help and len(action.help) > 10, f"option {action.option_strings} lacks help"
    text = sub.format_help()
    for opt in ["--noise", "--sigma", "--p", "--coupling", "--damping", "--sweeps", "--schedule",
                "--gibbs-sweeps", "--burn-in", "--seed", "--out"]:
        assert opt in text


def test_cli_runs_and_reports_errors(tmp_path, capsys):
    assert main(["ising", "--size", "32", "--noise", "flip", "--gibbs-sweeps", "20",
                 "--burn-in", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mean field" in out and "Gibbs" in out and (tmp_path / "ising_flip.png").exists()
    assert main(["ising", "--size", "16", "--sigma", "0"]) == 2
    assert "sigma must be > 0" in capsys.readouterr().err
    assert main(["ising", "--size", "16", "--damping", "1.5"]) == 2
    assert "damping must lie in (0.0, 1.0]" in capsys.readouterr().err
    np.save(tmp_path / "img.npy", letter_image("T", 16))
    assert main(["ising", "--image", str(tmp_path / "img.npy"), "--gibbs-sweeps", "3",
                 "--burn-in", "1"]) == 0
    assert "16x16 image" in capsys.readouterr().out
    np.save(tmp_path / "bad.npy", np.ones((4, 4), dtype=np.int64))
    assert main(["ising", "--image", str(tmp_path / "bad.npy")]) == 2
    assert "clean must have dtype float32 or float64, got int64" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_writes_its_figures(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "ising_denoise.py"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ["ising_gaussian.png", "ising_flip.png", "ising_elbo.png", "ising_exact.png"]:
        assert (tmp_path / name).stat().st_size > 10_000
    assert "mean field  error" in proc.stdout


@pytest.mark.slow
def test_bench_runs_small(tmp_path):
    out = tmp_path / "ising.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_ising.py"), "--size",
                           "16", "--sweeps", "8", "--loop-sweeps", "1", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "ratio" in proc.stdout
