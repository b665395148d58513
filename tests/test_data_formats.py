"""Your own data in: IDX under any name, .npy, .npz, CSV, PNG/JPEG folders; the validation
carve-out, the subsets, and a message naming the file or flag for each malformed input.

Every file is small and written here. The images carry their row number in pixel 0 (and a
label row % 10), so a test can tell which rows ended up in which split.
"""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scratchvae.cli import main
from scratchvae.data import (carve, image_shape, load_dataset, read_csv, read_idx_images,
                             read_image, read_image_folder, read_npy, read_source, subset)

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"

N, SIDE = 40, 6                                                     # 40 images of 6 x 6 pixels


def images(n=N, side=SIDE, seed=0) -> np.ndarray:
    """(n, side, side) uint8 grey levels; pixel 0 of image i is i (its row id)."""
    x = np.random.default_rng(seed).integers(0, 256, (n, side, side), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n)
    return x


def idx_file(path: Path, array: np.ndarray, code: int = 0x08, gz: bool = True) -> Path:
    """IDX encoding (LeCun's format): 0 0 type ndim, big-endian uint32 sizes, big-endian values."""
    big = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(big).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_csv(path: Path, rows, header=None) -> Path:
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def row_ids(x) -> np.ndarray:
    return x[:, 0].astype(int)


# ----------------------------------------------------------------------------- IDX
def test_idx_file_under_any_name_is_read_and_splits_are_carved(tmp_path):
    x = images()
    s = load_dataset(idx_file(tmp_path / "my scans.bin", x))              # no idx in the name
    assert [len(p.x) for p in s] == [36, 4, 0], "10% carved for validation, no test split"
    assert s.test.x.shape == (0, SIDE * SIDE) and s.train.y is None
    assert sorted(row_ids(s.train.x).tolist() + row_ids(s.valid.x).tolist()) == list(range(N))
    np.testing.assert_array_equal(s.train.x, x.reshape(N, -1)[row_ids(s.train.x)])


def test_idx_labels_beside_the_images_and_a_train_only_pair(tmp_path):
    x = images()
    idx_file(tmp_path / "train-images-idx3-ubyte.gz", x)
    idx_file(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(N) % 10)
    for source in (tmp_path, tmp_path / "train-images-idx3-ubyte.gz"):     # no t10k files
        s = load_dataset(source)
        assert len(s.test.x) == 0 and len(s.train.x) + len(s.valid.x) == N
        np.testing.assert_array_equal(s.train.y, row_ids(s.train.x) % 10)
    idx_file(tmp_path / "t10k-images-idx3-ubyte.gz", x[:5])
    s = load_dataset(tmp_path / "train-images-idx3-ubyte.gz")
    assert len(s.test.x) == 5 and s.test.y is None                # test labels absent: None
    r = read_idx_images(tmp_path / "train-images-idx3-ubyte.gz",
                        labels=tmp_path / "train-labels-idx1-ubyte.gz")
    assert r.x.shape == (N, 36) and r.y.dtype == np.int64


def test_idx_refusals_name_the_file(tmp_path):
    idx_file(tmp_path / "a-images-idx3-ubyte", images(), gz=False)
    idx_file(tmp_path / "a-labels-idx1-ubyte", np.zeros(N - 1, np.uint8), gz=False)
    with pytest.raises(ValueError, match=f"has {N} images but .*a-labels-idx1-ubyte has {N - 1}"):
        load_dataset(tmp_path / "a-images-idx3-ubyte")
    with pytest.raises(ValueError, match="1-D IDX array .labels.*give the IDX file of the images"):
        load_dataset(tmp_path / "a-labels-idx1-ubyte")
    idx_file(tmp_path / "wide.idx", images().astype(np.int16), code=0x0B)
    with pytest.raises(ValueError, match="wide.idx: the images must be uint8 or float"):
        load_dataset(tmp_path / "wide.idx")


# ----------------------------------------------------------------------------- .npy / .npz
@pytest.mark.parametrize("array", [images(), images().reshape(N, -1).astype(np.float32) / 255])
def test_npy_round_trip(tmp_path, array):
    np.save(tmp_path / "x.npy", array)
    r = read_npy(tmp_path / "x.npy")
    assert r.x.dtype == array.dtype and r.y is None
    np.testing.assert_array_equal(r.x, array.reshape(N, -1))


