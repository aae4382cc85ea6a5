"""The contract every ``sum_float64`` kernel must meet, run on each implementation.

CPU: always.  CUDA: on a GPU, or in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest

from cases import ALL_DTYPES, random_array, views
from numbadask import cpu_kernels
from numbadask.layout import plan_walk


def cpu_sum(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return cpu_kernels.sum_float64(plan_walk(a, axes))


def cuda_sum(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    from numbadask import cuda_kernels, dispatch

    if dispatch.simulator_enabled():
        return cuda_kernels.sum_float64(plan_walk(a, axes), np)
    import cupy

    d = cupy.asarray(a) if a.flags.c_contiguous else cupy.asarray(np.ascontiguousarray(a))
    return cupy.asnumpy(cuda_kernels.sum_float64(plan_walk(d, axes, cupy), cupy))


KERNELS = [
    pytest.param(cpu_sum, id="cpu"),
    pytest.param(cuda_sum, id="cuda", marks=pytest.mark.cuda_kernels),
]


def check_sum_kernel(kernel, rng: np.random.Generator) -> None:
    """The contract: float64 sums equal NumPy's over every dtype, layout and axis set,
    in the keepdims shape, with NaN/inf propagated and the same bits on every run."""
    for dtype in ALL_DTYPES:
        for name, a in views(random_array(rng, (3, 4, 5), dtype)).items():
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    got = kernel(a, axes)
                    want = a.astype(np.float64).sum(axis=axes, keepdims=True)
                    assert got.dtype == np.float64 and got.shape == want.shape
                    np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=f"{dtype} {name} {axes}")
    special = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 3.0], [np.inf, -np.inf, 0.0]])
    np.testing.assert_array_equal(kernel(special, (1,)).ravel(), [np.nan, np.inf, np.nan])
    x = rng.standard_normal(5000)
    assert kernel(x, (0,)).tobytes() == kernel(x, (0,)).tobytes()


@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_kernel_contract(kernel, rng):
    check_sum_kernel(kernel, rng)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_over_many_blocks_and_rows(kernel, rng):
    a = rng.random((37, 1500))
    for axes in [(0,), (1,), (0, 1)]:
        np.testing.assert_allclose(kernel(a, axes), a.sum(axis=axes, keepdims=True), rtol=1e-13)


def test_cpu_sum_at_least_as_accurate_as_numpy_pairwise(rng):
    # Values of both signs and many magnitudes: where naive summation loses digits.
    x = rng.standard_normal(1_000_003) * 10.0 ** rng.integers(-8, 8, 1_000_003)
    exact = math.fsum(x)
    ours = abs(cpu_sum(x, (0,))[0] - exact)
    numpy = abs(float(np.sum(x)) - exact)
    assert ours <= numpy


def test_cpu_float32_accumulates_in_float64(rng):
    x = (1e4 + rng.random(2_000_000)).astype(np.float32)
    exact = math.fsum(x.astype(np.float64))
    assert abs(cpu_sum(x, (0,))[0] - exact) / exact < 1e-14


@pytest.mark.cuda_kernels
def test_cuda_kernels_from_many_threads_at_once(rng):
    """Dask's threaded scheduler launches from several threads; the simulator needs
    those launches serialized (the launcher's lock), a GPU takes them as they come."""
    arrays = [rng.random((7, 300)) for _ in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = cuda_sum(arrays[i], (1,))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arrays))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, a in enumerate(arrays):
        np.testing.assert_allclose(results[i], a.sum(axis=1, keepdims=True), rtol=1e-13)
