"""The one CPU walk over a chunk's memory, and the block loops that plug into it.

Every CPU kernel visits a chunk the same way: through its :class:`~numbadask.cpu.layout.Walk`
(the chunk's own memory, never a copy), the innermost memory axis handled by a block
loop per visit while an odometer steps through the outer axes.  What differs between
reductions is only what a block loop does with the elements, so each reduction gives
a *plug-in*: four ``@numba.njit`` functions over its ``state`` (a tuple of flat arrays,
one entry per output position) and ``params`` (a tuple of run-time values):

``fold_row(state, o, buf, start, n, step, params)``
    Fold ``n`` elements ``buf[start + j*step]`` (``step`` 0: one element ``n`` times)
    into output ``o``.
``fold_4_rows(state, o, buf, start, n, row_stride, params)``
    Fold four contiguous rows of ``n`` elements, ``row_stride`` apart, into output
    ``o``, reading them side by side so four memory streams stay in flight (each row
    of a square chunk alone restarts the prefetcher: 23 -> 42 GB/s on one core for
    sums here).  Optional: by default the rows are folded one after another.
``fold_across(state, o, out_step, buf, start, n, step, params)``
    The innermost axis is kept: element ``j`` goes into output ``o + j*out_step``.
``fold_across_rows(state, o, buf, start, n, rows, row_stride, params)``
    The innermost axis is kept and contiguous (in memory and in the output) and the
    next one out is reduced: ``rows`` rows of ``n`` elements, ``row_stride`` apart,
    element ``j`` of each into output ``o + j`` (a leading axis reduced with a
    contiguous tail kept: a (time, lat, lon) chunk reduced over time).  A plug-in's own
    version reads several rows side by side into a column tile of its state that stays
    in cache, adding them to each output in row order (the same bits as one row after
    another): sums of (129, 180, 360) float32 blocks went from one row per visit,
    1.8 GB/s for nansum and 0.7 for moments on one core, to ~10 (bench/NOTES.md).
    Optional: by default ``fold_across`` runs on each row in turn.
``finish(state)``
    Run once after the walk (e.g. adding compensation terms into the sums).
    Optional: by default nothing.

:func:`instantiate` binds a plug-in to :func:`walk` and compiles it with
``cache=True``, once per plug-in: the walk is written here once, and every reduction
(built-in or user-defined) gets the 4-row tile on strided chunks.
"""

from __future__ import annotations

import types
from typing import Any

import numba
import numpy as np

from numbadask.cpu.layout import Walk

#: Elements one block loop call reads before the state is updated: short enough for a
#: compensated or two-level sum to keep its error small, long enough to vectorize.
BLOCK = 512

#: What :func:`instantiate` compiles with: ``nogil`` so Dask's threads run chunks in
#: parallel (2x on 2 cores), never ``parallel`` (Dask already is; numba #9288).
JIT_OPTIONS = {"nogil": True, "error_model": "numpy"}


@numba.njit(nogil=True, cache=True)
def visits(sizes, outer):
    """How many positions the odometer over the ``outer`` leading axes visits."""
    count = 1
    for j in range(outer):
        count *= sizes[j]
    return count


@numba.njit(nogil=True, cache=True)
def advance(index, sizes, strides, out_strides, outer, offset, out_offset):
    """One step of the odometer over the ``outer`` leading axes (the innermost of them
    fastest): the next input and output offsets."""
    j = outer - 1
    while j >= 0:
        index[j] += 1
        offset += strides[j]
        out_offset += out_strides[j]
        if index[j] < sizes[j]:
            break
        offset -= strides[j] * sizes[j]
        out_offset -= out_strides[j] * sizes[j]
        index[j] = 0
        j -= 1
    return offset, out_offset


def walk(buf, base, sizes, strides, out_strides, state, params):
    """Fold every element of the walk into ``state`` with the bound plug-in.

    The innermost axis (or, when the two innermost axes are both reduced and rows are
    contiguous, the innermost two as a tile of rows; or, when the innermost is kept and
    contiguous and the next reduced, the innermost two as rows folded across) is handed
    to the block loops per visit; the odometer walks the remaining outer axes.  Not compiled itself: see
    :func:`instantiate`.
    """
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    tiled = k >= 2 and step == 1 and out_step == 0 and out_strides[k - 2] == 0
    columns = k >= 2 and step == 1 and out_step == 1 and out_strides[k - 2] == 0
    outer = k - 2 if tiled or columns else k - 1
    index = np.zeros(k, dtype=np.int64)
    offset = base
    o = 0
    for _ in range(visits(sizes, outer)):
        if tiled:
            rows = sizes[k - 2]
            row_stride = strides[k - 2]
            r = 0
            while r + 4 <= rows:
                fold_4_rows(state, o, buf, offset + r * row_stride, n, row_stride, params)  # noqa: F821
                r += 4
            while r < rows:
                fold_row(state, o, buf, offset + r * row_stride, n, 1, params)  # noqa: F821
                r += 1
        elif columns:
            fold_across_rows(state, o, buf, offset, n, sizes[k - 2], strides[k - 2], params)  # noqa: F821
        elif out_step == 0:
            fold_row(state, o, buf, offset, n, step, params)  # noqa: F821
        else:
            fold_across(state, o, out_step, buf, offset, n, step, params)  # noqa: F821
        offset, o = advance(index, sizes, strides, out_strides, outer, offset, o)
    finish(state)  # noqa: F821


