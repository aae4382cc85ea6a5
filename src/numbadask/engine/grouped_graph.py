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
from dask._task_spec import List, Task, TaskRef

from numbadask.engine import grouped
from numbadask.engine.collections import expr_backed, lowered, lowering_once, new_array
from numbadask.engine.graph import reduce_block

if TYPE_CHECKING:
    import dask.array as da

METHODS = ("map-reduce", "cohorts", "blockwise")

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
    method, parts = cohorts(method, {b: t.groups for b, t in tables.items()}, ngroups, lead_block)
    label = f"{name} (grouped chunk)"
    graph: dict = {}
    for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
        lead_shape = tuple(lead_chunks[a][i] for a, i in enumerate(lead))
        for p, groups in enumerate(parts):
            refs = []
            for b, table in tables.items():
                if not np.isin(table.groups, groups, assume_unique=True).any():
                    continue
                if not np.isin(table.groups, groups, assume_unique=True).all():
                    table = grouped.run_table(codes[slices[b]], keep=groups)
                key = (f"{name}-chunk-{token}", p, *lead, *b)
                graph[key] = Task(key, reduce_block, partial(chunk, table=table), label, (x.name, *lead, *b), TaskRef((x.name, *lead, *b)))
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
    chunks = (*lead_chunks, tuple(len(g) for g in parts))
    result = new_array(graph, f"{name}-{token}", chunks, meta, [x])
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if not (np.diff(order) > 0).all():
        result = result[..., np.argsort(order, kind="stable")]
    return result


def _finish_merged(merge: Callable[[list], Any], finish: Callable[..., Any], states: list) -> Any:
    """The last task of a cohort: merge its last states (none: the cohort's groups hold
    no values) and finish its block."""
    state = merge(states) if states else grouped.GroupedState(np.zeros(0, dtype=np.int64), ())
    return finish(state)
