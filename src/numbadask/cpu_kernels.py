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

#: Elements summed by one vectorized (reassociated) loop before compensation.
BLOCK = 512

_REASSOC = {"reassoc", "contract"}


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _block_sum(buf, start, n, step):
    # Loops run over sliced views: indexing ``buf[start + i]`` directly keeps Numba's
    # negative-index wraparound check in the loop, which blocks vectorization (5 GB/s
    # instead of 30 GB/s on one core here).
    acc = 0.0
    if step == 1:
        seg = buf[start : start + n]
        for i in range(seg.size):
            acc += np.float64(seg[i])
    elif step == 0:
        acc = n * np.float64(buf[start])
    else:
        seg = buf[start::step][:n]
        for i in range(seg.size):
            acc += np.float64(seg[i])
    return acc


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