@numba.njit(nogil=True, cache=True)
def four_rows(buf, start, n, row_stride):
    """The four contiguous rows of ``n`` elements a ``fold_4_rows`` reads, as views."""
    return (
        buf[start : start + n],
        buf[start + row_stride : start + row_stride + n],
        buf[start + 2 * row_stride : start + 2 * row_stride + n],
        buf[start + 3 * row_stride : start + 3 * row_stride + n],
    )


def rows_in_turn(state, o, buf, start, n, row_stride, params):
    """The default ``fold_4_rows``: the four rows one after another, each folded whole
    by the plug-in's ``fold_row``: a plug-in gains from the tile only with a 4-row
    element loop of its own (calling ``fold_row`` 512 values at a time read slower for
    min/max and moments: 32 MiB squares, min 48% -> 35% of the read ceiling, moments
    44% -> 38%; each block paid the vector loop's scalar head and tail)."""
    for r in range(4):
        fold_row(state, o, buf, start + r * row_stride, n, 1, params)  # noqa: F821


def _bind(template: Any, name: str, names: dict[str, Any], **options: Any) -> Any:
    """``template`` compiled with its free names taken from ``names``, under its own
    ``name``.  Numba keys its on-disk cache on the qualified name, so every binding
    has its own entries; the stamp of this file (and of the package,
    :mod:`numbadask.cpu.cache`) invalidates them all when the code changes."""
    func = types.FunctionType(template.__code__, {**globals(), **names}, name)
    func.__qualname__ = name
    func.__doc__ = template.__doc__
    return numba.njit(**JIT_OPTIONS, **options)(func)


def across_in_turn(state, o, buf, start, n, rows, row_stride, params):
    """The default ``fold_across_rows``: ``fold_across`` on each row in turn, whole
    (what the walk did before the plug-in existed).  Cutting the rows into column
    tiles without reading several rows at once read slower here (a plain float64
    accumulator: 12-13 GB/s whole rows, 9.6-10.2 in tiles of 1-4k columns)."""
    for r in range(rows):
        fold_across(state, o, 1, buf, start + r * row_stride, n, 1, params)  # noqa: F821


#: Columns a ``fold_across_rows`` plug-in folds at a time (see :func:`column_tiles`).
COLUMN_TILE = 4096

#: Rows a ``fold_across_rows`` plug-in reads side by side.
ROWS_AT_ONCE = 4


@numba.njit(nogil=True, cache=True)
def column_tiles(n):
    """How many column tiles of :data:`COLUMN_TILE` cover ``n`` columns."""
    return (n + COLUMN_TILE - 1) // COLUMN_TILE


@numba.njit(nogil=True, cache=True)
def nothing_to_finish(state):
    """The default ``finish``: nothing."""


def instantiate(
    name: str,
    *,
    fold_row: Any,
    fold_across: Any,
    finish: Any = nothing_to_finish,
    fold_4_rows: Any = None,
    fold_across_rows: Any = None,
    cache: bool = True,
) -> Any:
    """The walk bound to one plug-in (see the module docstring), as a Numba dispatcher
    ``name(buf, base, sizes, strides, out_strides, state, params)``.

    ``name`` must be unique per plug-in: it names the compiled code in Numba's cache.
    ``cache=False`` for plug-ins whose code has no file to key a cache on.

    Examples
    --------
    >>> import numba, numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> @numba.njit
    ... def count_row(state, o, buf, start, n, step, params):
    ...     state[0][o] += n
    >>> @numba.njit
    ... def count_across(state, o, out_step, buf, start, n, step, params):
    ...     for j in range(n):
    ...         state[0][o + j * out_step] += 1
    >>> walk_count = instantiate("walk_count_doc", fold_row=count_row, fold_across=count_across, cache=False)
    >>> w = plan_walk(np.ones((3, 4)), (0,))
    >>> out = np.zeros(w.out_size, dtype=np.int64)
    >>> walk_count(w.buf, w.base, w.sizes, w.strides, w.out_strides, (out,), ())
    >>> out.tolist()
    [3, 3, 3, 3]
    """
    if fold_4_rows is None:
        fold_4_rows = _bind(rows_in_turn, f"{name}_rows_in_turn", {"fold_row": fold_row}, cache=cache)
    if fold_across_rows is None:
        fold_across_rows = _bind(across_in_turn, f"{name}_across_in_turn", {"fold_across": fold_across}, cache=cache)
    plugin = {"fold_row": fold_row, "fold_4_rows": fold_4_rows, "fold_across": fold_across, "fold_across_rows": fold_across_rows, "finish": finish}
    return _bind(walk, name, plugin, cache=cache)


def walk_buffer(w: Walk) -> np.ndarray:
    """The walk's buffer in a dtype Numba's CPU target can read (bool as uint8), always
    read-only: Numba compiles a kernel once per array type, read-only or not, so every
    chunk (a writable array, a read-only memory map of a .npy file, a chunk unpickled
    in a worker) gets the one machine code that ``numbadask stats`` compiles before
    it starts its timer, not a second one inside it."""
    buf = w.buf
    if buf.dtype == np.bool_:
        buf = buf.view(np.uint8)
    elif buf.dtype == np.float16:
        # Numba's CPU target has no float16 arithmetic; float16 chunks are rare and
        # small, so they are widened (the one case with a temporary).
        buf = buf.astype(np.float32)
    else:
        buf = buf.view()  # the flag below is the view's; the chunk keeps its own
    buf.flags.writeable = False
    return buf


def run(walker: Any, w: Walk, state: tuple, params: tuple = ()) -> tuple:
    """``walker`` over ``w`` into the flat ``state`` arrays; returns them in the walk's
    keepdims shape."""
    walker(walk_buffer(w), w.base, w.sizes, w.strides, w.out_strides, state, params)
    return tuple(a.reshape(w.out_shape) for a in state)
