"""The description of a reduction, and the three functions Dask runs for it.

A :class:`Reduction` says what a reduction keeps per chunk and how it ends:

* ``kernel``: picks the chunk kernel for an input dtype, by name;
  :mod:`numbadask.cpu_kernels` and :mod:`numbadask.cuda_kernels` both define every
  name, so picking a device is a lookup;
* ``partial``: builds the partial state from the kernel's output and the chunk;
* ``merge``: merges partial states (associative);
* ``finalize``: turns the merged state into the result.

:func:`chunk`, :func:`combine` and :func:`aggregate` are what ``dask.array.reduction``
calls (with ``concatenate=False``: states travel as they are, not as arrays).
"""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.core import flatten

from . import cpu_kernels, dispatch
from .layout import plan_walk
from .states import ArgBest, MinMax, Moments, SumCount, merge_arg_best, merge_minmax, merge_moments, merge_sum_count


@dataclass(frozen=True)
class Reduction:
    """One reduction: its chunk kernel, partial state, merge and finalize steps."""

    name: str
    kernel: Callable[[np.dtype], str]
    partial: Callable[[Any, Any, tuple[int, ...]], Any]
    merge: Callable[[list[Any]], Any]
    finalize: Callable[[Any, np.dtype], Any]


def kernel_for(name: str, backend: str) -> Callable[..., Any]:
    """The chunk kernel ``name`` of ``backend`` ("cpu" or "gpu")."""
    if backend == "cpu":
        return getattr(cpu_kernels, name)
    # Imported here: it imports numba.cuda, which `import numbadask` must not.
    return getattr(importlib.import_module("numbadask.cuda_kernels"), name)


def _zeros(*dtypes: type) -> Callable[[tuple[int, ...], np.dtype, Any], Any]:
    def empty(shape: tuple[int, ...], dtype: np.dtype, xp: Any) -> Any:
        out = tuple(xp.zeros(shape, dtype=dt) for dt in dtypes)
        return out if len(out) > 1 else out[0]

    return empty


#: The "kernel" of a partial state that the chunk's shape alone decides (count of
#: integers): no data is read.
SHAPE_ONLY = "shape_only"

#: The kernel of the non-NaN count of float input: the generic path of user-defined
#: reductions (:data:`numbadask.custom.NON_NAN_COUNT`), as fast as a hand-written one
#: (bench/NOTES.md) and exact (float64 counts are exact up to 2**53 values).
GENERATED_COUNT = "generated_count"

#: What each kernel returns for an empty chunk (same types as for any other chunk),
#: so empty chunks need no kernel run.
EMPTY_OUTPUTS: dict[str, Callable[[tuple[int, ...], np.dtype, Any], Any]] = {
    "sum_float64": _zeros(np.float64),
    SHAPE_ONLY: _zeros(np.float64),
    "nansum_float64": _zeros(np.float64, np.int64),
    GENERATED_COUNT: _zeros(np.float64, np.int64),
    "sum_int64": _zeros(np.int64),
    "minmax": cpu_kernels.minmax_empty,
    "min_only": cpu_kernels.minmax_empty,
    "max_only": cpu_kernels.minmax_empty,
    "shifted_moments": _zeros(np.int64, np.float64, np.float64, np.float64),
    "shifted_moments_minmax": lambda shape, dtype, xp: (
        *_zeros(np.int64, np.float64, np.float64, np.float64)(shape, dtype, xp),
        *cpu_kernels.minmax_empty(shape, dtype, xp)[:2],
    ),
}


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def run_kernel(reduction: Reduction, x: Any, axes: tuple[int, ...], device: str) -> Any:
    """Reduce one chunk with the kernel for its backend; the output stays there."""
    backend, x = dispatch.place(x, device)
    xp = dispatch.array_module(x)
    name = reduction.kernel(x.dtype)
    if x.size == 0 or name == SHAPE_ONLY:
        return EMPTY_OUTPUTS[name](_keepdims_shape(x.shape, axes), x.dtype, xp)
    walk = plan_walk(x, axes, xp)
    if name == GENERATED_COUNT:
        return _generated_count(walk, backend, xp)
    if backend == "cpu":
        return kernel_for(name, "cpu")(walk)
    return kernel_for(name, "gpu")(walk, xp)


