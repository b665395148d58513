"""MADE: a masked MLP whose output d depends only on the inputs before d (Germain et al. 2015).

Autoregressive property (Germain et al. 2015, sec. 4). Give every unit a degree:

    input j (1-indexed)      degree j                         j = 1..D
    hidden unit k, layer l   degree deg_l(k) = k mod D        k = 0..H_l-1   (cycles 0, 1, ..., D-1)
    output d (1-indexed)     degree d

and keep a weight only where the receiving unit may see the sending one:

    into a hidden unit    mask[j, k] = [deg_out(k) >= deg_in(j)]
    into an output        mask[k, d] = [d > deg_L(k)]              (strict: output d never sees z_d)

A hidden unit of degree k then depends on inputs 1..k only (by induction over the layers), and
output d only on hidden units of degree < d, hence only on z_1..z_{d-1}: the Jacobian
d out_d / d z_j is zero for j >= d.

Degrees are assigned by cycling, not sampled, so building the masks needs no randomness.
Germain et al. sample hidden degrees from 1..D-1 (a degree-0 unit sees no input and is useless
there). Here a context h (N, C) enters the first hidden layer unmasked, as Kingma et al. (2016,
sec. 4) feed the encoder's h to every IAF step, and degree-0 units become the units
that see the context alone: without them output 1 (degree 1 > only degree 0) would see no
hidden unit at all and m_1, s_1 would be constants, deaf to h.

The network (W is (n_in, n_out) as in ``scratchvae.nn.Linear``; ``*`` is elementwise):

    a_1 = z @ (W_1 * M_1) + h @ W_ctx + b_1        hidden_1 = act(a_1)
    a_l = hidden_{l-1} @ (W_l * M_l) + b_l         hidden_l = act(a_l)
    m   = hidden_L @ (W_m * M_out) + b_m           s = hidden_L @ (W_s * M_out) + b_s

Masked layer backward: dW = (x^T @ dout) * M (a masked entry never affects the output, so its
gradient is exactly zero), db = sum_rows(dout), dx = dout @ (W * M)^T.
"""
from __future__ import annotations

import numpy as np

from ..nn import ReLU, glorot_uniform, he_normal
from ..validate import (check_cache, check_choice, check_dtype, check_float_array, check_gradient,
                        check_int, check_int_sequence, check_rng)


def hidden_degrees(width: int, z_dim: int) -> np.ndarray:
    """Degrees 0, 1, ..., z_dim-1, 0, 1, ... of a hidden layer of ``width`` units: (width,).

    ``width`` and ``z_dim`` are integers >= 1 (TypeError / ValueError naming them otherwise).
    """
    return np.arange(check_int("width", width, minimum=1)) % check_int("z_dim", z_dim, minimum=1)


def made_masks(z_dim: int, hidden) -> list:
    """Masks (n_in, n_out) of float 0/1: one per hidden layer, then the output mask (H_L, D).

    Input j has degree j+1 (1-indexed), output d has degree d+1; see the module docstring.
    ``z_dim`` is an integer >= 1, ``hidden`` a sequence of integers >= 1 (a list or tuple).
    """
    z_dim = check_int("z_dim", z_dim, minimum=1)
    hidden = check_int_sequence("hidden", hidden, minimum=1)
    degrees_in = np.arange(1, z_dim + 1)                                 # (D,)
    masks = []
    for width in hidden:
        degrees = hidden_degrees(width, z_dim)                           # (H,)
        masks.append((degrees[None, :] >= degrees_in[:, None]).astype(np.float64))  # (n_in, H)
        degrees_in = degrees
    degrees_out = np.arange(1, z_dim + 1)                                # (D,)
    masks.append((degrees_out[None, :] > degrees_in[:, None]).astype(np.float64))   # (H_L, D)
    return masks


