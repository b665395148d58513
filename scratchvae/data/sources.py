"""From a data source to three splits: the embedded digits, or the files a path names.

:func:`load_dataset` is the front door. For a path it

1. reads the splits the source holds (:func:`read_source`; the formats are in
   :mod:`.formats` and :mod:`.images`);
2. carves a validation split out of the training images when the source has none:
   ``n_valid`` images if given, else ``round(valid_fraction * N)`` (at least 1), drawn without
   replacement with ``numpy.random.default_rng([seed, 1])``; both parts keep the file's order;
3. draws a subset of each split whose count ``n_train``/``n_valid``/``n_test`` is given:
   rows ``sort(default_rng([seed, 2, k]).choice(N, n, replace=False))`` for split k = 0, 1, 2
   (train, valid, test). Never the first N rows: a split ordered by class (the test split of
   the static binarized MNIST is) would give a biased subset;
4. gives an empty test split when the source has none (a single array, CSV, folder or IDX
   file holds training images only);
5. converts to floats when ``dtype`` is given: uint8 grey levels (any value above 1) are
   divided by 255, 0/1 data and floats are cast.

The same seed gives the same splits, so ``evaluate`` finds the validation split ``train`` used.
"""
from __future__ import annotations

import gzip
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..validate import check_in_range, check_int, check_path, check_rng
from .digits import render_digits
from .formats import (AMAT_FILES, SPLITS, Dataset, Splits, check_float_dtype,
                      load_amat_splits, read_npz, to_float_pixels)
from .images import (IMAGE_SUFFIXES, read_csv, read_idx_images, read_image, read_image_folder,
                     read_npy)

NAMES = {k: k for k in ("n_train", "n_valid", "n_test", "valid_fraction", "seed")}
_WORDS = {"train": "training", "valid": "validation", "test": "test"}
_LABELS_BESIDE = (("images", "labels"), ("idx3", "idx1"))
_IDX_NAME = re.compile(r"idx\d[-.]ubyte(\.gz)?$")


# ----------------------------------------------------------------------------- embedded digits
def load_embedded_digits(n_train: int = 10000, n_valid: int = 1000, n_test: int = 1000,
                         seed: int = 0, *, size: int = 28, dtype=np.float32) -> Splits:
    """The default data: rendered digits (see :mod:`scratchvae.data.digits`), no files needed.

    Parameters
    ----------
    n_train, n_valid, n_test : int
        Images per split (n_train >= 1; the others may be 0). Labels are balanced per split.
    seed : int
        Seed (>= 0). Each split has its own stream (``SeedSequence(seed).spawn(3)``), so the
        test set does not change when ``n_train`` does. Same seed -> bit-identical arrays.
    size : int
        Image side in pixels; D = size * size.
    dtype : float32 (default; also for None) or float64

    Returns
    -------
    Splits
        ``x`` (n, size*size) ``dtype`` grey levels in [0, 1] (1 = ink), ``y`` (n,) int64.
    """
    counts = {"n_train": check_int("n_train", n_train, minimum=1),
              "n_valid": check_int("n_valid", n_valid, minimum=0),
              "n_test": check_int("n_test", n_test, minimum=0)}
    seed = check_int("seed", seed, minimum=0)
    size = check_int("size", size, minimum=8)
    check_float_dtype(dtype)
    dtype = np.float32 if dtype is None else dtype        # None: the generator's own float32
    streams = np.random.SeedSequence(seed).spawn(3)
    parts = []
    for n, stream in zip(counts.values(), streams):
        if n == 0:
            parts.append(Dataset(np.zeros((0, size * size), dtype), np.zeros(0, np.int64)))
        else:
            parts.append(Dataset(*render_digits(n, np.random.default_rng(stream), size=size,
                                                dtype=dtype)))
    return Splits(*parts)


