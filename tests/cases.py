"""Test data shared by the test modules: dtypes, arrays, views and NumPy references."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest

from numbadask.reductions.registry import REGISTRY

#: Dask's array query planning (``array.query-planning``, read when dask.array is first
#: imported; ``ci/test_extended.sh`` runs the API tests with it on as well as off).
QUERY_PLANNING = bool(getattr(da, "array_expr_enabled", lambda: False)())

#: A test of what dask.array's expression-backed Arrays lack in dask 2026.8 (var, std,
#: arg-reductions, ptp, ``out=``, boolean indexing into unknown chunk sizes,
#: ``npartitions``, HighLevelGraph layers): numbadask hands those calls to dask.array,
#: which raises its own NotImplementedError.  Skipped under query planning.
legacy_dask_only = pytest.mark.skipif(
    QUERY_PLANNING, reason="dask.array's expression Arrays lack what this test uses (query planning)"
)

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
ALL_DTYPES = [np.bool_, *INT_DTYPES, *FLOAT_DTYPES]

#: Relative tolerance of a mean against NumPy's, by result dtype: NumPy accumulates
#: float16/float32 in float32, we in float64, so the last bits may differ.
RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-10}


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Random values that fit ``dtype`` (never all zeros)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -(10**6)), min(info.max, 10**6)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def array_module(a):
    """``cupy`` for a CuPy array, else ``numpy``."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_numpy(a):
    """A NumPy copy of a NumPy or CuPy array (or scalar)."""
    return a.get() if array_module(a) is not np else np.asarray(a)


def views(a):
    """Strided, reversed, transposed, Fortran and broadcast views of a 3-d array
    (NumPy or CuPy: the views are made with the array's own module)."""
    xp = array_module(a)
    return {
        "c": a,
        "reversed-strided": a[::-1, :, ::2],
        "transposed": a.transpose(2, 0, 1),
        "sliced": a[:, 1:, ::-1],
        "fortran": xp.asfortranarray(a),
        "broadcast": xp.broadcast_to(a[:, :1], a.shape),
    }


def in_float64(numpy_func):
    """``numpy_func`` as numbadask defines it: NumPy's result dtype and shape, float
    input accumulated in float64 (NumPy accumulates float16/float32 in float32, whose
    error grows with the length of the slice), empty-slice warnings silenced."""

    def reference(a: np.ndarray, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result_dtype = np.asarray(numpy_func(np.ones((1,) * a.ndim, a.dtype), **kwargs)).dtype
            wide = a.astype(np.float64) if a.dtype.kind == "f" else a
            return np.asarray(numpy_func(wide, **kwargs)).astype(result_dtype)[()]

    return reference


def numpy_count(a: np.ndarray, axis=None, keepdims=False):
    """Non-NaN values along ``axis`` (what numbadask.count computes)."""
    return np.asarray(np.sum(a == a, axis=axis, keepdims=keepdims, dtype=np.int64))[()]


numpy_mean = in_float64(np.mean)


def _first_best_non_nan(row: np.ndarray, want_max: bool) -> int:
    valid = ~np.isnan(row)
    best = row[valid].max() if want_max else row[valid].min()
    return int(np.flatnonzero(valid & (row == best))[0])


def nanarg_reference(want_max: bool):
    """NumPy's nanargmin/nanargmax (errors, dtype, shape), with the index always a
    non-NaN value's: NumPy fills NaN with the infinity it is looking for, so where the
    extreme is that infinity it may return a NaN's index (numbadask never does)."""
    numpy_func = in_float64(np.nanargmax if want_max else np.nanargmin)

    def reference(a: np.ndarray, axis=None, keepdims=False):
        want = np.asarray(numpy_func(a, axis=axis, keepdims=keepdims))  # NumPy's errors
        if a.dtype.kind != "f" or want.size == 0:
            return want[()]
        wide = a.astype(np.float64)
        if axis is None:
            return np.asarray(_first_best_non_nan(wide.ravel(), want_max), dtype=want.dtype).reshape(want.shape)[()]
        fixed = np.apply_along_axis(_first_best_non_nan, axis, wide, want_max)
        return (np.expand_dims(fixed, axis) if keepdims else fixed).astype(want.dtype)[()]

    return reference


#: Where numbadask's definition is not NumPy's function as it is (with float input
#: accumulated in float64): count has no NumPy function, and nanarg* never return a
#: NaN's index.
_OWN_REFERENCES = {
    "count": numpy_count,
    "nanargmin": nanarg_reference(want_max=False),
    "nanargmax": nanarg_reference(want_max=True),
}

#: The comparison table: each numbadask function and its NumPy reference, read from
#: the registry (the NumPy function each reduction declares it matches).
REFERENCES = {name: _OWN_REFERENCES.get(name) or in_float64(r.numpy) for name, r in REGISTRY.items()}

#: What each function's dask.array counterpart is called, for dtype/shape checks.
DASK_NAMES = {name: name for name in REFERENCES} | {"count": None, "ptp": None}  # da.ptp: no keepdims


def assert_matches(got, expected) -> None:
    """Same dtype, shape and values (NaN where NumPy has NaN), within the dtype's rtol."""
    got = to_numpy(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    rtol = RTOL.get(expected.dtype, 0)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)
