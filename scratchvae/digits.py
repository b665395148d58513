"""Embedded digit images: MNIST-like 0-9 rendered from the fonts matplotlib ships, with jitter.

The default data of scratchvae needs no network and no file we did not write. Each digit glyph
of a few bundled fonts (DejaVu Sans / Serif / Sans Mono and their bold and slanted variants,
Computer Modern Sans and Roman) is drawn once into a high-resolution *signed distance field*
(SDF); every image is then one random warp of one of those fields, done in a single vectorized
bilinear gather for the whole batch.

Model of one image (u = output pixel centre relative to the image centre, in pixels)::

    g(u)    = A^-1 (u - t) + e(u)                 glyph coordinates seen by pixel u
    A       = Rot(theta) @ Shear(k) @ diag(s_x, s_y)       random affine jitter
    e(u)    = bilinear upsampling of a 4x4 grid of N(0, sigma_e^2) offsets (elastic wobble;
              Simard, Steinkraus & Platt 2003, sec. 2, in a cheap low-frequency form)
    d(u)    = SDF(g(u)) * s                       distance to the glyph outline, output pixels,
                                                  negative inside the ink
    x(u)    = clip(0.5 + (w/2 - w0/2 - d(u)) / edge, 0, 1)

w0 is the glyph's mean stroke width (2 * area / perimeter) and w the random target stroke width,
so thickening or thinning the outline by (w - w0)/2 gives every font a similar, pen-like width;
the linear ramp of width ``edge`` (one pixel) anti-aliases the outline. Glyphs are normalized
as LeCun et al. (1998) describe MNIST: the longest side of the bounding box fills 20 of 28
pixels and the centre of mass sits at the image centre. Pixel value 1 is ink, 0 background.

matplotlib is needed only to read the font outlines (``matplotlib.textpath.TextPath``); it is
imported inside :func:`_glyph_polygons`, so ``import scratchvae`` does not load it. This is the
one use of matplotlib outside ``scratchvae/viz``: here it is a font reader, not a plotting tool.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from ._validate import check_int, check_rng

# style name -> font file in matplotlib's mpl-data/fonts/ttf folder
FONT_FILES = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "sans-oblique": "DejaVuSans-Oblique.ttf",
    "sans-bold-oblique": "DejaVuSans-BoldOblique.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "serif-italic": "DejaVuSerif-Italic.ttf",
    "serif-bold-italic": "DejaVuSerif-BoldItalic.ttf",
    "mono": "DejaVuSansMono.ttf",
    "mono-bold": "DejaVuSansMono-Bold.ttf",
    "mono-oblique": "DejaVuSansMono-Oblique.ttf",
    "mono-bold-oblique": "DejaVuSansMono-BoldOblique.ttf",
    "cm-sans": "cmss10.ttf",
    "cm-roman": "cmr10.ttf",
}
STYLES = tuple(FONT_FILES)

_MASTER = 128          # side of the master SDF canvas, pixels
_BOX = 20.0 / 28.0     # longest side of a glyph's bounding box, as a fraction of the frame


def _glyph_polygons(style: str, digit: int) -> list:
    """Outline polygons of one glyph in font units (list of (V, 2) arrays, y up)."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", FONT_FILES[style])
    text = TextPath((0.0, 0.0), str(digit), size=100.0, prop=FontProperties(fname=path))
    polys = [np.asarray(p, dtype=np.float64) for p in text.to_polygons(closed_only=True)]
    if style.startswith("mono") and digit == 0:
        polys = [p for p in polys if np.ptp(p[:, 1]) > 30.0]   # drop the dot inside the zero
    return polys


def _rasterize(polys: list, n: int) -> tuple[np.ndarray, float]:
    """Even-odd fill of ``polys`` (already in canvas pixels, y down) on an n x n grid.

    Returns the boolean mask (n, n) and the outline length in pixels.
    """
    from matplotlib.path import Path

    rows, cols = np.mgrid[0:n, 0:n] + 0.5
    pts = np.column_stack([cols.ravel(), rows.ravel()])                    # (n*n, 2) as (x, y)
    inside = np.zeros(n * n, dtype=bool)
    for p in polys:
        inside ^= Path(p).contains_points(pts)    # XOR of contours = even-odd rule: holes stay empty
    perimeter = sum(float(np.sum(np.hypot(*np.diff(p, axis=0).T))) for p in polys)
    return inside.reshape(n, n), perimeter


