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

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.core import flatten

from . import cpu_kernels, dispatch
from .layout import plan_walk
from .states import MinMax, SumCount, merge_minmax, merge_sum_count


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


#: What each kernel returns for an empty chunk (same types as for any other chunk),
#: so empty chunks need no kernel run.
EMPTY_OUTPUTS: dict[str, Callable[[tuple[int, ...], np.dtype, Any], Any]] = {
    "sum_float64": _zeros(np.float64),
    "nansum_float64": _zeros(np.float64, np.int64),
    "sum_int64": _zeros(np.int64),
    "minmax": cpu_kernels.minmax_empty,
}


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))




def run_kernel(reduction: Reduction, x: Any, axes: tuple[int, ...], device: str) -> Any:
    """Reduce one chunk with the kernel for its backend; the output stays there."""
    backend = dispatch.chunk_backend(x, device)
    x = dispatch.to_host(x) if backend == "cpu" else dispatch.to_gpu(x)
    xp = dispatch.array_module(x)
    name = reduction.kernel(x.dtype)
    if x.size == 0:
        return EMPTY_OUTPUTS[name](_keepdims_shape(x.shape, axes), x.dtype, xp)
    walk = plan_walk(x, axes, xp)
    if backend == "cpu":
        return kernel_for(name, "cpu")(walk)
    return kernel_for(name, "gpu")(walk, xp)


def chunk(x: Any, axis: tuple[int, ...], keepdims: bool, *, reduction: Reduction, device: str) -> Any:
    """Partial state of one chunk (``keepdims`` is always True here)."""
    return reduction.partial(run_kernel(reduction, x, axis, device), x, axis)


def combine(states: Any, axis: tuple[int, ...], keepdims: bool, *, reduction: Reduction) -> Any:
    """Merge the (nested lists of) partial states of neighbouring chunks."""
    if not isinstance(states, list):
        states = [states]
    return reduction.merge(list(flatten(states, container=list)))


def aggregate(
    states: Any, axis: tuple[int, ...], keepdims: bool, *, reduction: Reduction, result_dtype: np.dtype
) -> Any:
    """Merge the last partial states and finalize them into the result block."""
    result = reduction.finalize(combine(states, axis, True, reduction=reduction), result_dtype)
    if not keepdims:
        result = result.reshape(tuple(n for i, n in enumerate(result.shape) if i not in axis))
    return result


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


def _sum_count_partial(out: Any, x: Any, axes: tuple[int, ...]) -> SumCount:
    """NaN-skipping kernels count what they kept; otherwise the count is the shape's."""
    if isinstance(out, tuple):
        return SumCount(*out)
    return SumCount(out, int(np.prod([x.shape[a] for a in axes], dtype=np.int64)))


def _mean_finalize(state: SumCount, result_dtype: np.dtype) -> Any:
    total, count = state
    if bool((count == 0) if isinstance(count, int) else (count == 0).any()):
        warnings.warn("Mean of empty slice.", RuntimeWarning, stacklevel=2)
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
COUNT = _sum_family("count", _nan_mean_kernel, _count_finalize)


# --- the min/max family: min, max, nanmin, nanmax, ptp --------------------------------


def _minmax_kernel(dtype: np.dtype) -> str:
    return "minmax"


def _minmax_partial(out: Any, x: Any, axes: tuple[int, ...]) -> MinMax:
    lo, hi, valid = out
    return MinMax(lo, hi, valid, int(np.prod([x.shape[a] for a in axes], dtype=np.int64)))


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
        kernel=_minmax_kernel,
        partial=_minmax_partial,
        merge=merge_minmax,
        finalize=_minmax_finalize(pick, skipna, operation),
    )


MIN = _minmax_family("min", "min", False, "minimum")
MAX = _minmax_family("max", "max", False, "maximum")
NANMIN = _minmax_family("nanmin", "min", True, "fmin")
NANMAX = _minmax_family("nanmax", "max", True, "fmax")
PTP = _minmax_family("ptp", "ptp", False, "maximum")
