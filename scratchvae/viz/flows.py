"""Figures for the normalizing-flow demos (demos/flows_2d.py).

matplotlib is imported only inside functions, through :func:`scratchvae.viz.pyplot` (Agg backend).
Each function takes plain arrays, draws one figure, writes it to ``path`` and returns the path.
"""
from __future__ import annotations

import numpy as np

from . import pyplot, save


def sample_density(samples, lim: float, bins: int):
    """Histogram estimate of a 2-D density on [-lim, lim]^2: (bins, bins), rows along z2.

    counts / (n * bin area) with n the number of *all* samples, so mass outside the window is
    missing from the picture rather than spread over it, and the values compare with an exact
    density on the same window.
    """
    samples = np.asarray(samples)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=bins,
                                  range=[[-lim, lim], [-lim, lim]])
    area = (2 * lim / bins) ** 2
    return counts.T / (samples.shape[0] * area)                      # (bins, bins), [z2, z1]


def flows_2d_figure(axis, rows, *, lim: float, suptitle: str, caption: str, path, bins: int = 90):
    """A grid of density panels: one row per target, the exact target first, then each fitted q.

    Parameters
    ----------
    axis : ndarray (n,)
        Grid coordinates on [-lim, lim] (z1 = z2 = axis).
    rows : list of dict
        Each with ``title`` (str), ``density`` (n, n) the exact normalized target density on the
        grid (rows along z2), and ``fits``: a list of (title, samples (N, 2)) drawn as histograms
        (:func:`sample_density`) on the same colour scale as the target (clipped at its maximum).
    lim : float
        Half width of the window shown.
    """
    plt = pyplot()
    n_cols = 1 + max(len(r["fits"]) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.3 * n_cols, 2.6 * len(rows) + 1.2),
                             squeeze=False)
    extent = (-lim, lim, -lim, lim)
    for ax_row, row in zip(axes, rows):
        vmax = float(row["density"].max())
        panels = [(row["title"], row["density"])] + [
            (title, sample_density(s, lim, bins)) for title, s in row["fits"]]
        for ax, (title, dens) in zip(ax_row, panels):
            ax.imshow(dens, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=vmax,
                      interpolation="nearest", aspect="equal")
            ax.set_title(title, fontsize=10.5)
            ax.set_xticks([-lim, 0, lim])
            ax.set_yticks([-lim, 0, lim])
            ax.tick_params(labelsize=7)
        for ax in ax_row[len(panels):]:
            ax.axis("off")
        ax_row[0].set_ylabel("z2", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("z1", fontsize=9)
    fig.suptitle(suptitle, fontsize=13)
    fig.tight_layout()
    fig.text(0.01, 0.0, caption, ha="left", va="top", fontsize=10)
    return save(fig, path)
