"""Weighted sums and means in one read of the data and its weights: :func:`average`
(:func:`numpy.average`'s rules) and the pieces of the ``.nd`` accessor's ``weighted``
(:func:`weighted_sums`, :func:`weighted_field`).  NumPy chunks: one njit kernel per block
pair (:mod:`numbadask.cpu.comoments`); CuPy chunks: the CUDA kernel of the user-defined
reduction :func:`_weighted_pair`.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from numbadask.engine import graph
from numbadask.engine.checks import Axis, SplitEvery, normalize_axes
from numbadask.engine.definition import drop_axes
from numbadask.engine.dispatch import array_module
from numbadask.engine.kernels import keepdims_shape
from numbadask.reductions.custom import reduction
from numbadask.reductions.pairs import aligned_inputs, as_dask, check_chunks, gpu_states, result_meta_like, state_graph, two_d

if TYPE_CHECKING:
    import dask.array as da


def _weighted_merge(a: tuple, b: tuple) -> tuple:
    return (a[0] + b[0], a[1] + b[1])


@reduction(merge=_weighted_merge, identity=(0.0, 0.0), arrays=2)
def _weighted_pair(a: float, w: float, skip: float = 0.0) -> tuple:
    """sum(w * a) and sum(w) of one pair: the CUDA kernel of CuPy blocks (``skip``:
    a NaN ``a`` counts as no element, a NaN weight still makes the sums NaN)."""
    if skip != 0.0 and a != a:
        return (0.0, 0.0)
    return (w * a, w)


class WeightedState(NamedTuple):
    """sum(w * a) and sum(w) per output position (float64, keepdims shape)."""

    swa: Any
    sw: Any


def _weighted_chunk(a: Any, w: Any, axes: tuple[int, ...], skip: bool = False) -> WeightedState:
    """sum(w * a) and sum(w) of one block of a and its aligned block of weights (``skip``:
    leaving out the elements where a is NaN)."""
    from numbadask.cpu import comoments as cpu_comoments

    check_chunks(a, w)
    if type(a) is not np.ndarray or type(w) is not np.ndarray:
        return _gpu_weighted(a, w, axes, skip)
    shape = keepdims_shape(a.shape, axes)
    a2, rows = two_d(a, axes)
    w2, _ = two_d(w, axes, rows)
    kernel = cpu_comoments.weighted_rows if rows else cpu_comoments.weighted_columns
    swa, sw = kernel(a2, w2, bool(skip))
    return WeightedState(swa.reshape(shape), sw.reshape(shape))


def _gpu_weighted(a: Any, w: Any, axes: tuple[int, ...], skip: bool = False) -> WeightedState:
    """The weighted sums of one block pair on the GPU: :func:`_weighted_pair`'s kernel."""
    swa, sw = gpu_states(_weighted_pair, a, w, axes, (1.0 if skip else 0.0,))
    return WeightedState(swa, sw)


def merge_weighted(states: list[WeightedState], axis: Any = None, keepdims: bool = True) -> WeightedState:
    """Add the weighted sums of blocks that share output positions, in their order."""
    swa, sw = states[0]
    for other in states[1:]:
        swa, sw = swa + other.swa, sw + other.sw
    return WeightedState(swa, sw)


def weighted_sums(a: da.Array, w: da.Array, shape: tuple[int, ...], axes: tuple[int, ...], skip: bool, split_every: SplitEvery) -> da.Array:
    """The merged :class:`WeightedState` blocks of ``a`` and ``w`` (broadcast to
    ``shape``, see :func:`aligned_inputs`) over ``axes``."""
    chunk = functools.partial(_weighted_chunk, skip=skip)
    return state_graph(a, w, shape, axes, split_every, "weighted-skip" if skip else "weighted", chunk, merge_weighted)


def _weighted_finish(block: WeightedState, field: str, dtype: np.dtype, axes: tuple[int, ...], keepdims: bool, zero: str) -> Any:
    """``field`` ("mean", "sum" or "weights") of a merged block; ``zero``: what a zero sum
    of weights gives to the mean, "raise" (np.average's ZeroDivisionError) or "nan"."""
    xp = array_module(block.sw)
    if zero == "raise" and bool((block.sw == 0.0).any()):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    if field == "sum":
        value = block.swa
    elif field == "weights":
        value = block.sw
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = xp.where(block.sw == 0.0, np.nan, block.swa / block.sw)
    return drop_axes(value.astype(dtype), axes, keepdims)


