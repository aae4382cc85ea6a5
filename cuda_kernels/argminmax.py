"""argmin/argmax of the rows of a 2-d view on the GPU: the partial state of argmin,
argmax, nanargmin and nanargmax.

Per row: the best non-NaN value, its first index, and the first NaN's index (-1: none).
Blocks split each row with a grid-stride loop and reduce (value, index) pairs in a
shared-memory tree, ties going to the smaller index; per-block partials are finished in
a fixed order, so the result is the same on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, int64

from .launch import THREADS, block_grid, serialized, thread_grid, threads_per_block
from .walks import FEW_PER_OUTPUT, device_view


@functools.lru_cache(maxsize=None)
def _kernels(dtype: np.dtype, want_max: bool):
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
    def first(a, b):
        return a if a >= 0 and (b < 0 or a < b) else b

    @cuda.jit(device=True)
    def visit(v, j, best_v, best_j, first_nan):
        """Element j of a row into the running (best value, its index, first NaN)."""
        if v != v:
            return best_v, best_j, first(first_nan, j)
        if better(v, j, best_v, best_j):
            return v, j, first_nan
        return best_v, best_j, first_nan

    @cuda.jit
    def block_partials(rows, p_value, p_index, p_nan):
        s_value = cuda.shared.array(THREADS, value_type)
        s_index = cuda.shared.array(THREADS, int64)
        s_nan = cuda.shared.array(THREADS, int64)
        tid = cuda.threadIdx.x
        n = rows.shape[1]
        step = cuda.gridDim.x * cuda.blockDim.x
        for m in range(cuda.blockIdx.y, rows.shape[0], cuda.gridDim.y):
            best_v = rows[m, 0]
            best_j = -1
            first_nan = -1
            j = cuda.blockIdx.x * cuda.blockDim.x + tid
            while j < n:
                best_v, best_j, first_nan = visit(rows[m, j], j, best_v, best_j, first_nan)
                j += step
            s_value[tid] = best_v
            s_index[tid] = best_j
            s_nan[tid] = first_nan
            cuda.syncthreads()
            width = cuda.blockDim.x // 2
            while width > 0:
                if tid < width:
                    if better(s_value[tid + width], s_index[tid + width], s_value[tid], s_index[tid]):
                        s_value[tid] = s_value[tid + width]
                        s_index[tid] = s_index[tid + width]
                    s_nan[tid] = first(s_nan[tid], s_nan[tid + width])
                cuda.syncthreads()
                width //= 2
            if tid == 0:
                p_value[m, cuda.blockIdx.x] = s_value[0]
                p_index[m, cuda.blockIdx.x] = s_index[0]
                p_nan[m, cuda.blockIdx.x] = s_nan[0]
            cuda.syncthreads()

    @cuda.jit
    def finish_partials(p_value, p_index, p_nan, value, index, nan_index):
        m = cuda.grid(1)
        while m < p_value.shape[0]:
            best_v = p_value[m, 0]
            best_j = p_index[m, 0]
            first_nan = p_nan[m, 0]
            for b in range(1, p_value.shape[1]):
                if better(p_value[m, b], p_index[m, b], best_v, best_j):
                    best_v = p_value[m, b]
                    best_j = p_index[m, b]
                first_nan = first(first_nan, p_nan[m, b])
            value[m] = best_v
            index[m] = best_j
            nan_index[m] = first_nan
            m += cuda.gridsize(1)

    @cuda.jit
    def row_scan(rows, value, index, nan_index):
        m = cuda.grid(1)
        while m < rows.shape[0]:
            best_v = rows[m, 0]
            best_j = -1
            first_nan = -1
            for j in range(rows.shape[1]):
                best_v, best_j, first_nan = visit(rows[m, j], j, best_v, best_j, first_nan)
            value[m] = best_v
            index[m] = best_j
            nan_index[m] = first_nan
            m += cuda.gridsize(1)

    return block_partials, finish_partials, row_scan


def argminmax(chunk: Any, axis: int | None, want_max: bool, xp: Any = np) -> tuple[Any, Any, Any]:
    """Best non-NaN value, its first index along ``axis`` (flat C index for None; -1
    where there is none) and the first NaN's index, per output position, on the chunk's
    device (the CPU kernel of the same name computes the same)."""
    from numbadask.cpu_kernels import rows_view

    rows = rows_view(chunk, axis, xp)
    if rows.dtype == np.bool_:
        rows = rows.view(np.uint8)
    elif rows.dtype == np.float16:
        rows = rows.astype(np.float32)  # the one widening copy, as on the CPU
    block_partials, finish_partials, row_scan = _kernels(rows.dtype, bool(want_max))
    m, n = rows.shape
    outs = [xp.empty(m, dtype=d) for d in (rows.dtype, np.int64, np.int64)]
    if n <= FEW_PER_OUTPUT:  # short rows: one thread each, no block tree
        with serialized():
            row_scan[thread_grid(m), threads_per_block()](
                device_view(rows, read_only=True), *[device_view(o) for o in outs]
            )
        return tuple(outs)
    blocks, grid_rows = block_grid(m, n)
    partials = [xp.empty((m, blocks), dtype=d) for d in (rows.dtype, np.int64, np.int64)]
    with serialized():
        block_partials[(blocks, grid_rows), threads_per_block()](
            device_view(rows, read_only=True), *[device_view(p) for p in partials]
        )
        finish_partials[thread_grid(m), threads_per_block()](
            *[device_view(p, read_only=True) for p in partials], *[device_view(o) for o in outs]
        )
    return tuple(outs)
