"""Distributions whose log-density derivatives are written by hand, beside the density.

Plain-text model (r = x - mu, all logs natural; references: Kingma & Welling 2014, "Auto-Encoding
Variational Bayes", eq. 10 and Appendix B; Kingma & Welling 2019, "An Introduction to Variational
Autoencoders", §2.5 for the full-covariance Gaussian):

    standard normal   log N(x; 0, 1)      = -x^2/2 - log(2 pi)/2                        per entry
    Normal            log N(x; mu, s^2)   = -(r/s)^2/2 - log s - log(2 pi)/2,  s = exp(log_scale)
                      H                   = 1/2 + log(2 pi)/2 + log s
                      KL(q || N(0, 1))    = (s^2 + mu^2 - 1)/2 - log s          (K&W 2014 App. B)
                                          = (expm1mx(2 log s) + mu^2)/2,  expm1mx(v) = e^v - 1 - v
    MultivariateNormal, Sigma = L L^T, L lower triangular with L_ii > 0 (``scale_tril``):
                      log N(x; mu, Sigma) = -|u|^2/2 - sum_i log L_ii - D log(2 pi)/2,  u = L^-1 r
                      H                   = D (1 + log 2 pi)/2 + sum_i log L_ii
                      KL(q || N(0, I))    = (tr(L L^T) + mu^T mu - D)/2 - sum_i log L_ii
                                          = (sum_i expm1mx(2 log L_ii) + sum_{i>j} L_ij^2 + mu^T mu)/2
    Bernoulli         log p(x)            = x t - softplus(t),  t = logits, p = sigmoid(t)
                                          = (x t - max(t, 0)) - softplus(-|t|)
                      H                   = softplus(-|t|) + |t| sigmoid(-|t|)

Numerics. The second form of each KL has no cancellation: near the prior (s -> 1, mu -> 0) the
first form subtracts numbers of size 1 to get one of size (log s)^2 and comes out negative in
float32, while expm1mx (``scratchvae.stable``) keeps full relative accuracy. The second Bernoulli
form keeps the log-probability of the likely outcome, -softplus(-|t|) ~ -e^{-|t|}, exact where
x t - softplus(t) rounds it to 0 (t >= 15 in float32). The Normal standardizes r/s as
r * exp(-log_scale), and redoes the entries where exp(-log_scale) overflows (s subnormal or below,
log_scale < -88.7 in float32) as sign(r) exp(log|r| - log_scale), so r = 0 gives 0, not 0 * inf.

``log_prob`` is elementwise for the factorized families (no hidden sums); the multivariate normal
reduces over its event axis only. Every ``*_grads`` method returns a dict keyed by the argument or
parameter name, each entry the shape of that array, holding the partial derivative of the
per-element (per-event) value, so a caller's upstream gradient ``dout`` multiplies it directly.
Arguments are validated once at the boundary (constructors and public methods); the array kernels
behind them trust their inputs. dtype is preserved: constants are cast to the input's dtype.
Longer derivations: ``docs/distributions.md``.
"""
from __future__ import annotations

import math

import numpy as np

from .validate import check_float_array, check_rng, check_same_dtype, check_same_shape
from .stable import expm1mx, sigmoid, softplus, softplus_neg_abs

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _c(x: np.ndarray, value: float):
    """``value`` as a scalar of ``x``'s dtype, so float32 stays float32 (no silent upcast)."""
    return x.dtype.type(value)


def _check_like(name: str, x, ref_name: str, ref: np.ndarray) -> np.ndarray:
    """``x`` must be a finite float array with exactly ``ref``'s dtype and shape."""
    check_float_array(name, x)
    check_same_dtype(name, x, ref_name, ref)
    check_same_shape(name, x, ref_name, ref)
    return x


