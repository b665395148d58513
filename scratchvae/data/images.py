"""Reading your own images: an ``.npy`` array, a CSV table, a folder of PNG/JPEG files, an IDX file.

Each reader returns one :class:`Dataset` ``(x, y)`` with ``x`` (N, D) as the file stores it and
``y`` (N,) int64 labels or None; :func:`scratchvae.data.load_dataset` makes the splits and the
model's floats. Pixel values are kept as stored: no inversion (MNIST stores ink as 255 on a 0
background; a scan of dark ink on white paper stays dark on white).

What is read, and what is assumed:

* ``.npy``: one array (N, D) or (N, H, W), uint8 or float (:func:`read_npy`).
* CSV (:func:`read_csv`): one image per line, values separated by commas. The first line is a
  header, and skipped, when one of its fields is not a number; if the header's first field is
  ``label`` (or ``labels``, ``class``, ``y``, ``target``) that column holds integer labels (the
  layout of the Kaggle MNIST CSV files). A table written with integers only is read as 8-bit
  grey levels 0..255 (uint8); a table with a decimal point or exponent anywhere is read as
  intensities in [0, 1] (float64), each of which must lie in [0, 1].
* a folder of ``.png``/``.jpg``/``.jpeg`` files (:func:`read_image_folder`), in name order; other
  files and sub-folders are ignored. Each is read with Pillow (installed with matplotlib) and
  converted to 8-bit grey by Pillow's ``convert("L")``, the ITU-R 601-2 luma transform
  L = R 299/1000 + G 587/1000 + B 114/1000; an alpha channel is ignored. All images must share
  one size. 16-bit and floating-point images are refused (save them as 8-bit).
* an IDX file under any name (:func:`read_idx_images`; format in :mod:`.formats`) of unsigned
  bytes or floats, (N, H, W) or (N, D), with an optional IDX label file of N integers.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..validate import check_path
from .formats import Dataset, check_stored, load_idx

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LABEL_COLUMNS = ("label", "labels", "class", "y", "target")
_PILLOW_8BIT = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def _existing(path) -> Path:
    path = Path(check_path("path", path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


# ----------------------------------------------------------------------------- .npy, IDX
def read_npy(path) -> Dataset:
    """One ``.npy`` array of images, (N, D) or (N, H, W), uint8 or float -> ``Dataset(x, None)``."""
    path = _existing(path)
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a .npy file holding a numeric array ({exc})") from None
    if not isinstance(x, np.ndarray):
        x.close()
        raise ValueError(f"{path} is an .npz archive, not a .npy array: rename it to .npz")
    return Dataset(check_stored(path, "the array", x), None)


def read_idx_images(path, labels=None) -> Dataset:
    """IDX images under any name, with an optional IDX label file.

    Parameters
    ----------
    path : str or Path
        IDX file (raw or .gz) of unsigned bytes or floats, shape (N, H, W) or (N, D).
    labels : str or Path, optional
        IDX file of N integers (>= 0).

    Returns
    -------
    Dataset
        ``x`` (N, H*W) as stored (uint8 or float), ``y`` (N,) int64 or None.
    """
    x = load_idx(path)
    if x.ndim == 1:
        raise ValueError(f"{path} holds a 1-D IDX array (labels?); give the IDX file of the "
                         f"images, shape (N, H, W) or (N, D)")
    x = check_stored(path, "the images", x)
    if labels is None:
        return Dataset(x, None)
    y = load_idx(Path(check_path("labels", labels)))
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{labels} is not an IDX label file: expected a 1-D array of integers, "
                         f"got {y.dtype} {y.shape}")
    if len(y) != len(x):
        raise ValueError(f"{path} has {len(x)} images but {labels} has {len(y)} labels")
    if y.size and y.min() < 0:
        raise ValueError(f"{labels} has label {y.min()}, expected labels >= 0")
    return Dataset(x, y.astype(np.int64))


# ----------------------------------------------------------------------------- CSV
class CsvTable(NamedTuple):
    """A comma-separated table: ``header`` (list of str or None), ``values`` (rows, columns)
    int64 (integers only) or float64, ``lines`` (rows,) the 1-based line number of each row."""
    header: list | None
    values: np.ndarray
    lines: np.ndarray


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_csv_table(path) -> CsvTable:
    """Parse a comma-separated file of numbers; blank lines are skipped, a header is detected.

    Raises
    ------
    ValueError
        Not text, no rows, rows of different lengths, or a field that is not a number; the
        message gives the file, the line and the field.
    """
    path = _existing(path)
    try:
        text = path.read_text(encoding="utf-8-sig")              # -sig: drops a leading BOM
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; expected comma-separated numbers") from None
    rows = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    header = None
    if rows and not all(_is_number(t) for t in rows[0][1].split(",")):
        header, rows = [t.strip() for t in rows[0][1].split(",")], rows[1:]
    if not rows:
        raise ValueError(f"{path} has no rows of numbers; expected one image per line, "
                         f"comma-separated")
    lines = np.array([i for i, _ in rows])
    widths = np.array([line.count(",") + 1 for _, line in rows])
    ref = len(header) if header is not None else widths[0]
    bad = np.flatnonzero(widths != ref)
    if bad.size:
        raise ValueError(f"{path}, line {lines[bad[0]]}: {widths[bad[0]]} values, but "
                         f"{'the header' if header is not None else f'line {lines[0]}'} has "
                         f"{ref}; every line must hold one image of the same size")
    body = [line for _, line in rows]
    floats = any(re.search(r"[.eEnNiI]", line) for line in body)    # a decimal point, e, nan, inf
    try:
        values = np.loadtxt(body, delimiter=",", dtype=np.float64 if floats else np.int64, ndmin=2)
    except ValueError:
        for i, line in rows:
            for token in line.split(","):
                if not (_is_number(token) if floats else re.fullmatch(r"\s*[-+]?\d+\s*", token)):
                    raise ValueError(f"{path}, line {i}: {token.strip()!r} is not a number "
                                     f"(expected comma-separated numbers)") from None
        raise
    return CsvTable(header, values, lines)


def read_csv(path) -> Dataset:
    """Images from a CSV file, one per line (rules in the module docstring).

    Returns
    -------
    Dataset
        ``x`` (N, D): uint8 grey levels 0..255 for a table of integers, float64 in [0, 1] for a
        table with decimals; ``y`` (N,) int64 from a ``label`` column, else None.
    """
    header, values, lines = read_csv_table(path)
    y = None
    if header is not None and header[0].lower() in LABEL_COLUMNS:
        labels, values = values[:, 0], values[:, 1:]
        if values.dtype != np.int64 and not np.all(labels == np.round(labels)):
            raise ValueError(f"{path}: the {header[0]!r} column must hold integer labels")
        if labels.min() < 0:
            raise ValueError(f"{path}: the {header[0]!r} column has label {labels.min()}, "
                             f"expected labels >= 0")
        y = labels.astype(np.int64)
    if values.shape[1] == 0:
        raise ValueError(f"{path} has no pixel columns")
    if values.dtype == np.int64:
        low, high, rule = 0, 255, ("integers are read as 8-bit grey levels 0..255; write "
                                   "intensities in [0, 1] with a decimal point instead")
    else:
        low, high, rule = 0.0, 1.0, ("numbers with a decimal point are read as intensities in "
                                     "[0, 1]; write 8-bit grey levels as integers 0..255 instead")
    bad = ~((values >= low) & (values <= high))                   # NaN is bad too
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{path}, line {lines[r]}: value {values[r, c]} is outside "
                         f"[{low}, {high}] ({rule})")
    return Dataset(values.astype(np.uint8) if values.dtype == np.int64 else values, y)


# ----------------------------------------------------------------------------- PNG / JPEG
def read_image(path) -> np.ndarray:
    """One PNG or JPEG file as 8-bit grey levels, (H, W) uint8 (Pillow's ``convert("L")``)."""
    from PIL import Image, UnidentifiedImageError
    path = _existing(path)
    try:
        with Image.open(path) as img:
            if img.mode not in _PILLOW_8BIT:
                raise ValueError(f"{path} has Pillow pixel mode {img.mode!r} (16-bit or floating "
                                 f"point); save it as an 8-bit grey or colour image")
            return np.array(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:   # SyntaxError: broken headers
        raise ValueError(f"{path} is not a readable PNG or JPEG image ({exc})") from None


def read_image_folder(folder) -> Dataset:
    """Every ``.png``/``.jpg``/``.jpeg`` file of ``folder`` (name order) as (N, H*W) uint8.

    Raises
    ------
    FileNotFoundError
        No such folder, or no image file in it.
    ValueError
        An unreadable image, or images of different sizes (both files are named).
    """
    folder = Path(check_path("folder", folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
                   and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder} holds no .png, .jpg or .jpeg files")
    images = []
    for f in files:
        images.append(read_image(f))
        if images[-1].shape != images[0].shape:
            (h0, w0), (h, w) = images[0].shape, images[-1].shape
            raise ValueError(f"the images in {folder} differ in size: {files[0].name} is {h0}x{w0} "
                             f"but {f.name} is {h}x{w} (height x width); resize them to one size")
    return Dataset(np.stack(images).reshape(len(images), -1), None)                   # (N, H*W)
