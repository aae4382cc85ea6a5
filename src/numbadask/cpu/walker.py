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

:func:`instantiate` binds a plug-in to the walk, one Numba function per layout case
(:func:`walk_case`), each compiled with ``cache=True`` when a chunk of its case first
comes: the walk is written here once, and every reduction (built-in or user-defined)
gets the 4-row tile on strided chunks.
"""

from __future__ import annotations

import threading
import types
from typing import Any

import numba
import numpy as np

from numbadask.cpu.layout import RunsWalk, Walk

#: Elements one block loop call reads before the state is updated: short enough for a
#: compensated or two-level sum to keep its error small, long enough to vectorize.
BLOCK = 512

#: What :func:`instantiate` compiles with: ``nogil`` so Dask's threads run chunks in
#: parallel (2x on 2 cores), never ``parallel`` (Dask already is; numba #9288).
JIT_OPTIONS = {"nogil": True, "error_model": "numpy"}


# The odometer's helpers are inlined into each walk at Numba's IR level: a function of
# its own is one more LLVM module to optimize and emit, ~0.1 s each on a cold cache.
@numba.njit(inline="always")
def visits(sizes, outer):
    """How many positions the odometer over the ``outer`` leading axes visits."""
    count = 1
    for j in range(outer):
        count *= sizes[j]
    return count


@numba.njit(inline="always")
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


# The walk, one function per case (see walk_case), each compiled only when a chunk of
# its case comes: a call compiles the block loops of its own layout, not all four.
# ``o`` starts as ``base - base``, not ``0``: Numba would first type the calls with
# ``Literal[int](0)`` and compile each plug-in twice.  ``index`` (the odometer's, zeros)
# comes from Python: ``np.zeros`` here costs ~0.1 s of compiling in every process.
# ``FOLD`` and ``STEP`` are constants of the binding (see CASES), so Numba drops the
# branches a case never takes, inside inlined plug-ins too: a rows case never types
# ``fold_across``, an across case never ``fold_row``.


#: What a case folds per visit (its ``FOLD`` constant; see :data:`CASES`).
TILES, COLUMNS, ROWS, ACROSS = 0, 1, 2, 3


def visit_blocks(buf, base, o, sizes, strides, out_strides, state, params, index):
    """Every block of the outer axes in turn, folding its innermost axis or two into
    the outputs from ``o`` on: ``TILES``, the two innermost reduced and rows contiguous
    (four rows at a time); ``COLUMNS``, the innermost kept and contiguous, the next
    reduced (rows folded across); ``ROWS``, the innermost reduced (one row per visit);
    ``ACROSS``, the innermost kept (element ``j`` of a row goes to output ``o +
    j*out_step``).  The odometer ``index`` ends as it started, at zeros."""
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    outer = k - 2 if FOLD <= COLUMNS else k - 1  # noqa: F821
    offset = base
    for _ in range(visits(sizes, outer)):
        if FOLD == TILES:  # noqa: F821
            rows, row_stride = sizes[k - 2], strides[k - 2]
            r = 0
            while r + 4 <= rows:
                fold_4_rows(state, o, buf, offset + r * row_stride, n, row_stride, params)  # noqa: F821
                r += 4
            while r < rows:
                fold_row(state, o, buf, offset + r * row_stride, n, 1, params)  # noqa: F821
                r += 1
        elif FOLD == COLUMNS:  # noqa: F821
            fold_across_rows(state, o, buf, offset, n, sizes[k - 2], strides[k - 2], params)  # noqa: F821
        elif FOLD == ACROSS:  # noqa: F821
            if STEP == 0:  # noqa: F821
                fold_across(state, o, out_strides[k - 1], buf, offset, n, 0, params)  # noqa: F821
            else:
                fold_across(state, o, out_strides[k - 1], buf, offset, n, step, params)  # noqa: F821
        elif STEP == 1:  # noqa: F821
            fold_row(state, o, buf, offset, n, 1, params)  # noqa: F821
        elif STEP == 0:  # noqa: F821
            fold_row(state, o, buf, offset, n, 0, params)  # noqa: F821
        else:
            fold_row(state, o, buf, offset, n, step, params)  # noqa: F821
        offset, o = advance(index, sizes, strides, out_strides, outer, offset, o)


def walk_blocks(buf, base, sizes, strides, out_strides, state, params, index):
    """The chunk's walk: every block (:func:`visit_blocks`), then ``finish``."""
    visit_blocks(buf, base, base - base, sizes, strides, out_strides, state, params, index)  # noqa: F821
    finish(state)  # noqa: F821


