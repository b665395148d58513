"""Figures for the toy 2-D VAE (posterior collapse and KL warm-up) and the conditional VAE.

matplotlib is imported only inside functions, through :func:`scratchvae.viz.pyplot` (Agg).
Every function takes plain arrays (no model objects) and saves to ``path`` when given.
"""
from __future__ import annotations

import numpy as np

from . import pyplot, save
from .vae import tile

CLUSTER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _scatter_by_label(ax, pts, labels, size=4, alpha=0.5):
    for k in np.unique(labels):
        m = labels == k
        ax.scatter(pts[m, 0], pts[m, 1], s=size, alpha=alpha, color=CLUSTER_COLORS[k % 6],
                   label=f"cluster {k}", rasterized=True)


def _finish(fig, suptitle, caption, path):
    fig.suptitle(suptitle, fontsize=12)
    if caption:
        fig.text(0.5, -0.01, caption, ha="center", va="top", fontsize=8.5, wrap=True)
    fig.tight_layout()
    return save(fig, path) if path is not None else fig


def latent_panel(ax, z_mean, labels, *, z_scale=None, n_ellipses=0, title=""):
    """Posterior means E_q[z|x] coloured by cluster, optional 2-sigma ellipses of q(z|x) for the
    first ``n_ellipses`` points of each cluster, and the prior's 2-sigma circle (dashed)."""
    from matplotlib.patches import Circle, Ellipse
    _scatter_by_label(ax, z_mean, labels)
    if z_scale is not None:
        for k in np.unique(labels):
            for i in np.flatnonzero(labels == k)[:n_ellipses]:
                ax.add_patch(Ellipse(z_mean[i], 4 * z_scale[i, 0], 4 * z_scale[i, 1], fill=False,
                                     lw=0.8, color=CLUSTER_COLORS[k % 6]))
    ax.add_patch(Circle((0, 0), 2.0, fill=False, ls="--", color="gray", lw=0.8))
    ax.set(xlim=(-3.2, 3.2), ylim=(-3.2, 3.2), xlabel="z1", ylabel="z2", title=title, aspect="equal")


