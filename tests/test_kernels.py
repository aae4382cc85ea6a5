"""The contract every ``sum_float64`` kernel must meet, run on each implementation.

CPU: always.  CUDA: on a GPU, or in Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""

from __future__ import annotations

import itertools
import math
import threading
import warnings

import numpy as np
import pytest

from cases import ALL_DTYPES, array_module, random_array, to_numpy, views
from numbadask.cpu import args as cpu_kernels
from numbadask.engine import kernels

#: The built-in chunk kernels by name, as the contract checks below call them.
BY_NAME = {k.name: k for k in kernels.BUILT_IN}


class CpuKernel:
    """The CPU ``sum_float64`` on NumPy arrays."""

    asarray = staticmethod(np.asarray)

    @staticmethod
    def run(name: str, a, axes: tuple[int, ...]):
        return BY_NAME[name].cpu(a, axes, (), np)

    @staticmethod
    def argminmax(a, axis, want_max):
        return cpu_kernels.argminmax(a, axis, want_max)

    @classmethod
    def sum(cls, a, axes: tuple[int, ...]) -> np.ndarray:
        return cls.run("sum_float64", a, axes)


class CudaKernel:
    """The CUDA ``sum_float64``: on CuPy arrays on a GPU, on NumPy arrays in the simulator."""

    @staticmethod
    def asarray(a):
        from numbadask.engine import dispatch

        if dispatch.simulator_enabled():
            return np.asarray(a)
        import cupy

        return cupy.asarray(a)

    @staticmethod
    def argminmax(a, axis, want_max):
        from numbadask import cuda_kernels

        return cuda_kernels.argminmax(a, axis, want_max, array_module(a))

    @staticmethod
    def run(name: str, a, axes: tuple[int, ...]):
        xp = array_module(a)
        out = BY_NAME[name].cuda()(a, axes, (), xp)
        return tuple(map(to_numpy, out)) if isinstance(out, tuple) else to_numpy(out)

    @classmethod
    def sum(cls, a, axes: tuple[int, ...]) -> np.ndarray:
        return cls.run("sum_float64", a, axes)


KERNELS = [
    pytest.param(CpuKernel, id="cpu"),
    pytest.param(CudaKernel, id="cuda", marks=pytest.mark.cuda_kernels),
]


#: The dtypes whose contracts run on every layout (:func:`cases.views`) under the
#: simulator; the others run on the C-ordered array, every axis set.  The generated
#: CUDA kernels index memory by the same code whatever the dtype, and convert an element
#: by the same code whatever the layout, so each is checked on every layout by these
#: and each dtype's conversion on every axis set; at ~0.07 s a simulated launch the
#: whole product (12 dtypes x 6 layouts) was most of the simulator step.  On a real GPU
#: and on the CPU every dtype runs on every layout.
LAYOUT_DTYPES = {np.dtype(d) for d in (np.bool_, np.int8, np.uint64, np.float32, np.float64)}


def layouts(kernel, dtype, a) -> dict:
    """The arrays a contract reduces: :func:`cases.views` of ``a``, or under the
    simulator, for a dtype outside :data:`LAYOUT_DTYPES`, ``a`` alone."""
    from numbadask.engine import dispatch

    if kernel is CudaKernel and dispatch.simulator_enabled() and np.dtype(dtype) not in LAYOUT_DTYPES:
        return {"c": a}
    return views(a)


def check_sum_kernel(kernel, rng: np.random.Generator, dtypes=ALL_DTYPES) -> None:
    """The contract: float64 sums equal NumPy's over every dtype, layout and axis set,
    in the keepdims shape, with NaN/inf propagated and the same bits on every run."""
    for dtype in dtypes:
        for name, a in layouts(kernel, dtype, kernel.asarray(random_array(rng, (3, 4, 5), dtype))).items():
            host = to_numpy(a)
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    got = kernel.sum(a, axes)
                    want = host.astype(np.float64).sum(axis=axes, keepdims=True)
                    assert got.dtype == np.float64 and got.shape == want.shape
                    np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=f"{dtype} {name} {axes}")


def check_sum_specials(kernel, rng: np.random.Generator) -> None:
    """NaN/inf propagated as NumPy's sum does; the same bits on every run."""
    special = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 3.0], [np.inf, -np.inf, 0.0]])
    got = kernel.sum(kernel.asarray(special), (1,))
    np.testing.assert_array_equal(got.ravel(), [np.nan, np.inf, np.nan])
    x = kernel.asarray(rng.standard_normal(5000))
    assert kernel.sum(x, (0,)).tobytes() == kernel.sum(x, (0,)).tobytes()