def check_scale_tril(name: str, L, loc: np.ndarray | None = None) -> np.ndarray:
    """Require a finite (..., D, D) lower-triangular array with a strictly positive diagonal.

    With ``loc`` (..., D) given, ``L`` must also have shape ``loc.shape + (D,)`` and loc's dtype.
    """
    check_float_array(name, L)
    if loc is not None:
        check_float_array("loc", loc)
    if L.ndim < 2 or L.shape[-1] != L.shape[-2]:
        raise ValueError(f"{name} must have shape (..., D, D) (square in its last two axes), got {L.shape}")
    if loc is not None:
        if L.shape != loc.shape + loc.shape[-1:]:
            raise ValueError(f"{name} must have shape {loc.shape + loc.shape[-1:]} to match loc of shape "
                             f"{loc.shape}, got {L.shape}")
        check_same_dtype(name, L, "loc", loc)
    upper = np.triu(L, 1)
    if np.any(upper != 0):
        raise ValueError(f"{name} must be lower triangular (zeros above the diagonal), got "
                         f"{np.count_nonzero(upper)} nonzero entries above it, largest |value| "
                         f"{np.abs(upper).max():.3g}")
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    if np.any(diag <= 0):
        raise ValueError(f"{name} must have a strictly positive diagonal, got {np.count_nonzero(diag <= 0)} "
                         f"diagonal entries <= 0 (smallest {diag.min():.3g})")
    return L


def _solve_tril(L, b):
    """u with L u = b by forward substitution, batched over leading axes. L (..., D, D), b (..., D).

    A loop over the D rows, each vectorized over the batch: exact triangular arithmetic, O(B D^2),
    and faster than a general batched LU solve for the latent sizes a VAE uses (D <= ~100).
    """
    u = np.empty_like(b)
    for i in range(b.shape[-1]):
        acc = np.einsum("...j,...j->...", L[..., i, :i], u[..., :i])           # (...,)
        u[..., i] = (b[..., i] - acc) / L[..., i, i]
    return u


def _solve_tril_transpose(L, b):
    """v with L^T v = b by back substitution (L^T is upper triangular). L (..., D, D), b (..., D)."""
    v = np.empty_like(b)
    for i in range(b.shape[-1] - 1, -1, -1):
        acc = np.einsum("...j,...j->...", L[..., i + 1:, i], v[..., i + 1:])   # (...,)
        v[..., i] = (b[..., i] - acc) / L[..., i, i]
    return v


