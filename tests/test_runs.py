"""Run folders a user can trust (scratchvae.runs, scratchvae.train): a new run never replaces
another run's files unasked, resuming continues bit for bit (from a folder, after Ctrl-C, after
a kill at any moment), a finished or early-stopped run is not trained further, best.npz is
never older than the run's best epoch; TrainConfig checks every field; BLAS threads and the
progress report of log_likelihood.

Models here are 20-8-2 on 40 random binary rows, so each run takes milliseconds; the kill test
runs its trials in subprocesses.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from scratchvae import checkpoint as ckpt
from scratchvae import evaluate
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"

ROOT = Path(__file__).resolve().parents[1]
X = (np.random.default_rng(0).random((40, 20)) < 0.3).astype(np.float32)
XV = (np.random.default_rng(1).random((10, 20)) < 0.3).astype(np.float32)
CFG = dict(batch_size=16, lr=3e-3, seed=4)


def _vae(seed=0):
    return VAE(20, 2, rng=np.random.default_rng(seed), hidden=(8,))


def _epoch(path):
    return ckpt.load_checkpoint(path)["meta"]["epoch"]


def _same_params(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _drop_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def _scripted(monkeypatch, values):
    """Replace the validation ELBO by the values given, in order (the first is V_0)."""
    script = iter(values)
    monkeypatch.setattr("scratchvae.train.elbo", lambda vae, x, **kw: {
        k: np.full(len(x), next(script) if k == "elbo" else 1.0) for k in ("elbo", "rec", "kl")})


# ------------------------------------------------------------------------ the output folder
def test_a_new_run_refuses_a_folder_that_holds_files(tmp_path):
    train(_vae(), X, XV, TrainConfig(epochs=1, **CFG), out_dir=tmp_path, log=None)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="already holds files") as info:
        train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path, log=None)
    msg = str(info.value)
    assert str(tmp_path) in msg and "overwrite=True" in msg and "resume=" in msg, msg
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "files were touched"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        train(_vae(), X, XV, TrainConfig(epochs=1, **CFG), out_dir=tmp_path / "file", log=None)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        train(_vae(), X, XV, TrainConfig(epochs=1, **CFG), out_dir=tmp_path, overwrite="yes",
              log=None)


def test_overwrite_replaces_the_previous_runs_files_only(tmp_path):
    train(_vae(), X, XV, TrainConfig(epochs=3, **CFG), out_dir=tmp_path, log=None)
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    train(_vae(), X, None, TrainConfig(epochs=1, **CFG), out_dir=tmp_path, overwrite=True,
          log=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.npz", "metrics.csv", "metrics.json", "notes.txt"], \
        "the old best.npz and run.json belong to the old run; notes.txt is not the run's"
    assert _epoch(tmp_path / "checkpoint.npz") == 1
    assert len(json.loads((tmp_path / "metrics.json").read_text())) == 1


def test_resume_from_a_folder_and_into_a_new_folder(tmp_path):
    straight = _vae()
    h_straight = train(straight, X, XV, TrainConfig(epochs=4, **CFG), out_dir=tmp_path / "a",
                       log=None)
    train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path / "b", log=None)
    here = _vae(seed=9)
    h = train(here, X, XV, TrainConfig(epochs=4, **CFG), out_dir=tmp_path / "b",
              resume=tmp_path / "b", log=None)                  # the folder, not the file
    assert _same_params(here.params, straight.params)
    assert _drop_seconds(h) == _drop_seconds(h_straight)
    fork = _vae(seed=9)
    train(fork, X, XV, TrainConfig(epochs=3, **CFG), out_dir=tmp_path / "c",
          resume=tmp_path / "a" / "checkpoint.npz", log=None)   # continue a 4-epoch run: nothing
    assert not (tmp_path / "c").exists()
    train(fork, X, XV, TrainConfig(epochs=5, **CFG), out_dir=tmp_path / "c",
          resume=tmp_path / "a", log=None)
    best = int(np.argmax([r["valid_elbo"] for r in json.loads(
        (tmp_path / "c" / "metrics.json").read_text())])) + 1
    assert _epoch(tmp_path / "c" / "best.npz") == best, "the new folder must get the best epoch"


def test_resuming_a_run_that_stopped_early_trains_nothing(tmp_path, monkeypatch):
    _scripted(monkeypatch, [-150.0, -100.0, -90.0, -95.0, -96.0])   # best at 2, patience 2
    cfg = dict(CFG, patience=2)
    hist = train(_vae(), X, XV, TrainConfig(epochs=10, **cfg), out_dir=tmp_path, log=None)
    assert len(hist) == 4
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    vae, lines = _vae(), []
    monkeypatch.setattr(vae, "loss_and_grads", lambda *a, **k: pytest.fail("trained"))
    again = train(vae, X, XV, TrainConfig(epochs=20, **cfg), out_dir=tmp_path, resume=tmp_path,
                  log=lines.append)
    assert again == hist and lines == [
        "nothing to train: the run stopped early after epoch 4 (no validation improvement in 2 "
        "epochs since epoch 2, which best.npz holds)"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_resuming_a_finished_run_trains_nothing(tmp_path):
    hist = train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path, log=None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                          # killed while writing the last metrics.json, say
    (tmp_path / f".tmp-{dead.pid}-0123abcd-metrics.json").write_text("[")
    lines = []
    again = train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path,
                  resume=tmp_path, log=lines.append)
    assert _drop_seconds(again) == _drop_seconds(hist)
    assert lines[0].startswith("nothing to train: the checkpoint has 2 epochs and epochs=2")
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "checkpoint.npz", "metrics.csv",
                                            "metrics.json"], "the dead writer's file is removed"


def test_best_npz_is_brought_up_to_the_best_epoch_on_resume(tmp_path, monkeypatch):
    """A folder as an older version could leave it when killed between its two saves of epoch 2
    (checkpoint first, then best): checkpoint.npz at epoch 2, the best epoch, but best.npz from
    epoch 1. Resuming must not carry that stale best.npz on (epoch 3 is worse than 2)."""
    _scripted(monkeypatch, [-150.0, -100.0, -90.0, -95.0])
    train(_vae(), X, XV, TrainConfig(epochs=1, **CFG), out_dir=tmp_path, log=None)
    epoch1 = (tmp_path / "best.npz").read_bytes()
    train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path, resume=tmp_path,
          log=None)
    (tmp_path / "best.npz").write_bytes(epoch1)                     # the stale best
    train(_vae(), X, XV, TrainConfig(epochs=3, **CFG), out_dir=tmp_path, resume=tmp_path,
          log=None)
    best = ckpt.load_checkpoint(tmp_path / "best.npz")
    assert best["meta"]["epoch"] == 2 and [h["valid_elbo"] for h in best["meta"]["history"]] \
        == [-100.0, -90.0]


def test_a_lost_best_epoch_is_reported(tmp_path, monkeypatch):
    """Best epoch 1, checkpoint at 2, best.npz deleted: the parameters are gone; say so."""
    _scripted(monkeypatch, [-150.0, -90.0, -100.0, -95.0])
    train(_vae(), X, XV, TrainConfig(epochs=2, **CFG), out_dir=tmp_path, log=None)
    (tmp_path / "best.npz").unlink()
    lines = []
    train(_vae(), X, XV, TrainConfig(epochs=3, **CFG), out_dir=tmp_path, resume=tmp_path,
          log=lines.append)
    assert lines[0].startswith("warning:") and "best validation ELBO was at epoch 1" in lines[0]


# ------------------------------------------------------------------------ Ctrl-C in the library
def test_keyboard_interrupt_mid_epoch_keeps_the_last_finished_epoch(tmp_path, monkeypatch):
    straight = _vae()
    train(straight, X, XV, TrainConfig(epochs=4, **CFG), log=None)
    vae, calls = _vae(), []
    original = vae.loss_and_grads

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 8:                    # 3 steps per epoch: the 2nd step of epoch 3
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(vae, "loss_and_grads", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(vae, X, XV, TrainConfig(epochs=4, **CFG), out_dir=tmp_path, log=None)
    assert _epoch(tmp_path / "checkpoint.npz") == 2
    again = _vae(seed=5)
    train(again, X, XV, TrainConfig(epochs=4, **CFG), out_dir=tmp_path, resume=tmp_path,
          log=None)
    assert _same_params(again.params, straight.params)


def test_keyboard_interrupt_while_saving_completes_the_saves(tmp_path):
    """Interrupted right after epoch 2 is finished (its line is logged, its files not yet
    written): the files of epoch 2 are written before the interrupt goes on."""
    def log(line):
        if line.startswith("epoch   2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_vae(), X, XV, TrainConfig(epochs=4, **CFG), out_dir=tmp_path, log=log)
    assert _epoch(tmp_path / "checkpoint.npz") == 2
    assert len(json.loads((tmp_path / "metrics.json").read_text())) == 2


# ------------------------------------------------------------------------ killed at any moment
KILLED = textwrap.dedent("""
    import sys
    import numpy as np
    from scratchvae.train import TrainConfig, train
    from scratchvae.vae import VAE
    x = (np.random.default_rng(0).random((400, 20)) < 0.3).astype(np.float32)
    xv = (np.random.default_rng(1).random((100, 20)) < 0.3).astype(np.float32)
    vae = VAE(20, 2, rng=np.random.default_rng(0), hidden=(64,))
    print("ready", flush=True)
    train(vae, x, xv, TrainConfig(epochs=int(sys.argv[2]), batch_size=16, lr=3e-3, seed=4),
          out_dir=sys.argv[1], resume=sys.argv[1] if sys.argv[3] == "resume" else None, log=None)
