"""The Dask graph of a grouped reduction: which chunks merge with which, per group.

The groups (sorted global ids ``0..G-1``) are cut into *cohorts*, sets of groups
reduced together; each cohort is one block of the result along its last (group) axis.
For each cohort and each block of the kept (leading) axes, one chunk task per chunk
that holds any of the cohort's groups reduces just those groups' runs
(:func:`numbadask.engine.grouped.grouped_chunk`), and a tree of tasks merges their
states ``split_every`` at a time and finishes the cohort's block.  Every element is
read by exactly one chunk task.  How the cohorts are cut is the ``method`` (flox's
names, :func:`cohorts`):

``"map-reduce"``
    All groups together: one tree over every chunk.
``"cohorts"``
    Groups found in the same set of chunks together (a resample's months, a seasonal
    cycle's seasons): each tree merges only the chunks that share its groups.
``"blockwise"``
    Each chunk's groups alone, when no group spans two chunks along the grouped axes:
    no merges at all.

Whatever the method, a cohort whose merged state would pass :data:`STATE_BYTES` is
cut into slabs of consecutive groups, so no task ever holds a state for every group of
a dense chunking (a day-of-year climatology is a few slabs of days, not one state of
366 days per chunk).  The automatic choice (``method=None``) is ``"blockwise"`` where it
applies and ``"map-reduce"`` otherwise: with states that hold only the groups present
and slabs that bound their size, map-reduce has the fewest tasks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from dask._task_spec import DataNode, List, Task, TaskRef

from numbadask.engine import grouped
from numbadask.engine.collections import chunks_as_views, expr_backed, lowered, lowering_once, new_array, sources_in_memory
from numbadask.engine.dispatch import array_module
from numbadask.engine.graph import distributed_scheduler, local_thread_count, reduce_block

if TYPE_CHECKING:
    import dask.array as da

METHODS = ("map-reduce", "cohorts", "blockwise", "gather")

#: The most bytes a merged state of one cohort may hold per field (float64 per kept
#: position per group); larger cohorts are cut into slabs of consecutive groups.
STATE_BYTES = 16 * 2**20


def _grouped_block_slices(chunks: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], tuple[slice, ...]]:
    """Each block index along the grouped axes and its slices of the labels."""
    starts = [tuple(itertools.accumulate(c[:-1], initial=0)) for c in chunks]
    return {
        index: tuple(slice(starts[a][i], starts[a][i] + chunks[a][i]) for a, i in enumerate(index))
        for index in itertools.product(*(range(len(c)) for c in chunks))
    }


def cohorts(method: str | None, present: dict[tuple[int, ...], np.ndarray], ngroups: int, lead_block: int) -> tuple[str, list[np.ndarray]]:
    """The method (``method``, or the automatic choice) and its cohorts: lists of
    sorted group ids, together every group ``0..ngroups-1`` once.  ``present``: the
    groups of each grouped block; ``lead_block``: the most kept positions of one block.

    Examples
    --------
    >>> present = {(0,): np.array([0, 1]), (1,): np.array([1, 2]), (2,): np.array([3])}
    >>> m, c = cohorts(None, present, 5, 10)
    >>> m, [g.tolist() for g in c]
    ('map-reduce', [[0, 1, 2, 3, 4]])
    >>> m, c = cohorts("cohorts", present, 5, 10)
    >>> m, [g.tolist() for g in c]
    ('cohorts', [[0], [1], [2], [3], [4]])
    """
    spans = np.zeros(ngroups, dtype=np.int64)
    for groups in present.values():
        spans[groups] += 1
    one_block_each = bool((spans <= 1).all())
    if method is None:
        method = "blockwise" if one_block_each and len(present) > 1 else "map-reduce"
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} or None, got {method!r}")
    if method == "blockwise":
        if not one_block_each:
            spanning = np.flatnonzero(spans > 1)
            raise ValueError(
                f"method='blockwise' needs every group inside one chunk along the grouped axes, but {spanning.size} groups span "
                f"several (group ids {spanning[:5].tolist()}...): rechunk the array so chunk edges fall on group edges, or use 'map-reduce' or 'cohorts'"
            )
        found = [g for g in present.values() if g.size]
        missing = np.setdiff1d(np.arange(ngroups), np.concatenate(found) if found else [])
        groups = found + ([missing] if missing.size else [])
    elif method == "cohorts":
        where: dict[tuple, list[int]] = {}
        blocks = list(present)
        member = {b: set(present[b].tolist()) for b in blocks}
        for g in range(ngroups):
            where.setdefault(tuple(i for i, b in enumerate(blocks) if g in member[b]), []).append(g)
        groups = [np.array(g, dtype=np.int64) for g in where.values()]
    else:
        groups = [np.arange(ngroups, dtype=np.int64)]
    slab = max(1, STATE_BYTES // (8 * max(lead_block, 1)))
    return method, [np.asarray(g[i : i + slab], dtype=np.int64) for g in groups for i in range(0, len(g), slab)]


@lowering_once
def grouped_reduction(
    x: da.Array,
    codes: np.ndarray,
    ngroups: int,
    *,
    name: str,
    token: str,
    chunk: Callable[..., Any],
    merge: Callable[[list], Any],
    finish: Callable[..., Any],
    method: str | None,
    split_every: int,
    meta: Any,
    group_shape: tuple[int, ...] | None = None,
) -> da.Array:
    """The grouped reduction of ``x`` over its last ``codes.ndim`` axes labelled by
    ``codes`` (``0..ngroups-1``, -1 for none), as a Dask array of shape
    ``x.shape[:-codes.ndim] + (ngroups,)``.  ``chunk(block, table=...)`` makes a
    chunk's state, ``merge(list)`` merges states in order, ``finish(state,
    groups=..., lead_shape=...)`` makes a result block."""
    if expr_backed(x):
        x = lowered(x)
    k = codes.ndim
    lead_chunks, grouped_chunks = x.chunks[: x.ndim - k], x.chunks[x.ndim - k :]
    slices = _grouped_block_slices(grouped_chunks)
    tables = {b: grouped.run_table(codes[s]) for b, s in slices.items()}
    lead_block = max((math.prod(c) for c in itertools.product(*lead_chunks)), default=1)
    label = f"{name} (grouped chunk)"
    graph: dict = {}
    # In-memory chunks (or xarray's transposes of them) go into the tasks as data on a
    # local scheduler (a distributed one would ship them with the graph): no
    # task per chunk for the scheduler to run (month mean under accelerate(), same
    # process: 56-61 -> 51 ms, the kernels' time).
    views = chunks_as_views(x) if sources_in_memory(x) and not distributed_scheduler() else None

    def block_input(index: tuple) -> Any:
        return DataNode(None, views[index]) if views else TaskRef((x.name, *index))

    if method is None and gathers(x, tables, k):
        method = "gather"
    if method == "gather":
        if k != 1:
            raise ValueError(f"method='gather' groups along one axis; these labels have {k}")
        parts = gather_slabs(codes, ngroups, x.dtype.itemsize * lead_block)
        _gather_graph(graph, x, codes, parts, name, token, chunk, finish, label, block_input)
        return _result(graph, x, lead_chunks, parts, name, token, meta, group_shape, views)
    method, parts = cohorts(method, {b: t.groups for b, t in tables.items()}, ngroups, lead_block)
    threads = local_thread_count() if k == 1 and sources_in_memory(x) and not distributed_scheduler() else None
    for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
        lead_shape = tuple(lead_chunks[a][i] for a, i in enumerate(lead))
        for p, groups in enumerate(parts):
            held = []
            for b, table in tables.items():
                if not np.isin(table.groups, groups, assume_unique=True).any():
                    continue
                if not np.isin(table.groups, groups, assume_unique=True).all():
                    table = grouped.run_table(codes[slices[b]], keep=groups)
                held.append((b, table))
            refs = []
            for i, some in enumerate(_per_task(held, threads)):
                key = (f"{name}-chunk-{token}", p, *lead, i)
                blocks = [block_input((*lead, *b)) for b, _ in some]
                tables_ = tuple(t for _, t in some)
                func = partial(chunk, table=tables_[0]) if len(some) == 1 else partial(grouped.grouped_blocks, tables=tables_, **chunk.keywords)
                graph[key] = Task(key, reduce_block, func, label, (x.name, *lead, *some[0][0]), *blocks)
                refs.append(TaskRef(key))
            level = 0
            while len(refs) > split_every:
                merged = []
                for i in range(0, len(refs), split_every):
                    key = (f"{name}-merge{level}-{token}", p, *lead, i // split_every)
                    graph[key] = Task(key, merge, List(*refs[i : i + split_every]))
                    merged.append(TaskRef(key))
                refs, level = merged, level + 1
            key = (f"{name}-{token}", *lead, p)
            graph[key] = Task(key, _finish_merged, merge, partial(finish, groups=groups, lead_shape=lead_shape), List(*refs))
    return _result(graph, x, lead_chunks, parts, name, token, meta, group_shape, views)


def _result(graph: dict, x: da.Array, lead_chunks: tuple, parts: list[np.ndarray], name: str, token: str, meta: Any, group_shape: tuple[int, ...] | None, views: dict | None) -> da.Array:
    """The result array of the cohorts' blocks ``(name-token, *lead, p)``: as they are
    where the cohorts hold the groups in order, else joined into one block per block of
    the kept axes, groups in order (and the group axis split into ``group_shape``,
    several label arrays' groups).  Our own tasks, not dask's indexing or reshape,
    which query planning's Arrays lack."""
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    in_order = bool((np.diff(order) > 0).all())
    if in_order and group_shape is None:
        return new_array(graph, f"{name}-{token}", (*lead_chunks, tuple(len(g) for g in parts)), meta, [] if views else [x])
    out = f"{name}-ordered-{token}"
    permutation = None if in_order else np.argsort(order, kind="stable")
    shape = group_shape or (order.size,)
    for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
        key = (out, *lead, *(0,) * len(shape))
        graph[key] = Task(key, _joined, List(*(TaskRef((f"{name}-{token}", *lead, p)) for p in range(len(parts)))), permutation, shape)
    meta = meta.reshape(meta.shape[:-1] + (0,) * len(shape))
    return new_array(graph, out, (*lead_chunks, *((n,) for n in shape)), meta, [] if views else [x])


def _joined(blocks: list, permutation: np.ndarray | None, shape: tuple[int, ...]) -> Any:
    """Cohort blocks joined along the group axis, put in group order, reshaped."""
    xp = array_module(blocks[0])
    joined = xp.concatenate(blocks, axis=-1)
    if permutation is not None:
        joined = joined[..., xp.asarray(permutation)]
    return joined.reshape(joined.shape[:-1] + shape)


#: A chunk's grouped state larger than this many times the chunk (float64 sums,
#: compensations and counts for a day of float32 data: ~6x) makes the automatic
#: method gather each group's rows first (:func:`gathers`).
STATE_GROWTH = 2

#: The most bytes one gathering task copies (the rows of its slab of groups).
GATHER_BYTES = 32 * 2**20


def gathers(x: da.Array, tables: dict, k: int) -> bool:
    """Whether the automatic method is ``"gather"``: one grouped axis, chunks made from
    data in memory (gathering needs each chunk in several tasks; a chunk read from
    storage would be held until the last of them), and chunks' states, about 24 bytes per kept
    position per group in a chunk, more than :data:`STATE_GROWTH` times the chunks."""
    if k != 1 or not sources_in_memory(x):
        return False
    groups = sum(t.groups.size for t in tables.values())
    rows = sum(int((t.stops - t.starts).sum()) for t in tables.values())
    return groups * 24 > STATE_GROWTH * rows * x.dtype.itemsize


def gather_slabs(codes: np.ndarray, ngroups: int, row_bytes: int) -> list[np.ndarray]:
    """Consecutive groups whose rows (``row_bytes`` each) fill at most
    :data:`GATHER_BYTES`, one slab per gathering task; groups with no rows join the
    slab before them.

    Examples
    --------
    >>> [g.tolist() for g in gather_slabs(np.array([0, 1, 1, 2, 3, 3, 3]), 5, 10 * 2**20)]
    [[0, 1], [2], [3, 4]]
    """
    sizes = np.bincount(codes[codes >= 0], minlength=ngroups) * row_bytes
    slabs, current, filled = [], [], 0
    for g, size in enumerate(sizes.tolist()):
        if current and filled + size > GATHER_BYTES:
            slabs.append(np.array(current, dtype=np.int64))
            current, filled = [], 0
        current.append(g)
        filled += size
    if current:
        slabs.append(np.array(current, dtype=np.int64))
    return slabs


def _gather_graph(graph: dict, x: da.Array, codes: np.ndarray, parts: list[np.ndarray], name: str, token: str, chunk: Callable[..., Any], finish: Callable[..., Any], label: str, block_input: Callable[[tuple], Any]) -> None:
    """One task per slab of groups and block of the kept axes: it gathers the slab's
    rows from the chunks that hold them (:func:`numbadask.engine.grouped.gathered_chunk`)
    and finishes the slab's block."""
    lead_chunks, bounds = x.chunks[:-1], np.cumsum((0, *x.chunks[-1]))
    for p, groups in enumerate(parts):
        positions = np.flatnonzero(np.isin(codes, groups))
        positions = positions[np.argsort(codes[positions], kind="stable")]  # by group, in order within each
        blocks = np.searchsorted(bounds, positions, side="right") - 1
        used = np.unique(blocks)
        rows = tuple(positions[blocks == b] - bounds[b] for b in used)
        places = tuple(np.flatnonzero(blocks == b) for b in used)
        table = grouped.run_table(codes[positions])
        gather = grouped.Gather(rows, places, positions.size, table)
        for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
            lead_shape = tuple(lead_chunks[a][i] for a, i in enumerate(lead))
            key = (f"{name}-{token}", *lead, p)
            refs = [block_input((*lead, int(b))) for b in used]
            if not refs:  # a slab of groups with no values
                graph[key] = Task(key, _finish_merged, None, partial(finish, groups=groups, lead_shape=lead_shape), List())
                continue
            state = Task(None, reduce_block, partial(grouped.gathered_chunk, gather=gather, chunk=chunk), label, (x.name, *lead, p), *refs)
            graph[key] = Task(key, partial(finish, groups=groups, lead_shape=lead_shape), state)


def _per_task(held: list, threads: int | None) -> list[list]:
    """The chunks of one cohort and kept block, cut into one task per thread of the
    local scheduler (``threads``; None: one task per chunk).  In-memory chunks only:
    a task's chunks are all in memory while it runs.  Neighbours stay together, so a
    task's chunks are views of one array and walk as one (grouped.grouped_blocks):
    each task makes one state per group, and the tree merges ``threads`` states.

    Examples
    --------
    >>> [[b for b, _ in t] for t in _per_task([(i, None) for i in range(5)], 2)]
    [[0, 1, 2], [3, 4]]
    """
    if not threads or len(held) <= 1:
        return [[h] for h in held]
    size = -(-len(held) // threads)
    return [held[i : i + size] for i in range(0, len(held), size)]


def _finish_merged(merge: Callable[[list], Any], finish: Callable[..., Any], states: list) -> Any:
    """The last task of a cohort: merge its last states (none: the cohort's groups hold
    no values) and finish its block."""
    state = merge(states) if states else grouped.GroupedState(np.zeros(0, dtype=np.int64), ())
    return finish(state)
