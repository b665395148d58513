"""Figures for a trained VAE: learning curves, image grids, the 2-D latent space.

matplotlib is imported only inside the functions, through :func:`scratchvae.viz.pyplot` (Agg
backend). Images arrive as flattened rows (N, H*W) in row-major order, the layout of
:mod:`scratchvae.data`; they are reshaped to ``shape`` = (H, W) (default 28 x 28; see
:func:`scratchvae.data.image_shape`) with row 0 at the top (``imshow``'s default), so digits
stand upright. Pixel values are probabilities of ink in [0, 1], drawn with
``gray_r``: 0 = white paper, 1 = black ink.

Every function takes ``title`` and ``caption`` (the key numbers go there) and ``path``; it
returns the saved path, or the figure when ``path`` is None.
"""
from __future__ import annotations

import numpy as np

from . import pyplot, save

DIGIT_COLOURS = "tab10"


def _finish(fig, title, caption, path):
    """Title on top, caption under everything (tick labels included), tight layout, save."""
    from matplotlib.transforms import offset_copy
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if caption:                      # placed after the layout, 8 points below the figure's edge
        fig.text(0.5, 0.0, caption, ha="center", va="top", fontsize=8.5, wrap=True,
                 transform=offset_copy(fig.transFigure, fig=fig, y=-8, units="points"))
    return save(fig, path) if path is not None else fig


def tile(images, nrows: int, ncols: int, shape=(28, 28)) -> np.ndarray:
    """Arrange ``images`` (N, H*W) or (N, H, W), N <= nrows*ncols, row-major into one 2-D array
    (nrows*H, ncols*W), (H, W) = ``shape``; empty cells are NaN (drawn blank).

    Raises ValueError for H or W < 1, images of another size, or more images than cells."""
    images = np.asarray(images, dtype=np.float64)
    h, w = (int(n) for n in shape)
    if h < 1 or w < 1:
        raise ValueError(f"shape must be (height, width) with both >= 1, got {tuple(shape)}")
    if images.ndim == 3 and images.shape[1:] == (h, w):
        images = images.reshape(len(images), h * w)
    if images.ndim != 2 or images.shape[1] != h * w:
        raise ValueError(f"images must have shape (N, {h * w}) to be drawn as {h} x {w} pictures "
                         f"(shape = (height, width)), got {images.shape}")
    images = images.reshape(-1, h, w)
    if len(images) > nrows * ncols:
        raise ValueError(f"{len(images)} images do not fit a {nrows} x {ncols} grid")
    out = np.full((nrows * h, ncols * w), np.nan)
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return out


