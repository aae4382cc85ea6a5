"""numbadask.accelerate(): dask.array's reductions routed to numbadask, and put back."""

from __future__ import annotations

import threading

import dask.array as da
import dask.array.reductions
import numpy as np
import pytest

import numbadask
from numbadask.accelerate import NAMES, claims
from cases import QUERY_PLANNING

pytestmark = pytest.mark.skipif(
    QUERY_PLANNING, reason="accelerate() routes legacy Dask arrays only (accelerate.claims): under query planning every call stays dask.array's"
)

ORIGINALS = {name: getattr(da, name) for name in NAMES if hasattr(da, name)}
REDUCTIONS_MODULE = {name: getattr(dask.array.reductions, name) for name in NAMES if hasattr(dask.array.reductions, name)}


def _count(name: str) -> int:
    return numbadask.accelerate.routed().get(name, 0)


def _assert_restored() -> None:
    assert not numbadask.accelerate.installed() and not numbadask.accelerate.active()
    for name, f in ORIGINALS.items():
        assert getattr(da, name) is f, name
    for name, f in REDUCTIONS_MODULE.items():
        assert getattr(dask.array.reductions, name) is f, name


@pytest.fixture
def x() -> da.Array:
    return da.from_array(np.arange(24.0).reshape(4, 6) - 7.5, chunks=(2, 4))


def test_context_manager_routes_and_restores(x: da.Array) -> None:
    before = _count("mean")
    with numbadask.accelerate() as handle:
        assert numbadask.accelerate.active() and numbadask.accelerate.installed()
        assert da.mean is not ORIGINALS["mean"] and da.mean.__wrapped__ is ORIGINALS["mean"]
        result = da.mean(x, axis=0)
    assert _count("mean") == before + 1
    np.testing.assert_allclose(result.compute(), x.compute().mean(axis=0))
    assert "restored" in repr(handle)
    _assert_restored()


def test_call_once_and_restore(x: da.Array) -> None:
    handle = numbadask.accelerate()
    try:
        before = _count("sum")
        da.sum(x)
        assert _count("sum") == before + 1
    finally:
        handle.restore()
    handle.restore()  # twice: a no-op
    _assert_restored()
    before = _count("sum")
    da.sum(x)  # outside: dask.array's own
    assert _count("sum") == before


def test_signatures_are_dasks() -> None:
    import inspect

    with numbadask.accelerate():
        for name, f in ORIGINALS.items():
            assert inspect.signature(getattr(da, name)) == inspect.signature(f), name
        with pytest.raises(TypeError):
            da.sum(np.ones(3), bogus=1)  # dask's own error for an argument it lacks


def test_nesting_and_disable(x: da.Array) -> None:
    with numbadask.accelerate():
        with numbadask.accelerate():
            assert numbadask.accelerate.active()
        assert numbadask.accelerate.active() and numbadask.accelerate.installed()
        with numbadask.accelerate(False):
            assert not numbadask.accelerate.active()
            before = _count("max")
            x.max()
            assert _count("max") == before
        assert numbadask.accelerate.active()
    _assert_restored()


def test_restore_out_of_order() -> None:
    a, b = numbadask.accelerate(), numbadask.accelerate(False)
    a.restore()
    assert not numbadask.accelerate.active() and numbadask.accelerate.installed() is False
    b.restore()
    _assert_restored()
    c, d = numbadask.accelerate(), numbadask.accelerate()
    c.restore()
    assert numbadask.accelerate.active()
    d.restore()
    _assert_restored()


def test_other_thread_is_untouched(x: da.Array) -> None:
    inside, done = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def outside() -> None:
        inside.wait(30)
        seen["active"] = numbadask.accelerate.active()
        before = _count("var")
        seen["result"] = da.var(x).compute()
        seen["routed"] = _count("var") - before
        done.set()

    t = threading.Thread(target=outside)
    t.start()
    with numbadask.accelerate():
        inside.set()
        assert done.wait(60)
        assert numbadask.accelerate.active()
    t.join()
    assert seen["active"] is False and seen["routed"] == 0
    np.testing.assert_allclose(seen["result"], x.compute().var())
    _assert_restored()


def test_handle_restored_in_its_own_thread_only() -> None:
    handle = numbadask.accelerate()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            handle.restore()
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and numbadask.accelerate.active()
    handle.restore()
    _assert_restored()


CASES = [
    np.arange(30.0).reshape(5, 6) ** 1.5,
    np.arange(-12, 12, dtype=np.int32).reshape(4, 6),
    np.where(np.arange(24) % 5 == 0, np.nan, np.arange(24.0)).reshape(6, 4).astype(np.float32),
    np.arange(20) % 3 == 0,
]


