"""numbadask.xarray: the ``.nd`` accessor against xarray's own reductions (issue 18 item 1).

Every case compares ``obj.nd.<method>(...)`` with ``obj.<method>(...)`` on the same
object: values, dtypes, dims, coordinates, names, attributes, and whether the result
is Dask-backed (NumPy in, NumPy out; Dask in, Dask out).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

import dask  # noqa: E402
import dask.array as da  # noqa: E402

import numbadask  # noqa: E402
import numbadask.xarray  # noqa: E402,F401  (registers .nd)
from numbadask import examples  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:Mean of empty slice", "ignore:All-NaN slice encountered", "ignore:Degrees of freedom <= 0", "ignore:invalid value encountered"
)

DIMS = ["time", ["lat", "lon"], ..., None]
DIM_IDS = ["str", "list", "ellipsis", "None"]


def make_dataset(chunked: bool, strings: bool = True) -> xr.Dataset:
    rng = np.random.default_rng(18)
    nt, ny, nx = 6, 4, 5
    temp = rng.normal(280.0, 5.0, size=(nt, ny, nx))
    temp[rng.random(temp.shape) < 0.15] = np.nan
    temp[:, 1, 2] = np.nan  # an all-NaN series along time
    precip = rng.gamma(2.0, size=(nt, ny, nx)).astype(np.float32)
    precip[0, 0, :] = np.nan
    counts = rng.integers(-50, 50, size=(nt, ny))
    data_vars = {
        "temp": (("time", "lat", "lon"), temp, {"units": "K", "long_name": "temperature"}),
        "precip": (("time", "lat", "lon"), precip, {"units": "mm"}),
        "counts": (("time", "lat"), counts, {"kind": "int"}),
        "mask": (("lat", "lon"), rng.random((ny, nx)) < 0.5),
    }
    if strings:
        data_vars["label"] = ("lat", np.array(["a", "b", "c", "d"]))
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": np.arange(nt) * 10,
            "lat": np.linspace(-30.0, 30.0, ny),
            "lon": np.linspace(0.0, 80.0, nx),
            "land": (("lat", "lon"), rng.random((ny, nx)) < 0.3),
            "doy": ("time", np.arange(nt) + 100),
            "height": 2.0,
        },
        attrs={"title": "issue 18", "source": "synthetic"},
    )
    return ds.chunk({"time": 2, "lat": 3}) if chunked else ds


def _variables(obj):
    return dict(obj.data_vars) if isinstance(obj, xr.Dataset) else {None: obj}


def check(got, want, rtol: float = 1e-5) -> None:
    """``got`` is xarray's ``want``: values, dtypes, dims, coords, names, attrs, laziness."""
    assert type(got) is type(want)
    assert got.attrs == want.attrs
    got_vars, want_vars = _variables(got), _variables(want)
    assert list(got_vars) == list(want_vars)
    for name, w in want_vars.items():
        g = got_vars[name]
        assert g.dims == w.dims and g.name == w.name, name
        assert g.dtype == w.dtype, (name, g.dtype, w.dtype)
        assert g.attrs == w.attrs, name
        assert dask.is_dask_collection(g.variable.data) == dask.is_dask_collection(w.variable.data), name
    assert list(got.coords) == list(want.coords)
    xr.testing.assert_allclose(got.compute(), want.compute(), rtol=rtol)


# --- the family against xarray ----------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("dim", DIMS, ids=DIM_IDS)
@pytest.mark.parametrize("method", ["sum", "mean", "min", "max", "count"])
def test_dataset_family_matches_xarray(method, dim, chunked):
    ds = make_dataset(chunked)
    check(getattr(ds.nd, method)(dim), getattr(ds, method)(dim))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("dim", DIMS, ids=DIM_IDS)
@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("ddof", [0, 1])
def test_dataset_var_std_ddof(method, dim, chunked, ddof):
    ds = make_dataset(chunked, strings=False)  # xarray's var fails on strings
    check(getattr(ds.nd, method)(dim, ddof=ddof), getattr(ds, method)(dim, ddof=ddof))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("skipna", [True, False, None])
@pytest.mark.parametrize("method", ["sum", "mean", "var", "std", "min", "max"])
def test_skipna(method, skipna, chunked):
    ds = make_dataset(chunked, strings=False)
    check(getattr(ds.nd, method)("time", skipna=skipna), getattr(ds, method)("time", skipna=skipna))
    a = ds["temp"]
    check(getattr(a.nd, method)(["time", "lon"], skipna=skipna), getattr(a, method)(["time", "lon"], skipna=skipna))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("name", ["temp", "precip", "counts", "mask"])
