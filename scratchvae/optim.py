"""Optimizers: the only code in scratchvae that writes parameters.

Each optimizer holds a reference to the model's ``params`` dict and updates those arrays in
place from a ``grads`` dict with the same keys, shapes and dtypes. All arithmetic stays in the
parameters' dtype (float32 parameters get float32 state and float32 updates).

Updates, for a parameter p with gradient g of the *loss* (we minimize; to maximize the ELBO pass
the gradient of -ELBO), step t = 1, 2, ...:

    SGD with momentum:  v <- mu v - lr g;                    p <- p + v
    Adagrad (Duchi et al. 2011; used by Kingma & Welling 2014):
                        s <- s + g^2;                        p <- p - lr g / (sqrt(s) + eps)
    Adam (Kingma & Ba 2015, Algorithm 1, with the bias correction folded into the step size):
                        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
                        lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
                        p <- p - lr_t m / (sqrt(v) + eps sqrt(1 - b2^t))

Subnormal numbers. A parameter whose gradient is exactly zero for a long time (the weight of an
MNIST border pixel that is always 0) has its momentum decay geometrically: m = 0.9^t m_0. In
float32, after ~800 steps m falls below 1.2e-38 and becomes *subnormal*; and since 0.9 times
the smallest subnormal rounds back to itself, it stays there for good. Many x86 CPUs take a slow
microcode path for subnormal operands (a plain NumPy Adam was measured 2.2x slower per epoch
from epoch 2 on; `bench/bench_adam_subnormal.py` measures the penalty on the machine at hand).
We flush decaying state with ``_flush_subnormals``: adding then subtracting a constant c with
c * eps_mach / 2 > tiny rounds every |m| < tiny to exactly 0 and leaves every |m| > 7e-24
(float32) bit-for-bit unchanged. Two cheap in-place passes, no mask, no branch. (A decaying m
ends at 0 or stalls a few grid steps ulp(c) above it, ~1e-37: normal numbers, harmless.)

Non-finite gradients. A NaN or inf in a gradient would turn every later parameter into NaN. Every
``step`` first computes, per gradient array, the dot product g.g (one fast BLAS reduction; NaN or
inf whenever any entry is, and otherwise finite unless the entries are ~1e19, when the array is
inspected entry by entry), and refuses the whole step with a FloatingPointError naming the
parameter before anything is written. The check is one extra read of the gradients (about 3% of
an epoch of the MNIST VAE); checking each piece inside the update instead cost the same and
could only refuse half a step.

Speed (Adam). The update is a dozen elementwise passes over each parameter array. Run on the
whole array, each pass streams it from memory again; :class:`Adam` runs all of them on one piece
of ``_PIECE_BYTES`` at a time, which stays in the L2 cache between passes. The arithmetic of each
entry is the same either way (so are the results, bit for bit). ``bench/README.md`` has the
measurements.
"""
from __future__ import annotations

import numpy as np

from .validate import check_in_range, check_int, check_mapping, check_positive

_PIECE_BYTES = 1 << 18   # 256 KiB per array and piece: p, g, m, v and the scratch fit in L2 (2 MiB)


def _flush_constant(dtype) -> np.generic:
    """c = 4 tiny / eps, so that (x + c) - c is exactly 0 for every subnormal x.

    ulp(c) >= 2 tiny, so any |x| < tiny is below half an ulp of c and x + c rounds to c. For
    |x| > 2 c / eps (float32: ~7e-24, float64: ~4e-276) c is below half an ulp of x, so x + c == x
    and the round trip is exact; in between, x moves by at most ulp(c) / 2 (~3e-38 in float32).
    """
    info = np.finfo(dtype)
    return dtype.type(4 * info.tiny / info.eps)  # float32: 4.0e-31, float64: 4.0e-292


def _flush_subnormals(x: np.ndarray, c) -> None:
    """Round every subnormal entry of ``x`` to zero, in place (see the module docstring)."""
    x += c
    x -= c


def _check_finite(name: str, g: np.ndarray) -> None:
    """FloatingPointError naming ``grads[name]`` unless every entry of ``g`` is finite.

    g.g is NaN or inf exactly when an entry is, or when finite entries overflow the sum (|g| of
    ~1e19 in float32); only then is ``g`` inspected entry by entry.
    """
    flat = g.reshape(-1)
    if np.isfinite(np.dot(flat, flat)):
        return
    bad = int(np.count_nonzero(~np.isfinite(g)))
    if bad:
        raise FloatingPointError(f"grads[{name!r}] has {bad} NaN or inf entries of {g.size}: step "
                                 f"refused, no parameter changed (the model has diverged; a lower "
                                 f"learning rate may help)")


