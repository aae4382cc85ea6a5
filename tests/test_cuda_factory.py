"""The CUDA kernel factory (``numbadask.cuda_kernels.factory``): the rows kernel with
several blocks per output (the last-block-done finish), the column kernel with several
column tiles and row splits (its finish per tile), sizes around multiples of the tiles
(loads per thread x threads), NaN and inf at the seams, keepdims shapes, index-aware
steps (argmin/argmax), scratch reused across launches, and the same bits on repeated
runs.  On a GPU, or in Numba's simulator.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from cases import array_module, to_numpy
from numbadask.cpu.layout import plan_walk

pytestmark = pytest.mark.cuda_kernels


def _modules():
    # The package's names `minmax`, `sum` ... are its functions; the modules by path.
    names = ("factory", "source", "launch", "sum", "minmax", "moments", "argminmax", "scratch")
    return {name: importlib.import_module(f"numbadask.cuda_kernels.{name}") for name in names}


def _tile() -> int:
    """Elements one block reads per round on this target (loads x threads); float64."""
    m = _modules()
    loads = 2 if m["launch"].simulator() else m["factory"].items_per_thread(8)
    return loads * m["launch"].threads_per_block()


def _device(a: np.ndarray):
    from numbadask.engine import dispatch

    if dispatch.simulator_enabled():
        return a
    import cupy

    return cupy.asarray(a)


def _sizes() -> list[int]:
    t = _tile()
    return [t - 1, t, t + 1, 2 * t + 1, 3 * t - 1, 3 * t + 5]


@pytest.mark.parametrize("n_index", range(6))
def test_sums_across_several_blocks(n_index, rng):
    n = _sizes()[n_index]
    m = _modules()
    x = rng.standard_normal((2, n)) * 1e3
    x[0, :: max(1, n // 7)] = np.nan
    w = plan_walk(_device(x), (1,), array_module(_device(x)))
    total, count = (to_numpy(a) for a in m["sum"].nansum_float64(w, array_module(_device(x))))
    np.testing.assert_allclose(total.ravel(), np.nansum(x, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(count.ravel(), (~np.isnan(x)).sum(axis=1))
    plain = to_numpy(m["sum"].sum_float64(w, array_module(_device(x))))
    assert np.isnan(plain[0, 0]) and np.isclose(plain[1, 0], x[1].sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int32", "uint64", "bool"])
def test_integer_sums_are_exact(dtype, rng):
    m = _modules()
    n = 3 * _tile() + 3
    x = rng.integers(0, 100, n).astype(dtype)
    w = plan_walk(_device(x), (0,), array_module(_device(x)))
    got = to_numpy(m["sum"].sum_int64(w, array_module(_device(x))))
    assert got.ravel()[0] == x.astype(np.int64).sum()


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int16", "uint8"])
def test_minmax_with_nan_and_inf_at_the_seams(dtype, rng):
    m = _modules()
    t = _tile()
    n = 3 * t + 7
    x = (rng.random((3, n)) * 100).astype(dtype)
    if np.dtype(dtype).kind == "f":
        for seam in (t - 1, t, 2 * t, n - 1):
            x[0, seam] = np.nan
        x[1, t] = np.inf
        x[1, 2 * t - 1] = -np.inf
        x[2, :] = np.nan
    w = plan_walk(_device(x), (1,), array_module(_device(x)))
    lo, hi, valid = (to_numpy(a).ravel() for a in m["minmax"].minmax(w, array_module(_device(x))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        some = (x == x).any(axis=1)
        np.testing.assert_array_equal(lo[some], np.nanmin(x, axis=1)[some])
        np.testing.assert_array_equal(hi[some], np.nanmax(x, axis=1)[some])
    np.testing.assert_array_equal(valid, (x == x).sum(axis=1))


def test_moments_match_the_cpu_kernel_on_offset_data(rng):
    from numbadask.cpu import moments as cpu_moments

    m = _modules()
    x = rng.random((2, 2 * _tile() + 9)) + 1e9
    x[1, 5] = np.nan
    w = plan_walk(_device(x), (1,), array_module(_device(x)))
    gpu = [to_numpy(a) for a in m["moments"].shifted_moments_minmax(w, array_module(_device(x)))]
    cpu = cpu_moments.shifted_moments_minmax(plan_walk(x, (1,)))
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-6)


def test_keepdims_shape_of_a_middle_axis_reduction(rng):
    m = _modules()
    x = rng.random((3, _tile() + 3, 2)).transpose(0, 2, 1).copy().transpose(0, 2, 1)  # middle axis innermost in memory
    w = plan_walk(_device(x), (1,), array_module(_device(x)))
    got = to_numpy(m["sum"].sum_float64(w, array_module(_device(x))))
    assert got.shape == (3, 1, 2)
    np.testing.assert_allclose(got, x.sum(axis=1, keepdims=True), rtol=1e-12)


def test_same_bits_on_repeated_runs(rng):
    m = _modules()
    x = rng.standard_normal(3 * _tile() + 11) * 1e6
    w = plan_walk(_device(x), (0,), array_module(_device(x)))
    runs = {to_numpy(m["sum"].sum_float64(w, array_module(_device(x)))).tobytes() for _ in range(3)}
    assert len(runs) == 1


def test_generated_source_issues_the_loads_before_folding():
    source = _modules()["source"].kernel_source("probe", 2, 4)
    loop = source.split("while r + (U - 1) * threads < n_red:")[1].split("r += nb * tile")[0]
    lines = [line.strip() for line in loop.strip().splitlines()]
    assert [line.split(" =")[0] for line in lines[:4]] == ["v0", "v1", "v2", "v3"]
    assert all(line.startswith("s = step(s, v") for line in lines[4:8])


def _column_sizes() -> tuple[list[int], list[int]]:
    """Output counts around multiples of the column tile, and row counts around
    multiples of one split's rows per round (threads along y x loads), float64."""
    m = _modules()
    tx, ty = m["launch"].column_block()
    loads = 2 if m["launch"].simulator() else m["factory"].items_per_thread(8)
    rows = ty * loads
    return [1, tx - 1, tx, tx + 1, 2 * tx + 3, 3 * tx + 1], [rows - 1, rows, rows + 1, 3 * rows + 2, 5 * rows - 1]


