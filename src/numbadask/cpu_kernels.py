"""Numba CPU kernels: the partial state of one NumPy chunk.

Every kernel takes a :class:`numbadask.layout.Walk` of the chunk and never copies it.
Rules the kernels follow (measured; see DESIGN.md):

* ``nogil=True``: Dask's threaded scheduler runs chunks in parallel, and a kernel that
  holds the GIL serializes them.
* no ``parallel=True``: Dask already runs chunks in parallel (and numba #9288).
* full ``fastmath`` is wrong for us (it deletes NaN checks and compensation); only the
  innermost block sum is compiled with ``reassoc`` so LLVM can vectorize it, and the
  blocks are then added with Neumaier compensation, which keeps float64 sums at least
  as accurate as NumPy's pairwise summation.
* float input accumulates in float64; integer and bool sums in int64 (exact, wrapping
  like NumPy's).
"""

from __future__ import annotations

import numba
import numpy as np

from .layout import Walk
from .llvm_minmax import skip_nan_max, skip_nan_min, vector_both, vector_high, vector_low

#: Elements summed by one vectorized (reassociated) loop before compensation.
BLOCK = 512

_REASSOC = {"reassoc", "contract"}


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _segment_sum(seg):
    # Loops run over sliced views: indexing ``buf[start + i]`` directly keeps Numba's
    # negative-index wraparound check in the loop, which blocks vectorization (5 GB/s
    # instead of 30 GB/s on one core here).
    acc = 0.0
    for i in range(seg.size):
        acc += np.float64(seg[i])
    return acc


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _block_sum(buf, start, n, step):
    """A broadcast (step 0) or strided block; contiguous ones go to _segment_sum."""
    if step == 0:
        return n * np.float64(buf[start])
    return _segment_sum(buf[start::step][:n])


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _block_sum_4_rows(buf, start, n, row_stride):
    """Sum of ``n`` contiguous elements in each of 4 rows ``row_stride`` apart, read
    side by side: 4 memory streams at once instead of 1 keep more reads in flight
    (32 MiB square chunks of a C array: 23 -> 42 GB/s on one core here)."""
    a = buf[start : start + n]
    b = buf[start + row_stride : start + row_stride + n]
    c = buf[start + 2 * row_stride : start + 2 * row_stride + n]
    d = buf[start + 3 * row_stride : start + 3 * row_stride + n]
    acc = 0.0
    for i in range(n):
        acc += (np.float64(a[i]) + np.float64(b[i])) + (np.float64(c[i]) + np.float64(d[i]))
    return acc


@numba.njit(nogil=True, cache=True)
def _neumaier_add(total, comp, value):
    t = total + value
    if not np.isfinite(t):
        # inf - inf would turn the compensation into NaN: sum([inf, 1.0]) is inf.
        return t, comp
    if abs(total) >= abs(value):
        comp += (total - t) + value
    else:
        comp += (value - t) + total
    return t, comp


@numba.njit(nogil=True, cache=True)
def _row_sum(buf, start, n, step):
    """Compensated sum of ``n`` elements, vectorized ``BLOCK`` at a time."""
    total = 0.0
    comp = 0.0
    if step == 1:
        # Contiguous rows call the one-path block function: the same arithmetic, and
        # faster than going through _block_sum's branches (8 MiB in cache: 85 -> 95
        # GB/s; 64 x 32 MiB from memory on one core: 38.5 -> 39.7; bench/NOTES.md).
        for b in range(0, n, BLOCK):
            total, comp = _neumaier_add(total, comp, _segment_sum(buf[start + b : start + min(b + BLOCK, n)]))
        return total, comp
    for b in range(0, n, BLOCK):
        value = _block_sum(buf, start + b * step, min(BLOCK, n - b), step)
        total, comp = _neumaier_add(total, comp, value)
    return total, comp


