"""The linear-Gaussian latent model (probabilistic PCA): every variational quantity in closed form.

Model (Tipping & Bishop 1999; Bishop 2006, PRML §12.2), z in R^k, x in R^d, s = exp(log_noise_scale):

    p(z) = N(0, I_k)                 p(x | z) = N(W z + b, s^2 I_d)
    p(x) = N(x; b, C),               C = W W^T + s^2 I_d                            (PRML 12.35)
    p(z | x) = N(mu, M^-1),          M = I_k + W^T W / s^2,  mu = M^-1 W^T (x - b) / s^2  (12.42)

For a Gaussian q(z) = N(m, S), S = L L^T (L = ``scale_tril``; a diagonal q is L = diag(sigma)),
with e = x - b - W m (the expectation of a quadratic under a Gaussian is exact):

    E_q log p(x|z)   = -d log s - (d/2) log 2 pi - (|e|^2 + |W L|_F^2) / (2 s^2)
    KL(q || p(z))    = (|L|_F^2 + |m|^2 - k)/2 - sum_i log L_ii
    ELBO(q)          = E_q log p(x|z) - KL(q || p(z))
    KL(q || p(z|x))  = (tr(M S) + (m - mu)^T M (m - mu) - k - log det M)/2 - sum_i log L_ii
    log p(x) - ELBO(q) = KL(q || p(z|x))                          (Kingma & Welling 2019, eq. 2.8)

The best diagonal q (mean field; Bishop PRML §10.1.2) has mean mu and precisions M_ii, and
gap (1/2)(sum_i log M_ii - log det M) > 0 whenever M is not diagonal. Reparameterized samples
z = m + L eps (``scratchvae.transforms.tril_affine``) give the Monte Carlo ELBO and the IWAE bound
(Burda et al. 2016) log (1/K) sum_k w_k, log w_k = log p(x, z_k) - log q(z_k), with
log q(z) = log p(eps) - log|det dz/deps|. Derivations: ``docs/lab_exact.md``.

Shapes: x (n, d); loc (n, k); scale_tril (n, k, k); eps (K, n, k); per-point outputs (n,).
"""
from __future__ import annotations

import numpy as np

from ..validate import check_cache, check_float_array, check_has_rows, check_int, check_rng
from ..distributions import HALF_LOG_2PI, MultivariateNormal, Normal, check_scale_tril, standard_normal_log_prob
from ..transforms import log_q_via_jacobian, tril_affine


def _diag(L):
    return np.diagonal(L, axis1=-2, axis2=-1)                                # (..., k)


