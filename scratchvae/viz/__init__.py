"""Figures. The only part of scratchvae that imports matplotlib, and only when a figure is drawn.

``pyplot()`` selects the non-interactive ``Agg`` backend (no display needed) before the first
import of ``matplotlib.pyplot``, so demos run on headless machines and in CI.
"""
from __future__ import annotations

import os


def pyplot():
    """Import and return ``matplotlib.pyplot`` with the Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path) -> str:
    """Save ``fig`` to ``path`` (creating the folder), close it, and return the path."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def finish(fig, suptitle: str, caption: str, path) -> str:
    """Title the figure, put the caption (the measured numbers) under it, save and close it."""
    fig.suptitle(suptitle, fontsize=12)
    fig.text(0.01, -0.01, caption, ha="left", va="top", fontsize=8.5, family="monospace")
    fig.tight_layout()
    return save(fig, path)
