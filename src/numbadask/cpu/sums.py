"""CPU block loops for sums: compensated float sums, NaN-skipping sums, integer sums.

Each is a plug-in of the one walk (:mod:`numbadask.cpu.walker`).  Rules they follow
(measured; see DESIGN.md):

* full ``fastmath`` is wrong for us (it deletes NaN checks and compensation); only the
  innermost block loops are compiled with ``reassoc`` so LLVM can vectorize them, and
  the blocks are then added with Neumaier compensation, which keeps float64 sums at
  least as accurate as NumPy's pairwise summation;
* float input accumulates in float64; integer and bool sums in int64 (exact, wrapping
  like NumPy's).
"""

from __future__ import annotations

import numba
import numpy as np

from numbadask.cpu.layout import Walk
from numbadask.cpu.walker import BLOCK, COLUMN_TILE, four_rows, instantiate, run

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


@numba.njit(inline="always")
def neumaier_add(total, comp, value):
    """``total + value`` and the updated compensation of a Neumaier sum."""
    t = total + value
    if not np.isfinite(t):
        # inf - inf would turn the compensation into NaN: sum([inf, 1.0]) is inf.
        return t, comp
    if abs(total) >= abs(value):
        comp += (total - t) + value
    else:
        comp += (value - t) + total
    return t, comp


@numba.njit(inline="always")
def _sum_blocks(seg, total, comp):
    for b in range(0, seg.size, BLOCK):
        total, comp = neumaier_add(total, comp, _segment_sum(seg[b : b + BLOCK]))
    return total, comp


@numba.njit(inline="always")
def _sum_row(state, o, buf, start, n, step, params):
    out, comp = state
    if step == 1:
        # Its own call, so Numba types the view as contiguous and LLVM vectorizes it
        # (one variable for both views would be typed as strided).
        out[o], comp[o] = _sum_blocks(buf[start : start + n], out[o], comp[o])
    elif step == 0:
        out[o], comp[o] = neumaier_add(out[o], comp[o], n * np.float64(buf[start]))
    else:
        out[o], comp[o] = _sum_blocks(buf[start::step][:n], out[o], comp[o])


@numba.njit(inline="always")
def _sum_4_rows(state, o, buf, start, n, row_stride, params):
    out, comp = state
    total = out[o]
    c = comp[o]
    for b in range(0, n, BLOCK):
        total, c = neumaier_add(total, c, _block_sum_4_rows(buf, start + b, min(BLOCK, n - b), row_stride))
    out[o] = total
    comp[o] = c


@numba.njit(nogil=True, cache=True)
def _add_into(dst, src):
    for j in range(dst.size):
        dst[j] += np.float64(src[j])


@numba.njit(inline="always")
def _sum_across(state, o, out_step, buf, start, n, step, params):
    out = state[0]
    if step == 0:
        value = np.float64(buf[start])
        for j in range(n):
            out[o + j * out_step] += value
    elif step == 1 and out_step == 1:
        # Both contiguous: the common case (reducing a leading axis), kept separate so
        # Numba types both views as C-contiguous and LLVM vectorizes the loop.
        _add_into(out[o : o + n], buf[start : start + n])
    else:
        _add_into(out[o::out_step][:n], buf[start::step][:n])


@numba.njit(nogil=True, cache=True)
def _add_4_into(dst, a, b, c, d):
    # Four rows into each output in row order: the bits of four _add_into calls, with
    # one load and store of the accumulator for four rows and four input streams in
    # flight.  No reassoc: the loop vectorizes across outputs as it is.
    for j in range(dst.size):
        dst[j] = (((dst[j] + np.float64(a[j])) + np.float64(b[j])) + np.float64(c[j])) + np.float64(d[j])


@numba.njit(inline="always")
def _sum_across_rows(state, o, buf, start, n, rows, row_stride, params):
    out = state[0]
    for c0 in range(0, n, COLUMN_TILE):
        m = min(COLUMN_TILE, n - c0)
        acc = out[o + c0 : o + c0 + m]
        s = start + c0
        r = 0
        while r + 4 <= rows:
            a, b, c, d = four_rows(buf, s + r * row_stride, m, row_stride)  # no star arguments to an inlined function
            _add_4_into(acc, a, b, c, d)
            r += 4
        while r < rows:
            _add_into(acc, buf[s + r * row_stride : s + r * row_stride + m])
            r += 1


@numba.njit(inline="always")
def _add_compensation(state):
    out, comp = state[0], state[1]
    for i in range(out.size):
        out[i] += comp[i]


_walk_sum = instantiate(
    "walk_sum", fold_row=_sum_row, fold_4_rows=_sum_4_rows, fold_across=_sum_across, fold_across_rows=_sum_across_rows, finish=_add_compensation
)


def sum_float64(walk: Walk) -> np.ndarray:
    """Float64 sum of a NumPy chunk over the walk's reduced axes, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> x = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> sum_float64(plan_walk(x, (1,)))
    array([[ 3.],
           [12.]])
    """
    state = (np.zeros(walk.out_size), np.zeros(walk.out_size))
    return run(_walk_sum, walk, state)[0]


# --- NaN-skipping float sums (nansum, nanmean) -------------------------------------------


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


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _nansum_loop_4_rows(a, b, c, d):
    acc = 0.0
    count = 0
    for i in range(a.size):
        va, vb, vc, vd = np.float64(a[i]), np.float64(b[i]), np.float64(c[i]), np.float64(d[i])
        ka, kb, kc, kd = va == va, vb == vb, vc == vc, vd == vd
        acc += ((va if ka else 0.0) + (vb if kb else 0.0)) + ((vc if kc else 0.0) + (vd if kd else 0.0))
        count += (ka + kb) + (kc + kd)
    return acc, count


