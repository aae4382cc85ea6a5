"""Shifted moments of a chunk on the GPU: the partial state of var, std, nanvar, nanstd
and (with min and max) ``moments``.

Per output: a shift K (the first non-NaN value of its slice, found by a first small
kernel), the count of non-NaN values and the sums of (x - K) and (x - K)**2, reduced in
float64 with the same two layouts as :mod:`numbadask.cuda_kernels.sum` (the factory's
block kernel from the step and merge declared here, Neumaier-compensated, or one
thread per output); the bits are the same on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, float64, int64

from numbadask.layout import Walk

from .factory import GpuReduction, block_reduce
from .launch import serialized, thread_grid, threads_per_block
from .walks import FEW_PER_OUTPUT, axes_args, device_view, kept_offset, kernel_buffer, reduced_offset


@functools.lru_cache(maxsize=None)
def _kernels(dtype: np.dtype, with_minmax: bool):
    value_type = numba.from_dtype(dtype)

    @cuda.jit
    def find_shift(buf, base, kept, red, n_out, n_red, shift):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
            k = 0.0
            for r in range(n_red):
                v = float64(buf[start + reduced_offset(r, red_sizes, red_strides)])
                if v == v:
                    k = v
                    break
            shift[m] = k
            m += cuda.gridsize(1)

    @cuda.jit(device=True)
    def compensated(total, comp, value):
        # Neumaier: each thread adds many values before the tree; without compensation
        # var on 1e9 + U(0, 1) was 3x less accurate than NumPy's two-pass (simulator).
        t = total + value
        if abs(total) >= abs(value):
            comp += (total - t) + value
        else:
            comp += (value - t) + total
        return t, comp

    @cuda.jit(device=True)
    def accumulate(v, k, s1, c1, s2, c2, n, lo, hi):
        x = float64(v)
        if x == x:
            d = x - k
            s1, c1 = compensated(s1, c1, d)
            s2, c2 = compensated(s2, c2, d * d)
            n += 1
        if with_minmax:
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        return s1, c1, s2, c2, n, lo, hi

    @cuda.jit(device=True)
    def step(s, v, k):
        return accumulate(v, k, s[0], s[1], s[2], s[3], s[4], s[5], s[6])

    @cuda.jit(device=True)
    def merge(a, b):
        s1, c1 = compensated(a[0], a[1], b[0] + b[1])
        s2, c2 = compensated(a[2], a[3], b[2] + b[3])
        lo = b[5] if b[5] < a[5] else a[5]
        hi = b[6] if b[6] > a[6] else a[6]
        return s1, c1, s2, c2, a[4] + b[4], lo, hi

    fields = (float64, float64, float64, float64, int64, value_type, value_type)
    reduction = GpuReduction(f"moments_{dtype}_{'minmax' if with_minmax else 'plain'}", fields, step, merge)

    @cuda.jit
    def column_moments(buf, base, kept, red, n_out, n_red, shift, lo_init, hi_init, s1, s2, n, lo, hi):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
            k = shift[m]
            a1 = 0.0
            e1 = 0.0
            a2 = 0.0
            e2 = 0.0
            c = 0
            low = lo_init
            high = hi_init
            for r in range(n_red):
                v = buf[start + reduced_offset(r, red_sizes, red_strides)]
                a1, e1, a2, e2, c, low, high = accumulate(v, k, a1, e1, a2, e2, c, low, high)
            s1[m] = a1 + e1
            s2[m] = a2 + e2
            n[m] = c
            lo[m] = low
            hi[m] = high
            m += cuda.gridsize(1)

    return find_shift, reduction, column_moments


def _moments(walk: Walk, xp: Any, with_minmax: bool) -> tuple[Any, ...]:
    from numbadask.cpu_kernels import minmax_limits

    buf = kernel_buffer(walk, widen_float16=True)
    find_shift, reduction, column_moments = _kernels(buf.dtype, with_minmax)
    low, high = minmax_limits(buf.dtype)
    kept, red, n_red = axes_args(walk)
    n_out = walk.out_size
    shift = xp.empty(n_out, dtype=np.float64)
    src = device_view(buf, read_only=True)
    with serialized():
        find_shift[thread_grid(n_out), threads_per_block()](src, walk.base, kept, red, n_out, n_red, device_view(shift))
    if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
        s1, s2 = xp.empty(n_out, dtype=np.float64), xp.empty(n_out, dtype=np.float64)
        count = xp.empty(n_out, dtype=np.int64)
        lo, hi = xp.empty(n_out, dtype=buf.dtype), xp.empty(n_out, dtype=buf.dtype)
        with serialized():
            column_moments[thread_grid(n_out), threads_per_block()](
                src, walk.base, kept, red, n_out, n_red, device_view(shift, read_only=True), low, high,
                *map(device_view, (s1, s2, count, lo, hi)),
            )
    else:
        identity = (0.0, 0.0, 0.0, 0.0, 0, low, high)
        s1, c1, s2, c2, count, lo, hi = block_reduce(reduction, walk, identity, xp, aux=shift, buf=buf)
        s1, s2 = s1 + c1, s2 + c2
    shape = walk.out_shape
    result = (count, shift, s1, s2, lo, hi) if with_minmax else (count, shift, s1, s2)
    return tuple(a.reshape(shape) for a in result)


def shifted_moments(walk: Walk, xp: Any = np) -> tuple[Any, ...]:
    """Count of non-NaN values, shift, sum(x - shift), sum((x - shift)**2), keepdims,
    on the chunk's device (the CPU kernel of the same name computes the same)."""
    return _moments(walk, xp, with_minmax=False)


def shifted_moments_minmax(walk: Walk, xp: Any = np) -> tuple[Any, ...]:
    """:func:`shifted_moments` plus min and max of the non-NaN values."""
    return _moments(walk, xp, with_minmax=True)
