"""User-defined reductions of several arrays (``numbadask.reduction(..., arrays=n)``)
against NumPy: broadcasting (a (lat, lon) weight against (time, lat, lon)), inputs cut
differently, axes, keepdims, NaN with and without skipna, mixed dtypes, strided views,
errors.  CPU kernels always; the CUDA kernels (``cuda_kernels``) on tiny arrays in the
simulator or on a GPU.
"""

from __future__ import annotations

import pickle

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbadask
from cases import to_numpy


def _add2(a, b):
    return (a[0] + b[0], a[1] + b[1])


def _ratio(s):
    return s[0] / s[1]


@numbadask.reduction(merge=_add2, identity=(0.0, 0.0), finalize=_ratio, arrays=2)
def weighted_mean(x, w):
    return (x * w, w)


@numbadask.reduction(merge=_add2, identity=(0.0, 0.0), finalize=_ratio, arrays=2, skipna=True)
def nan_weighted_mean(x, w):
    return (x * w, w)


@numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,), arrays=2)
def sum_of_products(x, y):
    return (x * y,)


@numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,), arrays=3)
def sum_xyz(x, y, z, scale=1.0):
    return (scale * x * y * z,)


def _wide(*arrays):
    return [np.asarray(a).astype(np.float64) for a in arrays]


def ref_weighted_mean(x, w, axis=None, keepdims=False, skipna=False):
    x, w = np.broadcast_arrays(*_wide(x, w))
    if skipna:
        keep = ~(np.isnan(x) | np.isnan(w))
        x, w = np.where(keep, x, 0.0), np.where(keep, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(x * w, axis=axis, keepdims=keepdims) / np.sum(w, axis=axis, keepdims=keepdims)


def ref_sum_of_products(x, y, axis=None, keepdims=False):
    x, y = _wide(x, y)
    return np.sum(x * y, axis=axis, keepdims=keepdims)


AXES = [None, 0, 1, 2, -1, (1, 2), (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_weight_of_lat_lon_broadcast_against_time_lat_lon(axis, keepdims, rng):
    data = rng.standard_normal((12, 5, 8))
    weight = rng.uniform(0.1, 1.0, (5, 8))  # e.g. cos(lat) cell areas
    x = da.from_array(data, chunks=(4, 3, 8))
    w = da.from_array(weight, chunks=(5, 3))  # cut otherwise: aligned as map_blocks does
    got = weighted_mean(x, w, axis=axis, keepdims=keepdims)
    expected = ref_weighted_mean(data, weight, axis, keepdims)
    assert got.dtype == np.float64 and got.shape == np.shape(expected)
    np.testing.assert_allclose(got.compute(), expected, rtol=1e-12, atol=1e-12)


def test_inputs_cut_differently_are_cut_at_every_boundary(rng):
    a, b = rng.standard_normal((7, 9)), rng.standard_normal((7, 9))
    x = da.from_array(a, chunks=((5, 2), (4, 5)))
    y = da.from_array(b, chunks=((4, 3), 9))
    lazy = sum_of_products(x, y, axis=1)
    # (5, 2) and (4, 3) -> (4, 1, 2); (4, 5) and (9,) -> (4, 5): what unify_chunks gives.
    assert lazy.chunks == ((4, 1, 2),)
    _, (ux, uy) = da.core.unify_chunks(x, "ij", y, "ij")
    assert ux.chunks == ((4, 1, 2), (4, 5))
    np.testing.assert_allclose(lazy.compute(), ref_sum_of_products(a, b, axis=1), rtol=1e-12, atol=1e-12)
    for axis in (None, 0, (0, 1)):
        np.testing.assert_allclose(sum_of_products(x, y, axis=axis).compute(), ref_sum_of_products(a, b, axis), rtol=1e-12, atol=1e-12)


def test_numpy_inputs_take_the_chunks_of_a_dask_input(rng):
    a, b = rng.standard_normal((40, 6)), rng.standard_normal((40, 6))
    x = da.from_array(a, chunks=(10, 3))
    lazy = sum_of_products(x, b, axis=0)
    assert lazy.chunks == ((3, 3),)
    states = [k for k in dict(lazy.__dask_graph__()) if isinstance(k, tuple) and "-chunk-" in k[0]]
    assert len(states) == 8  # one task per aligned block
    assert not any("rechunk" in str(k) for k in dict(lazy.__dask_graph__()))  # b wrapped in x's chunks
    np.testing.assert_allclose(lazy.compute(), ref_sum_of_products(a, b, axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_of_products(a, b).compute(), ref_sum_of_products(a, b), rtol=1e-12, atol=1e-12)


def _broadcastable(shape, data):
    """A shape that broadcasts to ``shape``: leading axes dropped, some sizes made 1."""
    drop = data.draw(st.integers(0, len(shape)))
    return tuple(1 if data.draw(st.booleans()) else n for n in shape[drop:])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 7), min_size=0, max_size=3).map(tuple), data=st.data())
def test_any_broadcast_and_chunking(shape, data):
    y_shape = _broadcastable(shape, data)
    a = (np.arange(int(np.prod(shape))).reshape(shape) % 5 - 2).astype(np.float64)
    b = (np.arange(int(np.prod(y_shape))).reshape(y_shape) % 3 + 0.5).astype(np.float64)
    if data.draw(st.booleans()):
        a, b, y_shape, shape = b, a, shape, y_shape  # the broadcast array first
    cx = data.draw(st.integers(1, 4))
    cy = data.draw(st.integers(1, 4))
    x = da.from_array(a, chunks=cx) if a.ndim else da.from_array(a, chunks=())
    y = da.from_array(b, chunks=cy) if b.ndim else da.from_array(b, chunks=())
    ndim = max(len(shape), len(y_shape))
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1))) if ndim else None
    keepdims = data.draw(st.booleans())
    got = sum_of_products(x, y, axis=axis, keepdims=keepdims).compute()
    np.testing.assert_allclose(got, ref_sum_of_products(a, b, axis, keepdims), rtol=1e-12, atol=1e-12)