def toy_vae_figure(x, labels, z_mean, z_scale, samples, grid, log_density, *, suptitle="",
                   caption="", path=None, n_ellipses=3):
    """Four panels: data; where q(z|x) puts each cluster; samples of p(x); log p(x) on a grid.

    x (N, 2), labels (N,), z_mean and z_scale (N, 2) (posterior mean and sigma), samples (M, 2)
    from p(x) = int p(x|z) p(z) dz, grid = (g1, g2) (G,) axes, log_density (G, G) with rows along
    g2 (importance-sampled log p(x) of the model).
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.6))
    lim = (grid[0][0], grid[0][-1])
    _scatter_by_label(axes[0], x, labels)
    axes[0].set(title="data x (4 Gaussian clusters)", xlabel="x1", ylabel="x2", xlim=lim, ylim=lim,
                aspect="equal")
    axes[0].legend(fontsize=7, markerscale=3, loc="center")
    latent_panel(axes[1], z_mean, labels, z_scale=z_scale, n_ellipses=n_ellipses,
                 title="q(z|x): posterior means, a few 2-sigma ellipses\n(dashed: prior 2-sigma circle)")
    axes[2].scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.4, color="k", rasterized=True)
    axes[2].set(title="samples x ~ p(x) = int p(x|z) p(z) dz", xlabel="x1", ylabel="x2", xlim=lim,
                ylim=lim, aspect="equal")
    im = axes[3].pcolormesh(grid[0], grid[1], np.maximum(log_density, -12), shading="auto",
                            cmap="viridis")
    fig.colorbar(im, ax=axes[3], fraction=0.046, label="log p(x) (IWAE estimate, clipped at -12)")
    axes[3].set(title="model density log p(x) on a grid", xlabel="x1", ylabel="x2", aspect="equal")
    return _finish(fig, suptitle, caption, path)


def collapse_figure(x, labels, runs, *, suptitle="", caption="", path=None):
    """Top: the data and each run's latent map; bottom: KL and ELBO per epoch, KL per dimension.

    x (N, 2) and labels (N,) are the points whose posterior means are shown; runs is a list (one
    or two) of dicts with ``name``, ``z_mean`` (N, 2), ``history`` (list of dicts with ``epoch``,
    ``valid_kl``, ``valid_elbo``, ``beta``) and ``kl_per_dim`` (Dz,).
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15.6, 9.6))
    _scatter_by_label(axes[0, 0], x, labels)
    axes[0, 0].set(title="held-out data x, coloured by cluster", xlabel="x1", ylabel="x2",
                   aspect="equal")
    for ax, r in zip(axes[0, 1:], runs):
        latent_panel(ax, r["z_mean"], labels, title=f"{r['name']}\nposterior means E_q[z|x]")
    styles = ("-", "--", ":", "-.")
    beta_ax = axes[1, 0].twinx()
    for i, r in enumerate(runs):
        ep = [h["epoch"] for h in r["history"]]
        axes[1, 0].plot(ep, [h["valid_kl"] for h in r["history"]], styles[i % 4], label=r["name"])
        axes[1, 1].plot(ep, [h["valid_elbo"] for h in r["history"]], styles[i % 4], label=r["name"])
        beta_ax.plot(ep, [h["beta"] for h in r["history"]], styles[i % 4], color="gray", lw=0.8)
    beta_ax.set(ylabel="beta at the end of the epoch (gray)", ylim=(0, 1.5))
    axes[1, 0].set(xlabel="epoch", ylabel="KL(q(z|x) || p(z)), nats", ylim=(0, None),
                   title="KL term on validation data; gray: beta")
    axes[1, 1].set(xlabel="epoch", ylabel="ELBO (beta = 1), nats per point", title="validation ELBO")
    lo = min(min(h["valid_elbo"] for h in r["history"][len(r["history"]) // 10:]) for r in runs)
    hi = max(max(h["valid_elbo"] for h in r["history"]) for r in runs)
    axes[1, 1].set_ylim(lo - 0.1 * (hi - lo), hi + 0.05 * (hi - lo))   # the first epochs may be far off
    for ax in axes[1, :2]:
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    width = 0.8 / len(runs)
    dims = np.arange(len(runs[0]["kl_per_dim"]))
    for i, r in enumerate(runs):
        bars = axes[1, 2].bar(dims + i * width, r["kl_per_dim"], width, label=r["name"])
        axes[1, 2].bar_label(bars, fmt="%.3f", fontsize=8)
    axes[1, 2].set(xticks=dims + width * (len(runs) - 1) / 2,
                   xticklabels=[f"z{j + 1}" for j in dims],
                   ylabel="mean KL(q(z_u|x) || N(0, 1)), nats", title="KL per latent dimension")
    axes[1, 2].set_ylim(0, 1.3 * max(max(r["kl_per_dim"]) for r in runs) + 1e-3)
    axes[1, 2].legend(fontsize=8, loc="upper center")
    for ax in axes[0, 1 + len(runs):]:
        ax.axis("off")
    return _finish(fig, suptitle, caption, path)


def class_grid(images, classes, *, shape=(28, 28), row_notes=None, suptitle="", caption="",
               path=None):
    """One row per requested class: images (R, C, H*W) in [0, 1], (H, W) = ``shape`` (see
    :func:`scratchvae.data.image_shape`), ink white on black; ``classes`` (and ``row_notes``)
    give one label per row.

    Raises ValueError when ``images`` is not (R, C, H*W) or the labels are not one per row.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (rows, columns, H*W), got {images.shape}")
    R, C = images.shape[:2]
    for name, labels in (("classes", classes), ("row_notes", row_notes)):
        if labels is not None and len(labels) != R:
            raise ValueError(f"{name} must give one label per row of images ({R}), "
                             f"got {len(labels)}")
    plt = pyplot()
    fig, axes = plt.subplots(R, 1, figsize=(0.62 * C + 1.6, 0.7 * R + 0.9), squeeze=False)
    for r, ax in enumerate(axes[:, 0]):
        strip = tile(images[r], 1, C, shape)                        # (H, C*W), checks the size
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        note = f"  {row_notes[r]}" if row_notes is not None else ""
        ax.set_ylabel(f"y = {classes[r]}{note}", rotation=0, ha="right", va="center", fontsize=9)
    return _finish(fig, suptitle, caption, path)
