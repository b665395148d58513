"""Input validation at the library boundary.

Every public entry point checks its arguments once, here, and raises an error that names the
argument, what was expected and what arrived. The numerical code behind the boundary then
trusts its inputs (no repeated checks on hot paths).

Nothing is silently converted: an integer array handed to a function that needs floats is an
error (``TypeError``), not an upcast; a shape that would only work by broadcasting is an error
(``ValueError``), not a broadcast.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def _shape_str(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_float_array(name: str, x, *, ndim: int | None = None, shape: tuple | None = None,
                      dtype=None, finite: bool = True, like: str | None = None) -> np.ndarray:
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
    like : str, optional
        The argument whose dtype and shape ``dtype`` and ``shape`` come from, named in the
        message (default: "the model's dtype"), so a mismatch names both arguments.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, got {type(x).__name__}")
    if x.dtype.type not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype} "
                        f"(convert explicitly, e.g. x.astype(np.float32))")
    if dtype is not None and x.dtype != np.dtype(dtype):
        whose = f"the dtype of {like}" if like else "the model's dtype"
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)} ({whose}), got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {x.shape}")
    if shape is not None:
        if x.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, x.shape)):
            raise ValueError(f"{name} must have shape {_shape_str(shape)}"
                             f"{' to match ' + like if like else ''}, got {x.shape}")
    if finite and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); expected finite numbers")
    return x


def _check_ndarray(name, x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")


def _check_pair(name_a, a, name_b, b, attribute: str, error, why: str) -> None:
    """Both arrays, and equal in ``attribute`` ("shape" or "dtype"); else ``error`` naming both."""
    _check_ndarray(name_a, a)
    _check_ndarray(name_b, b)
    if getattr(a, attribute) != getattr(b, attribute):
        raise error(f"{name_a} and {name_b} must have the same {attribute} ({why}), "
                    f"got {getattr(a, attribute)} and {getattr(b, attribute)}")


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have identical shapes (no broadcasting)."""
    _check_pair(name_a, a, name_b, b, "shape", ValueError, "no broadcasting")


def check_same_dtype(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``TypeError`` unless ``a`` and ``b`` share a dtype (no silent upcast)."""
    _check_pair(name_a, a, name_b, b, "dtype", TypeError, "no silent upcast")


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


def check_real(name: str, value, *, finite: bool = True) -> float:
    """Require a real number (bool and strings refused), not NaN, and finite unless ``finite=False``."""
    v = _real(name, value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}real number, got {value!r}")
    return v


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
    """Require an integer (bool excluded) at least ``minimum``.

    Every size, count and chunk argument goes through here: a size of 0 or -1 is refused at the
    door (``range(0, n, -1)`` is silently empty and ``while done < n`` with a step of 0 never ends).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_int_sequence(name: str, values, *, minimum: int | None = None) -> list:
    """Require an iterable of integers (not a string), each at least ``minimum``; returns a list.

    Entries are named ``name[i]`` in messages.
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers, got {type(values).__name__} {values!r}")
    return [check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values)]


def check_bool(name: str, value) -> bool:
    """Require True or False (a Python or NumPy bool); 0, 1 and strings such as "no" are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value, choices) -> str:
    """Require one of the strings ``choices``: TypeError for a non-string, ValueError otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {tuple(choices)} (a string), got "
                        f"{type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_callable(name: str, f):
    """Require a callable (a function, a bound method, an object with ``__call__``)."""
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__} {f!r}")
    return f


def check_str(name: str, value) -> str:
    """Require a string (bytes and everything else refused)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r}")
    return value


def check_path(name: str, path) -> str:
    """A file or folder path: a str or an os.PathLike (e.g. pathlib.Path), returned as a str."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or an os.PathLike (e.g. pathlib.Path), got "
                        f"{type(path).__name__} {path!r}")
    return os.fspath(path)


def check_mapping(name: str, value, *, values: type | None = None) -> Mapping:
    """Require a mapping (a dict); with ``values``, every value must be an instance of it.

    A value of the wrong type is named ``name['key']`` (one pass over the keys, not the data).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__} {value!r:.80}")
    if values is not None:
        for key, v in value.items():
            if not isinstance(v, values):
                raise TypeError(f"{name}[{key!r}] must be a {values.__module__}.{values.__name__}"
                                f", got {type(v).__name__}")
    return value


def check_dtype(name: str, dtype, *, integers: bool = False) -> np.dtype:
    """``dtype`` as a ``numpy.dtype``: float32 or float64, or with ``integers`` also a signed
    integer type. Anything else is a TypeError naming ``name``: None (which ``np.dtype`` would
    turn into float64), what NumPy does not understand ("garbage", 3), float16, unsigned
    integers (in which the -1 of a +-1 spin wraps around)."""
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or not (dt in FLOAT_DTYPES or (integers and dt.kind == "i")):
        want = "float32 or float64" + (" or a signed integer type" if integers else "")
        shown = repr(dtype) if dt is None else dt.name
        raise TypeError(f"{name} must be {want}, got {shown}")
    return dt


def check_has_rows(name: str, x: np.ndarray) -> np.ndarray:
    """Require at least one row (N >= 1 along axis 0), for results that average over rows."""
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row (N >= 1), got shape {x.shape}")
    return x


def check_model(name: str, model, attributes) -> object:
    """Require an object with every one of ``attributes`` (duck typing, e.g. a VAE's x_dim, encode)."""
    missing = [a for a in attributes if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{name} must be a model with {', '.join(attributes)} (e.g. a "
                        f"scratchvae.vae.VAE), got {type(model).__name__} without {', '.join(missing)}")
    return model


def check_cache(cache, length: int, producer: str) -> tuple:
    """Require the ``cache`` tuple a forward function returned (a tuple of ``length`` entries)."""
    if not isinstance(cache, tuple) or len(cache) != length:
        raise TypeError(f"cache must be the cache tuple returned by {producer} ({length} entries), "
                        f"got {type(cache).__name__}")
    return cache


def check_gradient(name: str, g, *, shape: tuple, dtype, like: str | None = None) -> np.ndarray:
    """An upstream gradient of a backward pass: a float array of ``shape`` and ``dtype``.

    Wrong type, dtype or shape is the caller's mistake (TypeError / ValueError, as for any input).
    NaN or inf is not: a finite forward whose gradient overflows is what diverging parameters
    look like from inside a backward pass (e.g. 1 / L_ii for a Cholesky diagonal that underflowed
    to a subnormal), so it raises ``FloatingPointError``, the error the trainer turns into
    "training diverged ... lower the learning rate".
    """
    check_float_array(name, g, shape=shape, dtype=dtype, finite=False, like=like)
    if not np.all(np.isfinite(g)):
        bad = int(np.size(g) - np.count_nonzero(np.isfinite(g)))
        raise FloatingPointError(f"{name} contains {bad} NaN or infinite value(s): the gradient "
                                 f"overflowed (in training: the parameters have diverged)")
    return g


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