def test_strided_and_reversed_views(rng):
    a = rng.standard_normal((8, 10, 6))
    w = rng.uniform(0.5, 2.0, (10, 6))
    views = [(a[::-1, ::2], w[::2]), (a.transpose(2, 1, 0), w.T[:, :, None]), (a[:, :, ::-1], w[:, ::-1])]
    for xv, wv in views:
        x = da.from_array(xv, chunks=3)
        for axis in (None, 0, (1, 2), 2):
            np.testing.assert_allclose(weighted_mean(x, wv, axis=axis).compute(), ref_weighted_mean(xv, wv, axis), rtol=1e-12, atol=1e-12)


def test_skipna_skips_a_position_where_any_input_is_nan(rng):
    a = rng.standard_normal((30, 8))
    w = rng.uniform(0.1, 1.0, (30, 8))
    a[rng.random(a.shape) < 0.2] = np.nan
    w[rng.random(w.shape) < 0.1] = np.nan
    a[:, 3] = np.nan  # an all-NaN column: 0 / 0
    x, y = da.from_array(a, chunks=(7, 3)), da.from_array(w, chunks=(10, 8))
    for axis in (None, 0, 1):
        with np.errstate(invalid="ignore"):
            got = nan_weighted_mean(x, y, axis=axis).compute()
        np.testing.assert_allclose(got, ref_weighted_mean(a, w, axis, skipna=True), rtol=1e-12, atol=1e-12)
    # Without skipna, NaN propagates from either input.
    got = weighted_mean(x, y, axis=0).compute()
    assert np.isnan(got).all() == np.isnan(ref_weighted_mean(a, w, 0)).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref_weighted_mean(a, w, 0)))


@pytest.mark.parametrize(
    "dx, dy", [(np.int16, np.float32), (np.float32, np.float64), (np.uint8, np.bool_), (np.int64, np.float16), (np.float32, np.float32)]
)
def test_mixed_dtypes_accumulate_in_float64(dx, dy, rng):
    a = (rng.integers(-50, 50, (20, 9)) if np.dtype(dx).kind in "iu" else rng.standard_normal((20, 9)) * 100).astype(dx)
    if np.dtype(dx).kind == "u":
        a = np.abs(a.astype(np.int64)).astype(dx)
    b = (rng.random((20, 9)) < 0.5) if dy is np.bool_ else rng.uniform(0.5, 2.0, (20, 9)).astype(dy)
    x, y = da.from_array(a, chunks=(6, 4)), da.from_array(b, chunks=(5, 9))
    for axis in (None, 0, 1):
        got = sum_of_products(x, y, axis=axis).compute()
        assert np.asarray(got).dtype == np.float64
        np.testing.assert_allclose(got, ref_sum_of_products(a, b, axis), rtol=1e-12, atol=1e-12)


