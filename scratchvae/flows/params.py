"""What every flow layer shares: input checks at its door and the flat raw-parameter layout.

An encoder emits all raw parameters of one flow layer as one vector per example, ``raw (..., n)``.
A *layout* names the slices of that vector in order, as ``(name, size)`` pairs; ``size=None``
marks a parameter with one number per example, which is stored in one slot and handed out
without a trailing axis (planar ``b (...,)``), and a tuple size is reshaped (Householder-Sylvester
``v (..., H, D)``). For example planar's layout for D = 3 is ``(("u", 3), ("w", 3), ("b", None))``:

    raw[..., 0:3] -> u (..., 3)     raw[..., 3:6] -> w (..., 3)     raw[..., 6] -> b (...,)

:func:`unpack` infers D from n and returns views into ``raw`` (no copy); :func:`pack`
concatenates the gradients back in the same order, so the encoder's output layer receives
d loss / d raw in one array.
"""
from __future__ import annotations

import numpy as np

from ..validate import check_float_array, check_gradient, check_int, check_mapping, check_same_dtype


def _trailing(size) -> tuple:
    """Trailing shape of one parameter: () for None, (k,) for an int k, the tuple itself."""
    return () if size is None else (size if isinstance(size, tuple) else (size,))


def _size(size) -> int:
    return int(np.prod(_trailing(size), dtype=int))


def n_params(layout) -> int:
    """Total number of raw numbers per example described by ``layout``.

    Raises TypeError unless ``layout`` is a tuple or list of (name, size) pairs, each size None,
    an integer or a tuple of integers; ValueError for a negative size.
    """
    if not isinstance(layout, (tuple, list)):
        raise TypeError(f"layout must be a tuple of (name, size) pairs such as (('u', 3), "
                        f"('b', None)), got {type(layout).__name__} {layout!r}")
    for i, pair in enumerate(layout):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"layout[{i}] must be a (name, size) pair, got {pair!r}")
        for k in _trailing(pair[1]):
            check_int(f"the size of layout[{i}]", k, minimum=0)
    return _count(layout)


def _count(layout) -> int:
    """:func:`n_params` without checks (for the layouts of this package's families)."""
    return sum(_size(size) for _, size in layout)


def _dim_from_n(layout_of_dim, n: int, family: str) -> int:
    """The D with ``n_params(layout_of_dim(D)) == n`` (sizes grow with D), or a ValueError."""
    D = 1
    while _count(layout_of_dim(D)) < n:
        D += 1
    if _count(layout_of_dim(D)) != n:
        valid = ", ".join(str(_count(layout_of_dim(d))) for d in range(1, 5))
        raise ValueError(f"raw must have a last axis of {family}_n_params(D) for some D "
                         f"({valid}, ... for D = 1, 2, 3, 4, ...), got {n}")
    return D


def unpack(raw: np.ndarray, layout_of_dim, family: str) -> dict:
    """Split ``raw (..., n)`` into the named views of ``layout_of_dim(D)``, D inferred from n.

    The slices are views of ``raw`` (no copy) when its last axis is contiguous.
    """
    check_float_array("raw", raw)
    if raw.ndim < 1:
        raise ValueError(f"raw must have shape (..., n) with at least one axis, got {raw.shape}")
    layout = layout_of_dim(_dim_from_n(layout_of_dim, raw.shape[-1], family))
    out, start = {}, 0
    for name, size in layout:
        if size is None:
            out[name] = raw[..., start]                                        # (...,)
        else:
            piece = raw[..., start:start + _size(size)]                        # (..., size)
            out[name] = piece.reshape(raw.shape[:-1] + _trailing(size))        # a view
        start += _size(size)
    return out


def grad_size(grads, name: str, axis: int = -1) -> int:
    """The length of axis ``axis`` of ``grads[name]``, where a ``<family>_pack_grads`` reads D
    (or Householder-Sylvester's K), after checking that ``grads`` is a dict of arrays holding
    ``name``: the door of every ``pack_grads``. TypeError naming ``grads`` otherwise; KeyError
    for a missing entry, as in :func:`pack`."""
    check_mapping("grads", grads, values=np.ndarray)
    if name not in grads:
        raise KeyError(f"grads has no entry {name!r}; expected the dict a backward returned")
    if grads[name].ndim < -axis:
        raise ValueError(f"grads[{name!r}] must have at least {-axis} axes, got shape "
                         f"{grads[name].shape}")
    return grads[name].shape[axis]