class LinearGaussian:
    """p(z) = N(0, I_k), p(x|z) = N(W z + b, exp(log_noise_scale)^2 I_d).

    Parameters
    ----------
    W : ndarray (d, k)
        Loading matrix.
    b : ndarray (d,)
        Offset (the mean of x).
    log_noise_scale : ndarray ()
        log s, the log of the observation noise standard deviation (not log s^2).

    The arrays are kept (not copied) in ``self.params``; an optimizer updating them in place
    changes the model. Every method reads the current values.
    """

    def __init__(self, W, b, log_noise_scale):
        check_float_array("W", W, ndim=2)
        if 0 in W.shape:
            raise ValueError(f"W must have shape (d, k) with d >= 1 and k >= 1, got {W.shape}")
        check_float_array("b", b, shape=(W.shape[0],), dtype=W.dtype)
        check_float_array("log_noise_scale", log_noise_scale, shape=(), dtype=W.dtype)
        self.params = {"W": W, "b": b, "log_noise_scale": log_noise_scale}

    @property
    def x_dim(self) -> int:
        return self.params["W"].shape[0]

    @property
    def z_dim(self) -> int:
        return self.params["W"].shape[1]

    def _unpack(self):
        W, b, log_s = self.params["W"], self.params["b"], self.params["log_noise_scale"]
        return W, b, log_s, np.exp(2 * log_s)                               # s^2

    def _check_x(self, x):
        check_float_array("x", x, shape=(None, self.x_dim), dtype=self.params["W"].dtype)

    def _check_q(self, x, loc, scale_tril):
        self._check_x(x)
        check_float_array("loc", loc, shape=(x.shape[0], self.z_dim), dtype=x.dtype)
        check_scale_tril("scale_tril", scale_tril, loc)

    # ----------------------------------------------------------------------------- evidence
    def log_evidence(self, x):
        """log p(x) = log N(x; b, W W^T + s^2 I) for each row of x (n, d); returns ((n,), cache).

        Notes
        -----
        Forward: C = W W^T + s^2 I = Lc Lc^T; r = x - b; alpha = C^-1 r;
        log p = -r.alpha/2 - sum log Lc_ii - (d/2) log 2 pi.
        Backward (g = dout): A = sum_n g_n (alpha_n alpha_n^T - C^-1);
        dW = A W; db = sum_n g_n alpha_n; dlog_noise_scale = s^2 tr(A)   (dC = 2 s^2 I dlog s).
        """
        self._check_x(x)
        W, b, _, s2 = self._unpack()
        d = self.x_dim
        C = W @ W.T + s2 * np.eye(d, dtype=W.dtype)                          # (d, d)
        Lc = np.linalg.cholesky(C)                                           # (d, d)
        Cinv = np.linalg.solve(C, np.eye(d, dtype=W.dtype))                 # (d, d)
        r = x - b                                                            # (n, d)
        alpha = r @ Cinv                                                     # (n, d)  C symmetric
        out = -0.5 * (r * alpha).sum(-1) - np.log(_diag(Lc)).sum() - d * HALF_LOG_2PI
        return out.astype(x.dtype), (W, s2, Cinv, alpha)

    @staticmethod
    def log_evidence_backward(dout, cache):
        """dict(W, b, log_noise_scale) of sum(log_evidence * dout); dout (n,). See log_evidence."""
        W, s2, Cinv, alpha = check_cache(cache, 4, "log_evidence")
        check_float_array("dout", dout, shape=alpha.shape[:1], dtype=alpha.dtype)
        A = (alpha * dout[:, None]).T @ alpha - dout.sum() * Cinv            # (d, d)
        return {"W": A @ W, "b": dout @ alpha, "log_noise_scale": np.asarray(s2 * np.trace(A))}

    # ---------------------------------------------------------------------------- posterior
    def posterior_precision(self):
        """M = I_k + W^T W / s^2 (k, k): the precision of p(z|x), the same for every x."""
        W, _, _, s2 = self._unpack()
        return np.eye(self.z_dim, dtype=W.dtype) + W.T @ W / s2

    def posterior(self, x):
        """Exact p(z|x) = N(loc, L L^T): returns loc (n, k) and scale_tril (n, k, k).

        loc = M^-1 W^T (x - b) / s^2, L = cholesky(M^-1) (PRML 12.42).
        """
        self._check_x(x)
        W, b, _, s2 = self._unpack()
        cov = np.linalg.inv(self.posterior_precision())                     # (k, k)
        loc = (x - b) @ W @ cov / s2                                         # (n, k)  cov symmetric
        L = np.linalg.cholesky(cov)                                          # (k, k)
        return loc, np.broadcast_to(L, (x.shape[0],) + L.shape).copy()

    def mean_field_optimum(self, x):
        """Best diagonal q: loc = posterior mean (n, k), log_scale = -log(M_ii)/2 (n, k), gap (n,).

        gap = KL(q || p(z|x)) = (sum_i log M_ii - log det M)/2 (see docs/lab_exact.md §2.3).
        """
        M = self.posterior_precision()
        loc, _ = self.posterior(x)
        log_scale = np.broadcast_to(-0.5 * np.log(np.diag(M)), loc.shape).copy()
        gap = 0.5 * (np.log(np.diag(M)).sum() - np.linalg.slogdet(M)[1])
        return loc, log_scale, np.full(x.shape[0], gap, dtype=x.dtype)

    def kl_to_posterior(self, x, loc, scale_tril):
        """KL(N(loc, L L^T) || p(z|x)) in closed form, (n,)."""
        self._check_q(x, loc, scale_tril)
        M = self.posterior_precision()
        mu, _ = self.posterior(x)
        delta = loc - mu                                                      # (n, k)
        tr = np.einsum("ij,nik,njk->n", M, scale_tril, scale_tril)           # tr(M L L^T)
        maha = np.einsum("ni,ij,nj->n", delta, M, delta)
        return 0.5 * (tr + maha - self.z_dim - np.linalg.slogdet(M)[1]) - np.log(_diag(scale_tril)).sum(-1)

    def log_weight_second_moment(self, x, loc, scale_tril):
        """log E_q[(p(z|x)/q(z))^2] = log(1 + chi^2(p(z|x) || q)), (n,); +inf when it diverges.

        With S = L L^T, P = 2 M - S^-1 and delta = loc - mu (docs/lab_exact.md §2.4):
        log E = (log det S)/2 + log det M - (log det P)/2 + delta^T (S^-1 P^-1 S^-1 + S^-1) delta / 2,
        finite iff P is positive definite. It sets the IWAE gap for large K:
        log p(x) - E[IWAE_K] ~ chi^2 / (2K) (delta method), when chi^2 is finite.
        """
        self._check_q(x, loc, scale_tril)
        M = self.posterior_precision()
        mu, _ = self.posterior(x)
        out = np.empty(x.shape[0], dtype=x.dtype)
        for i, (delta, L) in enumerate(zip(loc - mu, scale_tril)):
            Sinv = np.linalg.inv(L @ L.T)                                     # (k, k)
            P = 2 * M - Sinv
            if np.any(np.linalg.eigvalsh(P) <= 0):
                out[i] = np.inf
                continue
            u = Sinv @ delta                                                  # (k,)
            out[i] = (np.log(_diag(L)).sum() + np.linalg.slogdet(M)[1]          # (log det S)/2 + ...
                      - np.linalg.slogdet(P)[1] / 2 + (u @ np.linalg.solve(P, u) + delta @ u) / 2)
        return out

    # --------------------------------------------------------------------------------- ELBO
    def elbo(self, x, loc, scale_tril):
        """Closed-form ELBO of q = N(loc, L L^T) for each row of x; returns ((n,), cache).

        Notes
        -----
        Forward: e = x - b - W m; t = |W L|_F^2;
        rec = -d log s - (d/2) log 2 pi - (|e|^2 + t)/(2 s^2); kl = KL(q || N(0, I));
        elbo = rec - kl.
        Backward (g = dout, per point): dm = g (W^T e / s^2 - m);
        dL = g tril(-W^T W L / s^2 - L + diag(1/L_ii)); dW = sum_n g_n (e_n m_n^T - W L_n L_n^T)/s^2;
        db = sum_n g_n e_n / s^2; dlog_noise_scale = sum_n g_n ((|e_n|^2 + t_n)/s^2 - d).
        """
        self._check_q(x, loc, scale_tril)
        W, b, log_s, s2 = self._unpack()
        d = self.x_dim
        e = x - b - loc @ W.T                                                 # (n, d)
        WL = W @ scale_tril                                                   # (n, d, k)
        quad = (e * e).sum(-1) + (WL * WL).sum((-2, -1))                      # (n,)
        rec = -d * log_s - d * HALF_LOG_2PI - 0.5 * quad / s2                 # (n,)
        q = MultivariateNormal(loc, scale_tril)
        return rec - q.kl_to_standard_normal(), (W, s2, e, quad, q)

    def elbo_backward(self, dout, cache):
        """dict(W, b, log_noise_scale, loc, scale_tril) of sum(elbo * dout); dout (n,). See elbo."""
        W, s2, e, quad, q = check_cache(cache, 5, "elbo")
        check_float_array("dout", dout, shape=e.shape[:1], dtype=e.dtype)
        L, g = q.scale_tril, dout[:, None]
        dkl = q.kl_to_standard_normal_grads()
        dloc = g * (e @ W / s2 - dkl["loc"])                                   # (n, k)
        dL = g[..., None] * np.tril(-(W.T @ W) @ L / s2 - dkl["scale_tril"])   # (n, k, k)
        S = np.einsum("n,nij,nkj->ik", dout, L, L)                            # sum_n g_n L_n L_n^T
        dW = ((g * e).T @ q.loc - W @ S) / s2                                  # (d, k)
        dlog_s = dout @ (quad / s2 - self.x_dim)
        return {"W": dW, "b": (g * e).sum(0) / s2, "log_noise_scale": np.asarray(dlog_s),
                "loc": dloc, "scale_tril": dL}

    def expected_log_joint_terms(self, x, loc, scale_tril):
        """Closed-form pieces of E_q log p(x, z), each (n,): dict(log_lik, log_prior, log_abs_det).

        log_lik = E_q log p(x|z); log_prior = E_q log p(z) = -(k/2) log 2 pi - (|L|_F^2 + |m|^2)/2;
        log_abs_det = log|det dz/deps| = sum_i log L_ii for z = m + L eps (constant in eps).
        So ELBO = log_lik + log_prior + H(N(0, I_k)) + log_abs_det, since H(q) = H(p(eps)) + log|det L|.
        """
        self._check_q(x, loc, scale_tril)
        W, b, log_s, s2 = self._unpack()
        d, k = W.shape
        e = x - b - loc @ W.T                                                 # (n, d)
        WL = W @ scale_tril                                                   # (n, d, k)
        log_lik = -d * log_s - d * HALF_LOG_2PI - 0.5 * ((e * e).sum(-1) + (WL * WL).sum((-2, -1))) / s2
        log_prior = -k * HALF_LOG_2PI - 0.5 * ((scale_tril ** 2).sum((-2, -1)) + (loc * loc).sum(-1))
        return {"log_lik": log_lik, "log_prior": log_prior,
                "log_abs_det": np.log(_diag(scale_tril)).sum(-1)}

    # ------------------------------------------------------------------- Monte Carlo / IWAE
    def log_weight_terms(self, x, loc, scale_tril, eps):
        """Per-sample pieces for z = loc + L eps, eps (K, n, k): dict of (K, n) arrays.

        log_lik = log p(x|z); log_prior = log p(z); log_abs_det = log|det dz/deps|;
        log_q = log p(eps) - log_abs_det (change of variables); log_w = log_lik + log_prior - log_q.
        """
        self._check_q(x, loc, scale_tril)
        check_float_array("eps", eps, shape=(None,) + loc.shape, dtype=x.dtype)
        check_has_rows("eps", eps)                                            # K >= 1 samples
        W, b, log_s, _ = self._unpack()
        z, log_abs_det, _ = tril_affine(eps, np.broadcast_to(loc, eps.shape),
                                        np.broadcast_to(scale_tril, eps.shape + eps.shape[-1:]))
        mean = z @ W.T + b                                                    # (K, n, d)
        lik = Normal(mean, np.full_like(mean, log_s)).log_prob(np.broadcast_to(x, mean.shape).copy())
        terms = {"log_lik": lik.sum(-1), "log_prior": standard_normal_log_prob(z).sum(-1),
                 "log_abs_det": log_abs_det, "log_q": log_q_via_jacobian(eps, log_abs_det)}
        terms["log_w"] = terms["log_lik"] + terms["log_prior"] - terms["log_q"]
        return terms

    def iwae(self, x, loc, scale_tril, eps):
        """IWAE_K estimate log (1/K) sum_k w_k of log p(x), (n,), with K = eps.shape[0].

        Log-mean-exp with the max over k shifted out (no overflow). K = 1 is the MC ELBO.
        """
        log_w = self.log_weight_terms(x, loc, scale_tril, eps)["log_w"]       # (K, n)
        top = log_w.max(0)
        return top + np.log(np.exp(log_w - top).mean(0))

    # ------------------------------------------------------------------------- data / fits
    def sample(self, n, rng):
        """Draw n pairs with ``rng``: returns x (n, d), z (n, k)."""
        n = check_int("n", n, minimum=1)
        check_rng("rng", rng)
        W, b, log_s, _ = self._unpack()
        z = rng.standard_normal((n, self.z_dim)).astype(W.dtype)
        x = z @ W.T + b + np.exp(log_s) * rng.standard_normal((n, self.x_dim)).astype(W.dtype)
        return x, z

    @classmethod
    def maximum_likelihood(cls, x, k):
        """Closed-form ML fit (Tipping & Bishop 1999, eqs. 7-8): the global maximum of sum log p(x).

        b = mean(x); S = sample covariance (1/n) with eigenpairs (lam_i, u_i) descending;
        s^2 = mean(lam_{k+1..d}); W = U_k (diag(lam_1..k) - s^2 I)^(1/2) (up to a rotation of z).
        """
        check_float_array("x", x, ndim=2)
        check_has_rows("x", x)
        k = check_int("k", k, minimum=1)
        if k >= x.shape[1]:
            raise ValueError(f"k must be smaller than the data dimension {x.shape[1]}, got {k}")
        b = x.mean(0)
        lam, U = np.linalg.eigh((x - b).T @ (x - b) / x.shape[0])
        lam, U = lam[::-1], U[:, ::-1]
        s2 = lam[k:].mean()
        if not s2 > 0:
            raise ValueError(f"x leaves no variance outside its top k={k} principal directions "
                             f"(s^2 = {s2:.3g}): use more rows than k + 1, or a smaller k")
        W = U[:, :k] * np.sqrt(np.maximum(lam[:k] - s2, 0))
        return cls(np.ascontiguousarray(W), b, np.asarray(0.5 * np.log(s2), dtype=x.dtype))
