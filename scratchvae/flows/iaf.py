"""Inverse autoregressive flow (IAF): a stack of gated autoregressive steps (Kingma et al. 2016).

A flow z_K = f_K o ... o f_1(z_0) turns a posterior sample z_0 ~ q(z_0|x) into z_K with

    log q(z_K|x) = log q(z_0|x) - sum_k log|det dz_k/dz_{k-1}|.

One step, the numerically stable gated form (Kingma et al. 2016, sec. 4 and appendix), with h the
encoder's context:

    (m, s) = MADE(z, h)                              m_i, s_i depend on z_1..z_{i-1} and h only
    sigma  = sigmoid(s + forget_bias)
    z'     = sigma * z + (1 - sigma) * m
    log|det dz'/dz| = sum_i log sigma_i = -sum_i softplus(-(s_i + forget_bias))

Why the determinant is that cheap: dz'_i/dz_j = 0 for j > i (m_i and sigma_i do not see z_j) and
dz'_i/dz_i = sigma_i, so dz'/dz is lower triangular and its determinant is prod_i sigma_i > 0.
log sigmoid(t) = -softplus(-t) is finite for every finite t (``scratchvae.stable.softplus``),
where log(sigmoid(t)) gives -inf once sigmoid(t) underflows (t below about -104 in float32).

``forget_bias`` (default 2): Kingma et al. (2016, sec. 4) report better results when s starts
sufficiently positive, close to +1 or +2, so that each step initially changes z only a little;
the same device as the forget-gate bias of an LSTM (Jozefowicz et al. 2015). A constant added to s
(rather than an initial value of the bias ``s.b``) follows Pyro's
``AffineAutoregressive(stable=True)``, whose ``sigmoid_bias`` defaults to 2.0. sigmoid(2) = 0.88.

The stack: step k (0-indexed) reads the variables in reversed order when k is odd,

    z_{k+1} = P_k f_k(P_k z_k),      P_k = reversal for odd k, identity for even k,

which is "reverse between steps" plus one final reversal when K is even, so z_K keeps the
coordinates of z_0 whatever K is. A permutation has |det| = 1: log|det dz_K/dz_0| = sum_k log|det df_k|.
"""
from __future__ import annotations

import numpy as np

from ..stable import sigmoid, softplus
from ..validate import check_cache, check_in_range, check_int
from .made import MADE
from .params import check_upstream


class IAFStep:
    """One IAF step z -> z' = sigma * z + (1 - sigma) * m, with (m, s) from a MADE on (z, context).

    Parameters
    ----------
    z_dim, context_dim : int
        D and C.
    hidden : sequence of int
        Hidden widths of the MADE, e.g. ``(64,)``.
    rng : numpy.random.Generator
        Draws the MADE's initial weights.
    activation : {"relu", "elu"}
    forget_bias : float
        Constant added to s before the sigmoid (see the module docstring).
    dtype : np.float32 or np.float64

    Attributes
    ----------
    params : dict
        The MADE's parameters (the same dict and arrays).
    """

    def __init__(self, z_dim: int, context_dim: int, hidden, *, rng: np.random.Generator,
                 activation: str = "relu", forget_bias: float = 2.0, dtype=np.float32):
        self.forget_bias = check_in_range("forget_bias", forget_bias, -np.inf, np.inf)
        self.made = MADE(z_dim, context_dim, hidden, rng=rng, activation=activation, dtype=dtype)
        self.params, self.dtype = self.made.params, self.made.dtype

    def forward(self, z: np.ndarray, context: np.ndarray):
        """Return ``(z_new (N, D), log_abs_det (N,), cache)`` for z (N, D), context (N, C).

        Notes
        -----
        Forward:  (m, s) = MADE(z, context);  t = s + forget_bias;  sigma = sigmoid(t);
                  one_minus_sigma = sigmoid(-t)  (not 1 - sigma, which cancels as sigma -> 1);
                  z_new = sigma * z + one_minus_sigma * m;  log_abs_det = -sum_i softplus(-t_i).
        Backward: dm = dz_new * (1 - sigma);  dsigma = dz_new * (z - m);
                  dt = dsigma * sigma * (1 - sigma) + dlog_abs_det * (1 - sigma)
                  (d log sigmoid(t) / dt = 1 - sigma);  ds = dt;
                  (dz_made, dcontext) = MADE backward of (dm, ds);  dz = dz_new * sigma + dz_made.
        """
        self.made.check_inputs(z, context)
        return self._forward(z, context)

    def _forward(self, z, context):
        """:meth:`forward` without input checks."""
        (m, s), made_cache = self.made.forward_unchecked(z, context)              # (N, D) each
        t = s + s.dtype.type(self.forget_bias)                           # (N, D)
        sigma = sigmoid(t)                                               # (N, D)
        one_minus_sigma = sigmoid(-t)                                    # (N, D)
        z_new = sigma * z + one_minus_sigma * m                          # (N, D)
        log_abs_det = -softplus(-t).sum(axis=1)                          # (N,)
        return z_new, log_abs_det, (z, m, sigma, one_minus_sigma, made_cache)

    def backward(self, dz_new: np.ndarray, dlog_abs_det, cache):
        """Return ``({"z": dz, "context": dcontext}, grads)``; grads keyed like ``params``.

        ``dz_new`` (N, D); ``dlog_abs_det`` (N,) or None for zeros. Pure: writes nothing it is
        given. Formulas in :meth:`forward`. NaN or inf in ``dz_new`` or ``dlog_abs_det`` is a
        FloatingPointError (the parameters have diverged; see ``flows.params.check_upstream``).
        """
        z = check_cache(cache, 5, "IAFStep.forward")[0]
        dlog_abs_det = check_upstream(dz_new, dlog_abs_det, z.shape, z.dtype)
        return self._backward(dz_new, dlog_abs_det, cache)

    def _backward(self, dz_new, dlog_abs_det, cache):
        """:meth:`backward` without input checks; ``dlog_abs_det`` is an array (N,)."""
        z, m, sigma, one_minus_sigma, made_cache = cache
        dm = dz_new * one_minus_sigma                                    # (N, D)
        dsigma = dz_new * (z - m)                                        # (N, D)
        dt = (dsigma * sigma + dlog_abs_det[:, None]) * one_minus_sigma  # (N, D)
        d_inputs, grads = self.made.backward_unchecked((dm, dt), made_cache)
        d_inputs["z"] = d_inputs["z"] + dz_new * sigma                   # (N, D)
        return d_inputs, grads