@functools.lru_cache(maxsize=None)
def _master(style: str, digit: int):
    """Signed distance field of one normalized glyph, with its centre of mass and stroke width.

    Returns ``(sdf, com, width)``: ``sdf`` (M, M) float32 in master pixels (negative inside),
    ``com`` the (row, col) centre of mass, ``width`` the mean stroke width 2*area/perimeter.
    """
    from scipy.ndimage import distance_transform_edt

    polys = _glyph_polygons(style, digit)
    allv = np.concatenate(polys)
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    scale = _BOX * _MASTER / max(hi - lo)
    centre = (lo + hi) / 2.0
    canvas = [np.column_stack([(p[:, 0] - centre[0]) * scale + _MASTER / 2,
                               _MASTER / 2 - (p[:, 1] - centre[1]) * scale]) for p in polys]
    mask, perimeter = _rasterize(canvas, _MASTER)
    sdf = np.where(mask, 0.5 - distance_transform_edt(mask), distance_transform_edt(~mask) - 0.5)
    rows, cols = np.nonzero(mask)
    com = (rows.mean() + 0.5, cols.mean() + 0.5)
    return sdf.astype(np.float32), com, 2.0 * mask.sum() / perimeter


def _elastic_basis(size: int, knots: int = 4) -> np.ndarray:
    """Bilinear interpolation weights from a knots x knots grid to size x size pixels, (size^2, knots^2)."""
    pos = (np.arange(size) + 0.5) / size * (knots - 1)                      # (size,)
    i0 = np.minimum(pos.astype(int), knots - 2)
    w1 = pos - i0
    one_d = np.zeros((size, knots))
    one_d[np.arange(size), i0] = 1.0 - w1
    one_d[np.arange(size), i0 + 1] = w1
    return np.kron(one_d, one_d).astype(np.float32)                         # (size*size, knots*knots)


def _draw_params(n: int, n_styles: int, rng: np.random.Generator) -> dict:
    """All random choices for n images, drawn in a fixed order (so a seed fixes the images)."""
    p = {"label": rng.permutation(np.arange(n) % 10)}                        # balanced classes
    p["style"] = rng.integers(0, n_styles, size=n)
    p["theta"] = np.deg2rad(np.clip(rng.normal(0.0, 8.0, n), -20, 20))     # rotation
    p["shear"] = np.clip(rng.normal(0.12, 0.15, n), -0.3, 0.5)              # slant to the right
    p["scale"] = rng.uniform(0.85, 1.08, n)
    p["aspect"] = np.exp(rng.normal(0.0, 0.08, n))                          # x/y stretch
    p["shift"] = rng.normal(0.0, 0.7, (n, 2))                               # output pixels
    p["width"] = rng.uniform(1.8, 3.6, n)                                   # stroke width at 28 px
    p["elastic"] = rng.normal(0.0, 0.6, (n, 2, 16))                         # output pixels
    return p


