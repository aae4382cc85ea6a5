"""numbadask.groupby_reduce against a per-group NumPy reduction, against flox, and under
xarray through numbadask.accelerate().

The reference (:func:`per_group`) is the NumPy function of the same name applied to
each group's values, in float64 (the tests' one table, ``tests/cases.py``), with
flox's result dtype and fill rules; flox, where installed, is the contract for the
labels, dtypes and fills.
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbadask
from numbadask.engine import grouped_graph
from numbadask.reductions.groupby import FUNCS, result_dtype
from tests.cases import QUERY_PLANNING, REFERENCES

#: flox's dask path needs dask.array's legacy Arrays (its unify_chunks, blockwise), and
#: so does xarray's groupby of Dask-backed data, with or without numbadask.
needs_legacy_flox = pytest.mark.skipif(QUERY_PLANNING, reason="flox does not take query planning's Arrays")

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_]
DDOF = {"var": 1, "std": 1, "nanvar": 1, "nanstd": 1}


def per_group(a: np.ndarray, codes: np.ndarray, ngroups: int, func: str, ddof: int = 0) -> np.ndarray:
    """NumPy's ``func`` of each group's values along the last axis (NaN where a group
    has none; count 0, sum 0), in flox's result dtype."""
    out = np.full(a.shape[:-1] + (ngroups,), np.nan)
    kwargs = {"ddof": ddof} if func in DDOF else {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for g in range(ngroups):
            values = a[..., codes == g]
            if values.shape[-1] == 0:
                out[..., g] = 0 if func in ("count", "sum", "nansum") else np.nan
            else:
                out[..., g] = REFERENCES[func](values, axis=-1, **kwargs)
    dtype = result_dtype(func, a.dtype, None, None)
    if np.isnan(out).any() and dtype.kind != "f":
        dtype = np.dtype(np.float32 if dtype.itemsize <= 2 else np.float64)  # flox's maybe_promote
    return out.astype(dtype)


def assert_close(got: np.ndarray, expected: np.ndarray, dtype: np.dtype) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, got.dtype, expected.shape, expected.dtype)
    rtol = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-6}.get(np.dtype(got.dtype), 1e-10)
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=rtol * 1e-3, equal_nan=True)


def data(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 100, shape).astype(dtype)
    a = (rng.normal(size=shape) * 10 + 3).astype(dtype)
    a[rng.random(shape) < 0.1] = np.nan
    return a


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_func_and_dtype_against_numpy(func, dtype, rng):
    a = data(rng, (3, 4, 40), dtype)
    labels = rng.integers(-1, 6, 40)  # -1: no group; group 5 may be empty
    labels[:3] = [0, 5, 5]
    ddof = DDOF.get(func, 0)
    kwargs = {"finalize_kwargs": {"ddof": ddof}} if ddof else {}
    result, groups = numbadask.groupby_reduce(da.from_array(a, chunks=(2, 3, 7)), labels, func=func, expected_groups=np.arange(6), **kwargs)
    assert groups.tolist() == list(range(6))
    assert_close(result.compute(), per_group(a, labels, 6, func, ddof), a.dtype)