#: Each contract test runs once per dtype: under the simulator one whole contract is
#: minutes, and one test per dtype lets pytest-xdist spread them over the cores.
DTYPES = [pytest.param(d, id=np.dtype(d).name) for d in ALL_DTYPES]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_kernel_contract(kernel, dtype, rng):
    check_sum_kernel(kernel, rng, (dtype,))


@pytest.mark.parametrize("kernel", KERNELS)
def test_sum_kernel_specials(kernel, rng):
    check_sum_specials(kernel, rng)


def check_nansum_kernel(kernel, rng: np.random.Generator) -> None:
    """nansum_float64: the float64 sum of the non-NaN values and their count."""
    for dtype in (np.float16, np.float32, np.float64):
        base = random_array(rng, (3, 4, 5), dtype)
        base[rng.random(base.shape) < 0.3] = np.nan
        base[0, 0] = np.nan  # an all-NaN row
        for name, a in layouts(kernel, dtype, kernel.asarray(base)).items():
            host = to_numpy(a)
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    total, count = kernel.run("nansum_float64", a, axes)
                    want = np.nansum(host.astype(np.float64), axis=axes, keepdims=True)
                    np.testing.assert_allclose(total, want, rtol=1e-13, err_msg=f"{dtype} {name} {axes}")
                    assert count.dtype == np.int64
                    np.testing.assert_array_equal(count, (host == host).sum(axis=axes, keepdims=True))


def check_int_sum_kernel(kernel, rng: np.random.Generator) -> None:
    """sum_int64: exact integer sums, wrapping modulo 2**64 like NumPy's."""
    for dtype in (np.bool_, np.int8, np.uint16, np.int32, np.int64, np.uint64):
        for name, a in layouts(kernel, dtype, kernel.asarray(random_array(rng, (3, 4, 5), dtype))).items():
            host = to_numpy(a)
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    got = kernel.run("sum_int64", a, axes)
                    assert got.dtype == np.int64
                    np.testing.assert_array_equal(got, host.astype(np.int64).sum(axis=axes, keepdims=True))
    big = kernel.asarray(np.array([2**63 + 5, 2**63, 7], dtype=np.uint64))
    assert kernel.run("sum_int64", big, (0,)).view(np.uint64)[0] == np.uint64(12)


