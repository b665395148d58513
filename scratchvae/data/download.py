"""Download a data file once, verify its SHA-256, and never leave a half-written file behind.

Only for machines with network; scratchvae itself runs on the embedded digits. Nothing here is
called on import, and the tests serve files from a local ``http.server`` on 127.0.0.1.

``fetch(url, dest_dir, sha256)``:

1. if ``dest_dir/<name>`` exists and its SHA-256 matches, return it (no request);
2. else stream the response into a temporary file in ``dest_dir`` while hashing it;
3. if the digest matches, ``os.replace`` the temporary file onto ``dest_dir/<name>`` (atomic on
   POSIX and Windows within one file system); otherwise delete it and raise ``ValueError``.

A reader therefore sees either no file, the old file, or the complete verified new file.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..validate import check_positive

_CHUNK = 1 << 16

# Known files: name -> (URLs to try in order, sha256). The MNIST digests are the ones published
# with the TensorFlow / torchvision mirrors of LeCun's files (the original site now often refuses
# scripted downloads); the .amat digests and sizes are those recorded by tensorflow_datasets.
_MNIST_MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")
_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
KNOWN_FILES = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                   tuple(m + "train-images-idx3-ubyte.gz" for m in _MNIST_MIRRORS)),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                   tuple(m + "train-labels-idx1-ubyte.gz" for m in _MNIST_MIRRORS)),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                  tuple(m + "t10k-images-idx3-ubyte.gz" for m in _MNIST_MIRRORS)),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                  tuple(m + "t10k-labels-idx1-ubyte.gz" for m in _MNIST_MIRRORS)),
    "binarized_mnist_train.amat": ("ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
                                   (_LAROCHELLE + "binarized_mnist_train.amat",)),
    "binarized_mnist_valid.amat": ("1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
                                   (_LAROCHELLE + "binarized_mnist_valid.amat",)),
    "binarized_mnist_test.amat": ("e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
                                  (_LAROCHELLE + "binarized_mnist_test.amat",)),
}
DATASETS = {"mnist": tuple(k for k in KNOWN_FILES if "ubyte" in k),
            "binarized_mnist": tuple(k for k in KNOWN_FILES if k.endswith(".amat"))}


def _check_path(name: str, path):
    """A file-system path (str or os.PathLike); an int would be read as a file descriptor."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    return path


def sha256_of(path) -> str:
    """Hex SHA-256 of a file, read in 64 KiB chunks."""
    _check_path("path", path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest_dir, sha256: str, *, timeout: float = 60.0,
          filename: str | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` unless a file with the right SHA-256 is already there.

    Parameters
    ----------
    url : str
        An http:// or https:// address.
    dest_dir : str or Path
        Folder for the file (created if missing).
    sha256 : str
        Expected hex digest (64 characters, any case).
    timeout : float
        Seconds to wait for the connection and for each read.
    filename : str, optional
        Name in ``dest_dir``; default the last part of the URL path.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    TypeError
        An argument of the wrong type (url, sha256 or filename not a str, dest_dir not a path).
    ValueError
        Bad arguments, or the downloaded bytes do not have the expected SHA-256 (the partial file
        is deleted and an existing file of that name is left untouched).
    OSError
        Network failure, HTTP error or timeout (``urllib.error.URLError`` and friends), with the
        temporary file deleted.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a str of 64 hexadecimal characters, got {type(sha256).__name__}")
    if filename is not None and not isinstance(filename, str):
        raise TypeError(f"filename must be a str or None, got {type(filename).__name__}")
    _check_path("dest_dir", dest_dir)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"url must be an http:// or https:// address, got {url!r}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}")
    timeout = check_positive("timeout", timeout)
    name = filename or os.path.basename(urllib.parse.urlsplit(url).path)
    if not name or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"cannot use {name!r} as a file name; pass filename=")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, expected = dest_dir / name, sha256.lower()
    if dest.is_file() and sha256_of(dest) == expected:
        return dest
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            announced, received = response.headers.get("Content-Length"), 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if announced is not None and announced.isdigit() and received != int(announced):
            raise OSError(f"download of {url} incomplete: received {received} of {announced} "
                          f"bytes; nothing was written")
        if digest.hexdigest() != expected:
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {expected}, got "
                             f"{digest.hexdigest()}; the download was discarded")
        os.chmod(tmp, 0o644)                     # mkstemp made it 0600
        os.replace(tmp, dest)
    except http.client.HTTPException as exc:     # e.g. IncompleteRead: the server hung up early
        os.unlink(tmp)
        raise OSError(f"download of {url} failed: {exc!r}; nothing was written") from exc
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def fetch_known(name: str, dest_dir, *, timeout: float = 60.0) -> list[Path]:
    """Fetch a data set of :data:`DATASETS` ("mnist", "binarized_mnist") or one file of
    :data:`KNOWN_FILES` into ``dest_dir``, trying each mirror in turn. Returns the file paths.
    """
    files = DATASETS.get(name, (name,) if name in KNOWN_FILES else None)
    if files is None:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASETS) + sorted(KNOWN_FILES)}")
    paths = []
    for file in files:
        digest, urls = KNOWN_FILES[file]
        errors = []
        for url in urls:
            try:
                paths.append(fetch(url, dest_dir, digest, timeout=timeout, filename=file))
                break
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise OSError(f"could not fetch {file}:\n  " + "\n  ".join(errors))
    return paths
