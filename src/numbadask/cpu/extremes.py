"""CPU block loops for min and max: the partial state of min, max, nanmin, nanmax, ptp.

One pass keeps the smallest and largest non-NaN values and how many values were not
NaN; NaN never enters (`v < lo` is False for NaN), so NaN-propagating min/max are
decided at the end from that count.  A plug-in of the one walk (:mod:`numbadask.cpu.walker`);
contiguous float blocks go through the vector loop of :mod:`numbadask.cpu.llvm_minmax`.
"""

from __future__ import annotations

import numba
import numpy as np

from numbadask.cpu.layout import Walk
from numbadask.cpu.llvm_minmax import skip_nan_max, skip_nan_min, vector_both, vector_high, vector_low
from numbadask.cpu.walker import COLUMN_TILE, four_rows, instantiate, run


@numba.njit(nogil=True, cache=True)
def _minmax_loop(seg, lo, hi):
    # What the vector loop (llvm_minmax.vector_both) leaves: the ends of a float block,
    # all of an integer or strided one.  LLVM vectorizes it only through the intrinsics
    # (see llvm_minmax): 31 GB/s per core for float64 where compare-select lanes gave
    # 16-21 GB/s.  Reading the two halves side by side keeps more loads in flight:
    # 30 -> 35.6 GB/s from memory.
    half = seg.size // 2
    lo2 = lo
    hi2 = hi
    count = 0
    for i in range(half):
        v = seg[i]
        w = seg[half + i]
        lo = skip_nan_min(lo, v)
        hi = skip_nan_max(hi, v)
        lo2 = skip_nan_min(lo2, w)
        hi2 = skip_nan_max(hi2, w)
        count += (v == v) + (w == w)
    if seg.size % 2:
        v = seg[seg.size - 1]
        lo = skip_nan_min(lo, v)
        hi = skip_nan_max(hi, v)
        count += v == v
    return skip_nan_min(lo, lo2), skip_nan_max(hi, hi2), count


# min, nanmin, max and nanmax need one running value, not both: dropping the other
# drops a third of the loop's vector work, which shows where one core reads ~40 GB/s
# (the machine's fast state: 87 -> 90% of the read ceiling in a plain thread pool;
# bench/NOTES.md).
BOTH, LOW_ONLY, HIGH_ONLY = 0, 1, 2


@numba.njit(nogil=True, cache=True)
def _better(best, v, want_max):
    return skip_nan_max(best, v) if want_max else skip_nan_min(best, v)


@numba.njit(nogil=True, cache=True)
def _one_sided_loop(seg, best, want_max):
    """(largest or smallest non-NaN value, count of non-NaN values): _minmax_loop with
    one running value.  LLVM moves the loop-invariant ``want_max`` test out of the loop
    (as fast as separate min and max loops, 108-111 GB/s in cache here)."""
    half = seg.size // 2
    best2 = best
    count = 0
    for i in range(half):
        v = seg[i]
        w = seg[half + i]
        best = _better(best, v, want_max)
        best2 = _better(best2, w, want_max)
        count += (v == v) + (w == w)
    if seg.size % 2:
        v = seg[seg.size - 1]
        best = _better(best, v, want_max)
        count += v == v
    return _better(best, best2, want_max), count


@numba.njit(nogil=True, cache=True)
def _kept_minmax_loop(seg, lo, hi, keep):
    """(lo, hi, count of non-NaN values) of a block: both running values, or with
    ``keep`` LOW_ONLY / HIGH_ONLY only one (the other comes back as given).  The vector
    loop takes what it can of the block, the scalar loops the values before and after."""
    if keep == LOW_ONLY:
        lo, hi, count, start, stop = vector_low(seg, lo, hi)
        lo, before = _one_sided_loop(seg[:start], lo, False)
        lo, after = _one_sided_loop(seg[stop:], lo, False)
    elif keep == HIGH_ONLY:
        lo, hi, count, start, stop = vector_high(seg, lo, hi)
        hi, before = _one_sided_loop(seg[:start], hi, True)
        hi, after = _one_sided_loop(seg[stop:], hi, True)
    else:
        lo, hi, count, start, stop = vector_both(seg, lo, hi)
        lo, hi, before = _minmax_loop(seg[:start], lo, hi)
        lo, hi, after = _minmax_loop(seg[stop:], lo, hi)
    return lo, hi, count + before + after


