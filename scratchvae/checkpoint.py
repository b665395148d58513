"""Checkpoints: arrays + JSON metadata in one ``.npz``, written atomically, verified on load.

Layout of the file (a NumPy ``.npz`` zip archive, no pickles):

    param/<name>       model parameters
    optim/<key>        optimizer state (``Optimizer.state_dict()``)
    __meta__           UTF-8 JSON: model config, train config, epoch, rng state, history, ...
    __sha256__         SHA-256 over every other entry's name, dtype, shape and bytes

Saving writes to a temporary file in the destination folder, flushes and fsyncs it, then
``os.replace``s it over the destination: a crash leaves either the old checkpoint or the new
one, never half a file. Loading refuses a truncated file, a checksum mismatch and (in
:func:`restore_params`) parameters whose names, shapes or dtypes differ from the model's.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "scratchvae-checkpoint-1"


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, params: dict, optimizer_state: dict, meta: dict) -> str:
    """Write a checkpoint atomically to ``path`` and return the path.

    ``meta`` must be JSON-serializable (numbers, strings, lists, dicts).
    """
    path = os.fspath(path)
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer_state.items()})
    arrays["__meta__"] = np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), np.uint8)
    arrays["__sha256__"] = np.frombuffer(_digest(arrays).encode(), np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _fsync_dir(folder) -> None:
    """Make the rename durable: fsync the folder's entry table (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path, text: str) -> None:
    """Write a small text file (metrics) via a temporary file and os.replace."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path) -> dict:
    """Read and verify a checkpoint: ``{"params": {...}, "optimizer": {...}, "meta": {...}}``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is truncated, not a scratchvae checkpoint, or its checksum does not match.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"checkpoint {path!r} is truncated or corrupt, or not an .npz written by "
                         f"scratchvae ({type(exc).__name__}); it cannot be read") from None
    if "__meta__" not in arrays or "__sha256__" not in arrays:
        raise ValueError(f"{path!r} is not a scratchvae checkpoint (no __meta__/__sha256__ entries)")
    stored = arrays.pop("__sha256__").tobytes().decode()
    if _digest(arrays) != stored:
        raise ValueError(f"checkpoint {path!r} is corrupt: its SHA-256 does not match the stored one")
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path!r} has format {meta.get('format')!r}, expected {FORMAT!r}")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    return {"params": params, "optimizer": optim, "meta": meta}


def restore_params(params: dict, saved: dict, source: str = "checkpoint") -> None:
    """Copy ``saved`` arrays into the model's ``params`` after checking names, shapes, dtypes."""
    if set(saved) != set(params):
        raise ValueError(f"{source} does not match the model: missing {sorted(set(params) - set(saved))}, "
                         f"unexpected {sorted(set(saved) - set(params))}")
    for name, p in params.items():
        s = saved[name]
        if s.shape != p.shape or s.dtype != p.dtype:
            raise ValueError(f"{source} parameter {name!r} has shape {s.shape} and dtype {s.dtype}; "
                             f"the model expects {p.shape} and {p.dtype}")
    for name, p in params.items():
        p[...] = saved[name]