@pytest.mark.parametrize("method", ["sum", "mean", "var", "std", "min", "max", "count"])
def test_dataarray_family(method, name, chunked):
    a = make_dataset(chunked)[name]
    for dim in ("lat", None):
        check(getattr(a.nd, method)(dim), getattr(a, method)(dim))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("skipna", [None, True, False])
@pytest.mark.parametrize("min_count", [1, 4, 6, 7])
def test_min_count(min_count, skipna, chunked):
    ds = make_dataset(chunked, strings=False)
    check(ds.nd.sum("time", skipna=skipna, min_count=min_count), ds.sum("time", skipna=skipna, min_count=min_count))
    check(ds.nd.sum(skipna=skipna, min_count=min_count), ds.sum(skipna=skipna, min_count=min_count))
    a = ds["counts"]  # integers: float64 with NaN when skipping, int64 otherwise
    check(a.nd.sum("time", skipna=skipna, min_count=min_count), a.sum("time", skipna=skipna, min_count=min_count))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_keep_attrs(chunked):
    ds = make_dataset(chunked)
    for keep in (True, False, None):
        check(ds.nd.mean("time", keep_attrs=keep), ds.mean("time", keep_attrs=keep))
        check(ds["temp"].nd.max("lat", keep_attrs=keep), ds["temp"].max("lat", keep_attrs=keep))
    for option in (True, False):
        with xr.set_options(keep_attrs=option):
            check(ds.nd.sum("time"), ds.sum("time"))
            check(ds["precip"].nd.count(...), ds["precip"].count(...))
            assert bool(ds.nd.min("time").attrs) is option


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_keepdims(chunked):
    ds = make_dataset(chunked)
    check(ds.nd.mean("time", keepdims=True), ds.mean("time", keepdims=True))
    check(ds["temp"].nd.var(["lat", "lon"], keepdims=True), ds["temp"].var(["lat", "lon"], keepdims=True))


def test_ptp_is_max_minus_min():
    for chunked in (False, True):
        ds = make_dataset(chunked, strings=False).drop_vars("mask")  # NumPy refuses bool ptp
        for skipna in (None, False, True):
            want = ds.max("time", skipna=skipna) - ds.min("time", skipna=skipna)
            want.attrs = ds.attrs
            for name in want.data_vars:
                want[name].attrs = ds[name].attrs
            check(ds.nd.ptp("time", skipna=skipna), want)


def test_missing_dim_raises_as_xarray():
    ds = make_dataset(False)
    with pytest.raises(ValueError):
        ds.nd.mean("depth")
    with pytest.raises(ValueError):
        ds["temp"].nd.sum(["time", "depth"])


# --- arg-reductions ---------------------------------------------------------------------


def argmin_data(chunked: bool) -> xr.DataArray:
    """NaN but no all-NaN slice (NaN-skipping arg-reductions raise there, as xarray's)."""
    a = make_dataset(False)["temp"].fillna(0.0).copy()
    a[0, 0, 0] = a[3, 2, 1] = a[5, 3, 4] = np.nan
    a[2, 1, 3] = a[4, 1, 3] = 500.0  # a tie: the first wins
    return a.chunk({"time": 2, "lat": 3}) if chunked else a


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("method", ["argmin", "argmax"])
@pytest.mark.parametrize("skipna", [None, False])
def test_dataarray_arg(method, chunked, skipna):
    a = argmin_data(chunked)
    for dim in ("time", "lon"):
        check(getattr(a.nd, method)(dim, skipna=skipna), getattr(a, method)(dim, skipna=skipna))
    for dim in (["time", "lon"], ["lat"], ...):
        got, want = getattr(a.nd, method)(dim, skipna=skipna), getattr(a, method)(dim, skipna=skipna)
        assert list(got) == list(want)
        for d in want:
            check(got[d], want[d])
    with pytest.warns(FutureWarning):
        got = getattr(a.nd, method)(skipna=skipna)
    with pytest.warns(FutureWarning):
        want = getattr(a, method)(skipna=skipna)
    check(got, want)


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_dataset_arg(chunked):
    ds = make_dataset(False, strings=False).drop_vars("mask")
    ds["temp"] = argmin_data(False)
    ds = ds.chunk({"time": 2, "lat": 3}) if chunked else ds
    check(ds.nd.argmin("time"), ds.argmin("time"))
    check(ds.nd.argmax("lat", skipna=False), ds.argmax("lat", skipna=False))
    with pytest.raises(ValueError, match="dicts cannot be contained in a Dataset"):
        ds.nd.argmin(["time", "lat"])