@numba.njit(inline="always")
def _nansum_blocks(seg, total, comp):
    count = 0
    for b in range(0, seg.size, BLOCK):
        value, k = _nansum_loop(seg[b : b + BLOCK])
        total, comp = neumaier_add(total, comp, value)
        count += k
    return total, comp, count


@numba.njit(inline="always")
def _nansum_row(state, o, buf, start, n, step, params):
    out, comp, count = state
    if step == 1:  # its own call, as in _sum_row
        out[o], comp[o], k = _nansum_blocks(buf[start : start + n], out[o], comp[o])
    elif step == 0:
        v = np.float64(buf[start])
        keep = v == v
        out[o], comp[o] = neumaier_add(out[o], comp[o], n * v if keep else 0.0)
        k = n if keep else 0
    else:
        out[o], comp[o], k = _nansum_blocks(buf[start::step][:n], out[o], comp[o])
    count[o] += k


@numba.njit(inline="always")
def _nansum_4_rows(state, o, buf, start, n, row_stride, params):
    out, comp, count = state
    total = out[o]
    c = comp[o]
    m = 0
    for b in range(0, n, BLOCK):
        s = start + b
        e = s + min(BLOCK, n - b)
        value, k = _nansum_loop_4_rows(buf[s:e], buf[s + row_stride : e + row_stride], buf[s + 2 * row_stride : e + 2 * row_stride], buf[s + 3 * row_stride : e + 3 * row_stride])
        total, c = neumaier_add(total, c, value)
        m += k
    out[o] = total
    comp[o] = c
    count[o] += m


@numba.njit(inline="always")
def _nansum_across(state, o, out_step, buf, start, n, step, params):
    out, _, count = state
    for j in range(n):
        v = np.float64(buf[start + j * step])
        keep = v == v
        out[o + j * out_step] += v if keep else 0.0
        count[o + j * out_step] += keep


@numba.njit(nogil=True, cache=True)
def _nan_add_into(dst, count, a):
    for j in range(dst.size):
        v = np.float64(a[j])
        keep = v == v
        dst[j] += v if keep else 0.0
        count[j] += keep


@numba.njit(nogil=True, cache=True)
def _nan_add_4_into(dst, count, a, b, c, d):
    # Branch-free, four rows into each output in row order (adding 0.0 for a NaN
    # leaves a sum's bits as skipping it does: the sums start at +0.0).
    for j in range(dst.size):
        va, vb, vc, vd = np.float64(a[j]), np.float64(b[j]), np.float64(c[j]), np.float64(d[j])
        ka, kb, kc, kd = va == va, vb == vb, vc == vc, vd == vd
        dst[j] = (((dst[j] + (va if ka else 0.0)) + (vb if kb else 0.0)) + (vc if kc else 0.0)) + (vd if kd else 0.0)
        count[j] += (ka + kb) + (kc + kd)


@numba.njit(inline="always")
def _nansum_across_rows(state, o, buf, start, n, rows, row_stride, params):
    out, _, count = state
    for c0 in range(0, n, COLUMN_TILE):
        m = min(COLUMN_TILE, n - c0)
        acc = out[o + c0 : o + c0 + m]
        k = count[o + c0 : o + c0 + m]
        s = start + c0
        r = 0
        while r + 4 <= rows:
            a, b, c, d = four_rows(buf, s + r * row_stride, m, row_stride)
            _nan_add_4_into(acc, k, a, b, c, d)
            r += 4
        while r < rows:
            _nan_add_into(acc, k, buf[s + r * row_stride : s + r * row_stride + m])
            r += 1


_walk_nansum = instantiate(
    "walk_nansum",
    fold_row=_nansum_row,
    fold_4_rows=_nansum_4_rows,
    fold_across=_nansum_across,
    fold_across_rows=_nansum_across_rows,
    finish=_add_compensation,
)


def nansum_float64(walk: Walk) -> tuple[np.ndarray, np.ndarray]:
    """Float64 sum of the non-NaN values and their int64 count, keepdims shape.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> total, count = nansum_float64(plan_walk(np.array([[1.0, np.nan], [2.0, 3.0]]), (1,)))
    >>> total.ravel().tolist(), count.ravel().tolist()
    ([1.0, 5.0], [1, 2])
    """
    size = walk.out_size
    total, _, count = run(_walk_nansum, walk, (np.zeros(size), np.zeros(size), np.zeros(size, dtype=np.int64)))
    return total, count


# --- exact integer sums (sum of bool and integer input) -------------------------------


@numba.njit(nogil=True, cache=True)
def _isum_loop(seg):
    acc = np.int64(0)
    for i in range(seg.size):
        acc += np.int64(seg[i])
    return acc


@numba.njit(inline="always")
def _isum_row(state, o, buf, start, n, step, params):
    out = state[0]
    if step == 0:
        out[o] += n * np.int64(buf[start])
    elif step == 1:
        out[o] += _isum_loop(buf[start : start + n])
    else:
        out[o] += _isum_loop(buf[start::step][:n])


@numba.njit(inline="always")
def _isum_across(state, o, out_step, buf, start, n, step, params):
    out = state[0]
    for j in range(n):
        out[o + j * out_step] += np.int64(buf[start + j * step])


_walk_isum = instantiate("walk_isum", fold_row=_isum_row, fold_across=_isum_across)


def sum_int64(walk: Walk) -> np.ndarray:
    """Exact int64 sum (modulo 2**64, like NumPy's) of a bool or integer chunk, keepdims.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> sum_int64(plan_walk(np.array([2**62, 2**62, 5], dtype=np.uint64), (0,))).view(np.uint64)
    array([9223372036854775813], dtype=uint64)
    """
    return run(_walk_isum, walk, (np.zeros(walk.out_size, dtype=np.int64),))[0]