def _show(ax, canvas, shape=(28, 28)):
    """Draw a tiled canvas with thin lines between the cells (vector lines, so all equally thin)."""
    cmap = pyplot().get_cmap("gray_r").with_extremes(bad="white")      # NaN cells: blank
    ax.imshow(canvas, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    for r in range(shape[0], canvas.shape[0], shape[0]):
        ax.axhline(r - 0.5, color="#8aa", lw=0.6)
    for c in range(shape[1], canvas.shape[1], shape[1]):
        ax.axvline(c - 0.5, color="#8aa", lw=0.6)


def _centres(n, size=28):
    """Pixel coordinates of the centres of cells ``n`` of ``size`` pixels."""
    return [(k + 0.5) * size - 0.5 for k in n]


def _cell_size(shape, inches: float = 0.55):
    """Figure inches (height, width) of a grid cell whose longer edge is ``inches`` long."""
    h, w = shape
    return inches * h / max(h, w), inches * w / max(h, w)


def learning_curves(history, *, title: str = "", caption: str = "", path=None):
    """ELBO, reconstruction term and KL per epoch, train and validation, in three panels.

    ``history`` is the list of dicts returned by :func:`scratchvae.train.train`. The training
    numbers are averages over the epoch's minibatches (the parameters move during the epoch);
    the train ELBO is ``train_rec - train_kl`` (beta = 1 even during KL warm-up), the validation
    numbers are measured after the epoch.
    """
    plt = pyplot()
    ep = np.array([h["epoch"] for h in history])
    get = lambda k: np.array([h[k] for h in history])                        # noqa: E731
    panels = [("ELBO  (nats per example)", get("train_rec") - get("train_kl"), get("valid_elbo")),
              ("reconstruction  E_q[log p(x|z)]", get("train_rec"), get("valid_rec")),
              ("KL(q(z|x) || p(z))", get("train_kl"), get("valid_kl"))]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9))
    for ax, (name, tr, va) in zip(axes, panels):
        ax.plot(ep, tr, "o-", ms=3, label="train (mean over the epoch)")
        ax.plot(ep, va, "s--", ms=3, label="validation (end of epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.set_title(f"{name}\nlast: train {tr[-1]:.2f}, valid {va[-1]:.2f}", fontsize=9.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    betas = get("beta")
    if betas.min() < 1:
        for ax in axes:
            ax.axvspan(ep[0] - 0.5, ep[np.argmax(betas >= 1)] - 0.5, color="0.9", zorder=0)
        axes[2].text(0.02, 0.02, "shaded: KL warm-up (beta < 1)", transform=axes[2].transAxes,
                     fontsize=8)
    return _finish(fig, title, caption, path)


def image_grid(images, *, ncols: int = 10, shape=(28, 28), title: str = "", caption: str = "",
               path=None):
    """Images (N, H*W) in [0, 1], (H, W) = ``shape``, on a grid of ``ncols`` columns.
    ValueError (from :func:`tile`) when the rows do not hold H*W pixels."""
    plt = pyplot()
    nrows = -(-len(images) // ncols)
    ch, cw = _cell_size(shape)
    fig, ax = plt.subplots(figsize=(cw * ncols + 0.4, ch * nrows + 0.6))
    _show(ax, tile(images, nrows, ncols, shape), shape)
    ax.set_xticks([])
    ax.set_yticks([])
    return _finish(fig, title, caption, path)


def reconstructions(inputs, recons, *, ncols: int = 10, shape=(28, 28), title: str = "",
                    caption: str = "", path=None):
    """Each input above its reconstruction: blocks of two rows (input, reconstruction).
    ``inputs`` and ``recons`` (N, H*W), (H, W) = ``shape``; ValueError when they differ in shape
    or do not hold H*W pixels."""
    plt = pyplot()
    inputs, recons = np.asarray(inputs), np.asarray(recons)
    if inputs.shape != recons.shape:
        raise ValueError(f"inputs and recons must have the same shape, got {inputs.shape} and "
                         f"{recons.shape}")
    blocks = -(-len(inputs) // ncols)
    rows = []
    for b in range(blocks):
        chunk = slice(b * ncols, (b + 1) * ncols)
        for part in (inputs[chunk], recons[chunk]):
            row = np.full((ncols, shape[0] * shape[1]), np.nan)
            row[:len(part)] = part
            rows.append(row)
    ch, cw = _cell_size(shape, 0.6)
    fig, ax = plt.subplots(figsize=(cw * ncols + 1.2, ch * 2 * blocks + 0.8))
    _show(ax, tile(np.concatenate(rows), 2 * blocks, ncols, shape), shape)
    ax.set_yticks(_centres(range(2 * blocks), shape[0]))
    ax.set_yticklabels(["input", "reconstruction"] * blocks, fontsize=8)
    for b in range(1, blocks):                        # separate the (input, reconstruction) pairs
        ax.axhline(2 * b * shape[0] - 0.5, color="#466", lw=2)
    ax.set_xticks([])
    return _finish(fig, title, caption, path)


def latent_scatter(z, labels, *, box=None, title: str = "", caption: str = "", path=None):
    """Posterior means z (N, 2) coloured by digit label, with a legend; ``box`` = (lo, hi)
    draws the square [lo, hi]^2 (e.g. the region the manifold grid decodes)."""
    plt = pyplot()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {z.shape}")
    fig, ax = plt.subplots(figsize=(6.6, 5.6))
    cmap = plt.get_cmap(DIGIT_COLOURS)
    for d in np.unique(labels):
        sel = labels == d
        ax.scatter(z[sel, 0], z[sel, 1], s=7, alpha=0.75, color=cmap(int(d) % 10), label=str(d),
                   edgecolors="none")
    if box is not None:
        lo, hi = box
        ax.add_patch(plt.Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ls="--", lw=1,
                                   ec="0.3", label="decoded grid"))
    ax.set_xlabel("z_1  (posterior mean E_q[z_1|x])")
    ax.set_ylabel("z_2  (posterior mean E_q[z_2|x])")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(title="digit", fontsize=8, markerscale=2.5, loc="center left",
              bbox_to_anchor=(1.01, 0.5))
    return _finish(fig, title, caption, path)


def manifold(images, z, n: int, *, shape=(28, 28), title: str = "", caption: str = "",
             path=None):
    """The decoded n x n grid of :func:`scratchvae.generate.latent_grid`: ``images`` (n*n, H*W),
    (H, W) = ``shape``, and their ``z`` (n*n, 2), drawn on the axes (z_1 increases to the right,
    z_2 upwards)."""
    plt = pyplot()
    z = np.asarray(z).reshape(n, n, 2)
    fig, ax = plt.subplots(figsize=(7.2, 7.2))
    _show(ax, tile(images, n, n, shape), shape)
    ticks = list(range(0, n, 2)) if n > 9 else list(range(n))
    ax.set_xticks(_centres(ticks, shape[1]))
    ax.set_xticklabels([f"{z[0, k, 0]:.2f}" for k in ticks], fontsize=8)
    ax.set_yticks(_centres(ticks, shape[0]))
    ax.set_yticklabels([f"{z[k, 0, 1]:.2f}" for k in ticks], fontsize=8)
    ax.set_xlabel("z_1")
    ax.set_ylabel("z_2")
    return _finish(fig, title, caption, path)


def interpolations(rows, *, labels=None, shape=(28, 28), title: str = "", caption: str = "",
                   path=None):
    """Each row (n_steps, H*W), (H, W) = ``shape``, decodes z_t = (1 - t) E_q[z|x_a] + t E_q[z|x_b]
    for t from 0 to 1; ``labels`` names the rows (e.g. "3 -> 4")."""
    rows = [np.asarray(r) for r in rows]
    n_steps = rows[0].shape[0]
    plt = pyplot()
    ch, cw = _cell_size(shape, 0.6)
    fig, ax = plt.subplots(figsize=(cw * n_steps + 1.2, ch * len(rows) + 1.1))
    _show(ax, tile(np.concatenate(rows), len(rows), n_steps, shape), shape)
    ax.set_xticks(_centres((0, n_steps - 1), shape[1]))
    ax.set_xticklabels(["t = 0 (x_a)", "t = 1 (x_b)"], fontsize=8)
    ax.set_yticks(_centres(range(len(rows)), shape[0]))
    ax.set_yticklabels(labels if labels is not None else [""] * len(rows), fontsize=8)
    title = (title + "\n" if title else "") + "z_t = (1 - t) E_q[z|x_a] + t E_q[z|x_b]"
    return _finish(fig, title, caption, path)
