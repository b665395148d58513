"""Command-line interface: ``python -m scratchvae <command> [options]``.

Each command lives in its own module that exposes ``register(subparsers)``; the module adds its
subparser and sets ``func`` (called with the parsed arguments, returns an exit code). Heavy
imports happen inside ``func`` so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute commands, in the order ``--help`` lists them.
COMMAND_MODULES = ("scratchvae.cli.demo", "scratchvae.cli.vae", "scratchvae.cli.ising")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scratchvae",
        description="scratchvae: variational inference from scratch in NumPy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; returns its exit code: 0 done, 2 a clear error (one line on stderr),
    130 interrupted by Ctrl-C (what was saved and how to go on is printed, no traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FloatingPointError, OSError) as exc:  # OSError: files, folders
        print(f"error: {exc}", file=sys.stderr)
        return 2


def given_options(argv) -> set:
    """The ``dest`` names of the options typed on the command line (defaults excluded), so a
    command can tell ``--epochs 10`` from the default 10 (``train --resume`` needs to)."""
    parser = build_parser()
    for sub in parser._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "func"}
