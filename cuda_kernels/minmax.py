"""Smallest and largest non-NaN values of a chunk on the GPU, and how many values were
not NaN: the partial state of min, max, nanmin, nanmax and ptp.

The factory (:mod:`.factory`) makes the kernels from the step and merge declared
here, once per input dtype (the state keeps values of the input's dtype).
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import cuda, int64

from numbadask.layout import Walk

from .factory import GpuReduction, reduce
from .walks import kernel_buffer


@cuda.jit(device=True)
def _minmax_step(s, v, j, aux):
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


def minmax(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """Smallest and largest non-NaN values (bool as uint8, float16 as float32) and the
    int64 count of non-NaN values, keepdims shape, on the chunk's device."""
    from numbadask.cpu_kernels import minmax_limits

    buf = kernel_buffer(walk, widen_float16=True)
    low, high = minmax_limits(buf.dtype)
    lo, hi, valid = reduce(block_reduction(buf.dtype), walk, (low, high, 0), xp, buf=buf)
    shape = walk.out_shape
    return lo.reshape(shape), hi.reshape(shape), valid.reshape(shape)