# ----------------------------------------------------------------------------- files
def _sibling(path: Path, swaps) -> Path | None:
    """The file beside ``path`` whose name has each (old, new) of ``swaps`` replaced, raw or .gz."""
    name = path.name
    for old, new in swaps:
        name = name.replace(old, new)
    if name == path.name:
        return None
    stem = name[:-3] if name.endswith(".gz") else name
    return next((path.with_name(n) for n in (name, stem + ".gz", stem)
                 if path.with_name(n).is_file()), None)


def _idx_splits(images: Path) -> dict:
    """An IDX image file, its labels beside it (name with images -> labels, idx3 -> idx1) and,
    for a name containing 'train', the test images beside it ('train' -> 't10k' or 'test')."""
    out = {"train": read_idx_images(images, _sibling(images, _LABELS_BESIDE))}
    test = _sibling(images, (("train", "t10k"),)) or _sibling(images, (("train", "test"),))
    if test is not None:
        out["test"] = read_idx_images(test, _sibling(test, _LABELS_BESIDE))
    return out


def _is_idx(path: Path) -> bool:
    """True when the file (raw or gzip) starts like an IDX file: 0 0 <type> <ndim 1..4>."""
    with open(path, "rb") as f:
        head = f.read(4)
    if _is_gzip(path):
        try:
            with gzip.open(path) as f:
                head = f.read(4)
        except (OSError, EOFError):
            return False
    return len(head) == 4 and head[:2] == b"\0\0" and head[2] in (8, 9, 11, 12, 13, 14) \
        and 1 <= head[3] <= 4


def _what(path: Path) -> tuple[str, Path]:
    """(kind, file) of a source path: what :func:`read_source` reads and :func:`image_shape`
    peeks at. Kinds: "amat" (the three splits of binarized MNIST), "idx" (an IDX image file),
    "images" (a folder of PNG/JPEG files), "npz", "npy", "csv"."""
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path} (or use 'embedded')")
    name = path.name.lower()
    if path.is_dir():
        if all((path / f).is_file() for f in AMAT_FILES.values()):
            return "amat", path / AMAT_FILES["train"]
        idx = sorted(f for f in path.iterdir()
                     if f.is_file() and re.search(r"idx3[-.]ubyte", f.name))
        if len(idx) > 1:
            idx = [f for f in idx if "train" in f.name] or idx
        if len(idx) > 1:
            raise ValueError(f"{path} holds several IDX image files "
                             f"({', '.join(f.name for f in idx)}); give the one to train on as the "
                             f"data path")
        if idx:
            return "idx", idx[0]
        if any(f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
               for f in path.iterdir()):
            return "images", path
        raise FileNotFoundError(f"{path} holds neither the files {sorted(AMAT_FILES.values())}, "
                                f"nor an IDX image file (*-idx3-ubyte[.gz]), nor .png/.jpg/.jpeg "
                                f"images")
    for suffix in ("npz", "amat", "npy", "csv"):
        if name.endswith("." + suffix):
            return suffix, path
    if name.endswith(IMAGE_SUFFIXES):
        raise ValueError(f"{path} is a single image; give the folder that holds the images")
    if _IDX_NAME.search(name) or _is_idx(path):
        return "idx", path
    raise ValueError(f"cannot tell the format of {path}: expected 'embedded', a .npz, .npy, .csv "
                     f"or .amat file, an IDX file, or a folder of such files or of PNG/JPEG images")


def read_source(path) -> dict:
    """The splits a file or folder holds, as stored: ``{split: Dataset}`` (train always present).

    A folder: the three ``binarized_mnist_*.amat`` files, else its IDX image file (the one with
    'train' in its name if there are several), else its PNG/JPEG images. A file, by its name:
    ``.npz``, ``.amat`` (with its sibling splits), ``.npy``, ``.csv``, ``*idx?-ubyte[.gz]``;
    any other name is read as IDX if its first bytes are an IDX header.
    """
    kind, file = _what(Path(check_path("path", path)))
    if kind == "amat":
        return dict(zip(SPLITS, load_amat_splits(file)))
    if kind == "idx":
        return _idx_splits(file)
    if kind == "images":
        return {"train": read_image_folder(file)}
    if kind == "npz":
        return read_npz(file)
    return {"train": read_npy(file) if kind == "npy" else read_csv(file)}