def test_three_arrays_and_a_scalar_parameter(rng):
    a, b, c = rng.standard_normal((6, 5)), rng.standard_normal(5), rng.standard_normal((6, 1))
    x = da.from_array(a, chunks=(2, 5))
    for axis in (None, 0, 1):
        expected = 2.5 * np.sum(a * b * c, axis=axis)
        np.testing.assert_allclose(sum_xyz(x, b, c, axis=axis, scale=2.5).compute(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_xyz(x, b, c).compute(), np.sum(a * b * c), rtol=1e-12)  # map's default
    # A scalar is an array of shape (): broadcast against the others.
    np.testing.assert_allclose(sum_of_products(x, 3.0, axis=0).compute(), 3.0 * a.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_options_positionally_after_the_arrays(rng):
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    np.testing.assert_allclose(sum_of_products(a, b, 1, True).compute(), ref_sum_of_products(a, b, 1, True), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="multiple values for argument 'axis'"):
        sum_of_products(a, b, 1, axis=0)


def test_empty_blocks_and_slices_finalize_the_identity():
    x, w = da.zeros((0, 4), chunks=2), np.ones(4)
    np.testing.assert_equal(sum_of_products(x, w, axis=0).compute(), np.zeros(4))
    with np.errstate(invalid="ignore"):
        np.testing.assert_equal(weighted_mean(x, w, axis=0).compute(), np.full(4, np.nan))
    assert sum_of_products(x, w, axis=1).compute().shape == (0,)


def test_split_every_and_graph_shape(rng):
    a, w = rng.standard_normal((64, 8)), rng.uniform(size=8)
    lazy = weighted_mean(da.from_array(a, chunks=(4, 8)), w, axis=0, split_every=3)
    assert lazy.shape == (8,) and lazy.npartitions == 1
    np.testing.assert_allclose(lazy.compute(), ref_weighted_mean(a, w, 0), rtol=1e-12, atol=1e-12)


def test_pickles_and_runs_on_process_workers(rng):
    import cloudpickle

    a, w = rng.standard_normal((20, 5)), rng.uniform(size=5)
    x = da.from_array(a, chunks=5)
    local = numbadask.reduction(lambda p, q: (p * q,), merge=lambda s, t: (s[0] + t[0],), identity=(0.0,), arrays=2, name="local_dot")
    clone = cloudpickle.loads(cloudpickle.dumps(local))
    assert clone.arrays == 2 and clone._kernels == {}
    np.testing.assert_allclose(clone(x, w).compute(), np.sum(a * w), rtol=1e-12, atol=1e-12)
    assert pickle.loads(pickle.dumps(weighted_mean)) is not None
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_allclose(clone(x, w, axis=0).compute(), np.sum(a * w, axis=0), rtol=1e-12, atol=1e-12)


def test_single_array_reductions_are_unchanged(rng):
    from numbadask import examples

    a = rng.uniform(0.5, 2.0, (6, 4))
    assert examples.l2_norm.arrays == 1 and examples.count_above.params == (("threshold", 0.0),)
    np.testing.assert_allclose(examples.l2_norm(a, 0).compute(), np.linalg.norm(a, axis=0), rtol=1e-12)  # axis positionally
    assert "arrays" not in repr(examples.l2_norm) and "2 arrays" in repr(weighted_mean)


# --- errors -------------------------------------------------------------------------


def test_shapes_that_do_not_broadcast_name_the_rule_and_the_shapes():
    with pytest.raises(ValueError, match=r"'weighted_mean': arrays do not broadcast together \(NumPy's rule.*x has shape \(4, 3\) and w \(4,\); at dimension -1, x has 3 and w 4"):
        weighted_mean(np.ones((4, 3)), np.ones(4))


def test_wrong_number_of_arrays():
    with pytest.raises(TypeError, match=r"weighted_mean\(\) reduces 2 arrays \(map's x, w\) given positionally; got 1 array"):
        weighted_mean(np.ones(3), axis=0)
    with pytest.raises(TypeError, match="at most 4 options"):
        weighted_mean(np.ones(3), np.ones(3), 0, False, None, "cpu", 5)


def test_bad_definitions():
    with pytest.raises(ValueError, match=r"first 2 positional parameters; it has \['x'\]"):
        numbadask.reduction(lambda x: (x,), merge=_add2, identity=(0.0,), arrays=2)
    with pytest.raises(ValueError, match=r"take no default; \['w'\] has one"):
        numbadask.reduction(lambda x, w=1.0: (x * w,), merge=_add2, identity=(0.0,), arrays=2)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="arrays must be a positive int"):
            numbadask.reduction(lambda x: (x,), merge=_add2, identity=(0.0,), arrays=bad)
    with pytest.raises(ValueError, match=r"map function .*two must return a state: a tuple of 1 numbers.*got a tuple of 2"):

        @numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,), arrays=2)
        def two(x, y):
            return (x, y)

        two(np.ones(3), np.ones(3))


def test_unsupported_inputs():
    with pytest.raises(TypeError, match="supports bool, integer and float16/32/64"):
        sum_of_products(np.ones(3), np.zeros(3, dtype=np.complex128))
    masked = da.from_array(np.ma.masked_array(np.ones(3), mask=[0, 1, 0]), asarray=False)
    with pytest.raises(TypeError, match="chunks of exactly numpy.ndarray or cupy.ndarray"):
        sum_of_products(np.ones(3), masked)


