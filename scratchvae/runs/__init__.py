"""A run folder: the files :func:`scratchvae.train.train` writes, their order, and who may write.

    checkpoint.npz   the last finished epoch (parameters, optimizer, rng state, history)
    best.npz         the epoch with the best validation score so far (:func:`validation_scores`)
    metrics.json, metrics.csv   one row per epoch
    run.json         (command line only) the data options, for evaluate, sample and --resume

Rules, each answering a way a run was lost or mixed up:

- A new run refuses a folder that already holds files (another run's checkpoints would be
  replaced silently). The two ways on: ``overwrite=True`` (the files above are deleted before
  the first epoch; other files are left alone) or resuming the run that is there. A run.json
  alone (a command-line run stopped before its first checkpoint) does not count.
- After every epoch, ``best.npz`` is written before ``checkpoint.npz``, then the metrics. A
  process killed in between leaves a ``best.npz`` as new as the checkpoint or one epoch newer
  (that epoch is retrained bit for bit on resume and written again), never older than the best
  epoch in the checkpoint's history. The exception is the first save of a run: the checkpoint
  comes first, so that no ``best.npz`` exists without a checkpoint to resume; a kill right after
  it leaves no ``best.npz``, which resuming rebuilds from the checkpoint (:func:`restore_best`).
- Every file is written atomically (:mod:`scratchvae.checkpoint`); temporary files of a killed
  process are removed when the next run starts in the folder (resuming one that has nothing left
  to train included) and by every save into it.
"""
from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from ..checkpoint import TEMP_NAME, load_checkpoint, save_checkpoint, write_text_atomic
from ..validate import check_bool, check_mapping, check_path

CHECKPOINT, BEST = "checkpoint.npz", "best.npz"
RUN_FILES = (CHECKPOINT, BEST, "metrics.json", "metrics.csv", "run.json")


def validation_scores(history) -> list:
    """The numbers early stopping and ``best.npz`` compare, one per metrics row (higher is better).

    The validation IWAE bound ``valid_iwae`` when every row has one (a run trained on the IWAE
    bound L_K is judged by L_K on the validation set, with the training K), else the validation
    ELBO ``valid_elbo``; -inf for a row without validation. ``history`` is a list of dicts.
    """
    key = validation_key(history)
    return [h.get(key, -np.inf) for h in history]


def validation_key(history) -> str:
    """``"valid_iwae"`` when every row of ``history`` has one, else ``"valid_elbo"``: the key
    :func:`validation_scores` compares. TypeError unless ``history`` is a list of dicts."""
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise TypeError(f"history must be a list of metrics rows (dicts), got "
                        f"{type(history).__name__} {history!r:.80}")
    return "valid_iwae" if history and all("valid_iwae" in h for h in history) else "valid_elbo"


def checkpoint_path(resume) -> str:
    """The checkpoint a ``resume`` argument means: a run folder's checkpoint.npz, or the file.

    ``resume`` is a str or os.PathLike (TypeError naming it otherwise).
    """
    path = check_path("resume", resume)
    return os.path.join(path, CHECKPOINT) if os.path.isdir(path) else path


def contents(folder) -> list:
    """What makes ``folder`` another run's: its entries other than our temporary files, and
    other than a run.json without a checkpoint (empty if the folder does not exist)."""
    if not os.path.isdir(folder):
        return []
    names = sorted(n for n in os.listdir(folder) if not TEMP_NAME.match(n))
    return [] if names == ["run.json"] else names