def walk_runs(buf, bases, rows, out_bases, run_axis, sizes, strides, out_strides, state, params, index):
    """A grouped chunk's walk: run ``r`` is the chunk with ``rows[r]`` positions along
    its walk axis ``run_axis`` from element ``bases[r]``, folded into the outputs from
    ``out_bases[r]`` (its group's), in order; then ``finish`` once.  Runs of one group
    add to one state as one chunk's rows would (the compensation is added at the end)."""
    for r in range(bases.size):
        sizes[run_axis] = rows[r]
        visit_blocks(buf, bases[r], out_bases[r], sizes, strides, out_strides, state, params, index)  # noqa: F821
    finish(state)  # noqa: F821


#: The walk's cases: name -> the constants :func:`walk_blocks` is bound with: ``FOLD``
#: (what a visit folds) and ``STEP`` (the innermost step: 1, 0, or None, read from the
#: walk).  See :func:`walk_case`.
CASES = {
    "tiles": {"FOLD": TILES, "STEP": None},
    "columns": {"FOLD": COLUMNS, "STEP": None},
    "rows": {"FOLD": ROWS, "STEP": 1},
    "broadcast_rows": {"FOLD": ROWS, "STEP": 0},
    "strided_rows": {"FOLD": ROWS, "STEP": None},
    "across": {"FOLD": ACROSS, "STEP": None},
    "broadcast_across": {"FOLD": ACROSS, "STEP": 0},
}


def walk_case(sizes: np.ndarray, strides: np.ndarray, out_strides: np.ndarray) -> str:
    """Which of :data:`CASES` walks a chunk of this layout (arrays as a
    :class:`~numbadask.cpu.layout.Walk` holds them).

    ``tiles``: the two innermost axes reduced and rows contiguous (four rows read side
    by side); ``columns``: the innermost axis kept and contiguous, the next reduced;
    ``rows``/``broadcast_rows``/``strided_rows``: the innermost axis reduced, with step
    1, 0 or another; ``across``/``broadcast_across``: the innermost axis kept (step 0:
    one value for every output of the row).

    Examples
    --------
    >>> from numbadask.cpu.layout import plan_walk
    >>> [walk_case(w.sizes, w.strides, w.out_strides) for w in (plan_walk(np.ones((4, 6))[:, :3], (0, 1)), plan_walk(np.ones((4, 6)), (0,)), plan_walk(np.ones((4, 6)), (1,)))]
    ['tiles', 'columns', 'rows']
    """
    k = sizes.size
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    if k >= 2 and step == 1 and out_strides[k - 2] == 0:
        if out_step == 0:
            return "tiles"
        if out_step == 1:
            return "columns"
    if out_step == 0:
        return "rows" if step == 1 else "broadcast_rows" if step == 0 else "strided_rows"
    return "broadcast_across" if step == 0 else "across"


@numba.njit(inline="always")
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


@numba.njit(inline="always")
def column_tiles(n):
    """How many column tiles of :data:`COLUMN_TILE` cover ``n`` columns."""
    return (n + COLUMN_TILE - 1) // COLUMN_TILE


@numba.njit(inline="always")
def nothing_to_finish(state):
    """The default ``finish``: nothing."""