class MaskedLinear:
    """``out = x @ (W * mask) + b``; ``W`` and ``mask`` are (n_in, n_out).

    Parameters
    ----------
    mask : ndarray (n_in, n_out) of 0/1
        Fixed connectivity; stored in the layer's dtype (the product W * mask never upcasts).
    rng : numpy.random.Generator
        Draws the initial weights.
    init : callable (n_in, n_out, rng, dtype) -> ndarray
        ``scratchvae.nn.glorot_uniform`` or ``he_normal``.
    dtype : np.float32 or np.float64

    Notes
    -----
    Forward:  W_masked = W * mask;  out = x @ W_masked + b.
    Backward: dW = (x^T @ dout) * mask;  db = sum_rows(dout);  dx = dout @ W_masked^T.
    Masked entries of ``W`` start at zero; an optimizer that moves them changes nothing, because
    forward multiplies by the mask and backward gives them a zero gradient.
    """

    def __init__(self, mask: np.ndarray, *, rng: np.random.Generator, init, dtype):
        n_in, n_out = mask.shape
        self.mask = mask.astype(dtype)                                   # (n_in, n_out)
        weights = init(n_in, n_out, rng, dtype)                         # (n_in, n_out)
        self.params = {"W": weights * self.mask,                         # (n_in, n_out)
                       "b": np.zeros(n_out, dtype=dtype)}                # (n_out,)

    def forward(self, x: np.ndarray):
        W = self.params["W"] * self.mask                                 # (n_in, n_out)
        out = x @ W                                                      # (N, n_out)
        out += self.params["b"]
        return out, (x, W)

    def backward(self, dout: np.ndarray, cache):
        x, W = cache
        grads = {"W": (x.T @ dout) * self.mask,                          # (n_in, n_out)
                 "b": dout.sum(axis=0)}                                  # (n_out,)
        return dout @ W.T, grads                                         # (N, n_in)


class ELU:
    """out = x if x > 0 else e^x - 1 (Clevert et al. 2016);  dx = dout * (1 if x > 0 else out + 1)."""

    def __init__(self):
        self.params = {}

    def forward(self, x):
        out = np.where(x > 0, x, np.expm1(np.minimum(x, x.dtype.type(0))))  # expm1 of <= 0 only
        return out, out

    def backward(self, dout, cache):
        out = cache
        return np.where(out > 0, dout, dout * (out + out.dtype.type(1))), {}


ACTIVATIONS = {"relu": ReLU, "elu": ELU}