""")


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_bit_identically(tmp_path):
    """10 runs killed with SIGKILL at seeded random moments (training, or one of the four
    atomic saves of an epoch), each then resumed (or, with no checkpoint yet, started again) to
    the end: every checkpoint left behind loads, best.npz is never older than the best epoch of
    the checkpoint's history and never there without a checkpoint, no temporary file survives
    the next save, files are 0644 under umask 022, and the run ends bit-identical to an
    uninterrupted one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    script = tmp_path / "killed.py"
    script.write_text(KILLED)

    def start(folder, epochs, mode):
        return subprocess.Popen([sys.executable, str(script), str(folder), str(epochs), mode],
                                stdout=subprocess.PIPE, text=True, env=env)

    def finish(folder, epochs, mode):
        p = start(folder, epochs, mode)
        assert p.wait(timeout=120) == 0
        p.stdout.close()

    finish(tmp_path / "straight", 6, "new")
    reference = ckpt.load_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    t0 = time.perf_counter()
    finish(tmp_path / "timing", 6, "new")
    seconds = time.perf_counter() - t0          # includes start-up: kills land before or during
    old = os.umask(0o022)
    try:
        for trial, delay in enumerate(np.random.default_rng(7).uniform(0.0, seconds, 10)):
            folder = tmp_path / f"k{trial}"
            p = start(folder, 6, "new")
            assert p.stdout.readline() == "ready\n"
            time.sleep(delay * 0.6)
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stdout.close()
            if (folder / "checkpoint.npz").exists():
                meta = ckpt.load_checkpoint(folder / "checkpoint.npz")["meta"]
                best = int(np.argmax([h["valid_elbo"] for h in meta["history"]])) + 1
                if (folder / "best.npz").exists():
                    assert _epoch(folder / "best.npz") >= best, f"trial {trial}: stale best.npz"
                else:                       # killed between the two first saves of the run
                    assert meta["epoch"] == 1, f"trial {trial}: best.npz missing"
            else:
                assert not (folder / "best.npz").exists(), f"trial {trial}: best, no checkpoint"
            mode = "resume" if (folder / "checkpoint.npz").exists() else "new"
            finish(folder, 6, mode)
            final = ckpt.load_checkpoint(folder / "checkpoint.npz")
            assert _same_params(final["params"], reference["params"]), f"trial {trial}"
            assert final["meta"]["rng_state"] == reference["meta"]["rng_state"]
            scores = [h["valid_elbo"] for h in final["meta"]["history"]]
            assert _epoch(folder / "best.npz") == int(np.argmax(scores)) + 1, f"trial {trial}"
            names = sorted(os.listdir(folder))
            assert names == ["best.npz", "checkpoint.npz", "metrics.csv", "metrics.json"], \
                f"trial {trial}: {names}"
            assert all((folder / n).stat().st_mode & 0o777 == 0o644 for n in names)
    finally:
        os.umask(old)


