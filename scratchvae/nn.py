"""A multilayer perceptron with hand-written backpropagation.

Every layer has the same two methods (the cs231n convention):

    out, cache = layer.forward(x)              # cache holds what backward needs
    dx, grads  = layer.backward(dout, cache)   # grads has the keys of layer.params

``backward`` is a pure function of the upstream gradient ``dout = dL/dout`` and the cache: it
never writes parameters (only an optimizer does) and it keeps no state, so calling ``forward``
several times before the matching ``backward`` calls is safe.

Shapes: a batch is ``(B, n_in)``; ``Linear`` computes ``out = x @ W + b`` with ``W`` of shape
``(n_in, n_out)`` and ``b`` of shape ``(n_out,)``.

The chain rule for ``out = x @ W + b`` (each line differentiates the forward line above it):

    dW = x^T @ dout        (n_in, n_out)
    db = sum_rows(dout)    (n_out,)
    dx = dout @ W^T        (B, n_in)

Activations are elementwise, ``out = f(x)``, so ``dx = dout * f'(x)``; each one stores in its
cache whichever of ``x`` or ``out`` gives ``f'`` most cheaply.
"""
from __future__ import annotations

import numpy as np

from .validate import (check_bool, check_choice, check_dtype, check_float_array, check_in_range,
                       check_int, check_rng)
from .stable import sigmoid, softplus


# --------------------------------------------------------------------------------------------
# Linear layer and its initializers
# --------------------------------------------------------------------------------------------
def _check_init_args(n_in, n_out, rng, dtype):
    check_int("n_in", n_in, minimum=1)
    check_int("n_out", n_out, minimum=1)
    check_rng("rng", rng)
    return check_dtype("dtype", dtype)


