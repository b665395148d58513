"""Two estimators of a gradient of an expectation: score function vs reparameterization.

The problem (Mohamed, Rosca, Figurnov & Mnih 2020, "Monte Carlo Gradient Estimation in Machine
Learning", sections 4 and 5; Kingma & Welling 2014 section 2.4; Williams 1992 for REINFORCE):

    grad_phi E_{q_phi}[f(z)],   q_phi = N(mu, diag sigma^2),   phi = (mu, log sigma) = (loc, log_scale)

Score function (log-derivative trick; REINFORCE), from grad q = q grad log q:

    grad_phi E_q[f] = E_q[ f(z) grad_phi log q_phi(z) ]
                    ~ (1/S) sum_s (f(z_s) - b_s) grad_phi log q_phi(z_s),   z_s ~ q_phi

    with a baseline b_s that does not depend on z_s (E_q[grad log q] = 0, so it adds no bias):
    b_s = 0, a constant, or the leave-one-out mean (1/(S-1)) sum_{t != s} f(z_t).

Reparameterization (pathwise), z = g(eps, phi) = mu + sigma * eps with eps ~ N(0, I):

    grad_phi E_q[f] = E_eps[ grad_z f(g(eps, phi)) dg/dphi ]
                    ~ (1/S) sum_s grad_z f(z_s) dz_s/dphi

    dz/dmu = 1 and dz/dlog sigma = sigma * eps (``transforms.diagonal_affine_backward``).

The score function needs only values of f; the pathwise estimator needs grad_z f but usually has
far lower variance. Both are applied to closed-form objectives (where E_q[f] and its gradient are
known, so bias and variance are measured against the truth) and to the encoder of a VAE, where
f(z) = log p(x, z) - log q(z|x) and the exact ELBO gradient comes from Gauss-Hermite quadrature
(that part lives in :mod:`scratchvae.lab.estimators_vae`).
``elbo_full_gaussian`` is the pathwise ELBO gradient for a full-covariance q and any log density.

Shapes: ``loc``, ``log_scale`` (D,); noise ``eps`` (..., S, D), samples on axis -2 and any number
of independent repetitions in front; f maps (..., D) -> (...), grad_f (..., D) -> (..., D).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validate import (check_callable, check_choice, check_float_array, check_int,
                        check_int_sequence, check_model, check_real, check_rng, check_same_dtype,
                        check_same_shape)
from ..distributions import Normal
from ..transforms import (diagonal_affine, diagonal_affine_backward, log_q_via_jacobian,
                         tril_affine, tril_affine_backward, tril_from_params,
                         tril_from_params_backward)

METHODS = ("score", "reparam")


# ------------------------------------------------------------------------------ objectives
class Quadratic:
    """f(z) = sum_i (z_i - a_i)^2 with E_q f = sum_i (mu_i - a_i)^2 + sigma_i^2.

    Notes
    -----
    grad_z f = 2 (z - a).  d E/d mu = 2 (mu - a);  d E/d log sigma = 2 sigma^2.
    """

    def __init__(self, target):
        self.target = _check_params_1d(target=target)

    def f(self, z):
        """f(z) for z (..., D), the target's dtype; returns (...,)."""
        _check_z(z, self.target)
        return ((z - self.target) ** 2).sum(-1)                          # (...,)

    def grad_f(self, z):
        """grad_z f (..., D)."""
        _check_z(z, self.target)
        return 2 * (z - self.target)                                     # (..., D)

    def expectation(self, loc, log_scale):
        """E_q f for q = N(loc, exp(log_scale)^2), loc and log_scale (D,): a float."""
        _check_z(loc, self.target, "loc", log_scale=log_scale)
        return float(((loc - self.target) ** 2 + np.exp(2 * log_scale)).sum())

    def expectation_grads(self, loc, log_scale):
        """dict(loc, log_scale) of d E_q f, each (D,)."""
        _check_z(loc, self.target, "loc", log_scale=log_scale)
        return {"loc": 2 * (loc - self.target), "log_scale": 2 * np.exp(2 * log_scale)}


