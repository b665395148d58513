"""Embedded digit images: MNIST-like 0-9 drawn from the fonts matplotlib ships, with jitter.

The default data of scratchvae needs no network and no file we did not write. Each digit of
14 bundled fonts (DejaVu Sans / Serif / Sans Mono with their bold and slanted variants,
Computer Modern Sans and Roman) and of two single-line "pen" alphabets defined below is drawn
once into a 128 x 128 *signed distance field* (SDF). Every image is one random warp of one of
those fields, done for a whole batch in one vectorized bilinear gather (no Python loop over
images): about 1 s of CPU for 12,000 28x28 images, plus about 1 s once to build the fields.

Model of one image, in the units of a 28-pixel frame whatever the output size
(u = pixel centre relative to the frame centre, g = glyph point relative to its centre of mass)::

    g(u) = A^-1 (u - t) + e(u)
    A    = f Rot(theta) Shear(k) diag(a^-1/2, a^1/2)     rotation, slant, aspect (on row, col);
           f makes the warped glyph's longest side 20 * fill pixels
    t    = shift of the centre of mass
    e(u) = bilinear upsampling of a 4x4 grid of random offsets (elastic wobble; Simard,
           Steinkraus & Platt 2003, sec. 2, in a cheap low-frequency form)
    d(u) = f * SDF(g(u))                                 distance to the outline, < 0 in the ink
    x(u) = clip(0.5 + (grow - d(u)) * size / 28, 0, 1)   grow = max((w - w0) / 2, grow_min)

w0 is the glyph's mean stroke width (2 * area / perimeter; 0 for the pen lines) and w the
random target width, so growing the outline by (w - w0)/2 gives every style a similar, pen-like
stroke; ``grow_min`` keeps the hairlines of serif fonts visible. The ramp of one output pixel
anti-aliases the outline. The distributions of theta, k, a, fill, t, e and w are in
:func:`_draw_params`. Size and centring follow MNIST (LeCun et al. 1998): the longest side of
the digit is about 20 of 28 pixels and its centre of mass is at the centre of the frame.
Pixel value 1 is ink, 0 background.

matplotlib is needed only to read the font outlines (``matplotlib.textpath.TextPath``); it is
imported inside :func:`_font_polygons`, so ``import scratchvae`` does not load it. This is the
one use of matplotlib outside ``scratchvae/viz``: here it is a font reader, not a plotting tool.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from ..validate import check_dtype, check_int, check_rng

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

# Our own single-line "pen" glyphs: centre lines in a unit box (x right, y down), each stroke
# ("S", points) = Catmull-Rom spline through the points, or ("L", points) = straight segments.
_PEN = {
    0: [("S", [(.5, 0), (.16, .25), (.2, .8), (.5, 1), (.8, .78), (.84, .22), (.5, 0), (.16, .25)])],
    1: [("L", [(.56, 0), (.44, 1)])],
    2: [("S", [(.15, .22), (.45, 0), (.8, .15), (.72, .48), (.1, 1)]),
        ("S", [(.1, 1), (.5, .94), (.9, .98)])],
    3: [("S", [(.15, .12), (.5, 0), (.8, .18), (.45, .47)]),
        ("S", [(.45, .47), (.85, .7), (.55, 1), (.12, .88)])],
    4: [("L", [(.64, 0), (.1, .66), (.9, .66)]), ("L", [(.64, 0), (.62, 1)])],
    5: [("L", [(.82, 0), (.3, .02), (.25, .45)]),
        ("S", [(.25, .45), (.75, .5), (.78, .85), (.45, 1), (.14, .9)])],
    6: [("S", [(.75, 0), (.3, .3), (.2, .75), (.5, 1), (.8, .75), (.55, .5), (.2, .68)])],
    7: [("L", [(.1, .02), (.9, 0), (.4, 1)])],
    8: [("S", [(.52, .46), (.8, .2), (.5, 0), (.2, .2), (.52, .46), (.82, .74), (.5, 1), (.18, .74),
               (.52, .46), (.8, .2)])],
    9: [("S", [(.8, .22), (.5, .45), (.2, .25), (.5, 0), (.8, .22)]),
        ("S", [(.8, .22), (.75, .6), (.65, 1)])],
}
# "pen-alt": other common handwritten forms (flagged 1, open 4, crossed 7, straight 9, looped 2)
_PEN_ALT = dict(_PEN)
_PEN_ALT.update({
    0: [("S", [(.5, 0), (.25, .3), (.3, .85), (.55, 1), (.75, .7), (.7, .15), (.5, 0), (.25, .3)])],
    1: [("L", [(.3, .2), (.6, 0), (.5, 1)])],
    2: [("S", [(.15, .2), (.5, 0), (.8, .2), (.6, .6), (.2, .95), (.2, .8), (.45, .85), (.9, 1)])],
    4: [("L", [(.2, 0), (.12, .55), (.88, .55)]), ("L", [(.7, .05), (.66, 1)])],
    7: [("L", [(.1, .04), (.9, 0), (.45, 1)]), ("L", [(.35, .5), (.82, .48)])],
    9: [("S", [(.78, .2), (.5, .42), (.22, .22), (.5, 0), (.78, .2)]), ("L", [(.78, .2), (.74, 1)])],
})
PEN_GLYPHS = {"pen": _PEN, "pen-alt": _PEN_ALT}
# Styles with hairlines of about a pixel or less at 28 px: the least growth of their outline
# (28-px units per side) so thin strokes stay visible; other styles may be thinned freely.
_MIN_GROW = {"serif": 0.3, "serif-italic": 0.3, "cm-roman": 0.3, "serif-bold": 0.0,
             "serif-bold-italic": 0.0}
STYLES = tuple(FONT_FILES) + tuple(PEN_GLYPHS)
# The default draw: every style once, plus the two pen styles (the most handwriting-like) four
# more times each, so 10 of 24 entries (about 40 % of the images) are pen-drawn. Repeating a
# name weights it.
DEFAULT_STYLES = STYLES + ("pen", "pen-alt") * 4

_MASTER = 128          # side of the master SDF canvas, pixels
_BOX = 20.0 / 28.0     # longest side of a glyph's bounding box, as a fraction of the frame


def _font_polygons(style: str, digit: int) -> list:
    """Outline polygons of one font glyph in font units: list of (V, 2) arrays, (x, y) with y down."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", FONT_FILES[style])
    text = TextPath((0.0, 0.0), str(digit), size=100.0, prop=FontProperties(fname=path))
    polys = [np.asarray(p, dtype=np.float64) for p in text.to_polygons(closed_only=True)]
    if style.startswith("mono") and digit == 0:
        polys = [p for p in polys if np.ptp(p[:, 1]) > 30.0]   # drop the dot inside the zero
    return [p * (1.0, -1.0) for p in polys]                     # y down, like image rows


