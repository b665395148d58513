"""Score-function vs reparameterization gradients: both unbiased, very different variances.

    python demos/gradient_estimators.py [--out out/] [--seed 0]

Part 1, a closed-form objective. q = N(mu, diag sigma^2) in D = 4 dimensions, phi = (mu, log sigma),
f(z) = sum_i (z_i - a_i)^2, so E_q f = sum_i (mu_i - a_i)^2 + sigma_i^2 and its gradient are known.
Each estimator is repeated R times at each number of samples S; we print the mean estimate vs the
exact gradient (unbiasedness), and plot tr Cov and SNR = |grad| / sqrt(tr Cov) against S:
reparameterization, score function, and score function with a leave-one-out baseline. A second
objective, f(z) = sum_i sin(w_i z_i + c_i), is checked for unbiasedness too.

Part 2, the encoder of a small VAE (784-64-2 tanh encoder and mirrored decoder, Bernoulli pixels)
trained for a few epochs on embedded digits (``scratchvae.data.digits``, binarized once with a fixed
seed). The gradient of the mean ELBO of 2 held-out images w.r.t. all encoder weights is estimated
R times by both estimators; the exact gradient is the Gauss-Hermite quadrature of the pathwise
gradient over the 2-D noise (checked by halving the number of nodes). Writes
``gradient_estimators.png``.
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
from scratchvae.lab import estimators_vae as est_vae
from scratchvae.data.digits import render_digits
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE
from scratchvae.viz.lab_estimators import loglog_panels

LOC = np.array([0.5, -1.0, 1.5, 0.2])
LOG_SCALE = np.array([-0.5, 0.0, 0.3, -1.0])
TARGET = np.array([1.0, 0.5, -0.5, 0.3])
FREQ, PHASE = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.3, -0.2, 1.0, 0.5])
N_HELD = 2                     # held-out images whose mean ELBO's encoder gradient is estimated
VARIANTS = {"reparameterization": ("reparam", None), "score function": ("score", None),
            "score fn. + LOO baseline": ("score", "loo")}


def closed_form(rng, sizes, n_rep):
    """Statistics of the three estimators on the quadratic; unbiasedness table for both objectives."""
    print(f"Part 1: q = N(mu, diag sigma^2), D = {LOC.size}; R = {n_rep} repetitions per S")
    out = {}
    for name, obj, S in (("quadratic", est.Quadratic(TARGET), sizes),            # the sinusoid only
                         ("sinusoid", est.Sinusoid(FREQ, PHASE), [2, 32])):      # for unbiasedness
        stats = {label: est.closed_form_statistics(obj, LOC, LOG_SCALE, m, S, n_rep, rng=rng, baseline=b)
                 for label, (m, b) in VARIANTS.items()}
        exact = stats["reparameterization"].exact
        print(f"  f = {name}: E_q f = {obj.expectation(LOC, LOG_SCALE):.4f}; "
              f"d/dmu, d/dlog sigma at S = {S[-1]}, mean of R (max |bias| in standard errors over S = {S}):")
        print(f"    {'exact':<26}" + " ".join(f"{v:+8.4f}" for v in exact))
        for label, st in stats.items():
            print(f"    {label:<26}" + " ".join(f"{v:+8.4f}" for v in st.mean[-1])
                  + f"   ({np.abs(st.bias_z).max():.2f} SE)")
        out[name] = stats
    q = out["quadratic"]
    for label, st in q.items():
        print(f"  quadratic, {label:<26} tr Cov at S = {sizes[0]}: {st.total_var[0]:10.3f}, "
              f"S = {sizes[-1]}: {st.total_var[-1]:9.5f};  SNR {st.snr[0]:.3f} -> {st.snr[-1]:.2f}")
    return out


def train_vae(rng, n_train, epochs):
    """A 784-64-2 tanh VAE (float64) trained briefly on statically binarized embedded digits."""
    images, _ = render_digits(n_train + N_HELD, rng, dtype=np.float64)
    x = (np.random.default_rng(12345).random(images.shape) < images).astype(np.float64)
    vae = VAE(784, 2, rng=rng, hidden=(64,), activation="tanh", dtype=np.float64)
    cfg = TrainConfig(epochs=epochs, batch_size=50, lr=3e-3, seed=int(rng.integers(2**31)))
    hist = train(vae, x[:n_train], x[n_train:], cfg, log=None)
    print(f"  trained {epochs} epochs on {n_train} digits: "
          f"last train -ELBO {hist[-1]['train_loss']:.2f} nats")
    return vae, x[n_train:]                                              # N_HELD held-out images


def vae_part(rng, sizes, n_rep, n_train, epochs):
    """Encoder-gradient statistics of the three estimators against the quadrature gradient."""
    print(f"Part 2: encoder gradient of a small VAE; R = {n_rep} repetitions per S")
    vae, x = train_vae(rng, n_train, epochs)
    keys = list(vae.encoder.params)
    exact = est_vae.flatten_grads(est_vae.vae_exact_encoder_grads(vae, x, 24), keys)
    half = est_vae.flatten_grads(est_vae.vae_exact_encoder_grads(vae, x, 12), keys)
    quad_err = float(np.linalg.norm(exact - half) / np.linalg.norm(exact))
    print(f"  exact gradient: 24^2 Gauss-Hermite nodes, |g_24 - g_12| / |g_24| = {quad_err:.1e}; "
          f"|grad| = {np.linalg.norm(exact):.3f} over {exact.size} encoder parameters")
    stats = {}
    for label, (m, b) in VARIANTS.items():
        t0 = time.perf_counter()
        stats[label] = est_vae.vae_encoder_statistics(vae, x, m, sizes, n_rep, rng=rng, baseline=b, exact=exact)
        st = stats[label]
        print(f"  {label:<26} tr Cov " + " ".join(f"{v:11.4g}" for v in st.total_var)
              + "   |mean - exact| / expected = " + " ".join(f"{v:.2f}" for v in st.bias_ratio)
              + f"   ({time.perf_counter() - t0:.1f} s)")
    return stats, quad_err, exact.size


def ratios(stats):
    """tr Cov(score) / tr Cov(reparam) and the same with the baseline, per S."""
    r = stats["reparameterization"].total_var
    return stats["score function"].total_var / r, stats["score fn. + LOO baseline"].total_var / r


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng")
    parser.add_argument("--reps", type=int, default=2000, help="repetitions per S, closed form")
    parser.add_argument("--vae-reps", type=int, default=200, help="repetitions per S, VAE")
    parser.add_argument("--max-log2-s", type=int, default=10, help="closed form: S = 2, 4, ..., 2^this")
    parser.add_argument("--vae-sizes", default="2,8,32", help="VAE: comma-separated S values")
    parser.add_argument("--train-digits", type=int, default=1000, help="VAE training images")
    parser.add_argument("--epochs", type=int, default=4, help="VAE training epochs")
    args = parser.parse_args(argv)
    t0, rng = time.perf_counter(), np.random.default_rng(args.seed)
    sizes = [2 ** k for k in range(1, args.max_log2_s + 1)]
    cf = closed_form(rng, sizes, args.reps)
    vae_sizes = [int(v) for v in args.vae_sizes.split(",")]
    vs, quad_err, n_weights = vae_part(rng, vae_sizes, args.vae_reps, args.train_digits, args.epochs)
    cf_none, cf_loo = ratios(cf["quadratic"])
    v_none, v_loo = ratios(vs)
    print("Variance ratios tr Cov(score) / tr Cov(reparam):")
    print("  quadratic, S = " + ", ".join(f"{s}: {a:.1f} ({b:.1f} with baseline)"
                                          for s, a, b in zip(sizes[::3], cf_none[::3], cf_loo[::3])))
    print("  VAE encoder, S = " + ", ".join(f"{s}: {a:.3g} ({b:.3g} with baseline)"
                                            for s, a, b in zip(vae_sizes, v_none, v_loo)))
    panels = []
    for name, stats, S in (("f = sum (z - a)^2, D = 4", cf["quadratic"], sizes),
                           (f"VAE encoder (784-64-2x2, {n_weights:,} weights)", vs, vae_sizes)):
        panels.append(dict(title=f"variance: {name}", xlabel="samples per estimate S",
                           ylabel="tr Cov of the estimate", guide=(-1.0, "slope -1 (1/S)"),
                           curves={k: (S, st.total_var) for k, st in stats.items()}))
        panels.append(dict(title=f"signal-to-noise: {name}", xlabel="samples per estimate S",
                           ylabel="|exact grad| / sqrt(tr Cov)", guide=(0.5, "slope 1/2"),
                           curves={k: (S, st.snr) for k, st in stats.items()}))
    bias = max(np.abs(st.bias_z).max() for stats in cf.values() for st in stats.values())
    caption = (f"tr Cov(score) / tr Cov(reparam), quadratic:   S={sizes[0]}: {cf_none[0]:.1f} "
               f"(LOO baseline {cf_loo[0]:.1f});  S={sizes[-1]}: {cf_none[-1]:.1f} (LOO {cf_loo[-1]:.1f})\n"
               f"{'VAE encoder:':>41} S={vae_sizes[0]}: {v_none[0]:.3g} (LOO {v_loo[0]:.3g});"
               f"  S={vae_sizes[-1]}: {v_none[-1]:.3g} (LOO {v_loo[-1]:.3g})\n"
               f"unbiased: closed form, every mean within {bias:.2f} standard errors of the exact gradient "
               f"(R={args.reps}); VAE, |mean - exact| / sqrt(trCov/R) = "
               + ", ".join(f"{st.bias_ratio.max():.2f}" for st in vs.values()) + f" (R={args.vae_reps})\n"
               f"VAE exact gradient by 24x24 Gauss-Hermite quadrature (change vs 12x12: {quad_err:.0e}); "
               f"{args.epochs} epochs on {args.train_digits} digits; mean ELBO of {N_HELD} held-out images")
    path = loglog_panels(panels, suptitle="Score-function vs reparameterization gradient of E_q[f(z)]",
                         caption=caption, path=os.path.join(args.out, "gradient_estimators.png"))
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return {"closed_form": cf, "vae": vs, "ratio_closed": (cf_none, cf_loo), "ratio_vae": (v_none, v_loo),
            "quad_err": quad_err, "sizes": sizes, "vae_sizes": vae_sizes, "path": path}


if __name__ == "__main__":
    main()
