"""Damaged checkpoints: every byte flip, every truncation, an empty file, a file that is not a
zip, a zip that is not a checkpoint. Each is refused with a ValueError naming the file (or,
for a flip in a zip field that nothing reads, such as a timestamp, loads with identical
content); nothing escapes as another exception. Also: file permissions and the clean-up of
temporary files left by a killed writer.
"""
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from scratchvae import checkpoint as ckpt
from scratchvae.vae import VAE

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"


def _save_small(path):
    """A checkpoint of a 12-3-2 model with a step count and one 4.8 kB array as optimizer
    state: zipfile checks an entry's CRC only once it has read the whole entry, and reads 4 kB
    at a time, so in an entry larger than that a damaged .npy header is parsed before any check
    (the path of the TokenError escapes). 12 entries, about 9 kB."""
    vae = VAE(12, 2, rng=np.random.default_rng(0), hidden=(3,), dtype=np.float64)
    state = {"t": np.array(3), "big": np.linspace(-1.0, 1.0, 600)}
    ckpt.save_checkpoint(path, vae.params, state,
                         {"model": vae.config, "epoch": 1, "history": [{"epoch": 1}]})
    return path.read_bytes(), ckpt.load_checkpoint(path)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _save_small(tmp_path_factory.mktemp("ck") / "small.npz")


def _same(a, b):
    def same(x, y):
        return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    return same(a["params"], b["params"]) and same(a["optimizer"], b["optimizer"]) \
        and a["meta"] == b["meta"]


def _outcome(path, good):
    """'refused' (ValueError naming the file), 'intact' (loads, same content), or a failure."""
    try:
        loaded = ckpt.load_checkpoint(path)
    except ValueError as exc:
        assert str(path) in str(exc), f"the message does not name the file: {exc}"
        return "refused"
    except Exception as exc:                     # noqa: BLE001 - this is what must not happen
        return f"escaped: {type(exc).__name__}: {exc}"
    return "intact" if _same(loaded, good) else "loaded different content"


def _flip_all(small, tmp_path, positions):
    data, good = small
    masks = np.random.default_rng(1).integers(1, 256, size=len(data))   # a nonzero XOR per byte
    path, outcomes = tmp_path / "flipped.npz", {}
    for i in positions:
        bad = bytearray(data)
        bad[i] ^= masks[i]
        path.write_bytes(bytes(bad))
        outcomes.setdefault(_outcome(path, good), []).append(i)
    return outcomes


def test_a_seeded_sample_of_byte_flips_is_refused_or_harmless(small, tmp_path):
    positions = np.random.default_rng(0).choice(len(small[0]), 300, replace=False)
    outcomes = _flip_all(small, tmp_path, positions)
    assert set(outcomes) <= {"refused", "intact"}, {k: v[:5] for k, v in outcomes.items()}
    assert len(outcomes["refused"]) > 200, "most flips must be refused"


@pytest.mark.slow
def test_every_byte_flip_is_refused_or_harmless(small, tmp_path):
    """Every position of the zip and .npy structure, and every 16th byte of the 4.8 kB array's
    numbers (they all meet the same CRC and SHA-256); about 5,000 loads, 10-20 s. Most are
    refused; a flip in a zip field the reader ignores (a timestamp, 'version made by', file
    attributes) loads the same content."""
    data = small[0]
    start = data.index(b"'shape': (600,)")
    start = data.index(b"\n", start) + 1                       # the array's numbers start here
    positions = [i for i in range(len(data)) if not start <= i < start + 4800 or i % 16 == 0]
    outcomes = _flip_all(small, tmp_path, positions)
    assert set(outcomes) <= {"refused", "intact"}, {k: v[:5] for k, v in outcomes.items()}


def test_every_truncation_is_refused(small, tmp_path):
    data, good = small
    path = tmp_path / "cut.npz"
    for n in list(range(0, 200)) + list(range(200, len(data), 37)):
        path.write_bytes(data[:n])
        assert _outcome(path, good) == "refused", n