class Optimizer:
    """Base class: validates that grads match params and keeps the step count."""

    def __init__(self, params: dict, lr: float):
        if not isinstance(params, dict) or not params:
            raise TypeError("params must be a non-empty dict of name -> ndarray")
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                raise TypeError(f"params[{name!r}] must be a float32 or float64 ndarray, "
                                f"got {getattr(p, 'dtype', type(p).__name__)}")
            if not p.flags.c_contiguous or not p.flags.writeable:
                raise ValueError(f"params[{name!r}] must be a writeable C-contiguous array (it is "
                                 f"updated in place through flat views), got a strided view or a "
                                 f"read-only array; pass np.ascontiguousarray of it to the model")
        self.params = params
        self.lr = check_positive("lr", lr)
        self.t = 0
        self.state = {}  # name -> {slot: ndarray}

    def _check_grads(self, grads: dict) -> None:
        """Same keys, shapes and dtypes as ``params``, and every entry finite; raises before any
        parameter or state is written."""
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict of name -> ndarray, got {type(grads).__name__}")
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(f"grads must have the keys of params; missing {missing}, unexpected {extra}")
        for name, g in grads.items():
            p = self.params[name]
            if not isinstance(g, (np.ndarray, np.generic)):
                raise TypeError(f"grads[{name!r}] must be an ndarray, got {type(g).__name__}")
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(f"grads[{name!r}] must have shape {p.shape} and dtype {p.dtype}, "
                                 f"got {g.shape} and {g.dtype}")
        with np.errstate(over="ignore"):               # g.g may overflow: _check_finite
            for name, g in grads.items():
                _check_finite(name, g)

    def step(self, grads: dict) -> None:
        """Apply one update from ``grads`` (the gradient of the loss to minimize)."""
        self._check_grads(grads)
        self.t += 1
        for name, p in self.params.items():
            self._update(p, grads[name], self.state[name])

    def state_dict(self) -> dict:
        """Flat dict of arrays (for checkpoints): ``"t"`` and ``"<param>/<slot>"``."""
        out = {"t": np.array(self.t, dtype=np.int64)}
        for name, slots in self.state.items():
            for slot, arr in slots.items():
                out[f"{name}/{slot}"] = arr.copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises ValueError (TypeError for a non-integer step count) for missing or unexpected
        keys, a step count ``t`` < 0, or a slot of the wrong shape or dtype or with NaN/inf
        entries; nothing is restored then.
        """
        check_mapping("state", state)
        expected = {f"{n}/{s}" for n, slots in self.state.items() for s in slots} | {"t"}
        if set(state) != expected:
            raise ValueError(f"optimizer state has keys {sorted(set(state))[:6]}..., "
                             f"expected {sorted(expected)[:6]}... ({len(expected)} keys)")
        t = state["t"]
        if np.ndim(t) != 0 or np.asarray(t).dtype.kind not in "iu" or isinstance(t, bool):
            raise TypeError(f"optimizer state 't' (the step count) must be an integer scalar, "
                            f"got {type(t).__name__} {t!r}")
        t = check_int("optimizer state 't' (the step count)", int(t), minimum=0)
        for name, slots in self.state.items():
            for slot, arr in slots.items():
                new = state[f"{name}/{slot}"]
                if not isinstance(new, np.ndarray) or new.shape != arr.shape or new.dtype != arr.dtype:
                    raise ValueError(f"optimizer state {name}/{slot} has shape "
                                     f"{getattr(new, 'shape', None)} dtype {getattr(new, 'dtype', type(new).__name__)}, "
                                     f"expected {arr.shape} {arr.dtype}")
                if not np.all(np.isfinite(new)):
                    raise ValueError(f"optimizer state {name}/{slot} has NaN or inf entries")
        for name, slots in self.state.items():
            for slot, arr in slots.items():
                arr[...] = state[f"{name}/{slot}"]
        self.t = t


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum ``mu`` in [0, 1)."""

    def __init__(self, params: dict, lr: float = 1e-2, momentum: float = 0.9):
        super().__init__(params, lr)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, high_open=True)
        self.state = {n: {"velocity": np.zeros_like(p)} for n, p in params.items()}

    def _update(self, p, g, state):
        v, dt = state["velocity"], p.dtype.type
        v *= dt(self.momentum)     # v <- mu v
        v -= dt(self.lr) * g       #      - lr g
        _flush_subnormals(v, _flush_constant(p.dtype))
        p += v                     # p <- p + v