@pytest.mark.parametrize("make, match", [
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "is not a .npy file holding a numeric array"),
    (lambda p: Image.fromarray(images()[0]).save(p, format="PNG"), "is not a .npy file"),
    (lambda p: np.save(p, np.zeros(36, np.uint8)), r"shape \(N, D\) or \(N, H, W\), got uint8 \(36,\)"),
    (lambda p: np.save(p, np.zeros((2, 6, 6, 3), np.uint8)), "colour images must be converted to grey"),
    (lambda p: np.save(p, np.zeros((2, 36), np.int64)), r"store 8-bit grey levels 0..255 as x.astype"),
])
def test_npy_refusals(tmp_path, make, match):
    make(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match=match) as info:
        load_dataset(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)


def test_npz_one_array_or_partial_named_splits(tmp_path):
    x = images()
    np.savez(tmp_path / "one.npz", x)                                 # saved as 'arr_0'
    assert [len(p.x) for p in load_dataset(tmp_path / "one.npz")] == [36, 4, 0]
    np.savez(tmp_path / "tt.npz", train=x, test=x[:3], train_labels=np.arange(N) % 10)
    s = load_dataset(tmp_path / "tt.npz")
    assert [len(p.x) for p in s] == [36, 4, 3] and s.test.y is None
    np.testing.assert_array_equal(s.valid.y, row_ids(s.valid.x) % 10)
    np.savez(tmp_path / "keras.npz", x_train=x[:30], x_valid=x[30:], y_valid=np.arange(10))
    s = load_dataset(tmp_path / "keras.npz")
    assert [len(p.x) for p in s] == [30, 10, 0], "a stored validation split is not carved"
    np.testing.assert_array_equal(s.valid.y, np.arange(10))


# ----------------------------------------------------------------------------- CSV
def test_csv_integers_with_a_label_column(tmp_path):
    x = images().reshape(N, -1)
    header = ["label"] + [f"pixel{i}" for i in range(36)]
    write_csv(tmp_path / "d.csv", np.column_stack([np.arange(N) % 10, x]), header)
    r = read_csv(tmp_path / "d.csv")
    assert r.x.dtype == np.uint8 and np.array_equal(r.x, x)            # integers: grey levels
    np.testing.assert_array_equal(r.y, np.arange(N) % 10)


def test_csv_decimals_are_values_in_unit_interval(tmp_path):
    (tmp_path / "f.csv").write_text("a,b,c\n0.0,0.5,1\n\n1e-1,0.25,0.75\n")   # header, blank line
    r = read_csv(tmp_path / "f.csv")
    assert r.x.dtype == np.float64 and r.y is None
    np.testing.assert_array_equal(r.x, [[0, 0.5, 1], [0.1, 0.25, 0.75]])