def weighted_field(state: da.Array, like: da.Array, field: str, dtype: np.dtype, axes: tuple[int, ...], keepdims: bool, zero: str) -> da.Array:
    """One result of :func:`weighted_sums`' states, as a Dask array (``like``: an input,
    for the array type of the result's meta)."""
    out_ndim = state.ndim if keepdims else state.ndim - len(axes)
    finish = functools.partial(_weighted_finish, field=field, dtype=dtype, axes=axes, keepdims=keepdims, zero=zero)
    return graph.finish_blocks(state, f"weighted-numbadask-{field}", finish, axes, keepdims, result_meta_like(like, out_ndim, dtype))


def average(a: Any, axis: Axis = None, weights: Any = None, returned: bool = False, keepdims: bool = False, split_every: SplitEvery = None) -> Any:
    """Weighted average along ``axis`` (:func:`numpy.average`), one read of a and weights.

    NumPy's rules: ``weights`` has the shape of ``a``, or (with ``axis`` given) the
    shape of ``a`` along ``axis`` (``TypeError`` without ``axis``, ``ValueError`` for any
    other shape, NumPy's messages); the result dtype is ``np.result_type(a, weights)``,
    float64 at least for integer or bool ``a``; NaN propagates.  Each block of a and its
    aligned block of weights are reduced together by one ``@numba.njit`` kernel to
    sum(w * a) and sum(w), in float64, merged in a fixed-order tree.  A zero sum of
    weights raises NumPy's ``ZeroDivisionError("Weights sum to zero, can't be
    normalized")``, when the result is computed (the result is lazy).  Without
    ``weights``: :func:`numbadask.mean`.  CuPy chunks: one CUDA kernel per block pair,
    on the GPU.  Complex, object and datetime data raise
    ``TypeError``.

    Parameters
    ----------
    a : array_like
        Dask, NumPy or CuPy array of bool, integer or real floating dtype.
    axis : None, int or tuple of ints, optional
        Axes to average over (default: all).
    weights : array_like, optional
        Weights of the values of ``a`` (shape rules above).
    returned : bool, optional
        Also return the sum of the weights, broadcast to the average's shape.
    keepdims, split_every : optional
        As in :func:`numbadask.comoments`.

    Returns
    -------
    dask.array.Array, or (average, sum_of_weights) with ``returned``
        Lazy arrays of one graph.

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> avg, scl = numbadask.average(a, axis=1, weights=[1.0, 0.0, 3.0], returned=True)
    >>> dask.compute(avg, scl)
    (array([2.5, 5.5]), array([4., 4.]))
    """
    import dask.array as da

    from numbadask.reductions.sums import mean

    from numpy.lib.array_utils import normalize_axis_tuple

    x = as_dask(a, "average", "a")
    # In the order given, as np.average checks and lays out the weights.
    axes = normalize_axis_tuple(axis, x.ndim, argname="axis") if axis is not None else None
    if weights is None:
        avg = mean(x, axis=axes, keepdims=keepdims, split_every=split_every)
        if not returned:
            return avg
        scale = x.size / max(math.prod(avg.shape), 1) if x.size else 0.0
        return avg, da.full(avg.shape, scale, dtype=avg.dtype, chunks=avg.chunks)
    w = as_dask(weights, "average", "weights")
    dtype = np.result_type(x.dtype, w.dtype, "f8") if x.dtype.kind in "biu" else np.result_type(x.dtype, w.dtype)
    if x.shape != w.shape:
        if axes is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if w.shape != tuple(x.shape[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along specified axis.")
        order = tuple(int(i) for i in np.argsort(axes))
        if order != tuple(range(len(order))):
            w = w.transpose(order)
        # np.average's reshape to size 1 along the other axes, as new axes (no reshape
        # on a query-planning Array)
        w = w[tuple(slice(None) if ax in axes else None for ax in range(x.ndim))]
    x, w, shape = aligned_inputs(x, w, "average", ("a", "weights"))
    axes = normalize_axes(axes, len(shape))
    state = weighted_sums(x, w, shape, axes, False, split_every)
    avg = weighted_field(state, x, "mean", dtype, axes, bool(keepdims), "raise")
    if not returned:
        return avg
    return avg, weighted_field(state, x, "weights", dtype, axes, bool(keepdims), "raise")
