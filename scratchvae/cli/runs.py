"""Run folders from the command line: ``train --out``, ``--overwrite``, ``--resume``, Ctrl-C,
and ``sample --out``.

- A new run refuses an ``--out`` that holds files (``--overwrite`` or ``--resume`` are the two
  ways on), and an ``--out`` that is a file (:func:`check_out`).
- ``--resume RUN_DIR_OR_CHECKPOINT`` reads the model and training options from the checkpoint
  and the data options from the ``run.json`` beside it; an option typed on the command line
  must agree with them, except ``--epochs`` (which may grow), ``--divergence-factor``,
  ``--out`` and ``--threads`` (:func:`options_from_checkpoint`). Which options were typed comes
  from :func:`scratchvae.cli.given_options`.
- Ctrl-C: the trainer completes the files of the last finished epoch; :func:`report_interrupt`
  prints what is saved and the command that continues; the exit code is 130.
- The trainer's messages name library arguments (``lr=0.01``); :func:`as_flags` turns them into
  the flags that set them (``--lr 0.01``).
"""
from __future__ import annotations

import os
import re
import shlex
import sys

from .support import parse_hidden, parse_obs_scale


# Library argument names in the trainer's messages -> the flags that set them.
FLAGS = {"lr": "--lr", "min_obs_scale": "--min-obs-scale", "n_samples": "--samples",
         "epochs": "--epochs", "divergence_factor": "--divergence-factor"}


def as_flags(text: str) -> str:
    """Library argument names in ``text`` -> command-line flags."""
    text = text.replace("divergence_factor=None", "--divergence-factor 0")
    return re.sub(r"\b(" + "|".join(FLAGS) + r")=", lambda m: FLAGS[m.group(1)] + " ", text)


def report_interrupt(out, epochs) -> None:
    """After Ctrl-C: which epoch --out holds, and the command that continues the run."""
    from ..checkpoint import load_checkpoint
    path = os.path.join(out, "checkpoint.npz")
    try:
        epoch = load_checkpoint(path)["meta"]["epoch"]
    except (OSError, ValueError, KeyError):
        epoch = None
    if epoch is None:
        print("interrupted before the first epoch was saved: nothing to resume", file=sys.stderr)
        return
    print(f"interrupted: {path} holds epoch {epoch} of {epochs}; to continue, run\n"
          f"  python -m scratchvae train --resume {shlex.quote(out)}", file=sys.stderr, flush=True)


def add_out_options(parser, default: str, out_help: str, overwrite_help: str) -> None:
    """``--out DIR`` (the run folder) and ``--overwrite`` (reuse a folder that holds a run)."""
    parser.add_argument("--out", default=default, metavar="DIR", help=out_help)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)


def check_counts(args) -> None:
    """--n-train and --n-valid (when given) must be >= 1 (the loader would round 0 up to 1)."""
    for name in ("n_train", "n_valid"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def check_out(args) -> None:
    """Refuse an --out that is a file, or a folder holding files that this run would replace."""
    from ..runs import contents
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out!r} is a file; expected a folder (created if missing)")
    here = contents(args.out)
    if not here or args.overwrite:
        return
    if args.resume is not None and os.path.samefile(args.out, os.path.dirname(
            os.path.abspath(args.resume))):
        return
    shown = ", ".join(here[:4]) + (f" and {len(here) - 4} more" if len(here) > 4 else "")
    raise ValueError(f"--out {args.out!r} already holds files ({shown}): pass --overwrite to "
                     f"replace that run's checkpoints and metrics, or --resume "
                     f"{shlex.quote(args.out)} to continue it, or choose another --out")


