"""numbadask.comoments, cov and corr (issue 18 item 2): one read of two aligned arrays,
against NumPy float64/longdouble references."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numbadask
from numbadask.reductions import comoments as cm, pairs, weighted


def reference(x: np.ndarray, y: np.ndarray, axis, ddof=0, skipna=False) -> dict[str, np.ndarray]:
    """The fields in long double, pairwise: NaN pairs dropped (skipna) or propagated."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.longdouble), np.asarray(y, dtype=np.longdouble))
    valid = ~(np.isnan(x) | np.isnan(y))
    n = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(valid, x, 0).sum(axis=axis) / n
        ym = np.where(valid, y, 0).sum(axis=axis) / n
        xk = xm if axis is None else np.expand_dims(xm, axis)
        yk = ym if axis is None else np.expand_dims(ym, axis)
        dx, dy = np.where(valid, x - xk, 0), np.where(valid, y - yk, 0)
        m2x, m2y, cxy = (dx * dx).sum(axis=axis), (dy * dy).sum(axis=axis), (dx * dy).sum(axis=axis)
        out = {
            "count": n,
            "mean_x": xm,
            "mean_y": ym,
            "var_x": np.where(n - ddof > 0, m2x / (n - ddof), np.nan),
            "var_y": np.where(n - ddof > 0, m2y / (n - ddof), np.nan),
            "cov": cxy / n * (n / (n - ddof)),
            "corr": cxy / np.sqrt(m2x * m2y),
        }
    if not skipna:
        seen = x.size if axis is None else np.prod([x.shape[a] for a in np.atleast_1d(axis)])
        for k in out:
            if k != "count":
                out[k] = np.where((n < seen) | (n == 0), np.nan, out[k])
    else:
        for k in out:
            if k != "count":
                out[k] = np.where(n == 0, np.nan, out[k])
    return {k: np.asarray(v, dtype=np.float64) if k != "count" else np.asarray(v) for k, v in out.items()}


def check(result: cm.ComomentsResult, ref: dict, rtol: float = 1e-12, atol: float = 0.0) -> None:
    values = dask.compute(*result)
    for field, value in zip(result._fields, values):
        np.testing.assert_allclose(np.asarray(value, dtype=np.float64), ref[field].astype(np.float64), rtol=rtol, atol=atol, equal_nan=True, err_msg=field)


