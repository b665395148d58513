"""Embedded digits: determinism, shapes, ranges, balance, MNIST-like geometry, legibility, errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchvae.data.digits import DEFAULT_STYLES, STYLES, render_digits


@pytest.fixture(scope="module")
def batch():
    return render_digits(1000, np.random.default_rng(0))


def test_same_seed_is_bit_identical():
    a, la = render_digits(64, np.random.default_rng(7))
    b, lb = render_digits(64, np.random.default_rng(7))
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)


def test_different_seeds_differ():
    a, _ = render_digits(64, np.random.default_rng(1))
    b, _ = render_digits(64, np.random.default_rng(2))
    assert not np.array_equal(a, b)


def test_shapes_dtype_and_range(batch):
    x, y = batch
    assert x.shape == (1000, 784) and x.dtype == np.float32
    assert y.shape == (1000,) and y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    assert x.min() == 0.0 and x.max() == 1.0 and np.all(np.isfinite(x))


def test_image_size_flatten_and_dtype_options():
    x, y = render_digits(12, np.random.default_rng(0), size=16, flatten=False, dtype=np.float64)
    assert x.shape == (12, 16, 16) and x.dtype == np.float64 and y.shape == (12,)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_labels_are_balanced():
    _, y = render_digits(203, np.random.default_rng(3))
    counts = np.bincount(y, minlength=10)
    assert counts.min() == 20 and counts.max() == 21, counts


def test_every_style_draws_solid_centred_digits():
    for style in STYLES:
        x, y = render_digits(20, np.random.default_rng(5), styles=[style], flatten=False)
        ink = x.mean(axis=(1, 2))
        assert np.all((ink > 0.04) & (ink < 0.4)), (style, ink)
        assert np.all(x.max(axis=(1, 2)) == 1.0), style                 # strokes reach full ink
        assert np.all(x[:, :2, :2] == 0) and np.all(x[:, -2:, -2:] == 0), style   # empty corners


def test_geometry_is_mnist_like(batch):
    """Centre of mass near the image centre, ink height about 20 of 28 pixels, mean grey near
    MNIST's 0.1307 (tolerances stated in the assertions)."""
    x = batch[0].reshape(-1, 28, 28).astype(np.float64)
    grid = np.arange(28) + 0.5
    mass = x.sum(axis=(1, 2))
    com_r = (x.sum(axis=2) @ grid) / mass
    com_c = (x.sum(axis=1) @ grid) / mass
    assert abs(com_r.mean() - 14) < 1.0 and abs(com_c.mean() - 14) < 1.0, (com_r.mean(), com_c.mean())
    assert np.all(np.hypot(com_r - 14, com_c - 14) < 5)
    rows = x.max(axis=2) > 0.5
    height = 28 - np.argmax(rows[:, ::-1], axis=1) - np.argmax(rows, axis=1)
    assert 17 <= np.median(height) <= 23, np.median(height)
    assert 0.09 < x.mean() < 0.18, f"mean grey {x.mean():.3f}, MNIST has 0.1307"


def test_labels_match_images(batch):
    """Nearest class mean trained on 1000 images must label 500 fresh ones >= 75% right
    (chance is 10%): the digits are legible and the labels are the digits drawn."""
    x, y = batch
    means = np.stack([x[y == k].mean(axis=0) for k in range(10)])           # (10, 784)
    xt, yt = render_digits(500, np.random.default_rng(99))
    pred = np.argmin(((xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    accuracy = np.mean(pred == yt)
    assert accuracy >= 0.75, f"nearest-class-mean accuracy {accuracy:.3f} < 0.75"


def test_resolution_independent_jitter():
    """The same seed at size 56, averaged 2x2, is close to size 28 (jitter is in 28-px units)."""
    small, _ = render_digits(30, np.random.default_rng(4), flatten=False)
    big, _ = render_digits(30, np.random.default_rng(4), size=56, flatten=False)
    pooled = big.reshape(30, 28, 2, 28, 2).mean(axis=(2, 4))
    assert np.abs(pooled - small).mean() < 0.03


def test_default_styles_are_known_and_weighted_to_pens():
    assert set(DEFAULT_STYLES) == set(STYLES)
    pen = sum(s.startswith("pen") for s in DEFAULT_STYLES) / len(DEFAULT_STYLES)
    assert 0.3 < pen < 0.5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": 0}, ValueError, "n must be >= 1"),
    ({"n": 2.5}, TypeError, "n must be an integer"),
    ({"rng": 0}, TypeError, "rng must be a numpy.random.Generator"),
    ({"size": 4}, ValueError, "size must be >= 8"),
    ({"styles": ["comic-sans"]}, ValueError, "styles must be"),
    ({"styles": []}, ValueError, "styles must be"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
])
def test_argument_errors(kwargs, error, match):
    args = {"n": 4, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=match):
        render_digits(args.pop("n"), args.pop("rng"), **args)


def test_import_does_not_load_matplotlib_or_scipy():
    code = ("import sys, scratchvae.data, scratchvae.data.digits, scratchvae.data.download; "
            "print(sorted(m for m in ('matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stdout
