"""Why not just MCMC? Random-walk Metropolis-Hastings beside a variational fit of the same posterior.

    python demos/mcmc_vs_vi.py [--out out/] [--seed 0]

The posterior p(z | x) of a tiny latent model (``scratchvae.lab.mcmc.BananaModel``): z ~ N(0, I_2),
x1 | z ~ N(z1, 1), x2 | z ~ N(z2 + 0.6 z1^2, 0.35^2), observed x = (1, 0.5). It is correlated and
bent, so not Gaussian. The truth comes from a 400 x 400 grid, normalized numerically.

* MH with proposal scales 0.05 (too small), 0.6 (good) and 5 (too large): acceptance rate,
  autocorrelation, integrated autocorrelation time tau, effective sample size and ESS per second.
* VI: a full-covariance Gaussian q = N(m, L L^T) maximizing the ELBO by reparameterized stochastic
  gradients (``estimators.elbo_full_gaussian``: z = m + L eps via ``transforms.tril_affine``) with
  Adam. It is fast and deterministic in cost, but biased: a Gaussian cannot bend, and the gap
  log p(x) - ELBO = KL(q || p(z|x)) says by how much.

Writes ``mcmc_vs_vi.png``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae.lab import estimators as est
from scratchvae.lab import mcmc
from scratchvae.optim import Adam
from scratchvae.transforms import tril_from_params
from scratchvae.viz.lab_estimators import mcmc_vs_vi_figure

X_OBS = np.array([1.0, 0.5])
LIM1, LIM2 = (-2.5, 3.5), (-3.5, 2.5)
SCALES = {"too small (s=0.05)": 0.05, "good (s=0.6)": 0.6, "too large (s=5)": 5.0}


def run_chains(model, rng, n_steps, burn_in, truth_mean):
    """One MH chain per proposal scale from z = 0; returns label -> (result, tau (2,), ess (2,))."""
    out = {}
    log_p = lambda z: float(model.log_joint(z))                            # noqa: E731
    for label, s in SCALES.items():
        res = mcmc.metropolis_hastings(log_p, np.zeros(2), n_steps, s, rng=rng, burn_in=burn_in)
        tau = mcmc.integrated_autocorr_time(res.samples)
        ess = n_steps / tau
        err = np.abs(res.samples.mean(0) - truth_mean).max()
        print(f"  MH {label:<20} acceptance {res.acceptance_rate:6.3f}  tau = {tau[0]:7.1f}, {tau[1]:7.1f}  "
              f"ESS = {ess.min():7.0f}  {res.seconds:5.2f} s  ESS/s = {ess.min() / res.seconds:8.0f}  "
              f"max |mean error| {err:.3f}")
        out[label] = (res, tau, ess, err)
    return out


def fit_vi(model, rng, steps, n_samples, lr):
    """Adam on -ELBO of q = N(m, L L^T); lr drops tenfold for the last quarter. Returns q and time."""
    params = {"loc": np.zeros(2), "log_diag": np.zeros(2), "offdiag": np.zeros(1)}
    opt = Adam(params, lr=lr)
    t0 = time.perf_counter()
    for t in range(steps):
        if t == 3 * steps // 4:
            opt.lr = lr / 10
        eps = rng.standard_normal((n_samples, 2))
        _, g = est.elbo_full_gaussian(model.log_joint, model.grad_log_joint, params["loc"],
                                      params["log_diag"], params["offdiag"], eps)
        opt.step({k: -v for k, v in g.items()})                           # minimize -ELBO
    seconds = time.perf_counter() - t0
    L, _ = tril_from_params(params["log_diag"], params["offdiag"])
    return params, L @ L.T, seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng")
    parser.add_argument("--steps", type=int, default=20000, help="MH steps recorded per chain")
    parser.add_argument("--burn-in", type=int, default=1000, help="MH steps discarded per chain")
    parser.add_argument("--vi-steps", type=int, default=2000, help="Adam steps of the VI fit")
    parser.add_argument("--vi-samples", type=int, default=16, help="eps draws per VI step")
    args = parser.parse_args(argv)
    t_start, rng = time.perf_counter(), np.random.default_rng(args.seed)
    model = mcmc.BananaModel(X_OBS)
    z1, z2, dens, log_evidence = model.posterior_grid(LIM1, LIM2, 400)
    mean, cov = mcmc.grid_moments(z1, z2, dens)
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    sd = np.sqrt(np.diag(cov))
    print(f"posterior p(z|x) on a 400x400 grid: mean ({mean[0]:.3f}, {mean[1]:.3f}), sd ({sd[0]:.3f}, "
          f"{sd[1]:.3f}), correlation {corr:.3f}, log p(x) = {log_evidence:.4f}")
    chains = run_chains(model, rng, args.steps, args.burn_in, mean)
    params, q_cov, vi_seconds = fit_vi(model, rng, args.vi_steps, args.vi_samples, lr=0.05)
    elbo, _ = est.elbo_full_gaussian(model.log_joint, model.grad_log_joint, params["loc"],
                                     params["log_diag"], params["offdiag"], rng.standard_normal((200000, 2)))
    gap = log_evidence - elbo
    q_err = np.abs(params["loc"] - mean).max()
    sd_ratio = np.sqrt(np.diag(q_cov) / np.diag(cov))
    print(f"  VI  full-covariance Gaussian: {args.vi_steps} Adam steps x {args.vi_samples} samples in "
          f"{vi_seconds:.2f} s; max |mean error| {q_err:.3f}; "
          f"sd(q)/sd(p) = {sd_ratio[0]:.2f}, {sd_ratio[1]:.2f}; ELBO {elbo:.4f}, "
          f"KL(q||p) = log p(x) - ELBO = {gap:.4f} nats")
    good = "good (s=0.6)"
    caption = "\n".join(
        [f"posterior (grid): mean ({mean[0]:.2f}, {mean[1]:.2f}), correlation {corr:.2f}, "
         f"log p(x) = {log_evidence:.3f}; each MH chain: {args.steps} steps after {args.burn_in} burn-in, "
         "from z = 0"]
        + [f"MH {k:<20} acceptance {r.acceptance_rate:5.3f}  tau {tau.max():6.1f}  ESS {ess.min():6.0f}  "
           f"{r.seconds:5.2f} s  ESS/s {ess.min() / r.seconds:7.0f}  max|mean err| {err:.3f}"
           for k, (r, tau, ess, err) in chains.items()]
        + [f"VI  {args.vi_steps} Adam steps, {vi_seconds:.2f} s: max|mean err| {q_err:.3f}, sd(q)/sd(p) "
           f"{sd_ratio[0]:.2f}, {sd_ratio[1]:.2f}, KL(q||p) = {gap:.3f} nats "
           "(bias that more steps cannot remove)"])
    acfs = {k: mcmc.autocorrelation(r.samples, 200) for k, (r, *_) in chains.items()}
    path = mcmc_vs_vi_figure(
        (z1, z2, dens),
        {k: (r.samples, f"acceptance {r.acceptance_rate:.3f}, ESS/s {ess.min() / r.seconds:.0f}")
         for k, (r, tau, ess, err) in chains.items()},
        (params["loc"], q_cov, f"KL(q||p) = {gap:.3f} nats, {vi_seconds:.2f} s"), acfs,
        suptitle="Banana posterior of a tiny latent model: Metropolis-Hastings (first 2000 states) vs VI",
        caption=caption, path=os.path.join(args.out, "mcmc_vs_vi.png"))
    print(f"wrote {path} in {time.perf_counter() - t_start:.1f} s")
    return {"truth": (mean, cov, log_evidence), "chains": chains, "vi": (params, q_cov, vi_seconds),
            "elbo": elbo, "gap": gap, "good": good, "path": path}


if __name__ == "__main__":
    main()
