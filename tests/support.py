"""Helpers shared by the test files: run a demo module or the command line as a user would."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_demo(name):
    """Import ``demos/<name>.py`` as a module (its ``__main__`` block does not run)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "demos" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, cwd, check=True):
    """``python -m scratchvae <args>`` in ``cwd`` with the repository on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "scratchvae", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_clean_error(proc, *needles):
    """Exit code 2 and exactly one line on stderr, starting 'error:', naming the problem."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
