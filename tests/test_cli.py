"""The VAE command line: ``python -m scratchvae train -> evaluate -> sample`` as a user runs it
(subprocesses in a temporary folder), ``--help`` of every subcommand, and bad input.

One tiny training run (300 embedded digits, 2 epochs, 784-32-4) is shared by the tests of this
module; each command is a separate process, so nothing is shared in memory.
"""
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from scratchvae import cli
from support import assert_clean_error, run
from scratchvae.cli import vae as cli_vae

pytestmark = pytest.mark.slow   # end-to-end: the maths lane is pytest -m "not slow"

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-train", "300", "--n-valid", "100", "--n-test", "100", "--hidden", "32",
        "--z-dim", "4", "--batch-size", "50"]


def assert_png(path):
    """A real PNG: signature, an IHDR chunk with a sane size and a valid CRC, an IEND chunk."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 100 < width < 5000 and 100 < height < 5000, (path, width, height)
    assert zlib.crc32(data[12:29]) == int.from_bytes(data[29:33], "big"), f"{path}: bad IHDR CRC"


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """300 binarized embedded digits with labels as an .npz (saves each process the rendering)."""
    from scratchvae.data import binarize_static, load_embedded_digits
    s = load_embedded_digits(n_train=200, n_valid=50, n_test=50, seed=1)
    arrays = {}
    for k, split in enumerate(("train", "valid", "test")):
        ds = getattr(s, split)
        arrays[split] = binarize_static(ds.x, "bernoulli", seed=k).astype(np.uint8)
        arrays[f"{split}_labels"] = ds.y
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    proc = run(["train", *TINY, "--epochs", "2", "--out", "run"], cwd)
    return cwd, proc


def test_train_writes_checkpoints_metrics_and_progress(trained):
    cwd, proc = trained
    out = cwd / "run"
    for name in ("checkpoint.npz", "best.npz", "metrics.csv", "metrics.json", "run.json"):
        assert (out / name).stat().st_size > 0, name
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["valid_elbo"]) and r["valid_elbo"] < 0 for r in rows)
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,") and len(csv_lines) == 3
    assert proc.stdout.count("valid ELBO") == 2, "one progress line per epoch"
    assert "binarization: dynamic" in proc.stdout
    assert json.loads((out / "run.json").read_text())["binarize"] == "dynamic"
    assert not list(out.glob(".tmp-*"))


def test_evaluate_json_is_finite_and_elbo_below_log_px(trained):
    cwd, _ = trained
    proc = run(["evaluate", "--checkpoint", "run/checkpoint.npz", "--k", "100", "--subset", "40",
                "--seed", "3", "--json", "eval.json"], cwd)
    r = json.loads((cwd / "eval.json").read_text())
    for key in ("elbo", "rec", "kl", "log_px", "nats", "bits_per_dim", "elbo_bits_per_dim"):
        assert math.isfinite(r[key]), (key, r[key])
    assert r["n"] == 40 and len(r["indices"]) == 40 and r["indices"] == sorted(r["indices"])
    assert r["indices"] == np.sort(np.random.default_rng(3).choice(100, 40, replace=False)).tolist()
    assert len(r["kl_per_dim"]) == 4 and 0 <= r["active_units"] <= 4
    np.testing.assert_allclose(r["elbo"], r["rec"] - r["kl"], rtol=1e-5)
    np.testing.assert_allclose(r["bits_per_dim"], r["nats"] / (784 * np.log(2)), rtol=1e-9)
    # L_100 >= ELBO in expectation; measured gap 1.4 nats here. MC slack 0.5 nats per example.
    assert r["elbo"] <= r["log_px"] + 0.5, (r["elbo"], r["log_px"])
    assert "binarization: static, seed 2" in proc.stdout        # test split: binarize seed + 2
    assert "40 of 100, rows np.sort(numpy.random.default_rng(3)" in proc.stdout
    for word in ("ELBO", "log p(x)", "bits/dim", "KL per dim", "active units"):
        assert word in proc.stdout, word


def test_sample_writes_valid_pngs(trained):
    cwd, _ = trained
    proc = run(["sample", "--checkpoint", "run/best.npz", "--n", "20", "--out", "pics/s.png",
                "--reconstruct", "10", "--interpolate", "2", "--steps", "5"], cwd)
    for name in ("s.png", "s_reconstructions.png", "s_interpolations.png"):
        assert_png(cwd / "pics" / name)
        assert name in proc.stdout


def test_sample_with_pixels_and_grid(tmp_path, trained, digits_npz):
    cwd, _ = trained
    proc = run(["train", "--data", digits_npz, "--z-dim", "2", "--hidden", "16", "--epochs", "1",
                "--out", "z2"], tmp_path)
    assert "binarization: none" in proc.stdout                  # 0/1 data: nothing to do
    run(["sample", "--checkpoint", "z2/checkpoint.npz", "--n", "10", "--pixels", "sample",
         "--grid", "6", "--out", "g.png"], tmp_path)
    assert_png(tmp_path / "g.png")
    assert_png(tmp_path / "g_manifold.png")
    assert_clean_error(run(["sample", "--checkpoint", str(cwd / "run" / "checkpoint.npz"),
                            "--grid", "5"], tmp_path, check=False), "z-dim 2")


def test_resume_from_the_cli(tmp_path, digits_npz):
    common = ["--data", digits_npz, "--hidden", "16", "--z-dim", "3", "--batch-size", "50",
              "--out", "r"]
    run(["train", *common, "--epochs", "1"], tmp_path)
    proc = run(["train", *common, "--epochs", "2", "--resume", "r/checkpoint.npz"], tmp_path)
    assert proc.stdout.count("valid ELBO") == 1 and "epoch   2/2" in proc.stdout
    assert len(json.loads((tmp_path / "r" / "metrics.json").read_text())) == 2
    record = (tmp_path / "r" / "run.json").read_bytes()
    changed = run(["train", *common, "--z-dim", "4", "--epochs", "3",
                   "--resume", "r/checkpoint.npz"], tmp_path, check=False)
    # --resume takes the model from the checkpoint: a typed option that disagrees is refused
    assert_clean_error(changed, "--z-dim 4 contradicts the checkpoint")
    assert (tmp_path / "r" / "run.json").read_bytes() == record, "a refused run rewrote run.json"


def _options(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices[command]._actions


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "sample"])
def test_help_explains_every_option(command, tmp_path):
    text = run([command, "--help"], tmp_path).stdout
    flat = " ".join(text.split())                       # undo argparse's line wrapping
    for action in _options(command):
        for flag in action.option_strings:
            assert flag in text, f"{command} --help does not mention {flag}"
        if action.dest != "help":
            assert action.help and len(action.help) > 8, f"{command} {action.dest}: no help"
            assert f"(default: {action.default})" in flat, f"{command} {action.dest}: no default"


def test_choice_lists_mirror_the_library():
    from scratchvae.nn import ACTIVATIONS
    from scratchvae.optim import OPTIMIZERS
    from scratchvae.vae import ESTIMATORS
    assert set(cli_vae.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(cli_vae.OPTIMIZERS) == set(OPTIMIZERS)
    assert tuple(cli_vae.ESTIMATORS) == tuple(ESTIMATORS)
    from scratchvae.posteriors import POSTERIORS
    assert tuple(cli_vae.POSTERIORS) == tuple(POSTERIORS)


def test_bad_input_gives_one_clean_line(tmp_path, trained):
    cwd, _ = trained
    rng = np.random.default_rng(0)
    grey = {s: rng.random((n, 784)).astype(np.float32) for s, n in
            (("train", 60), ("valid", 20), ("test", 20))}
    np.savez(tmp_path / "grey.npz", **grey)
    assert_clean_error(run(["train", "--data", "grey.npz", "--binarize", "none", "--epochs", "1",
                            "--out", "o"], tmp_path, check=False), "non-binary", "binarize")
    assert_clean_error(run(["evaluate", "--checkpoint", "nope.npz"], tmp_path, check=False),
                       "nope.npz", "does not exist")
    data = (cwd / "run" / "checkpoint.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 3])
    assert_clean_error(run(["evaluate", "--checkpoint", "cut.npz"], tmp_path, check=False),
                       "truncated or corrupt")
    assert_clean_error(run(["train", "--hidden", "4OO", "--out", "o"], tmp_path, check=False),
                       "--hidden")
    assert_clean_error(run(["train", "--data", "missing.npz", "--out", "o"], tmp_path,
                           check=False), "missing.npz")
    narrow = {s: (rng.random((20, 100)) < 0.5).astype(np.float32) for s in grey}
    np.savez(tmp_path / "narrow.npz", **narrow)
    assert_clean_error(run(["evaluate", "--checkpoint", str(cwd / "run" / "checkpoint.npz"),
                            "--data", "narrow.npz", "--k", "2"], tmp_path, check=False), "width")
    assert_clean_error(run(["train", "--data", "grey.npz", "--optimizer", "sgd", "--lr", "1e3",
                            "--batch-size", "20", "--hidden", "8", "--epochs", "1", "--out", "o"],
                           tmp_path, check=False), "diverged", "--lr")
    nan = dict(grey, train=np.where(grey["train"] > 0.99, np.nan, grey["train"]).astype(np.float32))
    np.savez(tmp_path / "nan.npz", **nan)
    assert_clean_error(run(["train", "--data", "nan.npz", "--out", "o"], tmp_path, check=False),
                       "NaN")


def test_demo_runs_small_and_writes_its_figures(tmp_path):
    """The README's main command, shrunk (1 epoch on 200 digits, K = 5 on 20 test images)."""
    proc = run(["demo", "--epochs", "1", "--n-train", "200", "--k", "5", "--subset", "20",
                "--out", "d"], tmp_path)
    names = ("curves", "prior_samples", "reconstructions", "latent_scatter", "manifold")
    for name in names:
        assert_png(tmp_path / "d" / f"{name}.png")
        assert f"d/{name}.png" in proc.stdout
    for words in ("epoch   1/1", "test ELBO", "test log p(x) >=", "K = 5", "bits/dim",
                  "20 of 1000, rows np.sort(numpy.random.default_rng(0)"):
        assert words in proc.stdout, words
    ev = run(["evaluate", "--checkpoint", "d/checkpoint.npz", "--k", "5", "--subset", "20"],
             tmp_path)                                     # run.json leads evaluate to the data
    assert "embedded digits (data seed 0), test split, 1000 images, binarization: static, seed 2" \
        in ev.stdout