def render_digits(n: int, rng: np.random.Generator, *, size: int = 28, styles=None,
                  flatten: bool = True, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` jittered digit images with balanced labels.

    Parameters
    ----------
    n : int
        Number of images (>= 1). Labels are balanced: each digit appears ``n // 10`` or
        ``n // 10 + 1`` times, in random order.
    rng : numpy.random.Generator
        Source of all randomness; the same generator state gives bit-identical images.
    size : int
        Side of the square images in pixels (>= 8); 28 matches MNIST.
    styles : sequence of str, optional
        Font styles to draw from uniformly (default: all of :data:`STYLES`).
    flatten : bool
        If True return images of shape (n, size*size), row-major; else (n, size, size).
    dtype : float32 or float64
        dtype of the images (the computation itself is float32).

    Returns
    -------
    images : np.ndarray, (n, size*size) or (n, size, size), ``dtype``
        Grey levels in [0, 1], 1 = ink, 0 = background.
    labels : np.ndarray, (n,), int64
        The digit drawn in each image.

    Notes
    -----
    Per image: pick a glyph SDF, map every output pixel u to glyph coordinates with the inverse
    affine plus elastic offset, ``g = A^-1 (u - t) + e(u)``, gather the SDF there bilinearly,
    and turn distance into ink with ``clip(0.5 + ((w - w0)/2 - d) / edge, 0, 1)``. See the
    module docstring for the distributions of A, t, e and w.
    """
    n = check_int("n", n, minimum=1)
    rng = check_rng("rng", rng)
    size = check_int("size", size, minimum=8)
    styles = STYLES if styles is None else tuple(styles)
    if not styles or any(s not in FONT_FILES for s in styles):
        raise ValueError(f"styles must be a non-empty subset of {STYLES}, got {styles!r}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    p = _draw_params(n, len(styles), rng)
    out = np.empty((n, size * size), dtype=np.float32)
    for start in range(0, n, 1024):                      # bounded memory: ~1024 images per pass
        sl = slice(start, min(start + 1024, n))
        out[sl] = _render_chunk({k: v[sl] for k, v in p.items()}, styles, size)
    images = out.astype(dtype, copy=False)
    if not flatten:
        images = images.reshape(n, size, size)
    return images, p["label"].astype(np.int64)


def _render_chunk(p: dict, styles: tuple, size: int) -> np.ndarray:
    """Render one chunk of images from its parameters; returns (B, size*size) float32."""
    keys = [(s, d) for s in styles for d in range(10)]
    bank = np.stack([_master(s, d)[0] for s, d in keys])                    # (G, M, M)
    com = np.array([_master(s, d)[1] for s, d in keys], dtype=np.float32)   # (G, 2)
    w0 = np.array([_master(s, d)[2] for s, d in keys], dtype=np.float32)    # (G,)
    glyph = p["style"] * 10 + p["label"]                                     # (B,)
    b = glyph.size
    f32 = np.float32
    # inverse affine A^-1 = diag(1/sx, 1/sy) Shear(-k) Rot(-theta), acting on (row, col)
    c, s = np.cos(p["theta"]).astype(f32), np.sin(p["theta"]).astype(f32)   # (B,)
    sx = (p["scale"] * np.sqrt(p["aspect"])).astype(f32)
    sy = (p["scale"] / np.sqrt(p["aspect"])).astype(f32)
    k = p["shear"].astype(f32)
    centre = f32(size / 2.0)
    rr, cc = (np.mgrid[0:size, 0:size].reshape(2, -1) + 0.5).astype(f32) - centre   # (P,), P = size^2
    du = rr[None, :] - p["shift"][:, 0, None].astype(f32)                    # (B, P) rows
    dv = cc[None, :] - p["shift"][:, 1, None].astype(f32)                    # (B, P) cols
    # un-rotate (rotation by +theta is counter-clockwise on screen: rows point down)
    r1 = c[:, None] * du + s[:, None] * dv
    c1 = -s[:, None] * du + c[:, None] * dv
    c1 = c1 + k[:, None] * r1                    # un-shear: forward shear is col -= k * row
    basis = _elastic_basis(size)                                             # (P, 16)
    gr = r1 / sy[:, None] + p["elastic"][:, 0].astype(f32) @ basis.T         # (B, P)
    gc = c1 / sx[:, None] + p["elastic"][:, 1].astype(f32) @ basis.T         # (B, P)
    to_master = f32(_MASTER / size)
    mr = gr * to_master + com[glyph, 0, None] - f32(0.5)     # array index coordinates (B, P)
    mc = gc * to_master + com[glyph, 1, None] - f32(0.5)
    d = _bilinear(bank, glyph, mr, mc) / to_master * p["scale"].astype(f32)[:, None]   # (B, P)
    grow = (p["width"].astype(f32) * f32(size / 28.0) - w0[glyph] / to_master) / f32(2)
    return np.clip(f32(0.5) + grow[:, None] - d, 0.0, 1.0)


def _bilinear(bank: np.ndarray, which: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sample ``bank[which[b]]`` at fractional (r, c) for every row b; points outside clamp to the border.

    bank (G, M, M); which (B,); r, c (B, P). Returns (B, P) float32.
    """
    m = bank.shape[1]
    r = np.clip(r, 0.0, m - 1.001)
    c = np.clip(c, 0.0, m - 1.001)
    r0, c0 = r.astype(np.intp), c.astype(np.intp)
    fr, fc = r - r0, c - c0
    flat = bank.reshape(-1)
    idx = which[:, None] * (m * m) + r0 * m + c0                            # (B, P)
    top = flat[idx] * (1 - fc) + flat[idx + 1] * fc
    bottom = flat[idx + m] * (1 - fc) + flat[idx + m + 1] * fc
    return top * (1 - fr) + bottom * fr
