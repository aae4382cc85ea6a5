"""The CUDA kernel factory's block kernel (``numbadask.cuda_kernels.factory``): several
blocks per output (the last-block-done finish), sizes around multiples of the tile
(loads per thread x threads), NaN and inf at the tile seams, keepdims shapes, and the
same bits on repeated runs.  On a GPU, or in Numba's simulator.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

from cases import array_module, to_numpy
from numbadask.layout import plan_walk

pytestmark = pytest.mark.cuda_kernels


def _modules():
    # The package's names `minmax`, `sum` ... are its functions; the modules by path.
    return {name: importlib.import_module(f"numbadask.cuda_kernels.{name}") for name in ("factory", "launch", "sum", "minmax", "moments")}


def _tile() -> int:
    """Elements one block reads per round on this target (loads x threads); float64."""
    m = _modules()
    loads = 2 if m["launch"].simulator() else m["factory"].items_per_thread(8)
    return loads * m["launch"].threads_per_block()


def _device(a: np.ndarray):
    from numbadask import dispatch

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
    from numbadask import cpu_moments

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
    factory = _modules()["factory"]
    source = factory._source("probe", 2, 4)
    loop = source.split("while r + (U - 1) * threads < n_red:")[1].split("r += nb * tile")[0]
    lines = [line.strip() for line in loop.strip().splitlines()]
    assert [line.split(" =")[0] for line in lines[:4]] == ["v0", "v1", "v2", "v3"]
    assert all(line.startswith("s = step(s, v") for line in lines[4:8])
