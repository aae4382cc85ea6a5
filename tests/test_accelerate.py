"""numbadask.accelerate(): dask.array's reductions routed to numbadask, and put back.

Runs as it is with Dask's query planning off and on (``DASK_ARRAY__QUERY_PLANNING=True``,
``ci/test_extended.sh``).  Where dask.array itself refuses a call (under query planning
dask 2026.8 has no var, std, ptp or arg-reductions), the reference is numbadask's
definition (``cases.REFERENCES``: NumPy's answer), which a routed call gives and the
README lists among the differences.  NumPy's functions of an expression Array (and so
xarray's reductions) are dask's NotImplementedError there, routed or not.
"""

from __future__ import annotations

import functools
import inspect
import threading

import dask.array as da
import dask.array.core
import dask.array.reductions
import dask.array.routines
import numpy as np
import pytest

import numbadask
from numbadask.integrations.accelerate import NAMES, claims
from cases import QUERY_PLANNING, REFERENCES

ORIGINALS = {name: getattr(da, name) for name in NAMES if hasattr(da, name)}
MODULES = {
    module: {name: getattr(module, name) for name in NAMES if hasattr(module, name)}
    for module in (dask.array.reductions, dask.array.routines)
}
HANDLED = dict(dask.array.core._HANDLED_FUNCTIONS)
ARRAY_CLASS = dict(vars(da.Array))  # the methods and __array_function__ of the Array class in use


def _outcome(make) -> tuple:
    """``("value", computed result)`` or ``("error", exception type)`` of ``make()``."""
    try:
        return "value", np.asarray(make().compute())
    except Exception as e:  # noqa: BLE001 - the outcome to compare
        return "error", type(e)


def _assert_same_outcome(got: tuple, want: tuple) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "value":
        assert got[1].dtype == want[1].dtype
        np.testing.assert_array_equal(got[1], want[1])
    else:
        assert got[1] is want[1]


@functools.lru_cache(maxsize=None)
def dask_refuses(name: str) -> bool:
    """Whether dask.array's own ``name`` fails on a plain float Array (under query
    planning: var, std, ptp and the arg-reductions)."""
    return _outcome(lambda: ORIGINALS[name](da.ones((4, 4), chunks=2), axis=0))[0] == "error"


def _count(name: str) -> int:
    return numbadask.accelerate.routed().get(name, 0)


def _assert_restored() -> None:
    assert not numbadask.accelerate.installed() and not numbadask.accelerate.active()
    for name, f in ORIGINALS.items():
        assert getattr(da, name) is f, name
    for module, functions in MODULES.items():
        for name, f in functions.items():
            assert getattr(module, name) is f, (module.__name__, name)
    assert dask.array.core._HANDLED_FUNCTIONS.keys() == HANDLED.keys()
    assert all(dask.array.core._HANDLED_FUNCTIONS[k] is f for k, f in HANDLED.items())
    assert vars(da.Array).keys() == ARRAY_CLASS.keys()
    assert all(vars(da.Array)[k] is v for k, v in ARRAY_CLASS.items()), "the Array class is not as it was"


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
    with numbadask.accelerate():
        for name, f in ORIGINALS.items():
            assert inspect.signature(getattr(da, name)) == inspect.signature(f), name
        for module, functions in MODULES.items():
            for name, f in functions.items():
                assert inspect.signature(getattr(module, name)) == inspect.signature(f), name
        with pytest.raises(TypeError):
            da.sum(np.ones(3), bogus=1)  # dask's own error for an argument it lacks
    _assert_restored()


def test_every_namespace_replaced_while_installed() -> None:
    """Each function of NAMES in dask.array, dask.array.reductions, dask.array.routines
    and the alias table is a router inside a block (dask.array's own inside it); the
    Array class is left as it is (no method added, none replaced)."""
    with numbadask.accelerate():
        for name, f in ORIGINALS.items():
            assert getattr(da, name).__numbadask_original__ is f, name
        for module, functions in MODULES.items():
            for name, f in functions.items():
                assert getattr(module, name).__numbadask_original__ is f, (module.__name__, name)
        for k, f in HANDLED.items():
            if any(f is g for functions in MODULES.values() for g in functions.values()):
                assert dask.array.core._HANDLED_FUNCTIONS[k].__numbadask_original__ is f, k
        assert vars(da.Array).keys() == ARRAY_CLASS.keys()
        assert all(vars(da.Array)[k] is v for k, v in ARRAY_CLASS.items())
    _assert_restored()