def _standardize(r, log_scale):
    """r * exp(-log_scale) (= r / s) without 0 * inf: entries where exp(-log_scale) overflows are
    recomputed as sign(r) exp(log|r| - log_scale), which is 0 for r = 0 and overflows only when
    r / s itself does. Bit-identical to r * exp(-log_scale) wherever that is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = r * np.exp(-log_scale)
    bad = ~np.isfinite(z)
    if np.any(bad):                                                        # the rare path
        rb, lb = r[bad], log_scale[bad]
        with np.errstate(over="ignore", divide="ignore"):
            z[bad] = np.sign(rb) * np.exp(np.log(np.abs(rb)) - lb)
    return z


def _diag_embed(d):
    """(..., D) -> (..., D, D) with ``d`` on the diagonal and zeros elsewhere."""
    return d[..., :, None] * np.eye(d.shape[-1], dtype=d.dtype)


def standard_normal_log_prob(x):
    """Elementwise log N(x; 0, 1) = -x^2/2 - log(2 pi)/2. x: any shape, float32/float64."""
    check_float_array("x", x)
    return -_c(x, 0.5) * x * x - _c(x, HALF_LOG_2PI)


def standard_normal_log_prob_grad(x):
    """Elementwise d/dx log N(x; 0, 1) = -x (same shape and dtype as x)."""
    check_float_array("x", x)
    return -x


class Normal:
    """Diagonal Gaussian N(loc, exp(log_scale)^2), parameterized by log sigma (``log_scale``).

    Parameters
    ----------
    loc : ndarray, any shape
        Mean mu.
    log_scale : ndarray, same shape and dtype as ``loc``
        log sigma (not log sigma^2). No broadcasting.

    Notes
    -----
    With s = exp(log_scale), r = x - loc:
    log_prob = -(r/s)^2/2 - log_scale - log(2 pi)/2;  d/dx = -r/s^2,  d/dloc = r/s^2,
    d/dlog_scale = (r/s)^2 - 1.  rsample(eps) = loc + s * eps.  entropy = 1/2 + log(2 pi)/2 +
    log_scale, d/dlog_scale = 1.  KL to N(0, 1) = (s^2 + loc^2 - 1)/2 - log_scale, d/dloc = loc,
    d/dlog_scale = s^2 - 1.
    """

    def __init__(self, loc, log_scale):
        check_float_array("loc", loc)
        check_float_array("log_scale", log_scale)
        check_same_shape("loc", loc, "log_scale", log_scale)
        check_same_dtype("loc", loc, "log_scale", log_scale)
        self.loc, self.log_scale = loc, log_scale

    @property
    def scale(self):
        """sigma = exp(log_scale)."""
        return np.exp(self.log_scale)

    @property
    def var(self):
        """sigma^2 = exp(2 log_scale)."""
        return np.exp(_c(self.log_scale, 2) * self.log_scale)

    def log_prob(self, x):
        """Elementwise log density of ``x`` (shape and dtype of ``loc``); returns that shape."""
        _check_like("x", x, "loc", self.loc)
        z = _standardize(x - self.loc, self.log_scale)                     # r / s
        with np.errstate(over="ignore"):                                   # |r/s| > 1e19: -inf
            return -_c(z, 0.5) * z * z - self.log_scale - _c(z, HALF_LOG_2PI)

    def log_prob_grads(self, x):
        """Elementwise partials of ``log_prob(x)``: dict(x, loc, log_scale), each of x's shape."""
        _check_like("x", x, "loc", self.loc)
        z = _standardize(x - self.loc, self.log_scale)                     # r / s
        dloc = _standardize(z, self.log_scale)                             # r / s^2
        with np.errstate(over="ignore"):
            return {"x": -dloc, "loc": dloc, "log_scale": z * z - _c(z, 1)}

    def rsample(self, eps):
        """Reparameterized sample loc + exp(log_scale) * eps; eps of loc's shape and dtype.

        Gradients of this map with its log-determinant: :func:`scratchvae.transforms.diagonal_affine`.
        """
        _check_like("eps", eps, "loc", self.loc)
        return self.loc + np.exp(self.log_scale) * eps

    def sample(self, rng):
        """Draw with ``rng`` (numpy.random.Generator): rsample(standard normal of loc's shape)."""
        check_rng("rng", rng)
        return self.rsample(rng.standard_normal(self.loc.shape, dtype=self.loc.dtype))

    def entropy(self):
        """Elementwise differential entropy, shape of loc."""
        return _c(self.log_scale, 0.5 + HALF_LOG_2PI) + self.log_scale

    def entropy_grads(self):
        """dict(log_scale=ones): the entropy does not depend on loc."""
        return {"log_scale": np.ones_like(self.log_scale)}

    def kl_to_standard_normal(self):
        """Elementwise KL(N(loc, s^2) || N(0, 1)) = (expm1mx(2 log_scale) + loc^2)/2 >= 0.

        The same number as (s^2 + loc^2 - 1)/2 - log_scale, without its cancellation near the prior.
        """
        two_ls = _c(self.log_scale, 2) * self.log_scale
        return _c(self.loc, 0.5) * (expm1mx(two_ls) + self.loc * self.loc)

    def kl_to_standard_normal_grads(self):
        """dict(loc=loc, log_scale=s^2 - 1 = expm1(2 log_scale)), elementwise."""
        with np.errstate(over="ignore"):
            return {"loc": self.loc.copy(), "log_scale": np.expm1(_c(self.log_scale, 2) * self.log_scale)}


def gaussian_log_prob(x, loc, log_scale):
    """Functional form of ``Normal(loc, log_scale).log_prob(x)`` (elementwise, same shapes)."""
    return Normal(loc, log_scale).log_prob(x)