def _generated_count(walk: Any, backend: str, xp: Any) -> tuple[Any, Any]:
    """(zero sums, int64 non-NaN counts): the nansum kernel's outputs, from the
    generated count kernel."""
    from .custom import NON_NAN_COUNT  # here: numbadask.custom imports this module

    counts = NON_NAN_COUNT.kernels(backend).reduce(walk, (), xp)[0]
    return xp.zeros(walk.out_shape), counts.astype(np.int64)


def chunk(x: Any, *, reduction: Reduction, axes: tuple[int, ...], device: str) -> Any:
    """Partial state of one chunk over ``axes``, in the keepdims shape."""
    return reduction.partial(run_kernel(reduction, x, axes, device), x, axes)


def combine(states: Any, axis: tuple[int, ...], keepdims: bool, *, reduction: Reduction) -> Any:
    """Merge the (nested lists of) partial states of neighbouring chunks."""
    if not isinstance(states, list):
        states = [states]
    return reduction.merge(list(flatten(states, container=list)))


def aggregate(
    states: Any,
    axis: tuple[int, ...],
    keepdims: bool,
    *,
    reduction: Reduction,
    result_dtype: np.dtype,
) -> Any:
    """Merge the last partial states and finalize them into the result block."""
    result = reduction.finalize(combine(states, axis, True, reduction=reduction), result_dtype)
    return drop_axes(result, axis, keepdims)


def drop_axes(result: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """A keepdims-shaped result block without the reduced ``axis`` unless ``keepdims``;
    a NumPy 0-d result as a NumPy scalar, as NumPy's and dask.array's reductions give
    (CuPy keeps 0-d arrays, as CuPy's do)."""
    if not keepdims:
        result = result.reshape(tuple(n for i, n in enumerate(result.shape) if i not in axis))
    return result[()] if isinstance(result, np.ndarray) and result.ndim == 0 else result


# --- the sum family: sum, nansum, mean, nanmean, count ----------------------------------
# One partial state (SumCount) for all five; they differ in the kernel they pick and in
# how they finish.


def _float_sum_kernel(dtype: np.dtype) -> str:
    return "sum_float64"


def _exact_sum_kernel(dtype: np.dtype) -> str:
    return "sum_float64" if dtype.kind == "f" else "sum_int64"


def _nan_sum_kernel(dtype: np.dtype) -> str:
    return "nansum_float64" if dtype.kind == "f" else "sum_int64"


def _nan_mean_kernel(dtype: np.dtype) -> str:
    return "nansum_float64" if dtype.kind == "f" else "sum_float64"


def _count_kernel(dtype: np.dtype) -> str:
    return GENERATED_COUNT if dtype.kind == "f" else SHAPE_ONLY


def _sum_count_partial(out: Any, x: Any, axes: tuple[int, ...]) -> SumCount:
    """NaN-skipping kernels count what they kept; otherwise the count is the shape's."""
    if isinstance(out, tuple):
        return SumCount(*out)
    return SumCount(out, math.prod(x.shape[a] for a in axes))


def _mean_finalize(state: SumCount, result_dtype: np.dtype) -> Any:
    total, count = state
    if bool((count == 0) if isinstance(count, int) else (count == 0).any()):
        warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=2)  # NumPy 2's words
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return mean.astype(result_dtype)


def _sum_finalize(state: SumCount, result_dtype: np.dtype) -> Any:
    # int64 totals wrap to unsigned or narrower results as NumPy's own accumulation does.
    return state.total.astype(result_dtype)


def _count_finalize(state: SumCount, result_dtype: np.dtype) -> Any:
    total, count = state
    if isinstance(count, int):
        return (total * 0 + count).astype(result_dtype)
    return count.astype(result_dtype)


def _sum_family(name: str, kernel: Callable[[np.dtype], str], finalize: Callable[[Any, np.dtype], Any]) -> Reduction:
    return Reduction(name=name, kernel=kernel, partial=_sum_count_partial, merge=merge_sum_count, finalize=finalize)


SUM = _sum_family("sum", _exact_sum_kernel, _sum_finalize)
NANSUM = _sum_family("nansum", _nan_sum_kernel, _sum_finalize)
MEAN = _sum_family("mean", _float_sum_kernel, _mean_finalize)
NANMEAN = _sum_family("nanmean", _nan_mean_kernel, _mean_finalize)
COUNT = _sum_family("count", _count_kernel, _count_finalize)


