"""Shifted moments of a chunk on the GPU: the partial state of var, std, nanvar, nanstd
and (with min and max) ``moments``.

Per output: a shift K (the first non-NaN value of its slice, found by a first small
kernel), the count of non-NaN values and the sums of (x - K) and (x - K)**2, reduced in
float64, Neumaier-compensated, by the factory's kernels (:mod:`.factory`) from the
step and merge declared here; the bits are the same on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, float64, int64, types

from numbadask.cpu.layout import Walk

from .factory import GpuReduction, reduce, walk_argtypes
from .launch import serialized, thread_grid, threads_per_block
from .walks import axes_args, device_view, kept_offset, kernel_buffer, reduced_offset

#: Loads in flight per thread: the five- or seven-field state (eight bytes each, but
#: the min and max) leaves fewer registers than a sum's (``tests/test_cuda_static.py``
#: checks the budget).
MAX_LOADS = 8


def _find_shift(buf, base, kept, red, n_out, n_red, shift):
    """Each output's shift: the first non-NaN value of its slice (0.0 if none); one
    thread per output, which reads one value unless its slice starts with NaN."""
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
        shift[m, 0] = k
        m += cuda.gridsize(1)


@functools.lru_cache(maxsize=None)
def shift_kernel(dtype: np.dtype, n_kept: int, n_reduced: int) -> Any:
    """:func:`_find_shift` compiled for one signature: the factory's first six
    arguments and the ``(n_out, 1)`` float64 shifts (the main kernel's ``aux``)."""
    head = walk_argtypes(dtype, n_kept, n_reduced)
    return cuda.jit(types.void(*head, types.Array(types.float64, 2, "C")))(_find_shift)


@functools.lru_cache(maxsize=None)
def _kernels(dtype: np.dtype, with_minmax: bool):
    value_type = numba.from_dtype(dtype)

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
    def moments(v, k, s1, c1, s2, c2, n):
        x = float64(v)
        if x == x:
            d = x - k
            s1, c1 = compensated(s1, c1, d)
            s2, c2 = compensated(s2, c2, d * d)
            n += 1
        return s1, c1, s2, c2, n

    @cuda.jit(device=True)
    def merge_moments(a, b):
        s1, c1 = compensated(a[0], a[1], b[0] + b[1])
        s2, c2 = compensated(a[2], a[3], b[2] + b[3])
        return s1, c1, s2, c2, a[4] + b[4]

    # Plain moments keep five fields, not seven: min and max would be two more
    # fields carried through the loop, the trees and the finish (registers).
    if with_minmax:

        @cuda.jit(device=True)
        def step(s, v, j, aux):
            s1, c1, s2, c2, n = moments(v, aux[0], s[0], s[1], s[2], s[3], s[4])
            lo = v if v < s[5] else s[5]
            hi = v if v > s[6] else s[6]
            return s1, c1, s2, c2, n, lo, hi

        @cuda.jit(device=True)
        def merge(a, b):
            s1, c1, s2, c2, n = merge_moments(a, b)
            lo = b[5] if b[5] < a[5] else a[5]
            hi = b[6] if b[6] > a[6] else a[6]
            return s1, c1, s2, c2, n, lo, hi

    else:

        @cuda.jit(device=True)
        def step(s, v, j, aux):
            return moments(v, aux[0], s[0], s[1], s[2], s[3], s[4])

        merge = merge_moments

    fields = (float64, float64, float64, float64, int64) + ((value_type, value_type) if with_minmax else ())
    name = f"moments_{dtype}_{'minmax' if with_minmax else 'plain'}"
    reduction = GpuReduction(name, fields, step, merge, max_loads=MAX_LOADS)
    return reduction


def _moments(walk: Walk, xp: Any, with_minmax: bool) -> tuple[Any, ...]:
    from numbadask.cpu.extremes import minmax_limits

    buf = kernel_buffer(walk, widen_float16=True)
    reduction = _kernels(buf.dtype, with_minmax)
    low, high = minmax_limits(buf.dtype)
    kept, red, n_red = axes_args(walk)
    n_out = walk.out_size
    shift = xp.empty((n_out, 1), dtype=np.float64)
    with serialized():
        shift_kernel(buf.dtype, len(kept[0]), len(red[0]))[thread_grid(n_out), threads_per_block()](
            device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, device_view(shift)
        )
    identity = (0.0, 0.0, 0.0, 0.0, 0) + ((low, high) if with_minmax else ())
    s1, c1, s2, c2, count, *lohi = reduce(reduction, walk, identity, xp, aux=shift, buf=buf)
    s1, s2 = s1 + c1, s2 + c2
    shift = shift.reshape(-1)
    shape = walk.out_shape
    result = (count, shift, s1, s2, *lohi)
    return tuple(a.reshape(shape) for a in result)


def shifted_moments(walk: Walk, xp: Any = np) -> tuple[Any, ...]:
    """Count of non-NaN values, shift, sum(x - shift), sum((x - shift)**2), keepdims,
    on the chunk's device (the CPU kernel of the same name computes the same)."""
    return _moments(walk, xp, with_minmax=False)


def shifted_moments_minmax(walk: Walk, xp: Any = np) -> tuple[Any, ...]:
    """:func:`shifted_moments` plus min and max of the non-NaN values."""
    return _moments(walk, xp, with_minmax=True)
