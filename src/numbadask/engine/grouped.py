"""Grouped partial states: a reduction's own state with a trailing group axis.

A grouped reduction (:func:`numbadask.groupby_reduce`) reduces the trailing axes of an
array per group of labels.  Its partial state is the reduction's ordinary state (the
same :class:`~numbadask.engine.definition.Reduction` object, so the same exact states:
compensated sums, shifted moments, min/max) for each group present in a chunk, side
by side along a last axis, with the sorted group ids (:class:`GroupedState`).  A chunk
holding a few of many groups holds a few states, never a block for every group (flox's
``reindex=True`` blow-up, flox #346).

A chunk is reduced *per run*: the labels of its slice of the grouped axis split into
runs of equal codes (a month in daily data is one run), and each run is a view of the
chunk reduced by the reduction's own chunk kernel, on the chunk's device (CPU or GPU),
into its group's slot.  So each element is read once, by the same kernels as every
other reduction, in memory order, with no copy; labels that are not runs (unsorted,
or several grouped axes) are first gathered into runs, one copy of the chunk
(:class:`RunTable`).  States merge by aligning their group ids (:func:`merge`), in
chunk order, so the bits do not depend on the scheduler.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from numbadask.cpu.layout import joined_runs, plan_runs
from numbadask.engine import definition, dispatch


class RunTable(NamedTuple):
    """What one chunk task reduces, along the chunk's grouped axes flattened into one:
    the sorted ``groups`` it holds (global ids), and its runs: run ``i`` is the
    positions ``starts[i]:stops[i]`` of group ``groups[slots[i]]``.  ``order``, when
    not None, gathers the positions first (``take`` along the flattened axis): the
    labels were not runs."""

    groups: np.ndarray
    slots: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    order: np.ndarray | None


#: More runs than this per position, and more than two per group, gathers the chunk
#: into one run per group: each run costs a kernel call (~20-50 us), a gather one copy
#: of the chunk.
RUNS_PER_POSITION = 1 / 16


def run_table(codes: np.ndarray, keep: np.ndarray | None = None) -> RunTable:
    """The :class:`RunTable` of one chunk's (flattened) labels ``codes`` (-1: no
    group), keeping only the groups in ``keep`` (sorted) when given.

    Examples
    --------
    >>> t = run_table(np.array([2, 2, -1, 0, 0, 2]))
    >>> t.groups.tolist(), t.slots.tolist(), t.starts.tolist(), t.stops.tolist(), t.order
    ([0, 2], [1, 0, 1], [0, 3, 5], [2, 5, 6], None)
    """
    codes = np.asarray(codes, dtype=np.int64).ravel()
    wanted = codes >= 0 if keep is None else np.isin(codes, keep)
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate(([0], edges)).astype(np.int64)
    stops = np.concatenate((edges, [codes.size])).astype(np.int64)
    if codes.size == 0:
        starts = stops = np.zeros(0, dtype=np.int64)
    first = wanted[starts] if codes.size else np.zeros(0, dtype=bool)
    starts, stops = starts[first], stops[first]
    order = None
    if starts.size > max(8, codes.size * RUNS_PER_POSITION) and starts.size > 2 * np.unique(codes[starts]).size:
        order = np.flatnonzero(wanted)
        order = order[np.argsort(codes[order], kind="stable")]
        sorted_codes = codes[order]
        edges = np.flatnonzero(np.diff(sorted_codes)) + 1
        starts = np.concatenate(([0], edges)).astype(np.int64)
        stops = np.concatenate((edges, [order.size])).astype(np.int64)
        run_codes = sorted_codes[starts] if order.size else np.zeros(0, dtype=np.int64)
        if order.size == 0:
            starts = stops = np.zeros(0, dtype=np.int64)
    else:
        run_codes = codes[starts]
    groups, slots = np.unique(run_codes, return_inverse=True)
    return RunTable(groups.astype(np.int64), slots.astype(np.int64).ravel(), starts, stops, order)


class GroupedState(NamedTuple):
    """The partial states of some groups: ``groups`` (sorted global ids) and, per
    reduction, a list of its ordinary states (keepdims shape), one per group: merged
    group by group, never copied into a block of all groups."""

    groups: np.ndarray
    states: tuple[list[Any], ...]


def grouped_chunk(
    x: Any,
    *,
    table: RunTable,
    reductions: tuple[definition.Reduction, ...],
    grouped_axes: int,
    device: str,
    params: tuple = (),
) -> GroupedState:
    """The :class:`GroupedState` of chunk ``x``, whose last ``grouped_axes`` axes are
    labelled (``table``, flattened in C order).  Each run is reduced, by every one of
    ``reductions``, as an ordinary chunk (:func:`numbadask.engine.definition.chunk`)."""
    backend, x = dispatch.place(x, device)
    xp = dispatch.array_module(x)
    if grouped_axes > 1:
        x = x.reshape(x.shape[: x.ndim - grouped_axes] + (-1,))
    if table.order is not None:
        x = xp.take(x, xp.asarray(table.order), axis=-1)
    axis = x.ndim - 1
    walked = _walked([x], [table], reductions) if backend == "cpu" else None
    if walked is not None:
        return walked
    per_group: list[list[list[Any]]] = [[[] for _ in table.groups] for _ in reductions]
    for slot, start, stop in zip(table.slots.tolist(), table.starts.tolist(), table.stops.tolist()):
        run = x[..., start:stop]
        for states, r in zip(per_group, reductions):
            states[slot].append(definition.chunk(run, reduction=r, axes=(axis,), device=backend, params=params))
    merged = tuple([s[0] if len(s) == 1 else r.merge(s) for s in states] for states, r in zip(per_group, reductions))
    return GroupedState(table.groups, merged)


def grouped_blocks(*blocks: Any, tables: tuple[RunTable, ...], reductions: tuple[definition.Reduction, ...], grouped_axes: int, device: str, params: tuple = ()) -> GroupedState:
    """The merged :class:`GroupedState` of neighbouring chunks along the grouped axis
    (``tables`` their labels): where they are views of one NumPy array (in-memory
    data, :func:`numbadask.cpu.layout.joined_runs`), one kernel call walks every run of
    every chunk into one state, so each group's state is made once per task, not once
    per chunk and then merged; otherwise chunk by chunk, merged."""
    each = {"reductions": reductions, "grouped_axes": grouped_axes, "device": device, "params": params}
    walked = _walked(blocks, tables, reductions) if grouped_axes == 1 and device != "gpu" else None
    return walked if walked is not None else merge([grouped_chunk(b, table=t, **each) for b, t in zip(blocks, tables)], reductions)


def _walked(blocks: Sequence[Any], tables: Sequence[RunTable], reductions: tuple[definition.Reduction, ...]) -> GroupedState | None:
    """The :class:`GroupedState` of NumPy chunks (their last axis labelled by
    ``tables``, gathered already) from one kernel call per reduction over every run
    (:func:`numbadask.cpu.walker.walk_runs`; several chunks: one buffer,
    :func:`numbadask.cpu.layout.joined_runs`).  None where one walk cannot: a chunk
    that is empty or not a NumPy array, a layout :func:`plan_runs` refuses, chunks
    that are not views of one array, a kernel with no walk."""
    if any(t.order is not None for t in tables) or not all(type(b) is np.ndarray and b.size for b in blocks):
        return None
    walk_kernels = [getattr(r.kernel(blocks[0].dtype).cpu, "walk_kernel", None) for r in reductions]
    if not all(walk_kernels):
        return None
    groups = np.unique(np.concatenate([t.groups for t in tables]))
    axis = blocks[0].ndim - 1
    slots = [np.searchsorted(groups, t.groups)[t.slots] for t in tables]
    walks = [plan_runs(b, axis, t.starts, t.stops, s, groups.size) for b, t, s in zip(blocks, tables, slots)]
    walk = walks[0] if len(walks) == 1 else joined_runs(list(blocks), walks, groups.size) if all(w is not None for w in walks) else None
    if walk is None:
        return None
    rows = sum(np.bincount(s, weights=t.stops - t.starts, minlength=groups.size) for s, t in zip(slots, tables))
    rows = np.asarray(rows).astype(np.int64).tolist()
    return GroupedState(groups, tuple(_group_states(r, k(walk), blocks[0], axis, rows) for r, k in zip(reductions, walk_kernels)))


class _Rows(NamedTuple):
    """What a reduction's ``state`` reads of a chunk: a group's rows' shape."""

    shape: tuple[int, ...]
    dtype: np.dtype


