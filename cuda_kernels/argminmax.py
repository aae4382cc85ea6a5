"""argmin/argmax of a chunk on the GPU: the partial state of argmin, argmax, nanargmin
and nanargmax.

Per output: the best non-NaN value, its first index, and the first NaN's index (-1:
none), declared here as a step that sees each element's index and a merge (ties go to
the smaller index, so the merge is commutative); the factory (:mod:`.factory`) makes
the kernels from them, and the result is the same on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, int64

from numbadask.cpu.layout import plan_walk

from .factory import GpuReduction, reduce


@cuda.jit(device=True)
def _first(a, b):
    """The smaller of two indices, -1 meaning none."""
    return a if a >= 0 and (b < 0 or a < b) else b


@functools.lru_cache(maxsize=None)
def reduction(dtype: np.dtype, want_max: bool) -> GpuReduction:
    """The factory's (best value, its index, first NaN's index) reduction."""
    value_type = numba.from_dtype(dtype)

    @cuda.jit(device=True)
    def better(v, j, best_v, best_j):
        if j < 0:
            return False
        if best_j < 0:
            return True
        if want_max:
            return v > best_v or (v == best_v and j < best_j)
        return v < best_v or (v == best_v and j < best_j)

    @cuda.jit(device=True)
    def step(s, v, j, aux):
        j = int64(j)
        if v != v:
            return (s[0], s[1], _first(s[2], j))
        if better(v, j, s[0], s[1]):
            return (v, j, s[2])
        return s

    @cuda.jit(device=True)
    def merge(a, b):
        nan = _first(a[2], b[2])
        if better(b[0], b[1], a[0], a[1]):
            return (b[0], b[1], nan)
        return (a[0], a[1], nan)

    name = f"arg{'max' if want_max else 'min'}_{dtype}"
    # The column kernel: 8 loads in flight, not 16; with 16 its index-aware step (an
    # int64 index per load) spilled 64-100 bytes within 64 registers (float32).
    return GpuReduction(name, (value_type, int64, int64), step, merge, max_column_loads=8)


def argminmax(chunk: Any, axis: int | None, want_max: bool, xp: Any = np) -> tuple[Any, Any, Any]:
    """Best non-NaN value, its first index along ``axis`` (flat C index for None; -1
    where there is none) and the first NaN's index, per output position, flat, on the
    chunk's device (the CPU kernel of the same name computes the same)."""
    from numbadask.cpu.args import rows_view

    rows = rows_view(chunk, axis, xp)
    if any(s < 0 for s in rows.strides):
        # The walk turns reversed axes forward, which would reverse the indices too.
        rows = xp.ascontiguousarray(rows)
    if rows.dtype == np.bool_:
        rows = rows.view(np.uint8)
    elif rows.dtype == np.float16:
        rows = rows.astype(np.float32)  # the one widening copy, as on the CPU
    # One reduced axis: the walk's element index is the index along it.
    walk = plan_walk(rows, (1,), xp)
    # No best value yet: NaN for floats (what an all-NaN row reports, as on the CPU).
    identity = (np.nan if rows.dtype.kind == "f" else 0, -1, -1)
    return reduce(reduction(rows.dtype, bool(want_max)), walk, identity, xp)
