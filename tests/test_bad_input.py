"""The bad-input matrix: every case gives NumPy's answer or a clear exception naming the
rule and the value, on NumPy chunks and (``device="gpu"``) on the CUDA kernels."""

from __future__ import annotations

import time
import warnings

import dask.array as da
import numpy as np
import pytest

import numbadask
from cases import QUERY_PLANNING

# np.exceptions is NumPy >= 1.25; ci/test_floors.sh runs these tests at the NumPy floor.
AxisError = getattr(np, "exceptions", np).AxisError

DEVICES = [
    pytest.param("auto", id="auto"),
    pytest.param("gpu", id="gpu", marks=pytest.mark.cuda_kernels),
]

A = np.arange(12.0).reshape(3, 4)

# (case, call with device, exception type, words the message must hold).  Input without a
# kernel (complex, datetime, object, subclass chunks) is answered by dask.array: tests/test_handoff.py.
REFUSED = [
    ("axis out of range", lambda d: numbadask.sum(A, axis=2, device=d), AxisError, "axis 2 is out of bounds"),
    ("axis repeated", lambda d: numbadask.mean(A, axis=(1, -1), device=d), ValueError, "repeated axis"),
    ("axis a float", lambda d: numbadask.sum(A, axis=1.0, device=d), TypeError, "got 1.0"),
    ("axis a string", lambda d: numbadask.max(A, axis="0", device=d), TypeError, "got '0'"),
    ("argmin axis a tuple", lambda d: numbadask.argmin(A, axis=(0, 1), device=d), TypeError, "got (0, 1)"),
    ("ddof not finite", lambda d: numbadask.var(A, ddof=float("inf"), device=d), ValueError, "got inf"),
    ("ddof a string", lambda d: numbadask.std(A, ddof="1", device=d), TypeError, "got '1'"),
    # dtypes without a kernel go to dask.array (tests/test_handoff.py): its errors are NumPy's
    # NumPy's own error: "... not compatible with add.reduce. Resolved (dtype('<U1'), ..." (NumPy 2),
    # "ufunc 'add' did not contain a loop ... (dtype('<U1'), ..." (NumPy 1).
    ("string dtype", lambda d: numbadask.sum(np.array(["a", "b"]), device=d), TypeError, "dtype('<U1')"),
    ("dtype= a string type", lambda d: numbadask.sum(A, dtype="U3", device=d), TypeError, "dtype"),
    ("min of nothing", lambda d: numbadask.min(np.zeros((0, 3)), device=d), ValueError, "zero-size array"),
    ("argmax of nothing", lambda d: numbadask.argmax(np.zeros(0), device=d), ValueError, "empty sequence"),
    ("nanargmin of all-NaN", lambda d: numbadask.nanargmin(np.full(4, np.nan), device=d), ValueError, "All-NaN slice"),
    ("argmin over unknown chunks", lambda d: numbadask.argmin(_unknown_chunks(), device=d), ValueError, "unknown chunksizes"),
    ("unknown device", lambda d: numbadask.sum(A, device="tpu"), ValueError, "got 'tpu'"),
    ("ragged nested list", lambda d: numbadask.sum([[1, 2], [3]], device=d), ValueError, "inhomogeneous"),
]