@numba.njit(nogil=True, cache=True)
def _tile_sum(buf, start, rows, row_stride, n):
    """Compensated sum of a ``rows`` x ``n`` tile whose rows are contiguous."""
    total = 0.0
    comp = 0.0
    r = 0
    while r + 4 <= rows:
        for b in range(0, n, BLOCK):
            value = _block_sum_4_rows(buf, start + r * row_stride + b, min(BLOCK, n - b), row_stride)
            total, comp = _neumaier_add(total, comp, value)
        r += 4
    while r < rows:
        value, c = _row_sum(buf, start + r * row_stride, n, 1)
        total, comp = _neumaier_add(total, comp + c, value)
        r += 1
    return total, comp


@numba.njit(nogil=True, cache=True)
def _add_into(dst, src):
    for j in range(dst.size):
        dst[j] += np.float64(src[j])


@numba.njit(nogil=True, cache=True)
def _row_accumulate(buf, start, n, step, out, out_start, out_step):
    """``out[out_start + j*out_step] += buf[start + j*step]`` for a kept inner axis."""
    if step == 0:
        value = np.float64(buf[start])
        for j in range(n):
            out[out_start + j * out_step] += value
    elif step == 1 and out_step == 1:
        # Both contiguous: the common case (reducing a leading axis), kept separate so
        # Numba types both views as C-contiguous and LLVM vectorizes the loop.
        _add_into(out[out_start : out_start + n], buf[start : start + n])
    else:
        _add_into(out[out_start::out_step][:n], buf[start::step][:n])


@numba.njit(nogil=True, cache=True)
def _visits(sizes, outer):
    """How many positions the odometer over the ``outer`` leading axes visits."""
    visits = 1
    for j in range(outer):
        visits *= sizes[j]
    return visits


@numba.njit(nogil=True, cache=True)
def _advance(index, sizes, strides, out_strides, outer, offset, out_offset):
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


@numba.njit(nogil=True, cache=True)
def _walk_sum(buf, base, sizes, strides, out_strides, out):
    """Sum every element into ``out`` (float64, the C-ordered keepdims result).

    The innermost axis (or, when the two innermost axes are both reduced and rows are
    contiguous, the innermost two as a tile) is summed per visit; an odometer walks
    the remaining outer axes.
    """
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    tiled = k >= 2 and step == 1 and out_step == 0 and out_strides[k - 2] == 0
    outer = k - 2 if tiled else k - 1
    comp = np.zeros(out.size)
    index = np.zeros(k, dtype=np.int64)
    offset = base
    out_offset = 0
    for _ in range(_visits(sizes, outer)):
        if out_step == 0:
            if tiled:
                total, c = _tile_sum(buf, offset, sizes[k - 2], strides[k - 2], n)
            else:
                total, c = _row_sum(buf, offset, n, step)
            out[out_offset], comp[out_offset] = _neumaier_add(
                out[out_offset], comp[out_offset] + c, total
            )
        else:
            _row_accumulate(buf, offset, n, step, out, out_offset, out_step)
        offset, out_offset = _advance(index, sizes, strides, out_strides, outer, offset, out_offset)
    for i in range(out.size):
        out[i] += comp[i]


# --- NaN-skipping float sums (nansum, nanmean, count) ----------------------------------


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _nansum_loop(seg):
    # Branch-free (a select, a masked count): a branch on `v == v` blocks vectorization.
    acc = 0.0
    count = 0
    for i in range(seg.size):
        v = np.float64(seg[i])
        keep = v == v
        acc += v if keep else 0.0
        count += keep
    return acc, count


@numba.njit(nogil=True, cache=True)
def _block_nansum(buf, start, n, step):
    if step == 1:
        return _nansum_loop(buf[start : start + n])
    if step == 0:
        v = np.float64(buf[start])
        return (n * v, n) if v == v else (0.0, 0)
    return _nansum_loop(buf[start::step][:n])