def glorot_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Glorot & Bengio (2010) uniform init: W ~ U(-a, a), a = sqrt(6 / (n_in + n_out))."""
    dtype = _check_init_args(n_in, n_out, rng, dtype)
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)


def he_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """He et al. (2015) init for ReLU layers: W ~ N(0, 2 / n_in)."""
    dtype = _check_init_args(n_in, n_out, rng, dtype)
    return (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)


INITIALIZERS = {"glorot": glorot_uniform, "he": he_normal}


class Linear:
    """Affine layer ``out = x @ W + b``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    rng : numpy.random.Generator
        Draws the initial weights.
    init : {"glorot", "he"}
        Weight initializer; biases start at zero.
    dtype : np.float32 or np.float64
    """

    def __init__(self, n_in: int, n_out: int, *, rng: np.random.Generator, init: str = "glorot",
                 dtype=np.float32):
        check_int("n_in", n_in, minimum=1)
        check_int("n_out", n_out, minimum=1)
        check_rng("rng", rng)
        check_choice("init", init, sorted(INITIALIZERS))
        dtype = check_dtype("dtype", dtype)
        self.params = {"W": INITIALIZERS[init](n_in, n_out, rng, dtype),  # (n_in, n_out)
                       "b": np.zeros(n_out, dtype=dtype)}                 # (n_out,)

    def forward(self, x: np.ndarray):
        out = x @ self.params["W"]  # (B, n_out)
        out += self.params["b"]
        return out, x

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        x = cache
        grads = {"W": x.T @ dout,          # (n_in, n_out)
                 "b": dout.sum(axis=0)}    # (n_out,)
        dx = dout @ self.params["W"].T if need_dx else None  # (B, n_in)
        return dx, grads


# --------------------------------------------------------------------------------------------
# Elementwise activations: forward, then its derivative right below
# --------------------------------------------------------------------------------------------
class _Elementwise:
    """An activation: no parameters (an empty ``params`` dict of its own)."""

    def __init__(self):
        self.params = {}


class ReLU(_Elementwise):
    """out = max(x, 0);  dx = dout * [x > 0]."""

    def forward(self, x):
        out = np.maximum(x, 0)
        return out, out

    def backward(self, dout, cache, need_dx=True):
        out = cache
        return dout * (out > 0), {}


class LeakyReLU(_Elementwise):
    """out = x if x > 0 else slope * x;  dx = dout * (1 if x > 0 else slope)."""

    def __init__(self, slope: float = 0.01):
        super().__init__()
        self.slope = check_in_range("slope", slope, 0.0, 1.0, high_open=True)

    def forward(self, x):
        slope = x.dtype.type(self.slope)
        return np.where(x > 0, x, slope * x), x

    def backward(self, dout, cache, need_dx=True):
        x = cache
        return np.where(x > 0, dout, x.dtype.type(self.slope) * dout), {}


class Tanh(_Elementwise):
    """out = tanh(x);  dx = dout * (1 - out^2)."""

    def forward(self, x):
        out = np.tanh(x)
        return out, out

    def backward(self, dout, cache, need_dx=True):
        out = cache
        return dout * (1 - out * out), {}


class Sigmoid(_Elementwise):
    """out = 1 / (1 + e^-x);  dx = dout * out * (1 - out)."""

    def forward(self, x):
        out = sigmoid(x)
        return out, out

    def backward(self, dout, cache, need_dx=True):
        out = cache
        return dout * out * (1 - out), {}


class Softplus(_Elementwise):
    """out = log(1 + e^x) (stable.softplus);  dx = dout * sigmoid(x)."""

    def forward(self, x):
        return softplus(x), x

    def backward(self, dout, cache, need_dx=True):
        x = cache
        return dout * sigmoid(x), {}


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid,
               "softplus": Softplus}


# --------------------------------------------------------------------------------------------
# MLP: a stack of Linear layers with activations in between
# --------------------------------------------------------------------------------------------
class MLP:
    """``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation`` after every hidden layer.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first; at least two entries.
    activation : str
        Hidden activation, one of ``relu, leaky_relu, tanh, sigmoid, softplus``.
    rng : numpy.random.Generator
        Draws all initial weights (layer by layer, in order).
    out_activation : str or None
        Activation after the last layer (None: linear output, e.g. logits or a location).
    init : {"auto", "glorot", "he"}
        "auto" uses He for ReLU-family hidden layers and Glorot otherwise.
    dtype : np.float32 or np.float64

    Attributes
    ----------
    params : dict
        ``"<i>.W"`` and ``"<i>.b"`` for the i-th Linear layer, the very arrays the layers use.
    """

    def __init__(self, sizes, activation: str = "relu", *, rng: np.random.Generator,
                 out_activation: str | None = None, init: str = "auto", dtype=np.float32):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}")
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output width, got {sizes}")
        for k, s in enumerate(sizes):
            check_int(f"sizes[{k}]", s, minimum=1)
        for name, act in (("activation", activation), ("out_activation", out_activation)):
            if act is not None:
                check_choice(name, act, sorted(ACTIVATIONS))
        if activation is None:
            raise ValueError("activation must name a hidden activation, got None")
        check_choice("init", init, ("auto", *sorted(INITIALIZERS)))
        if init == "auto":
            init = "he" if activation in ("relu", "leaky_relu") else "glorot"
        self.sizes, self.dtype = sizes, check_dtype("dtype", dtype)
        self.layers, self.params = [], {}
        n_linear = len(sizes) - 1
        for i in range(n_linear):
            last = i == n_linear - 1
            lin = Linear(sizes[i], sizes[i + 1], rng=rng, init="glorot" if last else init,
                         dtype=self.dtype)
            self.params[f"{i}.W"], self.params[f"{i}.b"] = lin.params["W"], lin.params["b"]
            self.layers.append((f"{i}.", lin))
            act = out_activation if last else activation
            if act is not None:
                self.layers.append((None, ACTIVATIONS[act]()))

    def forward(self, x: np.ndarray):
        """Return ``(out, cache)``; ``x`` is ``(B, sizes[0])`` of the model's dtype."""
        check_float_array("x", x, ndim=2, shape=(None, self.sizes[0]), dtype=self.dtype,
                          finite=False)
        caches = []
        for _, layer in self.layers:
            x, cache = layer.forward(x)
            caches.append(cache)
        return x, caches

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        """Return ``(dx, grads)``; ``grads`` has the keys of ``params``.

        ``need_dx=False`` skips the input gradient of the first layer (data needs none), which
        saves one (B, n_out) x (n_out, n_in) matrix product. ``dout`` is (B, sizes[-1]) of the
        model's dtype; ``cache`` is what :meth:`forward` returned. Type, dtype and shape are
        checked, not the values (this runs on every training step).
        """
        if not isinstance(cache, list) or len(cache) != len(self.layers):
            raise TypeError(f"cache must be the cache list returned by MLP.forward ({len(self.layers)} "
                            f"entries), got {type(cache).__name__}")
        B = cache[0].shape[0] if isinstance(cache[0], np.ndarray) else None
        check_float_array("dout", dout, ndim=2, shape=(B, self.sizes[-1]), dtype=self.dtype, finite=False)
        check_bool("need_dx", need_dx)
        grads = {}
        for k in range(len(self.layers) - 1, -1, -1):
            prefix, layer = self.layers[k]
            dout, g = layer.backward(dout, cache[k], need_dx=need_dx or k > 0)
            if prefix is not None:
                grads[prefix + "W"], grads[prefix + "b"] = g["W"], g["b"]
        return dout, grads