def test_all_nan_argmin_raises():
    a = xr.DataArray(da.from_array(np.array([[1.0, np.nan], [2.0, np.nan]]), chunks=1), dims=("y", "x"))
    with pytest.raises(ValueError, match="All-NaN slice"):
        a.nd.argmin("y").compute()


# --- moments and user-defined reductions ------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("skipna", [None, False])
def test_dataarray_moments(chunked, skipna):
    for name in ("temp", "precip", "counts"):
        a = make_dataset(chunked)[name]
        m = a.nd.moments("time", skipna=skipna, ddof=1)
        assert isinstance(m, xr.Dataset) and list(m.data_vars) == list(numbadask.MomentsResult._fields)
        for field in m.data_vars:
            kwargs = {"ddof": 1} if field in ("var", "std") else {}
            want = a.count("time") if field == "count" else getattr(a, field)("time", skipna=skipna, **kwargs)
            want = want.rename(field)
            if field == "sum" and a.dtype.kind != "f":
                want = want.astype(np.float64, keep_attrs=True)  # moments' sum is float64
            check(m[field].rename(field), want)


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_dataset_moments(chunked):
    ds = make_dataset(chunked)
    m = ds.nd.moments(["lat", "lon"])
    numeric = ["temp", "precip", "counts", "mask"]  # label (strings) dropped
    assert list(m.data_vars) == [f"{n}_{f}" for n in numeric for f in numbadask.MomentsResult._fields]
    assert m.attrs == ds.attrs and list(m.coords) == list(ds.mean(["lat", "lon"]).coords)
    for n in ("temp", "precip"):
        check(m[f"{n}_mean"].rename(n), ds[n].mean(["lat", "lon"]))
        check(m[f"{n}_std"].rename(n), ds[n].std(["lat", "lon"]))
        check(m[f"{n}_min"].rename(n), ds[n].min(["lat", "lon"]))
        assert dask.is_dask_collection(m[f"{n}_var"].data) is chunked


class CountingArray:
    """An array Dask reads through ``__getitem__``, counting the reads."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, values.ndim
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return self.values[key]


def test_dataset_reads_each_variable_once():
    rng = np.random.default_rng(0)
    sources = {n: CountingArray(rng.random((8, 6))) for n in ("u", "v", "w")}
    ds = xr.Dataset({n: (("time", "x"), da.from_array(s, chunks=(2, 6), asarray=True)) for n, s in sources.items()})
    chunks = 4

    def reads_of(*lazy) -> list[int]:
        for s in sources.values():  # graph construction may read empty slices (meta)
            s.reads = 0
        with dask.config.set(scheduler="sync"):
            computed = dask.compute(*lazy)
        reads_of.computed = computed
        return [s.reads for s in sources.values()]

    result = ds.nd.mean("time")
    assert all(dask.is_dask_collection(v.data) for v in result.data_vars.values())
    assert reads_of(result) == [chunks] * 3
    m = ds.nd.moments("time")
    assert reads_of(m) == [chunks] * 3  # all seven fields of each variable in one read
    (m,) = reads_of.computed
    assert reads_of(ds["u"].nd.moments("time")) == [chunks, 0, 0]
    np.testing.assert_allclose(m["u_mean"], sources["u"].values.mean(axis=0))
    np.testing.assert_allclose(m["w_var"], sources["w"].values.var(axis=0))


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_reduce_user_defined(chunked):
    ds = make_dataset(chunked).fillna(0.0)
    got = ds.nd.reduce(examples.sum_of_squares, "time")
    numeric = ds.drop_vars("label")
    want = (numeric.astype(np.float64) ** 2).sum("time")
    want.attrs = ds.attrs
    for n in want.data_vars:
        want[n].attrs = ds[n].attrs
    check(got, want)
    a = ds["temp"]
    got = a.nd.reduce(examples.count_above, ["lat", "lon"], threshold=280.0, keep_attrs=False)
    check(got, (a > 280.0).sum(["lat", "lon"], keep_attrs=False).astype(np.float64))
    with pytest.raises(TypeError, match="numbadask.reduction"):
        a.nd.reduce(np.sum, "time")


# --- packaging --------------------------------------------------------------------------


def test_import_numbadask_does_not_import_xarray():
    code = "import sys, numbadask; assert 'xarray' not in sys.modules, 'xarray imported'; print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_accessor_registered_on_both():
    assert isinstance(xr.DataArray([1.0]).nd, numbadask.xarray.DataArrayAccessor)
    assert isinstance(xr.Dataset().nd, numbadask.xarray.DatasetAccessor)


def test_no_warning_on_numpy_all_nan():
    """NumPy-backed results are computed here; like xarray's eager reductions, they give
    no empty-slice warnings."""
    a = xr.DataArray(np.array([[np.nan, 1.0], [np.nan, 2.0]]), dims=("y", "x"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = a.nd.mean("y")
        got_min = a.nd.min("y")
    check(got, a.mean("y"))
    check(got_min, a.min("y"))


def test_readme_xarray_example_runs():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL) if "import numbadask.xarray" in b and "product_means" not in b]
    exec(compile(block, "README.md", "exec"), {})


# --- device= passes through ---------------------------------------------------------------


@pytest.mark.cuda_kernels
def test_device_gpu_passes_through():
    """device="gpu": the CUDA kernels (in Numba's simulator on CPU CI) reduce each variable."""
    ds = xr.Dataset(
        {"u": (("time", "x"), np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])), "n": (("time", "x"), np.arange(6).reshape(2, 3))},
        coords={"x": [1, 2, 3]},
    ).chunk({"time": 1})
    check(ds.nd.mean("time", device="gpu"), ds.mean("time"))
    check(ds["u"].nd.max("x", skipna=False, device="gpu"), ds["u"].max("x", skipna=False))
    m = ds.nd.moments("time", device="gpu")
    np.testing.assert_allclose(m["u_std"], ds["u"].std("time"))


