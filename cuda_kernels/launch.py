"""Grid sizes and launch serialization for the CUDA kernels.

Kernels use grid-stride loops, so any grid is correct; the sizes here only trade
parallelism for work per thread.  Under the simulator (one Python thread per CUDA
thread) grids are tiny, and launches are serialized: the simulator fails when two
Python threads launch at once (``'Thread' object has no attribute 'threadIdx'``), which
Dask's threaded scheduler would otherwise do.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

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
    rows = max(1, min(n_out, 65535))
    return max(1, min(per_output, MAX_BLOCKS // rows)), rows


def thread_grid(n: int) -> int:
    """Blocks for a one-thread-per-item kernel over ``n`` items."""
    blocks = -(-n // threads_per_block())
    return max(1, min(blocks, SIM_BLOCKS if simulator() else MAX_BLOCKS))


@contextlib.contextmanager
def serialized() -> Iterator[None]:
    """Hold a lock around a launch when the simulator is on; no-op on a real GPU."""
    if simulator():
        with _simulator_lock:
            yield
    else:
        yield
