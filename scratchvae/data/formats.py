"""Reading the formats people download: MNIST IDX (raw or .gz), Larochelle's .amat, .npz.

Every ``load_*`` function returns :class:`Splits` ``(train, valid, test)`` of :class:`Dataset`
``(x, y)``; :func:`read_npz` returns only the splits a file holds (for
:func:`scratchvae.data.load_dataset`, which carves the missing validation split). With
``dtype=None`` a loader returns what the file stores (``uint8``); with ``np.float32`` or
``np.float64`` floats in [0, 1] (grey levels divided by 255). Corrupt, truncated or
mismatched files are refused with a message naming the file and what is wrong.

Formats: MNIST IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): big-endian header
``0 0 <type> <ndim>``, ndim uint32 sizes, then the raw values; images magic 0x00000803,
labels 0x00000801. Larochelle's ``.amat``: one image per line, 784 whitespace-separated 0/1.
"""
from __future__ import annotations

import gzip
import os
import re
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..validate import check_int, check_path

SPLITS = ("train", "valid", "test")
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
AMAT_FILES = {s: f"binarized_mnist_{s}.amat" for s in SPLITS}
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class Dataset(NamedTuple):
    """One split: ``x`` (N, D) images, ``y`` (N,) int64 labels or ``None``."""
    x: np.ndarray
    y: np.ndarray | None


class Splits(NamedTuple):
    """The three splits of a data set."""
    train: Dataset
    valid: Dataset
    test: Dataset


def check_float_dtype(dtype):
    """Require None, np.float32 or np.float64 (TypeError naming ``dtype`` otherwise)."""
    if dtype is None:
        return
    try:
        ok = np.dtype(dtype) in (np.float32, np.float64)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise TypeError(f"dtype must be None, np.float32 or np.float64, got {dtype!r}")


def to_float_pixels(x: np.ndarray, dtype, grey: bool) -> np.ndarray:
    """Return ``x`` as stored (dtype None) or as floats in [0, 1] (grey levels divided by 255)."""
    if dtype is None:
        return x
    out = x.astype(dtype)
    return out / out.dtype.type(255) if grey else out


# ----------------------------------------------------------------------------- file formats
def _read_bytes(path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic bytes."""
    path = Path(check_path("path", path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path} is a corrupt or truncated gzip file ({exc}); "
                             f"delete it and download it again") from None
    return data


def load_idx(path, *, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (raw or .gz) into an array of its stored type and shape.

    Parameters
    ----------
    path : str or Path
    magic : int, optional
        Required magic number, e.g. 0x00000803 (2051) for MNIST images, 0x00000801 (2049) for
        labels.

    Returns
    -------
    np.ndarray
        Shape given by the header (MNIST images (N, 28, 28), labels (N,)), native byte order.

    Raises
    ------
    ValueError
        Wrong magic number, unknown type code, or a payload shorter or longer than the header says.
    """
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file: first bytes {data[:4].hex()}, expected "
                         f"00 00 <type in {sorted(_IDX_TYPES)}> <ndim>")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(f"{path}: magic number {found:#010x}, expected {magic:#010x}")
    ndim, dtype = data[3], np.dtype(_IDX_TYPES[data[2]])
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes, expected {header})")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes but the header (shape {shape}) implies "
                         f"{expected}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(f"{directory} has no {stem}.gz (nor {stem})")


def load_mnist_idx(directory, *, n_valid: int = 10000, dtype=None) -> Splits:
    """MNIST from the four IDX files in ``directory``; valid = the last ``n_valid`` training images.

    Returns
    -------
    Splits
        ``x`` (N, 784) uint8 0..255 (``dtype=None``) or floats in [0, 1]; ``y`` (N,) int64.
        Sizes 60000 - n_valid, n_valid, 10000 for the official files.
    """
    directory, n_valid = Path(check_path("directory", directory)), check_int("n_valid", n_valid, minimum=0)
    check_float_dtype(dtype)
    out = {}
    for split in ("train", "test"):
        img_path, lab_path = (_find(directory, MNIST_FILES[f"{split}_{k}"]) for k in ("images", "labels"))
        images, labels = load_idx(img_path, magic=0x803), load_idx(lab_path, magic=0x801)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{img_path} has {images.shape[0]} images but {lab_path} has "
                             f"{labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{lab_path} has label {labels.max()}, expected 0..9")
        out[split] = (to_float_pixels(images.reshape(len(images), -1), dtype, True), labels.astype(np.int64))
    (x, y), n = out["train"], len(out["train"][0])
    if n_valid > n:
        raise ValueError(f"n_valid must be <= {n} (the training images), got {n_valid}")
    return Splits(Dataset(x[:n - n_valid], y[:n - n_valid]), Dataset(x[n - n_valid:], y[n - n_valid:]),
                  Dataset(*out["test"]))


def load_amat(path, *, width: int = 784) -> np.ndarray:
    """Read one of Larochelle's binarized MNIST ``.amat`` files: (N, width) uint8 0/1.

    Each non-blank line must hold exactly ``width`` whitespace-separated tokens, each "0" or "1".
    Parsed with vectorized byte operations (about 1.5 s of CPU for the 78 MB training file).
    """
    raw = np.frombuffer(_read_bytes(path), np.uint8)
    allowed = np.zeros(256, dtype=bool)
    allowed[list(b"01 \t\r\n")] = True
    digit = (raw == ord("0")) | (raw == ord("1"))
    bad = ~allowed[raw]
    bad[:-1] |= digit[1:] & digit[:-1]                     # two digits in a row: "10", "01", ...
    if bad.any():
        i = int(np.argmax(bad))
        while i > 0 and raw[i - 1] not in b" \t\r\n":                         # start of the token
            i -= 1
        token = bytes(raw[i:i + 12]).split()[0]
        raise ValueError(f"{path}, line {np.count_nonzero(raw[:i] == 10) + 1}: token {token!r} "
                         f"is not 0 or 1 (.amat files hold whitespace-separated 0/1 values)")
    starts = np.r_[0, np.flatnonzero(raw == ord("\n")) + 1]
    starts = starts[starts < raw.size]                                       # (lines,)
    counts = np.add.reduceat(digit, starts, dtype=np.int64) if raw.size else np.zeros(0, int)
    wrong = np.flatnonzero((counts != 0) & (counts != width))
    if wrong.size:
        raise ValueError(f"{path}, line {wrong[0] + 1}: {counts[wrong[0]]} values, expected {width}")
    return (raw[digit] - ord("0")).astype(np.uint8).reshape(-1, width)