def test_flow_posterior_from_the_command_line(tmp_path):
    """--posterior iaf --flow-length 2 trains with the mc ELBO, and evaluate, sample and
    --resume read the flow from the checkpoint; the analytic ELBO is refused in one line."""
    flow = ["--posterior", "iaf", "--flow-length", "2"]
    refused = run(["train", *TINY, *flow, "--epochs", "1", "--out", "bad"], tmp_path, check=False)
    assert_clean_error(refused, "estimator='analytic' needs a closed-form KL", "'iaf'")
    proc = run(["train", *TINY, *flow, "--estimator", "mc", "--epochs", "1", "--out", "r"],
               tmp_path)
    assert "iaf flow (K = 2) q(z|x)" in proc.stdout
    run(["train", "--resume", "r", "--epochs", "2"], tmp_path)
    ev = run(["evaluate", "--checkpoint", "r/checkpoint.npz", "--k", "20", "--subset", "20",
              "--json", "e.json"], tmp_path)
    assert "KL per dim" not in ev.stdout                     # no closed form for a flow
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["kl_per_dim"] is None and np.isfinite(result["log_px"])
    run(["sample", "--checkpoint", "r/checkpoint.npz", "--out", "s.png"], tmp_path)
    assert_png(tmp_path / "s.png")