@numba.njit(nogil=True, cache=True)
def _row_nansum(buf, start, n, step):
    """Compensated sum of the non-NaN values of a row, and how many there were."""
    total = 0.0
    comp = 0.0
    count = 0
    for b in range(0, n, BLOCK):
        value, c = _block_nansum(buf, start + b * step, min(BLOCK, n - b), step)
        total, comp = _neumaier_add(total, comp, value)
        count += c
    return total, comp, count


@numba.njit(nogil=True, cache=True)
def _row_accumulate_nan(buf, start, n, step, out, count, out_start, out_step):
    for j in range(n):
        v = np.float64(buf[start + j * step])
        keep = v == v
        out[out_start + j * out_step] += v if keep else 0.0
        count[out_start + j * out_step] += keep


@numba.njit(nogil=True, cache=True)
def _walk_nansum(buf, base, sizes, strides, out_strides, out, count):
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    comp = np.zeros(out.size)
    index = np.zeros(k, dtype=np.int64)
    offset = base
    out_offset = 0
    for _ in range(_visits(sizes, k - 1)):
        if out_step == 0:
            total, c, m = _row_nansum(buf, offset, n, step)
            out[out_offset], comp[out_offset] = _neumaier_add(out[out_offset], comp[out_offset] + c, total)
            count[out_offset] += m
        else:
            _row_accumulate_nan(buf, offset, n, step, out, count, out_offset, out_step)
        offset, out_offset = _advance(index, sizes, strides, out_strides, k - 1, offset, out_offset)
    for i in range(out.size):
        out[i] += comp[i]


# --- exact integer sums (sum of bool and integer input) -------------------------------


@numba.njit(nogil=True, cache=True)
def _isum_loop(seg):
    acc = np.int64(0)
    for i in range(seg.size):
        acc += np.int64(seg[i])
    return acc


@numba.njit(nogil=True, cache=True)
def _block_isum(buf, start, n, step):
    if step == 1:
        return _isum_loop(buf[start : start + n])
    if step == 0:
        return n * np.int64(buf[start])
    return _isum_loop(buf[start::step][:n])


@numba.njit(nogil=True, cache=True)
def _walk_isum(buf, base, sizes, strides, out_strides, out):
    """int64 sums, wrapping modulo 2**64 like NumPy's (so uint64 sums are exact too)."""
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    index = np.zeros(k, dtype=np.int64)
    offset = base
    out_offset = 0
    for _ in range(_visits(sizes, k - 1)):
        if out_step == 0:
            out[out_offset] += _block_isum(buf, offset, n, step)
        else:
            for j in range(n):
                out[out_offset + j * out_step] += np.int64(buf[offset + j * step])
        offset, out_offset = _advance(index, sizes, strides, out_strides, k - 1, offset, out_offset)


def walk_buffer(walk: Walk) -> np.ndarray:
    """The walk's buffer in a dtype Numba's CPU target can read (bool as uint8)."""
    buf = walk.buf
    if buf.dtype == np.bool_:
        return buf.view(np.uint8)
    if buf.dtype == np.float16:
        # Numba's CPU target has no float16 arithmetic; float16 chunks are rare and
        # small, so they are widened (the one case with a temporary).
        return buf.astype(np.float32)
    return buf


def sum_float64(walk: Walk) -> np.ndarray:
    """Float64 sum of a NumPy chunk over the walk's reduced axes, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> x = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> sum_float64(plan_walk(x, (1,)))
    array([[ 3.],
           [12.]])
    """
    out = np.zeros(walk.out_size, dtype=np.float64)
    _walk_sum(walk_buffer(walk), walk.base, walk.sizes, walk.strides, walk.out_strides, out)
    return out.reshape(walk.out_shape)