@settings(deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 30)),
    chunk=st.tuples(st.integers(1, 3), st.integers(1, 12)),
    ngroups=st.integers(1, 8),
    func=st.sampled_from(FUNCS),
    dtype=st.sampled_from(DTYPES),
    sorted_labels=st.booleans(),
    method=st.sampled_from([None, "map-reduce", "cohorts", "gather"]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_against_numpy(shape, chunk, ngroups, func, dtype, sorted_labels, method, seed):
    rng = np.random.default_rng(seed)
    a = data(rng, shape, dtype)
    labels = rng.integers(-1, ngroups, shape[-1])
    if sorted_labels:
        labels.sort()
    result, _ = numbadask.groupby_reduce(da.from_array(a, chunks=chunk), labels, func=func, expected_groups=np.arange(ngroups), method=method)
    assert_close(result.compute(), per_group(a, labels, ngroups, func), a.dtype)


def test_every_method_gives_the_same_bits(rng):
    """The states merge in chunk order whatever the method: same bits, on every
    scheduler."""
    a = rng.normal(size=(5, 300)).astype(np.float32)
    labels = np.repeat(np.arange(30), 10)
    x = da.from_array(a, chunks=(2, 40))
    results = []
    for method in ("map-reduce", "cohorts", "gather", None):
        for scheduler in ("sync", "threads"):
            results.append(numbadask.groupby_reduce(x, labels, func="std", method=method)[0].compute(scheduler=scheduler))
    assert all(np.array_equal(r, results[0]) for r in results)
    blockwise = numbadask.groupby_reduce(da.from_array(a, chunks=(2, 50)), labels, func="std", method="blockwise")[0]
    np.testing.assert_allclose(blockwise.compute(), results[0], rtol=2e-6)


def test_float32_accumulates_in_float64(rng):
    """Month means of float32 data: as exact as float64 sums rounded once."""
    a = (rng.random((2, 3000)) + 1e4).astype(np.float32)
    labels = np.repeat(np.arange(3), 1000)
    got = numbadask.groupby_reduce(da.from_array(a, chunks=(1, 700)), labels, func="mean")[0].compute()
    exact = np.stack([a[:, labels == g].astype(np.float64).mean(axis=1) for g in range(3)], axis=-1).astype(np.float32)
    np.testing.assert_array_equal(got, exact)


def test_methods_and_slabs_cut_the_groups_as_documented(monkeypatch):
    present = {(0,): np.array([0, 1]), (1,): np.array([2, 3])}
    assert grouped_graph.cohorts(None, present, 4, 10)[0] == "blockwise"
    monkeypatch.setattr(grouped_graph, "STATE_BYTES", 8 * 10 * 3)
    method, parts = grouped_graph.cohorts("map-reduce", present, 7, 10)
    assert method == "map-reduce" and [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_chunk_state_holds_only_its_groups(rng):
    """A chunk's state has one entry per group present in it, not one per group (flox's
    reindex blow-up, flox #346)."""
    from numbadask.engine import grouped
    from numbadask.reductions.registry import REGISTRY

    a = rng.normal(size=(4, 50))
    labels = np.arange(50) // 5  # 10 groups, 2 per chunk of 10
    table = grouped.run_table(labels[10:20])
    state = grouped.grouped_chunk(a[:, 10:20], table=table, reductions=(REGISTRY["mean"],), grouped_axes=1, device="cpu")
    assert state.groups.tolist() == [2, 3] and len(state.states[0]) == 2


def test_several_label_arrays_and_labels_over_several_axes(rng):
    a = rng.normal(size=(2, 6, 8))
    by2d = rng.integers(0, 4, (6, 8))
    result, groups = numbadask.groupby_reduce(da.from_array(a, chunks=(1, 4, 3)), by2d, func="sum")
    expected = np.stack([a[:, by2d == g].sum(axis=-1) for g in range(4)], axis=-1)
    np.testing.assert_allclose(result.compute(), expected)
    first, second = rng.integers(0, 3, 8), rng.integers(0, 2, 8)
    result, g1, g2 = numbadask.groupby_reduce(da.from_array(a, chunks=(1, 4, 3)), first, second, func="max", expected_groups=(np.arange(3), np.arange(2)), fill_value=np.nan)
    assert result.shape == (2, 6, 3, 2)
    for i in range(3):
        for j in range(2):
            values = a[..., (first == i) & (second == j)]
            expected = values.max(axis=-1) if values.shape[-1] else np.full(a.shape[:-1], np.nan)
            np.testing.assert_array_equal(result.compute()[..., i, j], expected)


def test_bins_closed_on_the_right_and_nan_labels_excluded():
    a = np.arange(6.0)
    labels = np.array([0.0, 0.5, 1.0, np.nan, 2.5, 9.0])
    result, bins = numbadask.groupby_reduce(a, labels, func="count", expected_groups=np.array([0.0, 1.0, 3.0]), isbin=True)
    assert result.tolist() == [2, 1] and [str(b) for b in bins] == ["(0.0, 1.0]", "(1.0, 3.0]"]
    result, groups = numbadask.groupby_reduce(a, labels, func="sum")
    assert groups.tolist() == [0.0, 0.5, 1.0, 2.5, 9.0] and result.tolist() == [0.0, 1.0, 2.0, 4.0, 5.0]


def test_min_count_and_fill_value(rng):
    a = np.array([[1.0, np.nan, np.nan, 4.0, 5.0]])
    labels = np.array([0, 1, 1, 2, 2])
    result, _ = numbadask.groupby_reduce(a, labels, func="nansum", min_count=1)
    assert np.array_equal(result, [[1.0, np.nan, 9.0]], equal_nan=True)
    result, _ = numbadask.groupby_reduce(a, labels, func="sum", min_count=2, fill_value=-1)
    assert result.tolist() == [[-1.0, -1.0, 9.0]]
    ints = np.array([[1, 2, 3, 4, 5]])
    result, _ = numbadask.groupby_reduce(ints, labels, func="sum", expected_groups=np.arange(4), fill_value=np.nan)
    assert result.dtype == np.float64 and np.array_equal(result, [[1.0, 5.0, 9.0, np.nan]], equal_nan=True)
    with pytest.raises(ValueError, match="fill_value"):
        numbadask.groupby_reduce(ints, labels, func="max", min_count=2)


def test_a_user_defined_reduction(rng):
    @numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,))
    def sum_of_squares(x):
        return (x * x,)

    a = rng.normal(size=(3, 20))
    labels = np.arange(20) % 4
    result, _ = numbadask.groupby_reduce(da.from_array(a, chunks=(2, 6)), labels, func=sum_of_squares)
    np.testing.assert_allclose(result.compute(), np.stack([(a[:, labels == g] ** 2).sum(axis=1) for g in range(4)], axis=-1))