def _pen_strokes(strokes: list, per_segment: int = 40) -> list:
    """Dense points along each pen stroke: a list of (V, 2) arrays as (x, y)."""
    out = []
    for kind, pts in strokes:
        p = np.asarray(pts, dtype=np.float64)
        t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
        if kind == "L":
            pieces = [a + (b - a) * t for a, b in zip(p[:-1], p[1:])]
        else:  # uniform Catmull-Rom through p, end tangents by reflection
            q = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
            pieces = [0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2
                             + (3 * b - a - 3 * c + d) * t ** 3)
                      for a, b, c, d in zip(q[:-3], q[1:-2], q[2:-1], q[3:])]
        out.append(np.vstack(pieces + [p[-1:]]))
    return out


def _normalize(points: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale and offset mapping a glyph's bounding box into the centre 20/28 of the master canvas."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = _BOX * _MASTER / max(hi - lo)
    return scale, _MASTER / 2.0 - (lo + hi) / 2.0 * scale


def _font_sdf(style: str, digit: int) -> tuple[np.ndarray, float]:
    """Signed distance to a font glyph outline (negative inside), and its mean stroke width 2A/P."""
    from matplotlib.path import Path
    from scipy.ndimage import distance_transform_edt

    polys = _font_polygons(style, digit)
    scale, offset = _normalize(np.concatenate(polys))
    polys = [p * scale + offset for p in polys]
    rows, cols = np.mgrid[0:_MASTER, 0:_MASTER] + 0.5
    pts = np.column_stack([cols.ravel(), rows.ravel()])                     # pixel centres (x, y)
    inside = np.zeros(pts.shape[0], dtype=bool)
    for p in polys:
        inside ^= Path(p).contains_points(pts)   # XOR over contours = even-odd rule: holes stay empty
    mask = inside.reshape(_MASTER, _MASTER)
    perimeter = sum(float(np.sum(np.hypot(*np.diff(p, axis=0).T))) for p in polys)
    sdf = np.where(mask, 0.5 - distance_transform_edt(mask), distance_transform_edt(~mask) - 0.5)
    return sdf, 2.0 * mask.sum() / perimeter


def _pen_sdf(style: str, digit: int) -> tuple[np.ndarray, float]:
    """Distance to the pen's centre line (a zero-width stroke: mean width 0)."""
    from scipy.ndimage import distance_transform_edt

    strokes = _pen_strokes(PEN_GLYPHS[style][digit])
    scale, offset = _normalize(np.concatenate(strokes))
    dense = []
    for xy in strokes:
        xy = xy * scale + offset
        steps = np.ceil(np.hypot(*np.diff(xy, axis=0).T) * 4).astype(int) + 1  # <= 1/4 px apart
        dense += [np.linspace(a, b, k) for a, b, k in zip(xy[:-1], xy[1:], steps)]
    ij = np.clip(np.vstack(dense)[:, ::-1].astype(int), 0, _MASTER - 1)    # (row, col) pixels
    off_line = np.ones((_MASTER, _MASTER), dtype=bool)
    off_line[ij[:, 0], ij[:, 1]] = False
    return distance_transform_edt(off_line), 0.0


@functools.lru_cache(maxsize=None)
def _master(style: str, digit: int):
    """Master signed distance field of one glyph, and what the warp needs to know about it.

    Returns ``(sdf, com, width, hull)``: ``sdf`` (M, M) float32 in master pixels (negative
    inside); ``com`` the (row, col) centre of mass of the glyph's ink at a typical stroke width;
    ``width`` its mean stroke width in master pixels; ``hull`` (H, 2) the convex hull of that
    ink relative to ``com``, in 28-pixel-frame units (used to fit each warped digit in 20 px).
    """
    from scipy.spatial import ConvexHull

    sdf, width = (_pen_sdf if style in PEN_GLYPHS else _font_sdf)(style, digit)
    ink = np.clip(0.5 + (2.7 * _MASTER / 28.0 - width) / 2.0 - sdf, 0.0, 1.0)   # (M, M)
    rows, cols = np.mgrid[0:_MASTER, 0:_MASTER] + 0.5
    com = np.array([np.sum(ink * rows), np.sum(ink * cols)]) / ink.sum()
    pts = np.column_stack([rows[ink > 0.5], cols[ink > 0.5]])
    hull = (pts[ConvexHull(pts).vertices] - com) * (28.0 / _MASTER)
    return sdf.astype(np.float32), com, float(width), hull


def _elastic_basis(size: int, knots: int = 4) -> np.ndarray:
    """Bilinear weights from a knots x knots grid to size x size pixels: (size^2, knots^2)."""
    pos = (np.arange(size) + 0.5) / size * (knots - 1)                      # (size,)
    i0 = np.minimum(pos.astype(int), knots - 2)
    w1 = pos - i0
    one_d = np.zeros((size, knots))
    one_d[np.arange(size), i0] = 1.0 - w1
    one_d[np.arange(size), i0 + 1] = w1
    return np.kron(one_d, one_d).astype(np.float32)                         # (size*size, knots*knots)


def _draw_params(n: int, n_styles: int, rng: np.random.Generator) -> dict:
    """All random choices for n images, drawn in a fixed order (so a seed fixes the images).

    Lengths are in pixels of a 28-pixel frame. Ranges chosen by eye against MNIST and checked by
    tests/test_digits.py (size, centring, mean grey level).
    """
    p = {"label": rng.permutation(np.arange(n) % 10)}                        # balanced classes
    p["style"] = rng.integers(0, n_styles, size=n)
    p["theta"] = np.deg2rad(np.clip(rng.normal(0.0, 10.0, n), -25, 25))    # rotation
    p["shear"] = np.clip(rng.normal(0.12, 0.2, n), -0.35, 0.6)              # slant, mostly right
    p["fill"] = rng.uniform(0.9, 1.05, n)                # longest side of the digit / 20 px
    p["aspect"] = np.exp(np.clip(rng.normal(0.0, 0.12, n), -0.3, 0.3))     # width/height stretch
    p["shift"] = rng.normal(0.0, 0.7, (n, 2))                               # (row, col) offset
    p["width"] = rng.uniform(1.6, 3.4, n)                                   # stroke width
    p["elastic"] = rng.normal(0.0, 0.9, (n, 2, 16))                         # 4x4 knot offsets
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
        Source of all randomness; the same generator state gives bit-identical images (on the
        same installation: the glyph outlines come from matplotlib's FreeType build).
    size : int
        Side of the square images in pixels (>= 8); 28 matches MNIST.
    styles : sequence of str, optional
        Styles to draw from, uniformly over the entries (repeat a name to weight it); each must
        be in :data:`STYLES`. Default :data:`DEFAULT_STYLES` (about 40 % pen-drawn).
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
    styles = DEFAULT_STYLES if styles is None else tuple(styles)
    if not styles or any(s not in STYLES for s in styles):
        raise ValueError(f"styles must be a non-empty subset of {STYLES}, got {styles!r}")
    dtype = check_dtype("dtype", dtype)
    p = _draw_params(n, len(styles), rng)
    unique = tuple(dict.fromkeys(styles))
    p["glyph"] = np.array([unique.index(s) for s in styles])[p["style"]] * 10 + p["label"]
    bank = _bank(unique)
    out = np.empty((n, size * size), dtype=np.float32)
    for start in range(0, n, 1024):                      # bounded memory: ~1024 images per pass
        sl = slice(start, min(start + 1024, n))
        out[sl] = _render_chunk({k: v[sl] for k, v in p.items()}, bank, size)
    images = out.astype(dtype, copy=False)
    if not flatten:
        images = images.reshape(n, size, size)
    return images, p["label"].astype(np.int64)


@functools.lru_cache(maxsize=8)
def _bank(styles: tuple) -> tuple:
    """Stacked masters of ``styles`` (glyph index = 10 * style index + digit, G = 10 * len(styles)).

    Returns SDFs (G, M, M), centres of mass (G, 2), stroke widths (G,), hulls (G, H, 2) padded
    by repeating a vertex, and the least outline growth (G,).
    """
    masters = [_master(s, d) for s in styles for d in range(10)]
    h = max(len(m[3]) for m in masters)
    hulls = np.stack([np.concatenate([m[3], np.repeat(m[3][:1], h - len(m[3]), 0)]) for m in masters])
    min_grow = np.repeat([_MIN_GROW.get(s, -np.inf) for s in styles], 10)
    return (np.stack([m[0] for m in masters]), np.array([m[1] for m in masters], dtype=np.float32),
            np.array([m[2] for m in masters], dtype=np.float32), hulls, min_grow.astype(np.float32))


def _inverse_warps(p: dict, hulls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse affine maps (B, 2, 2) acting on (row, col), and the overall scales (B,).

    A = f Rot(theta) Shear(k) diag(a^-1/2, a^1/2) on (row, col), where f makes the longest side
    of the warped glyph's hull ``20 * fill`` pixels (MNIST's size normalization, done after the
    jitter as in MNIST). The scale of A is sqrt|det A| = f.
    """
    c, s, k = np.cos(p["theta"]), np.sin(p["theta"]), p["shear"]
    one, zero = np.ones_like(c), np.zeros_like(c)
    rot_inv = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)         # (B, 2, 2)
    shear_inv = np.stack([np.stack([one, zero], -1), np.stack([k, one], -1)], -2)  # col += k * row
    stretch_inv = np.stack([np.sqrt(p["aspect"]), 1.0 / np.sqrt(p["aspect"])], -1)[:, :, None]
    a_inv = stretch_inv * (shear_inv @ rot_inv)                                    # (B, 2, 2)
    warped = hulls[p["glyph"]] @ np.linalg.inv(a_inv).transpose(0, 2, 1)         # (B, H, 2)
    f = 20.0 * p["fill"] / np.ptp(warped, axis=1).max(axis=1)                     # (B,)
    return a_inv / f[:, None, None], f


def _render_chunk(p: dict, bank: tuple, size: int) -> np.ndarray:
    """Render one chunk of images from its parameters; returns (B, size*size) float32.

    Geometry is computed in units of a 28-pixel frame ("u28") whatever ``size`` is, so the
    jitter distributions mean the same thing at every resolution.
    """
    sdf, com, w0, hulls, min_grow = bank
    glyph = p["glyph"]                                                       # (B,)
    f32 = np.float32
    a_inv, scale = _inverse_warps(p, hulls)
    a_inv, scale = a_inv.astype(f32), scale.astype(f32)[:, None]             # (B, 2, 2), (B, 1)
    u28 = f32(28.0 / size)
    rr, cc = ((np.mgrid[0:size, 0:size].reshape(2, -1) + 0.5) * u28 - 14.0).astype(f32)  # (P,)
    du = rr - p["shift"][:, :1].astype(f32)                                  # (B, P) rows
    dv = cc - p["shift"][:, 1:].astype(f32)                                  # (B, P) cols
    basis = _elastic_basis(size)                                             # (P, 16)
    # einsum, not @: no BLAS threads, and the same sums in the same order on every machine
    e_r = np.einsum("bk,pk->bp", p["elastic"][:, 0].astype(f32), basis)     # (B, P)
    e_c = np.einsum("bk,pk->bp", p["elastic"][:, 1].astype(f32), basis)
    gr = a_inv[:, 0, :1] * du + a_inv[:, 0, 1:] * dv + e_r                   # (B, P), u28
    gc = a_inv[:, 1, :1] * du + a_inv[:, 1, 1:] * dv + e_c
    to_master = f32(_MASTER / 28.0)
    mr = gr * to_master + com[glyph, :1] - f32(0.5)          # array index coordinates (B, P)
    mc = gc * to_master + com[glyph, 1:] - f32(0.5)
    d = _bilinear(sdf, glyph, mr, mc) * (scale / to_master)                 # (B, P), u28
    grow = (p["width"].astype(f32) - w0[glyph] / to_master) / f32(2)                   # (B,), u28
    grow = np.maximum(grow, min_grow[glyph])[:, None]                                  # (B, 1)
    return np.clip(f32(0.5) + (grow - d) / u28, 0.0, 1.0)    # one-output-pixel ramp at the outline


def _bilinear(bank: np.ndarray, which: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sample ``bank[which[b]]`` at fractional (r, c) for every row b, clamping to the border.

    bank (G, M, M) float32; which (B,); r, c (B, P) float32 array-index coordinates (overwritten).
    Returns (B, P) float32. In-place arithmetic: this gather is most of the rendering time.
    """
    m = bank.shape[1]
    np.clip(r, 0.0, m - 1.001, out=r)
    np.clip(c, 0.0, m - 1.001, out=c)
    r0, c0 = r.astype(np.int32), c.astype(np.int32)
    fr, fc = r - r0, c - c0                                                  # (B, P) in [0, 1)
    idx = which.astype(np.int32)[:, None] * (m * m) + r0 * m + c0            # top-left neighbour
    flat = bank.reshape(-1)
    top, top_right = flat.take(idx), flat.take(idx + 1)
    bottom, bottom_right = flat.take(idx + m), flat.take(idx + m + 1)
    top += fc * (top_right - top)                                            # lerp along columns
    bottom += fc * (bottom_right - bottom)
    top += fr * (bottom - top)                                               # then along rows
    return top