class MultivariateNormal:
    """Full-covariance Gaussian N(loc, L L^T) from its lower Cholesky factor L = ``scale_tril``.

    Parameters
    ----------
    loc : ndarray (..., D)
        Mean; leading axes are a batch of independent distributions.
    scale_tril : ndarray (..., D, D), dtype of ``loc``
        Lower triangular with a strictly positive diagonal (refused otherwise). Build one from
        unconstrained numbers with :func:`scratchvae.transforms.tril_from_params`.

    Notes
    -----
    With r = x - loc, u = L^-1 r (forward substitution), v = L^-T u (back substitution):
    log_prob = -|u|^2/2 - sum_i log L_ii - D log(2 pi)/2, shape (...,);  d/dx = -v,  d/dloc = v,
    d/dL = tril(v u^T) - diag(1/L_ii).  rsample(eps) = loc + L eps.
    entropy = D (1 + log 2 pi)/2 + sum_i log L_ii, d/dL = diag(1/L_ii).
    KL to N(0, I) = (|L|_F^2 + |loc|^2 - D)/2 - sum_i log L_ii, d/dloc = loc,
    d/dL = L - diag(1/L_ii).  Gradients w.r.t. L cover its lower triangle; entries above are 0.
    """

    def __init__(self, loc, scale_tril):
        check_float_array("loc", loc)
        if loc.ndim < 1:
            raise ValueError(f"loc must have shape (..., D) with at least one axis, got {loc.shape}")
        check_scale_tril("scale_tril", scale_tril, loc)
        self.loc, self.scale_tril = loc, scale_tril

    def _diag(self):
        return np.diagonal(self.scale_tril, axis1=-2, axis2=-1)            # (..., D)

    @property
    def covariance_matrix(self):
        """Sigma = L L^T, shape (..., D, D)."""
        return self.scale_tril @ np.swapaxes(self.scale_tril, -1, -2)

    def log_prob(self, x):
        """Log density of each event ``x`` (..., D) (loc's shape and dtype); returns (...,)."""
        _check_like("x", x, "loc", self.loc)
        D = x.shape[-1]
        u = _solve_tril(self.scale_tril, x - self.loc)                     # (..., D)
        log_det = np.log(self._diag()).sum(-1)                              # (...,)
        return -_c(u, 0.5) * (u * u).sum(-1) - log_det - _c(u, D * HALF_LOG_2PI)

    def log_prob_grads(self, x):
        """Partials of ``log_prob(x)``: dict(x (..., D), loc (..., D), scale_tril (..., D, D))."""
        _check_like("x", x, "loc", self.loc)
        u = _solve_tril(self.scale_tril, x - self.loc)                     # (..., D)
        v = _solve_tril_transpose(self.scale_tril, u)                       # (..., D)
        dL = np.tril(v[..., :, None] * u[..., None, :]) - _diag_embed(1 / self._diag())  # (..., D, D)
        return {"x": -v, "loc": v, "scale_tril": dL}

    def rsample(self, eps):
        """loc + L eps for eps (..., D) of loc's shape and dtype; returns (..., D).

        Gradients with the log-determinant: :func:`scratchvae.transforms.tril_affine`.
        """
        _check_like("eps", eps, "loc", self.loc)
        return self.loc + (self.scale_tril @ eps[..., None])[..., 0]

    def sample(self, rng):
        """Draw with ``rng`` (numpy.random.Generator); returns (..., D)."""
        check_rng("rng", rng)
        return self.rsample(rng.standard_normal(self.loc.shape, dtype=self.loc.dtype))

    def entropy(self):
        """Differential entropy of each distribution, shape (...,)."""
        D = self.loc.shape[-1]
        return _c(self.loc, D * (0.5 + HALF_LOG_2PI)) + np.log(self._diag()).sum(-1)

    def entropy_grads(self):
        """dict(scale_tril=diag(1/L_ii)), shape (..., D, D)."""
        return {"scale_tril": _diag_embed(1 / self._diag())}

    def kl_to_standard_normal(self):
        """KL(N(loc, L L^T) || N(0, I)) of each distribution, shape (...,), >= 0.

        (sum_i expm1mx(2 log L_ii) + sum_{i>j} L_ij^2 + |loc|^2)/2: the terms of
        (tr(L L^T) + |loc|^2 - D)/2 - sum_i log L_ii regrouped so that none cancels near L = I.
        """
        L, mu = self.scale_tril, self.loc
        diag, low = self._diag(), np.tril(L, -1)                             # (..., D), (..., D, D)
        off = (low * low).sum((-2, -1))                                       # sum_{i>j} L_ij^2
        return _c(mu, 0.5) * (expm1mx(_c(mu, 2) * np.log(diag)).sum(-1) + off + (mu * mu).sum(-1))

    def kl_to_standard_normal_grads(self):
        """dict(loc=loc (..., D), scale_tril=L - diag(1/L_ii) (..., D, D)).

        The diagonal L_ii - 1/L_ii is computed as (L_ii - 1)(L_ii + 1)/L_ii (no cancellation at 1).
        """
        diag = self._diag()
        dL = np.tril(self.scale_tril, -1)
        i = np.arange(diag.shape[-1])
        dL[..., i, i] = (diag - _c(diag, 1)) * (diag + _c(diag, 1)) / diag
        return {"loc": self.loc.copy(), "scale_tril": dL}