def test_bad_input_is_refused_with_the_rule(rng):
    x = da.ones((3, 10), chunks=5)
    with pytest.raises(ValueError, match="trailing axes"):
        numbadask.groupby_reduce(x, np.arange(7), func="sum")
    with pytest.raises(ValueError, match="method must be one of"):
        numbadask.groupby_reduce(x, np.arange(10) % 2, func="sum", method="scatter")
    with pytest.raises(ValueError, match="blockwise.*span"):
        numbadask.groupby_reduce(x, np.arange(10) % 2, func="sum", method="blockwise")
    with pytest.raises(TypeError, match="needs labels"):
        numbadask.groupby_reduce(x, func="sum")


@needs_legacy_flox
def test_what_numbadask_has_no_kernel_for_goes_to_flox(monkeypatch):
    flox = pytest.importorskip("flox.core")
    a = np.arange(1.0, 13.0).reshape(2, 6)
    labels = np.array([0, 0, 1, 1, 2, 2])
    for func in ("prod", "first", "argmax", "nanlast"):
        np.testing.assert_array_equal(numbadask.groupby_reduce(a, labels, func=func)[0], flox.groupby_reduce(a, labels, func=func)[0])
    got = numbadask.groupby_reduce(da.from_array(a, chunks=(1, 4)), labels, func="prod", method="map-reduce")[0]
    expected = flox.groupby_reduce(da.from_array(a, chunks=(1, 4)), labels, func="prod", method="map-reduce")[0]
    np.testing.assert_array_equal(got.compute(), expected.compute())
    assert not any("numbadask" in str(k) for k in dict(got.__dask_graph__()))
    import sys

    monkeypatch.setitem(sys.modules, "flox.core", None)
    with pytest.raises(NotImplementedError, match="prod.*flox, which would, is not installed"):
        numbadask.groupby_reduce(a, labels, func="prod")


@needs_legacy_flox
def test_matches_flox():
    flox = pytest.importorskip("flox.core")
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 60)).astype(np.float32)
    a[0, :5] = np.nan
    labels = rng.integers(0, 7, 60).astype(float)
    labels[4] = np.nan
    for func in FUNCS:
        for method in ("map-reduce", "cohorts"):
            kwargs = {"func": func, "method": method, "finalize_kwargs": {"ddof": 1} if func in DDOF else None}
            got = numbadask.groupby_reduce(da.from_array(a, chunks=(2, 11)), labels, **kwargs)
            expected = flox.groupby_reduce(da.from_array(a, chunks=(2, 11)), labels, **kwargs)
            assert got[0].dtype == expected[0].dtype and np.array_equal(got[1], expected[1])
            np.testing.assert_allclose(got[0].compute(), expected[0].compute(), rtol=2e-6, equal_nan=True)


def test_numpy_and_query_planning_arrays():
    a = np.arange(24.0).reshape(2, 12)
    labels = np.arange(12) % 3
    result, _ = numbadask.groupby_reduce(a, labels, func="mean")
    assert isinstance(result, np.ndarray) and result.tolist() == [[4.5, 5.5, 6.5], [16.5, 17.5, 18.5]]
    lazy, _ = numbadask.groupby_reduce(da.from_array(a, chunks=(1, 5)), labels, func="mean")
    assert np.array_equal(lazy.compute(), result)
    assert lazy.name.startswith("numbadask-groupby-mean")