@pytest.mark.parametrize("text, match", [
    ("1,2,3\n4,5\n", "line 2: 2 values, but line 1 has 3"),
    ("p1,p2\n1,2,3\n", "line 2: 3 values, but the header has 2"),
    ("1,2,3\n4,x5,6\n", "line 2: 'x5' is not a number"),
    ("1;2;3\n", "line 1: '1;2;3' is not a number|no rows of numbers"),
    ("0,10,256\n", r"line 1: value 256 is outside \[0, 255\] \(integers are read as 8-bit"),
    ("3,-1,0\n", r"line 1: value -1 is outside \[0, 255\]"),
    ("0.5,0.2\n0.1,1.5\n", r"line 2: value 1.5 is outside \[0.0, 1.0\] \(numbers with a decimal"),
    ("0.5,nan\n", r"value nan is outside"),
    ("p1,p2\n", "has no rows of numbers"),
    ("", "has no rows of numbers"),
    ("label,p1\n1.5,3\n", "the 'label' column must hold integer labels"),
])
def test_csv_refusals_name_the_file_and_line(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_dataset(tmp_path / "bad.csv")
    assert "bad.csv" in str(info.value)


def test_csv_that_is_not_text(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ValueError, match="bin.csv is not a text file"):
        load_dataset(tmp_path / "bin.csv")


# ----------------------------------------------------------------------------- PNG / JPEG
def test_png_colour_to_grey_is_the_stated_luma_and_alpha_is_ignored(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0], rgba[0, 1], rgba[0, 2] = (255, 0, 0, 255), (0, 255, 0, 0), (0, 0, 255, 128)
    rgba[1] = (200, 200, 200, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    grey = read_image(tmp_path / "c.png")
    # ITU-R 601-2 luma L = R 299/1000 + G 587/1000 + B 114/1000: 76.2, 149.7, 29.1, 200
    assert grey.dtype == np.uint8 and grey.shape == (2, 3)
    np.testing.assert_allclose(grey, [[76, 150, 29], [200, 200, 200]], atol=1)


def test_image_folder_png_and_jpeg(tmp_path):
    x = images()
    (tmp_path / "png").mkdir()
    for i in range(N):
        Image.fromarray(x[i]).save(tmp_path / "png" / f"img{i:02d}.png")
    (tmp_path / "png" / "notes.txt").write_text("not an image")          # ignored
    r = read_image_folder(tmp_path / "png")
    np.testing.assert_array_equal(r.x, x.reshape(N, -1))                  # lossless, name order
    (tmp_path / "jpg").mkdir()
    for i in range(3):
        Image.fromarray(np.full((5, 7, 3), 100 + i, np.uint8)).save(tmp_path / "jpg" / f"{i}.JPG")
    r = read_image_folder(tmp_path / "jpg")
    assert r.x.shape == (3, 35) and np.all(np.abs(r.x.astype(int) - [[100], [101], [102]]) <= 2)
    assert [len(p.x) for p in load_dataset(tmp_path / "png")] == [36, 4, 0]


def test_image_folder_refusals(tmp_path):
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match="differ in size: a.png is 6x6 but b.png is 8x6 .height x width"):
        load_dataset(tmp_path)
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ValueError, match="b.png is not a readable PNG or JPEG image"):
        load_dataset(tmp_path)
    (tmp_path / "b.png").unlink()
    Image.fromarray(np.zeros((6, 6), np.uint16) + 999).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match="deep.png has Pillow pixel mode .*save it as an 8-bit"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="a.png is a single image; give the folder"):
        load_dataset(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither .* nor .png/.jpg/.jpeg images"):
        load_dataset(tmp_path / "empty")


# ----------------------------------------------------------------------------- carve-out, subsets
def test_validation_carve_out_is_random_seeded_and_disjoint(tmp_path):
    np.save(tmp_path / "x.npy", images())
    a, b = load_dataset(tmp_path / "x.npy"), load_dataset(tmp_path / "x.npy")
    ids_train, ids_valid = row_ids(a.train.x), row_ids(a.valid.x)
    assert len(ids_valid) == 4 and not set(ids_train) & set(ids_valid)
    assert np.all(np.diff(ids_train) > 0) and np.all(np.diff(ids_valid) > 0), "file order kept"
    assert ids_valid.tolist() != [36, 37, 38, 39], "not the last rows"
    np.testing.assert_array_equal(a.valid.x, b.valid.x)                       # same seed
    assert row_ids(load_dataset(tmp_path / "x.npy", seed=1).valid.x).tolist() != ids_valid.tolist()
    assert len(load_dataset(tmp_path / "x.npy", valid_fraction=0.25).valid.x) == 10
    assert len(load_dataset(tmp_path / "x.npy", n_valid=7).valid.x) == 7     # n_valid wins
    rest, carved = carve(read_npy(tmp_path / "x.npy"), 5, np.random.default_rng(0))
    assert len(rest.x) == 35 and len(carved.x) == 5


def test_carve_out_refusals(tmp_path):
    np.save(tmp_path / "one.npy", images(n=1))
    with pytest.raises(ValueError, match="has 1 training image.*too few to carve"):
        load_dataset(tmp_path / "one.npy")
    np.save(tmp_path / "x.npy", images())
    with pytest.raises(ValueError, match=r"--valid-fraction must lie in \(0.0, 1.0\), got 1.5"):
        load_dataset(tmp_path / "x.npy", valid_fraction=1.5, names={"valid_fraction": "--valid-fraction"})
    with pytest.raises(ValueError, match=f"n_valid must be < {N} .validation images are carved"):
        load_dataset(tmp_path / "x.npy", n_valid=N)


def test_subsets_are_drawn_with_the_seed_not_the_first_rows(tmp_path):
    """A class-ordered test split (as in the static binarized MNIST): a subset of 10 of its 100
    rows must not be the first 10 (all of class 0) but a seeded draw across classes."""
    x = images(n=100)
    np.savez(tmp_path / "d.npz", train=x, valid=x[:20], test=x, test_labels=np.repeat(np.arange(10), 10))
    s = load_dataset(tmp_path / "d.npz", n_train=50, n_valid=5, n_test=10, seed=3)
    assert [len(p.x) for p in s] == [50, 5, 10]
    assert len(set(s.test.y.tolist())) >= 5, s.test.y                        # not all 0s
    expected = np.sort(np.random.default_rng([3, 2, 2]).choice(100, 10, replace=False))
    np.testing.assert_array_equal(row_ids(s.test.x), expected)              # the stated stream
    np.testing.assert_array_equal(load_dataset(tmp_path / "d.npz", n_test=10, seed=3).test.x, s.test.x)
    assert subset(read_source(tmp_path / "d.npz")["test"], 100, np.random.default_rng(0)).x.shape == (100, 36)
    with pytest.raises(ValueError, match="--n-test must be <= 100 .the test images of .*d.npz., got 101"):
        load_dataset(tmp_path / "d.npz", n_test=101, names={"n_test": "--n-test"})


def test_float_dtype_divides_grey_levels_by_255(tmp_path):
    np.save(tmp_path / "x.npy", images())
    s = load_dataset(tmp_path / "x.npy", dtype=np.float32)
    assert s.train.x.dtype == np.float32 and s.train.x.max() <= 1
    raw = load_dataset(tmp_path / "x.npy")
    np.testing.assert_array_equal(s.train.x, raw.train.x.astype(np.float32) / np.float32(255))


# ----------------------------------------------------------------------------- the command line
def _write_every_format(folder: Path) -> dict:
    """One small data set (40 grey 6x6 images) in each format a user may bring."""
    x = images()
    flat = x.reshape(N, -1)
    np.save(folder / "x.npy", x)
    np.savez(folder / "one.npz", flat)
    np.savez(folder / "keras.npz", x_train=x, y_train=np.arange(N) % 10)
    write_csv(folder / "ints.csv", np.column_stack([np.arange(N) % 10, flat]),
              ["label"] + [f"p{i}" for i in range(36)])
    (folder / "floats.csv").write_text("\n".join(",".join(f"{v / 255:.4f}" for v in r) for r in flat))
    for kind in ("png", "jpg"):
        (folder / kind).mkdir()
        for i in range(N):
            Image.fromarray(x[i]).save(folder / kind / f"{i}.{kind}")
    idx_file(folder / "scans.bin", x)
    return {k: folder / k for k in ("x.npy", "one.npz", "keras.npz", "ints.csv", "floats.csv",
                                     "png", "jpg", "scans.bin")}


@pytest.mark.slow
def test_every_format_trains_from_the_cli_with_no_extra_flags(tmp_path, capsys):
    for name, path in _write_every_format(tmp_path).items():
        code = main(["train", "--data", str(path), "--out", str(tmp_path / "runs" / name),
                     "--epochs", "1"])
        out, err = capsys.readouterr()
        assert code == 0, (name, err)
        assert f"{path}, train split, 36 images" in out and "; 4 validation" in out, (name, out)
        assert (tmp_path / "runs" / name / "best.npz").is_file()


def test_image_shape_is_read_from_what_each_format_stores(tmp_path):
    stored = {"x.npy": (6, 6), "one.npz": None, "keras.npz": (6, 6), "ints.csv": None,
              "floats.csv": None, "png": (6, 6), "jpg": (6, 6), "scans.bin": (6, 6)}
    paths = _write_every_format(tmp_path)
    assert {name: image_shape(path) for name, path in paths.items()} == stored
    np.save(tmp_path / "wide.npy", np.zeros((3, 4, 7), np.uint8))
    assert image_shape(tmp_path / "wide.npy") == (4, 7), "(height, width), not swapped"
    assert image_shape("embedded") == (28, 28)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        image_shape(tmp_path / "nowhere")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "keras.npz").read_bytes()[:100])
    np.savez(tmp_path / "ab.npz", a=images(), b=images())
    for name in ("cut.npz", "ab.npz"):
        with pytest.raises(ValueError, match=f"{name}: cannot read the shape"):
            image_shape(tmp_path / name)


