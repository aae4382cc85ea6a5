"""The memory layout of one chunk, reduced to what a kernel needs to walk it.

A chunk may be any strided view (square chunks cut from a C-ordered array, reversed
axes, broadcast axes).  Copying it would cost a chunk-sized temporary, so instead both
the CPU and the CUDA kernels walk the chunk's own memory through a :class:`Walk`:

* ``buf``: a 1-D contiguous view of the memory span the chunk touches, starting at its
  lowest address (a view, never a copy);
* ``base``: the element offset in ``buf`` of the chunk's element ``[0, 0, ...]``;
* ``sizes``/``strides``/``out_strides``: the chunk's axes in memory order (largest
  stride first; with ``reduced_inward``, the reduced axes moved inward, see
  :func:`plan_walk`), strides in elements (negative for reversed axes), and the stride of
  each axis in the C-ordered partial-result array (0 for a reduced axis).

Adjacent axes that are both kept or both reduced and lie back to back in memory are
merged, and size-1 axes dropped, so a C-contiguous chunk reduced over all axes is one
long axis and the kernels' innermost loop runs over contiguous memory wherever the
layout allows.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


class _Outputs:
    """What a walk says of its outputs: their keepdims shape and how many there are."""

    out_shape: tuple[int, ...]

    @property
    def out_size(self) -> int:
        """Number of elements in the partial result (kept positions)."""
        return math.prod(self.out_shape)


@dataclass(frozen=True)
class Walk(_Outputs):
    """How to visit every element of a chunk; see the module docstring."""

    buf: Any
    base: int
    sizes: np.ndarray
    strides: np.ndarray
    out_strides: np.ndarray
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class RunsWalk(Walk):
    """The walk of a grouped chunk (:func:`plan_runs`): run ``r`` is the chunk with
    ``rows[r]`` positions along walk axis ``run_axis`` from element ``bases[r]``, its
    outputs from ``out_bases[r]`` on (its group's block of ``out_shape``, whose first
    axis is the groups)."""

    bases: np.ndarray = None  # type: ignore[assignment]
    rows: np.ndarray = None  # type: ignore[assignment]
    out_bases: np.ndarray = None  # type: ignore[assignment]
    run_axis: int = 0


def plan_runs(chunk: Any, axis: int, starts: np.ndarray, stops: np.ndarray, slots: np.ndarray, groups: int) -> RunsWalk | None:
    """The walk of ``chunk`` reduced over ``axis`` in runs: positions
    ``starts[r]:stops[r]`` along ``axis`` into group ``slots[r]`` of ``groups``; the
    outputs are ``(groups, *keepdims shape)``.  None where one walk cannot (the axis
    of length 1 or reversed): the runs are then reduced one by one.

    Examples
    --------
    >>> x = np.arange(12.0).reshape(6, 2)
    >>> w = plan_runs(x, 0, np.array([0, 2, 5]), np.array([2, 5, 6]), np.array([1, 0, 1]), 2)
    >>> w.bases.tolist(), w.rows.tolist(), w.out_bases.tolist(), w.out_shape
    ([0, 4, 10], [2, 3, 1], [2, 0, 2], (2, 1, 2))
    """
    if chunk.shape[axis] < 2 or chunk.strides[axis] < 0 or any(s < 0 for s in chunk.strides):
        return None
    w = plan_walk(chunk, (axis,), reduced_inward=True)
    reduced = np.flatnonzero(w.out_strides == 0)
    if reduced.size != 1 or w.sizes[reduced[0]] != chunk.shape[axis]:
        return None
    d = int(reduced[0])
    step = int(w.strides[d])
    bases = (w.base + np.asarray(starts, dtype=np.int64) * step).astype(np.int64)
    out_bases = np.asarray(slots, dtype=np.int64) * w.out_size
    rows = (np.asarray(stops) - np.asarray(starts)).astype(np.int64)
    return RunsWalk(w.buf, w.base, w.sizes, w.strides, w.out_strides, (groups, *w.out_shape), bases, rows, out_bases, d)


def _root(a: Any) -> Any:
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def _address(a: Any) -> int:
    return a.__array_interface__["data"][0]


def joined_runs(blocks: list[Any], walks: list[RunsWalk], groups: int) -> RunsWalk | None:
    """One walk of several chunks' runs (``walks``, each planned by :func:`plan_runs`
    with slots among the same ``groups``), when the chunks are views of one NumPy
    array laid out alike (neighbouring chunks of ``from_array`` data): their runs then
    index one buffer spanning them, and one kernel call folds them all into one state.
    None otherwise.

    Examples
    --------
    >>> x = np.arange(12.0).reshape(6, 2)
    >>> a, b = x[:3], x[3:]
    >>> walks = [plan_runs(c, 0, np.array([0]), np.array([3]), np.array([i]), 2) for i, c in enumerate((a, b))]
    >>> w = joined_runs([a, b], walks, 2)
    >>> w.bases.tolist(), w.rows.tolist(), w.out_bases.tolist(), w.out_shape
    ([0, 6], [3, 3], [0, 2], (2, 1, 2))
    """
    first = walks[0]
    if any(w is None for w in walks) or any(type(b) is not np.ndarray for b in blocks) or blocks[0].dtype == np.float16:
        return None
    root = _root(blocks[0])
    if not isinstance(root, np.ndarray) or any(_root(b) is not root for b in blocks):
        return None
    d = first.run_axis
    for w in walks:
        if w.run_axis != d or not (np.array_equal(w.strides, first.strides) and np.array_equal(w.out_strides, first.out_strides)):
            return None
        if not np.array_equal(np.delete(w.sizes, d), np.delete(first.sizes, d)):
            return None
    itemsize = blocks[0].dtype.itemsize
    starts = [_address(w.buf) for w in walks]
    low, high = min(starts), max(a + w.buf.nbytes for a, w in zip(starts, walks))
    if low < _address(root) or high > _address(root) + root.nbytes or any((a - low) % itemsize for a in starts):
        return None
    k = starts.index(low)
    buf = np.lib.stride_tricks.as_strided(walks[k].buf, shape=((high - low) // itemsize,), strides=(itemsize,))
    bases = np.concatenate([w.bases + (a - low) // itemsize for a, w in zip(starts, walks)])
    sizes = first.sizes.copy()
    sizes[d] = max(int(w.sizes[d]) for w in walks)
    return RunsWalk(buf, first.base, sizes, first.strides, first.out_strides, (groups, *first.out_shape[1:]), bases,
                    np.concatenate([w.rows for w in walks]), np.concatenate([w.out_bases for w in walks]), d)  # fmt: skip


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _c_strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def _merged_axes(axes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge neighbours (outer, inner) that address memory and output as one axis."""
    merged: list[tuple[int, int, int]] = []
    for size, stride, out_stride in axes:
        if merged:
            o_size, o_stride, o_out = merged[-1]
            same_kind = (o_out == 0) == (out_stride == 0)
            if (
                same_kind
                and o_stride == stride * size
                and o_out == out_stride * size
            ):
                merged[-1] = (o_size * size, stride, out_stride)
                continue
        merged.append((size, stride, out_stride))
    return merged


