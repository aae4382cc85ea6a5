"""Test data shared by the test modules: dtypes, arrays, views and NumPy references."""

from __future__ import annotations

import warnings

import numpy as np

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
ALL_DTYPES = [np.bool_, *INT_DTYPES, *FLOAT_DTYPES]

#: Relative tolerance of a mean against NumPy's, by result dtype: NumPy accumulates
#: float16/float32 in float32, we in float64, so the last bits may differ.
RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}


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


def numpy_mean(a: np.ndarray, **kwargs):
    """NumPy's mean as numbadask defines it: NumPy's result dtype and shape, values
    accumulated in float64 (NumPy accumulates float16/float32 in float32, whose error
    grows with the length of the slice), empty-slice warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result_dtype = np.asarray(np.mean(a[..., :0] if a.ndim else a, **kwargs)).dtype
        return np.asarray(np.mean(a, dtype=np.float64, **kwargs)).astype(result_dtype)[()]


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
