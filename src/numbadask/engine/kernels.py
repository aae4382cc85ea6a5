"""The chunk kernels: each one a :class:`ChunkKernel` object, the same on every device.

A kernel reduces one chunk over some axes to its *outputs* (a few arrays in the
keepdims shape, on the chunk's device), from which a reduction builds its partial
state (:mod:`numbadask.engine.definition`).  Its CPU implementation is given here; its CUDA
implementation is the one :data:`numbadask.cuda_kernels.LAUNCHERS` holds for this
object (imported only when a chunk is reduced on the GPU: ``import numbadask`` never
imports ``numba.cuda``), unless the kernel carries its own (user-defined reductions).
Every implementation takes ``(chunk, axes, params, xp)``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from numbadask.cpu import args as cpu_args, extremes as cpu_extremes, moments as cpu_moments, sums as cpu_sums
from numbadask.cpu.args import arg_axis
from numbadask.cpu.layout import Walk, plan_walk

Implementation = Callable[[Any, tuple[int, ...], tuple, Any], Any]


def keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with every axis in ``axes`` of size 1.

    Examples
    --------
    >>> keepdims_shape((3, 4, 5), (0, 2))
    (1, 4, 1)
    """
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


@dataclass(frozen=True, eq=False)
class ChunkKernel:
    """One chunk kernel.

    Attributes
    ----------
    name : str
        What errors and the dashboard call it.
    cpu : callable
        ``cpu(chunk, axes, params, xp)``: the outputs of a non-empty NumPy chunk.
    empty : callable
        ``empty(shape, dtype, xp)``: the outputs of an empty chunk (keepdims ``shape``,
        input ``dtype``): the kernel's identity, so empty chunks run no kernel.
    gpu : callable, optional
        The CUDA implementation, for kernels not in ``cuda_kernels.LAUNCHERS``.
    """

    name: str
    cpu: Implementation
    empty: Callable[[tuple[int, ...], np.dtype, Any], Any]
    gpu: Implementation | None = None

    def __repr__(self) -> str:
        return f"<ChunkKernel {self.name}>"

    def run(self, x: Any, axes: tuple[int, ...], backend: str, xp: Any, params: tuple = ()) -> Any:
        """The outputs of chunk ``x`` reduced over ``axes`` on ``backend`` ("cpu"/"gpu")."""
        if x.size == 0:
            return self.empty(keepdims_shape(x.shape, axes), x.dtype, xp)
        if backend == "cpu":
            return self.cpu(x, axes, params, xp)
        return self.cuda()(x, axes, params, xp)

    def cuda(self) -> Implementation:
        """The CUDA implementation (imports ``numba.cuda``)."""
        if self.gpu is not None:
            return self.gpu
        return importlib.import_module("numbadask.cuda_kernels").LAUNCHERS[self.name]


def on_walk(kernel: Callable[[Walk], Any]) -> Implementation:
    """A CPU kernel of a :class:`~numbadask.cpu.layout.Walk` as an implementation."""

    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        # The reduced axes just outside a contiguous kept innermost axis: the walk's
        # rows-across fold (numbadask.cpu.walker), whatever the chunk's slicing.
        return kernel(plan_walk(x, axes, reduced_inward=True))

    run.__name__ = kernel.__name__
    run.walk_kernel = kernel  # type: ignore[attr-defined]  (a grouped chunk's runs walk it: numbadask.engine.grouped)
    return run


def zeros(*dtypes: type) -> Callable[[tuple[int, ...], np.dtype, Any], Any]:
    """``empty`` for outputs that start at zero, one array per dtype."""

    def empty(shape: tuple[int, ...], dtype: np.dtype, xp: Any) -> Any:
        out = tuple(xp.zeros(shape, dtype=dt) for dt in dtypes)
        return out if len(out) > 1 else out[0]

    return empty


def _moments_minmax_empty(shape: tuple[int, ...], dtype: np.dtype, xp: Any) -> tuple:
    return (*zeros(np.int64, np.float64, np.float64, np.float64)(shape, dtype, xp), *cpu_extremes.minmax_empty(shape, dtype, xp)[:2])


def _arg_kernel(want_max: bool) -> Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        return cpu_args.argminmax(x, arg_axis(axes), want_max)

    return run


def _arg_empty(shape: tuple[int, ...], dtype: np.dtype, xp: Any) -> tuple:
    none = xp.full(math.prod(shape), -1, dtype=np.int64)
    return xp.zeros(math.prod(shape), dtype=cpu_extremes.minmax_dtype(dtype)), none, none


def _nothing_read(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
    return xp.zeros(keepdims_shape(x.shape, axes))


SUM_FLOAT64 = ChunkKernel("sum_float64", on_walk(cpu_sums.sum_float64), zeros(np.float64))
NANSUM_FLOAT64 = ChunkKernel("nansum_float64", on_walk(cpu_sums.nansum_float64), zeros(np.float64, np.int64))
SUM_INT64 = ChunkKernel("sum_int64", on_walk(cpu_sums.sum_int64), zeros(np.int64))
#: The count of bool and integer input: the chunk's shape says it; no data is read.
SHAPE_COUNT = ChunkKernel("shape_count", _nothing_read, zeros(np.float64), gpu=_nothing_read)
MIN = ChunkKernel("min_only", on_walk(cpu_extremes.min_only), cpu_extremes.minmax_empty)
MAX = ChunkKernel("max_only", on_walk(cpu_extremes.max_only), cpu_extremes.minmax_empty)
MINMAX = ChunkKernel("minmax", on_walk(cpu_extremes.minmax), cpu_extremes.minmax_empty)
MOMENTS = ChunkKernel("shifted_moments", on_walk(cpu_moments.shifted_moments), zeros(np.int64, np.float64, np.float64, np.float64))
MOMENTS_MINMAX = ChunkKernel("shifted_moments_minmax", on_walk(cpu_moments.shifted_moments_minmax), _moments_minmax_empty)
ARGMIN = ChunkKernel("argmin", _arg_kernel(want_max=False), _arg_empty)
ARGMAX = ChunkKernel("argmax", _arg_kernel(want_max=True), _arg_empty)

#: Every hand-written kernel (the CUDA launchers must cover the ones without ``gpu``);
#: the non-NaN count of :func:`numbadask.count` is built from a user-defined reduction
#: (:data:`numbadask.reductions.sums.NON_NAN_COUNT`).
BUILT_IN = (SUM_FLOAT64, NANSUM_FLOAT64, SUM_INT64, SHAPE_COUNT, MIN, MAX, MINMAX, MOMENTS, MOMENTS_MINMAX, ARGMIN, ARGMAX)
