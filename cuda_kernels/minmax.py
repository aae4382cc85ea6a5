"""Smallest and largest non-NaN values of a chunk on the GPU, and how many values were
not NaN: the partial state of min, max, nanmin, nanmax and ptp.

The same two layouts as :mod:`numbadask.cuda_kernels.sum` (the factory's block kernel
from the step and merge declared here, or one thread per output), compiled once per
input dtype (the state keeps values of the input's dtype).
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, int64

from numbadask.layout import Walk

from .factory import GpuReduction, block_reduce
from .launch import serialized, thread_grid, threads_per_block
from .walks import FEW_PER_OUTPUT, axes_args, device_view, kept_offset, kernel_buffer, reduced_offset


@cuda.jit(device=True)
def _minmax_step(s, v, aux):
    # NaN never enters: `v < lo` is False for NaN; the count decides NaN rules later.
    return (v if v < s[0] else s[0], v if v > s[1] else s[1], s[2] + (v == v))


@cuda.jit(device=True)
def _minmax_merge(a, b):
    return (b[0] if b[0] < a[0] else a[0], b[1] if b[1] > a[1] else a[1], a[2] + b[2])


@functools.lru_cache(maxsize=None)
def block_reduction(dtype: np.dtype) -> GpuReduction:
    """The factory's min/max/count reduction for input ``dtype``."""
    value_type = numba.from_dtype(dtype)
    return GpuReduction(f"minmax_{dtype}", (value_type, value_type, int64), _minmax_step, _minmax_merge)


@functools.lru_cache(maxsize=None)
def _column_kernel(dtype: np.dtype):
    @cuda.jit
    def column_minmax(buf, base, kept, red, n_out, n_red, lo_init, hi_init, lo, hi, valid):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
            low = lo_init
            high = hi_init
            n = 0
            for r in range(n_red):
                v = buf[start + reduced_offset(r, red_sizes, red_strides)]
                low = v if v < low else low
                high = v if v > high else high
                n += v == v
            lo[m] = low
            hi[m] = high
            valid[m] = n
            m += cuda.gridsize(1)

    return column_minmax


def minmax(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """Smallest and largest non-NaN values (bool as uint8, float16 as float32) and the
    int64 count of non-NaN values, keepdims shape, on the chunk's device."""
    from numbadask.cpu_kernels import minmax_limits

    buf = kernel_buffer(walk, widen_float16=True)
    low, high = minmax_limits(buf.dtype)
    kept, red, n_red = axes_args(walk)
    n_out = walk.out_size
    if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
        lo = xp.empty(n_out, dtype=buf.dtype)
        hi = xp.empty(n_out, dtype=buf.dtype)
        valid = xp.empty(n_out, dtype=np.int64)
        with serialized():
            _column_kernel(buf.dtype)[thread_grid(n_out), threads_per_block()](
                device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, low, high, *map(device_view, (lo, hi, valid))
            )
    else:
        lo, hi, valid = block_reduce(block_reduction(buf.dtype), walk, (low, high, 0), xp, buf=buf)
    shape = walk.out_shape
    return lo.reshape(shape), hi.reshape(shape), valid.reshape(shape)
