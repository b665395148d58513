"""The VAE as a model of (x, eps): E_eps[log p(x, eps)] = ELBO(x) - H(p(eps)), checked two ways.

    python demos/joint_likelihood.py [--out out/] [--seed 0]

Reparameterize q(z) = N(m, L L^T) as z = g(eps) = m + L eps, eps ~ p(eps) = N(0, I_k). Pulling the
model's joint back through g defines a density over (x, eps) (change of variables):

    p(x, eps) = p(x, z = g(eps)) |det dg/deps|,      integral over eps = p(x).

Taking E_{p(eps)} of its log and using log q(z) = log p(eps) - log|det dg/deps|:

    E_eps[log p(x, eps)] = E_q[log p(x|z)] + E_q[log p(z)] + E_eps[log|det dg/deps|]
                         = ELBO(x) - H(p(eps)),            H(p(eps)) = (k/2)(1 + log 2 pi).

On the linear-Gaussian model every term is closed form (scratchvae.lab.linear_gaussian); the demo
checks the identity in closed form (to rounding) and by Monte Carlo (within 4 standard errors),
for a diagonal and a full-covariance q, printing the log-det term on its own, and checks by grid
quadrature that p(x, eps) integrates over eps to p(x) (and does not without the |det| factor).
Writes joint_likelihood.png.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae.distributions import Normal
from scratchvae.lab.linear_gaussian import LinearGaussian
from scratchvae.viz.lab_exact import joint_identity_figure

X_DIM, Z_DIM, MC_TOL_SE = 5, 2, 4.0
TERMS = ("log_lik", "log_prior", "log_abs_det")


def make_model(rng):
    """A random PPCA, d = 5, k = 2, noise scale 0.6, and one x drawn from it."""
    model = LinearGaussian(rng.standard_normal((X_DIM, Z_DIM)), rng.standard_normal(X_DIM),
                           np.asarray(np.log(0.6)))
    return model, model.sample(1, rng)[0]


def example_qs(model, x):
    """Two deliberately imperfect q: a diagonal one and a full-covariance one (the identity holds
    for any q, not only the optimum)."""
    mu, Lp = model.posterior(x)
    sd = np.sqrt(np.diag(Lp[0] @ Lp[0].T))
    diag = np.zeros((1, Z_DIM, Z_DIM))
    diag[0, np.arange(Z_DIM), np.arange(Z_DIM)] = 0.7 * sd
    full = Lp * 1.3
    full[0, 1, 0] += 0.4 * sd[1]
    return {"diagonal q": (mu + 0.5 * sd, diag), "full q": (mu - 0.3 * sd, full)}


def closed_form(model, x, loc, L, entropy_eps):
    """The identity's terms in closed form: dict of floats."""
    t = {k: v[0] for k, v in model.expected_log_joint_terms(x, loc, L).items()}
    t["log_p_x_eps"] = t["log_lik"] + t["log_prior"] + t["log_abs_det"]   # E_eps log p(x, eps)
    t["elbo"] = model.elbo(x, loc, L)[0][0]                                # via KL(q || p(z)): another route
    t["elbo_minus_H"] = t["elbo"] - entropy_eps
    return t


def monte_carlo(model, x, loc, L, n, rng):
    """Sample means and standard errors of log p(x|z), log p(z), log|det|, log p(x, eps), log w."""
    s = {k: v[:, 0] for k, v in model.log_weight_terms(x, loc, L, rng.standard_normal((n, 1, Z_DIM))).items()}
    s["log_p_x_eps"] = s["log_lik"] + s["log_prior"] + s["log_abs_det"]     # (n,)
    return ({k: v.mean() for k, v in s.items()},
            {k: v.std(ddof=1) / np.sqrt(n) for k, v in s.items()})


def quadrature(model, x, loc, L, n_grid, n_sd=10.0):
    """log of the grid integral over eps of p(x, g(eps)) |det L|, and of p(x, g(eps)) alone.

    The grid is centred on p(eps|x) = N(L^-1 (mu - m), L^-1 S* L^-T) (the posterior pulled back
    to eps) and spans n_sd of its largest standard deviation each way (Riemann sum of a smooth,
    rapidly decaying integrand: error far below the printed digits).
    """
    mu, Lp = model.posterior(x)
    Linv = np.linalg.inv(L[0])
    centre = Linv @ (mu[0] - loc[0])                                         # (2,)
    half = n_sd * np.sqrt(np.linalg.eigvalsh(Linv @ Lp[0] @ Lp[0].T @ Linv.T).max())
    g = np.linspace(-half, half, n_grid)
    eps = (np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 1, Z_DIM) + centre)  # (G, 1, 2)
    t = model.log_weight_terms(x, loc, L, eps)
    log_joint_z = (t["log_lik"] + t["log_prior"])[:, 0]                  # log p(x, g(eps)), (G,)
    log_cell = 2 * np.log(g[1] - g[0])
    with_det = log_joint_z + t["log_abs_det"][:, 0]
    return _logsumexp(with_det) + log_cell, _logsumexp(log_joint_z) + log_cell


