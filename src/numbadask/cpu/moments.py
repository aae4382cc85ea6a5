"""CPU block loops for shifted moments: the partial state of var, std, nanvar, nanstd
and moments.

Per output position: a shift K (the first non-NaN value met), the count of non-NaN
values, and the sums of (x - K) and (x - K)**2, each with a Neumaier compensation.
Deviations from a value of the data stay small when the data sit on a large offset
(1e9 + U(0, 1)), where a plain sum of squares loses every digit.  ``moments`` also
keeps min and max, from the same block while it is in L1.  A plug-in of the one walk
(:mod:`numbadask.cpu.walker`); ``params`` is ``(with_minmax,)``.
"""

from __future__ import annotations

import numba
import numpy as np

from numbadask.cpu.extremes import BOTH, _block_minmax, minmax_dtype, minmax_limits
from numbadask.cpu.sums import neumaier_add
from numbadask.cpu.layout import Walk
from numbadask.cpu.llvm_minmax import skip_nan_max, skip_nan_min
from numbadask.cpu.walker import BLOCK, COLUMN_TILE, four_rows, instantiate, run

_REASSOC = {"reassoc", "contract"}


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
    """_moment_loop and the min/max loop in one pass over a contiguous block, read once.

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


@numba.njit(nogil=True, cache=True, fastmath=_REASSOC)
def _moment_minmax_4_rows_loop(a, b, c, d, shift, lo, hi):
    """_moment_minmax_loop over four rows read side by side (the walk's tile), one
    running min and max per row.  32 MiB squares of a 2 GiB float64 array on one core:
    7.0 -> 14.8 GB/s (bench/NOTES.md); one min and max for all four rows serialized
    the loop (4.4 GB/s)."""
    s1 = 0.0
    s2 = 0.0
    count = 0
    l0 = l1 = l2 = l3 = lo
    h0 = h1 = h2 = h3 = hi
    for i in range(a.size):
        x0, x1, x2, x3 = a[i], b[i], c[i], d[i]
        v0, v1, v2, v3 = np.float64(x0), np.float64(x1), np.float64(x2), np.float64(x3)
        k0, k1, k2, k3 = v0 == v0, v1 == v1, v2 == v2, v3 == v3
        d0 = v0 - shift if k0 else 0.0
        d1 = v1 - shift if k1 else 0.0
        d2 = v2 - shift if k2 else 0.0
        d3 = v3 - shift if k3 else 0.0
        s1 += (d0 + d1) + (d2 + d3)
        s2 += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
        count += (k0 + k1) + (k2 + k3)
        l0, l1, l2, l3 = skip_nan_min(l0, x0), skip_nan_min(l1, x1), skip_nan_min(l2, x2), skip_nan_min(l3, x3)
        h0, h1, h2, h3 = skip_nan_max(h0, x0), skip_nan_max(h1, x1), skip_nan_max(h2, x2), skip_nan_max(h3, x3)
    lo = skip_nan_min(skip_nan_min(l0, l1), skip_nan_min(l2, l3))
    hi = skip_nan_max(skip_nan_max(h0, h1), skip_nan_max(h2, h3))
    return s1, s2, count, lo, hi


@numba.njit(nogil=True, cache=True)
def _first_valid(buf, start, n, step):
    """Index of the first non-NaN element of a row, or -1."""
    for j in range(n):
        v = buf[start + j * step]
        if v == v:
            return j
    return -1


@numba.njit(inline="always")
def _add_block(state, o, a1, a2, m):
    count, _, _, s1, c1, s2, c2, _, _ = state
    s1[o], c1[o] = neumaier_add(s1[o], c1[o], a1)
    s2[o], c2[o] = neumaier_add(s2[o], c2[o], a2)
    count[o] += m


@numba.njit(inline="always")
def _contiguous_blocks(state, o, seg):
    lo, hi = state[7], state[8]
    shift = state[1][o]
    for b in range(0, seg.size, BLOCK):
        a1, a2, m, lo[o], hi[o] = _moment_minmax_loop(seg[b : b + BLOCK], shift, lo[o], hi[o])
        _add_block(state, o, a1, a2, m)


@numba.njit(inline="always")
def _moments_row(state, o, buf, start, n, step, params):
    shift, has_shift, lo, hi = state[1], state[2], state[7], state[8]
    if not has_shift[o]:
        first = _first_valid(buf, start, n, step)
        if first >= 0:
            shift[o] = np.float64(buf[start + first * step])
            has_shift[o] = True
    if step == 1:  # its own call, so Numba types the view as contiguous
        _contiguous_blocks(state, o, buf[start : start + n])
    elif step == 0:  # one value, n times
        a1, a2, m = _moment_loop(buf[start : start + 1], shift[o])
        _add_block(state, o, a1 * n, a2 * n, m * n)
        if params[0]:
            lo[o], hi[o], _ = _block_minmax(buf, start, 1, 1, lo[o], hi[o], BOTH)
    else:
        seg = buf[start::step][:n]
        for b in range(0, n, BLOCK):
            a1, a2, m = _moment_loop(seg[b : b + BLOCK], shift[o])
            _add_block(state, o, a1, a2, m)
            if params[0]:
                lo[o], hi[o], _ = _block_minmax(buf, start + b * step, min(BLOCK, n - b), step, lo[o], hi[o], BOTH)


@numba.njit(inline="always")
def _moments_4_rows(state, o, buf, start, n, row_stride, params):
    shift, has_shift, lo, hi = state[1], state[2], state[7], state[8]
    r = 0
    while not has_shift[o] and r < 4:
        first = _first_valid(buf, start + r * row_stride, n, 1)
        if first >= 0:
            shift[o] = np.float64(buf[start + r * row_stride + first])
            has_shift[o] = True
        r += 1
    for b in range(0, n, BLOCK):
        rows = four_rows(buf, start + b, min(BLOCK, n - b), row_stride)
        a1, a2, m, lo[o], hi[o] = _moment_minmax_4_rows_loop(*rows, shift[o], lo[o], hi[o])
        _add_block(state, o, a1, a2, m)


@numba.njit(inline="always")
def _moments_across(state, o, out_step, buf, start, n, step, params):
    count, shift, has_shift, s1, _, s2, _, lo, hi = state
    for j in range(n):
        v = buf[start + j * step]
        p = o + j * out_step
        if v == v:
            if not has_shift[p]:
                shift[p] = np.float64(v)
                has_shift[p] = True
            d = np.float64(v) - shift[p]
            s1[p] += d
            s2[p] += d * d
            count[p] += 1
        if params[0]:
            lo[p] = skip_nan_min(lo[p], v)
            hi[p] = skip_nan_max(hi[p], v)


@numba.njit(inline="always")
def _shifts_of_columns(state, o, buf, start, m, rows, row_stride):
    """Give each of the outputs ``o .. o+m-1`` still without a shift the first non-NaN
    value of its column (as ``_moments_across`` does row by row)."""
    shift, has_shift = state[1], state[2]
    for j in range(m):
        p = o + j
        if not has_shift[p]:
            for r in range(rows):
                v = buf[start + r * row_stride + j]
                if v == v:
                    shift[p] = np.float64(v)
                    has_shift[p] = True
                    break


@numba.njit(nogil=True, cache=True)
def _moments_4_into(shift, s1, s2, count, a, b, c, d):
    # Branch-free, four rows into each output in row order: the bits of
    # _moments_across one row after another (a NaN adds 0.0, which leaves the sums,
    # started at +0.0, as skipping it did).
    for j in range(s1.size):
        k = shift[j]
        va, vb, vc, vd = np.float64(a[j]), np.float64(b[j]), np.float64(c[j]), np.float64(d[j])
        ka, kb, kc, kd = va == va, vb == vb, vc == vc, vd == vd
        da = va - k if ka else 0.0
        db = vb - k if kb else 0.0
        dc = vc - k if kc else 0.0
        dd = vd - k if kd else 0.0
        s1[j] = (((s1[j] + da) + db) + dc) + dd
        s2[j] = (((s2[j] + da * da) + db * db) + dc * dc) + dd * dd
        count[j] += (ka + kb) + (kc + kd)


@numba.njit(nogil=True, cache=True)
def _moments_1_into(shift, s1, s2, count, a):
    for j in range(s1.size):
        v = np.float64(a[j])
        keep = v == v
        d = v - shift[j] if keep else 0.0
        s1[j] += d
        s2[j] += d * d
        count[j] += keep


@numba.njit(nogil=True, cache=True)
def _minmax_4_into(lo, hi, a, b, c, d):
    for j in range(lo.size):
        lo[j] = skip_nan_min(skip_nan_min(skip_nan_min(skip_nan_min(lo[j], a[j]), b[j]), c[j]), d[j])
        hi[j] = skip_nan_max(skip_nan_max(skip_nan_max(skip_nan_max(hi[j], a[j]), b[j]), c[j]), d[j])


@numba.njit(nogil=True, cache=True)
def _minmax_1_into(lo, hi, a):
    for j in range(lo.size):
        lo[j] = skip_nan_min(lo[j], a[j])
        hi[j] = skip_nan_max(hi[j], a[j])


@numba.njit(inline="always")
def _moments_across_rows(state, o, buf, start, n, rows, row_stride, params):
    """``rows`` rows folded across, a column tile at a time (see
    :func:`numbadask.cpu.walker.walk_blocks`, its COLUMNS case): the shifts first, then four rows side by side."""
    count, shift, _, s1, _, s2, _, lo, hi = state
    for c0 in range(0, n, COLUMN_TILE):
        m = min(COLUMN_TILE, n - c0)
        p, s = o + c0, start + c0
        _shifts_of_columns(state, p, buf, s, m, rows, row_stride)
        t_shift, t1, t2, t_count = shift[p : p + m], s1[p : p + m], s2[p : p + m], count[p : p + m]
        t_lo, t_hi = lo[p : p + m], hi[p : p + m]
        r = 0
        while r + 4 <= rows:
            a, b, c, d = four_rows(buf, s + r * row_stride, m, row_stride)  # no star arguments to an inlined function
            _moments_4_into(t_shift, t1, t2, t_count, a, b, c, d)
            if params[0]:
                _minmax_4_into(t_lo, t_hi, a, b, c, d)
            r += 4
        while r < rows:
            row = buf[s + r * row_stride : s + r * row_stride + m]
            _moments_1_into(t_shift, t1, t2, t_count, row)
            if params[0]:
                _minmax_1_into(t_lo, t_hi, row)
            r += 1


@numba.njit(inline="always")
def _add_compensations(state):
    s1, c1, s2, c2 = state[3], state[4], state[5], state[6]
    for i in range(s1.size):
        s1[i] += c1[i]
        s2[i] += c2[i]


_walk_moments = instantiate(
    "walk_moments",
    fold_row=_moments_row,
    fold_4_rows=_moments_4_rows,
    fold_across=_moments_across,
    fold_across_rows=_moments_across_rows,
    finish=_add_compensations,
)


def _moments(walk: Walk, with_minmax: bool) -> tuple[np.ndarray, ...]:
    size = walk.out_size
    dtype = minmax_dtype(walk.buf.dtype)
    low, high = minmax_limits(dtype)
    state = (
        np.zeros(size, dtype=np.int64),  # count of non-NaN values
        np.zeros(size),  # shift
        np.zeros(size, dtype=np.bool_),  # has a shift yet
        np.zeros(size),  # sum of (x - shift)
        np.zeros(size),  # its compensation
        np.zeros(size),  # sum of (x - shift)**2
        np.zeros(size),  # its compensation
        np.full(size, low, dtype=dtype),
        np.full(size, high, dtype=dtype),
    )
    count, shift, _, s1, _, s2, _, lo, hi = run(_walk_moments, walk, state, (with_minmax,))
    return (count, shift, s1, s2, lo, hi) if with_minmax else (count, shift, s1, s2)


def shifted_moments(walk: Walk) -> tuple[np.ndarray, ...]:
    """Count of non-NaN values, shift, sum(x - shift) and sum((x - shift)**2), keepdims.

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> count, shift, s1, s2 = shifted_moments(plan_walk(np.array([1e9 + 1, 1e9 + 3, np.nan]), (0,)))
    >>> count.tolist(), shift.tolist(), s1.tolist(), s2.tolist()
    ([2], [1000000001.0], [2.0], [4.0])
    """
    return _moments(walk, with_minmax=False)


def shifted_moments_minmax(walk: Walk) -> tuple[np.ndarray, ...]:
    """:func:`shifted_moments` plus min and max of the non-NaN values (as
    :func:`numbadask.cpu.extremes.minmax`).

    Examples
    --------
    >>> import numpy as np
    >>> from numbadask.cpu.layout import plan_walk
    >>> out = shifted_moments_minmax(plan_walk(np.array([[4.0, np.nan, 1.0]]), (1,)))
    >>> [a.ravel().tolist() for a in out]
    [[2], [4.0], [-3.0], [9.0], [1.0], [4.0]]
    """
    return _moments(walk, with_minmax=True)
