"""BLAS threads for the library's long loops (training, importance-sampled log p(x)).

Our matrices are small (a minibatch of 128 rows times 784 x 400 weights): a multi-threaded BLAS
spends more time handing out and synchronizing the work than computing it, and when other
processes already use the cores it waits for them. Measured on this project's 2-core machine
with other jobs running (load average 2): one epoch of a 784-400-20 VAE on 3,000 digits took
0.17 s with one OpenBLAS thread and 1.4-1.9 s with two; a 784-64-8 model 0.05 s against
0.45-0.50 s. (On an idle machine two threads were 1.3x faster for the 784-400-20 model, see
``bench/README.md``: a gain of 30% against a loss of 8-10x.) So the library runs these loops
with one BLAS thread unless told otherwise, like the command line does
(:mod:`scratchvae.cli.support`, ``--threads``).

The rule, for the ``threads`` argument of :func:`scratchvae.train.train` and
:func:`scratchvae.evaluate.log_likelihood`:

    None (default)  one thread, unless OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or MKL_NUM_THREADS
                    is set in the environment: then BLAS is left as that variable configured it
    0               leave BLAS as it is
    n >= 1          n threads for the duration of the call

The limit is applied with ``threadpoolctl.threadpool_limits`` (which calls the BLAS library's
own ``set_num_threads``) and restored when the call returns. Some BLAS builds round a
product differently with another thread count: keep it fixed when bit-identical reruns matter.
"""
from __future__ import annotations

import contextlib
import os

from ..validate import check_int

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(threads=None):
    """Context manager limiting BLAS to ``threads`` threads (see the module docstring).

    Raises
    ------
    TypeError
        ``threads`` is not None or an integer.
    ValueError
        ``threads`` < 0.
    """
    if threads is not None:
        check_int("threads", threads, minimum=0)
    elif any(v in os.environ for v in THREAD_VARS):
        threads = 0
    else:
        threads = 1
    if threads == 0:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads, user_api="blas")