def test_basic_matches_numpy(rng):
    x = rng.normal(size=(30, 7))
    y = 0.5 * x + rng.normal(size=(30, 7))
    r = numbadask.comoments(da.from_array(x, chunks=(7, 3)), da.from_array(y, chunks=(7, 3)), axis=0)
    assert r.count.dtype == np.int64 and r.cov.dtype == np.float64 and r.cov.shape == (7,)
    c, corr, vx = dask.compute(r.cov, r.corr, r.var_x)
    np.testing.assert_allclose(c, [np.cov(x[:, j], y[:, j], ddof=0)[0, 1] for j in range(7)], rtol=1e-12)
    np.testing.assert_allclose(corr, [np.corrcoef(x[:, j], y[:, j])[0, 1] for j in range(7)], rtol=1e-12)
    np.testing.assert_allclose(vx, x.var(axis=0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_exact_on_offset_data(rng, dtype, axis):
    """1e8 + small noise: every digit of the variances and covariance kept."""
    x = (1e8 + rng.normal(scale=64.0, size=(400, 6))).astype(dtype)
    y = (-3e8 + rng.normal(scale=64.0, size=(400, 6)) + x.astype(np.float64) * 0.01).astype(dtype)
    r = numbadask.comoments(da.from_array(x, chunks=(37, 4)), da.from_array(y, chunks=(37, 4)), axis=axis, ddof=1)
    check(r, reference(x, y, axis, ddof=1), rtol=1e-10)


def test_one_graph_one_read(rng):
    """Computing all seven fields together makes each block of x and y once."""
    calls = []

    def made(block):
        calls.append(block.shape)
        return block

    base = rng.normal(size=(20, 4))
    x = da.from_array(base, chunks=5).map_blocks(made, dtype=float)
    y = (da.from_array(base, chunks=5) * 2.0 + 1.0).map_blocks(made, dtype=float)
    r = numbadask.comoments(x, y, axis=0)
    calls.clear()
    values = dask.compute(*r, scheduler="sync")
    assert len(calls) == 2 * x.npartitions
    np.testing.assert_allclose(values[-1], 1.0)


@pytest.mark.parametrize("skipna", [False, True])
def test_nan_pairs(rng, skipna):
    x = rng.normal(size=(12, 5))
    y = rng.normal(size=(12, 5))
    x[rng.random(x.shape) < 0.2] = np.nan
    y[rng.random(y.shape) < 0.2] = np.nan
    x[:, 2] = np.nan  # no pairs at all
    x[:11, 3] = np.nan  # one pair: var and cov with ddof=1 are NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings, as numbadask.moments
        r = numbadask.comoments(da.from_array(x, chunks=(5, 2)), y, axis=0, ddof=1, skipna=skipna)
        values = dask.compute(*r)
    ref = reference(x, y, 0, ddof=1, skipna=skipna)
    for field, value in zip(r._fields, values):
        np.testing.assert_allclose(value, ref[field], rtol=1e-12, equal_nan=True, err_msg=field)


def test_inf_gives_numpy_answers():
    x = np.array([[1.0, np.inf, 2.0, 3.0], [np.inf, 1.0, 2.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    y = np.array([[1.0, 2.0, 4.0, 3.0], [1.0, 2.0, 4.0, 3.0], [1.0, 2.0, -np.inf, 4.0]])
    for chunks in [(3, 4), (1, 1), (2, 3)]:
        r = numbadask.comoments(da.from_array(x, chunks=chunks), da.from_array(y, chunks=chunks), axis=1)
        mx, my, vx, vy, c = dask.compute(r.mean_x, r.mean_y, r.var_x, r.var_y, r.cov)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(mx, x.mean(axis=1))
            np.testing.assert_array_equal(my, y.mean(axis=1))
            np.testing.assert_array_equal(vx, x.var(axis=1))
            np.testing.assert_allclose(vy, y.var(axis=1), equal_nan=True)
        assert np.isnan(c).tolist() == [True, True, True]
        np.testing.assert_allclose(vy[:2], np.var([1.0, 2.0, 4.0, 3.0]))


def test_empty_and_scalar():
    r = numbadask.comoments(np.empty((0, 3)), np.empty((0, 3)), axis=0)
    count, mean, cov = dask.compute(r.count, r.mean_x, r.cov)
    assert count.tolist() == [0, 0, 0] and np.isnan(mean).all() and np.isnan(cov).all()
    r = numbadask.comoments(np.float64(2.0), 3)
    assert dask.compute(r.count, r.mean_x, r.mean_y, r.var_x) == (1, 2.0, 3.0, 0.0)


def test_broadcasting_and_mismatched_chunks(rng):
    x = rng.normal(size=(10, 6))
    y = rng.normal(size=(6,))
    r = numbadask.comoments(da.from_array(x, chunks=(3, 4)), da.from_array(y, chunks=5), axis=1)
    check(r, reference(x, y, 1))
    r = numbadask.comoments(da.from_array(x, chunks=(3, 4)), da.from_array(x[::-1].copy(), chunks=(4, 1)), axis=(0,), keepdims=True)
    assert r.cov.shape == (1, 6)
    ref = reference(x, x[::-1], 0)
    np.testing.assert_allclose(r.cov.compute()[0], ref["cov"], rtol=1e-12)


def test_integer_and_bool_accumulate_in_float64():
    x = np.arange(2**40, 2**40 + 50, dtype=np.int64).reshape(10, 5)
    y = (np.arange(50) % 3 == 0).reshape(10, 5)
    r = numbadask.comoments(da.from_array(x, chunks=3), da.from_array(y, chunks=3), axis=0)
    check(r, reference(x, y, 0), atol=1e-12)
    assert numbadask.cov(x, y, axis=0).dtype == np.float64
    assert numbadask.cov(x.astype(np.float32), np.float32(1) * y, axis=0).dtype == np.float64  # as np.cov
    assert numbadask.corr(x.astype(np.float32), np.float32(1) * y, axis=0).dtype == np.float32


@pytest.mark.parametrize("value", [np.array([1j, 2j]), np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([object()], dtype=object)])
def test_unsupported_dtypes_raise(value):
    with pytest.raises(TypeError, match=str(value.dtype).replace("[", r"\[").replace("]", r"\]")):
        numbadask.comoments(value, np.ones(value.shape))
    with pytest.raises(TypeError, match="y has dtype"):
        numbadask.corr(np.ones(value.shape), value)


def test_bad_ddof_and_axis():
    with pytest.raises((TypeError, ValueError)):
        numbadask.cov([1.0, 2.0], [1.0, 2.0], ddof="one")
    with pytest.raises((ValueError, np.exceptions.AxisError)):
        numbadask.cov([1.0, 2.0], [1.0, 2.0], axis=3)
    with pytest.raises(ValueError):
        numbadask.cov(np.ones(3), np.ones(4))


FIELDS = ("count", "mean_x", "mean_y", "var_x", "var_y", "cov", "corr")


@pytest.mark.cuda_kernels
def test_gpu_block_states_match_the_cpu_kernels(rng):
    """The CUDA kernels of CuPy block pairs (here in the simulator, on NumPy blocks)
    against the njit kernels: every finished field, on offset data with NaN and inf,
    broadcast and strided blocks; the weighted sums with and without ``skip``."""
    x = 1e6 + rng.normal(size=(9, 4, 5))
    y = rng.normal(size=(9, 4, 5))
    y[0, 0, 0], x[1, 1, 1], x[2, 2, 2] = np.nan, np.inf, np.nan
    pairs = [(x, y), (x[:, ::-1], y[:, :1].repeat(4, 1)), (x[:, :, 1:], np.broadcast_to(y[:1, :1, 1:], (9, 4, 4)))]
    for a, b in pairs:
        for axes in [(0,), (2,), (0, 2), (1,), (0, 1, 2)]:
            cpu, gpu = cm._block_state(a, b, axes), cm._gpu_state(a, b, axes)
            for field in FIELDS:
                for ddof, skipna in [(0, True), (1, False)]:
                    want, got = cm._field(cpu, field, ddof, skipna), cm._field(gpu, field, ddof, skipna)
                    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=str((axes, field)))
            for skip in (False, True):
                want, got = weighted._weighted_chunk(a, np.abs(b), axes, skip), weighted._gpu_weighted(a, np.abs(b), axes, skip)
                np.testing.assert_allclose(got.swa, want.swa, rtol=1e-12, equal_nan=True)
                np.testing.assert_allclose(got.sw, want.sw, rtol=1e-12, equal_nan=True)


@pytest.mark.cuda_kernels
def test_gpu_kernels_end_to_end(rng, monkeypatch):
    """comoments, cov, corr, product_means and average through the CUDA kernels of
    every block pair (as CuPy chunks take them), against NumPy."""
    monkeypatch.setattr(cm, "_chunk", cm._gpu_state)
    monkeypatch.setattr(weighted, "_weighted_chunk", weighted._gpu_weighted)
    x = 1e4 + rng.normal(size=(12, 5))
    y = 0.5 * x + rng.normal(size=(12, 5))
    y[3, 1] = np.nan
    dx, dy = da.from_array(x, chunks=(5, 3)), da.from_array(y, chunks=(4, 5))
    for axis in (0, None):
        for skipna in (False, True):
            check(numbadask.comoments(dx, dy, axis=axis, ddof=1, skipna=skipna), reference(x, y, axis, 1, skipna), rtol=1e-9)
    keep = ~np.isnan(y[:, 0])
    np.testing.assert_allclose(numbadask.corr(dx, dy, axis=0).compute()[0], np.corrcoef(x[keep, 0], y[keep, 0])[0, 1], rtol=1e-9)
    means = numbadask.product_means(dx, dx, axis=0)
    np.testing.assert_allclose(means.xy.compute(), (x * x).mean(axis=0), rtol=1e-12)
    w = rng.uniform(0.1, 1.0, size=5)
    np.testing.assert_allclose(numbadask.average(dx, axis=1, weights=w).compute(), np.average(x, axis=1, weights=w), rtol=1e-12)


@pytest.mark.gpu
def test_cupy_chunks(rng):
    """Real CuPy chunks: the CUDA kernels, results on the GPU, NumPy's answers."""
    import cupy

    x = 1e4 + rng.normal(size=(300, 40))
    y = 0.5 * x + rng.normal(size=(300, 40))
    y[7, 3] = np.nan
    dx = da.from_array(cupy.asarray(x), chunks=(64, 40), asarray=False)
    dy = da.from_array(cupy.asarray(y), chunks=(100, 20), asarray=False)
    r = numbadask.comoments(dx, dy, axis=0, ddof=1, skipna=True)
    assert isinstance(r.cov.compute(), cupy.ndarray)
    ref = reference(x, y, 0, 1, True)
    for field, value in zip(r._fields, dask.compute(*r)):
        np.testing.assert_allclose(cupy.asnumpy(value).astype(np.float64), ref[field].astype(np.float64), rtol=1e-9, err_msg=field)
    w = rng.uniform(0.1, 1.0, size=40)
    got = numbadask.average(dx, axis=1, weights=cupy.asarray(w)).compute()
    np.testing.assert_allclose(cupy.asnumpy(got), np.average(x, axis=1, weights=w), rtol=1e-12)


def test_cov_corr_defaults_match_xarray_rules(rng):
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    x[3] = np.nan
    keep = ~np.isnan(x)
    np.testing.assert_allclose(numbadask.cov(x, y).compute(), np.cov(x[keep], y[keep])[0, 1], rtol=1e-12)
    np.testing.assert_allclose(numbadask.corr(x, y).compute(), np.corrcoef(x[keep], y[keep])[0, 1], rtol=1e-12)
    assert np.isnan(numbadask.cov(x, y, skipna=False).compute())


shapes = st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple)


@given(
    shape=shapes,
    chunk=st.integers(1, 4),
    data=st.data(),
    dtype=st.sampled_from([np.float64, np.float32, np.int32, np.bool_]),
    skipna=st.booleans(),
    ddof=st.sampled_from([0, 1]),
)
def test_hypothesis_against_numpy(shape, chunk, data, dtype, skipna, ddof):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    axis = data.draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    x = (rng.normal(size=shape) * 10 + 1e4).astype(dtype) if dtype != np.bool_ else rng.random(shape) < 0.5
    y = rng.normal(size=shape).astype(np.float64)
    if data.draw(st.booleans()):
        y[rng.random(shape) < 0.3] = np.nan
    ychunk = data.draw(st.integers(1, 4))
    r = numbadask.comoments(da.from_array(x, chunks=chunk), da.from_array(y, chunks=ychunk), axis=axis, ddof=ddof, skipna=skipna, split_every=data.draw(st.sampled_from([None, 2, 3])))
    check(r, reference(x, y, axis, ddof=ddof, skipna=skipna), rtol=1e-8, atol=1e-9)


# --- average ----------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), (2, 0), -1])
@pytest.mark.parametrize("full_weights", [True, False])
def test_average_matches_numpy(rng, axis, full_weights):
    a = 1e8 + rng.normal(size=(6, 5, 4))
    if full_weights or axis is None:
        w = rng.random(a.shape)
    else:
        w = rng.random(tuple(a.shape[ax] for ax in np.atleast_1d(axis)))
    avg, scl = numbadask.average(da.from_array(a, chunks=(4, 2, 3)), axis=axis, weights=w, returned=True)
    ref_avg, ref_scl = np.average(a, axis=axis, weights=w, returned=True)
    got_avg, got_scl = dask.compute(avg, scl)
    np.testing.assert_allclose(got_avg, ref_avg, rtol=1e-14)
    np.testing.assert_allclose(got_scl, ref_scl, rtol=1e-13)
    assert got_avg.shape == np.shape(ref_avg) and got_scl.shape == np.shape(ref_scl)
    np.testing.assert_allclose(numbadask.average(a, axis=axis, weights=w, keepdims=True).compute(), np.average(a, axis=axis, weights=w, keepdims=True), rtol=1e-14)


def test_average_dtypes_and_no_weights(rng):
    a = rng.integers(0, 10, size=(5, 3))
    w = rng.random(5).astype(np.float32)
    assert numbadask.average(a, axis=0, weights=w).dtype == np.average(a, axis=0, weights=w).dtype == np.float64
    a32 = a.astype(np.float32)
    got = numbadask.average(a32, axis=0, weights=w)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.compute(), np.average(a32, axis=0, weights=w), rtol=1e-6)
    avg, scl = numbadask.average(a32, axis=1, returned=True)
    ref_avg, ref_scl = np.average(a32, axis=1, returned=True)
    np.testing.assert_allclose(avg.compute(), ref_avg, rtol=1e-6)
    np.testing.assert_array_equal(scl.compute(), ref_scl)
    assert avg.dtype == ref_avg.dtype and scl.dtype == ref_scl.dtype
    x = np.array([1.0, np.nan, 3.0])
    assert np.isnan(numbadask.average(x, weights=[1.0, 1.0, 1.0]).compute())  # NaN propagates, as NumPy


def test_average_errors_as_numpy():
    a = np.ones((3, 4))
    with pytest.raises(TypeError, match="Axis must be specified"):
        numbadask.average(a, weights=np.ones(4))
    with pytest.raises(ValueError, match="Shape of weights must be consistent"):
        numbadask.average(a, axis=0, weights=np.ones(4))
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        numbadask.average(a, axis=1, weights=np.array([1.0, -1.0, 0.0, 0.0])).compute()
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        np.average(a, axis=1, weights=np.array([1.0, -1.0, 0.0, 0.0]))
    with pytest.raises(TypeError, match="complex128"):
        numbadask.average(a * 1j, axis=0)


# --- product_means: the quadratic means in one pass -------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_means_on_offset_data(rng, dtype):
    u = (1e4 + rng.normal(size=(300, 5))).astype(dtype)
    v = (-2e4 + rng.normal(size=(300, 5))).astype(dtype)
    r = numbadask.product_means(da.from_array(u, chunks=(31, 2)), da.from_array(v, chunks=(17, 5)), axis=0)
    uu, vv, uv = dask.compute(*r)
    ul, vl = u.astype(np.longdouble), v.astype(np.longdouble)
    np.testing.assert_allclose(uu, (ul * ul).mean(axis=0).astype(np.float64), rtol=1e-14)
    np.testing.assert_allclose(vv, (vl * vl).mean(axis=0).astype(np.float64), rtol=1e-14)
    np.testing.assert_allclose(uv, (ul * vl).mean(axis=0).astype(np.float64), rtol=1e-14)


def test_product_means_nan_pairs(rng):
    u = rng.normal(size=(20, 3))
    v = rng.normal(size=(20, 3))
    u[2, 0] = v[5, 0] = np.nan
    uu, vv, uv = dask.compute(*numbadask.product_means(u, v, axis=0, skipna=True))
    keep = ~(np.isnan(u[:, 0]) | np.isnan(v[:, 0]))
    np.testing.assert_allclose([uu[0], vv[0], uv[0]], [(u[keep, 0] ** 2).mean(), (v[keep, 0] ** 2).mean(), (u[keep, 0] * v[keep, 0]).mean()], rtol=1e-13)
    np.testing.assert_allclose(uv[1:], (u[:, 1:] * v[:, 1:]).mean(axis=0), rtol=1e-13)
    assert np.isnan(dask.compute(*numbadask.product_means(u, v, axis=0))[0][0])


def test_two_d_views_without_copies(rng):
    """The kernels' 2-D layout of a block: a strided view where the strides allow (a
    broadcast weight is not copied), the same values as transpose + reshape always."""
    for shape in [(4, 5, 6), (1, 5, 1), (3, 1, 4), (0, 3, 2)]:
        a = rng.normal(size=shape)
        views = [a, a.transpose(2, 0, 1), np.broadcast_to(rng.normal(size=(shape[0], 1, 1)), shape), a[:, ::2], np.broadcast_to(rng.normal(size=(1, *shape[1:])), shape)]
        for v in views:
            for axes in [(0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2)]:
                got, rows = pairs.two_d(v, axes)
                kept = [i for i in range(v.ndim) if i not in axes]
                first, second = (kept, list(axes)) if rows else (list(axes), kept)
                np.testing.assert_array_equal(got, v.transpose((*first, *second)).reshape(got.shape))
    w = np.broadcast_to(np.arange(50.0)[:, None, None], (50, 200, 250))
    view, rows = pairs.two_d(w, (0,))
    assert not rows and view.shape == (50, 50000) and view.strides == (8, 0)  # no copy


def test_masked_chunks_are_refused_not_ignored():
    """Refused when computed, as one-array reductions refuse them: a ChunkError naming
    the function, the block and the chunk type (the TypeError chained)."""
    x = da.ma.masked_greater(da.from_array(np.arange(6.0), chunks=3), 4.0)
    with pytest.raises(numbadask.ChunkError, match=r"numbadask\.comoments failed on block \(1,\).*MaskedArray") as info:
        numbadask.comoments(x, x).count.compute()
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(numbadask.ChunkError, match=r"numbadask\.weighted failed.*MaskedArray"):
        numbadask.average(x, weights=np.ones(6)).compute()


@given(
    shape=shapes,
    chunk=st.integers(1, 4),
    data=st.data(),
    dtype=st.sampled_from([np.float64, np.float32, np.int16, np.bool_]),
)
def test_average_hypothesis_against_numpy(shape, chunk, data, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = (rng.normal(size=shape) * 100).astype(dtype) if dtype != np.bool_ else rng.random(shape) < 0.5
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1), st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    along = axis is not None and data.draw(st.booleans())
    w_shape = tuple(shape[ax] for ax in np.atleast_1d(axis)) if along else shape
    w = rng.random(w_shape) + 0.1
    got, scl = numbadask.average(da.from_array(a, chunks=chunk), axis=axis, weights=w, returned=True)
    ref, ref_scl = np.average(a, axis=axis, weights=w, returned=True)
    assert got.dtype == np.asarray(ref).dtype and got.shape == np.shape(ref)
    rtol = 1e-5 if np.asarray(ref).dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.compute(), ref, rtol=rtol)
    np.testing.assert_allclose(scl.compute(), ref_scl, rtol=rtol)


def test_query_planning_arrays():
    """The same answers on dask's expression-backed Arrays (a fresh process: the mode is
    chosen when dask.array is first imported)."""
    import os
    import subprocess
    import sys

    code = """
import dask, numpy as np, dask.array as da, numbadask
rng = np.random.default_rng(3)
a, b = rng.normal(size=(20, 6)), rng.normal(size=(6,))
x, y = da.from_array(a, chunks=(7, 4)), da.from_array(b, chunks=5)
assert hasattr(x, "expr"), "not query planning"
r = numbadask.comoments(x[::-1] * 2 + 1e8, y, axis=0, skipna=True)
cov, corr = dask.compute(r.cov, r.corr)
ref = [np.cov(a[::-1, j] * 2 + 1e8, np.full(20, b[j]), ddof=0)[0, 1] for j in range(6)]
np.testing.assert_allclose(cov, ref, atol=1e-9)
np.testing.assert_allclose(numbadask.average(x, axis=0, weights=np.arange(20.0)).compute(), np.average(a, axis=0, weights=np.arange(20.0)))
np.testing.assert_allclose(numbadask.corr(x, x.T.T, axis=1).compute(), 1.0)
print("ok")
"""
    env = {**os.environ, "DASK_ARRAY__QUERY_PLANNING": "True"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.strip() == "ok", out.stderr[-3000:]


def test_broadcast_size_one_dims_both_ways(rng):
    x = rng.normal(size=(10, 1))
    y = rng.normal(size=(1, 6))
    for axis in [0, 1, None]:
        r = numbadask.comoments(da.from_array(x, chunks=(3, 1)), da.from_array(y, chunks=(1, 4)), axis=axis)
        check(r, reference(x, y, axis), atol=1e-15)
        assert r.count.shape == tuple(n for a, n in enumerate((10, 6)) if axis is not None and a != axis)
