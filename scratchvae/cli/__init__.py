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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
