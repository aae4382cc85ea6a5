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
from .states import SumCount, merge_sum_count


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


#: The dtypes of each kernel's outputs (one array, or a tuple of them), so an empty
#: chunk gets the same outputs, all zeros, without running a kernel.
KERNEL_OUTPUTS: dict[str, tuple[type, ...]] = {
    "sum_float64": (np.float64,),
    "nansum_float64": (np.float64, np.int64),
    "sum_int64": (np.int64,),
}


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _empty_output(name: str, shape: tuple[int, ...], xp: Any) -> Any:
    zeros = tuple(xp.zeros(shape, dtype=dt) for dt in KERNEL_OUTPUTS[name])
    return zeros if len(zeros) > 1 else zeros[0]


def run_kernel(reduction: Reduction, x: Any, axes: tuple[int, ...], device: str) -> Any:
    """Reduce one chunk with the kernel for its backend; the output stays there."""
    backend = dispatch.chunk_backend(x, device)
    x = dispatch.to_host(x) if backend == "cpu" else dispatch.to_gpu(x)
    xp = dispatch.array_module(x)
    name = reduction.kernel(x.dtype)
    if x.size == 0:
        return _empty_output(name, _keepdims_shape(x.shape, axes), xp)
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
