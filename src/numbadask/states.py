"""Partial states of a reduction and how two of them merge.

A partial state is a few small arrays in the keepdims shape of the result (size 1
along every reduced axis), kept on the chunk's device; never a chunk-sized temporary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .dispatch import array_module, is_cupy_array


class SumCount(NamedTuple):
    """Float64 sum of the values seen and how many there were (the same for every
    output position, as ``mean`` skips nothing)."""

    total: Any
    count: int


def _same_device(a: Any, b: Any) -> tuple[Any, Any]:
    """Bring a host array to the GPU when the other operand lives there (only happens
    when one Dask array mixes NumPy and CuPy chunks under ``device="auto"``)."""
    if is_cupy_array(a) != is_cupy_array(b):
        import cupy

        return cupy.asarray(a), cupy.asarray(b)
    return a, b


def merge_sum_count(states: list[SumCount]) -> SumCount:
    """Merge the states of several chunks that share output positions.

    Examples
    --------
    >>> import numpy as np
    >>> merge_sum_count([SumCount(np.array([1.0]), 2), SumCount(np.array([3.0]), 1)])
    SumCount(total=array([4.]), count=3)
    """
    total, count = states[0]
    for other in states[1:]:
        total, other_total = _same_device(total, other.total)
        total = total + other_total
        count += other.count
    return SumCount(total, count)


class MinMax(NamedTuple):
    """Smallest and largest non-NaN values, how many values were not NaN (arrays), and
    how many values each output position saw (the same for all)."""

    lo: Any
    hi: Any
    valid: Any
    count: int


def merge_minmax(states: list[MinMax]) -> MinMax:
    """Merge the min/max states of several chunks that share output positions.

    Examples
    --------
    >>> import numpy as np
    >>> a = MinMax(np.array([1.0]), np.array([4.0]), np.array([2]), 2)
    >>> b = MinMax(np.array([0.5]), np.array([3.0]), np.array([1]), 2)
    >>> merge_minmax([a, b])
    MinMax(lo=array([0.5]), hi=array([4.]), valid=array([3]), count=4)
    """
    lo, hi, valid, count = states[0]
    for other in states[1:]:
        lo, other_lo = _same_device(lo, other.lo)
        hi, other_hi = _same_device(hi, other.hi)
        valid, other_valid = _same_device(valid, other.valid)
        xp = array_module(lo)
        lo, hi = xp.minimum(lo, other_lo), xp.maximum(hi, other_hi)
        valid = valid + other_valid
        count += other.count
    return MinMax(lo, hi, valid, count)