@pytest.mark.gpu
def test_dask_of_cupy():
    """Dask-of-CuPy in, Dask-of-CuPy out, xarray's answers (needs a real GPU)."""
    cupy = pytest.importorskip("cupy")
    ds = make_dataset(False, strings=False)
    gpu = ds.copy(data={n: da.from_array(cupy.asarray(v.values), chunks=(2,) + v.shape[1:], asarray=False) for n, v in ds.data_vars.items()})
    for method in ("sum", "mean", "std", "min", "count"):
        got = getattr(gpu.nd, method)("time")
        assert all(type(v.data._meta).__module__.startswith("cupy") for v in got.data_vars.values() if dask.is_dask_collection(v.data))
        computed = got.compute()
        host = computed.copy(data={n: cupy.asnumpy(v.data) if hasattr(v.data, "get") else v.data for n, v in computed.data_vars.items()})
        xr.testing.assert_allclose(host, getattr(ds, method)("time"), rtol=1e-5)


# --- two arrays in one read: cov and corr (issue 18 item 2) ---------------------------


def make_pair(chunked: bool) -> tuple[xr.DataArray, xr.DataArray]:
    rng = np.random.default_rng(180)
    nt, ny, nx = 9, 3, 4
    u = 1e4 + rng.normal(size=(nt, ny, nx))
    v = 0.3 * u + rng.normal(size=(nt, ny, nx))
    u[rng.random(u.shape) < 0.15] = np.nan
    v[rng.random(v.shape) < 0.15] = np.nan
    u[:, 0, 0] = np.nan  # no pairs
    v[:, 1, 1] = 2.0  # constant: corr NaN
    coords = {"time": np.arange(nt), "lat": [-10.0, 0.0, 10.0], "lon": np.arange(nx) * 5.0, "label": ("lat", ["s", "e", "n"])}
    a = xr.DataArray(u, dims=("time", "lat", "lon"), coords=coords, name="u", attrs={"units": "m/s"})
    # v: another dimension order, one time step fewer (the inner join drops it)
    b = xr.DataArray(v, dims=("time", "lat", "lon"), coords=coords, name="v").isel(time=slice(1, None)).transpose("lon", "time", "lat")
    if chunked:
        a, b = a.chunk({"time": 4, "lat": 2}), b.chunk({"time": 3})
    return a, b


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("dim", ["time", ["time", "lon"], None, ...], ids=["str", "list", "None", "ellipsis"])
def test_cov_corr_match_xarray(chunked, dim):
    a, b = make_pair(chunked)
    for ddof in (0, 1):
        expected = xr.cov(a, b, dim=dim, ddof=ddof)
        got = a.nd.cov(b, dim, ddof)
        assert _is_dask_backed(got) == chunked
        xr.testing.assert_allclose(got.compute(), expected.compute(), rtol=1e-10)
        assert got.dims == expected.dims and got.name == expected.name and got.attrs == expected.attrs
    expected = xr.corr(a, b, dim=dim)
    got = a.nd.corr(b, dim)
    xr.testing.assert_allclose(got.compute(), expected.compute(), rtol=1e-10)
    if chunked:
        assert got.data.name.startswith("comoments-numbadask-corr")
    assert got.dtype == expected.dtype and _is_dask_backed(got) == chunked