# --- the min/max family: min, max, nanmin, nanmax, ptp --------------------------------


# min and max keep one running value, ptp both.
def _min_kernel(dtype: np.dtype) -> str:
    return "min_only"


def _max_kernel(dtype: np.dtype) -> str:
    return "max_only"


def _minmax_kernel(dtype: np.dtype) -> str:
    return "minmax"


_KERNEL_FOR_PICK = {"min": _min_kernel, "max": _max_kernel, "ptp": _minmax_kernel}


def _minmax_partial(out: Any, x: Any, axes: tuple[int, ...]) -> MinMax:
    lo, hi, valid = out
    return MinMax(lo, hi, valid, math.prod(x.shape[a] for a in axes))


def _minmax_finalize(pick: str, skipna: bool, operation: str) -> Callable[[MinMax, np.dtype], Any]:
    """Finalize for ``pick`` in {"min", "max", "ptp"}: NaN where a slice had NaN (or,
    skipping NaN, where it had nothing else, with NumPy's warning); NumPy's error for a
    reduction over an empty axis."""

    def finalize(state: MinMax, result_dtype: np.dtype) -> Any:
        lo, hi, valid, n = state
        if n == 0:
            raise ValueError(f"zero-size array to reduction operation {operation} which has no identity")
        value = {"min": lo, "max": hi}.get(pick)
        if value is None:
            value = hi - lo
        if lo.dtype.kind != "f":
            return value.astype(result_dtype)
        bad = valid == 0 if skipna else valid < n
        if skipna and bool(bad.any()):
            warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=2)
        xp = dispatch.array_module(value)
        return xp.where(bad, np.nan, value).astype(result_dtype)

    return finalize


def _minmax_family(name: str, pick: str, skipna: bool, operation: str) -> Reduction:
    return Reduction(
        name=name,
        kernel=_KERNEL_FOR_PICK[pick],
        partial=_minmax_partial,
        merge=merge_minmax,
        finalize=_minmax_finalize(pick, skipna, operation),
    )


MIN = _minmax_family("min", "min", False, "minimum")
MAX = _minmax_family("max", "max", False, "maximum")
NANMIN = _minmax_family("nanmin", "min", True, "fmin")
NANMAX = _minmax_family("nanmax", "max", True, "fmax")
PTP = _minmax_family("ptp", "ptp", False, "maximum")


# --- the variance family: var, std, nanvar, nanstd, and moments -----------------------


def _moments_partial(out: Any, x: Any, axes: tuple[int, ...]) -> Moments:
    count, shift, s1, s2, *minmax = out
    lo, hi = minmax if minmax else (None, None)
    return Moments(count, shift, s1, s2, lo, hi, math.prod(x.shape[a] for a in axes))


def variance(state: Moments, ddof: float, skipna: bool) -> Any:
    """Variance from merged shifted moments: (s2 - s1**2/n) / max(n - ddof, 0), with
    NumPy's NaN rules: NaN where a slice held NaN (unless skipping it), and, skipping
    NaN, where n - ddof <= 0.  An empty slice has m2 = 0, as in NumPy, so a negative
    ``ddof`` gives 0 there."""
    xp = dispatch.array_module(state.s1)
    n = state.count
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = xp.where(n > 0, xp.maximum(state.s2 - state.s1 * state.s1 / n, 0.0), 0.0)
        var = m2 / xp.maximum(n - ddof, 0)
    if skipna:  # np.nanvar: NaN where n - ddof <= 0 (np.var divides by 0: inf or NaN)
        return xp.where(n - ddof <= 0, np.nan, var)
    return xp.where(n < state.seen, np.nan, var)


def _var_finalize(state: Moments, result_dtype: np.dtype, *, ddof: float, skipna: bool, root: bool) -> Any:
    dof = state.count - ddof if skipna else state.seen - ddof
    too_few = dof <= 0
    if bool(too_few.any() if hasattr(too_few, "any") else too_few):
        # NumPy 2's words: np.nanvar ends its sentence, np.var does not.
        warnings.warn("Degrees of freedom <= 0 for slice" + ("." if skipna else ""), RuntimeWarning, stacklevel=2)
    var = variance(state, ddof, skipna)
    xp = dispatch.array_module(var)
    return (xp.sqrt(var) if root else var).astype(result_dtype)


def _moments_kernel(dtype: np.dtype) -> str:
    return "shifted_moments"


