"""Real CuPy chunks on a real GPU (marked `gpu`; skipped without one)."""

from __future__ import annotations

import importlib.util

import dask.array as da
import numpy as np
import pytest

import numbadask
from cases import ALL_DTYPES, REFERENCES, assert_matches, random_array, to_numpy
from numbadask.engine import definition
from numbadask.reductions import sums

pytestmark = pytest.mark.gpu


@pytest.fixture
def cupy():
    import cupy

    return cupy


def cupy_dask(cupy, a: np.ndarray, chunks) -> da.Array:
    return da.from_array(cupy.asarray(a), chunks=chunks, asarray=False)


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_cupy_chunks_match_numpy_and_stay_on_gpu(cupy, name, dtype, rng):
    a = random_array(rng, (37, 20, 9), dtype)
    if a.dtype.kind == "f":
        a[rng.random(a.shape) < 0.1] = np.nan
    x = cupy_dask(cupy, a, (10, 7, 4))
    for axis in [None, 0, 1, -1, (0, 2), (1, 2)]:
        for keepdims in (False, True):
            lazy = getattr(numbadask, name)(x, axis=axis, keepdims=keepdims)
            assert type(lazy._meta).__module__.startswith("cupy")
            got = lazy.compute()
            assert isinstance(got, cupy.ndarray)
            assert_matches(got, REFERENCES[name](a, axis=axis, keepdims=keepdims))


def test_strided_cupy_chunks(cupy, rng):
    a = rng.random((64, 48))
    x = da.from_array(cupy.asarray(a)[::-1, ::2], chunks=(16, 8), asarray=False)
    assert_matches(numbadask.mean(x, axis=0).compute(), a[::-1, ::2].mean(axis=0))


def test_partial_state_stays_on_the_gpu(cupy, rng):
    chunk = cupy.asarray(rng.random((8, 5)))
    state = definition.chunk(chunk, reduction=sums.MEAN, axes=(0,), device="auto")
    assert isinstance(state.total, cupy.ndarray) and state.count == 8


def test_device_cpu_brings_cupy_chunks_to_host(cupy, rng):
    a = rng.random((30, 6))
    got = numbadask.mean(cupy_dask(cupy, a, 7), axis=0, device="cpu").compute()
    assert isinstance(got, np.ndarray)
    assert_matches(got, a.mean(axis=0))


def test_device_gpu_moves_numpy_chunks_to_gpu(cupy, rng):
    a = rng.random((30, 6))
    got = numbadask.mean(da.from_array(a, chunks=7), axis=1, device="gpu").compute()
    assert isinstance(got, cupy.ndarray)
    assert_matches(got, a.mean(axis=1))


def test_same_bits_every_run(cupy):
    x = cupy_dask(cupy, np.random.default_rng(1).standard_normal(3_000_000), 1_000_000)
    runs = {to_numpy(numbadask.mean(x).compute()).tobytes() for _ in range(3)}
    assert len(runs) == 1


def test_float32_more_accurate_than_cupy(cupy):
    x = (1e4 + cupy.random.default_rng(2).random(2**24)).astype(cupy.float32)
    exact = float(cupy.sum(x, dtype=cupy.float64)) / x.size
    ours = float(numbadask.mean(da.from_array(x, chunks=2**22, asarray=False)).compute())
    theirs = float(cupy.mean(x))
    assert abs(ours - exact) <= abs(theirs - exact)
    assert abs(ours - exact) / exact < 1e-7


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is None, reason="needs dask-cuda")
def test_local_cuda_cluster(cupy, rng):
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    a = rng.random((4000, 300))
    with LocalCUDACluster(n_workers=1, dashboard_address=None) as cluster, Client(cluster):
        x = cupy_dask(cupy, a, (1000, 100)).persist()
        got = numbadask.mean(x, axis=0).compute()
        assert isinstance(got, cupy.ndarray)
        assert_matches(got, a.mean(axis=0))
        # device="gpu" is checked by the workers, not the client.
        assert_matches(numbadask.mean(x, device="gpu").compute(), a.mean())


def test_stats_moves_host_file_chunks_to_the_gpu(tmp_path, rng):
    """`numbadask stats` on a GPU machine: chunks read from a .npy file move to the GPU
    (device auto on the threaded scheduler, whose one worker is this GPU machine)."""
    from numbadask.main.stats import run_stats

    a = rng.random((2000, 300))
    np.save(tmp_path / "a.npy", a)
    result = run_stats(str(tmp_path / "a.npy"), stats=["mean", "max"], axis=0, chunks=(500, 300), scheduler="threads")
    assert result.device == "GPU"
    np.testing.assert_allclose(result.values["mean"], a.mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(result.values["max"], a.max(axis=0))


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is None, reason="needs dask-cuda")
def test_stats_on_a_local_cuda_cluster(tmp_path, rng):
    from numbadask.main.stats import run_stats

    a = rng.random((2000, 300))
    np.save(tmp_path / "a.npy", a)
    result = run_stats(str(tmp_path / "a.npy"), chunks=(500, 300), scheduler="local-cuda")
    assert result.device == "GPU" and result.workers >= 1
    assert float(result.values["mean"]) == pytest.approx(a.mean(), rel=1e-12)
