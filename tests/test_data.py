"""Data: embedded splits, binarization, check_data errors, IDX / .amat / .npz round trips and refusals."""
import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from scratchvae import data
from scratchvae.data import (Dataset, Splits, binarize, binarize_static, check_data, load_amat,
                             load_amat_splits, load_dataset, load_embedded_digits, load_idx,
                             load_mnist_idx, load_npz)

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"

SHARED_NPZ = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binarized_mnist.npz"
SHARED_SHA256 = "7a049ae3a0d88e964af4b41bbdb14e4303595e1c5de65f8bd2455cdcebb3514b"


# ----------------------------------------------------------------------------- writers (ours)
def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding: 0 0 type ndim, big-endian uint32 sizes, big-endian values."""
    big = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big).tobytes()


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08, gz: bool = True) -> Path:
    raw = idx_bytes(array, type_code)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_mnist(folder: Path, rng, n_train=30, n_test=10, gz=True):
    """Four MNIST-named IDX files with random images and labels; returns the arrays."""
    folder.mkdir(exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, gz=gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, gz=gz)
        arrays[split] = (images, labels)
    return arrays


def write_amat(path: Path, x: np.ndarray, newline: str = "\n") -> Path:
    path.write_text(newline.join(" ".join(str(v) for v in row) for row in x) + newline)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- embedded digits
def test_embedded_splits_shapes_dtype_and_determinism():
    a = load_embedded_digits(60, 20, 10, seed=3)
    b = load_embedded_digits(60, 20, 10, seed=3)
    assert isinstance(a, Splits) and isinstance(a.train, Dataset)
    for part, n in zip(a, (60, 20, 10)):
        assert part.x.shape == (n, 784) and part.x.dtype == np.float32
        assert part.y.shape == (n,) and part.y.dtype == np.int64
        assert 0.0 <= part.x.min() and part.x.max() <= 1.0
    for pa, pb in zip(a, b):
        assert pa.x.tobytes() == pb.x.tobytes() and np.array_equal(pa.y, pb.y)
    assert not np.array_equal(a.train.x[:10], load_embedded_digits(60, 20, 10, seed=4).train.x[:10])


def test_embedded_splits_are_independent_streams():
    """Changing n_train must not change the test set (each split has its own seed stream)."""
    a = load_embedded_digits(30, 10, 10, seed=0)
    b = load_embedded_digits(50, 10, 10, seed=0)
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.valid.x, b.valid.x)
    assert not np.array_equal(a.train.x[:10], a.test.x)


def test_embedded_options_and_empty_splits():
    s = load_embedded_digits(10, 0, 0, seed=1, size=16, dtype=np.float64)
    assert s.train.x.shape == (10, 256) and s.train.x.dtype == np.float64
    assert s.valid.x.shape == (0, 256) and s.test.y.shape == (0,)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_train": 0}, ValueError, "n_train must be >= 1"),
    ({"n_valid": -1}, ValueError, "n_valid must be >= 0"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"seed": 1.5}, TypeError, "seed must be an integer"),
    ({"dtype": np.uint8}, TypeError, "dtype must be None, np.float32 or np.float64"),
])
def test_embedded_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_embedded_digits(**{"n_train": 5, "n_valid": 1, "n_test": 1, **kwargs})


# ----------------------------------------------------------------------------- binarization
def test_dynamic_binarize_is_reproducible_fresh_and_unbiased():
    x = np.full((200, 500), 0.3)
    a = binarize(x, np.random.default_rng(0))
    b = binarize(x, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    first, second = binarize(x, rng), binarize(x, rng)
    assert np.array_equal(a, b) and np.array_equal(a, first)
    assert not np.array_equal(first, second), "each call must draw fresh noise"
    assert a.dtype == np.float64 and set(np.unique(a)) == {0.0, 1.0}
    # 100000 draws of Bern(0.3): sd of the mean 0.00145; tolerance 0.0075 is over 5 sd
    assert abs(a.mean() - 0.3) < 0.0075, a.mean()


def test_dynamic_binarize_keeps_float32_and_extremes():
    x = np.array([[0.0, 1.0, 0.0, 1.0]], dtype=np.float32)
    out = binarize(x, np.random.default_rng(5))
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_static_threshold_and_bernoulli():
    x = np.array([[0.2, 0.5, 0.51, 1.0]], dtype=np.float32)
    assert np.array_equal(binarize_static(x), [[0, 0, 1, 1]])                  # strictly > 0.5
    assert np.array_equal(binarize_static(x, threshold=0.1), [[1, 1, 1, 1]])
    g = np.random.default_rng(2).random((50, 784))
    s1, s2 = binarize_static(g, "bernoulli", seed=7), binarize_static(g, "bernoulli", seed=7)
    assert np.array_equal(s1, s2) and np.array_equal(s1, binarize(g, np.random.default_rng(7)))
    assert binarize_static(g, "bernoulli", seed=7).dtype == np.float64


@pytest.mark.parametrize("call, error, match", [
    (lambda: binarize(np.zeros((2, 3), np.uint8), np.random.default_rng(0)), TypeError, "float32 or float64"),
    (lambda: binarize(np.full((2, 3), 1.5), np.random.default_rng(0)), ValueError, r"in \[0, 1\]"),
    (lambda: binarize(np.zeros((2, 3)), 0), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: binarize_static(np.zeros((2, 3)), "otsu"), ValueError, "method must be"),
    (lambda: binarize_static(np.zeros((2, 3)), threshold=1.5), ValueError, r"threshold must lie in \[0.0, 1.0\]"),
    (lambda: binarize_static(np.array([[np.nan]])), ValueError, "NaN"),
])
def test_binarize_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------- check_data
def test_check_data_accepts_fitting_data():
    binary = (np.random.default_rng(0).random((4, 784)) > 0.5).astype(np.float32)
    grey = np.random.default_rng(0).random((4, 784))
    assert check_data(binary, "bernoulli", width=784) is binary
    assert check_data(grey, "bernoulli", "dynamic") is grey
    assert check_data(grey, "bernoulli", "static") is grey
    assert check_data(grey, "gaussian") is grey


@pytest.mark.parametrize("x, kwargs, error, match", [
    (np.zeros((2, 784)), {"likelihood": "poisson"}, ValueError, "likelihood must be one of"),
    (np.zeros((2, 784)), {"binarize": "sometimes"}, ValueError, "binarize must be None, 'static' or 'dynamic'"),
    (np.zeros((2, 784), np.uint8), {}, TypeError, "x must have dtype float32 or float64, got uint8"),
    ([[0.0, 1.0]], {}, TypeError, "x must be a numpy.ndarray"),
    (np.zeros(784), {}, ValueError, r"x must be 2-dimensional \(N, D\).*got shape \(784,\)"),
    (np.zeros((2, 28, 28)), {}, ValueError, r"got shape \(2, 28, 28\)"),
    (np.zeros((0, 784)), {}, ValueError, "at least one row"),
    (np.array([[0.0, np.nan]]), {}, ValueError, "1 NaN or infinite"),
    (np.array([[0.0, np.inf]]), {}, ValueError, "1 NaN or infinite"),
    (np.zeros((2, 100)), {"width": 784}, ValueError, r"x must have width 784 .*got 100"),
    (np.array([[0.0, 1.2]]), {"likelihood": "bernoulli", "binarize": "dynamic"}, ValueError, r"values in \[0, 1\], got min 0.0 and max 1.2"),
    (np.array([[-0.1, 1.0]]), {}, ValueError, r"values in \[0, 1\], got min -0.1"),
    (np.array([[0.0, 0.5, 1.0]]), {}, ValueError, "1 non-binary pixel.*pass binarize='static' or 'dynamic'"),
])
def test_check_data_refusals(x, kwargs, error, match):
    args = {"likelihood": "bernoulli", **kwargs}
    with pytest.raises(error, match=match):
        check_data(x, args.pop("likelihood"), **args)


def test_check_data_names_the_argument():
    with pytest.raises(ValueError, match="x_valid must have width 784"):
        check_data(np.zeros((2, 10)), "gaussian", width=784, name="x_valid")


# ----------------------------------------------------------------------------- MNIST IDX
def test_mnist_idx_round_trip(tmp_path, rng):
    arrays = write_mnist(tmp_path / "mnist", rng)
    s = load_mnist_idx(tmp_path / "mnist", n_valid=10)
    (tr_x, tr_y), (te_x, te_y) = arrays["train"], arrays["t10k"]
    assert s.train.x.shape == (20, 784) and s.valid.x.shape == (10, 784) and s.test.x.shape == (10, 784)
    assert s.train.x.dtype == np.uint8 and s.train.y.dtype == np.int64
    assert np.array_equal(s.train.x, tr_x[:20].reshape(20, -1)) and np.array_equal(s.valid.y, tr_y[20:])
    assert np.array_equal(s.test.x, te_x.reshape(10, -1)) and np.array_equal(s.test.y, te_y)
    f = load_mnist_idx(tmp_path / "mnist", n_valid=10, dtype=np.float32)
    assert f.train.x.dtype == np.float32 and np.allclose(f.train.x * 255, s.train.x)
    assert f.train.x.max() <= 1.0


def test_idx_uncompressed_files_and_front_door(tmp_path, rng):
    write_mnist(tmp_path / "raw", rng, gz=False)
    s = load_dataset(tmp_path / "raw", n_valid=5)
    assert s.train.x.shape == (25, 784)
    t = load_dataset(str(tmp_path / "raw" / "train-images-idx3-ubyte"), n_valid=5, dtype=np.float64)
    assert t.test.x.dtype == np.float64 and np.array_equal(t.test.y, s.test.y)


@pytest.mark.parametrize("array, code", [
    (np.arange(-6, 6, dtype=np.int16).reshape(3, 4), 0x0B),
    (np.linspace(-1, 1, 10).astype(np.float32), 0x0D),
    (np.linspace(-1, 1, 24).reshape(2, 3, 4), 0x0E),
])
def test_load_idx_other_types(tmp_path, array, code):
    out = load_idx(write_idx(tmp_path / "a.idx.gz", array, code))
    assert out.shape == array.shape and np.array_equal(out, array) and out.dtype.isnative


def test_idx_refusals(tmp_path, rng):
    images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    good = idx_bytes(images)
    cases = {
        "truncated": (gzip.compress(good[:-7]), "truncated or corrupt"),
        "too long": (gzip.compress(good + b"\0"), "truncated or corrupt"),
        "not idx": (gzip.compress(b"PK\x03\x04" + good[4:]), "not an IDX file"),
        "bad type": (gzip.compress(b"\0\0\x42\x03" + good[4:]), "not an IDX file"),
        "short header": (gzip.compress(b"\0\0\x08\x03\0\0"), "truncated header"),
        "broken gzip": (gzip.compress(good)[:-20], "corrupt or truncated gzip"),
    }
    for name, (blob, match) in cases.items():
        (tmp_path / "f.gz").write_bytes(blob)
        with pytest.raises(ValueError, match=match):
            load_idx(tmp_path / "f.gz")
    write_idx(tmp_path / "labels.gz", rng.integers(0, 10, 4, dtype=np.uint8))
    with pytest.raises(ValueError, match="magic number 0x00000801, expected 0x00000803"):
        load_idx(tmp_path / "labels.gz", magic=0x803)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_idx(tmp_path / "absent.gz")


def test_mnist_set_refusals(tmp_path, rng):
    folder = tmp_path / "m"
    write_mnist(folder, rng)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(ValueError, match="has 10 images but .* has 9 labels"):
        load_mnist_idx(folder, n_valid=0)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, np.uint8))
    with pytest.raises(ValueError, match="label 12, expected 0..9"):
        load_mnist_idx(folder, n_valid=0)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="n_valid must be <= 30"):
        load_mnist_idx(folder, n_valid=31)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist_idx(folder)


# ----------------------------------------------------------------------------- .amat
def test_amat_round_trip_and_splits(tmp_path, rng):
    xs = {s: rng.integers(0, 2, (n, 784), dtype=np.uint8) for s, n in zip(data.SPLITS, (5, 3, 4))}
    for s, x in xs.items():
        write_amat(tmp_path / f"binarized_mnist_{s}.amat", x, newline="\r\n" if s == "test" else "\n")
    assert np.array_equal(load_amat(tmp_path / "binarized_mnist_train.amat"), xs["train"])
    for source in (tmp_path, tmp_path / "binarized_mnist_valid.amat"):
        s = load_dataset(source)
        assert [p.x.shape[0] for p in s] == [5, 3, 4] and s.train.y is None
        assert s.test.x.dtype == np.uint8 and np.array_equal(s.test.x, xs["test"])
    f = load_amat_splits(tmp_path, dtype=np.float32)
    assert f.valid.x.dtype == np.float32 and np.array_equal(f.valid.x, xs["valid"])


def test_amat_blank_lines_and_width(tmp_path):
    (tmp_path / "a.amat").write_text("\n0 1 1\n\n1 0 0\n\n")
    assert np.array_equal(load_amat(tmp_path / "a.amat", width=3), [[0, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize("text, match", [
    ("0 1 0\n0 1\n", "line 2: 2 values, expected 3"),
    ("0 1 0\n0 2 1\n", "line 2: token b'2' is not 0 or 1"),
    ("0 1 0\n1 0 10\n", "line 2: token b'10' is not 0 or 1"),
    ("0.0 1 0\n", "line 1: token b'0.0' is not 0 or 1"),
    ("0,1,0\n", "line 1: token b'0,1,0' is not 0 or 1"),
])
def test_amat_refusals(tmp_path, text, match):
    (tmp_path / "bad.amat").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_amat(tmp_path / "bad.amat", width=3)


def test_amat_name_without_split(tmp_path):
    write_amat(tmp_path / "digits.amat", np.zeros((1, 784), np.uint8))
    with pytest.raises(ValueError, match="must contain train, valid or test"):
        load_amat_splits(tmp_path / "digits.amat")


# ----------------------------------------------------------------------------- .npz
def test_npz_round_trip_with_labels(tmp_path, rng):
    arrays = {s: rng.integers(0, 2, (n, 784), dtype=np.uint8) for s, n in zip(data.SPLITS, (6, 2, 3))}
    labels = {f"{s}_labels": rng.integers(0, 10, len(arrays[s])) for s in data.SPLITS}
    np.savez_compressed(tmp_path / "d.npz", **arrays, **labels)
    s = load_dataset(tmp_path / "d.npz")
    assert s.train.x.dtype == np.uint8 and np.array_equal(s.train.x, arrays["train"])
    assert np.array_equal(s.test.y, labels["test_labels"]) and s.test.y.dtype == np.int64
    f = load_npz(tmp_path / "d.npz", dtype=np.float64)          # 0/1 data: cast, not divided
    assert f.valid.x.dtype == np.float64 and np.array_equal(f.valid.x, arrays["valid"])


def test_npz_keras_style_grey_levels(tmp_path, rng):
    x_train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=np.arange(12) % 10,
             x_test=x_test, y_test=np.arange(4))
    s = load_npz(tmp_path / "mnist.npz", n_valid=2, dtype=np.float32)
    assert [p.x.shape for p in s] == [(10, 784), (2, 784), (4, 784)]
    assert np.allclose(s.valid.x * 255, x_train[10:].reshape(2, -1)) and s.valid.x.max() <= 1
    assert np.array_equal(s.valid.y, [0, 1])


@pytest.mark.parametrize("arrays, match", [
    ({"images": np.zeros((2, 784), np.uint8), "targets": np.zeros(2, np.uint8)},
     "has keys \\['images', 'targets'\\]; expected one array, or 'train'"),
    ({"train": np.zeros((2, 784), np.int64), "valid": np.zeros((1, 784), np.uint8),
      "test": np.zeros((1, 784), np.uint8)}, "train must be uint8 or float"),
    ({"train": np.zeros(784, np.uint8), "valid": np.zeros((1, 784), np.uint8),
      "test": np.zeros((1, 784), np.uint8)}, r"shape \(N, D\) or \(N, H, W\), got uint8 \(784,\)"),
    ({"train": np.zeros((2, 784), np.uint8), "valid": np.zeros((1, 784), np.uint8),
      "test": np.zeros((1, 784), np.uint8), "train_labels": np.zeros(3)}, r"labels of train must have shape \(2,\)"),
])
def test_npz_refusals(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz(tmp_path / "bad.npz")


# ----------------------------------------------------------------------------- front door
def test_load_dataset_embedded_and_refusals(tmp_path):
    s = load_dataset("embedded", n_train=20, n_valid=10, n_test=10, seed=2)
    assert s.train.x.shape == (20, 784) and s.train.x.dtype == np.float32
    assert load_dataset("embedded", dtype=np.float64, n_train=10, n_valid=0, n_test=0).train.x.dtype == np.float64
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_dataset(tmp_path / "nothing.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_dataset(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither"):
        load_dataset(tmp_path / "empty")
    np.savez(tmp_path / "d.npz", train=np.zeros((2, 4), np.uint8), valid=np.zeros((1, 4), np.uint8),
             test=np.zeros((1, 4), np.uint8))
    with pytest.raises(ValueError, match="n_train must be <= 2 .the training images of"):
        load_dataset(tmp_path / "d.npz", n_train=3)


# ----------------------------------------------------------------------------- shared benchmark data
@pytest.mark.skipif(not SHARED_NPZ.is_file(),
                    reason=f"benchmark data {SHARED_NPZ} absent (only the development checkout has it)")
@pytest.mark.slow
def test_shared_binarized_mnist():
    digest = hashlib.sha256(SHARED_NPZ.read_bytes()).hexdigest()
    assert digest == SHARED_SHA256, f"sha256 of {SHARED_NPZ} is {digest}"
    s = load_dataset(SHARED_NPZ)
    assert [p.x.shape for p in s] == [(50000, 784), (10000, 784), (10000, 784)]
    assert all(p.x.dtype == np.uint8 and p.y is None for p in s)
    assert set(np.unique(s.valid.x)) == {0, 1}
    x = load_dataset(SHARED_NPZ, dtype=np.float32).test.x
    assert check_data(x, "bernoulli", width=784) is x


def test_gaussian_likelihood_accepts_real_valued_data():
    x = np.array([[-3.5, 0.0, 7.25]])
    assert check_data(x, "gaussian") is x