@pytest.mark.parametrize("case", range(6))
def test_column_kernel_over_tiles_and_row_splits(case, rng):
    """Axis 0 of a C-ordered 2-d array: the column kernel, across column tiles and,
    where the grid splits the rows, the last block of each tile finishing it."""
    m = _modules()
    cols, rows = _column_sizes()
    n_cols, n_rows = cols[case], rows[case % len(rows)]
    x = rng.standard_normal((n_rows, n_cols)) * 1e3
    x[:: max(1, n_rows // 3), 0] = np.nan
    x[n_rows // 2, -1] = np.inf
    d = _device(x)
    w = plan_walk(d, (0,), array_module(d))
    assert m["factory"].uses_columns(w, n_rows)
    total, count = (to_numpy(a) for a in m["sum"].nansum_float64(w, array_module(d)))
    assert total.shape == (1, n_cols)
    np.testing.assert_allclose(total.ravel(), np.nansum(x, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(count.ravel(), (x == x).sum(axis=0))
    lo, hi, valid = (to_numpy(a).ravel() for a in m["minmax"].minmax(w, array_module(d)))
    np.testing.assert_array_equal(lo, np.nanmin(x, axis=0))
    np.testing.assert_array_equal(hi, np.nanmax(x, axis=0))


def test_column_kernel_splits_rows_on_a_gpu_grid():
    """The grid rule itself: few columns and many rows split the rows; many columns
    do not; the counts alone decide."""
    launch = _modules()["launch"]
    if launch.simulator():
        assert launch.column_grid(10, 1000, 2) == (2, 2)
        assert launch.column_grid(3, 5, 2) == (1, 1)
        return
    tiles, splits = launch.column_grid(256, 1 << 20, 8)
    assert tiles == 8 and splits == 128
    assert launch.column_grid(1 << 20, 100, 8)[1] == 1


def test_middle_axis_of_3d_uses_the_column_kernel(rng):
    m = _modules()
    cols, rows = _column_sizes()
    x = rng.random((3, rows[-1], cols[3]))
    d = _device(x)
    w = plan_walk(d, (1,), array_module(d))
    assert m["factory"].uses_columns(w, rows[-1])
    got = to_numpy(m["sum"].sum_float64(w, array_module(d)))
    assert got.shape == (3, 1, cols[3])
    np.testing.assert_allclose(got, x.sum(axis=1, keepdims=True), rtol=1e-12)
    moments = [to_numpy(a) for a in m["moments"].shifted_moments(w, array_module(d))]
    count, shift, s1, s2 = moments
    np.testing.assert_array_equal(count, np.full((3, 1, cols[3]), rows[-1]))
    np.testing.assert_allclose(shift + s1 / count, x.mean(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose((s2 - s1**2 / count) / count, x.var(axis=1, keepdims=True), rtol=1e-9)


@pytest.mark.parametrize("want_max", [False, True])
def test_argminmax_on_columns_and_rows_keeps_the_first_index(want_max, rng):
    """The step sees the index: ties go to the first, NaN's first index is kept, on
    both kernels (axis 0 of a C array is the column kernel, axis 1 the rows one)."""
    m = _modules()
    cols, rows = _column_sizes()
    n = max(rows[-1], 3 * _tile() + 1)
    x = rng.integers(0, 5, (n, cols[3])).astype(np.float64)  # many ties
    x[7, 0] = np.nan
    x[n - 1, 1] = np.nan
    for axis in (0, 1):
        a = x if axis == 0 else np.ascontiguousarray(x.T)
        value, index, nan_index = (to_numpy(v) for v in m["argminmax"].argminmax(_device(a), 0 if axis == 0 else 1, want_max, array_module(_device(a))))
        rows_ = a.T if axis == 0 else a
        finder = np.nanargmax if want_max else np.nanargmin
        np.testing.assert_array_equal(index, [finder(r) for r in rows_])
        first_nan = [int(np.flatnonzero(r != r)[0]) if (r != r).any() else -1 for r in rows_]
        np.testing.assert_array_equal(nan_index, first_nan)


def test_scratch_is_reused_and_counters_left_at_zero(rng):
    """Back-to-back launches of different sizes on the reused partials and counters
    give the right answers; the counters are zeros after each launch."""
    m = _modules()
    for n in (3 * _tile() + 1, _tile() + 5, 5 * _tile() + 3):
        x = rng.standard_normal((3, n))
        d = _device(x)
        w = plan_walk(d, (1,), array_module(d))
        got = to_numpy(m["sum"].sum_float64(w, array_module(d)))
        np.testing.assert_allclose(got.ravel(), x.sum(axis=1), rtol=1e-12)
        counter = to_numpy(m["scratch"].buffer(array_module(d), "counter", np.uint32, 3, zeroed=True))
        assert not counter.any()


def test_constant_rows_are_keyed_by_bits():
    scratch = _modules()["scratch"]
    zero, negative_zero = scratch.constant(np, (0.0,)), scratch.constant(np, (-0.0,))
    assert np.signbit(negative_zero[0, 0]) and not np.signbit(zero[0, 0])
    assert scratch.constant(np, (1.5, 2.0)).shape == (1, 2)


def test_column_kernel_same_bits_on_repeated_runs(rng):
    m = _modules()
    cols, rows = _column_sizes()
    x = rng.standard_normal((rows[-1], cols[-1])) * 1e6
    d = _device(x)
    w = plan_walk(d, (0,), array_module(d))
    runs = {to_numpy(m["sum"].sum_float64(w, array_module(d))).tobytes() for _ in range(3)}
    assert len(runs) == 1


def test_generated_column_source_issues_the_loads_before_folding():
    source = _modules()["source"].kernel_source("probe", 2, 4, columns=True)
    loop = source.split("while r + (U - 1) * stride < n_red:")[1].split("r += U * stride")[0]
    lines = [line.strip() for line in loop.strip().splitlines()]
    assert [line.split(" =")[0] for line in lines[:4]] == ["v0", "v1", "v2", "v3"]
    assert all(line.startswith("s = step(s, v") for line in lines[4:8])


@pytest.mark.parametrize("axis", [0, 1])
def test_min_only_and_max_only_keep_one_value_and_the_count(axis, rng):
    m = _modules()
    x = (rng.random((_column_sizes()[1][-1], 2 * _tile() + 3)) * 100).astype(np.float32)
    x[3, :] = np.nan
    x[:, 5] = np.nan
    d = _device(x)
    w = plan_walk(d, (axis,), array_module(d))
    lo, hi, valid = (to_numpy(a).ravel() for a in m["minmax"].min_only(w, array_module(d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want_lo, want_hi = np.nanmin(x, axis=axis), np.nanmax(x, axis=axis)
    some = valid > 0
    np.testing.assert_array_equal(lo[some], want_lo[some])
    assert (hi == -np.inf).all()
    np.testing.assert_array_equal(valid, (x == x).sum(axis=axis))
    lo, hi, valid2 = (to_numpy(a).ravel() for a in m["minmax"].max_only(w, array_module(d)))
    np.testing.assert_array_equal(hi[some], want_hi[some])
    assert (lo == np.inf).all()
    np.testing.assert_array_equal(valid2, valid)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64"])
def test_every_dtype_on_both_kernels_across_blocks(dtype, rng):
    """Sums and min/max of every input dtype, on the rows kernel with several blocks per
    output and on the column kernel with several tiles and row splits."""
    from cases import random_array

    m = _modules()
    cols, rows = _column_sizes()
    # Axis 1: rows of tile + 1 values (two blocks each); axis 0: rows[2] rows (two
    # splits) of tile + 1 outputs (several column tiles).
    x = random_array(rng, (rows[2], _tile() + 1), dtype)
    d = _device(x)
    xp = array_module(d)
    for axis in (0, 1):
        w = plan_walk(d, (axis,), xp)
        if x.dtype.kind == "f":
            got = to_numpy(m["sum"].sum_float64(w, xp)).ravel()
            np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=axis), rtol=1e-12)
        else:
            got = to_numpy(m["sum"].sum_int64(w, xp)).ravel()
            np.testing.assert_array_equal(got, x.astype(np.int64).sum(axis=axis))
        lo, hi, valid = (to_numpy(a).ravel() for a in m["minmax"].minmax(w, xp))
        np.testing.assert_array_equal(lo, x.min(axis=axis))
        np.testing.assert_array_equal(hi, x.max(axis=axis))


def test_walk_offsets_match_numpy_with_negative_strides():
    """The unsigned index arithmetic of the walks (one division per axis, none for
    the outermost reduced axis) gives NumPy's offsets, negative strides included."""
    walks = importlib.import_module("numbadask.cuda_kernels.walks")
    reduced, kept = walks.reduced_offset.py_func, walks.kept_offset.py_func
    sizes, strides = (3, 1, 4, 5), (-700, 13, 100, -7)
    out_strides = (20, 20, 5, 1)
    for r in range(60):
        index = np.unravel_index(r, sizes)
        want = int(np.dot(index, strides))
        assert reduced(r, sizes, strides) == want
        assert kept(r, sizes, strides, out_strides) == want
    assert reduced(5, (9,), (-3,)) == -15


def test_launch_bounds_and_loads_per_kernel(monkeypatch):
    """The launch bounds cap registers at the static budget (256 threads, 4 blocks a
    SM: 64), fit both kernels' blocks, and are off under the simulator; the column
    kernel may issue fewer loads than the rows kernel."""
    m = _modules()
    factory, launch = m["factory"], m["launch"]
    static = importlib.import_module("numbadask.main.cuda_static")
    threads, blocks = factory.LAUNCH_BOUNDS
    assert threads == launch.THREADS == launch.COLUMN_BLOCK[0] * launch.COLUMN_BLOCK[1]
    assert 65536 // (threads * blocks) == static.REGISTER_BUDGET
    assert factory.launch_bounds() == (None if launch.simulator() else factory.LAUNCH_BOUNDS)
    monkeypatch.setattr(factory, "simulator", lambda: False)
    argmin = m["argminmax"].reduction(np.dtype(np.float32), False)
    assert (argmin.loads(4), argmin.loads(4, columns=True), argmin.loads(8, columns=True)) == (16, 8, 8)
    total = m["sum"].REDUCTIONS["sum_float64"]
    assert (total.loads(4), total.loads(4, columns=True), total.loads(8)) == (16, 16, 8)