def _group_states(r: definition.Reduction, outputs: Any, x: Any, axis: int, rows: list[int]) -> list[Any]:
    """Per group, ``r``'s state from the outputs of one walk of every run (their first
    axis is the groups), as if that group's rows were a chunk of their own."""
    several = isinstance(outputs, tuple)
    states = []
    for g, n in enumerate(rows):
        part = tuple(a[g] for a in outputs) if several else outputs[g]
        shape = x.shape[:axis] + (n,) + x.shape[axis + 1 :]
        states.append(r.state(part, _Rows(shape, x.dtype), (axis,), definition.Where(None, shape)))
    return states


class Gather(NamedTuple):
    """What a gathering task takes from each of its chunks: the positions ``rows[i]``
    along the grouped axis of chunk ``i``, to be put at ``places[i]`` of a buffer of
    ``size`` positions ordered by group (``table``: one run per group)."""

    rows: tuple[np.ndarray, ...]
    places: tuple[np.ndarray, ...]
    size: int
    table: RunTable


def gathered_chunk(*blocks: Any, gather: Gather, chunk: Any) -> GroupedState:
    """The :class:`GroupedState` of some groups' rows gathered from ``blocks`` (their
    last axis grouped) into one buffer, ordered by group, the grouped axis outermost in
    memory: each group is then one run of rows ``chunk`` folds side by side, instead of
    one row per chunk into a state much larger than the row (a day-of-year mean)."""
    xp = dispatch.array_module(blocks[0])
    lead = blocks[0].shape[:-1]
    buffer = xp.empty((gather.size, *lead), dtype=blocks[0].dtype)
    for block, rows, places in zip(blocks, gather.rows, gather.places):
        buffer[xp.asarray(places)] = xp.moveaxis(block, -1, 0)[xp.asarray(rows)]
    return chunk(xp.moveaxis(buffer, 0, -1), table=gather.table)