@numba.njit(inline="always")
def _block_minmax(buf, start, n, step, lo, hi, keep):
    if step == 1:
        return _kept_minmax_loop(buf[start : start + n], lo, hi, keep)
    if step == 0:
        return _kept_minmax_loop(buf[start : start + 1], lo, hi, keep) if n else (lo, hi, 0)
    return _kept_minmax_loop(buf[start::step][:n], lo, hi, keep)



@numba.njit(inline="always")
def _minmax_row(state, o, buf, start, n, step, params):
    lo, hi, valid = state
    low, high, count = _block_minmax(buf, start, n, step, lo[o], hi[o], params[0])
    lo[o] = low
    hi[o] = high
    # A broadcast row (step 0) holds one value n times.
    valid[o] += count * n if step == 0 else count


@numba.njit(nogil=True, cache=True)
def _four_rows_loop(a, b, c, d, lo, hi, keep):
    """(lo, hi, count of non-NaN values) of four rows read side by side, one running
    value per row and side (the tests on ``keep`` move out of the loop).  The scalar
    intrinsics vectorize here; 32 MiB squares of a 2 GiB float64 array on one core:
    10.1 -> 17.2 GB/s for min and max, 11.0 -> 17.8 for min alone (bench/NOTES.md)."""
    low = keep != HIGH_ONLY
    high = keep != LOW_ONLY
    l0 = l1 = l2 = l3 = lo
    h0 = h1 = h2 = h3 = hi
    count = 0
    for i in range(a.size):
        x0, x1, x2, x3 = a[i], b[i], c[i], d[i]
        if low:
            l0, l1, l2, l3 = skip_nan_min(l0, x0), skip_nan_min(l1, x1), skip_nan_min(l2, x2), skip_nan_min(l3, x3)
        if high:
            h0, h1, h2, h3 = skip_nan_max(h0, x0), skip_nan_max(h1, x1), skip_nan_max(h2, x2), skip_nan_max(h3, x3)
        count += ((x0 == x0) + (x1 == x1)) + ((x2 == x2) + (x3 == x3))
    lo = skip_nan_min(skip_nan_min(l0, l1), skip_nan_min(l2, l3))
    hi = skip_nan_max(skip_nan_max(h0, h1), skip_nan_max(h2, h3))
    return lo, hi, count


@numba.njit(inline="always")
def _minmax_4_rows(state, o, buf, start, n, row_stride, params):
    lo, hi, valid = state
    a, b, c, d = four_rows(buf, start, n, row_stride)  # unpacked: no star arguments to an inlined function
    lo[o], hi[o], count = _four_rows_loop(a, b, c, d, lo[o], hi[o], params[0])
    valid[o] += count


@numba.njit(inline="always")
def _minmax_across(state, o, out_step, buf, start, n, step, params):
    lo, hi, valid = state
    for j in range(n):
        v = buf[start + j * step]
        p = o + j * out_step
        lo[p] = skip_nan_min(lo[p], v)
        hi[p] = skip_nan_max(hi[p], v)
        valid[p] += v == v


@numba.njit(nogil=True, cache=True)
def _minmax_4_across(lo, hi, valid, a, b, c, d):
    # Four rows into each output in row order, as four _minmax_across rows would.
    for j in range(lo.size):
        x0, x1, x2, x3 = a[j], b[j], c[j], d[j]
        lo[j] = skip_nan_min(skip_nan_min(skip_nan_min(skip_nan_min(lo[j], x0), x1), x2), x3)
        hi[j] = skip_nan_max(skip_nan_max(skip_nan_max(skip_nan_max(hi[j], x0), x1), x2), x3)
        valid[j] += ((x0 == x0) + (x1 == x1)) + ((x2 == x2) + (x3 == x3))


@numba.njit(nogil=True, cache=True)
def _minmax_1_across(lo, hi, valid, a):
    for j in range(lo.size):
        x = a[j]
        lo[j] = skip_nan_min(lo[j], x)
        hi[j] = skip_nan_max(hi[j], x)
        valid[j] += x == x


