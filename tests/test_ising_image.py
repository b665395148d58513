"""``python -m scratchvae ising --image``: PNG, JPEG and CSV images besides .npy, and a message
naming --image for a file it cannot use."""
import numpy as np
import pytest
from PIL import Image

from scratchvae.cli import main
from scratchvae.cli.ising import clean_image

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"

# a 4 x 5 pattern of spins: +1 where the grey level is above half of full scale
SPINS = np.array([[1, -1, -1, 1, 1], [-1, 1, -1, -1, 1], [1, 1, 1, -1, -1], [-1, -1, 1, 1, -1]],
                 dtype=np.float64)


def test_png_jpeg_and_csv_grey_levels_are_thresholded_at_half_scale(tmp_path):
    grey = np.where(SPINS > 0, 200, 40).astype(np.uint8)
    grey[0, 0], grey[1, 0] = 128, 127                                # the threshold: 128 -> +1
    Image.fromarray(grey).save(tmp_path / "a.png")
    np.testing.assert_array_equal(clean_image(tmp_path / "a.png"), SPINS)
    Image.fromarray(np.stack([np.where(SPINS > 0, 230, 20).astype(np.uint8)] * 3, -1)).save(
        tmp_path / "a.jpg", quality=95)
    np.testing.assert_array_equal(clean_image(tmp_path / "a.jpg"), SPINS)
    tables = {"grey.csv": grey, "unit.csv": np.where(SPINS > 0, 0.9, 0.1),
              "spins.csv": SPINS.astype(int), "bits.csv": (SPINS > 0).astype(int)}
    for name, table in tables.items():
        (tmp_path / name).write_text("\n".join(",".join(map(str, r)) for r in table))
        out = clean_image(tmp_path / name)
        assert out.dtype == np.float64, name
        np.testing.assert_array_equal(out, SPINS, err_msg=name)


@pytest.mark.parametrize("name, write, match", [
    ("a.txt", lambda p: p.write_text("1,2"), "--image must be a .npy, .png, .jpg/.jpeg or .csv"),
    ("b.png", lambda p: p.write_bytes(b"not a png"), "--image: .*b.png is not a readable PNG"),
    ("c.csv", lambda p: p.write_text("1,2\n3\n"), "--image: .*c.csv, line 2: 1 values"),
    ("d.csv", lambda p: p.write_text("-3,300\n0,1\n"), r"--image: .*d.csv holds values in \[-3, 300\]"),
    ("e.npy", lambda p: p.write_bytes(b"\x89PNG\r\n"), "--image .*e.npy is not a .npy file"),
    ("missing.png", lambda p: None, "--image: no such file"),
])
def test_unusable_files_name_the_flag(tmp_path, capsys, name, write, match):
    write(tmp_path / name)
    assert main(["ising", "--image", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(match, err), err


@pytest.mark.slow
def test_cli_denoises_a_png(tmp_path, capsys):
    big = np.kron(SPINS, np.ones((4, 4)))                           # 16 x 20
    Image.fromarray(np.where(big > 0, 255, 0).astype(np.uint8)).save(tmp_path / "img.png")
    assert main(["ising", "--image", str(tmp_path / "img.png"), "--gibbs-sweeps", "3",
                 "--burn-in", "1"]) == 0
    assert "16x20 image" in capsys.readouterr().out