# ------------------------------------------------------------------------ TrainConfig
@pytest.mark.parametrize("field,value,error", [
    ("dynamic_binarization", "yes", TypeError), ("dynamic_binarization", np.True_, TypeError),
    ("dynamic_binarization", 1, TypeError), ("epochs", 2.0, TypeError), ("epochs", "3", TypeError),
    ("epochs", 0, ValueError), ("batch_size", True, TypeError), ("batch_size", 0, ValueError),
    ("optimizer", 3, TypeError), ("optimizer", "adamw", ValueError), ("lr", "1e-3", TypeError),
    ("lr", True, TypeError), ("lr", 0.0, ValueError), ("lr", float("inf"), ValueError),
    ("lr", float("nan"), ValueError), ("estimator", None, TypeError),
    ("estimator", "elbo", ValueError), ("n_samples", 0, ValueError), ("n_samples", 1.5, TypeError),
    ("warmup_epochs", -1.0, ValueError), ("warmup_epochs", "2", TypeError),
    ("patience", 0, ValueError), ("patience", 1.5, TypeError), ("seed", -1, ValueError),
    ("seed", 1.0, TypeError), ("seed", [], ValueError), ("seed", [1, "a"], TypeError),
    ("seed", (1, 2), TypeError), ("divergence_factor", 0.0, ValueError),
    ("divergence_factor", "x", TypeError),
])
def test_train_config_checks_every_field(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value}).validate()