def check_out_dir(out_dir, *, overwrite: bool, resume=None) -> list:
    """Refuse an ``out_dir`` that is a file, or a non-empty folder that is not the resumed run's
    (unless ``overwrite``); return the files to delete before the first epoch (``overwrite``).

    Raises
    ------
    TypeError
        ``overwrite`` is not a bool; ``out_dir`` or ``resume`` is neither None nor a str or
        os.PathLike.
    ValueError
        ``out_dir`` exists and is not a folder, or holds files and neither ``overwrite`` nor
        ``resume`` (with the checkpoint inside ``out_dir``) was given.
    """
    check_bool("overwrite", overwrite)
    if resume is not None:
        resume = check_path("resume", resume)
    if out_dir is None:
        return []
    out_dir = check_path("out_dir", out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir {out_dir!r} is a file; expected a folder for the run's "
                         f"checkpoints and metrics")
    here = contents(out_dir)
    if not here or (resume is not None and _same_folder(out_dir, os.path.dirname(
            os.path.abspath(resume)))):
        return []
    if overwrite:
        return [os.path.join(out_dir, n) for n in RUN_FILES if n in here]
    shown = ", ".join(here[:4]) + (f" and {len(here) - 4} more" if len(here) > 4 else "")
    raise ValueError(f"out_dir {out_dir!r} already holds files ({shown}); a new run would replace "
                     f"them. Pass overwrite=True to replace that run's checkpoints and metrics, "
                     f"or resume={os.path.join(out_dir, CHECKPOINT)!r} to continue it")


def _same_folder(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_outputs(out_dir, params, optimizer_state, meta) -> None:
    """After an epoch: best.npz (if this epoch is the best so far), checkpoint.npz, then the
    metrics of ``meta["history"]``; in this order (see the module docstring).

    ``out_dir`` a str or os.PathLike; ``meta`` a dict whose ``"history"`` is a non-empty list of
    dicts (the metrics rows); ``params`` and ``optimizer_state`` as for ``save_checkpoint``.
    """
    out_dir = check_path("out_dir", out_dir)
    history = check_mapping("meta", meta).get("history")
    if not isinstance(history, list):
        raise TypeError(f"meta['history'] must be a list of metrics rows (dicts), got "
                        f"{type(history).__name__}")
    if not history:
        raise ValueError("meta['history'] must hold at least the epoch just finished, got []")
    os.makedirs(out_dir, exist_ok=True)
    scores = validation_scores(history)
    improved = "valid_elbo" in history[-1] and scores[-1] > max(scores[:-1], default=-np.inf)
    checkpoint, best = os.path.join(out_dir, CHECKPOINT), os.path.join(out_dir, BEST)
    first = not os.path.exists(checkpoint)
    for path in ([checkpoint, best] if first else [best, checkpoint]):
        if path == checkpoint or improved:
            save_checkpoint(path, params, optimizer_state, meta)
    write_text_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(history, indent=1))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for h in history for k in h)))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(os.path.join(out_dir, "metrics.csv"), buf.getvalue())


def restore_best(out_dir, source, ck: dict, log) -> None:
    """On resume: make ``out_dir``/best.npz hold the best epoch of the checkpoint's history.

    It already does when the run was written by this version; otherwise (an older version, a
    deleted file, a run continued into a new folder) it is rebuilt from the checkpoint when the
    checkpoint is the best epoch, or copied from ``best.npz`` beside ``source``; failing both,
    ``log`` says that the best parameters are lost.
    """
    history = ck["meta"]["history"]
    if not history or "valid_elbo" not in history[0]:
        return
    best = int(np.argmax(validation_scores(history))) + 1
    target = os.path.join(out_dir, BEST)
    have = _epoch_of(target)
    if have is not None and have >= best:
        return
    if ck["meta"]["epoch"] == best:
        save_checkpoint(target, ck["params"], ck["optimizer"], ck["meta"])
        return
    beside = os.path.join(os.path.dirname(os.path.abspath(source)), BEST)
    if _epoch_of(beside) == best:
        old = load_checkpoint(beside)
        save_checkpoint(target, old["params"], old["optimizer"], old["meta"])
        return
    if log:
        log(f"warning: {target} is {'missing' if have is None else f'from epoch {have}'}, but the "
            f"best validation {'L_K' if validation_key(history) == 'valid_iwae' else 'ELBO'} "
            f"was at epoch {best}; those parameters are not on disk. best.npz will be written at "
            f"the next improvement")


def _epoch_of(path):
    try:
        return load_checkpoint(path)["meta"].get("epoch")
    except (OSError, ValueError):
        return None