def test_tile_takes_flat_rows_or_images_and_refuses_other_sizes():
    from scratchvae.viz.vae import tile
    x = np.arange(2 * 4 * 7, dtype=float).reshape(2, 4, 7)
    canvas = tile(x.reshape(2, 28), 1, 3, (4, 7))
    np.testing.assert_array_equal(canvas[:, 7:14], x[1])
    np.testing.assert_array_equal(tile(x, 1, 3, (4, 7)), canvas, err_msg="(N, H, W) input")
    assert np.isnan(canvas[:, 14:]).all(), "the empty cell is blank"
    with pytest.raises(ValueError, match=r"shape \(N, 35\) to be drawn as 5 x 7"):
        tile(x.reshape(2, 28), 1, 3, (5, 7))
    with pytest.raises(ValueError, match="both >= 1"):
        tile(x.reshape(2, 28), 1, 3, (-4, -7))


def test_class_grid_draws_rows_in_the_images_shape_and_refuses_other_sizes(tmp_path):
    from scratchvae.viz.lab_toy import class_grid
    x = np.random.default_rng(0).random((2, 3, 4 * 7))                   # 2 classes, 3 images
    fig = class_grid(x, [0, 1], shape=(4, 7))
    strip = fig.axes[1].images[0].get_array()
    assert strip.shape == (4, 21), "one row: 3 images of 4 x 7 side by side"
    np.testing.assert_array_equal(strip[:, 7:14], x[1, 1].reshape(4, 7))
    assert Image.open(class_grid(x, [0, 1], shape=(4, 7), path=tmp_path / "g.png")).size > (0, 0)
    with pytest.raises(ValueError, match=r"shape \(N, 784\) to be drawn as 28 x 28"):
        class_grid(x, [0, 1])                                             # the 28 x 28 default
    with pytest.raises(ValueError, match=r"images must have shape \(rows, columns, H\*W\)"):
        class_grid(x[0], [0], shape=(4, 7))
    with pytest.raises(ValueError, match=r"row_notes must give one label per row of images \(2\)"):
        class_grid(x, [0, 1], shape=(4, 7), row_notes=["a"])


