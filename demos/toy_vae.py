"""A VAE with a 2-D latent on 2-D data; posterior collapse, and its cure by KL warm-up.

    python demos/toy_vae.py [--out out/] [--seed 0] [--seeds 3] [--epochs 150]

Data: four Gaussian clusters at the corners of a square (XOR-like, in the spirit of Kingma &
Welling 2019's toy figure), centres 0.5 +- 0.3, std 0.045, inside the unit square (the trainer
requires data in [0, 1]). Model: scratchvae.vae.VAE with z_dim = 2, two tanh hidden layers of
32 units in the encoder and in the decoder, and a Gaussian p(x|z) whose sigma is learned per output above the library's floor,
log sigma = log 0.01 + softplus(r).

What collapses: a decoder that ignores z is one broad Gaussian N(x; m, diag(s^2)), a valid model
of the data with KL = 0 (here E[log N] = -0.45 nats per point, against E[log p_data] = +1.98 for
the true mixture). A decoder that *starts* broad (sigma_0 = 3.0, ten times the clusters' offset
0.3, set with VAE(init_obs_scale=3), i.e. through the bias r0 of the log-scale outputs) reconstructs every x about equally badly
whatever z is, so the reconstruction gradient reaching the encoder is weak (divided by sigma^2)
while the KL term pulls every q(z|x) to the prior from the first step: the encoder stops carrying
information before the decoder has learned to use it, and the run stays on the broad-Gaussian
plateau. KL warm-up (beta rising linearly from 0 to 1 over the first 15 epochs,
TrainConfig.warmup_epochs) removes that pull while the decoder shrinks sigma.

Two runs per seed (scratchvae.train.train; held-out numbers):
    broad start, no warm-up   sigma_0 = 3.0, beta = 1 from the first step
    broad start, warm-up      sigma_0 = 3.0, beta 0 -> 1 over 15 epochs
each reported with its ELBO, importance-sampled log p(x) (K = 500), KL (total and per latent
dimension) and active units (Var_x E[z_u|x] > 0.01, scratchvae.evaluate.active_units).
Writes toy_vae.png (the warm-up model of --seed: where q(z|x) puts each cluster, samples of p(x),
log p(x) on a grid) and toy_collapse.png (both runs of --seed side by side).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: small matrices; 2 spinning BLAS threads
                                      # on a busy 2-core machine made training ~6x slower
import numpy as np  # noqa: E402

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae import generate
from scratchvae.evaluate import active_units, elbo, kl_per_dimension, log_likelihood
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE
from scratchvae.viz.lab_toy import collapse_figure, toy_vae_figure

SPREAD = 0.3                      # clusters sit at 0.5 +- SPREAD: the data stay inside [0, 1]^2
CENTERS = 0.5 + SPREAD * np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
CLUSTER_STD = 0.15 * SPREAD
MIN_OBS_SCALE = 0.01
SIGMA0 = 10 * SPREAD              # the decoder's initial sigma: broad
HIDDEN = (32, 32)
WARMUP_EPOCHS = 15.0
RUNS = {"broad start, no warm-up": 0.0, "broad start, warm-up": WARMUP_EPOCHS}  # name: warm-up


def make_clusters(n: int, rng: np.random.Generator):
    """n points of the 4-cluster mixture (equal weights), float32 (n, 2), and their cluster (n,)."""
    labels = rng.integers(0, len(CENTERS), n)
    x = CENTERS[labels] + CLUSTER_STD * rng.standard_normal((n, 2))
    return np.clip(x, 0.0, 1.0).astype(np.float32), labels  # clips only beyond 4.4 std (~1e-5)


def true_log_density(x):
    """log p_data(x) of the generating mixture: log (1/4) sum_k N(x; c_k, std^2 I), (N,)."""
    d2 = ((x[:, None, :].astype(np.float64) - CENTERS[None]) ** 2).sum(-1)       # (N, 4)
    log_nk = -0.5 * d2 / CLUSTER_STD**2 - 2 * np.log(CLUSTER_STD) - np.log(2 * np.pi)
    m = log_nk.max(1)
    return m + np.log(np.exp(log_nk - m[:, None]).mean(1))


def train_run(name, seed, data, epochs):
    """Train one configuration of RUNS with a given seed; return its held-out numbers and model."""
    x_train, x_valid, x_test = data
    vae = VAE(2, 2, rng=np.random.default_rng([seed, 7]), hidden=HIDDEN, activation="tanh",
              likelihood="gaussian", obs_scale=None, min_obs_scale=MIN_OBS_SCALE,
              init_obs_scale=SIGMA0)              # a broad start: sigma = 3 for every pixel
    cfg = TrainConfig(epochs=epochs, batch_size=100, lr=3e-3, warmup_epochs=RUNS[name], seed=seed)
    history = train(vae, x_train, x_valid, cfg, log=None)
    ev = elbo(vae, x_test, rng=np.random.default_rng([seed, 8]), n_samples=10)
    n_active, mean_var = active_units(vae, x_test)
    z_mean = generate.encode(vae, x_test)                                        # E_q[z|x], (N, 2)
    log_px = log_likelihood(vae, x_test, rng=np.random.default_rng([seed, 9]), K=500, batch_size=100,
                            k_chunk=500)
    return {"name": name, "seed": seed, "vae": vae, "history": history,
            "elbo": float(ev["elbo"].mean()), "kl": float(ev["kl"].mean()),
            "kl_per_dim": kl_per_dimension(vae, x_test), "active_units": n_active,
            "mean_var": mean_var, "log_px": float(log_px.mean()), "z_mean": z_mean,
            "sigma": decoder_scale(vae, z_mean)}


def density_grid(vae, rng, n=61, lo=-0.1, hi=1.1, K=200):
    """Importance-sampled log p(x) on an n x n grid over [lo, hi]^2, and its integral."""
    g = np.linspace(lo, hi, n)
    x1, x2 = np.meshgrid(g, g)                                                    # rows along x2
    pts = np.stack([x1.ravel(), x2.ravel()], 1).astype(vae.dtype)
    logp = log_likelihood(vae, pts, rng=rng, K=K, batch_size=500, k_chunk=K).reshape(n, n)
    integral = float(np.exp(logp).sum() * (g[1] - g[0]) ** 2)
    return (g, g), logp, integral


def decoder_scale(vae, z):
    """Mean learned sigma of p(x|z) at latents z: sigma = sigma_min exp(softplus(r)) (likelihoods.py)."""
    r = vae.decode(z)[:, vae.x_dim:].astype(np.float64)
    return float(np.mean(MIN_OBS_SCALE * np.exp(np.logaddexp(0.0, r))))


def _row(r):
    kl = ", ".join(f"{v:.3f}" for v in r["kl_per_dim"])
    return (f"  {r['name']:<23} seed {r['seed']}  ELBO {r['elbo']:6.3f}  log p(x) {r['log_px']:6.3f}  "
            f"KL {r['kl']:5.3f} (per dim {kl})  active units {r['active_units']} "
            f"(Var E[z|x] {', '.join(f'{v:.3f}' for v in r['mean_var'])})  decoder sigma "
            f"{r['sigma']:.3f}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNGs")
    parser.add_argument("--seed", type=int, default=0, help="first seed (data, weights, noise)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per run: seed, seed+1, ...")
    parser.add_argument("--epochs", type=int, default=150, help="training epochs per run")
    parser.add_argument("--n-train", type=int, default=2000, help="training points")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = {name: [] for name in RUNS}
    print(f"4 clusters (std {CLUSTER_STD:.3f}) at 0.5 +- {SPREAD}; Gaussian p(x|z), learned sigma >= "
          f"{MIN_OBS_SCALE}, starting at {SIGMA0:.1f}; {args.epochs} epochs, {args.n_train} points; "
          f"held-out numbers, nats per point:")
    for s in range(args.seed, args.seed + args.seeds):
        rng = np.random.default_rng(s)
        (x_train, _), (x_valid, _), (x_test, lab_test) = (make_clusters(n, rng)
                                                          for n in (args.n_train, 500, 500))
        for name in RUNS:
            r = train_run(name, s, (x_train, x_valid, x_test), args.epochs)
            r["x_test"], r["labels"] = x_test, lab_test
            results[name].append(r)
            print(_row(r))
    x_test, lab_test = (results[next(iter(RUNS))][0][k] for k in ("x_test", "labels"))  # --seed
    true_lp = float(true_log_density(x_test).mean())
    broad = float(-0.5 * np.log(2 * np.pi * np.e * x_test.astype(np.float64).var(0)).sum())
    summary = {}
    for name, rs in results.items():
        summary[name] = {k: float(np.mean([r[k] for r in rs])) for k in ("elbo", "kl", "log_px")}
        summary[name].update(n=len(rs), collapsed=sum(r["kl"] < 0.1 for r in rs),
                             dims_off=sum(int(np.sum(r["kl_per_dim"] < 0.05)) for r in rs),
                             active_units=[r["active_units"] for r in rs],
                             kl_per_seed=[r["kl"] for r in rs], elbo_per_seed=[r["elbo"] for r in rs])
        print(f"  {name:<23} mean over {len(rs)} seeds: ELBO {summary[name]['elbo']:.3f}, log p(x) "
              f"{summary[name]['log_px']:.3f}, KL {summary[name]['kl']:.3f}; collapsed (KL < 0.1 "
              f"nats) in {summary[name]['collapsed']}/{len(rs)} seeds; latent dimensions with "
              f"KL_u < 0.05 nats: {summary[name]['dims_off']}/{2 * len(rs)}")
    print(f"  for comparison (seed {args.seed} test points): the best z-free Gaussian (a collapsed "
          f"model) has E[log N(x; mean, var)] = {broad:.3f}; the true mixture E[log p_data(x)] = "
          f"{true_lp:.3f}")

    good = results["broad start, warm-up"][0]
    vae, rng = good["vae"], np.random.default_rng([args.seed, 4])
    z_scale = vae.encode(x_test)[0].scale
    samples = generate.decode(vae, rng.standard_normal((1500, 2), dtype=vae.dtype), rng=rng)
    grid, logp, integral = density_grid(vae, rng)
    print(f"  warm-up model, seed {args.seed}: integral of its p(x) over a 61 x 61 grid on "
          f"[-0.1, 1.1]^2 = {integral:.3f} (Riemann sum of importance-sampled p(x), K = 200; 1 for a "
          f"density)")
    os.makedirs(args.out, exist_ok=True)
    toy_vae_figure(
        x_test, lab_test, good["z_mean"], z_scale, samples, grid, logp,
        suptitle=f"2-D VAE on 4 clusters: decoder started broad (sigma_0 = {SIGMA0:g}), trained with "
                 f"{WARMUP_EPOCHS:g} epochs of KL warm-up (seed {args.seed})",
        caption=(f"held-out: ELBO {good['elbo']:.3f}, log p(x) {good['log_px']:.3f} (IWAE, K = 500); "
                 f"true E[log p_data] {true_lp:.3f}; KL {good['kl']:.3f} nats (per dimension "
                 f"{', '.join(f'{v:.2f}' for v in good['kl_per_dim'])}), active units "
                 f"{good['active_units']}/2, decoder sigma {good['sigma']:.3f}; integral of p(x) over "
                 f"the grid {integral:.3f}."),
        path=os.path.join(args.out, "toy_vae.png"))
    runs = [results[name][0] for name in RUNS]
    lines = [f"{r['name']}: ELBO {r['elbo']:.2f}, log p(x) {r['log_px']:.2f}, KL {r['kl']:.3f} "
             f"(per dim {', '.join(f'{v:.3f}' for v in r['kl_per_dim'])}), active units "
             f"{r['active_units']}, decoder sigma {r['sigma']:.3f}" for r in runs]
    counts = "; ".join(f"{n}: collapsed (KL < 0.1) in {s['collapsed']}/{s['n']} seeds, "
                       f"{s['dims_off']}/{2 * s['n']} dimensions with KL_u < 0.05" for n, s in summary.items())
    collapse_figure(
        x_test, lab_test, runs,
        suptitle=f"Posterior collapse of a decoder that starts broad (sigma_0 = {SIGMA0:g}), cured by "
                 f"{WARMUP_EPOCHS:g} epochs of KL warm-up (seed {args.seed}, held-out numbers)",
        caption="\n".join(lines) + f"\n{counts}.\n(Active units count Var_x E[z_u|x] > 0.01, which a "
                f"dimension carrying 0.006 nats can pass.) A collapsed model is at best one Gaussian: "
                f"E[log N(x; mean, var)] = {broad:.2f}; the true mixture has E[log p_data] = "
                f"{true_lp:.2f}.",
        path=os.path.join(args.out, "toy_collapse.png"))
    print(f"wrote toy_vae.png, toy_collapse.png to {args.out}/ in {time.perf_counter() - t0:.1f} s")
    return {"summary": summary, "runs": results, "true_log_px": true_lp, "broad_gaussian": broad,
            "integral": integral}


if __name__ == "__main__":
    main()