class Sinusoid:
    """f(z) = sum_i sin(w_i z_i + c_i) with E_q f = sum_i sin(w_i mu_i + c_i) exp(-w_i^2 sigma_i^2 / 2).

    Notes
    -----
    (E[e^{i w z}] = e^{i w mu - w^2 sigma^2 / 2}, imaginary part.)  grad_z f = w cos(w z + c).
    With d = exp(-w^2 sigma^2 / 2): d E/d mu = w cos(w mu + c) d;
    d E/d log sigma = -w^2 sigma^2 sin(w mu + c) d.
    """

    def __init__(self, freq, phase):
        self.freq, self.phase = _check_params_1d(freq=freq, phase=phase)

    def f(self, z):
        """f(z) for z (..., D), freq's dtype; returns (...,)."""
        _check_z(z, self.freq)
        return np.sin(self.freq * z + self.phase).sum(-1)

    def grad_f(self, z):
        """grad_z f (..., D)."""
        _check_z(z, self.freq)
        return self.freq * np.cos(self.freq * z + self.phase)

    def _parts(self, loc, log_scale):
        w2s2 = (self.freq * np.exp(log_scale)) ** 2
        return self.freq * loc + self.phase, w2s2, np.exp(-0.5 * w2s2)

    def expectation(self, loc, log_scale):
        """E_q f for q = N(loc, exp(log_scale)^2), loc and log_scale (D,): a float."""
        _check_z(loc, self.freq, "loc", log_scale=log_scale)
        u, _, d = self._parts(loc, log_scale)
        return float((np.sin(u) * d).sum())

    def expectation_grads(self, loc, log_scale):
        """dict(loc, log_scale) of d E_q f, each (D,)."""
        _check_z(loc, self.freq, "loc", log_scale=log_scale)
        u, w2s2, d = self._parts(loc, log_scale)
        return {"loc": self.freq * np.cos(u) * d, "log_scale": -w2s2 * np.sin(u) * d}


def _check_params_1d(**arrays):
    """Finite float (D,) arrays with D >= 1, one shape and one dtype; returned in order."""
    (name0, a0), *rest = arrays.items()
    check_float_array(name0, a0, ndim=1)
    if a0.shape[0] == 0:
        raise ValueError(f"{name0} must hold at least one entry (D >= 1), got shape {a0.shape}")
    for name, a in rest:
        check_float_array(name, a, ndim=1)
        check_same_shape(name, a, name0, a0)
        check_same_dtype(name, a, name0, a0)
    return a0 if not rest else (a0, *(a for _, a in rest))


def _check_z(z, ref, name="z", log_scale=None):
    """``z`` (..., D) (or (D,) with ``log_scale`` beside it) of the objective's dtype and D."""
    check_float_array(name, z, dtype=ref.dtype, like="the objective's parameters")
    if log_scale is not None:
        _check_params_1d(**{name: z, "log_scale": log_scale})
    if z.ndim < 1 or z.shape[-1] != ref.shape[0]:
        raise ValueError(f"{name} must have shape (..., {ref.shape[0]}), got {z.shape}")


# ------------------------------------------------------------------------------ estimators
def _check_q(loc, log_scale, eps):
    check_float_array("loc", loc, ndim=1)
    check_float_array("log_scale", log_scale, ndim=1)
    check_same_shape("loc", loc, "log_scale", log_scale)
    check_same_dtype("loc", loc, "log_scale", log_scale)
    check_float_array("eps", eps, dtype=loc.dtype, like="loc")
    if eps.ndim < 2 or eps.shape[-1] != loc.shape[0]:
        raise ValueError(f"eps must have shape (..., S, {loc.shape[0]}) (samples on axis -2, D of "
                         f"loc last), got {eps.shape}")


def check_baseline(baseline, fz_shape, dtype=None):
    """None, "loo", a finite real number, or an array of f-values' shape (..., S) (and ``dtype``)."""
    if baseline is None:
        return baseline
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, bool):
        return check_real("baseline", baseline)
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"baseline must be None, 'loo', a number or an array, got {baseline!r}")
        if fz_shape[-1] < 2:
            raise ValueError(f"the leave-one-out baseline needs S >= 2 samples, got S = {fz_shape[-1]}")
        return baseline
    if isinstance(baseline, np.ndarray):
        return check_float_array("baseline", baseline, shape=fz_shape, dtype=dtype)
    raise TypeError(f"baseline must be None, 'loo', a finite number or an ndarray of shape "
                    f"{fz_shape}, got {type(baseline).__name__} {baseline!r}")