def test_train_config_stores_numpy_numbers_as_python_numbers():
    """NumPy integers are integers, but JSON (the checkpoint's metadata) cannot hold them."""
    cfg = TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), lr=np.float32(0.5),
                      seed=[np.int64(1), 2], patience=np.int64(2)).validate()
    assert json.loads(json.dumps(cfg.__dict__)) == {**cfg.__dict__}
    assert type(cfg.epochs) is int and type(cfg.lr) is float and cfg.seed == [1, 2]


# ------------------------------------------------------------------------ BLAS threads
def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_training_runs_with_the_blas_threads_asked_for(monkeypatch):
    seen = []
    vae = _vae()
    original = vae.loss_and_grads
    monkeypatch.setattr(vae, "loss_and_grads",
                        lambda *a, **k: (seen.append(_blas_threads()), original(*a, **k))[1])
    before = _blas_threads()
    for threads in (1, 2):
        train(vae, X, XV, TrainConfig(epochs=1, **CFG), threads=threads, log=None)
        assert all(s == [threads] * len(s) for s in seen), (threads, seen)
        assert _blas_threads() == before, "the BLAS setting must be restored after training"
        seen.clear()
    # None with OPENBLAS_NUM_THREADS set (tests/conftest.py sets it): BLAS is left as it is
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    with threadpool_limits(2, user_api="blas"):
        train(vae, X, XV, TrainConfig(epochs=1, **CFG), log=None)
    assert all(s == [2] * len(s) for s in seen), seen
    with pytest.raises(ValueError, match="threads must be >= 0"):
        train(vae, X, XV, TrainConfig(epochs=1, **CFG), threads=-1, log=None)
    with pytest.raises(TypeError, match="threads must be an integer"):
        train(vae, X, XV, TrainConfig(epochs=1, **CFG), threads="2", log=None)


# ------------------------------------------------------------------------ log p(x) progress
def test_log_likelihood_reports_progress_by_default(monkeypatch, capsys):
    vae = _vae()
    monkeypatch.setattr(evaluate, "PROGRESS_SECONDS", 0.0)         # a line after every batch
    evaluate.log_likelihood(vae, X, rng=np.random.default_rng(0), K=4, batch_size=16)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" examples")[0] for ln in lines] == [
        "log p(x), K = 4: 16/40", "log p(x), K = 4: 32/40", "log p(x), K = 4: 40/40"]
    assert "s left" in lines[0] and lines[-1].endswith(", done"), lines
    evaluate.log_likelihood(vae, X, rng=np.random.default_rng(0), K=4, log=None)
    calls = []
    evaluate.log_likelihood(vae, X, rng=np.random.default_rng(0), K=4, batch_size=16,
                            progress=lambda done, total: calls.append((done, total)))
    assert capsys.readouterr().out == "" and calls == [(16, 40), (32, 40), (40, 40)]
    monkeypatch.setattr(evaluate, "PROGRESS_SECONDS", 10.0)        # quick work: no lines
    evaluate.log_likelihood(vae, X, rng=np.random.default_rng(0), K=4)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="log"):
        evaluate.log_likelihood(vae, X, rng=np.random.default_rng(0), K=4, log="print")
