"""CPU kernels for argmin and argmax (argmin, argmax, nanargmin, nanargmax).

Over rows of a 2-d view (outputs x reduced values): the best non-NaN value, its first
index, and the first index of a NaN (-1: none), from which NumPy's NaN rules follow.
Not a plug-in of the one walk (:mod:`numbadask.cpu.walker`): the walk visits memory in
memory order, and an index must be the element's position in the logical (C) order,
ties going to the first.
"""

from __future__ import annotations

import numba
import numpy as np

from numbadask.cpu.extremes import HIGH_ONLY, LOW_ONLY, _kept_minmax_loop, minmax_limits
from numbadask.cpu.walker import BLOCK, readable


@numba.njit(nogil=True, cache=True)
def _first_equal(seg, value):
    for j in range(seg.size):
        if seg[j] == value:
            return j
    return -1


@numba.njit(nogil=True, cache=True)
def _first_nan(seg):
    for j in range(seg.size):
        if seg[j] != seg[j]:
            return j
    return -1


@numba.njit(inline="always")
def _arg_row(row, want_max, low, high):
    """(best value, its first index or -1, first NaN index or -1) of one row.

    Block by block: the vectorized min/max loop finds the block's best value and NaN
    count; only a block that beats the best so far (or holds the first NaN) is scanned
    again, from L1, for the index.  A branchy one-pass scan ran at 4.4 GB/s here."""
    best = -1
    best_v = row[0]
    first_nan = -1
    n = row.shape[0]
    for b in range(0, n, BLOCK):
        seg = row[b : min(b + BLOCK, n)]
        lo, hi, count = _kept_minmax_loop(seg, low, high, HIGH_ONLY if want_max else LOW_ONLY)
        if count < seg.size and first_nan < 0:
            first_nan = b + _first_nan(seg)
        if count == 0:
            continue
        v = hi if want_max else lo
        if best < 0 or (v > best_v if want_max else v < best_v):
            best_v = v
            best = b + _first_equal(seg, v)
    return best_v, best, first_nan


@numba.njit(nogil=True, cache=True)
def _arg_rows(rows, want_max, low, high, value, index, nan_index):
    for i in range(rows.shape[0]):
        value[i], index[i], nan_index[i] = _arg_row(rows[i], want_max, low, high)


@numba.njit(nogil=True, cache=True)
def _best_of_rows(value, index, nan_index, n, want_max):
    """The rows' results as one over all of them, with flat indices (rows of ``n``
    values in C order): the first row holding the best value, the first NaN."""
    best = -1
    best_v = value[0]
    first_nan = -1
    for i in range(value.size):
        if first_nan < 0 and nan_index[i] >= 0:
            first_nan = i * n + nan_index[i]
        if index[i] >= 0 and (best < 0 or (value[i] > best_v if want_max else value[i] < best_v)):
            best_v = value[i]
            best = i * n + index[i]
    return best_v, best, first_nan


def arg_axis(axes: tuple[int, ...]) -> int | None:
    """The one reduced axis of an arg reduction, or None for all (flat indices).

    Examples
    --------
    >>> arg_axis((1,)), arg_axis((0, 1))
    (1, None)
    """
    return axes[0] if len(axes) == 1 else None


def rows_view(chunk, axis: int | None, xp=np):
    """The chunk as a 2-d (outputs, values) view: the reduced axis last (``axis=None``:
    all of it, flattened in C order).  A view wherever NumPy can make one (always for
    C- or F-ordered chunks reduced over one axis, and for C-ordered ones reduced over
    all); other layouts are copied."""
    if axis is None:
        return chunk.reshape(1, -1)
    moved = xp.moveaxis(chunk, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def argminmax(chunk: np.ndarray, axis: int | None, want_max: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best non-NaN value, its first index along ``axis`` (or the flat C index for
    ``axis=None``; -1 where there is none) and the first NaN's index (-1: none), each
    flat over the output positions.

    Examples
    --------
    >>> import numpy as np
    >>> value, index, nan_index = argminmax(np.array([[3.0, 1.0, 1.0], [np.nan, 2.0, 0.5]]), 1, False)
    >>> value.tolist(), index.tolist(), nan_index.tolist()
    ([1.0, 0.5], [1, 2], [-1, 0])
    """
    # A strided chunk reduced over all of it is read as its rows (square chunks of a C
    # array: a view, where the flattened chunk would be a copy), then combined.
    by_rows = axis is None and chunk.ndim > 1 and not chunk.flags.c_contiguous
    rows = chunk.reshape(-1, chunk.shape[-1]) if by_rows else rows_view(chunk, axis)
    rows = readable(rows)
    m = rows.shape[0]
    value = np.empty(m, dtype=rows.dtype)
    index = np.empty(m, dtype=np.int64)
    nan_index = np.empty(m, dtype=np.int64)
    low, high = minmax_limits(rows.dtype)
    _arg_rows(rows, want_max, low, high, value, index, nan_index)
    if by_rows:
        best_v, best, first_nan = _best_of_rows(value, index, nan_index, rows.shape[1], want_max)
        return np.array([best_v], dtype=value.dtype), np.array([best]), np.array([first_nan])
    return value, index, nan_index