def baseline_values(fz, baseline):
    """b (..., S) or a scalar: 0, the constant, the array, or leave-one-out means of fz (..., S)."""
    check_float_array("fz", fz)
    if fz.ndim < 1:
        raise ValueError(f"fz must have shape (..., S) with at least one axis, got {fz.shape}")
    check_baseline(baseline, fz.shape, fz.dtype)
    if baseline is None:
        return fz.dtype.type(0)
    if isinstance(baseline, str):                                         # "loo"
        S = fz.shape[-1]
        return (fz.sum(-1, keepdims=True) - fz) / fz.dtype.type(S - 1)    # (..., S)
    return baseline if isinstance(baseline, np.ndarray) else fz.dtype.type(baseline)


def _finite_z(z):
    """The draws z = g(eps, phi) must be finite: overflow means log_scale (or L) is too large."""
    if not np.all(np.isfinite(z)):
        raise ValueError(f"the draws z = loc + scale * eps overflow {z.dtype} (not finite in "
                         f"{int(np.sum(~np.isfinite(z)))} entries): log_scale is too large")
    return z


def _check_output(name, out, shape, dtype, like=None):
    """What a user's callable returned: a finite float ndarray of ``shape`` (and ``dtype``)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must return a numpy.ndarray of shape {shape}, got {type(out).__name__}")
    return check_float_array(name, out, shape=shape, dtype=dtype, like=like)


def score_function_grad(f, loc, log_scale, eps, baseline=None):
    """Score-function (REINFORCE) estimate of grad E_q[f] from the draws z = loc + sigma * eps.

    Parameters
    ----------
    f : callable (..., D) -> (...)
    loc, log_scale : ndarray (D,)
    eps : ndarray (..., S, D)
        Standard normal noise; only its role as a sampler of z ~ q matters here.
    baseline : None, "loo", float, or ndarray (..., S)
        Subtracted from f(z_s); it must not depend on z_s for the estimate to stay unbiased.

    Returns
    -------
    dict(loc (..., D), log_scale (..., D))

    Notes
    -----
    z = loc + sigma eps;  w_s = (f(z_s) - b_s) / S;  with r = (z - loc) / sigma,
    d log q / d loc = r / sigma, d log q / d log_scale = r^2 - 1 (``Normal.log_prob_grads``);
    estimate = sum_s w_s d log q(z_s) / d phi.
    """
    check_callable("f", f)
    _check_q(loc, log_scale, eps)
    loc_r = np.broadcast_to(loc, eps.shape)                               # (..., S, D)
    ls_r = np.broadcast_to(log_scale, eps.shape)
    q = Normal(loc_r, ls_r)
    z = _finite_z(q.rsample(eps))                                         # (..., S, D)
    fz = _check_output("f(z)", f(z), eps.shape[:-1], eps.dtype)           # (..., S)
    b = baseline_values(fz, baseline)
    w = (fz - b) / fz.dtype.type(eps.shape[-2])                           # (..., S)
    dlogq = q.log_prob_grads(z)
    return {k: (w[..., None] * dlogq[k]).sum(-2) for k in ("loc", "log_scale")}


def reparam_grad(grad_f, loc, log_scale, eps):
    """Pathwise (reparameterization) estimate of grad E_q[f]: backprop grad_f through z = g(eps).

    Parameters
    ----------
    grad_f : callable (..., D) -> (..., D)
    loc, log_scale : ndarray (D,);  eps : ndarray (..., S, D)

    Returns
    -------
    dict(loc (..., D), log_scale (..., D))

    Notes
    -----
    z = loc + sigma eps (``diagonal_affine``); dz = grad_f(z) / S;
    dloc = sum_s dz_s, dlog_scale = sum_s dz_s sigma eps_s (``diagonal_affine_backward``).
    """
    check_callable("grad_f", grad_f)
    _check_q(loc, log_scale, eps)
    loc_r = np.broadcast_to(loc, eps.shape)
    ls_r = np.broadcast_to(log_scale, eps.shape)
    z, _, cache = diagonal_affine(eps, loc_r, ls_r)                       # (..., S, D)
    dz = _check_output("grad_f(z)", grad_f(_finite_z(z)), eps.shape, eps.dtype)
    dz = dz / z.dtype.type(eps.shape[-2])
    g = diagonal_affine_backward(dz, None, cache)
    return {k: g[k].sum(-2) for k in ("loc", "log_scale")}


def gradient_estimate(fg, loc, log_scale, eps, method, baseline=None):
    """Dispatch on ``method`` ("score" or "reparam"); ``fg`` is the pair (f, grad_f)."""
    check_choice("method", method, METHODS)
    if not isinstance(fg, (tuple, list)) or len(fg) != 2:
        raise TypeError(f"fg must be the pair (f, grad_f) of callables, got {type(fg).__name__}")
    f, grad_f = fg
    if method == "score":
        return score_function_grad(f, loc, log_scale, eps, baseline)
    if method == "reparam":
        if baseline is not None:
            raise ValueError("baseline applies to the score-function estimator only; got "
                             f"baseline={baseline!r} with method='reparam'")
        return reparam_grad(grad_f, loc, log_scale, eps)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


# ------------------------------------------------------------------------------ statistics
@dataclass
class EstimatorStats:
    """Moments of an estimator over ``n_rep`` independent repetitions at each sample size S.

    ``mean``, ``var`` are (len(sample_sizes), P) for the P gradient entries (var with ddof=1),
    ``exact`` (P,) the true gradient.
    """

    sample_sizes: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    exact: np.ndarray
    n_rep: int

    @property
    def total_var(self):
        """tr Cov = sum over entries of the variance, one value per S."""
        return self.var.sum(1)

    @property
    def snr(self):
        """|exact gradient| / sqrt(tr Cov), one value per S."""
        return np.linalg.norm(self.exact) / np.sqrt(self.total_var)

    @property
    def bias_ratio(self):
        """|mean - exact| / sqrt(tr Cov / n_rep), per S: about 1 for an unbiased estimator, since
        E|mean - exact|^2 = tr Cov / n_rep exactly when E[estimate] = exact."""
        return np.linalg.norm(self.mean - self.exact, axis=1) / np.sqrt(self.total_var / self.n_rep)

    @property
    def bias_z(self):
        """(mean - exact) in standard errors sqrt(var / n_rep), per S and entry.

        Entries that never vary (var = 0, e.g. encoder weights of an always-blank pixel) get
        +-inf if the mean misses the exact value and 0 if it matches it exactly.
        """
        se = np.sqrt(self.var / self.n_rep)
        diff = self.mean - self.exact
        with np.errstate(divide="ignore", invalid="ignore"):
            z = diff / np.where(se > 0, se, 1.0)
            return np.where(se > 0, z, np.where(diff == 0, 0.0, np.inf * np.sign(diff)))


def gradient_statistics(draw, exact, sample_sizes, n_rep: int, chunk: int = 256) -> EstimatorStats:
    """Mean and variance of an estimator from ``draw(S, n) -> (n, P)`` independent estimates.

    Sums are accumulated in chunks of ``chunk`` repetitions, shifted by ``exact`` (no
    cancellation when the spread is small next to the mean).

    Parameters
    ----------
    draw : callable (S, n) -> ndarray (n, P)
    exact : ndarray (P,), finite floats
        The true gradient (float64 accumulation whatever its dtype).
    sample_sizes : sequence of int >= 1, at least one
    n_rep : int >= 2
    chunk : int >= 1
    """
    check_callable("draw", draw)
    check_float_array("exact", exact, ndim=1)
    sizes = np.array(check_int_sequence("sample_sizes", sample_sizes, minimum=1), dtype=np.int64)
    if sizes.size == 0:
        raise ValueError("sample_sizes must list at least one sample size, got none")
    n_rep = check_int("n_rep", n_rep, minimum=2)
    chunk = check_int("chunk", chunk, minimum=1)
    exact = exact.astype(np.float64)
    mean, var = np.empty((len(sizes), exact.size)), np.empty((len(sizes), exact.size))
    for i, S in enumerate(sizes):
        s1, s2, done = np.zeros(exact.size), np.zeros(exact.size), 0
        while done < n_rep:
            n = min(chunk, n_rep - done)
            d = _check_output("draw(S, n)", draw(int(S), n), (n, exact.size), None,
                              like="(n, P) with P = exact.size") - exact         # (n, P)
            s1 += d.sum(0)
            s2 += (d * d).sum(0)
            done += n
        mean[i] = exact + s1 / n_rep
        var[i] = (s2 - s1 * s1 / n_rep) / (n_rep - 1)
    return EstimatorStats(sizes, mean, var, exact, n_rep)


def closed_form_statistics(objective, loc, log_scale, method, sample_sizes, n_rep, *, rng,
                           baseline=None) -> EstimatorStats:
    """:func:`gradient_statistics` for a closed-form objective; entries ordered (loc, log_scale)."""
    check_model("objective", objective, ("f", "grad_f", "expectation_grads"))
    check_choice("method", method, METHODS)
    check_rng("rng", rng)
    n_rep = check_int("n_rep", n_rep, minimum=2)
    fg = (objective.f, objective.grad_f)
    ex = objective.expectation_grads(loc, log_scale)

    def draw(S, n):
        eps = rng.standard_normal((n, S, loc.shape[0]))
        g = gradient_estimate(fg, loc, log_scale, eps, method, baseline)
        return np.concatenate([g["loc"], g["log_scale"]], axis=1)         # (n, 2D)
    return gradient_statistics(draw, np.concatenate([ex["loc"], ex["log_scale"]]), sample_sizes,
                               n_rep)


# ------------------------------------------------------------------------------ full-covariance ELBO
def elbo_full_gaussian(log_p, grad_log_p, loc, log_diag, offdiag, eps):
    """Reparameterized ELBO of q = N(loc, L L^T) for an unnormalized log density, and its gradient.

    Parameters
    ----------
    log_p : callable (S, D) -> (S,);  grad_log_p : callable (S, D) -> (S, D)
    loc, log_diag : ndarray (D,);  offdiag : ndarray (D(D-1)/2,)
        L = diag(exp(log_diag)) + strict lower triangle from offdiag (``tril_from_params``).
    eps : ndarray (S, D)

    Returns
    -------
    elbo : float
    grads : dict(loc, log_diag, offdiag) of d elbo / d param

    Notes
    -----
    Forward: z_s = loc + L eps_s (``tril_affine``); log q(z_s) = log N(eps_s; 0, I) - sum log L_ii;
    elbo = (1/S) sum_s [log p(z_s) - log q(z_s)].
    Backward: dz_s = grad_log_p(z_s) / S; dlog|det| = +1/S (eps is fixed, so only the log-det in
    -log q depends on phi); then ``tril_affine_backward`` and ``tril_from_params_backward``.
    """
    check_callable("log_p", log_p)
    check_callable("grad_log_p", grad_log_p)
    check_float_array("loc", loc, ndim=1)
    check_float_array("eps", eps, ndim=2, shape=(None, loc.shape[0]), dtype=loc.dtype, like="loc")
    if eps.shape[0] == 0:
        raise ValueError(f"eps must hold at least one sample (S >= 1), got shape {eps.shape}")
    S = eps.shape[0]
    L, t_cache = tril_from_params(log_diag, offdiag)                      # (D, D)
    loc_r = np.broadcast_to(loc, eps.shape)
    L_r = np.broadcast_to(L, (S,) + L.shape)
    z, log_abs_det, cache = tril_affine(eps, loc_r, L_r)                  # (S, D), (S,)
    z = _finite_z(z)
    lp = _check_output("log_p(z)", log_p(z), (S,), eps.dtype)
    elbo = float((lp - log_q_via_jacobian(eps, log_abs_det)).mean())
    dz = _check_output("grad_log_p(z)", grad_log_p(z), z.shape, eps.dtype)
    g = tril_affine_backward(dz / S, np.full(S, 1.0 / S, dtype=eps.dtype), cache)
    gp = tril_from_params_backward(g["scale_tril"].sum(0), t_cache)
    return elbo, {"loc": g["loc"].sum(0), "log_diag": gp["log_diag"], "offdiag": gp["offdiag"]}