class MADE:
    """Masked autoencoder with a context input and two outputs per dimension, (m, s).

    Parameters
    ----------
    z_dim : int
        D, the number of autoregressive variables.
    context_dim : int
        C, the width of the context h (0 for none); it enters the first hidden layer unmasked.
    hidden : sequence of int
        Hidden widths, at least one, e.g. ``(64,)`` (a bare int is refused, as for the VAE's
        ``hidden``). Widths of at least D give every degree a unit.
    rng : numpy.random.Generator
        Draws the initial weights; the masks are deterministic.
    activation : {"relu", "elu"}
    dtype : np.float32 or np.float64

    Attributes
    ----------
    params : dict
        ``"0.W"`` (D, H_0) masked, ``"context.W"`` (C, H_0), ``"0.b"``; ``"<l>.W"``, ``"<l>.b"``
        for the later hidden layers; ``"m.W"``, ``"m.b"``, ``"s.W"``, ``"s.b"`` for the outputs.
    masks : dict
        The 0/1 mask of every masked weight, keyed like ``params``.
    """

    def __init__(self, z_dim: int, context_dim: int, hidden, *, rng: np.random.Generator,
                 activation: str = "relu", dtype=np.float32):
        self.z_dim = check_int("z_dim", z_dim, minimum=1)
        self.context_dim = check_int("context_dim", context_dim, minimum=0)
        hidden = tuple(check_int_sequence("hidden", hidden, minimum=1))
        if not hidden:
            raise ValueError("hidden must list at least one hidden width, got ()")
        check_rng("rng", rng)
        check_choice("activation", activation, sorted(ACTIVATIONS))
        self.dtype = check_dtype("dtype", dtype)
        self.hidden, self.activation = hidden, ACTIVATIONS[activation]()
        init = {"relu": he_normal, "elu": glorot_uniform}[activation]
        *hidden_masks, out_mask = made_masks(self.z_dim, hidden)
        self.layers = [MaskedLinear(mask, rng=rng, init=init, dtype=self.dtype) for mask in hidden_masks]
        w_context = (init(self.context_dim, hidden[0], rng, self.dtype) if self.context_dim
                     else np.zeros((0, hidden[0]), dtype=self.dtype))      # (C, H_0)
        self.out_m = MaskedLinear(out_mask, rng=rng, init=glorot_uniform, dtype=self.dtype)
        self.out_s = MaskedLinear(out_mask, rng=rng, init=glorot_uniform, dtype=self.dtype)
        self.params, self.masks = {}, {}
        for prefix, layer in [(f"{l}.", lay) for l, lay in enumerate(self.layers)] + [
                ("m.", self.out_m), ("s.", self.out_s)]:
            self.params[prefix + "W"], self.params[prefix + "b"] = layer.params["W"], layer.params["b"]
            self.masks[prefix + "W"] = layer.mask
        self.params["context.W"] = w_context

    def check_inputs(self, z, context) -> None:
        """Validate ``z`` (N, D) and ``context`` (N, C): finite, of the model's dtype."""
        check_float_array("z", z, ndim=2, shape=(None, self.z_dim), dtype=self.dtype)
        check_float_array("context", context, ndim=2, shape=(z.shape[0], self.context_dim),
                          dtype=self.dtype)

    def forward(self, z: np.ndarray, context: np.ndarray):
        """Return ``((m, s), cache)``; ``z`` (N, D), ``context`` (N, C); m and s are (N, D).

        Notes
        -----
        Forward: the equations of the module docstring, layer by layer.
        Backward (:meth:`backward`): each layer's backward in reverse order; the first layer's
        input gradient splits into dz = da_1 @ (W_1 * M_1)^T and dcontext = da_1 @ W_ctx^T, and
        dW_ctx = context^T @ da_1.
        """
        self.check_inputs(z, context)
        return self.forward_unchecked(z, context)

    def forward_unchecked(self, z, context):
        """:meth:`forward` without input checks (for callers that validated already)."""
        caches = []
        x = z
        for l, layer in enumerate(self.layers):
            a, lin_cache = layer.forward(x)                              # (N, H_l)
            if l == 0:
                a += context @ self.params["context.W"]                  # (N, H_0)
            x, act_cache = self.activation.forward(a)                    # (N, H_l)
            caches.append((lin_cache, act_cache))
        m, m_cache = self.out_m.forward(x)                               # (N, D)
        s, s_cache = self.out_s.forward(x)                               # (N, D)
        return (m, s), (context, caches, m_cache, s_cache)

    def backward(self, dout, cache):
        """Return ``({"z": dz, "context": dcontext}, grads)`` from ``dout = (dm, ds)``, each (N, D).

        ``grads`` has the keys of ``params``. Pure: writes neither ``cache`` nor ``params``.
        """
        dm, ds = dout
        context = check_cache(cache, 4, "MADE.forward")[0]
        for name, d in (("dm", dm), ("ds", ds)):
            check_gradient(name, d, shape=(context.shape[0], self.z_dim), dtype=self.dtype)
        return self.backward_unchecked(dout, cache)

    def backward_unchecked(self, dout, cache):
        """:meth:`backward` without input checks."""
        dm, ds = dout
        context, caches, m_cache, s_cache = cache
        dx_m, grads_m = self.out_m.backward(dm, m_cache)                 # (N, H_L)
        dx_s, grads_s = self.out_s.backward(ds, s_cache)                 # (N, H_L)
        grads = {"m.W": grads_m["W"], "m.b": grads_m["b"], "s.W": grads_s["W"], "s.b": grads_s["b"]}
        dx = dx_m + dx_s                                                 # (N, H_L)
        for l in range(len(self.layers) - 1, -1, -1):
            lin_cache, act_cache = caches[l]
            da, _ = self.activation.backward(dx, act_cache)              # (N, H_l)
            dx, g = self.layers[l].backward(da, lin_cache)               # (N, n_in)
            grads[f"{l}.W"], grads[f"{l}.b"] = g["W"], g["b"]
        grads["context.W"] = context.T @ da                              # (C, H_0)
        dcontext = da @ self.params["context.W"].T                       # (N, C)
        return {"z": dx, "context": dcontext}, grads
