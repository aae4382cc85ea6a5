"""The min/max family: min, max, nanmin, nanmax and ptp.

One partial state (:class:`~numbadask.reductions.states.MinMax`): the smallest and largest
non-NaN values and how many values were not NaN.  min and max keep one running value
(a third less vector work), ptp both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import dispatch, kernels
from numbadask.reductions.call import function_without_dtype
from numbadask.engine.definition import Reduction, Where
from numbadask.reductions.states import MinMax, merge_minmax

if TYPE_CHECKING:
    pass


def _minmax(out: Any, x: Any, axes: tuple[int, ...], where: Where) -> MinMax:
    lo, hi, valid = out
    return MinMax(lo, hi, valid, math.prod(x.shape[a] for a in axes))


def _low(state: MinMax) -> Any:
    return state.lo


def _high(state: MinMax) -> Any:
    return state.hi


def _range(state: MinMax) -> Any:
    return state.hi - state.lo


def _finalize(value_of: Callable[[MinMax], Any], operation: str) -> Callable[..., Any]:
    """The finalize of a min/max reduction: NaN where a slice had NaN (or, skipping
    NaN, where it had nothing else, with NumPy's warning); NumPy's error for a
    reduction over an empty axis, naming NumPy's ``operation``."""

    def finalize(state: MinMax, result_dtype: np.dtype, skipna: bool) -> Any:
        empty = state.count == 0  # an int; an array of counts per group in grouped states
        if bool(empty.any() if hasattr(empty, "any") else empty):
            raise ValueError(f"zero-size array to reduction operation {operation} which has no identity")
        value = value_of(state)
        if state.lo.dtype.kind != "f":
            return value.astype(result_dtype)
        bad = state.valid == 0 if skipna else state.valid < state.count
        if skipna and bool(bad.any()):
            Reduction.numpy_warning("All-NaN slice encountered")
        xp = dispatch.array_module(value)
        return xp.where(bad, np.nan, value).astype(result_dtype)

    return finalize


def _family(name: str, numpy: Any, kernel: kernels.ChunkKernel, value_of: Any, operation: str, **rules: Any) -> Reduction:
    return Reduction(
        name=name,
        kernel=lambda dtype: kernel,
        state=_minmax,
        merge=merge_minmax,
        finalize=_finalize(value_of, operation),
        numpy=numpy,
        integer_dtype=None,
        options=("skipna",),
        **rules,
    )


MIN = _family("min", np.min, kernels.MIN, _low, "minimum")
MAX = _family("max", np.max, kernels.MAX, _high, "maximum")
PTP = _family("ptp", np.ptp, kernels.MINMAX, _range, "maximum")
NANMIN = _family("nanmin", np.nanmin, kernels.MIN, _low, "fmin", skipna=True, nan_twin="min")
NANMAX = _family("nanmax", np.nanmax, kernels.MAX, _high, "fmax", skipna=True, nan_twin="max")

REDUCTIONS = (MIN, MAX, PTP, NANMIN, NANMAX)

_DOC = """{summary}

    One read of each chunk finds its smallest and largest non-NaN values and counts the
    NaN; {nan_rule}  Reducing over an empty axis raises NumPy's ``ValueError``.  Same
    parameters as :func:`sum`, less ``dtype``; the result has the input's dtype.

    {handoff}

    A hand-written kernel, not the generic :func:`numbadask.reduction` path: it keeps
    the input's dtype exactly (int64 beyond 2**53 included; that path keeps float64)
    and vectorizes through LLVM's ``minnum``/``maxnum`` intrinsics, where ``min()``
    and ``max()`` in a generic merge do not (0.73-0.75x the speed, bench/NOTES.md).

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.{name}(np.array([[3.0, np.nan, 1.0], [2.0, 5.0, 4.0]]), axis=1).compute()
    array({example})
    """


def _function(r: Reduction, summary: str, nan_rule: str, example: str) -> Any:
    return function_without_dtype(r, _DOC, summary=summary, nan_rule=nan_rule, example=example)


_PROPAGATES = "a slice holding NaN gives NaN, as in NumPy."
_SKIPS = 'NaN are skipped; an all-NaN slice gives NaN with NumPy\'s ``RuntimeWarning: All-NaN slice encountered``.'

min = _function(MIN, "Minimum along the given axes (:func:`numpy.min`).", _PROPAGATES, "[nan,  2.]")
max = _function(MAX, "Maximum along the given axes (:func:`numpy.max`).", _PROPAGATES, "[nan,  5.]")
nanmin = _function(NANMIN, "Minimum ignoring NaN (:func:`numpy.nanmin`).", _SKIPS, "[1., 2.]")
nanmax = _function(NANMAX, "Maximum ignoring NaN (:func:`numpy.nanmax`).", _SKIPS, "[3., 5.]")
ptp = _function(PTP, "Range, maximum minus minimum (:func:`numpy.ptp`).", _PROPAGATES, "[nan,  3.]")