def test_routers_made_once() -> None:
    """An outermost block installs the routers made by the first one (entering a block
    costs tens of microseconds, not the ~2 ms of reading every signature anew)."""
    with numbadask.accelerate():
        first = {name: getattr(da, name) for name in ORIGINALS}
    with numbadask.accelerate():
        assert all(getattr(da, name) is f for name, f in first.items())
    _assert_restored()


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
        seen["outcome"] = _outcome(lambda: da.var(x))  # under query planning: dask's error
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
    _assert_same_outcome(seen["outcome"], _outcome(lambda: da.var(x)))
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
    if dask_refuses(name):  # under query planning: dask's error outside, NumPy's answer inside
        assert _outcome(lambda: ORIGINALS[name](a, axis=axis))[0] == "error"
        expected = np.asarray(REFERENCES[name](data, axis=axis))
    else:
        expected = ORIGINALS[name](a, axis=axis).compute()
    before = _count(name)
    with numbadask.accelerate():
        result = getattr(da, name)(a, axis=axis)
    assert _count(name) == before + 1
    assert type(result) is type(a)
    got = result.compute()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6 if data.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("method", ["sum", "mean", "min", "max", "argmin", "argmax", "var", "std"])
def test_array_methods_routed(x: da.Array, method: str) -> None:
    if not hasattr(type(x), method):  # the expression Array has no argmin/argmax: none added
        assert QUERY_PLANNING
        with numbadask.accelerate():
            assert not hasattr(x, method)
        return
    expected = REFERENCES[method](x.compute(), axis=1)
    before = _count(method)
    with numbadask.accelerate():
        result = getattr(x, method)(axis=1)
    assert _count(method) == before + 1
    assert type(result) is type(x)
    np.testing.assert_allclose(result.compute(), expected)


def test_declined_calls_go_to_dask(x: da.Array) -> None:
    c = x.astype(np.complex128) * 1j
    dates = da.from_array(np.array(["2020-01-01", "2021-01-01"], dtype="M8[D]"))
    declined = {
        "sum": lambda: da.sum(c),  # numbadask has no complex kernel
        "min": lambda: da.min(dates),
        "max": lambda: np.max(x, where=x > 0),  # an argument numbadask lacks
    }
    dasks = {name: _outcome(make) for name, make in declined.items()}
    for name, make in declined.items():
        before_routed, before_declined = _count(name), numbadask.accelerate.declined().get(name, 0)
        with numbadask.accelerate():
            got = _outcome(make)
        assert _count(name) == before_routed
        assert numbadask.accelerate.declined().get(name, 0) == before_declined + (name != "max")  # a bind failure: not counted
        _assert_same_outcome(got, dasks[name])
    if not QUERY_PLANNING:
        assert dasks["sum"][1] == (x.compute() * 1j).sum() and dasks["min"][1] == np.datetime64("2020-01-01")
    _assert_restored()


def test_out(x: da.Array) -> None:
    """out=: numbadask's (dask's handle_out) on legacy Arrays; under query planning,
    whose Arrays cannot be overwritten, dask.array's own call."""
    out = da.zeros((), dtype=float)
    want_out = _outcome(lambda: ORIGINALS["mean"](x, out=da.zeros((), dtype=float)))
    before, before_declined = _count("mean"), numbadask.accelerate.declined().get("mean", 0)
    with numbadask.accelerate():
        result = da.mean(x, out=out)
    assert _count("mean") == before + (not QUERY_PLANNING)
    assert numbadask.accelerate.declined().get("mean", 0) == before_declined + QUERY_PLANNING
    np.testing.assert_allclose(result.compute(), x.compute().mean())
    if not QUERY_PLANNING:
        assert result is out
        np.testing.assert_allclose(out.compute(), x.compute().mean())
    else:
        assert want_out[0] == "value"
        np.testing.assert_allclose(want_out[1], x.compute().mean())


def test_claims() -> None:
    x = da.ones((4, 4), chunks=2)
    assert claims("sum", x, {}) and claims("var", x, {"ddof": 1, "dtype": "f4"})
    assert not claims("sum", np.ones(3), {})  # not a Dask array: dask.array's function
    assert not claims("sum", x.astype("M8[s]"), {})
    from numbadask.reductions.registry import REGISTRY

    # An integer dtype= for var: numbadask's while its registry does not refuse it.
    assert claims("var", x, {"dtype": "i8"}) is (REGISTRY["var"].integer_dtype != "refuse")
    assert not claims("nanmean", x, {"dtype": "i8"})
    assert not claims("sum", x.map_blocks(np.ma.masked_array), {})  # chunk type: a subclass
    assert claims("mean", x, {"out": da.zeros(())}) is not QUERY_PLANNING
    if not QUERY_PLANNING:  # dask's expression Arrays have no boolean indexing (dask 2026.8)
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
        if dask_refuses(name):  # query planning: NumPy's answer
            dasks = REFERENCES[name](x.compute(), axis=0, **kwargs)
        else:
            dasks = getattr(da, name)(x, axis=0, **kwargs).compute()
    np.testing.assert_array_equal(routed, dasks)
    with pytest.warns(RuntimeWarning):
        getattr(numbadask, name)(x, axis=0, **kwargs).compute()