def _bernoulli_log_prob(x, t):
    """(x t - max(t, 0)) - softplus(-|t|): x t - softplus(t) without rounding away small values."""
    return (x * t - np.maximum(t, _c(t, 0))) - softplus_neg_abs(t)


def bernoulli_log_prob(x, logits):
    """Continuous extension x * logits - softplus(logits), elementwise, for any real ``x``.

    Computed as (x t - max(t, 0)) - softplus(-|t|): exact to rounding also where the answer is
    tiny (x = 1 with t >= 15 in float32, where x t - softplus(t) rounds to exactly 0).

    Equals ``Bernoulli(logits).log_prob(x)`` on 0/1 data and is minus the binary cross-entropy
    with logits for targets in [0, 1] (grey-level images). x: logits' shape and dtype.
    """
    check_float_array("logits", logits)
    _check_like("x", x, "logits", logits)
    return _bernoulli_log_prob(x, logits)


def bernoulli_log_prob_grads(x, logits):
    """Partials of :func:`bernoulli_log_prob`: dict(x=logits, logits=x - sigmoid(logits))."""
    check_float_array("logits", logits)
    _check_like("x", x, "logits", logits)
    return {"x": logits.copy(), "logits": x - sigmoid(logits)}


class Bernoulli:
    """Bernoulli distribution from ``logits`` t (p = sigmoid(t)), elementwise.

    Parameters
    ----------
    logits : ndarray, any shape, float32 or float64

    Notes
    -----
    log_prob(x) = x t - softplus(t) = (x t - max(t, 0)) - log1p(e^-|t|) (no overflow, and no
    rounding to 0 of the likely outcome's log-probability at large |t|);
    d/dt = x - sigmoid(t), d/dx = t (derivative of the linear-in-x continuous extension).
    probs = sigmoid(t) = exp(-softplus(-t)).  entropy = softplus(-|t|) + |t| sigmoid(-|t|),
    the form of softplus(t) - t sigmoid(t) without cancellation at large |t|;
    d/dt entropy = -t sigmoid(t) sigmoid(-t).
    """

    def __init__(self, logits):
        check_float_array("logits", logits)
        self.logits = logits

    @property
    def probs(self):
        """p = sigmoid(logits), computed stably."""
        return sigmoid(self.logits)

    @property
    def mean(self):
        """E[x] = p."""
        return self.probs

    def _check_binary(self, x):
        _check_like("x", x, "logits", self.logits)
        bad = (x != 0) & (x != 1)
        if np.any(bad):
            raise ValueError(f"x must contain only 0 and 1 (Bernoulli observations), got "
                             f"{np.count_nonzero(bad)} other value(s), e.g. {float(x[bad].flat[0]):g}; "
                             f"for grey levels use bernoulli_log_prob")

    def log_prob(self, x):
        """Elementwise log p(x) for 0/1-valued x of logits' shape and dtype."""
        self._check_binary(x)
        return _bernoulli_log_prob(x, self.logits)

    def log_prob_grads(self, x):
        """dict(logits=x - sigmoid(logits), x=logits), elementwise."""
        self._check_binary(x)
        return {"logits": x - self.probs, "x": self.logits.copy()}

    def sample(self, rng):
        """0/1 draws with ``rng`` (numpy.random.Generator), logits' shape and dtype."""
        check_rng("rng", rng)
        u = rng.random(self.logits.shape, dtype=self.logits.dtype)
        return (u < self.probs).astype(self.logits.dtype)

    def entropy(self):
        """Elementwise entropy in nats."""
        a = np.abs(self.logits)
        return softplus(-a) + a * sigmoid(-a)

    def entropy_grads(self):
        """dict(logits=-t sigmoid(t) sigmoid(-t)), elementwise."""
        t = self.logits
        return {"logits": -t * sigmoid(t) * sigmoid(-t)}
