"""Normalizing flows against the four 2-D energies of Rezende & Mohamed (2015, Fig. 3).

    python demos/flows_2d.py [--out out/] [--seed 0]

Each target p(z) = exp(-U(z)) / Z (``scratchvae.lab.flow_targets``) is fitted directly, without
an encoder, by a q with global parameters that maximizes the ELBO

    ELBO(q) = E_q[log p~(z) - log q(z)] = log Z - KL(q || p),

    z_K = f_K o ... o f_1(z_0),  z_0 = mu + sigma * eps,  eps ~ N(0, I):
    ELBO = E_eps[-U(z_K) - log N(eps; 0, I) + log|det dz_0/deps| + sum_k log|det dz_k/dz_{k-1}|],

with reparameterized Monte Carlo gradients and Adam. The families: a diagonal Gaussian, a
full-covariance Gaussian (z = mu + L eps), planar flows of length K = 2, 8, 32 on a diagonal base
(``scratchvae.flows.planar_forward``) and an inverse autoregressive flow on a diagonal base
(``scratchvae.flows.iaf.IAF`` with an empty context). log Z comes from quadrature on a grid, so
KL(q || p) = log Z - ELBO is printed for every fit (ELBO from many fresh samples, with its
standard error) and drawn on the figure.

Warm-up (Rezende & Mohamed 2015, sec. 6, anneal the energy): for the first ``--anneal`` steps the
energy is scaled by beta_t = min(1, 0.01 + t / anneal), so that q first fits a broad tempered target
and only then meets the separate lobes. Warm-up helps the flows but parks the Gaussians between
U1's lobes, so every family is fitted from two starts (warm-up from loc 0; no warm-up from loc
(1, 0.5)) and the fit with the higher ELBO is kept.

Writes ``flows_2d.png``. Equations and tests: docs/flows_2d.md.
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

from scratchvae.flows import planar_backward, planar_forward
from scratchvae.flows.iaf import IAF
from scratchvae.lab import flow_targets
from scratchvae.optim import Adam
from scratchvae.transforms import (diagonal_affine, diagonal_affine_backward, log_q_via_jacobian,
                                   tril_affine, tril_affine_backward, tril_from_params,
                                   tril_from_params_backward)


D = 2
FAMILIES = {                                       # label -> (base, flow, number of layers)
    "diagonal Gaussian": ("diagonal", "none", 0),
    "full-cov. Gaussian": ("full", "none", 0),
    "planar K=2": ("diagonal", "planar", 2),
    "planar K=8": ("diagonal", "planar", 8),
    "planar K=32": ("diagonal", "planar", 32),
    "IAF, 4 steps": ("diagonal", "iaf", 4),
}
START_LOC = {"warm-up": (0.0, 0.0), "direct": (1.0, 0.5)}   # start -> initial loc
QUAD_HALF_WIDTH, QUAD_STEP = 8.0, 0.05             # log Z: trapezoidal rule on [-8, 8]^2
PLOT_LIM = 4.0                                     # panels show [-4, 4]^2, as in the paper


class FlowQ:
    """B independent q's, one per row: a Gaussian base pushed through planar or IAF layers.

    Row r is its own distribution q_r(z) with its own parameters (global, not amortized); rows are
    stacked on a leading axis only so that B fits run in one set of NumPy calls (Adam is
    elementwise, so this is B separate fits).

    Parameters
    ----------
    base : {"diagonal", "full"}
        z_0 = loc + exp(log_scale) * eps, or z_0 = loc + L eps with L from (log_diag, offdiag).
    flow : {"none", "planar", "iaf"}
    n_layers : int
        K planar layers or K IAF steps (0 for "none").
    loc : ndarray (B, 2)
        Initial base means (copied).
    rng : numpy.random.Generator
        Draws the initial flow parameters.
    iaf_hidden : tuple of int
        Hidden widths of each IAF step's MADE.

    Attributes
    ----------
    params : dict of float64 arrays
        loc (B, 2); log_scale (B, 2) or log_diag (B, 2) and offdiag (B, 1); planar u (B, K, 2),
        w (B, K, 2), b (B, K); IAF ``iaf<r>.<k>.<name>`` (the very arrays row r's IAF uses).
    """

    def __init__(self, base: str, flow: str, n_layers: int, loc, *, rng, iaf_hidden=(32, 32)):
        self.base, self.flow, self.n_layers = base, flow, n_layers
        B, K = loc.shape[0], n_layers
        self.params = {"loc": np.array(loc, dtype=np.float64)}
        if base == "diagonal":
            self.params["log_scale"] = np.zeros((B, D))
        else:
            self.params.update(log_diag=np.zeros((B, D)), offdiag=np.zeros((B, D * (D - 1) // 2)))
        if flow == "planar":
            self.params.update(u=0.01 * rng.standard_normal((B, K, D)),
                               w=rng.standard_normal((B, K, D)), b=0.1 * rng.standard_normal((B, K)))
        elif flow == "iaf":
            self.iafs = [IAF(D, 0, iaf_hidden, K, rng=rng, dtype=np.float64) for _ in range(B)]
            for r, iaf in enumerate(self.iafs):
                self.params.update({f"iaf{r}.{k}": p for k, p in iaf.params.items()})

    def rsample(self, eps):
        """z (B, S, 2), log q(z) (B, S) and a cache, for eps (B, S, 2).

        log q(z_K) = log N(eps; 0, I) - log|det dz_0/deps| - sum_k log|det dz_k/dz_{k-1}|.
        """
        B, S, _ = eps.shape
        p, caches = self.params, []

        def rows(a):                                                     # (B, ...) -> (B, S, ...)
            return np.broadcast_to(a[:, None], (B, S) + a.shape[1:])

        if self.base == "diagonal":
            tril_cache = None
            z, log_abs_det, base_cache = diagonal_affine(eps, rows(p["loc"]), rows(p["log_scale"]))
        else:
            L, tril_cache = tril_from_params(p["log_diag"], p["offdiag"])  # (B, 2, 2)
            z, log_abs_det, base_cache = tril_affine(eps, rows(p["loc"]), rows(L))
        if self.flow == "planar":
            # Layer k's parameters repeated over the S samples: (K, B, S, 2) and (K, B, S), made
            # contiguous once per call (NumPy is faster on them than on stride-0 broadcast views).
            u, w, b = (np.repeat(np.moveaxis(p[n], 1, 0)[:, :, None], S, axis=2) for n in "uwb")
            for k in range(self.n_layers):
                z, lad, cache = planar_forward(z, u[k], w[k], b[k])      # (B, S, 2), (B, S)
                log_abs_det = log_abs_det + lad
                caches.append(cache)
        elif self.flow == "iaf":
            context = np.zeros((S, 0))                                   # no context: q is global
            out = [iaf.forward(z[r], context) for r, iaf in enumerate(self.iafs)]
            z = np.stack([o[0] for o in out])                            # (B, S, 2)
            log_abs_det = log_abs_det + np.stack([o[1] for o in out])    # (B, S)
            caches = [o[2] for o in out]
        log_q = log_q_via_jacobian(eps, log_abs_det)                     # (B, S)
        return z, log_q, (base_cache, tril_cache, caches)

    def backward(self, dz, dlog_q, cache):
        """Gradients of sum(z * dz) + sum(log_q * dlog_q) for every array in ``params``.

        ``dz`` (B, S, 2), ``dlog_q`` (B, S). eps is fixed, so the parameters enter log q only
        through the log-dets: dlog_abs_det = -dlog_q for the base and every layer alike. Each
        layer's gradients are per sample (its parameters were broadcast to S samples) and are
        summed over the sample axis here.
        """
        base_cache, tril_cache, caches = cache
        dlad, grads = -dlog_q, {}                                        # (B, S)
        if self.flow == "planar":
            du, dw, db = (np.zeros_like(self.params[k]) for k in ("u", "w", "b"))
            for k in range(self.n_layers - 1, -1, -1):
                g = planar_backward(dz, dlad, caches[k])
                dz, du[:, k], dw[:, k], db[:, k] = g["z"], g["u"].sum(1), g["w"].sum(1), g["b"].sum(1)
            grads.update(u=du, w=dw, b=db)
        elif self.flow == "iaf":
            dz_rows = []
            for r, iaf in enumerate(self.iafs):
                d_inputs, g = iaf.backward(dz[r], dlad[r], caches[r])
                dz_rows.append(d_inputs["z"])
                grads.update({f"iaf{r}.{k}": v for k, v in g.items()})
            dz = np.stack(dz_rows)                                       # (B, S, 2)
        if self.base == "diagonal":
            g = diagonal_affine_backward(dz, dlad, base_cache)
            grads.update(loc=g["loc"].sum(1), log_scale=g["log_scale"].sum(1))
        else:
            g = tril_affine_backward(dz, dlad, base_cache)
            grads.update(loc=g["loc"].sum(1),
                         **tril_from_params_backward(g["scale_tril"].sum(1), tril_cache))
        return grads


def log_p_rows(targets, z):
    """log p~ (B, S) and its gradient (B, S, 2): row r of z (B, S, 2) under ``targets[r]``."""
    parts = [f(z[r]) for r, f in enumerate(targets)]
    return np.stack([lp for lp, _ in parts]), np.stack([g for _, g in parts])


def elbo_terms(q, targets, eps, beta):
    """Per-sample objective beta_r log p~_r(z) - log q_r(z), (B, S), at z = z_K(eps); and a cache.

    Its mean over eps ~ N(0, I) is row r's ELBO when beta_r = 1 (a tempered ELBO during warm-up).
    ``targets``: B functions z (S, 2) -> (log p~ (S,), grad (S, 2)); ``beta`` (B,).
    """
    z, log_q, q_cache = q.rsample(eps)
    log_p, grad_log_p = log_p_rows(targets, z)
    return beta[:, None] * log_p - log_q, (beta[:, None, None] * grad_log_p, q_cache)


def elbo_terms_backward(q, dobjective, cache):
    """Gradients of sum(objective * dobjective) for q's parameters: dz = dobjective beta grad log p~."""
    grad_log_p, q_cache = cache
    return q.backward(dobjective[..., None] * grad_log_p, -dobjective, q_cache)


def fit(q, targets, anneal, *, steps: int, n_samples: int, lr: float, rng):
    """Adam on -ELBO, S = n_samples fresh eps per row and step, step size on a cosine schedule.

    ``anneal`` (B,) steps of warm-up per row, beta_t = min(1, 0.01 + t / anneal); 0 = none.
    lr_t = lr (0.05 + 0.95 (1 + cos(pi t / steps)) / 2), from lr down to lr / 20 (Loshchilov &
    Hutter 2017): with a constant step, gradient noise keeps moving mass between U1's two lobes
    (a random walk with a weak pull back to 50:50), and the end state is lopsided.
    """
    opt = Adam(q.params, lr=lr)
    anneal = np.asarray(anneal, dtype=np.float64)
    dobjective = np.full((len(targets), n_samples), -1.0 / n_samples)   # d(-mean_s) / d objective
    for t in range(steps):
        opt.lr = lr * (0.05 + 0.475 * (1 + np.cos(np.pi * t / steps)))
        beta = np.where(anneal > 0, np.minimum(1.0, 0.01 + t / np.maximum(anneal, 1)), 1.0)
        eps = rng.standard_normal((len(targets), n_samples, D))
        _, cache = elbo_terms(q, targets, eps, beta)
        opt.step(elbo_terms_backward(q, dobjective, cache))
    return q


def estimate_elbo(q, targets, n: int, rng, chunk: int = 4000):
    """Per row: ELBO mean (B,) and standard error (B,) from n fresh samples, and z (B, n, 2)."""
    terms, zs = [], []
    for start in range(0, n, chunk):
        eps = rng.standard_normal((len(targets), min(chunk, n - start), D))
        z, log_q, _ = q.rsample(eps)
        terms.append(log_p_rows(targets, z)[0] - log_q)
        zs.append(z)
    terms = np.concatenate(terms, axis=1)                                # (B, n)
    return terms.mean(1), terms.std(1, ddof=1) / np.sqrt(n), np.concatenate(zs, axis=1)


def run_family(label, names, log_z, args):
    """Fit one family to every target from both starts; per target keep the start with the higher ELBO.

    ``args``: seed, steps, samples, lr, anneal, eval_samples (as on the command line). The family's
    random numbers come from ``default_rng([seed, index of the family])``, so its fits do not
    depend on which other families run. Returns target name -> dict(kl, se, start, other_kl,
    samples (n, 2)) and the fit's seconds.
    """
    base, flow, n_layers = FAMILIES[label]
    rng = np.random.default_rng([args.seed, list(FAMILIES).index(label)])
    rows = [(name, start) for name in names for start in START_LOC]     # row r = 2 t + start
    targets = [flow_targets.TARGETS[name] for name, _ in rows]
    anneal = [args.anneal if start == "warm-up" else 0 for _, start in rows]
    q = FlowQ(base, flow, n_layers, np.array([START_LOC[s] for _, s in rows]), rng=rng)
    t0 = time.perf_counter()
    fit(q, targets, anneal, steps=args.steps, n_samples=args.samples, lr=args.lr, rng=rng)
    seconds = time.perf_counter() - t0
    elbo, se, z = estimate_elbo(q, targets, args.eval_samples, rng)
    out = {}
    for t, name in enumerate(names):
        best, other = (2 * t, 2 * t + 1) if elbo[2 * t] >= elbo[2 * t + 1] else (2 * t + 1, 2 * t)
        out[name] = {"kl": log_z[name] - elbo[best], "se": se[best], "start": rows[best][1],
                     "other_kl": log_z[name] - elbo[other], "samples": z[best]}
    return out, seconds


def quadrature(names, half_width: float = QUAD_HALF_WIDTH, step: float = QUAD_STEP) -> dict:
    """Per target: (log Z, change from halving the step, change from widening the box by 2)."""
    out = {}
    for name in names:
        f = flow_targets.TARGETS[name]
        log_z = flow_targets.log_normalizer(f, half_width, step)
        out[name] = (log_z, flow_targets.log_normalizer(f, half_width, step / 2) - log_z,
                     flow_targets.log_normalizer(f, half_width + 2, step) - log_z)
    return out


def claims(results, names) -> dict:
    """The demo's two claims, each checked on every target (only if its families were fitted)."""
    out, planar = {}, [f"planar K={K}" for K in (2, 8, 32)]
    if all(label in results for label in planar):
        out["KL falls with K (2 > 8 > 32) on every target"] = all(
            results[planar[0]][n]["kl"] > results[planar[1]][n]["kl"] > results[planar[2]][n]["kl"]
            for n in names)
    if "planar K=32" in results and "full-cov. Gaussian" in results:
        out["planar K=32 beats the full-cov. Gaussian on every target"] = all(
            results["planar K=32"][n]["kl"] < results["full-cov. Gaussian"][n]["kl"] for n in names)
    return out


def _at_least(minimum, kind=int):
    """argparse type: a number >= minimum (> 0 for floats), else an error naming the flag."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value >= minimum if kind is int else value > minimum):
            relation = ">=" if kind is int else ">"
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum}, got {text}")
        return value
    return parse


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--seed", type=_at_least(0), default=0,
                        help="seed: family i draws from numpy.random.default_rng([seed, i])")
    parser.add_argument("--steps", type=_at_least(1), default=800, help="Adam steps per fit")
    parser.add_argument("--samples", type=_at_least(1), default=128, help="eps draws per fit and step")
    parser.add_argument("--lr", type=_at_least(0.0, float), default=0.02,
                        help="initial Adam step size (cosine schedule down to lr / 20)")
    parser.add_argument("--anneal", type=_at_least(0), default=400,
                        help="warm-up steps of the warm-up start (0: no warm-up)")
    parser.add_argument("--eval-samples", type=_at_least(2), default=100000,
                        help="fresh samples per ELBO estimate (and per histogram)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES),
                        metavar="FAMILY", help=f"q families to fit, from {list(FAMILIES)}")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    names = list(flow_targets.TARGETS)
    quad = quadrature(names)
    log_z = {name: v[0] for name, v in quad.items()}
    n_grid = round(2 * QUAD_HALF_WIDTH / QUAD_STEP) + 1
    print(f"log Z by the trapezoidal rule on [-{QUAD_HALF_WIDTH:g}, {QUAD_HALF_WIDTH:g}]^2, step "
          f"{QUAD_STEP:g} ({n_grid} x {n_grid} points):")
    for name, (lz, d_step, d_box) in quad.items():
        closed = ("" if name == "U1" else
                  f"; closed form {flow_targets.log_normalizer_closed_form(name):.10f}")
        print(f"  {name}: log Z = {lz:.10f}  (step {QUAD_STEP / 2:g}: change {d_step:+.1e}; "
              f"box +-{QUAD_HALF_WIDTH + 2:g}: change {d_box:+.1e}{closed})")
    results, seconds = {}, {}
    for label in args.families:
        results[label], seconds[label] = run_family(label, names, log_z, args)
    print(f"KL(q || p) = log Z - ELBO in nats (ELBO from {args.eval_samples} fresh samples, +- one "
          f"standard error); w/d = the start kept (w: warm-up from loc {START_LOC['warm-up']}, d: "
          f"direct from loc {START_LOC['direct']}); [the other start's KL]; {args.steps} Adam steps x "
          f"{args.samples} samples; seconds per family (4 targets x 2 starts):")
    for label, res in results.items():
        cells = "  ".join(f"{n} {r['kl']:.3f}+-{r['se']:.3f} {r['start'][0]} [{r['other_kl']:.3f}]"
                          for n, r in res.items())
        print(f"  {label:<19} {cells}  ({seconds[label]:.1f} s)")
    checked = claims(results, names)
    for text, ok in checked.items():
        print(f"  {text}: {ok}")
    path = None if args.no_figure else _figure(results, log_z, quad, checked, args)
    print(f"{'wrote ' + path + ' ' if path else ''}in {time.perf_counter() - t_start:.1f} s")
    return {"log_z": log_z, "quadrature": quad, "results": results, "claims": checked,
            "path": path, "seconds": seconds}


def _figure(results, log_z, quad, checked, args) -> str:
    from scratchvae.viz.flows import flows_2d_figure
    axis, _, z = flow_targets.grid(PLOT_LIM, 0.04)
    rows = []
    for name, f in flow_targets.TARGETS.items():
        fits = [(f"{label}\nKL {res[name]['kl']:.3f} ± {res[name]['se']:.3f}", res[name]["samples"])
                for label, res in results.items()]
        rows.append({"title": f"target {name}: p(z)\nlog Z = {log_z[name]:.3f}",
                     "density": np.exp(f(z)[0] - log_z[name]), "fits": fits})   # exact p (n, n)
    worst_step = max(abs(v[1]) for v in quad.values())
    caption = "\n".join([
        "Rows: the energies U1..U4 of Rezende & Mohamed (2015, Table 1); U2..U4 times "
        "exp(-(z1/3)^4 / 2) so that Z is finite.",
        f"Column 1: exact p(z) = exp(-U(z)) / Z, log Z by the trapezoidal rule on "
        f"[-{QUAD_HALF_WIDTH:g}, {QUAD_HALF_WIDTH:g}]^2, step {QUAD_STEP:g} (halving the step "
        f"changes it by at most {worst_step:.1e}).",
        f"Other columns: 2-D histograms of {args.eval_samples} samples of each fitted q on the "
        "target's colour scale (clipped at its maximum);",
        "title: KL(q || p) = log Z - ELBO in nats +- one standard error of the ELBO estimate.",
        f"Each q: {args.steps} Adam steps (lr {args.lr:g} -> {args.lr / 20:g}, cosine) x "
        f"{args.samples} reparameterized samples; best of two starts: warm-up (beta 0.01 -> 1 "
        f"over {args.anneal} steps)",
        "from loc 0, or no warm-up from loc (1, 0.5). Planar and IAF (4 steps, MADE 32-32, no "
        "context) on a diagonal Gaussian base.",
        "; ".join(f"{text}: {'yes' if ok else 'NO'}" for text, ok in checked.items()) + "."])
    return flows_2d_figure(axis, rows, lim=PLOT_LIM, suptitle="Normalizing flows fitted to four "
                           "2-D target densities by maximizing the ELBO (Rezende & Mohamed 2015, "
                           "Fig. 3)", caption=caption, path=os.path.join(args.out, "flows_2d.png"))


if __name__ == "__main__":
    main()
