"""Sums of a chunk over some axes on the GPU: the partial states of sum, mean and nan-variants.

Two kernels cover every layout (a :class:`numbadask.layout.Walk` describes it):

* the factory's block kernel (:mod:`.factory`) when the innermost memory axis is
  reduced (a full reduction, or reducing trailing axes), from the scalar steps and
  merges declared here; no float atomics, the same bits on every run;
* ``column_sums`` when the innermost memory axis is kept (reducing leading axes) or
  few elements fall to each output: one thread per output, adjacent threads reading
  adjacent memory.

Float input accumulates in float64, integer and bool input in int64 (exact, wrapping
like NumPy); the NaN-skipping variant also counts the values it kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64, int64

from numbadask.layout import Walk

from .factory import GpuReduction, block_reduce
from .launch import serialized, thread_grid, threads_per_block
from .walks import FEW_PER_OUTPUT, axes_args, device_view, kept_offset, kernel_buffer, reduced_offset

@cuda.jit(device=True)
def _sum_step(s, value, aux):
    return (s[0] + float64(value),)


@cuda.jit(device=True)
def _nansum_step(s, value, aux):
    v = float64(value)
    keep = v == v
    return (s[0] + (v if keep else 0.0), s[1] + keep)


@cuda.jit(device=True)
def _isum_step(s, value, aux):
    return (s[0] + int64(value),)


@cuda.jit(device=True)
def _add_one(a, b):
    return (a[0] + b[0],)


@cuda.jit(device=True)
def _add_two(a, b):
    return (a[0] + b[0], a[1] + b[1])


#: The block reductions: float input accumulates in float64, integer and bool input in
#: int64 (exact, wrapping like NumPy); the NaN-skipping sum also counts what it kept.
REDUCTIONS = {
    "sum_float64": GpuReduction("sum_float64", (float64,), _sum_step, _add_one),
    "nansum_float64": GpuReduction("nansum_float64", (float64, int64), _nansum_step, _add_two),
    "sum_int64": GpuReduction("sum_int64", (int64,), _isum_step, _add_one),
}


def _column_kernel(acc_type, skipna: bool):
    """One thread per output (the innermost memory axis kept, or few elements per
    output), adjacent threads reading adjacent memory."""
    zero = acc_type(0)

    @cuda.jit
    def column_sums(buf, base, kept, red, n_out, n_red, out, out_counts):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
            acc = zero
            n = 0
            for r in range(n_red):
                v = acc_type(buf[start + reduced_offset(r, red_sizes, red_strides)])
                if skipna:
                    keep = v == v
                    acc += v if keep else zero
                    n += keep
                else:
                    acc += v
            out[m] = acc
            out_counts[m] = n
            m += cuda.gridsize(1)

    return column_sums


_COLUMN_KERNELS = {
    "sum_float64": _column_kernel(float64, skipna=False),
    "nansum_float64": _column_kernel(float64, skipna=True),
    "sum_int64": _column_kernel(int64, skipna=False),
}


def _launch(name: str, walk: Walk, xp: Any, acc_dtype: Any) -> tuple[Any, Any]:
    """Run sum kernel ``name`` over the walk: (sums, counts), keepdims shape (counts
    only meaningful for the NaN-skipping sum)."""
    buf = kernel_buffer(walk)
    kept, red, n_red = axes_args(walk)
    n_out = walk.out_size
    if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
        out = xp.empty(n_out, dtype=acc_dtype)
        counts = xp.empty(n_out, dtype=np.int64)
        with serialized():
            _COLUMN_KERNELS[name][thread_grid(n_out), threads_per_block()](
                device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, device_view(out), device_view(counts)
            )
    else:
        reduction = REDUCTIONS[name]
        states = block_reduce(reduction, walk, (0,) * len(reduction.fields), xp)
        out, counts = states if len(states) == 2 else (states[0], states[0])
    return out.reshape(walk.out_shape), counts.reshape(walk.out_shape)


def sum_float64(walk: Walk, xp: Any = np) -> Any:
    """Float64 sum over the walk's reduced axes, keepdims shape, on the chunk's device.

    Parameters
    ----------
    walk : Walk
        Layout of a CuPy chunk (or, under the simulator, a NumPy chunk).
    xp : module
        The chunk's array module; the result is allocated with it.

    Examples
    --------
    >>> import numpy as np                      # doctest: +SKIP
    >>> from numbadask.layout import plan_walk  # doctest: +SKIP
    >>> sum_float64(plan_walk(np.ones((4, 3)), (0,)))   # doctest: +SKIP
    array([[4., 4., 4.]])
    """
    return _launch("sum_float64", walk, xp, np.float64)[0]


def nansum_float64(walk: Walk, xp: Any = np) -> tuple[Any, Any]:
    """Float64 sum of the non-NaN values and their int64 count; see :func:`sum_float64`."""
    return _launch("nansum_float64", walk, xp, np.float64)


def sum_int64(walk: Walk, xp: Any = np) -> Any:
    """Exact int64 sum (modulo 2**64) of a bool or integer chunk; see :func:`sum_float64`."""
    return _launch("sum_int64", walk, xp, np.int64)[0]