# (flag dest, model config key, flag text -> config value, config value -> flag text)
MODEL_FLAGS = (("z_dim", "z_dim", int, int), ("hidden", "hidden", lambda t: list(parse_hidden(t)),
                                               lambda v: ",".join(map(str, v))),
               ("activation", "activation", str, str), ("posterior", "posterior", str, str),
               ("flow_length", "flow_length", int, int),
               ("likelihood", "likelihood", str, str),
               ("obs_scale", "obs_scale", parse_obs_scale,
                lambda v: "learned" if v is None else repr(v)),
               ("min_obs_scale", "min_obs_scale", float, float),
               ("init_obs_scale", "init_obs_scale", float, float), ("dtype", "dtype", str, str))
# (flag dest, TrainConfig field)
TRAIN_FLAGS = (("batch_size", "batch_size"), ("optimizer", "optimizer"), ("lr", "lr"),
               ("estimator", "estimator"), ("samples", "n_samples"),
               ("warmup_epochs", "warmup_epochs"), ("patience", "patience"), ("seed", "seed"))


def options_from_checkpoint(args) -> None:
    """``--resume``: set the model, training and data options of ``args`` from the checkpoint and
    the run.json beside it; an option typed on the command line must agree with them (only
    --epochs may grow, and --divergence-factor, --out, --threads may change)."""
    from ..checkpoint import load_checkpoint
    from ..runs import checkpoint_path
    from .support import DATA_KEYS, RUN_FILE, read_run
    args.resume = checkpoint_path(args.resume)
    meta = load_checkpoint(args.resume)["meta"]
    model, saved = meta.get("model"), meta.get("train")
    if not isinstance(model, dict) or not isinstance(saved, dict) or "n_classes" in model \
            or isinstance(saved.get("seed"), list):
        raise ValueError(f"--resume {args.resume}: this checkpoint was not written by the train "
                         f"command (no model/train record, a conditional model or a list seed); "
                         f"resume it with scratchvae.train.train(..., resume=...)")
    same = lambda v: v                                                          # noqa: E731
    _adopt(args, [(d, model[k], to_value, to_text) for d, k, to_value, to_text in MODEL_FLAGS
                  if k in model], f"the checkpoint {args.resume}")
    _adopt(args, [(d, saved[k], same, same) for d, k in TRAIN_FLAGS if k in saved],
           f"the checkpoint {args.resume}")
    run = read_run(args.resume)
    where = os.path.join(os.path.dirname(args.resume) or ".", RUN_FILE)
    _adopt(args, [(k, run[k], same, same) for k in DATA_KEYS if k in run], where)
    given = getattr(args, "given", set())
    if "epochs" in given and args.epochs < meta["epoch"]:
        raise ValueError(f"--epochs {args.epochs} is fewer than the {meta['epoch']} epochs the "
                         f"checkpoint {args.resume} has trained")
    if "epochs" not in given:
        args.epochs = saved["epochs"]
    if "divergence_factor" not in given:
        args.divergence_factor = saved.get("divergence_factor", args.divergence_factor) or 0
    if "out" not in given:
        args.out = os.path.dirname(args.resume) or "."


def _adopt(args, pairs, source) -> None:
    """For each (dest, recorded value, flag text -> value, value -> flag text): refuse a typed
    option that differs from the record, else set the option to the record."""
    given = getattr(args, "given", set())
    for dest, value, to_value, to_text in pairs:
        if dest not in given:
            setattr(args, dest, to_text(value))
            continue
        typed = to_value(getattr(args, dest))
        if dest == "data" and typed != "embedded":
            typed = os.path.abspath(typed)
        if typed != value and not (dest == "binarize" and typed == "auto"):
            flag = "--" + dest.replace("_", "-")
            raise ValueError(f"{flag} {getattr(args, dest)} contradicts {source} ({value}); "
                             f"drop {flag} to continue the run, or start a new run in another "
                             f"--out")


def png_path(out) -> str:
    """``sample --out``: a .png file, or a folder (existing, or ending in /) for samples.png."""
    if os.path.isdir(out) or out.endswith(("/", os.sep)):
        return os.path.join(out, "samples.png")
    if not out.lower().endswith(".png"):
        raise ValueError(f"--out must name a .png file or a folder (an existing one, or end it "
                         f"with /), got {out!r}")
    return out