def nansum_float64(walk: Walk) -> tuple[np.ndarray, np.ndarray]:
    """Float64 sum of the non-NaN values and their int64 count, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> total, count = nansum_float64(plan_walk(np.array([[1.0, np.nan], [2.0, 3.0]]), (1,)))
    >>> total.ravel().tolist(), count.ravel().tolist()
    ([1.0, 5.0], [1, 2])
    """
    out = np.zeros(walk.out_size, dtype=np.float64)
    count = np.zeros(walk.out_size, dtype=np.int64)
    _walk_nansum(walk_buffer(walk), walk.base, walk.sizes, walk.strides, walk.out_strides, out, count)
    return out.reshape(walk.out_shape), count.reshape(walk.out_shape)


def sum_int64(walk: Walk) -> np.ndarray:
    """Exact int64 sum (modulo 2**64) of a bool or integer chunk, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> sum_int64(plan_walk(np.array([2**62, 2**62, 5], dtype=np.uint64), (0,))).view(np.uint64)
    array([9223372036854775813], dtype=uint64)
    """
    out = np.zeros(walk.out_size, dtype=np.int64)
    _walk_isum(walk_buffer(walk), walk.base, walk.sizes, walk.strides, walk.out_strides, out)
    return out.reshape(walk.out_shape)


# --- min and max (min, max, nanmin, nanmax, ptp) ---------------------------------------
# One pass keeps the smallest and largest non-NaN values and how many values were not
# NaN; NaN never enters (`v < lo` is False for NaN), so NaN-propagating min/max are
# decided at the end from that count.

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


@numba.njit(nogil=True, cache=True)
def _block_minmax(buf, start, n, step, lo, hi, keep):
    if step == 1:
        return _kept_minmax_loop(buf[start : start + n], lo, hi, keep)
    if step == 0:
        return _kept_minmax_loop(buf[start : start + 1], lo, hi, keep) if n else (lo, hi, 0)
    return _kept_minmax_loop(buf[start::step][:n], lo, hi, keep)


@numba.njit(nogil=True, cache=True)
def _walk_minmax(buf, base, sizes, strides, out_strides, lo, hi, valid, keep):
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    index = np.zeros(k, dtype=np.int64)
    offset = base
    out_offset = 0
    for _ in range(_visits(sizes, k - 1)):
        if out_step == 0:
            low, high, count = _block_minmax(buf, offset, n, step, lo[out_offset], hi[out_offset], keep)
            lo[out_offset] = low
            hi[out_offset] = high
            # A broadcast row (step 0) holds one value n times.
            valid[out_offset] += count * n if step == 0 else count
        else:
            for j in range(n):
                v = buf[offset + j * step]
                o = out_offset + j * out_step
                lo[o] = skip_nan_min(lo[o], v)
                hi[o] = skip_nan_max(hi[o], v)
                valid[o] += v == v
        offset, out_offset = _advance(index, sizes, strides, out_strides, k - 1, offset, out_offset)


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


