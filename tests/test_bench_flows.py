"""bench/bench_flows.py: a tiny end-to-end run (slow lane) and its refusals of bad input.

The run needs the static binarized MNIST file beside the repository
(../shared/data/binarized_mnist.npz); without it the test is skipped and says so.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bench_flows  # noqa: E402
from bench_common import DATA  # noqa: E402

# 784-64-8 networks, two flow layers, 3 s of training per posterior, K = 10 on 100 images
TINY = ["--hidden", "64", "--z-dim", "8", "--flow-length", "2", "--iaf-hidden", "32",
        "--minutes", "0.05", "--eval-k", "10", "--eval-subset", "100"]
POSTERIORS = ["diagonal", "planar", "iaf", "sylvester"]


@pytest.mark.slow
def test_tiny_run_writes_run_folder_table_and_reference(tmp_path):
    if not DATA.exists():
        pytest.skip(f"{DATA} is absent: the flow benchmark needs the static binarized MNIST file "
                    f"(see ../shared/data/README.md)")
    args = TINY + ["--jobs", "2", "--runs-dir", str(tmp_path / "runs"), "--write-reference",
                   "--reference", str(tmp_path / "reference" / "flows.md")]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_flows.py"), *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CPU: " in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()                     # one timestamped run folder
    rep = json.loads((run_dir / "results.json").read_text())
    assert rep["command"] == "python bench/bench_flows.py " + " ".join(args)
    assert [r["posterior"] for r in rep["rows"]] == POSTERIORS
    for r in rep["rows"]:
        name = r["posterior"]
        assert (run_dir / name / "best.npz").exists() and (run_dir / f"{name}.log").exists()
        assert json.loads((run_dir / f"{name}.json").read_text())["logp_mean"] == r["logp_mean"]
        assert r["flow_length"] == (0 if name == "diagonal" else 2)
        assert r["epochs_run"] >= 1 and r["seconds_per_epoch"] > 0, r
        assert r["logp_images"] == 100 and not r["logp_whole_split"]
        assert all(math.isfinite(r[k]) for k in ("test_elbo", "logp_mean", "logp_stderr")), r
        # L_10 >= ELBO in expectation; the gap was 2.0-2.7 +- 0.25 nats at these settings
        assert r["gap_mean"] > 0, f"{name}: L_K - ELBO = {r['gap_mean']:.2f} should be > 0"
    assert rep["rows"][2]["model"]["iaf_hidden"] == [32]
    text = (run_dir / "results.md").read_text()
    assert text.startswith(f"command: `{rep['command']}`")
    assert "a random subset of 100 test images" in text
    assert sum(line.startswith(tuple(f"| {n} |" for n in POSTERIORS)) for line in text.splitlines()) == 4
    assert (tmp_path / "reference" / "flows.md").read_text() == text
    assert (tmp_path / "reference" / "flows.json").read_text() == (run_dir / "results.json").read_text()


@pytest.mark.slow
def test_a_failing_posterior_gets_a_row_and_the_others_still_run(tmp_path, monkeypatch):
    if not DATA.exists():
        pytest.skip(f"{DATA} is absent: the flow benchmark needs the static binarized MNIST file")
    real = bench_flows.train_and_evaluate

    def planar_breaks(name, *rest):
        if name == "planar":
            raise RuntimeError("planted failure")
        return real(name, *rest)

    monkeypatch.setattr(bench_flows, "train_and_evaluate", planar_breaks)
    status = bench_flows.main(TINY + ["--posteriors", "planar", "diagonal",
                                      "--runs-dir", str(tmp_path / "runs")])
    assert status == 1                                   # not every posterior was evaluated
    (run_dir,) = (tmp_path / "runs").iterdir()
    planar, diagonal = json.loads((run_dir / "results.json").read_text())["rows"]
    assert planar["stop_reason"] == "failed: RuntimeError: planted failure"
    assert "Traceback" in (run_dir / "planar.log").read_text()
    assert math.isfinite(diagonal["logp_mean"])
    assert "planar: failed: RuntimeError: planted failure" in (run_dir / "results.md").read_text()


def test_missing_data_file_stops_before_any_work(tmp_path):
    with pytest.raises(SystemExit) as stop:
        bench_flows.main(TINY + ["--data", str(tmp_path / "absent.npz"),
                                 "--runs-dir", str(tmp_path / "runs")])
    assert str(tmp_path / "absent.npz") in str(stop.value.code)
    assert "nothing was measured" in str(stop.value.code)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("bad, needle", [
    (["--flow-length", "planar=0"], "--flow-length"),
    (["--flow-length", "spline=4"], "--flow-length"),
    (["--posteriors", "radial", "--flow-length", "planar=2"], "radial=K"),
    (["--posteriors", "planar", "planar"], "twice"),
    (["--eval-k", "0"], "--eval-k must be >= 1, got 0"),
    (["--estimator", "iwae", "--warmup-epochs", "2"], "warmup_epochs"),
])
def test_bad_arguments_are_refused_naming_the_flag(bad, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        bench_flows.parse(TINY + bad)
    assert stop.value.code == 2
    assert needle in capsys.readouterr().err