class Walker:
    """The walk bound to one plug-in: ``walker(buf, base, sizes, strides, out_strides,
    state, params)`` picks the case of the chunk's layout (:func:`walk_case`) in Python
    and calls that case's Numba dispatcher, made on first use.

    So a call compiles only its own case: a cold ``mean`` of a 2-d float64 array
    compiled every case of the sum walk in one function before (5.2 s on an idle
    2-core machine), one case now (bench/NOTES.md).
    """

    def __init__(self, name: str, plugin: dict[str, Any], cache: bool) -> None:
        self.name = name
        self.plugin = plugin
        self.cache = cache
        self.dispatchers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Walker {self.name}: {', '.join(self.dispatchers) or 'nothing compiled yet'}>"

    def dispatcher(self, case: str, runs: bool = False) -> Any:
        """The Numba dispatcher of one case of :data:`CASES` (``runs``: of a grouped
        chunk's runs, :func:`walk_runs`), made once (under a lock: two Dask threads must
        not make, and compile, two of them)."""
        key = f"{case}_runs" if runs else case
        found = self.dispatchers.get(key)
        if found is None:
            with self._lock:
                found = self.dispatchers.get(key)
                if found is None:
                    names = {**self.plugin, **CASES[case]}
                    visit = _bind(visit_blocks, f"{self.name}_{case}_visit", names, inline="always")
                    found = _bind(walk_runs if runs else walk_blocks, f"{self.name}_{key}", {**names, "visit_blocks": visit}, cache=self.cache)
                    self.dispatchers[key] = found
        return found

    def __call__(self, buf: Any, base: int, sizes: np.ndarray, strides: np.ndarray, out_strides: np.ndarray, state: tuple, params: tuple) -> None:
        index = np.zeros(sizes.size, dtype=np.int64)
        self.dispatcher(walk_case(sizes, strides, out_strides))(buf, base, sizes, strides, out_strides, state, params, index)

    def runs(self, buf: Any, w: RunsWalk, state: tuple, params: tuple) -> None:
        """The walk of a grouped chunk's runs (:func:`walk_runs`)."""
        index = np.zeros(w.sizes.size, dtype=np.int64)
        walk = self.dispatcher(walk_case(w.sizes, w.strides, w.out_strides), runs=True)
        walk(buf, w.bases, w.rows, w.out_bases, w.run_axis, w.sizes.copy(), w.strides, w.out_strides, state, params, index)


def instantiate(
    name: str,
    *,
    fold_row: Any,
    fold_across: Any,
    finish: Any = nothing_to_finish,
    fold_4_rows: Any = None,
    fold_across_rows: Any = None,
    cache: bool = True,
) -> Walker:
    """The walk bound to one plug-in (see the module docstring), as a :class:`Walker`
    ``name(buf, base, sizes, strides, out_strides, state, params)``.

    ``name`` must be unique per plug-in: it names the compiled code in Numba's cache
    (one entry per case, ``<name>_<case>``).  ``cache=False`` for plug-ins whose code
    has no file to key a cache on.  Plug-in functions made with
    ``numba.njit(inline="always")`` are inlined into each case at Numba's IR level (no
    LLVM module of their own to optimize and emit, and the case's constant steps prune
    their branches); block loops that need their own ``fastmath`` flags stay functions
    of their own.

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
    >>> out.tolist(), list(walk_count.dispatchers)
    ([3, 3, 3, 3], ['columns'])
    """
    if fold_4_rows is None:
        fold_4_rows = _bind(rows_in_turn, f"{name}_rows_in_turn", {"fold_row": fold_row}, inline="always")
    if fold_across_rows is None:
        fold_across_rows = _bind(across_in_turn, f"{name}_across_in_turn", {"fold_across": fold_across}, inline="always")
    plugin = {"fold_row": fold_row, "fold_4_rows": fold_4_rows, "fold_across": fold_across, "fold_across_rows": fold_across_rows, "finish": finish}
    return Walker(name, plugin, cache)


def walk_buffer(w: Walk) -> np.ndarray:
    """The walk's buffer as the kernels read it (:func:`readable`)."""
    return readable(w.buf)


def readable(a: np.ndarray) -> np.ndarray:
    """``a`` as every CPU kernel reads its input: in a dtype Numba's CPU target reads
    (bool as uint8; float16, which it has no arithmetic for, widened to float32: float16
    chunks are rare and small, the one case with a temporary), and read-only.

    Read-only because Numba types a read-only array (a memmap of a ``.npy`` file opened
    for reading, a chunk Dask shares) apart from a writable one and compiles every
    kernel once per kind; the kernels only read.  One kind, one compile: the warm-up
    that ``numbadask stats`` runs on a small writable array then compiles what a
    memmapped source uses, and so does ``numbadask warm``.

    Examples
    --------
    >>> a = np.zeros(3, dtype=bool)
    >>> r = readable(a)
    >>> r.dtype, r.flags.writeable, a.flags.writeable
    (dtype('uint8'), False, True)
    """
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def run(walker: Any, w: Walk, state: tuple, params: tuple = ()) -> tuple:
    """``walker`` over ``w`` into the flat ``state`` arrays; returns them in the walk's
    keepdims shape."""
    if isinstance(w, RunsWalk):
        walker.runs(walk_buffer(w), w, state, params)
    else:
        walker(walk_buffer(w), w.base, w.sizes, w.strides, w.out_strides, state, params)
    return tuple(a.reshape(w.out_shape) for a in state)
