"""Test-suite settings.

One BLAS thread: the suite's matrices are small, and on a 2-core machine running other work a
multi-threaded BLAS spends more time synchronizing than computing (a demo test measured 35 s
with 2 threads vs 6 s with 1). Set before NumPy is first imported by a test module; a value
already in the environment wins.
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")
