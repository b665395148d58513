"""Runs from the command line: --out is never silently replaced, --resume needs no repeated
options, Ctrl-C saves and prints the command that continues, and the input mistakes that used
to end in tracebacks get one clear line. Each command runs as a subprocess, as a user runs it.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchvae.cli import demo as cli_demo
from support import assert_clean_error, run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """2,000 random binary 784-pixel images (train), 100 valid, 100 test: quick to load."""
    rng = np.random.default_rng(0)
    arrays = {s: (rng.random((n, 784)) < 0.2).astype(np.uint8)
              for s, n in (("train", 2000), ("valid", 100), ("test", 100))}
    path = tmp_path_factory.mktemp("data") / "bits.npz"
    np.savez(path, **arrays)
    return path


def _common(data):
    return ["--data", data, "--hidden", "128", "--z-dim", "3", "--batch-size", "100"]


def test_out_is_not_replaced_unasked(tmp_path, data):
    run(["train", *_common(data), "--epochs", "1", "--out", "r"], tmp_path)
    before = (tmp_path / "r" / "checkpoint.npz").read_bytes()
    proc = run(["train", *_common(data), "--epochs", "1", "--out", "r"], tmp_path, check=False)
    assert_clean_error(proc, "--out 'r' already holds files", "--overwrite", "--resume r")
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() == before
    run(["train", *_common(data), "--epochs", "1", "--seed", "1", "--out", "r", "--overwrite"],
        tmp_path)
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() != before
    (tmp_path / "afile").write_text("x")
    assert_clean_error(run(["train", "--out", "afile"], tmp_path, check=False),
                       "--out 'afile' is a file")


def test_resume_takes_every_option_from_the_run(tmp_path, data):
    run(["train", *_common(data), "--lr", "3e-3", "--epochs", "1", "--out", "r"], tmp_path)
    proc = run(["train", "--resume", "r", "--epochs", "2"], tmp_path)   # nothing repeated
    assert "epoch   2/2" in proc.stdout and proc.stdout.count("valid ELBO") == 1
    assert "784-128-3" in proc.stdout and "bits.npz" in proc.stdout
    proc = run(["train", "--resume", "r"], tmp_path)                    # already 2 of 2
    assert "nothing to train" in proc.stdout and "--epochs 2" in proc.stdout
    assert_clean_error(run(["train", "--resume", "r", "--lr", "1e-3", "--epochs", "3"], tmp_path,
                           check=False), "--lr 0.001 contradicts", "(0.003)")
    assert_clean_error(run(["train", "--resume", "r", "--epochs", "1"], tmp_path, check=False),
                       "--epochs 1 is fewer than the 2 epochs")
    assert_clean_error(run(["train", "--resume", "nowhere"], tmp_path, check=False),
                       "nowhere", "does not exist")


def test_resuming_a_run_that_stopped_early_says_so(tmp_path, data):
    run(["train", *_common(data), "--lr", "0.05", "--epochs", "40", "--patience", "1",
         "--out", "r"], tmp_path)
    rows = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert len(rows) < 40, "lr 0.05 on noise should stop early"
    proc = run(["train", "--resume", "r", "--epochs", "60"], tmp_path)
    assert "nothing to train: the run stopped early" in proc.stdout
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == rows


def test_ctrl_c_saves_and_prints_the_command_that_continues(tmp_path, data):
    args = ["train", *_common(data), "--hidden", "256", "--epochs", "8", "--out", "r"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    p = subprocess.Popen([sys.executable, "-m", "scratchvae", *map(str, args)], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("epoch   2/"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err, err
    command = err.strip().splitlines()[-1].strip()
    assert command == "python -m scratchvae train --resume r", err
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 2 <= len(saved) < 8, err
    assert f"holds epoch {len(saved)} of 8" in err
    run(command.split()[3:], tmp_path)                          # the printed command, as is
    resumed = json.loads((tmp_path / "r" / "metrics.json").read_text())
    run([*args[:-1], "straight"], tmp_path)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed) == drop(straight), "the resumed run must equal an uninterrupted one"


def test_input_mistakes_give_one_clean_line(tmp_path, data):
    run(["train", *_common(data), "--epochs", "1", "--out", "r"], tmp_path)
    assert_clean_error(run(["train", "--n-train", "0", "--out", "o"], tmp_path, check=False),
                       "--n-train must be >= 1, got 0")
    assert_clean_error(run(["sample", "--checkpoint", "r/checkpoint.npz", "--interpolate", "-1"],
                           tmp_path, check=False), "--interpolate must be >= 0, got -1")
    assert_clean_error(run(["sample", "--checkpoint", "r/checkpoint.npz", "--out", "pics"],
                           tmp_path, check=False), "--out must name a .png file or a folder")
    os.mkdir(tmp_path / "pics")
    proc = run(["sample", "--checkpoint", "r", "--n", "4", "--out", "pics"], tmp_path)
    assert (tmp_path / "pics" / "samples.png").exists() and not (tmp_path / "pics.png").exists()
    assert "pics/samples.png" in proc.stdout
    assert_clean_error(run(["ising", "--sigma", "1e200"], tmp_path, check=False),
                       "--sigma must lie in [1e-100, 1e100]", "1e+200")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert_clean_error(run(["evaluate", "--checkpoint", "empty.npz"], tmp_path, check=False),
                       "empty.npz", "is empty")


def test_the_demo_replaces_its_own_folder_only(tmp_path):
    """Running the README's demo twice must work; pointing it at another folder must not
    delete that folder's run."""
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    (demo_dir / "run.json").write_text(json.dumps({"command": "demo"}))
    (demo_dir / "curves.png").write_bytes(b"x")
    cli_demo._check_out(str(demo_dir), overwrite=False)                 # an earlier demo: fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "checkpoint.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="not an earlier demo's.*--overwrite"):
        cli_demo._check_out(str(other), overwrite=False)
    cli_demo._check_out(str(other), overwrite=True)
    with pytest.raises(ValueError, match="is a file"):
        cli_demo._check_out(str(other / "checkpoint.npz"), overwrite=False)