def test_cov_corr_float32_and_broadcast():
    a, b = make_pair(True)
    a32 = a.astype(np.float32)
    xr.testing.assert_allclose(a32.nd.cov(b.astype(np.float32), "time").compute(), xr.cov(a32, b.astype(np.float32), "time").compute(), rtol=1e-5)
    assert a32.nd.cov(b.astype(np.float32), "time").dtype == xr.cov(a32, b.astype(np.float32), "time").dtype
    series = b.isel(lat=0, lon=0, drop=True)  # broadcast against every (lat, lon)
    xr.testing.assert_allclose(a.nd.corr(series, "time").compute(), xr.corr(a, series, "time").compute(), rtol=1e-10)


def test_cov_bad_input():
    a, _ = make_pair(False)
    with pytest.raises(ValueError, match="not found"):
        a.nd.cov(a, "depth")
    with pytest.raises(TypeError, match="DataArray"):
        a.nd.corr(a.values, "time")
    with pytest.raises(TypeError, match="complex128"):
        a.nd.cov(a * 1j, "time")


def _is_dask_backed(obj: xr.DataArray) -> bool:
    return isinstance(obj.variable.data, da.Array)


# --- weighted (issue 18 item 2) -------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
@pytest.mark.parametrize("dim", ["time", ["time", "lon"], None], ids=["str", "list", "None"])
@pytest.mark.parametrize("field", ["mean", "sum"])
def test_weighted_matches_xarray(chunked, dim, field):
    ds = make_dataset(chunked, strings=False)
    rng = np.random.default_rng(5)
    w = xr.DataArray(rng.random((6, 5)), dims=("time", "lon"), coords={"time": ds.time, "lon": ds.lon})
    if chunked:
        w = w.chunk({"time": 4})
    for skipna in (None, False):
        expected = getattr(ds.weighted(w), field)(dim, skipna=skipna)
        got = getattr(ds.nd.weighted(w), field)(dim, skipna=skipna)
        xr.testing.assert_allclose(got.compute(), expected.compute(), rtol=1e-12)
        assert list(got.data_vars) == list(expected.data_vars)
        for name in got.data_vars:
            assert got[name].dtype == expected[name].dtype, name
            assert got[name].attrs == expected[name].attrs, name
            assert isinstance(got[name].variable.data, da.Array) == isinstance(expected[name].variable.data, da.Array), name
        temp = getattr(ds.temp.nd.weighted(w), field)(dim, skipna=skipna)
        xr.testing.assert_allclose(temp.compute(), getattr(ds.temp.weighted(w), field)(dim, skipna=skipna).compute(), rtol=1e-12)
        assert temp.name == "temp"
        if chunked:  # numbadask's kernel, not xarray's fallback
            assert "weighted" in temp.data.name and "numbadask" in temp.data.name


def test_weighted_offset_float32_and_zero_weights():
    rng = np.random.default_rng(6)
    a = xr.DataArray((1e8 + rng.normal(size=(40, 3))).astype(np.float32), dims=("time", "x")).chunk({"time": 7})
    w = xr.DataArray(rng.random(40), dims="time")
    xr.testing.assert_allclose(a.nd.weighted(w).mean("time").compute(), a.weighted(w).mean("time").compute(), rtol=1e-7)
    zero = xr.DataArray(np.zeros(40), dims="time")
    assert np.isnan(a.nd.weighted(zero).mean("time").values).all()  # xarray: NaN, no error


def test_weighted_nan_weights_are_an_error():
    a = xr.DataArray([1.0, 2.0], dims="t")
    w = xr.DataArray([1.0, np.nan], dims="t")
    with pytest.raises(ValueError, match="cannot contain missing values"):
        a.nd.weighted(w)
    lazy = a.chunk().nd.weighted(w.chunk()).mean("t")
    with pytest.raises(ValueError, match="cannot contain missing values"):
        lazy.compute()
    with pytest.raises(ValueError, match="must be a DataArray"):
        a.nd.weighted(np.ones(2))


def test_readme_several_arrays_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL) if "product_means" in b]
    exec(compile(block, "README.md", "exec"), {})
