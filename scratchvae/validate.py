"""Input validation at the library boundary.

Every public entry point checks its arguments once, here, and raises an error that names the
argument, what was expected and what arrived. The numerical code behind the boundary then
trusts its inputs (no repeated checks on hot paths).

Nothing is silently converted: an integer array handed to a function that needs floats is an
error (``TypeError``), not an upcast; a shape that would only work by broadcasting is an error
(``ValueError``), not a broadcast.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def _shape_str(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_float_array(name: str, x, *, ndim: int | None = None, shape: tuple | None = None,
                      dtype=None, finite: bool = True) -> np.ndarray:
    """Return ``x`` unchanged after checking it is a finite float32/float64 ndarray.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    x : np.ndarray
        The array to check.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any size.
    dtype : np.dtype, optional
        Required dtype (for example the dtype of the model's parameters).
    finite : bool
        If True (default) reject NaN and +-inf.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, got {type(x).__name__}")
    if x.dtype.type not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype} "
                        f"(convert explicitly, e.g. x.astype(np.float32))")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)} (the model's dtype), got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {x.shape}")
    if shape is not None:
        if x.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, x.shape)):
            raise ValueError(f"{name} must have shape {_shape_str(shape)}, got {x.shape}")
    if finite and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); expected finite numbers")
    return x


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have identical shapes (no broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape (no broadcasting), "
                         f"got {a.shape} and {b.shape}")


def check_same_dtype(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``TypeError`` unless ``a`` and ``b`` share a dtype (no silent upcast)."""
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} and {name_b} must have the same dtype (no silent upcast), "
                        f"got {a.dtype} and {b.dtype}")


def check_rng(name: str, rng) -> np.random.Generator:
    """Require a ``numpy.random.Generator`` (SPEC 7); integers and legacy RandomState are refused."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                        f"got {type(rng).__name__}")
    return rng


def _real(name: str, value) -> float:
    """A Python or NumPy real number (bool and strings refused) as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def check_positive(name: str, value, *, strict: bool = True) -> float:
    """Require a finite real number > 0 (or >= 0 when ``strict`` is False)."""
    v = _real(name, value)
    if not np.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"{name} must be {'>' if strict else '>='} 0 and finite, got {value!r}")
    return v


def check_in_range(name: str, value, low: float, high: float, *, low_open: bool = False,
                   high_open: bool = False) -> float:
    """Require ``low <= value <= high`` (with ``*_open`` making that end strict)."""
    v = _real(name, value)
    lo_ok = v > low if low_open else v >= low
    hi_ok = v < high if high_open else v <= high
    if not (np.isfinite(v) and lo_ok and hi_ok):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    """Require an integer (bool excluded) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_one_hot(name: str, y, n: int | None, n_classes: int, *, dtype=None) -> np.ndarray:
    """Require one-hot rows: (n, n_classes) floats, each row one 1 and zeros elsewhere."""
    check_float_array(name, y, ndim=2, shape=(n, n_classes), dtype=dtype)
    bad = ~(np.all((y == 0) | (y == 1), axis=1) & (y.sum(axis=1) == 1))
    if np.any(bad):
        b = int(np.argmax(bad))
        raise ValueError(f"{name} must be one-hot (one 1 and zeros elsewhere in each row); row {b} "
                         f"is {np.array2string(y[b], precision=3)}. Build it with "
                         f"scratchvae.data.one_hot(labels, {n_classes})")
    return y
