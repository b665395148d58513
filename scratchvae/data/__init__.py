"""Data in and out of the models: embedded digits, file loaders, binarization and checks.

Every loader returns :class:`Splits` ``(train, valid, test)`` of :class:`Dataset` ``(x, y)``:
``x`` is (N, D) with one flattened row-major image per row, ``y`` (N,) int64 labels or ``None``.

dtype is never changed behind your back. With ``dtype=None`` a file loader returns what the
file stores: ``uint8`` grey levels 0..255 (MNIST IDX) or ``uint8`` 0/1 (``.amat``, binarized
``.npz``). With ``dtype=np.float32`` or ``np.float64`` it returns floats in [0, 1]: grey levels
are divided by 255, 0/1 data are cast. The embedded digits are floats in [0, 1] (float32
unless asked otherwise).

Binarization, for the Bernoulli likelihood p(x|z) = prod_d mu_d^x_d (1 - mu_d)^(1 - x_d),
which needs x in {0, 1}:

* static, once, before training: ``x > threshold``, or one Bernoulli draw x_b ~ Bern(x) with a
  fixed seed (the static binarized MNIST of Larochelle & Murray 2011 is such a draw);
* dynamic, a fresh draw x_b ~ Bern(x) each time a minibatch is used (:func:`binarize`), which
  acts as data augmentation and is the other convention of the VAE literature (e.g. Burda,
  Grosse & Salakhutdinov 2016). Log-likelihoods of the two are not comparable.

The file-format readers live in :mod:`scratchvae.data.formats` and are re-exported here.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..validate import check_float_array, check_in_range, check_int, check_rng
from .digits import render_digits
from .formats import (  # noqa: F401  (re-exported)
    AMAT_FILES, MNIST_FILES, SPLITS, Dataset, Splits, check_float_dtype, to_float_pixels, load_amat,
    load_amat_splits, load_idx, load_mnist_idx, load_npz)

LIKELIHOODS = ("bernoulli", "gaussian")


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


# ----------------------------------------------------------------------------- binarization
def _check_unit(name: str, x) -> np.ndarray:
    check_float_array(name, x)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must have values in [0, 1], got min {x.min()} and max {x.max()}")
    return x


def one_hot(labels, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Rows e_{labels[b]} of the C x C identity: integer labels (N,) -> (N, n_classes) floats.

    The label input of a conditional VAE (``VAE(..., n_classes=C)``).
    """
    check_int("n_classes", n_classes, minimum=1)
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer numpy.ndarray, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-dimensional, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return np.eye(n_classes, dtype=dtype)[labels]


