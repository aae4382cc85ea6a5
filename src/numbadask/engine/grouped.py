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


#: More runs than this per position gathers the chunk into one run per group: each
#: run costs a kernel call (~20-50 us), a gather one copy of the chunk.
RUNS_PER_POSITION = 1 / 16


def run_table(codes: np.ndarray, keep: np.ndarray | None = None) -> RunTable:
    """The :class:`RunTable` of one chunk's (flattened) labels ``codes`` (-1: no
    group), keeping only the groups in ``keep`` (sorted) when given.

    Examples
    --------
    >>> t = run_table(np.array([2, 2, -1, 0, 0, 2]))
    >>> t.groups.tolist(), t.slots.tolist(), t.starts.tolist(), t.stops.tolist(), t.order
    ([0, 2], [2, 0, 1], [0, 3, 5], [2, 5, 6], None)
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
    if starts.size > max(8, codes.size * RUNS_PER_POSITION):
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
    reduction, its state with a last axis of ``len(groups)`` (see the module
    docstring)."""

    groups: np.ndarray
    states: tuple


def _fields(state: Any) -> tuple:
    return tuple(state) if isinstance(state, tuple) else (state,)


def _rebuild(like: Any, fields: Sequence[Any]) -> Any:
    return type(like)(*fields) if isinstance(like, tuple) else fields[0]


def _as_arrays(state: Any, xp: Any, ndim: int) -> Any:
    """A run's state with its plain-number fields (a count every position shares) as
    arrays of ones but the last axis, so they stack and broadcast like the others."""
    return _rebuild(state, [xp.full((1,) * ndim, f) if isinstance(f, (int, float, np.number)) and not isinstance(f, (bool, np.bool_)) else f for f in _fields(state)])


def _concat(states: Sequence[Any], xp: Any) -> Any:
    """States side by side along their last (group) axis."""
    first = states[0]
    if len(states) == 1:
        return first
    columns = zip(*(_fields(s) for s in states))
    return _rebuild(first, [xp.concatenate(c, axis=-1) if hasattr(c[0], "shape") else c[0] for c in columns])


def _take(state: Any, index: np.ndarray, xp: Any) -> Any:
    """The groups at ``index`` of a state (along its last axis)."""
    return _rebuild(state, [xp.take(f, xp.asarray(index), axis=-1) if hasattr(f, "shape") else f for f in _fields(state)])


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
    per_group: list[list[list[Any]]] = [[[] for _ in table.groups] for _ in reductions]
    for slot, start, stop in zip(table.slots.tolist(), table.starts.tolist(), table.stops.tolist()):
        run = x[..., start:stop]
        for states, r in zip(per_group, reductions):
            states[slot].append(_as_arrays(definition.chunk(run, reduction=r, axes=(axis,), device=backend, params=params), xp, x.ndim))
    stacked = []
    for states, r in zip(per_group, reductions):
        merged = [s[0] if len(s) == 1 else r.merge(s) for s in states]
        stacked.append(_concat(merged, xp) if merged else None)
    return GroupedState(table.groups, tuple(stacked))


def _merge_two(a: GroupedState, b: GroupedState, reductions: tuple[definition.Reduction, ...]) -> GroupedState:
    if a.states[0] is None:
        return b
    if b.states[0] is None:
        return a
    xp = dispatch.array_module(_fields(a.states[0])[0])
    if a.groups.size == b.groups.size and np.array_equal(a.groups, b.groups):
        return GroupedState(a.groups, tuple(r.merge([sa, sb]) for r, sa, sb in zip(reductions, a.states, b.states)))
    _, ia, ib = np.intersect1d(a.groups, b.groups, assume_unique=True, return_indices=True)
    only_a = np.setdiff1d(np.arange(a.groups.size), ia)
    only_b = np.setdiff1d(np.arange(b.groups.size), ib)
    groups = np.concatenate((a.groups[only_a], b.groups[only_b], a.groups[ia]))
    order = np.argsort(groups, kind="stable")
    states = []
    for r, sa, sb in zip(reductions, a.states, b.states):
        parts = [_take(sa, only_a, xp), _take(sb, only_b, xp)]
        if ia.size:
            parts.append(r.merge([_take(sa, ia, xp), _take(sb, ib, xp)]))
        states.append(_take(_concat(parts, xp), order, xp))
    return GroupedState(groups[order], tuple(states))


def merge(states: Sequence[GroupedState], reductions: tuple[definition.Reduction, ...]) -> GroupedState:
    """Merge grouped states in order: a group's states merge as its reduction merges
    them, groups held by one state only are carried over.

    Examples
    --------
    >>> from numbadask.reductions.registry import REGISTRY
    >>> from numbadask.reductions.states import SumCount
    >>> a = GroupedState(np.array([0, 2]), (SumCount(np.array([1.0, 2.0]), np.array([1, 1])),))
    >>> b = GroupedState(np.array([2, 5]), (SumCount(np.array([3.0, 4.0]), np.array([1, 2])),))
    >>> m = merge([a, b], (REGISTRY["sum"],))
    >>> m.groups.tolist(), m.states[0].total.tolist(), m.states[0].count.tolist()
    ([0, 2, 5], [1.0, 5.0, 4.0], [1, 2, 2])
    """
    merged = states[0]
    for other in states[1:]:
        merged = _merge_two(merged, other, reductions)
    return merged


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
    out = xp.empty(lead_shape + (groups.size,), dtype=result_dtype)
    present = np.zeros(groups.size, dtype=bool)
    if state.states[0] is not None and state.groups.size:
        position = np.searchsorted(groups, state.groups)
        inside = (position < groups.size) & (groups[np.minimum(position, groups.size - 1)] == state.groups)
        present[position[inside]] = True
        out[..., xp.asarray(position[inside])] = _values(state, finalizers, result_dtype, lead_shape, fill_value, min_count, xp)[..., xp.asarray(np.flatnonzero(inside))]
    if not present.all():
        out[..., xp.asarray(np.flatnonzero(~present))] = empty_fill
    return out


def _values(state: GroupedState, finalizers: tuple[Any, ...], result_dtype: np.dtype, lead_shape: tuple[int, ...], fill_value: Any, min_count: int, xp: Any) -> Any:
    """The finished values of the groups ``state`` holds (see :func:`finish`)."""
    with warnings.catch_warnings():
        for message in definition.EMPTY_SLICE_WARNINGS:
            warnings.filterwarnings("ignore", message, RuntimeWarning)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = finalizers[0](state.states[0], result_dtype)
    values = xp.broadcast_to(xp.asarray(values), lead_shape + (state.groups.size,))
    if min_count > 0:
        too_few = xp.broadcast_to(xp.asarray(finalizers[1](state.states[1], np.dtype(np.int64))), values.shape) < min_count
        if bool(too_few.any()):
            if fill_value is None:
                raise ValueError(f"groups with fewer than min_count={min_count} values need a fill_value (flox's rule): pass fill_value=")
            values = xp.where(too_few, xp.asarray(fill_value).astype(result_dtype), values)
    return values.astype(result_dtype, copy=False)
