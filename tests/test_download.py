"""Download helper against a tiny HTTP server on 127.0.0.1: caching, checksums, atomicity, errors.

No test contacts any other host: proxies are switched off and every URL is local.
"""
import hashlib
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scratchvae.data import download
from scratchvae.data.download import DATASETS, KNOWN_FILES, fetch, fetch_known, sha256_of

pytestmark = pytest.mark.slow   # end-to-end: the maths lane is pytest -m "not slow"

BODY = bytes(range(256)) * 400                      # 102400 bytes: several read chunks
DIGEST = hashlib.sha256(BODY).hexdigest()
WRONG = "0" * 64


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the client hanging up is expected here
        pass


@pytest.fixture
def server(monkeypatch):
    """Serves ``state["files"][path] = (body, mode)``; mode "ok", "truncate" or "stall".

    Every body is sent in two halves; ``state["midway"]`` (if set) runs between them.
    """
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state = {"files": {}, "requests": [], "midway": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["requests"].append(self.path)
            if self.path not in state["files"]:
                self.send_error(404, "not here")
                return
            body, mode = state["files"][self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            if state["midway"] is not None:
                state["midway"]()
            if mode == "truncate":
                return                                  # hang up after half the promised bytes
            if mode == "stall":
                time.sleep(0.6)
            self.wfile.write(body[half:])

        def log_message(self, *args):
            pass

    httpd = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_fetch_downloads_verifies_and_caches(server, tmp_path):
    server["files"]["/d/data.bin"] = (BODY, "ok")
    url = server["url"] + "/d/data.bin"
    path = fetch(url, tmp_path / "cache", DIGEST.upper(), timeout=5)
    assert path == tmp_path / "cache" / "data.bin" and path.read_bytes() == BODY
    assert server["requests"] == ["/d/data.bin"]
    assert fetch(url, tmp_path / "cache", DIGEST, timeout=5) == path
    assert server["requests"] == ["/d/data.bin"], "a verified cached file must not be fetched again"
    assert sha256_of(path) == DIGEST and leftovers(tmp_path / "cache") == []


def test_stale_cached_file_is_replaced(server, tmp_path):
    server["files"]["/data.bin"] = (BODY, "ok")
    (tmp_path / "data.bin").write_bytes(b"old and wrong")
    path = fetch(server["url"] + "/data.bin", tmp_path, DIGEST, timeout=5)
    assert path.read_bytes() == BODY and len(server["requests"]) == 1


def test_checksum_mismatch_is_refused_and_leaves_nothing(server, tmp_path):
    server["files"]["/data.bin"] = (BODY, "ok")
    with pytest.raises(ValueError, match=f"checksum mismatch .* expected sha256 {WRONG}, got {DIGEST}"):
        fetch(server["url"] + "/data.bin", tmp_path, WRONG, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_refusal_keeps_an_existing_file_untouched(server, tmp_path):
    server["files"]["/data.bin"] = (b"tampered", "ok")
    (tmp_path / "data.bin").write_bytes(b"previous")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch(server["url"] + "/data.bin", tmp_path, DIGEST, timeout=5)
    assert (tmp_path / "data.bin").read_bytes() == b"previous" and leftovers(tmp_path) == []


def test_download_is_atomic(server, tmp_path):
    """Midway through the transfer the bytes live only in a temporary file, never at the target."""
    seen = {}
    server["files"]["/data.bin"] = (BODY, "ok")
    server["midway"] = lambda: seen.update(target=(tmp_path / "data.bin").exists(), parts=leftovers(tmp_path))
    fetch(server["url"] + "/data.bin", tmp_path, DIGEST, timeout=5)
    assert seen["target"] is False and len(seen["parts"]) == 1
    assert re.fullmatch(r"\.data\.bin\..*\.part", seen["parts"][0])
    assert leftovers(tmp_path) == [] and (tmp_path / "data.bin").read_bytes() == BODY
    assert oct(os.stat(tmp_path / "data.bin").st_mode & 0o777) == oct(0o644)


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    server["files"]["/data.bin"] = (BODY, "truncate")
    with pytest.raises(OSError, match="nothing was written"):
        fetch(server["url"] + "/data.bin", tmp_path, DIGEST, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_timeout_and_http_errors_leave_nothing(server, tmp_path):
    server["files"]["/slow.bin"] = (BODY, "stall")
    with pytest.raises(OSError):
        fetch(server["url"] + "/slow.bin", tmp_path, DIGEST, timeout=0.2)
    with pytest.raises(OSError, match="404"):
        fetch(server["url"] + "/missing.bin", tmp_path, DIGEST, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_filename_option(server, tmp_path):
    server["files"]["/get?id=7"] = (BODY, "ok")
    path = fetch(server["url"] + "/get?id=7", tmp_path, DIGEST, timeout=5, filename="seven.bin")
    assert path.name == "seven.bin" and path.read_bytes() == BODY


@pytest.mark.parametrize("kwargs, error, match", [
    ({"url": "ftp://127.0.0.1/x.bin"}, ValueError, "http:// or https://"),
    ({"url": "file:///etc/hostname"}, ValueError, "http:// or https://"),
    ({"sha256": "abc"}, ValueError, "64 hexadecimal characters, got 'abc'"),
    ({"sha256": None}, TypeError, "sha256 must be a str of 64 hexadecimal characters"),
    ({"timeout": 0}, ValueError, "timeout must be > 0"),
    ({"url": "http://127.0.0.1/"}, ValueError, "pass filename="),
    ({"filename": "../escape.bin"}, ValueError, "cannot use '../escape.bin' as a file name"),
])
def test_argument_errors(tmp_path, kwargs, error, match):
    args = {"url": "http://127.0.0.1:9/x.bin", "dest_dir": tmp_path, "sha256": DIGEST,
            "timeout": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        fetch(args.pop("url"), args.pop("dest_dir"), args.pop("sha256"), **args)


def test_fetch_known_tries_mirrors_in_order(server, tmp_path, monkeypatch):
    server["files"]["/good/tiny.bin"] = (BODY, "ok")
    server["files"]["/bad/tiny.bin"] = (b"corrupt mirror", "ok")
    urls = tuple(server["url"] + p for p in ("/gone/tiny.bin", "/bad/tiny.bin", "/good/tiny.bin"))
    monkeypatch.setitem(KNOWN_FILES, "tiny.bin", (DIGEST, urls))
    monkeypatch.setitem(DATASETS, "tiny", ("tiny.bin",))
    assert fetch_known("tiny", tmp_path, timeout=5) == [tmp_path / "tiny.bin"]
    assert server["requests"] == ["/gone/tiny.bin", "/bad/tiny.bin", "/good/tiny.bin"]
    monkeypatch.setitem(KNOWN_FILES, "tiny.bin", (DIGEST, urls[:2]))
    (tmp_path / "tiny.bin").unlink()
    with pytest.raises(OSError, match="could not fetch tiny.bin"):
        fetch_known("tiny.bin", tmp_path, timeout=5)
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        fetch_known("cifar", tmp_path)


def test_known_table_is_well_formed():
    """Checked offline: digests are SHA-256 hex, every URL is http(s) and ends in the file name."""
    assert set(DATASETS["mnist"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                      "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert len(DATASETS["binarized_mnist"]) == 3
    for name, (digest, urls) in KNOWN_FILES.items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest), name
        assert urls and all(re.match(r"https?://", u) and u.endswith("/" + name) for u in urls), name
    assert download._CHUNK >= 4096