@pytest.fixture
def climate():
    if QUERY_PLANNING:
        pytest.skip("xarray's groupby reaches flox, which does not take query planning's Arrays")
    xr = pytest.importorskip("xarray")
    pytest.importorskip("flox")
    import pandas as pd

    rng = np.random.default_rng(3)
    time = pd.date_range("2000-01-01", periods=800, freq="D")
    values = rng.normal(size=(800, 3, 4)).astype(np.float32)
    values[rng.random(values.shape) < 0.01] = np.nan
    return xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": time, "lat": [1.0, 2.0, 3.0]}, name="t", attrs={"units": "K"}).chunk(time=90)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.groupby("time.month").mean(),
        lambda x: x.groupby("time.month").std(ddof=1),
        lambda x: x.groupby("time.dayofyear").max(),
        lambda x: x.resample(time="MS").sum(),
        lambda x: x.groupby_bins("lat", [0, 1.5, 3]).count(),
        lambda x: x.groupby("time.season").var(skipna=False),
        lambda x: x.to_dataset().groupby("time.month").min(),
    ],
    ids=["month-mean", "month-std", "doy-max", "resample-sum", "bins-count", "season-var", "dataset-min"],
)
def test_xarray_groupby_under_accelerate(climate, call):
    """xarray's grouped reductions run on numbadask under accelerate(): the same dims,
    coords, attrs and dtypes as without it, graph layers named numbadask, and values as
    xarray gives for the data in float64, rounded to float32 (xarray sums float32 in
    float32; numbadask in float64)."""
    import xarray as xr

    expected = call(climate).compute()
    exact = call(climate.astype(np.float64)).compute().astype(np.float32)
    numbadask.accelerate.reset_counts()
    with numbadask.accelerate():
        lazy = call(climate)
    assert numbadask.accelerate.routed().get("groupby_reduce", 0) >= 1
    arrays = [lazy] if isinstance(lazy, xr.DataArray) else list(lazy.data_vars.values())
    assert all(any("numbadask" in str(name) for name in a.data.dask.layers) for a in arrays)
    got = lazy.compute()
    xr.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-6)
    assert got.dims == expected.dims and got.attrs == expected.attrs and list(got.coords) == list(expected.coords)
    for a, b in zip(arrays, [expected] if isinstance(expected, xr.DataArray) else list(expected.data_vars.values())):
        assert a.dtype == b.dtype


def test_xarray_numpy_data_and_leaving_accelerate(climate):
    import xarray as xr

    eager = climate.compute()
    expected = eager.groupby("time.month").mean()
    with numbadask.accelerate():
        got = eager.groupby("time.month").mean()
    xr.testing.assert_allclose(got, expected, rtol=2e-6)
    import flox.xarray

    assert not hasattr(flox.xarray.groupby_reduce, "__numbadask_original__")


@pytest.mark.cuda_kernels
def test_gpu_device_matches_cpu(rng):
    """device='gpu': each run is reduced by the CUDA kernels (on a GPU, or in Numba's
    simulator), to the CPU's answer."""
    a = rng.normal(size=(2, 3, 24))
    labels = np.arange(24) % 5
    x = da.from_array(a, chunks=(1, 3, 10))
    for func in ("sum", "nanmean", "std", "max", "count"):
        cpu = numbadask.groupby_reduce(x, labels, func=func, device="cpu")[0].compute(scheduler="sync")
        gpu = numbadask.groupby_reduce(x, labels, func=func, device="gpu")[0]
        with dask.config.set(scheduler="sync"):
            np.testing.assert_allclose(np.asarray(gpu.compute()), cpu, rtol=1e-12)


def test_a_distributed_scheduler(rng):
    """The graph's tasks travel to workers (pickled; under query planning the
    expression too: its class is found by name, engine.expr_tasks), and in-memory
    chunks are not grouped per task there (the cluster places tasks)."""
    distributed = pytest.importorskip("distributed")
    a = rng.normal(size=(3, 120)).astype(np.float32)
    labels = np.arange(120) // 7
    x = da.from_array(a, chunks=(2, 25))
    expected = per_group(a, labels, labels.max() + 1, "nanstd")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
        for method in ("map-reduce", "cohorts", "gather", None):
            got = numbadask.groupby_reduce(x, labels, func="nanstd", method=method)[0].compute()
            assert_close(got, expected, a.dtype)