def minmax(walk: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest and largest non-NaN values (in the chunk's dtype; bool as uint8, float16
    as float32) and the int64 count of non-NaN values, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
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
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> lo, hi, valid = min_only(plan_walk(np.array([[3.0, np.nan, -1.0], [2.0, 5.0, 4.0]]), (1,)))
    >>> lo.ravel().tolist(), hi.ravel().tolist(), valid.ravel().tolist()
    ([-1.0, 2.0], [-inf, -inf], [2, 3])
    """
    return _kept_minmax(walk, LOW_ONLY)


def max_only(walk: Walk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`minmax`'s outputs with only the largest values found: the smallest stay
    at their starting limit (+inf, or the dtype's largest integer).

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> lo, hi, valid = max_only(plan_walk(np.array([[3.0, np.nan, -1.0], [2.0, 5.0, 4.0]]), (1,)))
    >>> lo.ravel().tolist(), hi.ravel().tolist(), valid.ravel().tolist()
    ([inf, inf], [3.0, 5.0], [2, 3])
    """
    return _kept_minmax(walk, HIGH_ONLY)


def _kept_minmax(walk: Walk, keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buf = walk_buffer(walk)
    low, high = minmax_limits(buf.dtype)
    lo = np.full(walk.out_size, low, dtype=buf.dtype)
    hi = np.full(walk.out_size, high, dtype=buf.dtype)
    valid = np.zeros(walk.out_size, dtype=np.int64)
    _walk_minmax(buf, walk.base, walk.sizes, walk.strides, walk.out_strides, lo, hi, valid, keep)
    shape = walk.out_shape
    return lo.reshape(shape), hi.reshape(shape), valid.reshape(shape)


# --- shifted moments (var, std, nanvar, nanstd, moments) ------------------------------
# Per output position: a shift K (the first non-NaN value met), the count of non-NaN
# values, and the sums of (x - K) and (x - K)**2.  Deviations from a value of the data
# stay small when the data sit on a large offset (1e9 + U(0, 1)), where a plain sum of
# squares loses every digit.  `moments` also keeps min and max, from the same block
# while it is in L1.


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _moment_loop(seg, shift):
    s1 = 0.0
    s2 = 0.0
    count = 0
    for i in range(seg.size):
        v = np.float64(seg[i])
        keep = v == v
        d = v - shift if keep else 0.0
        s1 += d
        s2 += d * d
        count += keep
    return s1, s2, count


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _moment_minmax_loop(seg, shift, lo, hi):
    """_moment_loop and _minmax_loop in one pass over a contiguous block, read once.

    var and moments both use it, so moments' sums keep the bits of var's (the loop's
    vectorization differs from _moment_loop's, and so does its rounding).  2 threads
    over 64 x 32 MiB from memory, same process (bench/NOTES.md): moments' two passes
    51.9 GB/s -> 57.0; var 59.4 -> 57.0, the min/max it does not need."""
    s1 = 0.0
    s2 = 0.0
    count = 0
    for i in range(seg.size):
        x = seg[i]
        v = np.float64(x)
        keep = v == v
        d = v - shift if keep else 0.0
        s1 += d
        s2 += d * d
        count += keep
        lo = skip_nan_min(lo, x)
        hi = skip_nan_max(hi, x)
    return s1, s2, count, lo, hi


@numba.njit(nogil=True, cache=True)
def _block_moments(buf, start, n, step, shift):
    """A broadcast (step 0) or strided block; contiguous ones go to _moment_minmax_loop."""
    if step == 0:
        s1, s2, count = _moment_loop(buf[start : start + 1], shift)
        return s1 * n, s2 * n, count * n
    return _moment_loop(buf[start::step][:n], shift)


@numba.njit(nogil=True, cache=True)
def _first_valid(buf, start, n, step):
    """Index of the first non-NaN element of a row, or -1."""
    for j in range(n):
        v = buf[start + j * step]
        if v == v:
            return j
    return -1


@numba.njit(nogil=True, cache=True)
def _row_moments(buf, start, n, step, shift, with_minmax, lo, hi):
    """Compensated shifted sums of a row, its non-NaN count, and (optionally) its
    min/max merged into ``lo``/``hi``, one ``BLOCK`` at a time."""
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    count = 0
    for b in range(0, n, BLOCK):
        m = min(BLOCK, n - b)
        if step == 1:
            a1, a2, k, lo, hi = _moment_minmax_loop(buf[start + b : start + b + m], shift, lo, hi)
        else:
            a1, a2, k = _block_moments(buf, start + b * step, m, step, shift)
            if with_minmax:
                lo, hi, _ = _block_minmax(buf, start + b * step, m, step, lo, hi, BOTH)
        s1, c1 = _neumaier_add(s1, c1, a1)
        s2, c2 = _neumaier_add(s2, c2, a2)
        count += k
    return s1 + c1, s2 + c2, count, lo, hi


@numba.njit(nogil=True, cache=True)
def _walk_moments(buf, base, sizes, strides, out_strides, with_minmax, count, shift, has_shift, s1, s2, lo, hi):
    k = sizes.size
    n = sizes[k - 1]
    step = strides[k - 1]
    out_step = out_strides[k - 1]
    index = np.zeros(k, dtype=np.int64)
    offset = base
    o = 0
    for _ in range(_visits(sizes, k - 1)):
        if out_step == 0:
            if not has_shift[o]:
                first = _first_valid(buf, offset, n, step)
                if first >= 0:
                    shift[o] = np.float64(buf[offset + first * step])
                    has_shift[o] = True
            a1, a2, m, low, high = _row_moments(buf, offset, n, step, shift[o], with_minmax, lo[o], hi[o])
            s1[o] += a1
            s2[o] += a2
            count[o] += m
            lo[o] = low
            hi[o] = high
        else:
            for j in range(n):
                v = buf[offset + j * step]
                p = o + j * out_step
                if v == v:
                    if not has_shift[p]:
                        shift[p] = np.float64(v)
                        has_shift[p] = True
                    d = np.float64(v) - shift[p]
                    s1[p] += d
                    s2[p] += d * d
                    count[p] += 1
                if with_minmax:
                    lo[p] = skip_nan_min(lo[p], v)
                    hi[p] = skip_nan_max(hi[p], v)
        offset, o = _advance(index, sizes, strides, out_strides, k - 1, offset, o)


def _moments(walk: Walk, with_minmax: bool) -> tuple[np.ndarray, ...]:
    buf = walk_buffer(walk)
    size = walk.out_size
    low, high = minmax_limits(buf.dtype)
    outs = (
        np.zeros(size, dtype=np.int64),  # count of non-NaN values
        np.zeros(size, dtype=np.float64),  # shift
        np.zeros(size, dtype=np.bool_),  # has a shift yet
        np.zeros(size, dtype=np.float64),  # sum of (x - shift)
        np.zeros(size, dtype=np.float64),  # sum of (x - shift)**2
        np.full(size, low, dtype=buf.dtype),
        np.full(size, high, dtype=buf.dtype),
    )
    _walk_moments(buf, walk.base, walk.sizes, walk.strides, walk.out_strides, with_minmax, *outs)
    count, shift, _, s1, s2, lo, hi = (a.reshape(walk.out_shape) for a in outs)
    return (count, shift, s1, s2, lo, hi) if with_minmax else (count, shift, s1, s2)


def shifted_moments(walk: Walk) -> tuple[np.ndarray, ...]:
    """Count of non-NaN values, shift, sum(x - shift) and sum((x - shift)**2), keepdims.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.layout import plan_walk
    >>> count, shift, s1, s2 = shifted_moments(plan_walk(np.array([1e9 + 1, 1e9 + 3, np.nan]), (0,)))
    >>> count.tolist(), shift.tolist(), s1.tolist(), s2.tolist()
    ([2], [1000000001.0], [2.0], [4.0])
    """
    return _moments(walk, with_minmax=False)


def shifted_moments_minmax(walk: Walk) -> tuple[np.ndarray, ...]:
    """:func:`shifted_moments` plus min and max of the non-NaN values (as :func:`minmax`)."""
    return _moments(walk, with_minmax=True)


# --- argmin and argmax (argmin, argmax, nanargmin, nanargmax) ---------------------------
# Over rows of a 2-d view (outputs x reduced values): the best non-NaN value, its first
# index, and the first index of a NaN (-1: none), from which NumPy's NaN rules follow.


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


@numba.njit(nogil=True, cache=True)
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
    rows = rows_view(chunk, axis)
    if rows.dtype == np.bool_:
        rows = rows.view(np.uint8)
    elif rows.dtype == np.float16:
        rows = rows.astype(np.float32)
    m = rows.shape[0]
    value = np.empty(m, dtype=rows.dtype)
    index = np.empty(m, dtype=np.int64)
    nan_index = np.empty(m, dtype=np.int64)
    low, high = minmax_limits(rows.dtype)
    _arg_rows(rows, want_max, low, high, value, index, nan_index)
    return value, index, nan_index