def test_unknown_chunk_sizes_must_be_known_to_align():
    a = da.from_array(np.arange(10.0), chunks=5)
    unknown = a[a > -1]  # chunk sizes NaN
    with pytest.raises(ValueError, match=r"'sum_of_products': x has an unknown size along dimension -1.*compute_chunk_sizes\(\)"):
        sum_of_products(unknown, da.from_array(np.arange(10.0), chunks=3))
    # Unknown sizes alike: cut alike already.
    np.testing.assert_allclose(sum_of_products(unknown, unknown * 2).compute(), 2 * np.sum(np.arange(10.0) ** 2))
    other = da.from_array(np.arange(10.0), chunks=4)
    with pytest.raises(ValueError, match=r"must be cut alike along dimension 0, but their chunk sizes there are unknown"):
        sum_of_products(unknown, other[other > -1])
    # Unknown sizes against a broadcast array: nothing to cut alike.
    np.testing.assert_allclose(sum_of_products(unknown, 2.0).compute(), 90.0)


# --- the CUDA kernels (simulator: tiny arrays) ----------------------------------------


@pytest.mark.cuda_kernels
def test_cuda_kernels_weighted_mean_broadcast(rng):
    data = rng.standard_normal((6, 4, 9))
    weight = rng.uniform(0.1, 1.0, (4, 9))
    x = da.from_array(data, chunks=(3, 4, 9))
    for axis in [None, 0, (1, 2), 2]:
        got = to_numpy(weighted_mean(x, weight, axis=axis, device="gpu").compute())
        np.testing.assert_allclose(got, ref_weighted_mean(data, weight, axis), rtol=1e-12, atol=1e-12)


@pytest.mark.cuda_kernels
def test_cuda_kernels_skipna_mixed_dtypes_and_views(rng):
    a = rng.standard_normal((5, 70)).astype(np.float32)
    w = rng.uniform(0.1, 1.0, (5, 70))
    a[1, 3], w[2, 7] = np.nan, np.nan
    x = da.from_array(a, chunks=(5, 40))
    for axis in (None, 0, 1):
        got = to_numpy(nan_weighted_mean(x, w, axis=axis, device="gpu").compute())
        np.testing.assert_allclose(got, ref_weighted_mean(a, w, axis, skipna=True), rtol=1e-12, atol=1e-12)
    ints = rng.integers(-5, 5, (8, 6)).astype(np.int16)
    view = ints[::-1, ::2]
    got = to_numpy(sum_xyz(view, view.T[:1].T, np.float32(2.0), axis=0, scale=0.5, device="gpu").compute())
    np.testing.assert_allclose(got, 0.5 * np.sum(view * view[:, :1] * 2.0, axis=0), rtol=1e-12, atol=1e-12)


def test_query_planning_arrays():
    """Dask's expression-backed Arrays (read at the first ``import dask.array``, so in a
    fresh interpreter): inputs rechunked to align, and inputs made by tasks."""
    import os
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("dask.array._array_expr")
    script = textwrap.dedent(
        """
        import dask.array as da, numpy as np, numbadask
        assert da.array_expr_enabled()

        @numbadask.reduction(merge=lambda a, b: (a[0] + b[0], a[1] + b[1]), identity=(0.0, 0.0),
                             finalize=lambda s: s[0] / s[1], arrays=2)
        def weighted_mean(x, w):
            return (x * w, w)

        rng = np.random.default_rng(3)
        a, w = rng.standard_normal((9, 4, 6)), rng.uniform(0.1, 1.0, (4, 6))
        x = da.from_array(a, chunks=(4, 3, 6))
        for y in (da.from_array(w, chunks=(2, 4)), da.from_array(w, chunks=2) * 1 + 0, w):
            for axis in (None, 0, (1, 2)):
                lazy = weighted_mean(x * 1, y, axis=axis)
                assert type(lazy) is type(x)
                want = np.sum(a * w, axis=axis) / np.sum(np.broadcast_to(w, a.shape), axis=axis)
                np.testing.assert_allclose(lazy.compute(), want, rtol=1e-12, atol=1e-12)
        print("ok")
        """
    )
    env = {**os.environ, "DASK_ARRAY__QUERY_PLANNING": "True"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


@pytest.mark.gpu
def test_cupy_chunks_stay_on_gpu(rng):
    import cupy

    from cases import array_module

    data = rng.standard_normal((40, 30, 20))
    weight = rng.uniform(0.1, 1.0, (30, 20))
    x = da.from_array(cupy.asarray(data), chunks=(10, 15, 20), asarray=False)
    for w in (weight, da.from_array(cupy.asarray(weight), chunks=(10, 20), asarray=False)):  # NumPy weights copied per block
        for axis in (None, 0, (1, 2)):
            got = weighted_mean(x, w, axis=axis).compute()
            assert array_module(got) is cupy
            np.testing.assert_allclose(to_numpy(got), ref_weighted_mean(data, weight, axis), rtol=1e-11)