class IAF:
    """A stack of ``n_steps`` IAF steps, odd steps reading the variables in reversed order.

    Parameters
    ----------
    z_dim, context_dim : int
        D and C.
    hidden : sequence of int
        Hidden widths of every step's MADE, e.g. ``(64,)``.
    n_steps : int
        K >= 1.
    rng : numpy.random.Generator
        Draws every step's initial weights, step 0 first.
    activation : {"relu", "elu"}
    forget_bias : float
        See the module docstring.
    dtype : np.float32 or np.float64

    Attributes
    ----------
    params : dict
        ``"<k>.<name>"`` for parameter ``name`` of step k (the very arrays the steps use).
    steps : list of IAFStep
    """

    def __init__(self, z_dim: int, context_dim: int, hidden, n_steps: int, *,
                 rng: np.random.Generator, activation: str = "relu", forget_bias: float = 2.0,
                 dtype=np.float32):
        check_int("n_steps", n_steps, minimum=1)
        self.steps = [IAFStep(z_dim, context_dim, hidden, rng=rng, activation=activation,
                              forget_bias=forget_bias, dtype=dtype) for _ in range(n_steps)]
        self.dtype = self.steps[0].dtype
        self.params = {f"{k}.{name}": p for k, step in enumerate(self.steps)
                       for name, p in step.params.items()}

    def forward(self, z: np.ndarray, context: np.ndarray):
        """Return ``(z_new (N, D), log_abs_det (N,), cache)``: z_K and sum_k log|det df_k|.

        Notes
        -----
        Forward:  for k = 0..K-1: x = z if k even else z[:, ::-1];  (y, lad_k) = f_k(x, context);
                  z = y if k even else y[:, ::-1];  log_abs_det += lad_k.
        Backward: for k = K-1..0: dy = dz (reversed for odd k);  (dx, dcontext_k) = f_k backward of
                  (dy, dlog_abs_det);  dz = dx (reversed back for odd k);  dcontext += dcontext_k.
        """
        self.steps[0].made.check_inputs(z, context)
        log_abs_det = np.zeros(z.shape[0], dtype=z.dtype)                # (N,)
        caches = []
        for k, step in enumerate(self.steps):
            x = z[:, ::-1] if k % 2 else z                               # (N, D)
            y, lad, cache = step._forward(x, context)                    # (N, D), (N,)
            z = y[:, ::-1] if k % 2 else y                               # (N, D)
            log_abs_det += lad
            caches.append(cache)
        return np.ascontiguousarray(z), log_abs_det, tuple(caches)

    def backward(self, dz_new: np.ndarray, dlog_abs_det, cache):
        """Return ``({"z": dz, "context": dcontext}, grads)``; grads keyed like ``params``.

        ``dz_new`` (N, D); ``dlog_abs_det`` (N,) or None for zeros. Pure. NaN or inf in them is a
        FloatingPointError, as in :meth:`IAFStep.backward`.
        """
        z = check_cache(cache, len(self.steps), "IAF.forward")[0][0]
        dlog_abs_det = check_upstream(dz_new, dlog_abs_det, z.shape, z.dtype)
        dz, dcontext, grads = dz_new, 0, {}
        for k in range(len(self.steps) - 1, -1, -1):
            dy = dz[:, ::-1] if k % 2 else dz                            # (N, D)
            d_inputs, step_grads = self.steps[k]._backward(dy, dlog_abs_det, cache[k])
            dz = d_inputs["z"][:, ::-1] if k % 2 else d_inputs["z"]       # (N, D)
            dcontext = dcontext + d_inputs["context"]                    # (N, C)
            grads.update({f"{k}.{name}": g for name, g in step_grads.items()})
        return {"z": np.ascontiguousarray(dz), "context": dcontext}, grads
