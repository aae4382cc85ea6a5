"""Partial states of a reduction and how two of them merge.

A partial state is a few small arrays in the keepdims shape of the result (size 1
along every reduced axis), kept on the chunk's device; never a chunk-sized temporary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from numbadask.engine.dispatch import array_module, is_cupy_array


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


class Moments(NamedTuple):
    """Shifted moments per output position: ``count`` non-NaN values, ``shift`` K, the
    sums ``s1`` of (x - K) and ``s2`` of (x - K)**2, optional ``lo``/``hi`` (min and max
    of the non-NaN values), and ``seen``: how many values each position saw, NaN
    included (the same for all)."""

    count: Any
    shift: Any
    s1: Any
    s2: Any
    lo: Any
    hi: Any
    seen: int


def _shifted(state: Moments, shift: Any, xp: Any) -> tuple[Any, Any]:
    """``state``'s sums re-expressed around ``shift``:  sum(x - K') = s1 + n d and
    sum((x - K')**2) = s2 + 2 d s1 + n d**2 with d = K - K'.  K and K' are both values
    of the data, so d is exact when they are close (and it is 0 for the first state)."""
    d = state.shift - shift
    has = state.count > 0
    n = state.count
    s1 = xp.where(has, state.s1 + n * d, 0.0)
    s2 = xp.where(has, state.s2 + 2.0 * d * state.s1 + n * d * d, 0.0)
    return s1, s2


def merge_moments(states: list[Moments]) -> Moments:
    """Merge the shifted moments of several chunks that share output positions.

    Examples
    --------
    >>> import numpy as np
    >>> a = Moments(np.array([2]), np.array([10.0]), np.array([1.0]), np.array([1.0]), None, None, 2)
    >>> b = Moments(np.array([1]), np.array([13.0]), np.array([0.0]), np.array([0.0]), None, None, 1)
    >>> m = merge_moments([a, b])   # the values 10, 11 and 13, around 10
    >>> m.count, m.shift, m.s1, m.s2
    (array([3]), array([10.]), array([4.]), array([10.]))
    """
    merged = states[0]
    for other in states[1:]:
        pairs = [_same_device(getattr(merged, f), getattr(other, f)) for f in ("count", "shift", "s1", "s2")]
        (count_a, count_b), (shift_a, shift_b), (s1_a, s1_b), (s2_a, s2_b) = pairs
        merged = merged._replace(count=count_a, shift=shift_a, s1=s1_a, s2=s2_a)
        other = other._replace(count=count_b, shift=shift_b, s1=s1_b, s2=s2_b)
        xp = array_module(count_a)
        shift = xp.where(merged.count > 0, merged.shift, other.shift)
        a1, a2 = _shifted(merged, shift, xp)
        b1, b2 = _shifted(other, shift, xp)
        lo, hi = merged.lo, merged.hi
        if lo is not None:
            lo, other_lo = _same_device(lo, other.lo)
            hi, other_hi = _same_device(hi, other.hi)
            lo, hi = xp.minimum(lo, other_lo), xp.maximum(hi, other_hi)
        merged = Moments(count_a + count_b, shift, a1 + b1, a2 + b2, lo, hi, merged.seen + other.seen)
    return merged


class ArgBest(NamedTuple):
    """Per output position: the best non-NaN value, its global index (-1: none yet) and
    the global index of the first NaN (-1: none)."""

    value: Any
    index: Any
    nan_index: Any


def merge_arg_best(states: list[ArgBest], want_max: bool) -> ArgBest:
    """Merge argmin (``want_max=False``) or argmax states; ties go to the smaller
    index, so the result does not depend on the merge order.

    Examples
    --------
    >>> import numpy as np
    >>> a = ArgBest(np.array([2.0]), np.array([4]), np.array([-1]))
    >>> b = ArgBest(np.array([2.0]), np.array([1]), np.array([7]))
    >>> merge_arg_best([a, b], want_max=False)
    ArgBest(value=array([2.]), index=array([1]), nan_index=array([7]))
    """
    value, index, nan_index = states[0]
    for other in states[1:]:
        value, other_value = _same_device(value, other.value)
        index, other_index = _same_device(index, other.index)
        nan_index, other_nan = _same_device(nan_index, other.nan_index)
        xp = array_module(value)
        better = other_value > value if want_max else other_value < value
        tie = (other_value == value) & (other_index < index)
        take = (other_index >= 0) & ((index < 0) | better | tie)
        value = xp.where(take, other_value, value)
        index = xp.where(take, other_index, index)
        nan_index = xp.where((other_nan >= 0) & ((nan_index < 0) | (other_nan < nan_index)), other_nan, nan_index)
    return ArgBest(value, index, nan_index)


class FieldStates(NamedTuple):
    """The partial states of one block: float64 ``values`` of shape ``(k, *keepdims
    shape)``, and whether they came from a GPU (the result then goes back there)."""

    values: Any
    on_gpu: bool
