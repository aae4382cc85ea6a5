"""The NaN-skipping min/max intrinsics against NumPy's nanmin/nanmax, edge values included."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from numbadask.cpu.extremes import minmax_limits
from numbadask.cpu.llvm_minmax import skip_nan_max, skip_nan_min


@numba.njit
def _min_max(values, lo, hi):
    for v in values:
        lo = skip_nan_min(lo, v)
        hi = skip_nan_max(hi, v)
    return lo, hi


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int64, np.uint64])
def test_matches_nanmin_nanmax(dtype):
    rng = np.random.default_rng(0)
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype)
    for trial in range(20):
        values = rng.integers(-100, 100, 50).astype(dtype)
        values[rng.integers(0, 50, 3)] = info.max if trial % 2 else info.min
        if np.dtype(dtype).kind == "f":
            values[rng.random(50) < 0.3] = np.nan
            values[rng.integers(0, 50)] = np.inf if trial % 3 else -np.inf
        got = _min_max(values, *minmax_limits(values.dtype))
        assert got == (np.nanmin(values), np.nanmax(values))


def test_all_nan_keeps_the_starting_limits():
    values = np.full(9, np.nan)
    assert _min_max(values, np.inf, -np.inf) == (np.inf, -np.inf)
