"""Grid sizes and launch serialization for the CUDA kernels.

Kernels use grid-stride loops, so any grid is correct; the sizes here only trade
parallelism for work per thread.  Under the simulator (one Python thread per CUDA
thread) grids are tiny, and launches are serialized: the simulator fails when two
Python threads launch at once (``'Thread' object has no attribute 'threadIdx'``), which
Dask's threaded scheduler would otherwise do.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import numba

#: Threads per block (a power of two; the shared-memory tree relies on it).
THREADS = 256
#: Threads per block under the simulator, where each thread is a Python thread.
SIM_THREADS = 32
#: Upper bound on the blocks cooperating on one output under the simulator.
SIM_BLOCKS = 2
#: Elements each thread should handle at least before another block is added.
ITEMS_PER_THREAD = 16
#: Total blocks of a launch on a real GPU (several waves on a 132-SM H100).
MAX_BLOCKS = 4096
#: Column kernels' block: adjacent outputs along x (a warp reads 32 adjacent values of
#: a row), rows along y; and the same under the simulator.
COLUMN_BLOCK = (32, 8)
SIM_COLUMN_BLOCK = (8, 4)
#: Column kernels split the rows over gridDim.y until the grid has this many blocks,
#: while each thread keeps at least MIN_ROWS_PER_THREAD rows (PyTorch's rule of thumb).
COLUMN_TARGET_BLOCKS = 1024
MIN_ROWS_PER_THREAD = 256
#: Largest gridDim.y (a hardware limit); larger counts loop in the kernels.
MAX_GRID_Y = 65535

_simulator_lock = threading.Lock()


def simulator() -> bool:
    """True when kernels run in Numba's CUDA simulator."""
    return bool(numba.config.ENABLE_CUDASIM)


def threads_per_block() -> int:
    """Threads per block for this target."""
    return SIM_THREADS if simulator() else THREADS


def block_grid(n_out: int, n_red: int, items: int = ITEMS_PER_THREAD) -> tuple[int, int]:
    """``(blocks per output, output rows in the grid)`` for a block reduction whose
    threads each take at least ``items`` elements: from the element counts alone, so
    the association order (and the bits) are the same on any GPU."""
    threads = threads_per_block()
    per_output = -(-n_red // (threads * items))
    if simulator():
        return max(1, min(per_output, SIM_BLOCKS)), max(1, min(n_out, SIM_BLOCKS))
    rows = max(1, min(n_out, MAX_GRID_Y))
    return max(1, min(per_output, MAX_BLOCKS // rows)), rows


def column_block() -> tuple[int, int]:
    """``(x, y)`` threads of a column kernel's block on this target."""
    return SIM_COLUMN_BLOCK if simulator() else COLUMN_BLOCK


def column_grid(n_out: int, n_red: int, items: int) -> tuple[int, int]:
    """``(column tiles, row splits)`` for a column kernel: one tile per ``x`` outputs,
    the rows split over gridDim.y only when the tiles alone make fewer than
    :data:`COLUMN_TARGET_BLOCKS` blocks.  From the element counts alone (the bits do
    not depend on the GPU)."""
    tx, ty = column_block()
    tiles = -(-n_out // tx)
    if simulator():
        return max(1, min(tiles, SIM_BLOCKS)), max(1, min(-(-n_red // (ty * items)), SIM_BLOCKS))
    wanted = -(-COLUMN_TARGET_BLOCKS // tiles)
    most = max(1, n_red // (ty * MIN_ROWS_PER_THREAD))
    return max(1, min(tiles, MAX_BLOCKS * 16)), max(1, min(wanted, most, MAX_GRID_Y))


def thread_grid(n: int) -> int:
    """Blocks for a one-thread-per-item kernel over ``n`` items."""
    blocks = -(-n // threads_per_block())
    return max(1, min(blocks, SIM_BLOCKS if simulator() else MAX_BLOCKS))


#: Python's thread switch interval during a simulated launch.  The simulator runs each
#: CUDA thread as a Python thread and polls them from the launching thread, so every
#: syncthreads waits for switches: at Python's default 5 ms a launch of a 60-element
#: chunk took 268 ms here, at 0.2 ms 40 ms.
SIM_SWITCH_INTERVAL = 2e-4


def _lock_simulated_shared_arrays() -> None:
    """Make the simulator's ``cuda.shared.array`` allocate once per block under a lock.

    Numba's simulator (``FakeCUDAShared.array``) looks up a block's array by source line
    and creates it if missing, unlocked: two CUDA threads (Python threads) that both
    miss make two arrays, and the block's threads no longer share memory.  At the short
    switch interval above this happened (a CI run: min of uint64 gave a stale partial, 0
    or 1, in 2 of 359 simulated tests).  The same lookup, behind a lock."""
    import numpy as np
    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    shared = kernelapi.FakeCUDAShared
    if getattr(shared.array, "__numbadask_locked__", False):
        return
    unlocked, lock = shared.array, threading.Lock()

    @functools.wraps(unlocked)
    def array(self: Any, shape: Any, dtype: Any) -> Any:
        with lock:
            if shape == 0:
                return unlocked(self, shape, dtype)
            # The caller's line identifies the allocation, as in the simulator's own.
            caller = traceback.extract_stack(sys._getframe(), limit=2)[0][0:2]
            held = self._allocations.get(caller)
            if held is None:
                if isinstance(dtype, types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                held = self._allocations[caller] = np.empty(shape, dtype)
            return held

    array.__numbadask_locked__ = True  # type: ignore[attr-defined]
    shared.array = array


@contextlib.contextmanager
def serialized() -> Iterator[None]:
    """Hold a lock around a launch when the simulator is on (with a short thread
    switch interval, restored after, and shared arrays made under a lock:
    :func:`_lock_simulated_shared_arrays`); no-op on a real GPU."""
    if simulator():
        _lock_simulated_shared_arrays()
        with _simulator_lock:
            before = sys.getswitchinterval()
            sys.setswitchinterval(SIM_SWITCH_INTERVAL)
            try:
                yield
            finally:
                sys.setswitchinterval(before)
    else:
        yield