def _logsumexp(a):
    """log sum exp(a) with the max shifted out."""
    return a.max() + np.log(np.exp(a - a.max()).sum())


def main(out="out", seed=0, *, n_mc=200_000, n_grid=401, plot=True):
    """Check the identity for a diagonal and a full q; print and return the numbers; write the PNG."""
    rng = np.random.default_rng(seed)
    model, x = make_model(rng)
    log_px = model.log_evidence(x)[0][0]
    entropy_eps = Normal(np.zeros(Z_DIM), np.zeros(Z_DIM)).entropy().sum()  # H(N(0, I_k))
    print(f"log p(x) = {log_px:.10f};  H(p(eps)) = (k/2)(1 + log 2 pi) = {entropy_eps:.10f}  (k = {Z_DIM})")
    results = {"log_px": log_px, "entropy_eps": entropy_eps, "q": {}}
    for name, (loc, L) in example_qs(model, x).items():
        cf = closed_form(model, x, loc, L, entropy_eps)
        mc, se = monte_carlo(model, x, loc, L, n_mc, rng)
        quad_det, quad_nodet = quadrature(model, x, loc, L, n_grid)
        r = {"closed": cf, "mc": mc, "se": se, "quad_with_det": quad_det, "quad_without_det": quad_nodet,
             "rel_dev": abs(cf["log_p_x_eps"] - cf["elbo_minus_H"]) / max(1.0, abs(cf["elbo"])),
             "mc_z": (mc["log_p_x_eps"] - cf["elbo_minus_H"]) / se["log_p_x_eps"],
             "mc_elbo_z": (mc["log_w"] - cf["elbo"]) / se["log_w"]}
        results["q"][name] = r
        print(f"{name}:  E_q log p(x|z) = {cf['log_lik']:.6f}   E_q log p(z) = {cf['log_prior']:.6f}   "
              f"E log|det dz/deps| = sum log L_ii = {cf['log_abs_det']:.6f}")
        print(f"   closed form: E_eps log p(x, eps) = {cf['log_p_x_eps']:.12f}   ELBO - H(p(eps)) = "
              f"{cf['elbo_minus_H']:.12f}   rel. dev. {r['rel_dev']:.1e}")
        print(f"   Monte Carlo ({n_mc} eps): E_eps log p(x, eps) = {mc['log_p_x_eps']:.5f} +- "
              f"{se['log_p_x_eps']:.5f}  ({r['mc_z']:+.2f} s.e. from ELBO - H; tolerance {MC_TOL_SE:g} s.e.);"
              f"  log|det| = {mc['log_abs_det']:.6f} (constant: g is affine)")
        print(f"   grid quadrature over eps: log int p(x, eps) d eps = {quad_det:.10f} "
              f"(log p(x) = {log_px:.10f});"
              f" without |det L|: {quad_nodet:.6f} = log p(x) - log|det L|")
    if plot:
        caption = "  ".join(
            f"{n}: closed-form rel. dev. {r['rel_dev']:.0e}, MC {r['mc_z']:+.2f} s.e. ({n_mc} samples), "
            f"log|det dz/deps| = {r['closed']['log_abs_det']:.4f}, int p(x,eps) deps = p(x) to "
            f"{abs(r['quad_with_det'] - log_px):.0e}." for n, r in results["q"].items())
        results["figure"] = joint_identity_figure(
            results, title="E_eps[log p(x, eps)] = ELBO - H(p(eps)): the reparameterized model as a "
                           "density over (x, eps)",
            caption=caption + f"\nH(p(eps)) = {entropy_eps:.4f}, log p(x) = {log_px:.4f}. Bars: closed "
            "form (solid) and Monte Carlo mean +- 4 s.e. (hatched); p(x,eps) = p(x, z=m+L eps)|det L|.",
            path=os.path.join(out, "joint_likelihood.png"))
        print(f"wrote {results['figure']}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out", help="folder for the PNG (default out/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng")
    args = parser.parse_args()
    main(args.out, args.seed)
