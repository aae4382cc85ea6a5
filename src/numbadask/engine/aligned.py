"""The graph of a reduction of several arrays read side by side: broadcast as NumPy
broadcasts (:func:`broadcast_shape`), cut alike as ``da.blockwise`` inputs are
(:func:`common_chunks`), one task per aligned block reading every input once
(:func:`aligned_states`), merged in the tree of :mod:`.graph`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from dask._task_spec import Task, TaskRef

from numbadask.engine.collections import chunks_are_data, expr_backed, lowered, lowering_once, new_array
from numbadask.engine.graph import MAX_UNFUSED_CHUNKS, UnfusedTask, dask_fan_in, fan_in, local_threads_over, reduce_block, tree_reduce

if TYPE_CHECKING:
    import dask.array as da


def broadcast_shape(shapes: list[tuple[int, ...]], names: list[str], what: str) -> tuple[int, ...]:
    """NumPy's broadcast shape of ``shapes`` (dimensions compared from the last: equal,
    or one of them 1), or a ``ValueError`` naming the rule, the arrays and the
    dimension that breaks it (``what`` names the call in the message).

    Examples
    --------
    >>> broadcast_shape([(4, 3, 2), (3, 2), (1, 1)], ["x", "w", "s"], "f")
    (4, 3, 2)
    >>> broadcast_shape([(4, 3), (4,)], ["x", "y"], "f")
    Traceback (most recent call last):
    ...
    ValueError: f: arrays do not broadcast together (NumPy's rule: aligned from the last dimension, sizes must be equal or 1): x has shape (4, 3) and y (4,); at dimension -1, x has 3 and y 4
    """
    ndim = max((len(s) for s in shapes), default=0)
    shape = []
    for d in range(-ndim, 0):
        sizes = [(s[d], n) for s, n in zip(shapes, names) if len(s) >= -d]
        unknown = [n for m, n in sizes if math.isnan(m)]
        if unknown and any(m != 1 and not math.isnan(m) for m, _ in sizes):
            raise ValueError(
                f"{what}: {unknown[0]} has an unknown size along dimension {d} (its chunk sizes are unknown), where it must "
                f"match another array's; call .compute_chunk_sizes() on it first"
            )
        big = {m for m, _ in sizes if m != 1 and not math.isnan(m)}
        if unknown and not big:
            shape.append(math.nan)
            continue
        if len(big) > 1:
            (m0, n0), (m1, n1) = [(m, n) for m, n in sizes if m != 1][0], [(m, n) for m, n in sizes if m not in (1, _first_size(sizes))][0]
            listed = " and ".join(f"{n} {tuple(s)}" if i else f"{n} has shape {tuple(s)}" for i, (s, n) in enumerate(zip(shapes, names)))
            raise ValueError(
                f"{what}: arrays do not broadcast together (NumPy's rule: aligned from the last dimension, sizes must be equal or 1): "
                f"{listed}; at dimension {d}, {n0} has {m0} and {n1} {m1}"
            )
        shape.append(big.pop() if big else 1)
    return tuple(shape)


def _full_size(size: float, full: float) -> bool:
    """True when an array's ``size`` along a dimension is the broadcast size ``full``
    (not 1 broadcast; unknown sizes, NaN, match each other)."""
    return full != 1 and (size == full or (math.isnan(size) and math.isnan(full)))


def _first_size(sizes: list[tuple[int, str]]) -> int:
    """The first size other than 1 in ``(size, name)`` pairs."""
    return next(m for m, _ in sizes if m != 1)


def common_chunks(arrays: list[da.Array], shape: tuple[int, ...], what: str) -> tuple[list[da.Array], tuple[tuple[int, ...], ...]]:
    """``arrays`` cut alike, as ``da.blockwise``/``map_blocks`` inputs are
    (``dask.array.core.unify_chunks``): along each dimension of the broadcast
    ``shape``, the arrays that have it at full size are cut at every boundary any of
    them has (chunks (5, 2) and (4, 3) become (4, 1, 2): blocks split, never
    merged); an array of size 1 there is broadcast, one block.  Returns the arrays
    (rechunked where needed) and the chunks of the broadcast shape.  Unknown chunk
    sizes raise ``ValueError`` when two arrays must be cut alike along them.

    Examples
    --------
    >>> import dask.array as da
    >>> x, w = da.ones((4, 7), chunks=(2, (5, 2))), da.ones(7, chunks=((4, 3),))
    >>> (x, w), chunks = common_chunks([x, w], (4, 7), "f")
    >>> chunks, w.chunks
    (((2, 2), (4, 1, 2)), ((4, 1, 2),))
    """
    from dask.array.core import common_blockdim

    ndim = len(shape)
    wanted = [list(a.chunks) for a in arrays]
    chunks = []
    for d in range(ndim):
        full = [(i, d - (ndim - a.ndim)) for i, a in enumerate(arrays) if a.ndim > ndim - 1 - d and _full_size(a.shape[d - (ndim - a.ndim)], shape[d])]
        dims = [arrays[i].chunks[j] for i, j in full]
        if not dims:
            chunks.append((shape[d],) if shape[d] != 1 else (1,))
            continue
        if len(set(dims)) > 1 and any(math.isnan(c) for dim in dims for c in dim):
            raise ValueError(
                f"{what}: the arrays must be cut alike along dimension {d}, but their chunk sizes there are unknown "
                f"({dims}); call .compute_chunk_sizes() on them first"
            )
        common = common_blockdim(dims)
        for i, j in full:
            wanted[i][j] = common
        chunks.append(tuple(common))
    out = [a.rechunk(tuple(w)) if tuple(w) != a.chunks else a for a, w in zip(arrays, wanted)]
    return out, tuple(chunks)


def aligned_block(a: da.Array, index: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """The block of ``a`` (right-aligned, broadcast along its size-1 dimensions) that
    block ``index`` of the broadcast ``ndim``-dimensional array reads."""
    lead = ndim - a.ndim
    return tuple(0 if a.numblocks[d] == 1 else index[lead + d] for d in range(a.ndim))


def aligned_states(
    arrays: list[da.Array], shape: tuple[int, ...], chunks: tuple, name: str, axes: tuple[int, ...], chunk: Callable[..., Any], label: str
) -> da.Array:
    """An array of partial states, one block per block of the broadcast ``shape`` (cut
    as ``chunks``, :func:`common_chunks`): ``chunk(*blocks)`` of the aligned blocks of
    every array (each as it is: ``chunk`` broadcasts them), in the keepdims shape of
    ``axes``.  One task per block, reading every input once; left unfused when the
    inputs' chunks are data in the graph (as :func:`chunk_states`)."""
    ndim = len(shape)
    arrays = [lowered(a) if expr_backed(a) else a for a in arrays]
    data = all(chunks_are_data(a) for a in arrays) and math.prod(len(c) for c in chunks) <= MAX_UNFUSED_CHUNKS
    task = UnfusedTask if data else Task
    graph = {}
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        key = (name, *index)
        refs = [TaskRef((a.name, *aligned_block(a, index, ndim))) for a in arrays]
        graph[key] = task(key, reduce_block, chunk, label, index, *refs)
    state_chunks = tuple((1,) * len(c) if a in axes else c for a, c in enumerate(chunks))
    meta = np.empty((0,) * ndim, dtype=np.float64)
    return new_array(graph, name, state_chunks, meta, list(arrays))


@lowering_once
def aligned_reduction(
    arrays: list[da.Array], shape: tuple[int, ...], name: str, token: str, axes: tuple[int, ...], chunk: Callable[..., Any], label: str,
    combine: Callable[..., Any], aggregate: Callable[..., Any], keepdims: bool, split_every: int | dict[int, int], meta: Any, dask_rule: bool = False,
) -> da.Array:  # fmt: skip
    """The graph of a reduction of several arrays read side by side (``chunk(*blocks)``
    per aligned block, :func:`aligned_states`), over ``axes`` of their broadcast
    ``shape`` (:func:`broadcast_shape`; cut alike by :func:`common_chunks`), merged in
    the tree of :func:`tree_reduce` as :func:`reduction` merges one array's states.
    Any reduction of aligned arrays can use it (user-defined ones do; the two-array
    statistics' graph is the same shape)."""
    arrays, chunks = common_chunks(list(arrays), shape, label)
    states = aligned_states(arrays, shape, chunks, f"{name}-chunk-{token}", axes, chunk, label)
    fan = dask_fan_in(split_every, axes) if dask_rule else fan_in(split_every, axes, states.numblocks)
    local = all(local_threads_over(a) is not None for a in arrays)
    return tree_reduce(states, axes, combine, aggregate, keepdims, fan, {}, name, meta, False, UnfusedTask if local else Task)
