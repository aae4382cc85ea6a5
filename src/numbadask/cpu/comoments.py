"""Numba kernels of :func:`numbadask.comoments` and :func:`numbadask.average`: one
block of x and its aligned block of y (or of a and its weights) read side by side.

Each kernel takes the blocks as 2-D views, the reduced elements along one axis and the
output positions along the other, and writes small per-position state arrays (float64
whatever the input dtype: integers, bools and float32 accumulate in float64).

``comoments`` state per output position: the number of pairs with neither value NaN,
the shifts Kx and Ky, the means of x - Kx and of y - Ky over those pairs, and the centred
second sums
``sum((x - mean_x)**2)``, ``sum((y - mean_y)**2)``, ``sum((x - mean_x)*(y - mean_y))``.
They are computed from sums of ``x - Kx`` and ``y - Ky``, the shifts taken from the
block's first pair of finite values, so an offset (1e8 + small noise) costs no digits.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _outputs(m):  # type: ignore[no-untyped-def]
    """The state arrays of ``m`` positions: count (int64), kx, ky, mean_x, mean_y, m2x,
    m2y and cxy (float64)."""
    return np.zeros(m, np.int64), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)


@numba.njit(cache=True, nogil=True)
def _finish_row(j, n, kx, ky, sx, sy, sxx, syy, sxy, out):  # type: ignore[no-untyped-def]
    out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy = out
    out_n[j] = n
    out_kx[j] = kx
    out_ky[j] = ky
    if n == 0:
        out_mx[j] = 0.0
        out_my[j] = 0.0
        out_m2x[j] = 0.0
        out_m2y[j] = 0.0
        out_cxy[j] = 0.0
        return
    out_mx[j] = sx / n
    out_my[j] = sy / n
    out_m2x[j] = sxx - sx * sx / n
    out_m2y[j] = syy - sy * sy / n
    out_cxy[j] = sxy - sx * sy / n


@numba.njit(cache=True, nogil=True)
def comoments_rows(x, y):  # type: ignore[no-untyped-def]
    """State of each row of the 2-D ``x`` and ``y`` (output positions x reduced elements)."""
    m, length = x.shape
    out = _outputs(m)
    for j in range(m):
        kx = 0.0
        ky = 0.0
        for i in range(length):  # the shift: the first pair of finite values
            a = np.float64(x[j, i])
            b = np.float64(y[j, i])
            if np.isfinite(a) and np.isfinite(b):
                kx = a
                ky = b
                break
        n = 0
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        for i in range(length):
            a = np.float64(x[j, i])
            b = np.float64(y[j, i])
            if np.isnan(a) or np.isnan(b):
                continue
            dx = a - kx
            dy = b - ky
            n += 1
            sx += dx
            sy += dy
            sxx += dx * dx
            syy += dy * dy
            sxy += dx * dy
        _finish_row(j, n, kx, ky, sx, sy, sxx, syy, sxy, out)
    return out


#: Output positions the column kernels fold at a time: their sums (8 float64 or
#: int64 per position for comoments, 256 KiB a tile) stay in L2 while every row of
#: the tile streams past, where a whole row of a (time, lat, lon) block (64,800
#: positions) held 4 MiB of sums and went to L3 for every row.
_TILE = 4096


@numba.njit(inline="always", cache=True, nogil=True)
def _deviation(xa, ya, j, k, q):  # type: ignore[no-untyped-def]
    # Branch-free (a NaN pair adds 0.0 and counts 0: the sums, started at +0.0, keep the
    # bits of skipping it), so LLVM vectorizes the loops across the positions.
    a = np.float64(xa[j])
    b = np.float64(ya[j])
    keep = (a == a) & (b == b)
    return keep, (a - k if keep else 0.0), (b - q if keep else 0.0)


@numba.njit(cache=True, nogil=True)
def _co_1_into(xa, ya, kx, ky, n, sx, sy, sxx, syy, sxy):  # type: ignore[no-untyped-def]
    for j in range(kx.size):
        keep, dx, dy = _deviation(xa, ya, j, kx[j], ky[j])
        n[j] += keep
        sx[j] += dx
        sy[j] += dy
        sxx[j] += dx * dx
        syy[j] += dy * dy
        sxy[j] += dx * dy


@numba.njit(cache=True, nogil=True)
def _co_2_into(xa, xb, ya, yb, kx, ky, n, sx, sy, sxx, syy, sxy):  # type: ignore[no-untyped-def]
    # Two rows of x and of y side by side (four streams in flight), added to each
    # position in row order: the bits of two _co_1_into calls, one load and store of
    # the sums per two rows.
    for j in range(kx.size):
        keep0, dx0, dy0 = _deviation(xa, ya, j, kx[j], ky[j])
        keep1, dx1, dy1 = _deviation(xb, yb, j, kx[j], ky[j])
        n[j] += keep0 + keep1
        sx[j] = (sx[j] + dx0) + dx1
        sy[j] = (sy[j] + dy0) + dy1
        sxx[j] = (sxx[j] + dx0 * dx0) + dx1 * dx1
        syy[j] = (syy[j] + dy0 * dy0) + dy1 * dy1
        sxy[j] = (sxy[j] + dx0 * dy0) + dx1 * dy1


@numba.njit(cache=True, nogil=True)
def _co_4_into(xa, xb, xc, xd, ya, yb, yc, yd, kx, ky, n, sx, sy, sxx, syy, sxy):  # type: ignore[no-untyped-def]
    # Four rows of x and of y (eight streams), in row order: the bits of _co_1_into
    # row after row with a quarter of the sums' loads and stores.  One (129, 64800)
    # float32 pair on a loaded core: 2 rows at a time 3.0 GB/s, 4 rows 3.9.
    for j in range(kx.size):
        k0, dx0, dy0 = _deviation(xa, ya, j, kx[j], ky[j])
        k1, dx1, dy1 = _deviation(xb, yb, j, kx[j], ky[j])
        k2, dx2, dy2 = _deviation(xc, yc, j, kx[j], ky[j])
        k3, dx3, dy3 = _deviation(xd, yd, j, kx[j], ky[j])
        n[j] += (k0 + k1) + (k2 + k3)
        sx[j] = (((sx[j] + dx0) + dx1) + dx2) + dx3
        sy[j] = (((sy[j] + dy0) + dy1) + dy2) + dy3
        sxx[j] = (((sxx[j] + dx0 * dx0) + dx1 * dx1) + dx2 * dx2) + dx3 * dx3
        syy[j] = (((syy[j] + dy0 * dy0) + dy1 * dy1) + dy2 * dy2) + dy3 * dy3
        sxy[j] = (((sxy[j] + dx0 * dy0) + dx1 * dy1) + dx2 * dy2) + dx3 * dy3


@numba.njit(cache=True, nogil=True)
def comoments_columns(x, y):  # type: ignore[no-untyped-def]
    """State of each column of the 2-D ``x`` and ``y`` (reduced elements x output
    positions): the rows are read in memory order, the sums kept per column, a tile
    of :data:`_TILE` columns at a time, four rows side by side."""
    length, m = x.shape
    kx = np.zeros(m)
    ky = np.zeros(m)
    have = np.zeros(m, np.bool_)
    n = np.zeros(m, np.int64)
    sx = np.zeros(m)
    sy = np.zeros(m)
    sxx = np.zeros(m)
    syy = np.zeros(m)
    sxy = np.zeros(m)
    missing = m
    for i in range(length):  # the shifts: each column's first pair of finite values
        if missing == 0:
            break
        for j in range(m):
            if not have[j]:
                a = np.float64(x[i, j])
                b = np.float64(y[i, j])
                if np.isfinite(a) and np.isfinite(b):
                    have[j] = True
                    kx[j] = a
                    ky[j] = b
                    missing -= 1
    for c0 in range(0, m, _TILE):
        c1 = min(m, c0 + _TILE)
        t = (kx[c0:c1], ky[c0:c1], n[c0:c1], sx[c0:c1], sy[c0:c1], sxx[c0:c1], syy[c0:c1], sxy[c0:c1])
        i = 0
        while i + 4 <= length:
            xs = (x[i, c0:c1], x[i + 1, c0:c1], x[i + 2, c0:c1], x[i + 3, c0:c1])
            ys = (y[i, c0:c1], y[i + 1, c0:c1], y[i + 2, c0:c1], y[i + 3, c0:c1])
            _co_4_into(*xs, *ys, *t)
            i += 4
        while i + 2 <= length:
            _co_2_into(x[i, c0:c1], x[i + 1, c0:c1], y[i, c0:c1], y[i + 1, c0:c1], *t)
            i += 2
        if i < length:
            _co_1_into(x[i, c0:c1], y[i, c0:c1], *t)
    out = _outputs(m)
    for j in range(m):
        _finish_row(j, n[j], kx[j], ky[j], sx[j], sy[j], sxx[j], syy[j], sxy[j], out)
    return out


@numba.njit(cache=True, nogil=True)
def weighted_rows(a, w, skip):  # type: ignore[no-untyped-def]
    """Per row of the 2-D ``a`` and ``w``: sum(w * a) and sum(w), in float64; ``skip``:
    leaving out the elements where ``a`` is NaN (xarray's weighted, skipna)."""
    m, length = a.shape
    swa = np.zeros(m)
    sw = np.zeros(m)
    for j in range(m):
        s1 = 0.0
        s0 = 0.0
        for i in range(length):
            v = np.float64(a[j, i])
            if skip and np.isnan(v):
                continue
            wi = np.float64(w[j, i])
            s1 += wi * v
            s0 += wi
        swa[j] = s1
        sw[j] = s0
    return swa, sw


@numba.njit(inline="always", cache=True, nogil=True)
def _weighted_add(v, wi, skip, swa, sw, j):  # type: ignore[no-untyped-def]
    # Branch-free, so the loops calling it vectorize: a skipped element adds 0.0 * 0.0
    # and 0.0 (the sums, started at +0.0, keep the bits of leaving it out).
    keep = (v == v) or not skip
    wk = wi if keep else 0.0
    swa[j] += wk * (v if keep else 0.0)
    sw[j] += wk


@numba.njit(cache=True, nogil=True)
def _weighted_into(row, wrow, skip, swa, sw):  # type: ignore[no-untyped-def]
    for j in range(swa.size):
        _weighted_add(np.float64(row[j]), np.float64(wrow[j]), skip, swa, sw, j)


@numba.njit(cache=True, nogil=True)
def _weighted_one_weight_into(row, wi, skip, swa, sw):  # type: ignore[no-untyped-def]
    # One weight for the whole row (weights along the reduced axis only, broadcast over
    # the positions: a stride-0 view, read once).
    for j in range(swa.size):
        _weighted_add(np.float64(row[j]), wi, skip, swa, sw, j)


@numba.njit(cache=True, nogil=True)
def weighted_columns(a, w, skip):  # type: ignore[no-untyped-def]
    """Per column of the 2-D ``a`` and ``w``: as :func:`weighted_rows`, the rows in
    memory order, a tile of :data:`_TILE` columns at a time."""
    length, m = a.shape
    swa = np.zeros(m)
    sw = np.zeros(m)
    one_weight = m > 0 and w.strides[1] == 0
    for c0 in range(0, m, _TILE):
        c1 = min(m, c0 + _TILE)
        t_swa = swa[c0:c1]
        t_sw = sw[c0:c1]
        for i in range(length):
            if one_weight:
                _weighted_one_weight_into(a[i, c0:c1], np.float64(w[i, 0]), skip, t_swa, t_sw)
            else:
                _weighted_into(a[i, c0:c1], w[i, c0:c1], skip, t_swa, t_sw)
    return swa, sw
