"""Figures for the exact-evidence lab (demos/exact_evidence.py, joint_likelihood.py,
alternating_vs_joint.py). matplotlib only through :func:`scratchvae.viz.pyplot`, inside functions.
"""
from __future__ import annotations

import numpy as np

from . import pyplot, save

COLORS = {"p(z|x)": "black", "full q": "tab:blue", "diagonal q": "tab:red",
          "mean-field q": "tab:red", "prior p(z) as q": "tab:green",
          "joint": "tab:blue", "alternating": "tab:orange", "EM": "tab:green"}


def _color(label):
    return next((c for key, c in COLORS.items() if label.startswith(key)), None)


def ellipse_points(loc, cov, n_std=2.0, n=200):
    """(n, 2) points of the n_std-standard-deviation contour of N(loc, cov), cov (2, 2)."""
    lam, V = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)], 1)                         # (n, 2)
    return loc + n_std * (circle * np.sqrt(lam)) @ V.T


def _finish(fig, title, caption, path):
    fig.suptitle(title, fontsize=12)
    if caption:
        fig.text(0.01, -0.01, caption, ha="left", va="top", fontsize=8.5, wrap=True)
    return save(fig, path) if path else fig


def exact_evidence_figure(ident, traces, log_px, mf_gap, ellipses, iwae, *, title, caption, path=None):
    """Four panels: (A) gap vs KL for random q; (B) -ELBO over Adam steps above -log p(x), gap
    labelled; (C) 2-sd ellipses of p(z|x) and the fitted q's; (D) IWAE gap vs K on log axes."""
    plt = pyplot()
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(12.5, 10))
    for mask, label, marker in ((~ident["diagonal"], "full q", "o"), (ident["diagonal"], "diagonal q", "s")):
        a.loglog(ident["kl"][mask], ident["gap"][mask], marker, ms=3, alpha=0.6, color=_color(label),
                 label=f"{label} ({mask.sum()} random)")
    lim = [ident["kl"].min() / 2, ident["kl"].max() * 2]
    a.loglog(lim, lim, "k-", lw=0.8, label="y = x")
    a.set(xlabel="KL(q || p(z|x)), closed form [nats]", ylabel="log p(x) - ELBO(q), closed forms [nats]",
          title=f"A. the ELBO gap is the posterior KL (max rel. dev. {ident['rel_dev'].max():.1e})")
    a.legend(fontsize=9)

    for label, elbo in traces.items():
        steps = np.arange(1, elbo.size + 1)
        b.semilogx(steps, -elbo, color=_color(label),
                   label=f"-ELBO, {label} (final gap {log_px - elbo[-1]:.2e})")
    b.axhline(-log_px, color="black", ls="--", lw=1, label=f"-log p(x) = {-log_px:.4f} (surprisal)")
    b.axhline(-log_px + mf_gap, color="tab:red", ls=":", lw=1,
              label="-log p(x) + mean-field gap (closed form)")
    x_end = list(traces.values())[0].size
    b.annotate("", xy=(x_end * 0.6, -log_px), xytext=(x_end * 0.6, -log_px + mf_gap),
               arrowprops=dict(arrowstyle="<->", color="tab:red"))
    b.text(x_end * 0.55, -log_px + mf_gap / 2, f"gap = KL(q||p(z|x))\n= -log(1-rho^2)/2\n= {mf_gap:.4f} nats",
           ha="right", va="center", color="tab:red", fontsize=9)
    b.set_ylim(-log_px - 0.3 * max(mf_gap, 0.5), -log_px + 4 * max(mf_gap, 0.5))
    b.set(xlabel="Adam step (log scale)", ylabel="nats",
          title="B. surprisal upper bound: -ELBO >= -log p(x) (early steps above the frame)")
    b.legend(fontsize=8.5, loc="upper right")

    for label, (loc, cov) in ellipses.items():
        exact = label == "p(z|x)"                                         # drawn wide and grey, under
        for n_std, style in ((1, "-"), (2, "--")):
            pts = ellipse_points(loc, cov, n_std)
            c.plot(pts[:, 0], pts[:, 1], style, color="0.7" if exact else _color(label), lw=6 if exact else 1.4,
                   label=f"{label} ({'solid 1 sd, dashed 2 sd' if exact else 'same'})" if n_std == 1 else None)
        c.plot(*loc, "+", color="0.4" if exact else _color(label), ms=10)
    c.set_aspect("equal")
    c.set(xlabel="z1", ylabel="z2", title="C. 1- and 2-sd ellipses: full q covers p(z|x); diagonal q cannot")
    c.legend(fontsize=9)

    for label, res in iwae.items():
        ok = res["gap"] > 0
        d.errorbar(res["K"][ok], res["gap"][ok], yerr=res["se"][ok], marker="o", ms=4, capsize=3,
                   color=_color(label),
                   label=f"{label} (KL at K=1: {res['kl']:.3g}, chi^2 = {res['chi2']:.3g})")
        if np.isfinite(res["chi2"]):
            d.plot(res["K"], res["chi2"] / (2 * res["K"]), ":", color=_color(label),
                   label=f"chi^2/(2K): large-K prediction for {label}")
    d.set_xscale("log", base=2)
    d.set_yscale("log")
    d.set(xlabel="K (importance samples)", ylabel="log p(x) - E[IWAE_K]  [nats]",
          title="D. IWAE_K -> log p(x) as K grows (mean +- 1 s.e.)")
    d.legend(fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _finish(fig, title, caption, path)


_JOINT_BARS = (("log_lik", "E_q log p(x|z)", "tab:gray"), ("log_prior", "E_q log p(z)", "tab:gray"),
               ("log_abs_det", "E log|det dz/deps|", "tab:orange"),
               ("log_p_x_eps", "E_eps log p(x,eps)\n= sum of the 3 left", "tab:purple"),
               ("elbo", "ELBO", "tab:blue"), ("neg_H", "-H(p(eps))", "tab:cyan"),
               ("elbo_minus_H", "ELBO - H(p(eps))", "tab:purple"))


def joint_identity_figure(results, *, title, caption, path=None):
    """One panel per q: the identity's terms as bars, closed form (solid) beside Monte Carlo
    (hatched, error bar 4 s.e.); the two purple bars are the two sides of the identity."""
    plt = pyplot()
    qs = results["q"]
    fig, axes = plt.subplots(1, len(qs), figsize=(7 * len(qs), 5.8), sharey=True, squeeze=False)
    H = results["entropy_eps"]
    for ax, (name, r) in zip(axes[0], qs.items()):
        cf = dict(r["closed"], neg_H=-H)
        mc = dict(r["mc"], elbo=r["mc"]["log_w"], neg_H=-H, elbo_minus_H=r["mc"]["log_w"] - H)
        se = dict(r["se"], elbo=r["se"]["log_w"], neg_H=0.0, elbo_minus_H=r["se"]["log_w"])
        pos = np.arange(len(_JOINT_BARS))
        for i, (key, _, color) in enumerate(_JOINT_BARS):
            ax.bar(i - 0.2, cf[key], 0.4, color=color, label="closed form" if i == 0 else None)
            ax.bar(i + 0.2, mc[key], 0.4, color=color, alpha=0.45, hatch="//", yerr=4 * se[key],
                   capsize=3, label="Monte Carlo" if i == 0 else None)
            va = "top" if cf[key] < 0 else "bottom"
            ax.text(i, cf[key], f"{cf[key]:.3f}", ha="center", va=va, fontsize=8.5)
        ax.axhline(0, color="black", lw=0.8)
        ax.axvline(3.5, color="black", ls=":", lw=1)
        ax.margins(y=0.1)
        lo = ax.get_ylim()[0]
        ax.text(1.5, lo * 0.97, "left side: E_eps log p(x, eps)", ha="center", fontsize=9)
        ax.text(5.0, lo * 0.97, "right side: ELBO - H(p(eps))", ha="center", fontsize=9)
        ax.set_xticks(pos, [lab for _, lab, _ in _JOINT_BARS], rotation=35, ha="right", fontsize=9)
        ax.set_title(f"{name}: |E log p(x,eps) - (ELBO - H)| / |ELBO| = {r['rel_dev']:.0e}\n"
                     f"MC: {r['mc_z']:+.2f} s.e.; log|det dz/deps| = {cf['log_abs_det']:.4f}", fontsize=10)
        ax.legend(fontsize=9, loc="lower left", bbox_to_anchor=(0.15, 0.1))
    axes[0, 0].set_ylabel("nats")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return _finish(fig, title, caption, path)


def _zoom_window(gap, period, n_periods=4):
    """Start/stop of ``n_periods`` alternating cycles around the largest gap after the transient."""
    start = 2 * period + int(np.argmax(gap[2 * period:]))
    start = max(0, (start // period - 1) * period)
    return start, min(gap.size - 1, start + n_periods * period)


def alternating_figure(traces, updates, log_px_ml, period, *, title, caption, path=None):
    """(a) log p(x) and ELBO per step; (b) the gap; (c) a zoom on alternating cycles with the
    phi-phases shaded; (d) each run's path in the (log p(x), gap) plane."""
    plt = pyplot()
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(13, 10))
    for method, tr in traces.items():
        steps = np.arange(1, tr.shape[0] + 1)
        a.semilogx(steps, tr[:, 0], "-", color=_color(method), label=f"log p(x), {method}")
        a.semilogx(steps, tr[:, 1], "--", color=_color(method), lw=1, label=f"ELBO, {method}")
        b.loglog(steps, np.maximum(tr[:, 0] - tr[:, 1], 1e-16), color=_color(method), lw=1, label=method)
        d.semilogy(tr[:, 0], np.maximum(tr[:, 0] - tr[:, 1], 1e-16), "-", color=_color(method), lw=0.9,
                   label=method)
        d.plot(tr[0, 0], tr[0, 0] - tr[0, 1], "o", color=_color(method))
    a.axhline(log_px_ml, color="black", ls=":", lw=1, label="ML optimum (closed form)")
    a.set_ylim(log_px_ml - 4, log_px_ml + 0.3)
    a.set(xlabel="step = gradient evaluation (log scale)", ylabel="mean per data point [nats]",
          title="(a) log p(x) (solid) and ELBO (dashed)")
    a.legend(fontsize=8, ncol=2, loc="lower right")
    b.set_ylim(1e-12, None)
    b.set(xlabel="step (log scale)", ylabel="gap = log p(x) - ELBO = mean KL(q_n || p(z|x_n))",
          title="(b) the gap: alternating re-opens it every cycle")
    b.legend(fontsize=9)

    tr, upd = traces["alternating"], updates["alternating"]
    lo, hi = _zoom_window(tr[:, 0] - tr[:, 1], period)
    steps = np.arange(lo, hi + 1)
    c.plot(steps, tr[lo:hi + 1, 0], "-o", ms=3, color=_color("alternating"), label="log p(x)")
    c.plot(steps, tr[lo:hi + 1, 1], "--s", ms=3, color="tab:brown", label="ELBO")
    for s in range(lo, hi):
        if upd[s] == "phi":
            c.axvspan(s, s + 1, color="tab:gray", alpha=0.15, lw=0)
    c.set(xlabel="step", ylabel="mean per data point [nats]",
          title="(c) alternating, zoomed: in phi-steps (grey) the bound tightens, log p(x) stalls")
    c.legend(fontsize=9)

    d.set(xlabel="log p(x) [nats] (dots: start)", ylabel="gap [nats] (log scale)",
          title="(d) the path in the (log p(x), gap) plane: alternating zig-zags")
    d.axvline(log_px_ml, color="black", ls=":", lw=1)
    d.set_xlim(log_px_ml - 6, log_px_ml + 0.2)
    d.set_ylim(1e-8, None)
    d.legend(fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _finish(fig, title, caption, path)
