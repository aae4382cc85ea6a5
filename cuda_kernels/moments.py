"""Shifted moments of a chunk on the GPU: the partial state of var, std, nanvar, nanstd
and (with min and max) ``moments``.

Per output: a shift K (the first non-NaN value of its slice, found by a first small
kernel), the count of non-NaN values and the sums of (x - K) and (x - K)**2, reduced in
float64 with the same two layouts as :mod:`numbadask.cuda_kernels.sum`; per-block
partials are finished in a fixed order, so the bits are the same on every run.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, float64, int64

from numbadask.layout import Walk

from .launch import THREADS, block_grid, serialized, thread_grid, threads_per_block
from .sum import FEW_PER_OUTPUT, _axes_args, _device_view, _kept_offset, _reduced_offset


@functools.lru_cache(maxsize=None)
def _kernels(dtype: np.dtype, with_minmax: bool):
    value_type = numba.from_dtype(dtype)

    @cuda.jit
    def find_shift(buf, base, kept, red, n_out, n_red, shift):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            k = 0.0
            for r in range(n_red):
                v = float64(buf[start + _reduced_offset(r, red_sizes, red_strides)])
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

    @cuda.jit
    def block_partials(buf, base, kept, red, n_out, n_red, shift, lo_init, hi_init, p1, p2, pn, plo, phi):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        sh1 = cuda.shared.array(THREADS, float64)
        sh2 = cuda.shared.array(THREADS, float64)
        shn = cuda.shared.array(THREADS, int64)
        shlo = cuda.shared.array(THREADS, value_type)
        shhi = cuda.shared.array(THREADS, value_type)
        tid = cuda.threadIdx.x
        step = cuda.gridDim.x * cuda.blockDim.x
        for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            k = shift[m]
            s1 = 0.0
            c1 = 0.0
            s2 = 0.0
            c2 = 0.0
            n = 0
            lo = lo_init
            hi = hi_init
            r = cuda.blockIdx.x * cuda.blockDim.x + tid
            while r < n_red:
                v = buf[start + _reduced_offset(r, red_sizes, red_strides)]
                s1, c1, s2, c2, n, lo, hi = accumulate(v, k, s1, c1, s2, c2, n, lo, hi)
                r += step
            sh1[tid] = s1 + c1
            sh2[tid] = s2 + c2
            shn[tid] = n
            shlo[tid] = lo
            shhi[tid] = hi
            cuda.syncthreads()
            width = cuda.blockDim.x // 2
            while width > 0:
                if tid < width:
                    sh1[tid] += sh1[tid + width]
                    sh2[tid] += sh2[tid + width]
                    shn[tid] += shn[tid + width]
                    a = shlo[tid + width]
                    shlo[tid] = a if a < shlo[tid] else shlo[tid]
                    b = shhi[tid + width]
                    shhi[tid] = b if b > shhi[tid] else shhi[tid]
                cuda.syncthreads()
                width //= 2
            if tid == 0:
                bx = cuda.blockIdx.x
                p1[m, bx] = sh1[0]
                p2[m, bx] = sh2[0]
                pn[m, bx] = shn[0]
                plo[m, bx] = shlo[0]
                phi[m, bx] = shhi[0]
            cuda.syncthreads()

    @cuda.jit
    def finish_partials(p1, p2, pn, plo, phi, s1, s2, n, lo, hi):
        m = cuda.grid(1)
        while m < p1.shape[0]:
            a1 = 0.0
            a2 = 0.0
            c = 0
            low = plo[m, 0]
            high = phi[m, 0]
            for b in range(p1.shape[1]):
                a1 += p1[m, b]
                a2 += p2[m, b]
                c += pn[m, b]
                low = plo[m, b] if plo[m, b] < low else low
                high = phi[m, b] if phi[m, b] > high else high
            s1[m] = a1
            s2[m] = a2
            n[m] = c
            lo[m] = low
            hi[m] = high
            m += cuda.gridsize(1)

    @cuda.jit
    def column_moments(buf, base, kept, red, n_out, n_red, shift, lo_init, hi_init, s1, s2, n, lo, hi):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            k = shift[m]
            a1 = 0.0
            e1 = 0.0
            a2 = 0.0
            e2 = 0.0
            c = 0
            low = lo_init
            high = hi_init
            for r in range(n_red):
                v = buf[start + _reduced_offset(r, red_sizes, red_strides)]
                a1, e1, a2, e2, c, low, high = accumulate(v, k, a1, e1, a2, e2, c, low, high)
            s1[m] = a1 + e1
            s2[m] = a2 + e2
            n[m] = c
            lo[m] = low
            hi[m] = high
            m += cuda.gridsize(1)

    return find_shift, block_partials, finish_partials, column_moments


def _moments(walk: Walk, xp: Any, with_minmax: bool) -> tuple[Any, ...]:
    from numbadask.cpu_kernels import minmax_limits

    buf = walk.buf
    if buf.dtype == np.bool_:
        buf = buf.view(np.uint8)
    elif buf.dtype == np.float16:
        buf = buf.astype(np.float32)  # the one widening copy, as on the CPU
    find_shift, block_partials, finish_partials, column_moments = _kernels(buf.dtype, with_minmax)
    low, high = minmax_limits(buf.dtype)
    kept, red, n_red = _axes_args(walk)
    n_out = walk.out_size
    shift = xp.empty(n_out, dtype=np.float64)
    s1, s2 = xp.empty(n_out, dtype=np.float64), xp.empty(n_out, dtype=np.float64)
    count = xp.empty(n_out, dtype=np.int64)
    lo, hi = xp.empty(n_out, dtype=buf.dtype), xp.empty(n_out, dtype=buf.dtype)
    outs = [_device_view(a) for a in (s1, s2, count, lo, hi)]
    src = _device_view(buf, read_only=True)
    with serialized():
        find_shift[thread_grid(n_out), threads_per_block()](src, walk.base, kept, red, n_out, n_red, _device_view(shift))
        shift_in = _device_view(shift, read_only=True)
        if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
            column_moments[thread_grid(n_out), threads_per_block()](
                src, walk.base, kept, red, n_out, n_red, shift_in, low, high, *outs
            )
        else:
            blocks, rows = block_grid(n_out, n_red)
            dtypes = (np.float64, np.float64, np.int64, buf.dtype, buf.dtype)
            partials = [xp.empty((n_out, blocks), dtype=d) for d in dtypes]
            block_partials[(blocks, rows), threads_per_block()](
                src, walk.base, kept, red, n_out, n_red, shift_in, low, high, *[_device_view(p) for p in partials]
            )
            finish_partials[thread_grid(n_out), threads_per_block()](
                *[_device_view(p, read_only=True) for p in partials], *outs
            )
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