def merge(states: Sequence[GroupedState], reductions: tuple[definition.Reduction, ...]) -> GroupedState:
    """Merge grouped states: each group's states, in the order given, as its reduction
    merges them; a group one state holds is carried over as it is.

    Examples
    --------
    >>> from numbadask.reductions.registry import REGISTRY
    >>> from numbadask.reductions.states import SumCount
    >>> a = GroupedState(np.array([0, 2]), ([SumCount(np.array([1.0]), 1), SumCount(np.array([2.0]), 1)],))
    >>> b = GroupedState(np.array([2, 5]), ([SumCount(np.array([3.0]), 1), SumCount(np.array([4.0]), 2)],))
    >>> m = merge([a, b], (REGISTRY["sum"],))
    >>> m.groups.tolist(), [s.total.tolist() + [s.count] for s in m.states[0]]
    ([0, 2, 5], [[1.0, 1], [5.0, 2], [4.0, 2]])
    """
    states = [s for s in states if s.groups.size]
    if len(states) <= 1:
        return states[0] if states else GroupedState(np.zeros(0, dtype=np.int64), tuple([] for _ in reductions))
    groups = np.unique(np.concatenate([s.groups for s in states]))
    holders: list[list[tuple[int, int]]] = [[] for _ in groups]
    for i, s in enumerate(states):
        for j, position in enumerate(np.searchsorted(groups, s.groups).tolist()):
            holders[position].append((i, j))
    merged = tuple(
        [states[h[0][0]].states[k][h[0][1]] if len(h) == 1 else r.merge([states[i].states[k][j] for i, j in h]) for h in holders]
        for k, r in enumerate(reductions)
    )
    return GroupedState(groups, merged)


def finish(
    state: GroupedState,
    *,
    finalizers: tuple[Any, ...],
    result_dtype: np.dtype,
    groups: np.ndarray,
    lead_shape: tuple[int, ...],
    empty_fill: Any,
    fill_value: Any,
    min_count: int,
    on_gpu: bool,
) -> Any:
    """The result block of ``groups`` (sorted global ids) from merged ``state``, shape
    ``lead_shape + (len(groups),)`` in ``result_dtype``: the main reduction finished per
    group (no NumPy empty-slice warnings: such a group is filled, as in flox), groups
    with fewer than ``min_count`` non-NaN values (the second state counts them) set to
    ``fill_value`` (None: flox's error), groups with no values to ``empty_fill``."""
    xp = np
    if on_gpu:
        import cupy as xp  # noqa: F811 (the result goes back to the chunks' device)
    # Groups outermost in memory, the block a transposed view: one group's values are
    # then one contiguous write, not a write every len(groups) elements (a resample's
    # 120 months: 7.8 M scattered stores per (180, 360) block); xarray transposes the
    # group axis back to the front, where it is C-contiguous again.
    out = xp.empty((groups.size, *lead_shape), dtype=result_dtype)
    present = np.zeros(groups.size, dtype=bool)
    position = np.searchsorted(groups, state.groups)
    with warnings.catch_warnings():
        for message in definition.EMPTY_SLICE_WARNINGS:
            warnings.filterwarnings("ignore", message, RuntimeWarning)
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, (p, g) in enumerate(zip(position.tolist(), state.groups.tolist())):
                if p < groups.size and groups[p] == g:
                    present[p] = True
                    counts = finalizers[1](state.states[1][j], np.dtype(np.int64)) if min_count > 0 else None
                    out[p] = _value(finalizers[0](state.states[0][j], result_dtype), counts, result_dtype, lead_shape, fill_value, min_count, xp)
    if not present.all():
        out[xp.asarray(np.flatnonzero(~present))] = empty_fill
    return xp.moveaxis(out, 0, -1)


def _value(value: Any, counts: Any, result_dtype: np.dtype, lead_shape: tuple[int, ...], fill_value: Any, min_count: int, xp: Any) -> Any:
    """One group's finished value (keepdims shape, the group axis last) over the kept
    positions, with ``fill_value`` where ``counts`` (non-NaN values) < ``min_count``."""
    value = xp.broadcast_to(xp.asarray(value), lead_shape + (1,))[..., 0]
    if counts is not None:
        too_few = xp.broadcast_to(xp.asarray(counts), lead_shape + (1,))[..., 0] < min_count
        if bool(too_few.any()):
            if fill_value is None:
                raise ValueError(f"groups with fewer than min_count={min_count} values need a fill_value (flox's rule): pass fill_value=")
            value = xp.where(too_few, xp.asarray(fill_value).astype(result_dtype), value)
    return value
