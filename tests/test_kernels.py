"""The contract every ``sum_float64`` kernel must meet, run on each implementation.

CPU: always.  CUDA: on a GPU, or in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest

from cases import ALL_DTYPES, array_module, random_array, to_numpy, views
from numbadask import cpu_kernels
from numbadask.layout import plan_walk


class CpuKernel:
    """The CPU ``sum_float64`` on NumPy arrays."""

    asarray = staticmethod(np.asarray)

    @staticmethod
    def sum(a, axes: tuple[int, ...]) -> np.ndarray:
        return cpu_kernels.sum_float64(plan_walk(a, axes))


class CudaKernel:
    """The CUDA ``sum_float64``: on CuPy arrays on a GPU, on NumPy arrays in the simulator."""

    @staticmethod
    def asarray(a):
        from numbadask import dispatch

        if dispatch.simulator_enabled():
            return np.asarray(a)
        import cupy

        return cupy.asarray(a)

    @staticmethod
    def sum(a, axes: tuple[int, ...]) -> np.ndarray:
        from numbadask import cuda_kernels

        xp = array_module(a)
        return to_numpy(cuda_kernels.sum_float64(plan_walk(a, axes, xp), xp))


KERNELS = [
    pytest.param(CpuKernel, id="cpu"),
    pytest.param(CudaKernel, id="cuda", marks=pytest.mark.cuda_kernels),
]


def check_sum_kernel(kernel, rng: np.random.Generator) -> None:
    """The contract: float64 sums equal NumPy's over every dtype, layout and axis set,
    in the keepdims shape, with NaN/inf propagated and the same bits on every run."""
    for dtype in ALL_DTYPES:
        for name, a in views(kernel.asarray(random_array(rng, (3, 4, 5), dtype))).items():
            host = to_numpy(a)
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    got = kernel.sum(a, axes)
                    want = host.astype(np.float64).sum(axis=axes, keepdims=True)
                    assert got.dtype == np.float64 and got.shape == want.shape
                    np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=f"{dtype} {name} {axes}")
    special = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 3.0], [np.inf, -np.inf, 0.0]])
    got = kernel.sum(kernel.asarray(special), (1,))
    np.testing.assert_array_equal(got.ravel(), [np.nan, np.inf, np.nan])
    x = kernel.asarray(rng.standard_normal(5000))
    assert kernel.sum(x, (0,)).tobytes() == kernel.sum(x, (0,)).tobytes()


@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_kernel_contract(kernel, rng):
    check_sum_kernel(kernel, rng)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_over_many_blocks_and_rows(kernel, rng):
    a = rng.random((37, 1500))
    for axes in [(0,), (1,), (0, 1)]:
        got = kernel.sum(kernel.asarray(a), axes)
        np.testing.assert_allclose(got, a.sum(axis=axes, keepdims=True), rtol=1e-13)


def test_cpu_sum_at_least_as_accurate_as_numpy_pairwise(rng):
    # Values of both signs and many magnitudes: where naive summation loses digits.
    x = rng.standard_normal(1_000_003) * 10.0 ** rng.integers(-8, 8, 1_000_003)
    exact = math.fsum(x)
    ours = abs(CpuKernel.sum(x, (0,))[0] - exact)
    numpy = abs(float(np.sum(x)) - exact)
    assert ours <= numpy


def test_cpu_float32_accumulates_in_float64(rng):
    x = (1e4 + rng.random(2_000_000)).astype(np.float32)
    exact = math.fsum(x.astype(np.float64))
    assert abs(CpuKernel.sum(x, (0,))[0] - exact) / exact < 1e-14


@pytest.mark.cuda_kernels
def test_cuda_kernels_from_many_threads_at_once(rng):
    """Dask's threaded scheduler launches from several threads; the simulator needs
    those launches serialized (the launcher's lock), a GPU takes them as they come."""
    arrays = [rng.random((7, 300)) for _ in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = CudaKernel.sum(CudaKernel.asarray(arrays[i]), (1,))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, a in enumerate(arrays):
        np.testing.assert_allclose(results[i], a.sum(axis=1, keepdims=True), rtol=1e-13)