@pytest.mark.slow
def test_images_that_are_not_28_by_28_are_drawn_in_their_own_shape(tmp_path, capsys, monkeypatch):
    import scratchvae.viz.vae as figures
    drawn, tile = [], figures.tile
    monkeypatch.setattr(figures, "tile", lambda images, nrows, ncols, shape:
                        drawn.append(tuple(shape)) or tile(images, nrows, ncols, shape))
    x = np.random.default_rng(0).integers(0, 2, (60, 4, 7), dtype=np.uint8)  # 4 high, 7 wide
    np.save(tmp_path / "wide.npy", x)
    assert main(["train", "--data", str(tmp_path / "wide.npy"), "--out", str(tmp_path / "run"),
                 "--epochs", "1"]) == 0
    assert '"image_shape": [\n  4,\n  7\n ]' in (tmp_path / "run" / "run.json").read_text()
    out = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--n", "6",
                 "--ncols", "3", "--reconstruct", "3", "--interpolate", "1", "--split",
                 "valid"]) == 0
    assert drawn == [(4, 7)] * 3, "samples, reconstructions, interpolations"
    assert Image.open(tmp_path / "s_reconstructions.png").size > (0, 0)
    np.save(tmp_path / "tall.npy", x.transpose(0, 2, 1))                     # 7 high, 4 wide
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--n", "6",
                 "--data", str(tmp_path / "tall.npy")]) == 0
    assert drawn[-1] == (7, 4), "--data names other data: their own shape"
    (tmp_path / "run" / "run.json").unlink()                # no record: 28 is not a square
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out)]) == 2
    assert "there is no run.json beside the checkpoint" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out),
                 "--image-shape", "5", "7"]) == 2
    assert "H * W must be its x-dim 28, got 35" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out),
                 "--image-shape", "-4", "-7"]) == 2
    assert "--image-shape must be two whole numbers H W >= 1, got [-4, -7]" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(tmp_path / "run"), "--out", str(out),
                 "--image-shape", "7", "4"]) == 0, "an explicit shape needs no record"