def image_shape(source) -> tuple[int, int] | None:
    """(height, width) of the images of ``source`` (``"embedded"`` or a path), for drawing them.

    The loaders return images as flat rows (N, H*W); this says how to fold a row back. It reads
    only what the source stores about its shape: 28 x 28 for the embedded digits and the .amat
    files; the array header of a .npy, or of the training array of a .npz (``train``, else
    ``x_train``, else its single array); the header of an IDX file; the first image of a folder.

    Returns None when the images are stored flat, (N, D): CSV files and 2-D arrays. The arrays
    themselves are not read or checked (:func:`read_source` does that).

    Raises
    ------
    FileNotFoundError
        No such file or folder, or a folder without data files.
    ValueError
        A source :func:`read_source` cannot tell the format of, or a file whose header cannot
        be read (the message names the file).
    """
    if isinstance(source, str) and source == "embedded":
        return (28, 28)
    kind, file = _what(Path(check_path("source", source)))
    if kind in ("amat", "csv"):
        return (28, 28) if kind == "amat" else None
    if kind == "images":
        first = min(f for f in file.iterdir() if f.is_file() and not f.name.startswith(".")
                    and f.suffix.lower() in IMAGE_SUFFIXES)
        return tuple(read_image(first).shape)
    try:
        shape = _stored_shape(kind, file)
    except (OSError, EOFError, ValueError, KeyError, IndexError, struct.error,
            zipfile.BadZipFile) as exc:
        raise ValueError(f"{file}: cannot read the shape of its images ({exc})") from None
    return (int(shape[1]), int(shape[2])) if len(shape) == 3 else None


def _stored_shape(kind: str, file: Path) -> tuple:
    """The array shape a .npy, .npz (its training array) or IDX file declares in its header."""
    if kind == "idx":
        with (gzip.open(file) if _is_gzip(file) else open(file, "rb")) as f:
            ndim = f.read(4)[3]
            return struct.unpack(f">{ndim}I", f.read(4 * ndim))
    if kind == "npy":
        with open(file, "rb") as f:
            return _npy_header_shape(f)
    with zipfile.ZipFile(file) as z:                                          # .npz
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        key = next((k for k in ("train", "x_train") if k in names), None)
        if key is None and len(names) != 1:
            raise ValueError(f"no 'train' or 'x_train' array among {sorted(names)}")
        with z.open((key or names[0]) + ".npy") as f:
            return _npy_header_shape(f)


def _npy_header_shape(f) -> tuple:
    version = np.lib.format.read_magic(f)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    return read(f)[0]


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


# ----------------------------------------------------------------------------- splits
def _rows(ds: Dataset, idx) -> Dataset:
    return Dataset(ds.x[idx], None if ds.y is None else ds.y[idx])