def test_numpy_functions_on_dask_arrays(x: da.Array) -> None:
    """np.<reduction>(x) inside a block: numbadask's answer on legacy Arrays (dask's
    ``__array_function__`` looks the function up in dask.array, or in its alias table:
    np.amax); under query planning dask's NotImplementedError, as outside."""
    values = x.compute()
    calls = {
        "mean": (lambda: np.mean(x, axis=0), values.mean(axis=0)),
        "max": (lambda: np.amax(x, axis=1, keepdims=True), values.max(axis=1, keepdims=True)),
        "std": (lambda: np.std(x, ddof=1), values.std(ddof=1)),
        "nanargmin": (lambda: np.nanargmin(x, axis=1), np.nanargmin(values, axis=1)),
        "ptp": (lambda: np.ptp(x, axis=0), np.ptp(values, axis=0)),
    }
    for name, (make, want) in calls.items():
        outside = _outcome(make)
        before = _count(name)
        with numbadask.accelerate():
            inside = _outcome(make)
        if QUERY_PLANNING:
            assert _count(name) == before, name
            assert inside == outside == ("error", NotImplementedError), name
        else:
            assert _count(name) == before + 1, name
            np.testing.assert_allclose(inside[1], want)
            np.testing.assert_allclose(outside[1], want)
    _assert_restored()


def _xarray_outcome(make) -> tuple:
    try:
        return "value", make().compute()
    except Exception as e:  # noqa: BLE001 - the outcome to compare
        return "error", type(e)


def test_xarray_dask_backed_mean_routed() -> None:
    """xarray reaches dask.array through NumPy's functions (``np.nanmean(x)``), which
    the legacy Array's ``__array_function__`` looks up in dask.array.  Under query
    planning xarray's reductions of Dask-backed data raise dask's NotImplementedError,
    inside a block as outside (and xarray would turn their results, expression Arrays
    without ``__array__``, into object arrays)."""
    xr = pytest.importorskip("xarray")
    values = np.arange(24.0).reshape(4, 6)
    data = da.from_array(values, chunks=(2, 3))
    arr = xr.DataArray(data, dims=("y", "x"), attrs={"units": "m"})
    calls = {
        "nanmean": lambda: arr.mean("x"),  # xarray: skipna for floats, so np.nanmean -> dask.array.nanmean
        "sum": lambda: arr.sum(skipna=False),
        "std": lambda: arr.std("y", skipna=False),
        "nanmax": lambda: arr.max(),
    }
    counts = numbadask.accelerate.routed()
    with numbadask.accelerate():
        lazy = {name: _xarray_outcome(lambda: make().data) for name, make in calls.items()}
        got = {name: _xarray_outcome(make) for name, make in calls.items()}
    after = numbadask.accelerate.routed()
    if QUERY_PLANNING:
        for name, make in calls.items():
            assert after.get(name, 0) == counts.get(name, 0), name
            assert got[name] == _xarray_outcome(make) == ("error", NotImplementedError), name
        _assert_restored()
        return
    for name in calls:
        assert after.get(name, 0) == counts.get(name, 0) + 2, name  # once lazily, once computed
        assert lazy[name][0] == "value"
    xr.testing.assert_allclose(got["nanmean"][1], xr.DataArray(values.mean(axis=1), dims=("y",)))
    assert float(got["sum"][1]) == float(values.sum()) and float(got["nanmax"][1]) == 23.0
    np.testing.assert_allclose(got["std"][1].values, values.std(axis=0))
    _assert_restored()


def test_xarray_dataset_reductions_routed() -> None:
    xr = pytest.importorskip("xarray")
    rng = np.random.default_rng(1)
    values = {"t": rng.standard_normal((6, 8)), "q": rng.standard_normal((6, 8)).astype(np.float32)}
    ds = xr.Dataset({k: (("y", "x"), da.from_array(v, chunks=(3, 4))) for k, v in values.items()})
    counts = numbadask.accelerate.routed()
    with numbadask.accelerate():
        means, mins = _xarray_outcome(lambda: ds.mean("y")), _xarray_outcome(lambda: ds.min())
    after = numbadask.accelerate.routed()
    if QUERY_PLANNING:
        assert means == mins == ("error", NotImplementedError)
        assert after == counts
        return
    assert after.get("nanmean", 0) == counts.get("nanmean", 0) + 2
    assert after.get("nanmin", 0) == counts.get("nanmin", 0) + 2
    for k, v in values.items():
        np.testing.assert_allclose(means[1][k].values, v.mean(axis=0), rtol=1e-6)
        assert float(mins[1][k]) == float(v.min())
    _assert_restored()