def _unknown_chunks() -> da.Array:
    if QUERY_PLANNING:
        pytest.skip("dask.array's expression Arrays have no boolean indexing (query planning)")
    x = da.from_array(np.arange(10.0), chunks=3)
    return x[x > 4]  # chunk sizes are NaN until computed


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("case", "call", "error", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_a_clear_error(case, call, error, words, device):
    with pytest.raises(error) as info:
        result = call(device)
        result.compute()
    assert words in str(info.value), f"{case}: {info.value}"


def _memmap(tmp_path) -> np.ndarray:
    np.save(tmp_path / "a.npy", np.arange(24.0).reshape(4, 6))
    return np.load(tmp_path / "a.npy", mmap_mode="r")


# (case, input maker taking tmp_path, function name, keyword arguments)
ANSWERED = [
    ("0-d sum", lambda p: np.float64(3.0), "sum", {}),
    ("0-d var", lambda p: np.float32(3.0), "var", {}),
    ("0-d argmin", lambda p: np.int16(-4), "argmin", {}),
    ("zero-size array mean", lambda p: np.zeros((0, 3)), "mean", {"axis": 0}),
    ("zero-size array sum", lambda p: np.zeros((2, 0)), "sum", {}),
    ("zero-size chunks", lambda p: da.from_array(np.arange(5.0), chunks=((0, 3, 0, 2),)), "nanmean", {}),
    ("single element var ddof=1", lambda p: np.array([5.0]), "var", {"ddof": 1}),
    ("single element max", lambda p: np.array([[7]], dtype=np.uint8), "max", {"axis": 1}),
    ("unknown chunk sizes sum", lambda p: _unknown_chunks(), "sum", {}),
    ("unknown chunk sizes std", lambda p: _unknown_chunks(), "std", {}),
    ("non-contiguous chunks", lambda p: da.from_array(np.arange(60.0).reshape(6, 10)[::2, ::3], chunks=2), "var", {"axis": 1}),
    ("Fortran-ordered", lambda p: np.asfortranarray(np.arange(12.0).reshape(3, 4)), "sum", {"axis": 1}),
    ("big-endian float", lambda p: np.arange(9.0).astype(">f8"), "var", {}),
    ("big-endian int", lambda p: np.arange(9).astype(">i4"), "sum", {}),
    ("big-endian argmax", lambda p: np.array([3.0, 9.0, 1.0]).astype(">f4"), "argmax", {}),
    ("read-only memmap", lambda p: da.from_array(_memmap(p), chunks=(3, 4)), "mean", {"axis": 0}),
    ("read-only memmap min", lambda p: da.from_array(_memmap(p), chunks=(3, 4)), "min", {"axis": 1}),
    ("dtype= narrower int wraps", lambda p: np.array([100, 100]), "sum", {"dtype": np.int8}),
    ("dtype= int on float input", lambda p: np.array([1.7, 2.6]), "sum", {"dtype": np.int64}),
    ("nansum dtype= int on NaN", lambda p: da.from_array(np.array([1.5, np.nan, 2.5, np.nan]), chunks=2), "nansum", {"dtype": np.int64}),
    ("list input", lambda p: [1, 2, 3], "mean", {}),
    ("var dtype= an integer", lambda p: np.array([0.5, 1.7, 2.2, 3.9, -1.3, 4.0]), "var", {"dtype": np.int8}),
    ("std dtype= an integer", lambda p: np.array([0.5, 1.7, 2.2, 3.9, -1.3, 4.0]), "std", {"dtype": np.int64}),
    ("var dtype= int on int input", lambda p: np.arange(7), "var", {"dtype": np.int64, "ddof": 1}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("case", "make", "name", "kwargs"), ANSWERED, ids=[r[0] for r in ANSWERED])
def test_answered_like_numpy(case, make, name, kwargs, device, tmp_path):
    data = make(tmp_path)
    reference = np.asarray(data.compute() if isinstance(data, da.Array) else data)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = getattr(numbadask, name)(data, device=device, **kwargs).compute()
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        want = getattr(np, name)(reference, **kwargs)
    assert got.dtype == np.asarray(want).dtype, case
    np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=case)
    assert {w.category for w in ours} == {w.category for w in theirs}, case


@pytest.mark.slow
def test_a_hundred_thousand_chunks():
    """Graph size stays linear and the run finishes (measured: ~25 s here, as
    dask.array's own sum over the same array)."""
    n = 100_000
    x = da.from_array(np.arange(float(n)), chunks=1)
    result = numbadask.sum(x)
    tasks = len(result.__dask_graph__())
    start = time.perf_counter()
    assert float(result.compute()) == n * (n - 1) / 2
    seconds = time.perf_counter() - start
    assert tasks < 2.05 * n, tasks  # data + chunk tasks + a small tree
    print(f"100,000 chunks: {tasks} graph entries, computed in {seconds:.1f} s")
