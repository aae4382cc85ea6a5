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

from numbadask.cpu.layout import Walk

from .factory import GpuReduction, reduce
from .walks import kernel_buffer


@cuda.jit(device=True)
def _minmax_step(s, v, j, aux):
    # NaN never enters: `v < lo` is False for NaN; the count decides NaN rules later.
    return (v if v < s[0] else s[0], v if v > s[1] else s[1], s[2] + (v == v))


@cuda.jit(device=True)
def _minmax_merge(a, b):
    return (b[0] if b[0] < a[0] else a[0], b[1] if b[1] > a[1] else a[1], a[2] + b[2])


@cuda.jit(device=True)
def _min_step(s, v, j, aux):
    return (v if v < s[0] else s[0], s[1] + (v == v))


@cuda.jit(device=True)
def _min_merge(a, b):
    return (b[0] if b[0] < a[0] else a[0], a[1] + b[1])


@cuda.jit(device=True)
def _max_step(s, v, j, aux):
    return (v if v > s[0] else s[0], s[1] + (v == v))


@cuda.jit(device=True)
def _max_merge(a, b):
    return (b[0] if b[0] > a[0] else a[0], a[1] + b[1])


_PIECES = {"both": (_minmax_step, _minmax_merge), "min": (_min_step, _min_merge), "max": (_max_step, _max_merge)}


@functools.lru_cache(maxsize=None)
def block_reduction(dtype: np.dtype, keep: str = "both") -> GpuReduction:
    """The factory's reduction for input ``dtype``: smallest and largest values and
    the count (``keep="both"``), or one of them and the count (``"min"``, ``"max"``)."""
    value_type = numba.from_dtype(dtype)
    values = (value_type, value_type) if keep == "both" else (value_type,)
    step, merge = _PIECES[keep]
    return GpuReduction(f"{'minmax' if keep == 'both' else keep}_{dtype}", (*values, int64), step, merge)


def _extremes(walk: Walk, xp: Any, keep: str) -> tuple[Any, Any, Any]:
    from numbadask.cpu.extremes import minmax_limits

    buf = kernel_buffer(walk, widen_float16=True)
    low, high = minmax_limits(buf.dtype)
    reduction = block_reduction(buf.dtype, keep)
    if keep == "both":
        lo, hi, valid = reduce(reduction, walk, (low, high, 0), xp, buf=buf)
    elif keep == "min":
        lo, valid = reduce(reduction, walk, (low, 0), xp, buf=buf)
        hi = xp.full(walk.out_size, high, dtype=buf.dtype)
    else:
        hi, valid = reduce(reduction, walk, (high, 0), xp, buf=buf)
        lo = xp.full(walk.out_size, low, dtype=buf.dtype)
    shape = walk.out_shape
    return lo.reshape(shape), hi.reshape(shape), valid.reshape(shape)


def minmax(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """Smallest and largest non-NaN values (bool as uint8, float16 as float32) and the
    int64 count of non-NaN values, keepdims shape, on the chunk's device."""
    return _extremes(walk, xp, "both")


def min_only(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """:func:`minmax`'s outputs with only the smallest values found (one comparison per
    element, a two-field state): the largest are the starting limit."""
    return _extremes(walk, xp, "min")


def max_only(walk: Walk, xp: Any = np) -> tuple[Any, Any, Any]:
    """:func:`minmax`'s outputs with only the largest values found; the smallest are
    the starting limit."""
    return _extremes(walk, xp, "max")
