"""Smallest and largest non-NaN values of a chunk on the GPU, and how many values were
not NaN: the partial state of min, max, nanmin, nanmax and ptp.

The same two layouts as :mod:`numbadask.cuda_kernels.sum` (block tree with per-block
partials finished in a fixed order, or one thread per output), compiled once per input
dtype (shared-memory arrays need the dtype at compile time).
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, int64

from numbadask.layout import Walk

from .launch import THREADS, block_grid, serialized, thread_grid, threads_per_block
from .sum import FEW_PER_OUTPUT, _axes_args, _device_view, _kept_offset, _reduced_offset


@functools.lru_cache(maxsize=None)
def _kernels(dtype: np.dtype):
    value_type = numba.from_dtype(dtype)

    @cuda.jit
    def block_partials(buf, base, kept, red, n_out, n_red, lo_init, hi_init, p_lo, p_hi, p_valid):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        s_lo = cuda.shared.array(THREADS, value_type)
        s_hi = cuda.shared.array(THREADS, value_type)
        s_n = cuda.shared.array(THREADS, int64)
        tid = cuda.threadIdx.x
        step = cuda.gridDim.x * cuda.blockDim.x
        for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            lo = lo_init
            hi = hi_init
            n = 0
            r = cuda.blockIdx.x * cuda.blockDim.x + tid
            while r < n_red:
                v = buf[start + _reduced_offset(r, red_sizes, red_strides)]
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                n += v == v
                r += step
            s_lo[tid] = lo
            s_hi[tid] = hi
            s_n[tid] = n
            cuda.syncthreads()
            width = cuda.blockDim.x // 2
            while width > 0:
                if tid < width:
                    a = s_lo[tid + width]
                    s_lo[tid] = a if a < s_lo[tid] else s_lo[tid]
                    b = s_hi[tid + width]
                    s_hi[tid] = b if b > s_hi[tid] else s_hi[tid]
                    s_n[tid] += s_n[tid + width]
                cuda.syncthreads()
                width //= 2
            if tid == 0:
                p_lo[m, cuda.blockIdx.x] = s_lo[0]
                p_hi[m, cuda.blockIdx.x] = s_hi[0]
                p_valid[m, cuda.blockIdx.x] = s_n[0]
            cuda.syncthreads()

    @cuda.jit
    def finish_partials(p_lo, p_hi, p_valid, lo, hi, valid):
        m = cuda.grid(1)
        while m < p_lo.shape[0]:
            low = p_lo[m, 0]
            high = p_hi[m, 0]
            n = p_valid[m, 0]
            for b in range(1, p_lo.shape[1]):
                low = p_lo[m, b] if p_lo[m, b] < low else low
                high = p_hi[m, b] if p_hi[m, b] > high else high
                n += p_valid[m, b]
            lo[m] = low
            hi[m] = high
            valid[m] = n
            m += cuda.gridsize(1)

    @cuda.jit
    def column_minmax(buf, base, kept, red, n_out, n_red, lo_init, hi_init, lo, hi, valid):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            low = lo_init
            high = hi_init
            n = 0
            for r in range(n_red):
                v = buf[start + _reduced_offset(r, red_sizes, red_strides)]
                low = v if v < low else low
                high = v if v > high else high
                n += v == v
            lo[m] = low
            hi[m] = high
            valid[m] = n
            m += cuda.gridsize(1)

    return block_partials, finish_partials, column_minmax


def minmax(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """Smallest and largest non-NaN values (bool as uint8, float16 as float32) and the
    int64 count of non-NaN values, keepdims shape, on the chunk's device."""
    from numbadask.cpu_kernels import minmax_limits

    buf = walk.buf
    if buf.dtype == np.bool_:
        buf = buf.view(np.uint8)
    elif buf.dtype == np.float16:
        buf = buf.astype(np.float32)  # the one widening copy, as on the CPU
    block_partials, finish_partials, column_minmax = _kernels(buf.dtype)
    low, high = minmax_limits(buf.dtype)
    kept, red, n_red = _axes_args(walk)
    n_out = walk.out_size
    lo = xp.empty(n_out, dtype=buf.dtype)
    hi = xp.empty(n_out, dtype=buf.dtype)
    valid = xp.empty(n_out, dtype=np.int64)
    outs = [_device_view(a) for a in (lo, hi, valid)]
    with serialized():
        if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
            column_minmax[thread_grid(n_out), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, low, high, *outs
            )
        else:
            blocks, rows = block_grid(n_out, n_red)
            partials = [xp.empty((n_out, blocks), dtype=d) for d in (buf.dtype, buf.dtype, np.int64)]
            block_partials[(blocks, rows), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, low, high,
                *[_device_view(p) for p in partials],
            )
            finish_partials[thread_grid(n_out), threads_per_block()](
                *[_device_view(p, read_only=True) for p in partials], *outs
            )
    shape = walk.out_shape
    return lo.reshape(shape), hi.reshape(shape), valid.reshape(shape)