@pytest.mark.slow
def test_a_run_folder_as_checkpoint_finds_its_data_in_run_json(tmp_path, capsys):
    np.save(tmp_path / "x.npy", images())
    assert main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run"),
                 "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--split", "valid",
                 "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'x.npy'}, valid split, 4 images" in out, out


@pytest.mark.slow
def test_cli_errors_name_the_flag_or_the_file(tmp_path, capsys):
    np.save(tmp_path / "x.npy", images())
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")

    def error(*argv):
        assert main(["train", "--epochs", "1", "--out", str(tmp_path / "o"), *argv]) == 2
        return capsys.readouterr().err

    data = ["--data", str(tmp_path / "x.npy")]
    assert "--n-train must be <= 36 (the training images of" in error(*data, "--n-train", "37")
    assert "--n-valid must be < 40" in error(*data, "--n-valid", "40")
    assert "--valid-fraction must lie in (0.0, 1.0), got 0.0" in error(*data, "--valid-fraction", "0")
    assert "--n-test must be >= 0" in error(*data, "--n-test", "-1")
    assert "ragged.csv, line 2: 2 values" in error("--data", str(tmp_path / "ragged.csv"))
    assert "--dequantize uniform is for the Gaussian likelihood" in error(*data, "--dequantize", "uniform")
    gaussian = ["--likelihood", "gaussian", "--dequantize", "uniform"]
    assert "--dequantize uniform and --binarize static exclude each other" in error(
        *data, *gaussian, "--binarize", "static")
    np.save(tmp_path / "f.npy", images().astype(np.float32) / 255)
    assert "--dequantize uniform needs 8-bit grey levels (uint8 0..255), but" in error(
        "--data", str(tmp_path / "f.npy"), *gaussian)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_set_of_3000_images_trains_with_the_defaults_and_evaluate_names_split(tmp_path, capsys):
    """No hidden validation size: 3000 images give 2700 + 300 (--valid-fraction 0.1)."""
    np.save(tmp_path / "big.npy", np.random.default_rng(0).integers(0, 256, (3000, 16), np.uint8))
    assert main(["train", "--data", str(tmp_path / "big.npy"), "--out", str(tmp_path / "r"),
                 "--epochs", "1", "--hidden", "8", "--z-dim", "2"]) == 0
    assert "train split, 2700 images, binarization: dynamic; 300 validation" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "r" / "best.npz"), "--k", "2"]) == 2
    assert "the test split of" in (err := capsys.readouterr().err) and "--split valid" in err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "r" / "best.npz"), "--k", "2",
                 "--split", "valid", "--subset", "20"]) == 0
    assert "valid split, 300 images" in capsys.readouterr().out        # the carve-out, again


@pytest.mark.slow
def test_run_json_of_an_earlier_version_keeps_its_meaning(tmp_path, capsys):
    """run.json written before --n-train/--n-test applied to files (they recorded the embedded
    defaults 10000 and 1000) and before dequantization: evaluate uses the whole test split and
    x = k/255, as that run did."""
    import json
    x = images()
    np.savez(tmp_path / "d.npz", train=x, valid=x[:8], test=x[:30])
    out = tmp_path / "r"
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--likelihood", "gaussian",
                 "--hidden", "8", "--z-dim", "2", "--epochs", "1", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["dequantize"] == "uniform" and run["n_test"] is None
    old = {k: v for k, v in run.items() if k not in ("dequantize", "valid_fraction")}
    (out / "run.json").write_text(json.dumps({**old, "n_train": 10000, "n_test": 1000}))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--k", "2"]) == 0
    text = capsys.readouterr().out
    assert "test split, 30 images, binarization: none\n" in text and "continuous" in text, text
