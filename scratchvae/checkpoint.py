"""Checkpoints: arrays + JSON metadata in one ``.npz``, written atomically, verified on load.

Layout of the file (a NumPy ``.npz`` zip archive, no pickles):

    param/<name>       model parameters
    optim/<key>        optimizer state (``Optimizer.state_dict()``)
    __meta__           UTF-8 JSON: model config, train config, epoch, rng state, history, ...
    __sha256__         SHA-256 over every other entry's name, dtype, shape and bytes

Saving writes to a temporary file ``.tmp-<pid>-<8 hex>-<name>`` in the destination folder,
flushes and fsyncs it, then ``os.replace``s it over the destination: a crash leaves either the
old checkpoint or the new one, never half a file. The temporary file is created with mode
0o666 minus the process umask (0644 under the usual umask 022), like any file ``open()``
creates. A process killed between creating and renaming it leaves it behind; the next save
into the same folder removes every such file whose process id is no longer running (a folder
shared by several machines could see a live writer's file as stale: do not share one run
folder between machines).

Loading refuses an empty file, a file that is not a zip archive, a truncated or damaged one
(whatever the zip or ``.npy`` reader trips over), a checksum mismatch and (in
:func:`restore_params`) parameters whose names, shapes or dtypes differ from the model's; every
refusal is a ``ValueError`` that names the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import warnings

import numpy as np

from .validate import check_mapping, check_path, check_str

FORMAT = "scratchvae-checkpoint-1"
ZIP_MAGIC = b"PK\x03\x04"             # the first bytes of every .npz (a zip archive)
TEMP_NAME = re.compile(r"^\.tmp-(\d+)-[0-9a-f]{8}-")     # .tmp-<pid>-<8 hex>-<final name>


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, params: dict, optimizer_state: dict, meta: dict) -> str:
    """Write a checkpoint atomically to ``path`` and return the path.

    ``path`` a str or os.PathLike; ``params`` and ``optimizer_state`` dicts of arrays; ``meta``
    a dict, JSON-serializable (numbers, strings, lists, dicts): a TypeError (ValueError for a
    circular reference) names the argument otherwise. Stale temporary files of killed writers in
    the destination folder are removed first (see the module docstring).
    """
    path = check_path("path", path)
    check_mapping("params", params, values=np.ndarray)
    check_mapping("optimizer_state", optimizer_state, values=np.ndarray)
    check_mapping("meta", meta)
    try:
        text = json.dumps({"format": FORMAT, **meta})
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"meta must be JSON-serializable (numbers, strings, lists, dicts): "
                        f"{exc}") from None
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer_state.items()})
    arrays["__meta__"] = np.frombuffer(text.encode(), np.uint8)
    arrays["__sha256__"] = np.frombuffer(_digest(arrays).encode(), np.uint8)
    _write_atomic(path, lambda f: np.savez(f, **arrays))
    return path


def write_text_atomic(path, text: str) -> None:
    """Write a small text file (metrics, run records) atomically, like :func:`save_checkpoint`.

    ``path`` a str or os.PathLike, ``text`` a str (TypeError naming the argument otherwise).
    """
    path, text = check_path("path", path), check_str("text", text)
    _write_atomic(path, lambda f: f.write(text.encode()))


def _write_atomic(path: str, write) -> None:
    """``write(binary file)`` into a temporary file beside ``path``, fsync, rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temp_files(folder)
    fd, tmp = _create_temp(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:               # KeyboardInterrupt too: never leave the temporary file
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _create_temp(folder: str, name: str):
    """Create ``.tmp-<pid>-<8 hex>-<name>`` exclusively; mode 0o666 minus the umask (the
    kernel applies it, as for ``open()``; ``tempfile.mkstemp`` would give 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{name}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:         # 1 in 4 billion: draw another name
            continue


def remove_stale_temp_files(folder) -> list:
    """Delete the temporary files of writers that are no longer running; return their names.

    A file is stale when its name matches ``.tmp-<pid>-<8 hex>-...`` and no process ``pid``
    exists (``os.kill(pid, 0)`` raises ProcessLookupError). Files of live processes, this one
    included, are left alone. ``folder`` is a str or os.PathLike (TypeError otherwise).
    """
    folder = check_path("folder", folder)
    removed = []
    for name in os.listdir(folder):
        m = TEMP_NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not _running(int(m.group(1))):
            try:
                os.remove(os.path.join(folder, name))
                removed.append(name)
            except FileNotFoundError:   # another process cleaned it first
                pass
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):   # someone else's process, or no such check here
        return True
    return True


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


def load_checkpoint(path) -> dict:
    """Read and verify a checkpoint: ``{"params": {...}, "optimizer": {...}, "meta": {...}}``.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    FileNotFoundError
        No file at ``path``.
    ValueError
        ``path`` is a folder, or the file is empty, not a zip archive, truncated or corrupt,
        not a scratchvae checkpoint, or its checksum does not match. The message names the file.
    """
    path = check_path("path", path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} is a folder; expected a .npz file such as "
                         f"{os.path.join(path, 'checkpoint.npz')!r}")
    arrays = _read_npz(path)
    if "__meta__" not in arrays or "__sha256__" not in arrays:
        raise ValueError(f"{path!r} is not a scratchvae checkpoint (no __meta__/__sha256__ entries)")
    stored = arrays.pop("__sha256__").tobytes().decode("ascii", "replace")
    if _digest(arrays) != stored:
        raise ValueError(f"checkpoint {path!r} is corrupt: its SHA-256 does not match the stored one")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except ValueError as exc:           # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"checkpoint {path!r} has unreadable metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"checkpoint {path!r} has format {got!r}, expected {FORMAT!r}")
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    return {"params": params, "optimizer": optim, "meta": meta}


def _read_npz(path: str) -> dict:
    """Every array of the .npz at ``path``; any failure to parse it is a ValueError naming it."""
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if not head:
        raise ValueError(f"checkpoint {path!r} is empty (0 bytes): the run that wrote it was "
                         f"interrupted or the copy failed; use another checkpoint")
    if head != ZIP_MAGIC:
        raise ValueError(f"checkpoint {path!r} is not an .npz: an .npz is a zip archive starting "
                         f"with the bytes {ZIP_MAGIC!r}, this file starts with {head!r}")
    try:
        with warnings.catch_warnings(), np.load(path, allow_pickle=False) as z:
            warnings.simplefilter("ignore")     # e.g. SyntaxWarnings parsing a damaged header
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:    # noqa: BLE001
        # A damaged zip directory or .npy header fails in many ways: BadZipFile, EOFError,
        # zlib.error, NotImplementedError (a flipped compression method), RuntimeError (a
        # flipped encryption bit), tokenize.TokenError (a mangled .npy header), MemoryError (a
        # mangled shape)... All of them mean one thing to the user.
        detail = f"{type(exc).__name__}: {exc}"
        raise ValueError(f"checkpoint {path!r} is truncated or corrupt, or not an .npz written by "
                         f"scratchvae ({detail[:160]}); it cannot be read") from None
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):    # a zip entry without .npy
        raise ValueError(f"{path!r} is not a scratchvae checkpoint (it holds non-array entries)")
    return arrays


def restore_params(params: dict, saved: dict, source: str = "checkpoint") -> None:
    """Copy ``saved`` arrays into the model's ``params`` after checking names, shapes, dtypes.

    Both are dicts of arrays (TypeError naming the argument otherwise); a mismatch is a
    ValueError naming ``source``.
    """
    check_mapping("params", params, values=np.ndarray)
    check_mapping("saved", saved, values=np.ndarray)
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
