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
def _finish_row(j, n, kx, ky, sx, sy, sxx, syy, sxy, out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy):  # type: ignore[no-untyped-def]
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
    out_n = np.zeros(m, np.int64)
    out_kx = np.zeros(m)
    out_ky = np.zeros(m)
    out_mx = np.zeros(m)
    out_my = np.zeros(m)
    out_m2x = np.zeros(m)
    out_m2y = np.zeros(m)
    out_cxy = np.zeros(m)
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
        _finish_row(j, n, kx, ky, sx, sy, sxx, syy, sxy, out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy)
    return out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy


@numba.njit(cache=True, nogil=True)
def comoments_columns(x, y):  # type: ignore[no-untyped-def]
    """State of each column of the 2-D ``x`` and ``y`` (reduced elements x output
    positions): the rows are read in memory order, the sums kept per column."""
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
    for i in range(length):
        for j in range(m):
            a = np.float64(x[i, j])
            b = np.float64(y[i, j])
            if np.isnan(a) or np.isnan(b):
                continue
            dx = a - kx[j]
            dy = b - ky[j]
            n[j] += 1
            sx[j] += dx
            sy[j] += dy
            sxx[j] += dx * dx
            syy[j] += dy * dy
            sxy[j] += dx * dy
    out_n = np.zeros(m, np.int64)
    out_kx = np.zeros(m)
    out_ky = np.zeros(m)
    out_mx = np.zeros(m)
    out_my = np.zeros(m)
    out_m2x = np.zeros(m)
    out_m2y = np.zeros(m)
    out_cxy = np.zeros(m)
    for j in range(m):
        _finish_row(j, n[j], kx[j], ky[j], sx[j], sy[j], sxx[j], syy[j], sxy[j], out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy)
    return out_n, out_kx, out_ky, out_mx, out_my, out_m2x, out_m2y, out_cxy


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


@numba.njit(cache=True, nogil=True)
def weighted_columns(a, w, skip):  # type: ignore[no-untyped-def]
    """Per column of the 2-D ``a`` and ``w``: as :func:`weighted_rows`."""
    length, m = a.shape
    swa = np.zeros(m)
    sw = np.zeros(m)
    for i in range(length):
        for j in range(m):
            v = np.float64(a[i, j])
            if skip and np.isnan(v):
                continue
            wi = np.float64(w[i, j])
            swa[j] += wi * v
            sw[j] += wi
    return swa, sw