def _reduced_next_to_kept_rows(axes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """With a contiguous kept innermost axis, the reduced axes moved (in their order)
    to just outside it, and neighbours merged again.

    A (time, lat, lon) chunk sliced along lon and reduced over time walks as (lat,
    time, lon): each output row then gets every time step in one visit, which the
    kernels fold four rows at a time into a cached tile of their state, instead of one
    pass over a lat row per time step.  Each output still meets its values in the same
    order (the reduced axes' odometer is unchanged), so the bits are the same."""
    if len(axes) < 3 or axes[-1][1] != 1 or axes[-1][2] == 0:
        return axes
    kept = [a for a in axes[:-1] if a[2] != 0]
    reduced = [a for a in axes[:-1] if a[2] == 0]
    moved = [*kept, *reduced, axes[-1]]
    return axes if moved == axes else _merged_axes(moved)


def plan_walk(chunk: Any, axes: tuple[int, ...], xp: Any = np, reduced_inward: bool = False) -> Walk:
    """Describe how to reduce ``chunk`` over ``axes`` without copying it.

    Parameters
    ----------
    chunk : numpy.ndarray or cupy.ndarray
        A non-empty chunk (every axis of size >= 1).
    axes : tuple of int
        Normalized, non-negative axes to reduce over.
    xp : module
        ``numpy`` or ``cupy``: the array module of ``chunk``.
    reduced_inward : bool
        Where the innermost memory axis is kept and contiguous, move the reduced axes
        to just outside it (see :func:`_reduced_next_to_kept_rows`); the axes are then
        no longer in memory order.  The built-in CPU kernels ask for it.

    Returns
    -------
    Walk

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(3, 4)[:, :2]      # strided view
    >>> w = plan_walk(x, (0, 1))
    >>> w.sizes.tolist(), w.strides.tolist(), w.out_strides.tolist(), w.out_shape
    ([3, 2], [4, 1], [0, 0], (1, 1))
    """
    itemsize = chunk.dtype.itemsize
    layout = _layout(chunk.shape, chunk.strides, itemsize, axes, reduced_inward)
    if layout is None:
        # Only exotic views (e.g. a field of a structured array) get here.
        chunk = xp.ascontiguousarray(chunk)
        layout = _layout(chunk.shape, chunk.strides, itemsize, axes, reduced_inward)
    if layout.flips:
        chunk = chunk[layout.flips]
    if layout.span == chunk.size and chunk.flags.c_contiguous:
        buf = chunk.reshape(-1)  # the same view, ~20x cheaper than as_strided
    else:
        buf = xp.lib.stride_tricks.as_strided(chunk, shape=(layout.span,), strides=(itemsize,))
    return Walk(buf, layout.base, layout.sizes, layout.strides, layout.out_strides, layout.out_shape)


@dataclass(frozen=True)
class _Layout:
    """What :func:`plan_walk` derives from a chunk's shape and strides alone."""

    flips: tuple[slice, ...] | None  # the index that turns reversed axes forward
    span: int  # elements from the lowest to the highest address
    base: int
    sizes: np.ndarray
    strides: np.ndarray
    out_strides: np.ndarray
    out_shape: tuple[int, ...]


@functools.lru_cache(maxsize=1024)
def _layout(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int, axes: tuple[int, ...], reduced_inward: bool = False) -> _Layout | None:
    """The walk of every chunk with this shape, these byte strides and reduced axes;
    None when a stride is not a whole number of items.  Cached: the chunks of one
    array share a few layouts, and this Python costs ~30 us per chunk right after a
    kernel has streamed the caches (5% of a 32 MiB chunk's read at 40 GB/s,
    ``bench/NOTES.md``).  The kernels only read the arrays it holds."""
    if any(s % itemsize for s in strides):
        return None
    out_shape = _keepdims_shape(shape, axes)
    out_c = _c_strides(out_shape)
    axes_mem = sorted(
        ((n, s // itemsize, 0 if i in axes else out_c[i]) for i, (n, s) in enumerate(zip(shape, strides)) if n > 1),
        key=lambda a: -abs(a[1]),
    )
    merged = _merged_axes(axes_mem)
    if reduced_inward:
        merged = _reduced_next_to_kept_rows(merged)
    merged = merged or [(1, 0, 0)]
    base = sum((n - 1) * -s for n, s, _ in merged if s < 0)
    span = 1 + sum((n - 1) * abs(s) for n, s, _ in merged)
    flips = tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides) if any(s < 0 for s in strides) else None
    sizes, mem_strides, out_strides = (np.array(col, dtype=np.int64) for col in zip(*merged))
    return _Layout(flips, span, base, sizes, mem_strides, out_strides, out_shape)


@dataclass(frozen=True)
class JointWalk(_Outputs):
    """How to visit the elements of several blocks of one shape side by side (the
    aligned blocks of a reduction of several arrays, broadcast: a broadcast axis has
    stride 0), without copying them: :class:`numbadask.cpu.layout.Walk` with one buffer,
    base and row of ``strides`` per array.  Axes in the memory order of the array that
    broadcasts least (largest stride first), size-1 axes dropped, neighbours merged
    where every array and the output allow it."""

    bufs: tuple
    bases: np.ndarray
    sizes: np.ndarray
    strides: np.ndarray
    out_strides: np.ndarray
    out_shape: tuple[int, ...]


def plan_joint_walk(blocks: list[Any], axes: tuple[int, ...], xp: Any = np) -> JointWalk:
    """The :class:`JointWalk` of non-empty ``blocks`` of one shape over ``axes``.

    Examples
    --------
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> w = np.broadcast_to(np.ones((3, 4)), x.shape)  # a (lat, lon) weight of (time, lat, lon)
    >>> jw = plan_joint_walk([x, w], (0,))
    >>> jw.sizes.tolist(), jw.strides.tolist(), jw.out_strides.tolist(), jw.out_shape
    ([2, 12], [[12, 1], [0, 1]], [0, 1], (1, 3, 4))
    """
    blocks = [b if all(st % b.dtype.itemsize == 0 for st in b.strides) else xp.ascontiguousarray(b) for b in blocks]
    shape = blocks[0].shape
    strides = [[st // b.dtype.itemsize for st in b.strides] for b in blocks]
    out_shape = tuple(1 if d in axes else m for d, m in enumerate(shape))
    out_c = [math.prod(out_shape[d + 1 :]) for d in range(len(shape))]
    dims = [d for d in range(len(shape)) if shape[d] > 1]
    lead = max(range(len(blocks)), key=lambda i: (sum(1 for d in dims if strides[i][d]), -i))
    merged: list[tuple[int, list[int], int]] = []
    for d in sorted(dims, key=lambda d: -abs(strides[lead][d])):
        m, st, out = shape[d], [s[d] for s in strides], 0 if d in axes else out_c[d]
        if merged:
            pm, pst, pout = merged[-1]
            if (pout == 0) == (out == 0) and pout == out * m and all(a == b * m for a, b in zip(pst, st)):
                merged[-1] = (pm * m, st, out)
                continue
        merged.append((m, st, out))
    merged = merged or [(1, [0] * len(blocks), 0)]
    bufs, bases = [], []
    for i, b in enumerate(blocks):
        flips = tuple(slice(None, None, -1) if st < 0 else slice(None) for st in b.strides)
        low = b[flips] if any(st < 0 for st in b.strides) else b
        span = 1 + sum((m - 1) * abs(s[i]) for m, s, _ in merged)
        bases.append(sum((m - 1) * -s[i] for m, s, _ in merged if s[i] < 0))
        bufs.append(xp.lib.stride_tricks.as_strided(low, shape=(span,), strides=(b.dtype.itemsize,)))
    return JointWalk(
        tuple(bufs),
        np.array(bases, dtype=np.int64),
        np.array([m for m, _, _ in merged], dtype=np.int64),
        np.array([s for _, s, _ in merged], dtype=np.int64).T.copy(),
        np.array([o for _, _, o in merged], dtype=np.int64),
        out_shape,
    )
