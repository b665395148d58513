"""Data in and out of the models: embedded digits, file loaders, binarization and checks.

Every loader returns :class:`Splits` ``(train, valid, test)`` of :class:`Dataset` ``(x, y)``:
``x`` is (N, D) with one flattened row-major image per row, ``y`` (N,) int64 labels or ``None``.

dtype is never changed behind your back. With ``dtype=None`` a file loader returns what the
file stores: ``uint8`` grey levels 0..255 (MNIST IDX, PNG/JPEG, CSV of integers), ``uint8`` 0/1
(``.amat``, binarized ``.npz``), or floats (CSV with decimals, float ``.npy``/``.npz``). With
``dtype=np.float32`` or ``np.float64`` it returns floats: uint8 grey levels are divided by 255,
0/1 data and floats are cast. The embedded digits are floats in [0, 1] (float32
unless asked otherwise).

Binarization, for the Bernoulli likelihood p(x|z) = prod_d mu_d^x_d (1 - mu_d)^(1 - x_d),
which needs x in {0, 1}:

* static, once, before training: ``x > threshold``, or one Bernoulli draw x_b ~ Bern(x) with a
  fixed seed (the static binarized MNIST of Larochelle & Murray 2011 is such a draw);
* dynamic, a fresh draw x_b ~ Bern(x) each time a minibatch is used (:func:`binarize`), which
  acts as data augmentation and is the other convention of the VAE literature (e.g. Burda,
  Grosse & Salakhutdinov 2016). Log-likelihoods of the two are not comparable.

Uniform dequantization, for a continuous likelihood (e.g. Gaussian pixels) on 8-bit grey levels
k in {0, ..., 255}: x = (k + u) / 256 with u ~ U[0, 1) per pixel (:func:`dequantize`). A density
p(x) on [0, 1)^D then bounds the probability of the 8-bit image, log P(k) >= E_u[log p(x)] -
D log 256 (Theis, van den Oord & Bethge 2016, sec. 3.1), which
:func:`scratchvae.evaluate.bits_per_dim_discrete` turns into bits per dimension on the
256-level scale. Without it a density evaluated at the points k/255 can grow without bound.

Modules: :mod:`.sources` (the front door :func:`load_dataset`, the embedded digits, the
validation carve-out and subsets), :mod:`.formats` (MNIST IDX, .amat, .npz), :mod:`.images`
(.npy, CSV, PNG/JPEG folders, IDX files under any name), :mod:`.digits`, :mod:`.download`.
See docs/data.md.
"""
from __future__ import annotations

import numpy as np

from ..validate import check_dtype, check_float_array, check_in_range, check_int, check_rng
from .formats import (  # noqa: F401  (re-exported)
    AMAT_FILES, MNIST_FILES, SPLITS, Dataset, Splits, check_float_dtype, to_float_pixels, load_amat,
    load_amat_splits, load_idx, load_mnist_idx, load_npz, read_npz)
from .images import (  # noqa: F401  (re-exported)
    read_csv, read_csv_table, read_idx_images, read_image, read_image_folder, read_npy)
from .sources import (  # noqa: F401  (re-exported)
    carve, grey_levels, image_shape, load_dataset, load_embedded_digits, read_source, subset)

LIKELIHOODS = ("bernoulli", "gaussian")


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
    check_dtype("dtype", dtype)
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
    seed = check_int("seed", seed, minimum=0)
    if method == "threshold":
        t = check_in_range("threshold", threshold, 0.0, 1.0)
        return (x > x.dtype.type(t)).astype(x.dtype)
    if method == "bernoulli":
        return binarize(x, np.random.default_rng(seed))
    raise ValueError(f"method must be 'threshold' or 'bernoulli', got {method!r}")


def dequantize(k: np.ndarray, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Uniform dequantization of 8-bit grey levels: ``x = (k + u) / 256``, ``u ~ U[0, 1)``.

    Parameters
    ----------
    k : np.ndarray, any shape, uint8
        Grey levels 0..255 as stored (e.g. ``load_dataset(path).train.x``).
    rng : numpy.random.Generator
        Source of u, one draw per pixel, in ``dtype``.
    dtype : np.float32 or np.float64

    Returns
    -------
    np.ndarray, same shape as ``k``, ``dtype``
        x in the cell [k/256, (k + 1)/256) of its level; rounding k + u to ``dtype`` reaches the
        upper edge when u is within half a unit in the last place of 1 (in float32 about one
        pixel in 2^17 at k >= 128), a set of measure zero for the density.

    Raises
    ------
    TypeError
        ``k`` not a uint8 array, ``rng`` not a Generator, ``dtype`` not float32/float64.

    Notes
    -----
    The cells of the 256 levels tile [0, 1), so a density p on [0, 1)^D gives the discrete
    model P(k) = integral of p over the cell of k = 256^-D E_u[p((k + u)/256)] >= 256^-D
    exp(E_u[log p(x)]) (Jensen; Theis, van den Oord & Bethge 2016, sec. 3.1): fitting p to x
    maximizes a lower bound on log P(k). Bits per dimension on that scale:
    :func:`scratchvae.evaluate.bits_per_dim_discrete`. Dividing by 256, not 255, is what makes
    the cells tile [0, 1) with volume 256^-D each.
    """
    if not isinstance(k, np.ndarray) or k.dtype != np.uint8:
        raise TypeError(f"k must be a uint8 numpy.ndarray of grey levels 0..255, got "
                        f"{getattr(k, 'dtype', type(k).__name__)}")
    check_rng("rng", rng)
    dtype = check_dtype("dtype", dtype)
    u = rng.random(k.shape, dtype=dtype)                                   # U[0, 1), k's shape
    return (k.astype(dtype) + u) / dtype.type(256)


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