def carve(ds: Dataset, n: int, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
    """Split ``ds`` into ``(rest, carved)``: ``n`` rows (0 <= n <= len) drawn without replacement
    by ``rng``. Both parts keep the stored order."""
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (x, y), got {type(ds).__name__}")
    n = check_int("n", n, minimum=0)
    if n > len(ds.x):
        raise ValueError(f"n must be <= {len(ds.x)} (the rows of ds), got {n}")
    check_rng("rng", rng)
    picked = np.zeros(len(ds.x), dtype=bool)
    picked[rng.choice(len(ds.x), n, replace=False)] = True
    return _rows(ds, ~picked), _rows(ds, picked)


def subset(ds: Dataset, n: int, rng: np.random.Generator) -> Dataset:
    """``n`` rows of ``ds`` drawn without replacement by ``rng``, in the stored order."""
    return carve(ds, n, rng)[1]


def grey_levels(splits) -> bool:
    """True when the stored images are uint8 with a value above 1: 8-bit grey levels 0..255
    (not 0/1 pixels)."""
    return any(p.x.dtype == np.uint8 and p.x.size and p.x.max() > 1 for p in splits)


def load_dataset(source, *, dtype=None, valid_fraction: float = 0.1, n_train: int | None = None,
                 n_valid: int | None = None, n_test: int | None = None, seed: int = 0,
                 names: dict | None = None) -> Splits:
    """Front door: ``"embedded"`` or a path, read, split and subset as the module docstring says.

    Parameters
    ----------
    source : str or Path
        ``"embedded"`` (:func:`load_embedded_digits`), or a file or folder (:func:`read_source`).
    dtype : None, np.float32 or np.float64
        None keeps the stored dtype (uint8 for IDX, .amat, PNG/JPEG and integer CSV; as stored
        for .npz/.npy; float32 for the embedded digits); a float dtype gives values in [0, 1]
        for uint8 data.
    valid_fraction : float in (0, 1)
        Share of the training images carved out for validation when the source has no
        validation split and ``n_valid`` is None.
    n_train, n_valid, n_test : int or None
        Embedded: images rendered per split (None: 10000, 1000, 1000). Files: a random subset
        of that split (None: all); ``n_valid`` images are carved when the source has no
        validation split.
    seed : int >= 0
        Embedded: the rendering seed. Files: the seed of the carve-out and the subsets.
    names : dict, optional
        How messages call the arguments above, e.g. ``{"n_train": "--n-train"}``.

    Returns
    -------
    Splits
        ``x`` (N, D) per split; the test split may be empty (0, D).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or malformed files (the message names the file), counts larger than a split, a
        split too small to carve.
    """
    names = {**NAMES, **(names or {})}
    counts = {s: None if n is None else check_int(names[f"n_{s}"], n, minimum=int(s == "train"))
              for s, n in zip(SPLITS, (n_train, n_valid, n_test))}
    valid_fraction = check_in_range(names["valid_fraction"], valid_fraction, 0.0, 1.0,
                                    low_open=True, high_open=True)
    seed = check_int(names["seed"], seed, minimum=0)
    check_float_dtype(dtype)
    if isinstance(source, str) and source == "embedded":
        given = {f"n_{s}": n for s, n in counts.items() if n is not None}
        return load_embedded_digits(seed=seed, dtype=np.float32 if dtype is None else dtype,
                                    **given)
    parts = read_source(Path(check_path("source", source)))
    train = parts["train"]
    if len(train.x) == 0:
        raise ValueError(f"{source} holds no training images")
    if "valid" not in parts:
        parts["train"], parts["valid"] = _carve_valid(source, train, counts["valid"],
                                                      valid_fraction, seed, names)
        counts["valid"] = None                                     # carved to size already
    for k, s in enumerate(SPLITS):
        if s not in parts:
            parts[s] = _rows(train, slice(0, 0))
        if parts[s].x.shape[1] != train.x.shape[1]:
            raise ValueError(f"{source}: the {_WORDS[s]} images have {parts[s].x.shape[1]} "
                             f"pixels, the training images {train.x.shape[1]}")
        n, have = counts[s], len(parts[s].x)
        if n is not None and n > have:
            raise ValueError(f"{names[f'n_{s}']} must be <= {have} (the {_WORDS[s]} images of "
                             f"{source}), got {n}")
        if n is not None and n < have:
            parts[s] = subset(parts[s], n, np.random.default_rng([seed, 2, k]))
    grey = grey_levels(parts.values())
    return Splits(*(Dataset(to_float_pixels(parts[s].x, dtype, grey), parts[s].y) for s in SPLITS))


def _carve_valid(source, train, n_valid, fraction, seed, names):
    n = len(train.x)
    if n_valid is None:
        n_valid = max(1, int(fraction * n + 0.5))
        if n_valid >= n:
            raise ValueError(f"{source} has {n} training image(s): too few to carve a validation "
                             f"split ({names['valid_fraction']} {fraction} of them) and keep one "
                             f"for training")
    elif n_valid >= n:
        raise ValueError(f"{names['n_valid']} must be < {n} (validation images are carved from "
                         f"the {n} training images of {source}, and one must stay), got {n_valid}")
    return carve(train, n_valid, np.random.default_rng([seed, 1]))