def binarize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dynamic binarization: a fresh Bernoulli draw ``x_b ~ Bern(x)``; call it per minibatch.

    Parameters
    ----------
    x : np.ndarray, any shape, float32 or float64
        Probabilities of ink, in [0, 1].
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray, same shape and dtype as ``x``
        0/1 values; ``E[x_b] = x``.

    Notes
    -----
    ``x_b = 1[u < x]`` with ``u ~ U[0, 1)`` drawn in ``x.dtype``, so ``x = 0`` never and
    ``x = 1`` always gives ink.
    """
    _check_unit("x", x)
    check_rng("rng", rng)
    return (rng.random(x.shape, dtype=x.dtype) < x).astype(x.dtype)


def binarize_static(x: np.ndarray, method: str = "threshold", *, threshold: float = 0.5,
                    seed: int = 0) -> np.ndarray:
    """Static binarization, done once: ``x > threshold``, or one Bernoulli draw with a fixed seed.

    Parameters
    ----------
    x : np.ndarray, any shape, float32 or float64, values in [0, 1]
    method : {"threshold", "bernoulli"}
        "threshold": ``x_b = 1[x > threshold]`` (deterministic). "bernoulli": ``x_b ~ Bern(x)``
        drawn once with ``numpy.random.default_rng(seed)`` (as Larochelle & Murray 2011 did).
    threshold : float in [0, 1]
    seed : int >= 0

    Returns
    -------
    np.ndarray, same shape and dtype as ``x``, values 0/1.
    """
    _check_unit("x", x)
    if method == "threshold":
        t = check_in_range("threshold", threshold, 0.0, 1.0)
        return (x > x.dtype.type(t)).astype(x.dtype)
    if method == "bernoulli":
        return binarize(x, np.random.default_rng(check_int("seed", seed, minimum=0)))
    raise ValueError(f"method must be 'threshold' or 'bernoulli', got {method!r}")


# ----------------------------------------------------------------------------- validation
def check_data(x, likelihood: str, binarize: str | None = None, *, width: int | None = None,
               name: str = "x") -> np.ndarray:
    """Refuse data that does not fit the likelihood; return ``x`` unchanged when it does.

    Parameters
    ----------
    x : np.ndarray, (N, D), float32 or float64
        One flattened image per row.
    likelihood : {"bernoulli", "gaussian"}
    binarize : {None, "static", "dynamic"}
        Binarization the caller will apply. For "bernoulli" without it, every pixel must be 0 or 1.
    width : int, optional
        Required D (the model's input size).
    name : str
        Argument name used in messages.

    Raises
    ------
    TypeError
        ``x`` not a float32/float64 ndarray (uint8 must be converted explicitly).
    ValueError
        Wrong ndim, no rows, NaN/inf, wrong width, values outside [0, 1] for "bernoulli" (they are
        probabilities of ink; a Gaussian likelihood takes any real value), non-binary pixels for
        "bernoulli" without binarization, unknown likelihood or binarize.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if binarize not in (None, "static", "dynamic"):
        raise ValueError(f"binarize must be None, 'static' or 'dynamic', got {binarize!r}")
    if isinstance(x, np.ndarray) and x.dtype.kind in "uib":
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}; convert "
                        f"explicitly (load with dtype=np.float32, which also maps 0..255 to [0, 1])")
    if isinstance(x, np.ndarray) and x.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (N, D), one flattened image per row; "
                         f"got shape {x.shape}")
    check_float_array(name, x, ndim=2)
    if x.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row, got shape {x.shape}")
    if width is not None and x.shape[1] != check_int("width", width, minimum=1):
        raise ValueError(f"{name} must have width {width} (pixels per row), got {x.shape[1]} "
                         f"(shape {x.shape})")
    if likelihood == "bernoulli":
        _check_unit(name, x)
    if likelihood == "bernoulli" and binarize is None:
        bad = (x != 0) & (x != 1)
        if bad.any():
            raise ValueError(f"{name} has {int(bad.sum())} non-binary pixel(s) (e.g. {x[bad][0]!r}); "
                             f"likelihood='bernoulli' needs 0/1 data: pass binarize='static' or "
                             f"'dynamic', or binarize it first")
    return x


def load_dataset(source, *, dtype=None, **options) -> Splits:
    """Front door: ``"embedded"`` or a path; the format is chosen from the name.

    Parameters
    ----------
    source : str or Path
        ``"embedded"`` -> :func:`load_embedded_digits`; a ``.npz`` file -> :func:`load_npz`;
        an ``.amat`` file, or a directory holding ``binarized_mnist_*.amat`` ->
        :func:`load_amat_splits`; an ``*-idx?-ubyte[.gz]`` file, or a directory holding the MNIST
        IDX files -> :func:`load_mnist_idx`.
    dtype : None, np.float32 or np.float64
        None keeps the stored dtype (uint8 for IDX and .amat, as stored for .npz, float32 for
        the embedded digits); a float dtype gives values in [0, 1].
    **options
        Passed to the loader (e.g. ``n_train``, ``seed`` for "embedded"; ``n_valid`` for IDX/npz).

    Returns
    -------
    Splits
    """
    if isinstance(source, str) and source == "embedded":
        return load_embedded_digits(dtype=np.float32 if dtype is None else dtype, **options)
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path} (or use 'embedded')")
    name = path.name.lower()
    if path.is_dir():
        if all((path / f).is_file() for f in AMAT_FILES.values()):
            return load_amat_splits(path, dtype=dtype, **options)
        if any(path.glob("train-images[-.]idx3-ubyte*")):
            return load_mnist_idx(path, dtype=dtype, **options)
        raise FileNotFoundError(f"{path} holds neither {sorted(AMAT_FILES.values())} nor the "
                                f"MNIST IDX files {sorted(f + '.gz' for f in MNIST_FILES.values())}")
    if name.endswith(".npz"):
        return load_npz(path, dtype=dtype, **options)
    if name.endswith(".amat"):
        return load_amat_splits(path, dtype=dtype, **options)
    if re.search(r"idx\d-ubyte(\.gz)?$", name):
        return load_mnist_idx(path.parent, dtype=dtype, **options)
    raise ValueError(f"cannot tell the format of {path}: expected 'embedded', a .npz or .amat "
                     f"file, an MNIST *-idx3-ubyte[.gz] file, or a directory holding such files")
