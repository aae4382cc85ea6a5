"""The process pool of ``--scheduler processes``: made once for the whole job, every
process started and warmed before any timer (Dask's own pool would start its processes,
and compile in each, inside the first timed compute).
"""

from __future__ import annotations

import os
from typing import Any

_POOL_BARRIER: Any = None  # in each pool process: the barrier of run_in_every_process


#: How long the processes of a new pool wait for each other at their first task (a
#: cold Numba cache compiles for tens of seconds in each).
POOL_START_TIMEOUT_S = 900.0


def _start_pool_process(barrier: Any, initializer: Any) -> None:
    global _POOL_BARRIER
    _POOL_BARRIER = barrier
    initializer()


def process_pool(n_workers: int | None = None) -> Any:
    """The process pool Dask's "processes" scheduler would make for one compute
    (``num_workers`` processes of ``multiprocessing.context``, seeded by Dask's
    initializer), made here so that it outlives one compute: pass it as Dask's ``pool``.
    Every process is started before it returns.  Shut it down after.

    Examples
    --------
    >>> pool = process_pool(2)
    >>> len(set(run_in_every_process(pool, os.getpid)))
    2
    >>> pool.shutdown()
    """
    import functools
    from concurrent.futures import ProcessPoolExecutor

    import dask
    from dask.multiprocessing import get_context, initialize_worker_process

    from numbadask.engine.graph import local_thread_count

    n = n_workers or local_thread_count()
    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        os.environ["PYTHONHASHSEED"] = "6640"  # as dask.multiprocessing.get: the same hashes in every process
    context = get_context()
    initializer = functools.partial(initialize_worker_process, user_initializer=dask.config.get("multiprocessing.initializer", None))
    pool = ProcessPoolExecutor(n, mp_context=context, initializer=_start_pool_process, initargs=(context.Barrier(n), initializer))
    # Start them all now: a new pool starts a process per task while none is idle, so n
    # tasks held at the barrier reach n processes; later ones find them all there.
    run_in_every_process(pool, os.getpid)
    return pool


def _in_a_pool_process(func: Any, args: tuple) -> Any:
    try:
        result = func(*args)
    except BaseException:
        _POOL_BARRIER.abort()  # the others stop waiting for this one
        raise
    _POOL_BARRIER.wait(POOL_START_TIMEOUT_S)  # hold this process: the next task goes to another
    return result


def run_in_every_process(pool: Any, func: Any, *args: Any) -> list[Any]:
    """``func(*args)`` once in each process of a :func:`process_pool`, starting every
    one of them; returns when all have run it."""
    futures = [pool.submit(_in_a_pool_process, func, args) for _ in range(pool._max_workers)]
    return [f.result() for f in futures]