def _central_entry(data):
    """Offset of the first central-directory entry (signature PK\\x01\\x02) of a zip."""
    return data.index(b"PK\x01\x02")


@pytest.mark.parametrize("damage,old_escape", [
    ("compression method 99", "NotImplementedError: That compression method is not supported"),
    ("encryption flag", "RuntimeError: File 'param/...' is encrypted, password required"),
    ("unclosed shape tuple", "tokenize.TokenError: EOF in multi-line statement"),
])
def test_the_flips_that_used_to_escape_as_tracebacks(small, tmp_path, damage, old_escape):
    """Single-byte changes that came out of the loader as the exceptions named."""
    data, good = small
    bad = bytearray(data)
    if damage == "compression method 99":        # central directory: method at offset 10
        bad[_central_entry(data) + 10] = 99
    elif damage == "encryption flag":            # central directory: general flags at offset 8
        bad[_central_entry(data) + 8] |= 1
    else:                                        # the 4.8 kB array's header: (600,) -> (600,
        i = data.index(b"'shape': (600,)")
        bad[i + len(b"'shape': (600,")] = ord(" ")
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(bad))
    assert _outcome(path, good) == "refused", f"{damage} (used to escape as {old_escape})"


def test_empty_not_a_zip_not_a_checkpoint_and_a_folder(tmp_path):
    cases = {"empty.npz": b"", "text.npz": b"hello, I am not a zip file\n",
             "random.npz": np.random.default_rng(0).bytes(5000)}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "a zip, but not an .npz")
    (tmp_path / "plain.zip.npz").write_bytes(buf.getvalue())
    np.savez(tmp_path / "arrays.npz", a=np.arange(3))        # an .npz, but not a checkpoint
    expected = {"empty.npz": "empty", "text.npz": "not an .npz", "random.npz": "not an .npz",
                "plain.zip.npz": "not a scratchvae checkpoint",
                "arrays.npz": "not a scratchvae checkpoint"}
    for name, words in expected.items():
        with pytest.raises(ValueError, match=words) as info:
            ckpt.load_checkpoint(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(ValueError, match="is a folder"):
        ckpt.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.npz")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_normal_permissions_under_the_umask(tmp_path, umask):
    """mkstemp would give 0600; a checkpoint is an ordinary file: 0o666 minus the umask."""
    vae = VAE(12, 2, rng=np.random.default_rng(0), hidden=(3,))
    old = os.umask(umask)
    try:
        ckpt.save_checkpoint(tmp_path / "c.npz", vae.params, {}, {"epoch": 1})
        ckpt.write_text_atomic(tmp_path / "m.json", "[]")
    finally:
        os.umask(old)
    for name in ("c.npz", "m.json"):
        mode = (tmp_path / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, f"{name}: mode {oct(mode)} under umask {oct(umask)}"


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    """A killed writer leaves .tmp-<pid>-<hex>-<name>; the next save into the folder removes the
    files of processes that no longer run and keeps those of live ones (this one included)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = {"dead": f".tmp-{dead}-0123abcd-checkpoint.npz",
                 "live": f".tmp-{live.pid}-0123abcd-checkpoint.npz",
                 "ours": f".tmp-{os.getpid()}-0123abcd-best.npz",
                 "other": ".tmp-notours.npz"}
        for name in names.values():
            (tmp_path / name).write_bytes(b"PK\x03\x04" + b"\0" * 100)
        vae = VAE(12, 2, rng=np.random.default_rng(0), hidden=(3,))
        ckpt.save_checkpoint(tmp_path / "checkpoint.npz", vae.params, {}, {"epoch": 1})
        left = set(os.listdir(tmp_path))
    finally:
        live.kill()
        live.wait()
    assert names["dead"] not in left, "the dead writer's temporary file was kept"
    assert {names["live"], names["ours"], names["other"], "checkpoint.npz"} <= left