def _moments_minmax_kernel(dtype: np.dtype) -> str:
    return "shifted_moments_minmax"


def variance_reduction(name: str, ddof: float, skipna: bool, root: bool) -> Reduction:
    """var (root=False) or std (root=True), skipping NaN or not, for one ``ddof``."""
    return Reduction(
        name=name,
        kernel=_moments_kernel,
        partial=_moments_partial,
        merge=merge_moments,
        finalize=functools.partial(_var_finalize, ddof=ddof, skipna=skipna, root=root),
    )


class StateBlock:
    """A merged partial state standing as one block of a Dask array, so that several
    results can be finished from it in one graph (one read of the data)."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state


def _keep_state(state: Any, result_dtype: np.dtype) -> StateBlock:
    return StateBlock(state)


MOMENTS = Reduction(
    name="moments",
    kernel=_moments_minmax_kernel,
    partial=_moments_partial,
    merge=merge_moments,
    finalize=_keep_state,
)


# --- the arg family: argmin, argmax, nanargmin, nanargmax -----------------------------
# Chunks need their offsets in the whole array to report global indices, which
# dask.array.reduction does not give a chunk function: `arg_reduce` builds the chunk
# layer itself (as dask.array's own arg_reduction does) and hands it to the same tree
# reduction, combine and aggregate as every other reduction.


def _global_index(local: Any, xp: Any, chunk_shape: tuple[int, ...], axis: int | None, offsets: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """Chunk-local indices (-1: none) as indices into the whole array."""
    if not shape:
        return local
    if axis is not None:
        return xp.where(local >= 0, local + offsets[axis], -1)
    valid = local >= 0
    multi = xp.unravel_index(xp.where(valid, local, 0), chunk_shape)
    flat = xp.ravel_multi_index(tuple(i + o for i, o in zip(multi, offsets)), shape)
    return xp.where(valid, flat, -1)


def arg_chunk(
    x: Any, *, reduction: Reduction, device: str, axis: int | None, offsets: tuple[int, ...], shape: tuple[int, ...], want_max: bool
) -> ArgBest:
    """The ArgBest state of one chunk, with global indices, in the keepdims shape."""
    backend, x = dispatch.place(x, device)
    xp = dispatch.array_module(x)
    axes = tuple(range(x.ndim)) if axis is None else (axis,)
    out_shape = _keepdims_shape(x.shape, axes)
    if x.size == 0:
        value = xp.zeros(out_shape, dtype=cpu_kernels.minmax_dtype(x.dtype))
        none = xp.full(out_shape, -1, dtype=np.int64)
        return ArgBest(value, none, none)
    if backend == "cpu":
        value, index, nan_index = cpu_kernels.argminmax(x, axis, want_max)
    else:
        value, index, nan_index = kernel_for("argminmax", "gpu")(x, axis, want_max, xp)
    index = _global_index(index, xp, x.shape, axis, offsets, shape)
    nan_index = _global_index(nan_index, xp, x.shape, axis, offsets, shape)
    return ArgBest(value.reshape(out_shape), index.reshape(out_shape), nan_index.reshape(out_shape))


def _arg_finalize(state: ArgBest, result_dtype: np.dtype, *, skipna: bool) -> Any:
    value, index, nan_index = state
    if skipna:
        if bool((index < 0).any()):
            raise ValueError("All-NaN slice encountered")
        return index.astype(result_dtype)
    xp = dispatch.array_module(index)
    return xp.where(nan_index >= 0, nan_index, index).astype(result_dtype)


def _built_by_arg_chunk(*args: Any) -> Any:
    raise TypeError("arg reductions build their chunk states in arg_chunk")


def _arg_family(name: str, want_max: bool, skipna: bool) -> Reduction:
    return Reduction(
        name=name,
        kernel=_built_by_arg_chunk,
        partial=_built_by_arg_chunk,
        merge=functools.partial(merge_arg_best, want_max=want_max),
        finalize=functools.partial(_arg_finalize, skipna=skipna),
    )


ARGMIN = _arg_family("argmin", want_max=False, skipna=False)
ARGMAX = _arg_family("argmax", want_max=True, skipna=False)
NANARGMIN = _arg_family("nanargmin", want_max=False, skipna=True)
NANARGMAX = _arg_family("nanargmax", want_max=True, skipna=True)