class Adagrad(Optimizer):
    """Adagrad: per-coordinate step lr / sqrt(sum of squared gradients)."""

    def __init__(self, params: dict, lr: float = 1e-2, eps: float = 1e-8):
        super().__init__(params, lr)
        self.eps = check_positive("eps", eps)
        self.state = {n: {"sum_sq": np.zeros_like(p)} for n, p in params.items()}

    def _update(self, p, g, state):
        s, dt = state["sum_sq"], p.dtype.type
        s += g * g                                      # s <- s + g^2 (never decays: no flush)
        p -= dt(self.lr) * g / (np.sqrt(s) + dt(self.eps))


class Adam(Optimizer):
    """Adam with bias correction; state in the parameters' dtype, subnormals flushed.

    The update runs piece by piece (module docstring) with ``out=`` into one scratch buffer, so a
    step makes no temporary arrays: 12 in-place passes over each piece, plus two each for m and
    v to flush subnormals. With ``flush_every=1`` the state never holds a subnormal between
    steps; the default 10 flushes every tenth step (an entry can then stay subnormal for at
    most 9 steps: the time a decaying moment takes to cross the subnormal range is what
    matters, and crossing it once per entry costs little); ``flush_every=0`` disables flushing
    (for the benchmark that shows what it is for).
    """

    def __init__(self, params: dict, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, flush_every: int = 10):
        super().__init__(params, lr)
        self.beta1 = check_in_range("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = check_in_range("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = check_positive("eps", eps)
        self.flush_every = check_int("flush_every", flush_every, minimum=0)
        self.state = {n: {"m": np.zeros(p.shape, p.dtype), "v": np.zeros(p.shape, p.dtype)}
                      for n, p in params.items()}
        self._scratch = {dt: np.empty(_PIECE_BYTES // dt.itemsize, dtype=dt)
                         for dt in {p.dtype for p in params.values()}}

    def step(self, grads: dict) -> None:
        """One Adam update from ``grads`` (gradients of the loss, keys and shapes of ``params``).

        Raises FloatingPointError (naming the parameter) when a gradient has NaN or inf entries,
        before anything changes; ValueError/TypeError for missing keys, wrong shapes or dtypes.
        """
        self._check_grads(grads)
        self.t += 1
        bc2 = np.sqrt(1 - self.beta2 ** self.t)
        lr_t = self.lr * bc2 / (1 - self.beta1 ** self.t)
        eps_t = self.eps * bc2
        flush = bool(self.flush_every) and self.t % self.flush_every == 0
        for name, p in self.params.items():
            m, v, dt = self.state[name]["m"], self.state[name]["v"], p.dtype.type
            consts = (dt(self.beta1), dt(1 - self.beta1), dt(self.beta2), dt(1 - self.beta2),
                      dt(lr_t), dt(eps_t), _flush_constant(p.dtype) if flush else None)
            tmp = self._scratch[p.dtype]
            for pieces in _pieces(tmp.size, p, grads[name], m, v):
                self._update(*pieces, tmp[:pieces[0].size], *consts)

    @staticmethod
    def _update(p, g, m, v, tmp, b1, c1, b2, c2, lr_t, eps_t, flush_c):
        """Kingma & Ba (2015), Algorithm 1, with the bias correction folded into lr_t and eps_t:
            m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   p <- p - lr_t m / (sqrt(v) + eps_t)
        in place on 1-D pieces, ``tmp`` the scratch (c1 = 1 - b1, c2 = 1 - b2)."""
        np.multiply(g, c1, out=tmp)
        m *= b1
        m += tmp                                   # m <- b1 m + (1 - b1) g
        np.multiply(g, g, out=tmp)
        tmp *= c2
        v *= b2
        v += tmp                                   # v <- b2 v + (1 - b2) g^2
        if flush_c is not None:
            _flush_subnormals(m, flush_c)
            _flush_subnormals(v, flush_c)
        np.sqrt(v, out=tmp)
        tmp += eps_t
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp                                   # p <- p - lr_t m / (sqrt(v) + eps_t)


def _pieces(size: int, *arrays):
    """Matching 1-D slices of ``size`` entries of arrays of one shape (flat views of the
    C-contiguous ones; a strided gradient is copied once)."""
    flat = [a.reshape(-1) if a.flags.c_contiguous else np.ravel(a) for a in arrays]
    for start in range(0, flat[0].size, size):
        yield tuple(f[start:start + size] for f in flat)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}
