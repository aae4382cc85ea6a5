"""The description of a reduction, and the three functions Dask runs for it.

A :class:`Reduction` says what a reduction keeps per chunk and how it ends:

* ``kernel``: the name of the chunk kernel; :mod:`numbadask.cpu_kernels` and
  :mod:`numbadask.cuda_kernels` both define it, so picking a device is a lookup;
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
    kernel: str
    partial: Callable[[Any, Any, tuple[int, ...]], Any]
    merge: Callable[[list[Any]], Any]
    finalize: Callable[[Any, np.dtype], Any]


def kernel_for(name: str, backend: str) -> Callable[..., Any]:
    """The chunk kernel ``name`` of ``backend`` ("cpu" or "gpu")."""
    if backend == "cpu":
        return getattr(cpu_kernels, name)
    # Imported here: it imports numba.cuda, which `import numbadask` must not.
    return getattr(importlib.import_module("numbadask.cuda_kernels"), name)


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def run_kernel(reduction: Reduction, x: Any, axes: tuple[int, ...], device: str) -> Any:
    """Reduce one chunk with the kernel for its backend; the output stays there."""
    backend = dispatch.chunk_backend(x, device)
    x = dispatch.to_host(x) if backend == "cpu" else dispatch.to_gpu(x)
    xp = dispatch.array_module(x)
    if x.size == 0:
        return xp.zeros(_keepdims_shape(x.shape, axes), dtype=np.float64)
    walk = plan_walk(x, axes, xp)
    if backend == "cpu":
        return kernel_for(reduction.kernel, "cpu")(walk)
    return kernel_for(reduction.kernel, "gpu")(walk, xp)


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


# --- mean ------------------------------------------------------------------------------


def _mean_partial(total: Any, x: Any, axes: tuple[int, ...]) -> SumCount:
    return SumCount(total, int(np.prod([x.shape[a] for a in axes], dtype=np.int64)))


def _mean_finalize(state: SumCount, result_dtype: np.dtype) -> Any:
    total, count = state
    if count == 0:
        warnings.warn("Mean of empty slice.", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count if count else total * np.nan
    return mean.astype(result_dtype)


MEAN = Reduction(
    name="mean",
    kernel="sum_float64",
    partial=_mean_partial,
    merge=merge_sum_count,
    finalize=_mean_finalize,
)