def load_amat_splits(path, *, dtype=None) -> Splits:
    """The three ``binarized_mnist_{train,valid,test}.amat`` files, from their directory or any one
    of them (the others are found by replacing the split name). ``x`` uint8 0/1 or float, ``y`` None.
    """
    path = Path(check_path("path", path))
    check_float_dtype(dtype)
    if path.is_dir():
        paths = {s: path / AMAT_FILES[s] for s in SPLITS}
    else:
        match = re.search(r"(train|valid|test)(?!.*(train|valid|test))", path.name)
        if match is None:
            raise ValueError(f"{path}: an .amat file name must contain train, valid or test")
        paths = {s: path.with_name(path.name[:match.start()] + s + path.name[match.end():])
                 for s in SPLITS}
    return Splits(*(Dataset(to_float_pixels(load_amat(paths[s]), dtype, False), None) for s in SPLITS))


def check_stored(path, name: str, x: np.ndarray) -> np.ndarray:
    """Images as a file stores them: (N, D), or (N, H, W) flattened row-major to (N, H*W);
    uint8 (grey levels 0..255 or 0/1) or float. Anything else is refused naming ``path``."""
    if (x.dtype != np.uint8 and x.dtype.kind != "f") or x.ndim not in (2, 3):
        hint = ""
        if x.ndim == 4 and x.shape[-1] in (3, 4):
            hint = "; colour images must be converted to grey first"
        elif x.dtype.kind in "iub" and x.ndim in (2, 3):
            hint = "; store 8-bit grey levels 0..255 as x.astype(np.uint8)"
        raise ValueError(f"{path}: {name} must be uint8 or float with shape (N, D) or (N, H, W), "
                         f"got {x.dtype} {x.shape}{hint}")
    return x.reshape(len(x), -1)


def read_npz(path) -> dict:
    """The splits an ``.npz`` holds, as stored: ``{split: Dataset}`` for the splits present.

    Layouts: a single array under any name (the training images); ``train`` with optional
    ``valid`` and ``test``, labels ``<split>_labels``; or Keras style ``x_train`` with optional
    ``x_valid`` and ``x_test``, labels ``y_<split>``. Images (N, D) or (N, H, W), uint8 or float;
    labels (N,) integers, returned as int64.
    """
    path = Path(check_path("path", path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, AttributeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz archive of numeric arrays ({exc})") from None
    if len(arrays) == 1:
        keys, labels = {"train": next(iter(arrays))}, {}
    elif "train" in arrays or "x_train" in arrays:
        style = "train" in arrays
        keys = {s: s if style else f"x_{s}" for s in SPLITS if (s if style else f"x_{s}") in arrays}
        labels = {s: f"{s}_labels" if style else f"y_{s}" for s in keys}
    else:
        raise ValueError(f"{path} has keys {sorted(arrays)}; expected one array, or 'train' "
                         f"(+ optional 'valid', 'test', '<split>_labels'), or 'x_train' "
                         f"(+ optional 'x_valid', 'x_test', 'y_<split>')")
    out = {}
    for s, key in keys.items():
        x = check_stored(path, s, arrays[key])
        y = arrays.get(labels.get(s))
        if y is not None and (y.shape != (len(x),) or y.dtype.kind not in "iu"):
            raise ValueError(f"{path}: labels of {s} must have shape ({len(x)},) and an integer "
                             f"dtype, got {y.dtype} {y.shape}")
        out[s] = Dataset(x, None if y is None else y.astype(np.int64))
    return out


def load_npz(path, *, n_valid: int = 10000, dtype=None) -> Splits:
    """An ``.npz`` (layouts in :func:`read_npz`); a missing valid split is the last ``n_valid``
    training images, a missing test split is empty. (:func:`scratchvae.data.load_dataset`
    instead carves a random validation split.)

    uint8 arrays are returned as stored with ``dtype=None``; with a float ``dtype`` they are
    divided by 255 if any split has a value above 1 (grey levels), else cast (0/1 data). Float
    arrays are returned unchanged or cast.
    """
    n_valid = check_int("n_valid", n_valid, minimum=0)
    check_float_dtype(dtype)
    parts = read_npz(path)
    if "valid" not in parts:
        (x, y), n = parts["train"], len(parts["train"].x)
        if n_valid > n:
            raise ValueError(f"n_valid must be <= {n} (the training images), got {n_valid}")
        parts["train"] = Dataset(x[:n - n_valid], None if y is None else y[:n - n_valid])
        parts["valid"] = Dataset(x[n - n_valid:], None if y is None else y[n - n_valid:])
    if "test" not in parts:
        x, y = parts["train"]
        parts["test"] = Dataset(x[:0], None if y is None else y[:0])
    grey = any(p.x.dtype == np.uint8 and p.x.size and p.x.max() > 1 for p in parts.values())
    return Splits(*(Dataset(to_float_pixels(parts[s].x, dtype, grey), parts[s].y) for s in SPLITS))
