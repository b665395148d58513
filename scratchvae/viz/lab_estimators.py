"""Figures for the lab's gradient-estimator, MCMC-vs-VI and calculus-of-variations demos.

matplotlib is imported only inside functions, through :func:`scratchvae.viz.pyplot` (Agg backend).
Each function takes plain arrays, draws one figure, writes it to ``path`` and returns the path.
"""
from __future__ import annotations

import numpy as np

from . import finish, pyplot, save

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def loglog_panels(panels, *, suptitle: str, caption: str, path, ncols: int = 2):
    """Grid of log-log line plots, e.g. variance and SNR of gradient estimators vs S.

    Parameters
    ----------
    panels : list of dict
        Each with ``title``, ``xlabel``, ``ylabel``, ``curves`` (label -> (x, y) arrays) and
        optionally ``guide`` = (slope, text): a dashed reference line y ~ x^slope through the
        first point of the first curve.
    """
    plt = pyplot()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 4.2 * nrows + 0.9), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, p in zip(axes.ravel(), panels):
        for (label, (x, y)), c in zip(p["curves"].items(), _COLORS):
            ax.loglog(x, y, "o-", color=c, label=label, ms=4)
        if "guide" in p:
            slope, text = p["guide"]
            x0, y0 = next(iter(p["curves"].values()))
            x0 = np.asarray(x0, dtype=float)
            ax.loglog(x0, y0[0] * (x0 / x0[0]) ** slope, "k--", lw=1, label=text)
        ax.set(title=p["title"], xlabel=p["xlabel"], ylabel=p["ylabel"])
        x_all = np.asarray(next(iter(p["curves"].values()))[0])
        ax.set_xticks(x_all, [f"{v:g}" for v in x_all])                # the S values, no 2x10^0
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return finish(fig, suptitle, caption, path)


def _ellipse(ax, mean, cov, n_std, **kw):
    """Draw the n_std-sigma ellipse {m + n_std L u : |u| = 1} of N(mean, cov)."""
    t = np.linspace(0, 2 * np.pi, 200)
    pts = mean[:, None] + n_std * np.linalg.cholesky(cov) @ np.stack([np.cos(t), np.sin(t)])
    ax.plot(pts[0], pts[1], **kw)


def mcmc_vs_vi_figure(grid, chains: dict, vi, acfs: dict, *, suptitle: str, caption: str, path,
                      n_show: int = 2000):
    """Posterior contours with MH samples for each proposal scale, the VI fit, and the ACFs.

    Parameters
    ----------
    grid : tuple (z1 (n,), z2 (m,), density (m, n))
        The numerically normalized posterior on a grid (density[i, j] at (z1[j], z2[i])).
    chains : dict label -> (samples (N, 2), subtitle)
        Each drawn on its own panel: the first ``n_show`` states as a connected path + dots.
    vi : tuple (mean (2,), cov (2, 2), subtitle)
    acfs : dict label -> acf (K, 2)
        Autocorrelation of each coordinate, plotted for z1 (solid) and z2 (dotted).
    """
    plt = pyplot()
    z1, z2, dens = grid
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.6))
    panels = list(chains.items()) + [("variational fit", None)]
    levels = np.max(dens) * np.array([0.02, 0.1, 0.3, 0.6, 0.9])
    for ax, (label, item) in zip(axes.ravel(), panels):
        ax.contour(z1, z2, dens, levels=levels, colors="0.45", linewidths=0.8)
        if item is not None:
            samples, sub = item
            s = samples[:n_show]
            ax.plot(s[:, 0], s[:, 1], "-", color="tab:blue", lw=0.4, alpha=0.6)
            ax.plot(s[:, 0], s[:, 1], ".", color="tab:blue", ms=2)
            ax.set_title(f"MH, {label}\n{sub}", fontsize=10)
        else:
            mean, cov, sub = vi
            for k, ls in ((1, "-"), (2, "--")):
                _ellipse(ax, mean, cov, k, color="tab:red", ls=ls, lw=1.6,
                         label=f"q: {k}-sigma ellipse")
            ax.plot(*mean, "r+", ms=12, mew=2)
            ax.legend(fontsize=8, loc="lower right")
            ax.set_title(f"full-covariance Gaussian VI\n{sub}", fontsize=10)
        ax.set(xlabel="z1", ylabel="z2", xlim=(z1[0], z1[-1]), ylim=(z2[0], z2[-1]))
    ax = axes.ravel()[len(panels)]
    for (label, acf), c in zip(acfs.items(), _COLORS):
        lags = np.arange(len(acf))
        ax.plot(lags, acf[:, 0], "-", color=c, label=f"{label}: z1")
        ax.plot(lags, acf[:, 1], ":", color=c, label=f"{label}: z2")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(title="autocorrelation of the MH chains", xlabel="lag (steps)", ylabel="ACF")
    ax.legend(fontsize=7.5)
    for ax in axes.ravel()[len(panels) + 1:]:
        ax.axis("off")
    fig.suptitle(suptitle, fontsize=12)
    fig.text(0.01, 0.0, caption, ha="left", va="top", fontsize=8.5, family="monospace")
    fig.tight_layout()
    return save(fig, path)


def variations_figure(x, y_init, iterates, y_final, y_line, history, *, suptitle: str,
                      caption: str, path):
    """Curves converging to the straight line, and the convergence measures on a log axis.

    Parameters
    ----------
    x, y_init, y_final, y_line : ndarray (n,)
    iterates : list of (iteration, y (n,))
    history : dict with ``iteration`` (K,) and curves label -> (K,) values (positive) to plot.
    """
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8))
    ax.plot(x, y_init, "-", color="tab:red", lw=1.5, label="initial curve (iteration 0)")
    cmap = plt.get_cmap("viridis")
    for k, (it, y) in enumerate(iterates):
        ax.plot(x, y, "-", color=cmap(0.15 + 0.7 * k / max(1, len(iterates) - 1)), lw=0.9,
                label=f"iteration {it}")
    ax.plot(x, y_final, "o-", color="k", ms=3, lw=1.2, label="final curve")
    ax.plot(x, y_line, "--", color="tab:orange", lw=1.5, label="straight line")
    ax.set(title="discretized curves y(x), endpoints fixed", xlabel="x", ylabel="y")
    ax.legend(fontsize=7.5, ncol=2)
    it = history["iteration"]
    for (label, v), c in zip(history["curves"].items(), _COLORS):
        bx.semilogy(it, v, "-", color=c, label=label)
    bx.set(title="convergence", xlabel="iteration", ylabel="value (log scale)")
    bx.grid(True, which="both", alpha=0.3)
    bx.legend(fontsize=8)
    return finish(fig, suptitle, caption, path)