@pytest.mark.parametrize("data", CASES, ids=["f8", "i4", "f4-nan", "bool"])
@pytest.mark.parametrize("name", sorted(ORIGINALS))
@pytest.mark.parametrize("axis", [None, 0])
def test_results_equal_dasks(data: np.ndarray, name: str, axis: int | None) -> None:
    if name == "ptp" and data.dtype == bool:
        pytest.skip("NumPy refuses ptp of bool (subtraction)")
    a = da.from_array(data, chunks=3)
    expected = ORIGINALS[name](a, axis=axis).compute()
    before = _count(name)
    with numbadask.accelerate():
        result = getattr(da, name)(a, axis=axis)
    assert _count(name) == before + 1
    got = result.compute()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6 if data.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("method", ["sum", "mean", "min", "max", "argmin", "argmax", "var", "std"])
def test_array_methods_routed(x: da.Array, method: str) -> None:
    expected = getattr(x, method)(axis=1).compute()
    before = _count(method)
    with numbadask.accelerate():
        result = getattr(x, method)(axis=1)
        np.mean(x)  # NumPy's functions on Dask arrays too (__array_function__)
    assert _count(method) == before + 1 + (method == "mean")
    np.testing.assert_allclose(result.compute(), expected)


def test_alias_in_array_function_table(x: da.Array) -> None:
    before = _count("max")
    with numbadask.accelerate():
        result = np.amax(x)
    assert _count("max") == before + 1 and float(result.compute()) == float(x.compute().max())
    _assert_restored()


def test_declined_calls_go_to_dask(x: da.Array) -> None:
    c = x.astype(np.complex128) * 1j
    out = da.zeros((), dtype=float)
    before_routed, before_declined = numbadask.accelerate.routed(), numbadask.accelerate.declined()
    with numbadask.accelerate():
        complex_sum = da.sum(c)  # numbadask has no complex kernel
        datetime_min = da.min(da.from_array(np.array(["2020-01-01", "2021-01-01"], dtype="M8[D]")))
        da.mean(x, out=out)  # out=: numbadask's if its function takes it, else dask's
    routed, declined = numbadask.accelerate.routed(), numbadask.accelerate.declined()
    for name in ("sum", "min"):
        assert routed.get(name, 0) == before_routed.get(name, 0)
        assert declined[name] == before_declined.get(name, 0) + 1
    assert complex(complex_sum.compute()) == complex(c.compute().sum())
    assert datetime_min.compute() == np.datetime64("2020-01-01")
    np.testing.assert_allclose(out.compute(), x.compute().mean())


def test_claims() -> None:
    x = da.ones((4, 4), chunks=2)
    assert claims("sum", x, {}) and claims("var", x, {"ddof": 1, "dtype": "f4"})
    assert not claims("sum", np.ones(3), {})  # not a Dask array: dask.array's function
    assert not claims("sum", x.astype("M8[s]"), {})
    from numbadask.registry import REGISTRY

    # An integer dtype= for var: numbadask's while its registry does not refuse it.
    assert claims("var", x, {"dtype": "i8"}) is (REGISTRY["var"].integer_dtype != "refuse")
    assert not claims("nanmean", x, {"dtype": "i8"})
    assert not claims("sum", x.map_blocks(np.ma.masked_array), {})  # chunk type: a subclass
    unknown = x[x > 0]
    assert not claims("argmax", unknown, {}) and claims("sum", unknown, {})
    assert not claims("nanmin", unknown, {})  # dask.array's error for unknown sizes


@pytest.mark.parametrize("name", ["nanmean", "nanmin", "nanmax", "nanvar", "var", "nanstd"])
def test_routed_calls_give_dasks_warnings(name: str) -> None:
    """dask.array gives no empty-slice warnings (nanvar's own division aside); routed
    calls none.  numbadask's own functions warn as NumPy does."""
    import warnings

    x = da.from_array(np.full((4, 6), np.nan), chunks=(2, 3))
    kwargs = {"ddof": 9} if "var" in name or "std" in name else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with numbadask.accelerate():
            routed = getattr(da, name)(x, axis=0, **kwargs).compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's nanvar warns of its own division
        dasks = getattr(da, name)(x, axis=0, **kwargs).compute()
    np.testing.assert_array_equal(routed, dasks)
    with pytest.warns(RuntimeWarning):
        getattr(numbadask, name)(x, axis=0, **kwargs).compute()


def test_xarray_dask_backed_mean_routed() -> None:
    xr = pytest.importorskip("xarray")
    data = da.from_array(np.arange(24.0).reshape(4, 6), chunks=(2, 3))
    arr = xr.DataArray(data, dims=("y", "x"))
    expected = arr.mean("x").compute()
    counts = numbadask.accelerate.routed()
    with numbadask.accelerate():
        mean = arr.mean("x")  # xarray: skipna for floats, so np.nanmean -> dask.array.nanmean
        total = arr.sum(skipna=False)
        std = arr.std("y", skipna=False)
    after = numbadask.accelerate.routed()
    assert after.get("nanmean", 0) == counts.get("nanmean", 0) + 1
    assert after.get("sum", 0) == counts.get("sum", 0) + 1
    assert after.get("std", 0) == counts.get("std", 0) + 1
    xr.testing.assert_allclose(mean.compute(), expected)
    assert float(total) == float(np.arange(24.0).sum())
    np.testing.assert_allclose(std.values, np.arange(24.0).reshape(4, 6).std(axis=0))
    _assert_restored()
