"""Plain per-pixel loop implementation of the mean-field sweep: the oracle and the baseline.

Written the way the update appears in the book (Murphy 2012 §21.3.2), one pixel at a time with
Python floats, sharing nothing with the vectorized engine in :mod:`scratchvae.ising` except the
model's stored h = (l(+1) - l(-1)) / 2 and J::

    m_i  = sum_{j in nbr(i)} J mu_j          (4 or 8 neighbours, free boundary)
    mu_i <- (1 - lam) mu_i + lam tanh(m_i + h_i)

"parallel" reads every m_i from the previous sweep; "checkerboard" visits the pixels colour by
colour ((i + j) mod 2 for 4 neighbours, 2 (i mod 2) + j mod 2 for 8), in raster order within a
colour, always reading the newest values. Used by the tests (agreement to 1e-12) and the
benchmark (speed of the vectorized sweep relative to this loop). Not for real use: it is slow.
"""
from __future__ import annotations

import math

import numpy as np

from .mean_field import IsingModel, check_schedule, check_mean

_OFFSETS = {4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
            8: ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))}


def _update(model, read, write, i, j, lam):
    H, W = read.shape
    m = 0.0
    for di, dj in _OFFSETS[model.neighbours]:
        if 0 <= i + di < H and 0 <= j + dj < W:
            m += model.coupling * read[i + di, j + dj]
    a = m + model.half_log_odds[i, j]
    write[i, j] = (1 - lam) * read[i, j] + lam * math.tanh(a)


def loop_sweep(model: IsingModel, mu, *, schedule="parallel", damping=1.0) -> np.ndarray:
    """One mean-field sweep with explicit Python loops over pixels; returns new (H, W) means."""
    check_mean("mu", mu, model)
    lam = check_schedule(schedule, damping)
    H, W = mu.shape
    new = mu.copy()
    if schedule == "parallel":
        for i in range(H):
            for j in range(W):
                _update(model, mu, new, i, j, lam)
        return new
    n_colours = 2 if model.neighbours == 4 else 4
    for colour in range(n_colours):
        for i in range(H):
            for j in range(W):
                c = (i + j) % 2 if model.neighbours == 4 else 2 * (i % 2) + j % 2
                if c == colour:
                    _update(model, new, new, i, j, lam)
    return new