def check_minmax_kernel(kernel, rng: np.random.Generator, dtypes=ALL_DTYPES) -> None:
    """minmax: smallest and largest non-NaN values in the input's dtype, NaN counted;
    min_only and max_only: the same count and one of the two values."""
    kept = {"minmax": ("lo", "hi"), "min_only": ("lo",), "max_only": ("hi",)}
    long_row = rng.normal(size=(2, 1001))  # long enough for the vectorized loop bodies
    long_row[0, [3, 500, 999]] = np.nan
    long_row[1, [7, 8]] = [np.inf, -np.inf]
    for dtype in dtypes:
        base = random_array(rng, (3, 4, 5), dtype)
        if base.dtype.kind == "f":
            base[rng.random(base.shape) < 0.3] = np.nan
            base[0, 0] = np.nan
        arrays = layouts(kernel, dtype, kernel.asarray(base))
        if dtype == np.float64:
            arrays["long rows"] = kernel.asarray(long_row)
        for name, a in arrays.items():
            host = to_numpy(a)
            for r in range(host.ndim + 1):
                for axes in itertools.combinations(range(host.ndim), r):
                    with np.errstate(invalid="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        want = {"lo": np.nanmin(host, axis=axes, keepdims=True), "hi": np.nanmax(host, axis=axes, keepdims=True)}
                    for kernel_name, values in kept.items():
                        lo, hi, valid = kernel.run(kernel_name, a, axes)
                        np.testing.assert_array_equal(valid, (host == host).sum(axis=axes, keepdims=True))
                        seen = valid > 0
                        got = {"lo": lo, "hi": hi}
                        for value in values:
                            np.testing.assert_array_equal(
                                got[value].astype(host.dtype)[seen], want[value][seen], err_msg=f"{kernel_name} {dtype} {name} {axes}"
                            )


def check_minmax_edges(kernel, rng: np.random.Generator) -> None:
    """min/max/count of rows whose lengths straddle the CPU vector loop's step (32
    float64 or 64 float32 values, half from each half of the row), with NaN and
    infinities where the vector part and the scalar rest of each half meet."""
    kept = {"minmax": ("lo", "hi"), "min_only": ("lo",), "max_only": ("hi",)}
    for dtype in (np.float32, np.float64):
        for n in (31, 32, 33, 63, 64, 65, 97, 127, 128, 129, 130):
            for pattern in ("plain", "nan", "inf", "all nan"):
                host = rng.normal(size=n).astype(dtype)
                if pattern == "nan":
                    host[[n // 2 - 1, n // 2, n - 1]] = np.nan
                elif pattern == "inf":
                    host[[0, n // 2, n - 1]] = [-np.inf, np.inf, np.nan]
                elif pattern == "all nan":
                    host[:] = np.nan
                valid_want = int((host == host).sum())
                for kernel_name, values in kept.items():
                    lo, hi, valid = kernel.run(kernel_name, kernel.asarray(host), (0,))
                    assert int(to_numpy(valid).ravel()[0]) == valid_want, (kernel_name, dtype, n, pattern)
                    got = {"lo": to_numpy(lo).ravel()[0], "hi": to_numpy(hi).ravel()[0]}
                    if valid_want:
                        want = {"lo": np.nanmin(host), "hi": np.nanmax(host)}
                        for value in values:
                            assert got[value] == want[value], (kernel_name, dtype, n, pattern, value)


def check_moments_kernel(kernel, rng: np.random.Generator, dtypes=ALL_DTYPES) -> None:
    """shifted_moments(_minmax): count of non-NaN values, a shift taken from the data,
    sum(x - K), sum((x - K)**2) (and min/max), from which mean and var follow."""
    for dtype in dtypes:
        base = random_array(rng, (3, 4, 5), dtype)
        if base.dtype.kind == "f":
            base[rng.random(base.shape) < 0.3] = np.nan
            base[0, 0] = np.nan
        for name, a in layouts(kernel, dtype, kernel.asarray(base)).items():
            host = to_numpy(a).astype(np.float64)
            for r in range(4):
                for axes in itertools.combinations(range(3), r):
                    count, shift, s1, s2, lo, hi = kernel.run("shifted_moments_minmax", a, axes)
                    plain = kernel.run("shifted_moments", a, axes)
                    for got, want in zip(plain, (count, shift, s1, s2)):
                        np.testing.assert_array_equal(got, want)
                    np.testing.assert_array_equal(count, (host == host).sum(axis=axes, keepdims=True))
                    seen = count > 0
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean = np.nanmean(host, axis=axes, keepdims=True)
                        var = np.nanvar(host, axis=axes, keepdims=True)
                        np.testing.assert_allclose((shift + s1 / count)[seen], mean[seen], rtol=1e-12)
                        np.testing.assert_allclose(((s2 - s1**2 / count) / count)[seen], var[seen], rtol=1e-9, atol=1e-9)
                        np.testing.assert_array_equal(lo[seen], np.nanmin(host, axis=axes, keepdims=True)[seen])


def check_argminmax_kernel(kernel, rng: np.random.Generator, dtypes=ALL_DTYPES) -> None:
    """argminmax: first index of the best non-NaN value and of the first NaN, per row
    of the (outputs, values) view, for axis None or an int, on any layout."""
    for dtype in dtypes:
        base = random_array(rng, (3, 4, 5), dtype)
        if base.dtype.kind == "f":
            base[rng.random(base.shape) < 0.2] = np.nan
            base[0, 0] = np.nan
        base[1, 1, 1:3] = base[1, 1, 0]  # ties
        for name, a in layouts(kernel, dtype, kernel.asarray(base)).items():
            host = to_numpy(a)
            for axis in (None, 0, 1, 2):
                for want_max in (False, True):
                    got = kernel.argminmax(a, axis, want_max)
                    want = cpu_kernels.argminmax(np.ascontiguousarray(host), axis, want_max)
                    for g, w in zip(got, want):
                        np.testing.assert_array_equal(to_numpy(g), w, err_msg=f"{dtype} {name} {axis} {want_max}")
                    index = want[1]
                    rows = cpu_kernels.rows_view(host, axis)
                    finder = np.nanargmax if want_max else np.nanargmin
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        for i, row in enumerate(rows):
                            if (row == row).any():
                                assert index[i] == finder(row.astype(np.float64))


def check_argminmax_long_rows(kernel, rng: np.random.Generator) -> None:
    """Long rows: the block-tree path (short rows get one thread each)."""
    long = rng.random((3, 700))
    long[1, 5] = np.nan
    long[2, 600] = long[2, 601] = -1.0  # a tie: the first one wins
    for axis in (None, 1):
        for want_max in (False, True):
            got = kernel.argminmax(kernel.asarray(long), axis, want_max)
            want = cpu_kernels.argminmax(long, axis, want_max)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(to_numpy(g), w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_argminmax_kernel_contract(kernel, dtype, rng):
    check_argminmax_kernel(kernel, rng, (dtype,))


@pytest.mark.parametrize("kernel", KERNELS)
def test_argminmax_long_rows(kernel, rng):
    check_argminmax_long_rows(kernel, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_moments_kernel_contract(kernel, dtype, rng):
    check_moments_kernel(kernel, rng, (dtype,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_minmax_kernel_contract(kernel, dtype, rng):
    check_minmax_kernel(kernel, rng, (dtype,))


@pytest.mark.parametrize("kernel", KERNELS)
def test_minmax_edges(kernel, rng):
    check_minmax_edges(kernel, rng)


@pytest.mark.parametrize("kernel", KERNELS)
def test_nansum_kernel_contract(kernel, rng):
    check_nansum_kernel(kernel, rng)


@pytest.mark.parametrize("kernel", KERNELS)
def test_int_sum_kernel_contract(kernel, rng):
    check_int_sum_kernel(kernel, rng)


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


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", ["sum_float64", "nansum_float64", "sum_int64", "minmax", "min_only", "max_only", "shifted_moments_minmax"])
def test_tiles_of_rows_give_the_untiled_answer(kernel, name, rng):
    """Square chunks of a C array are rows of a wider array: the walk folds four rows
    side by side (and the rest one by one); the outputs equal those of a contiguous
    copy, across block boundaries and with NaN at row seams."""
    base = rng.normal(size=(2, 7, 1300))
    base[0, 3, [0, 511, 512, 1099]] = np.nan
    if name == "sum_int64":
        base = (base * 1000).astype(np.int64)
    elif name in ("sum_float64", "minmax", "min_only", "max_only"):
        base[1, :, 5] = np.inf
    for view in (base[:, :, :1100], base[:, 1:, 100:1123]):
        for axes in [(1, 2), (0, 1, 2)]:
            got = _comparable(name, kernel.run(name, kernel.asarray(view), axes))
            want = _comparable(name, CpuKernel.run(name, np.ascontiguousarray(view), axes))
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-12, equal_nan=True, err_msg=f"{name} {axes} {view.shape}")


def _comparable(name: str, outputs) -> tuple:
    """A kernel's outputs as host arrays; shifted moments as count, mean, the sum of
    squared deviations, min and max (the shift is the kernel's choice); min_only and
    max_only without the value they do not keep (the GPU keeps both)."""
    outputs = tuple(map(to_numpy, outputs)) if isinstance(outputs, tuple) else (to_numpy(outputs),)
    if name in ("min_only", "max_only"):
        lo, hi, valid = outputs
        return (lo if name == "min_only" else hi, valid)
    if name.startswith("shifted_moments"):
        count, shift, s1, s2, *minmax = outputs
        return (count, shift + s1 / count, s2 - s1 * s1 / count, *minmax)
    return outputs


@pytest.mark.cuda_kernels
def test_every_kernel_has_a_cuda_implementation():
    from numbadask import cuda_kernels

    for k in kernels.BUILT_IN:
        assert k.gpu is not None or k.name in cuda_kernels.LAUNCHERS, k


def _row_by_row_walkers():
    """The built-in walks with the plug-ins' own ``fold_across_rows`` left out: the
    walk as it was, one ``fold_across`` per row."""
    from numbadask.cpu import extremes as cpu_extremes, moments as cpu_moments, sums as cpu_sums
    from numbadask.cpu.walker import instantiate

    s, m, e = cpu_sums, cpu_moments, cpu_extremes
    return {
        "sum": instantiate("test_sum_rows", fold_row=s._sum_row, fold_4_rows=s._sum_4_rows, fold_across=s._sum_across, finish=s._add_compensation, cache=False),
        "nansum": instantiate("test_nansum_rows", fold_row=s._nansum_row, fold_4_rows=s._nansum_4_rows, fold_across=s._nansum_across, finish=s._add_compensation, cache=False),
        "moments": instantiate("test_moments_rows", fold_row=m._moments_row, fold_4_rows=m._moments_4_rows, fold_across=m._moments_across, finish=m._add_compensations, cache=False),
        "minmax": instantiate("test_minmax_rows", fold_row=e._minmax_row, fold_4_rows=e._minmax_4_rows, fold_across=e._minmax_across, cache=False),
    }


def test_rows_folded_across_equal_numpy_and_the_row_by_row_bits(rng):
    """A leading axis reduced with a contiguous tail kept ((time, lat, lon) over time):
    the walk folds four rows at a time into column tiles of the state; the outputs
    equal NumPy's and have the bits of one row after another, across tile seams, with
    NaN (whole columns too) and inf, and with a second reduced axis the walk visits
    apart (a sliced middle axis)."""
    from numbadask.cpu import extremes as cpu_extremes, moments as cpu_moments, sums as cpu_sums
    from numbadask.cpu.layout import plan_walk
    from numbadask.cpu.walker import COLUMN_TILE, run

    old = _row_by_row_walkers()
    width = 2 * COLUMN_TILE + 37
    base = rng.normal(10.0, 3.0, size=(3, 8, width))
    base[rng.random(base.shape) < 0.03] = np.nan
    base[:, :, 5] = np.nan  # a column without a value
    base[0, :2, COLUMN_TILE - 1 : COLUMN_TILE + 2] = np.nan  # first values NaN at a tile seam
    base[1, 3, 9] = np.inf
    cases = [
        (base[0, :7], (0,)),  # 7 rows: one group of four, three single rows
        (base[:, :5], (0, 1)),  # two reduced axes, not mergeable: three visits of five rows
        (base.astype(np.float32)[:, 4:], (0, 1)),
        (base[:, :, 1:], (0,)),  # sliced along the kept tail: the reduced axis moved inward
        (base[:, :5, 2:], (0,)),
    ]
    for a, axes in cases:
        w = plan_walk(a, axes, reduced_inward=True)
        assert w.strides[-1] == 1 and w.out_strides[-1] == 1 and w.out_strides[-2] == 0
        wide = a.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            total = cpu_sums.sum_float64(w)
            np.testing.assert_allclose(total, wide.sum(axis=axes, keepdims=True), rtol=1e-13)
            nansum, count = cpu_sums.nansum_float64(w)
            np.testing.assert_allclose(nansum, np.nansum(wide, axis=axes, keepdims=True), rtol=1e-13)
            np.testing.assert_array_equal(count, (~np.isnan(wide)).sum(axis=axes, keepdims=True))
            n, shift, s1, s2, lo, hi = cpu_moments.shifted_moments_minmax(w)
            np.testing.assert_array_equal(n, count)
            np.testing.assert_allclose(shift + s1 / n, np.nanmean(wide, axis=axes, keepdims=True), rtol=1e-12)
            np.testing.assert_allclose(s2 - s1 * s1 / n, np.nanvar(wide, axis=axes, keepdims=True) * n, rtol=1e-9)
            some = count > 0  # the limits stay where there is no value (finished from the count)
            np.testing.assert_array_equal(lo[some], np.nanmin(a, axis=axes, keepdims=True)[some])
            np.testing.assert_array_equal(hi[some], np.nanmax(a, axis=axes, keepdims=True)[some])
            assert np.isposinf(lo[~some]).all() and np.isneginf(hi[~some]).all()
        size, lo0, hi0 = w.out_size, *cpu_extremes.minmax_limits(a.dtype)
        states = {
            "sum": lambda: ((np.zeros(size), np.zeros(size)), ()),
            "nansum": lambda: ((np.zeros(size), np.zeros(size), np.zeros(size, dtype=np.int64)), ()),
            "moments": lambda: ((np.zeros(size, np.int64), np.zeros(size), np.zeros(size, np.bool_), *(np.zeros(size) for _ in range(4)), np.full(size, lo0), np.full(size, hi0)), (True,)),
            "minmax": lambda: ((np.full(size, lo0), np.full(size, hi0), np.zeros(size, dtype=np.int64)), (cpu_extremes.BOTH,)),
        }
        new = {"sum": cpu_sums._walk_sum, "nansum": cpu_sums._walk_nansum, "moments": cpu_moments._walk_moments, "minmax": cpu_extremes._walk_minmax}
        for name, walker in new.items():
            got, want = run(walker, w, *states[name]()), run(old[name], w, *states[name]())
            for g, o in zip(got, want):
                assert g.tobytes() == o.tobytes(), f"{name} {a.shape} {axes}"


def test_column_kernels_of_two_arrays_equal_the_row_kernels_bits(rng):
    """comoments and weighted sums of (reduced, positions) blocks, a column tile and
    four rows at a time, equal the row kernels on the transposed copies bit for bit
    (both add each position's values in the same order), with NaN pairs, a column
    without a pair, a row count that is not a multiple of four, strided and
    broadcast (stride-0) inputs."""
    from numbadask.cpu import comoments as cc

    width = 2 * 4096 + 19
    for length in (1, 6, 11):
        x = rng.normal(1e4, 1.0, size=(length, width))
        y = 0.5 * x + rng.normal(size=(length, width))
        x[rng.random(x.shape) < 0.05] = np.nan
        y[rng.random(y.shape) < 0.05] = np.nan
        x[:, 3] = np.nan
        x32 = x.astype(np.float32)
        strided = np.repeat(y, 2, axis=1)[:, ::2]
        weights = np.broadcast_to(rng.random(length)[:, None] + 0.5, x.shape)
        for a, b in ((x, y), (x32, y), (x, strided)):
            got = cc.comoments_columns(a, b)
            want = cc.comoments_rows(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T))
            for g, o in zip(got, want):
                assert g.tobytes() == o.tobytes(), (length, a.dtype)
        for a, w in ((x, np.abs(y)), (x32, weights), (x, weights)):
            for skip in (True, False):
                got = cc.weighted_columns(a, w, skip)
                want = cc.weighted_rows(np.ascontiguousarray(a.T), np.ascontiguousarray(w.T), skip)
                for g, o in zip(got, want):
                    assert g.tobytes() == o.tobytes(), (length, a.dtype, skip)
    # and against NumPy on one case
    x = rng.normal(size=(9, 5000))
    y = x + rng.normal(size=(9, 5000))
    n, kx, ky, mx, my, m2x, m2y, cxy = cc.comoments_columns(x, y)
    np.testing.assert_allclose(kx + mx, x.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m2y, ((y - y.mean(0)) ** 2).sum(0), rtol=1e-10)
    np.testing.assert_allclose(cxy, ((x - x.mean(0)) * (y - y.mean(0))).sum(0), rtol=1e-10)


def test_two_array_blocks_read_along_memory_whatever_the_axis_order(rng):
    """A (time, lat, lon) block transposed to (lat, lon, time) and reduced over time
    (xarray's weighted moves the dimension last) goes to the column kernels, along its
    contiguous rows; the answers equal NumPy's and the bits those of a C copy."""
    from numbadask.reductions import comoments, pairs, weighted

    a = rng.normal(5.0, 1.0, size=(9, 4, 6)).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    b = rng.normal(size=(9, 4, 6))
    t, tb = a.transpose(1, 2, 0), b.transpose(1, 2, 0)
    view, rows = pairs.two_d(t, (2,))
    assert not rows and view.shape == (9, 24) and np.shares_memory(view, a)
    w = np.broadcast_to(rng.random(9) + 0.5, t.shape)  # weights along time only
    assert pairs.two_d(w, (2,), rows)[0].shape == (9, 24)
    got = weighted._weighted_chunk(t, w, (2,), skip=True)
    want = weighted._weighted_chunk(np.ascontiguousarray(t), np.ascontiguousarray(w), (2,), skip=True)
    for g, o in zip(got, want):
        assert g.tobytes() == o.tobytes()
    keep = ~np.isnan(t)
    np.testing.assert_allclose(got.swa, np.where(keep, w * t, 0).sum(2, keepdims=True), rtol=1e-12)
    co, co_c = comoments._block_state(t, tb, (2,)), comoments._block_state(np.ascontiguousarray(t), np.ascontiguousarray(tb), (2,))
    for g, o in zip(co[:-1], co_c[:-1]):
        assert g.tobytes() == o.tobytes()