@numba.njit(inline="always")
def _minmax_across_rows(state, o, buf, start, n, rows, row_stride, params):
    lo, hi, valid = state
    for c0 in range(0, n, COLUMN_TILE):
        m = min(COLUMN_TILE, n - c0)
        p, s = o + c0, start + c0
        t_lo, t_hi, t_valid = lo[p : p + m], hi[p : p + m], valid[p : p + m]
        r = 0
        while r + 4 <= rows:
            a, b, c, d = four_rows(buf, s + r * row_stride, m, row_stride)
            _minmax_4_across(t_lo, t_hi, t_valid, a, b, c, d)
            r += 4
        while r < rows:
            _minmax_1_across(t_lo, t_hi, t_valid, buf[s + r * row_stride : s + r * row_stride + m])
            r += 1


# params: (keep,), which of the running values the walk keeps (BOTH, LOW_ONLY, HIGH_ONLY).
_walk_minmax = instantiate(
    "walk_minmax", fold_row=_minmax_row, fold_4_rows=_minmax_4_rows, fold_across=_minmax_across, fold_across_rows=_minmax_across_rows
)


def minmax_limits(dtype: np.dtype) -> tuple:
    """The starting (lo, hi) for a running min/max of ``dtype``: +-inf or the int range."""
    if dtype.kind == "f":
        return dtype.type(np.inf), dtype.type(-np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.max), dtype.type(info.min)


def minmax_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype min/max are kept in: the input's, with bool as uint8 and float16 as
    float32 (as :func:`walk_buffer` reads them)."""
    return {np.dtype(np.bool_): np.dtype(np.uint8), np.dtype(np.float16): np.dtype(np.float32)}.get(dtype, dtype)


def minmax_empty(shape: tuple[int, ...], dtype: np.dtype, xp=np) -> tuple:
    """The minmax outputs of an empty chunk: the starting limits and no valid values."""
    dtype = minmax_dtype(dtype)
    low, high = minmax_limits(dtype)
    return xp.full(shape, low, dtype=dtype), xp.full(shape, high, dtype=dtype), xp.zeros(shape, dtype=np.int64)

def _kept_minmax(walk: Walk, keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dtype = minmax_dtype(walk.buf.dtype)
    low, high = minmax_limits(dtype)
    size = walk.out_size
    state = (np.full(size, low, dtype=dtype), np.full(size, high, dtype=dtype), np.zeros(size, dtype=np.int64))
    return run(_walk_minmax, walk, state, (keep,))


def minmax(walk: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest and largest non-NaN values (in the chunk's dtype; bool as uint8, float16
    as float32) and the int64 count of non-NaN values, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> lo, hi, valid = minmax(plan_walk(np.array([[3.0, np.nan, -1.0], [2.0, 5.0, 4.0]]), (1,)))
    >>> lo.ravel().tolist(), hi.ravel().tolist(), valid.ravel().tolist()
    ([-1.0, 2.0], [3.0, 5.0], [2, 3])
    """
    return _kept_minmax(walk, BOTH)


def min_only(walk: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`minmax`'s outputs with only the smallest values found: the largest stay
    at their starting limit (-inf, or the dtype's smallest integer).

    Examples
    --------
    >>> import numpy as np, numbadask.cpu.layout
    >>> [a.ravel().tolist() for a in min_only(numbadask.cpu.layout.plan_walk(np.array([[3.0, np.nan, -1.0], [2.0, 5.0, 4.0]]), (1,)))]
    [[-1.0, 2.0], [-inf, -inf], [2, 3]]
    """
    return _kept_minmax(walk, LOW_ONLY)


def max_only(walk: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`minmax`'s outputs with only the largest values found: where the innermost
    memory axis is reduced, the smallest stay at their starting limit (+inf, or the
    dtype's largest integer).

    Examples
    --------
    >>> import numpy as np, numbadask.cpu.layout
    >>> [a.ravel().tolist() for a in max_only(numbadask.cpu.layout.plan_walk(np.array([[3, 7], [2, 1]]), (1,)))]
    [[9223372036854775807, 9223372036854775807], [7, 2], [2, 2]]
    """
    return _kept_minmax(walk, HIGH_ONLY)
