"""Figures for Ising denoising, and the letter image the demo denoises.

matplotlib is imported only inside functions, through :func:`scratchvae.viz.pyplot` (Agg backend).
Images are drawn with +1 as white and -1 as black, row 0 at the top (``imshow`` default).
"""
from __future__ import annotations

import os

import numpy as np

from . import pyplot, save
from ..validate import check_int


def letter_image(text: str = "VI", size: int = 128, margin: float = 0.1) -> np.ndarray:
    """Render ``text`` in matplotlib's bundled DejaVu Sans Bold as a binary (size, size) image.

    Letters are +1, background -1 (float64); row 0 is the top of the letters. The glyph outlines
    (``matplotlib.textpath.TextPath``) are scaled to fit inside the square with ``margin`` on each
    side and rasterized by testing every pixel centre with ``Path.contains_points``; no file
    besides the font that ships with matplotlib and no network is used.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    size = check_int("size", size, minimum=8)
    pyplot()                                                     # selects Agg before any import
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    font = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans-Bold.ttf")
    path = TextPath((0, 0), text, size=100, prop=FontProperties(fname=font))
    box = path.get_extents()
    scale = (1 - 2 * margin) * size / max(box.width, box.height)
    off_x = (size - scale * box.width) / 2 - scale * box.x0
    off_y = (size - scale * box.height) / 2 - scale * box.y0
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    # pixel (r, c) has centre (c + 0.5, size - r - 0.5) in y-up font coordinates -> row 0 on top
    pts = np.column_stack([(cols.ravel() - off_x) / scale, (size - rows.ravel() - off_y) / scale])
    inside = path.contains_points(pts).reshape(size, size)
    return np.where(inside, 1.0, -1.0)


def image_grid(panels, *, ncols: int = 4, suptitle: str = "", caption: str = "",
               annotate: bool = False, path=None):
    """Show (title, image) pairs of (H, W) arrays in [-1, 1] on a grid; save to ``path`` if given.

    ``annotate`` writes each pixel's value in its cell (for tiny grids such as 4 x 4).
    Returns the saved path, or the figure when ``path`` is None.
    """
    plt = pyplot()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 3.25 * nrows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), panels):
        ax.imshow(img, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        if annotate:
            for (r, c), v in np.ndenumerate(img):
                ax.text(c, r, f"{v:+.2f}", ha="center", va="center", fontsize=9,
                        color="black" if v > 0 else "white")
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    if caption:
        fig.text(0.5, 0.0, caption, ha="center", va="top", fontsize=9, wrap=True)
    fig.tight_layout()
    return save(fig, path) if path is not None else fig


def trace_plot(traces: dict, *, ylabel: str = "ELBO", title: str = "", caption: str = "",
               inset: int = 0, path=None):
    """Plot each 1-D trace (entry k = value after sweep k) against the sweep number.

    ``inset`` > 0 adds a second panel zoomed on the last ``inset`` sweeps, where curves that
    differ by a small fraction of the total are otherwise indistinguishable.
    """
    plt = pyplot()
    ncols = 2 if inset else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.0 * ncols, 4.2), squeeze=False)
    styles = ["o-", "s--", "^-", "d:", "v-", "x--"]
    for k, (label, t) in enumerate(traces.items()):
        t = np.asarray(t)
        for ax, start in zip(axes[0], (0, max(len(t) - inset, 0))):
            ax.plot(np.arange(start, len(t)), t[start:], styles[k % len(styles)], label=label,
                    markersize=4)
    for ax, sub in zip(axes[0], ("all sweeps", f"last {inset} sweeps (zoom)")):
        ax.set_xlabel("sweep (0 = initialization)")
        ax.set_ylabel(ylabel)
        ax.set_title(sub if inset else title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if inset and title:
        fig.suptitle(title, fontsize=12)
    if caption:
        fig.text(0.5, 0.0, caption, ha="center", va="top", fontsize=9, wrap=True)
    fig.tight_layout()
    return save(fig, path) if path is not None else fig


def denoising_figure(clean, noisy, results: dict, *, suptitle: str = "", caption: str = "",
                     path=None):
    """Panels: clean, noisy, every recorded mean-field snapshot, then each method's final mean.

    Parameters
    ----------
    clean : np.ndarray, shape (H, W), values in {-1, +1}
    noisy : np.ndarray, shape (H, W)
        Shown clipped to [-1, 1] (Gaussian observations exceed it).
    results : dict of str -> IsingResult
        In display order; the snapshots of a result whose method starts with "mean_field" are
        shown first ("after sweep k"). Each panel title carries its pixel error rate.
    """
    from ..ising.mean_field import error_rate
    pct = lambda v: f"error {100 * error_rate(v, clean):.1f}%"     # noqa: E731
    panels = [("clean image (+1 white, -1 black)", clean),
              (f"noisy observation (clipped to [-1, 1])\nits sign: {pct(noisy)}",
               np.clip(noisy, -1, 1))]
    for name, res in results.items():
        if res.method.startswith("mean_field"):
            for k in sorted(s for s in res.snapshots if s < res.n_sweeps):
                panels.append((f"{name}: mean after sweep {k}\n{pct(res.snapshots[k])}",
                               res.snapshots[k]))
        what = "final mean" if res.method.startswith(("mean_field", "gibbs")) else "final state"
        panels.append((f"{name}: {what}\n{pct(res.mean)}", res.mean))
    return image_grid(panels, ncols=4, suptitle=suptitle, caption=caption, path=path)