def pack(grads: dict, layout) -> np.ndarray:
    """Concatenate ``grads[name]`` for each name of ``layout`` into one ``(..., n)`` array."""
    check_mapping("grads", grads, values=np.ndarray)
    missing = [name for name, _ in layout if name not in grads]
    if missing:
        raise KeyError(f"grads has no entry for {missing}; expected keys {[n for n, _ in layout]}")
    name0, size0 = layout[0]
    lead = grads[name0].shape[:grads[name0].ndim - len(_trailing(size0))]
    pieces = [grads[name].reshape(lead + (_size(size),)) for name, size in layout]
    return np.concatenate(pieces, axis=-1)                                     # (..., n)


def check_z(z: np.ndarray, name: str = "z") -> int:
    """``z`` a finite float32/float64 array (..., D) with at least one axis; returns D."""
    check_float_array(name, z)
    if z.ndim < 1:
        raise ValueError(f"{name} must have shape (..., D) with at least one axis, got {z.shape}")
    return z.shape[-1]


def check_params(z: np.ndarray, params: dict, z_name: str = "z") -> None:
    """Each parameter finite, of z's dtype, with z's leading axes exactly (no broadcasting).

    ``params`` maps a name to ``(array, trailing_shape)``; the array must have shape
    ``z.shape[:-1] + trailing_shape``. ``z`` has passed :func:`check_z`.
    """
    for name, (x, trailing) in params.items():
        check_float_array(name, x)
        check_same_dtype(name, x, z_name, z)
        expected = z.shape[:-1] + tuple(trailing)
        if x.shape != expected:
            raise ValueError(f"{name} must have shape {expected} ({z_name}'s leading axes "
                             f"{z.shape[:-1]} + {tuple(trailing)}), got {x.shape}")


def check_nonzero(name: str, sq_norm: np.ndarray, why: str) -> None:
    """ValueError unless every squared norm in ``sq_norm`` is > 0 (``why``: who divides by it)."""
    if not np.all(sq_norm > 0):
        raise ValueError(f"{name} must be nonzero in every example ({why}); |{name}|^2 is 0 "
                         f"in {int(np.sum(~(sq_norm > 0)))} of {sq_norm.size}")


def check_upstream(dz_new, dlog_abs_det, z_shape: tuple, dtype) -> np.ndarray:
    """``dz_new (..., D)`` like z; ``dlog_abs_det (...,)`` or None (zeros). Returns dlog_abs_det.

    A wrong type, dtype or shape is a TypeError / ValueError; NaN or inf is a FloatingPointError
    (``validate.check_gradient``): inside training it means the parameters have diverged, and
    the trainer reports it as such.
    """
    check_gradient("dz_new", dz_new, shape=z_shape, dtype=dtype)
    if dlog_abs_det is None:
        return np.zeros(z_shape[:-1], dtype=dtype)                             # (...,)
    return check_gradient("dlog_abs_det", dlog_abs_det, shape=z_shape[:-1], dtype=dtype)


def layout_functions(family: str, layout_of_dim, d_from: str, count: str):
    """``(n_params, unpack, pack_grads)`` of a family whose layout depends on D alone.

    ``layout_of_dim(D)`` gives the layout, ``d_from`` names the parameter whose last axis is D
    (where ``pack_grads`` reads it), ``count`` says how many numbers that is, for the docstrings
    (e.g. "2D + 1: u (D), w (D), b (1)").
    """
    def family_n_params(D: int) -> int:
        return _count(layout_of_dim(check_int("D", D, minimum=1)))

    def family_unpack(raw):
        return unpack(raw, layout_of_dim, family)

    def family_pack_grads(grads):
        return pack(grads, layout_of_dim(grad_size(grads, d_from)))

    names = [name for name, _ in layout_of_dim(1)]
    family_n_params.__doc__ = f"Raw numbers per example for dimension D: {count}."
    family_unpack.__doc__ = (f"dict({', '.join(names)}) as views of ``raw (..., n)``, "
                             f"n = {family}_n_params(D), in that order.")
    family_pack_grads.__doc__ = (f"Inverse of :func:`{family}_unpack` for gradients: "
                                 f"``(..., n)`` from dict({', '.join(names)}).")
    for f, suffix in ((family_n_params, "n_params"), (family_unpack, "unpack"),
                      (family_pack_grads, "pack_grads")):
        f.__name__ = f.__qualname__ = f"{family}_{suffix}"
    return family_n_params, family_unpack, family_pack_grads
