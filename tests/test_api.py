"""``numbadask.mean`` against NumPy (the reference) and dask.array (same dtype/shape)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbadask
from cases import ALL_DTYPES, DASK_NAMES, QUERY_PLANNING, REFERENCES, assert_matches, legacy_dask_only, random_array
from numbadask.reductions.registry import REGISTRY

# np.exceptions is NumPy >= 1.25; ci/test_floors.sh runs these tests at the NumPy floor.
AxisError = getattr(np, "exceptions", np).AxisError

# Devices every test of the API runs on: the CPU kernels, and the CUDA kernels where
# they can run (a GPU, or the simulator: then `device="gpu"` reduces NumPy chunks).
DEVICES = [
    pytest.param("auto", id="auto"),
    pytest.param("cpu", id="cpu"),
    pytest.param("gpu", id="gpu", marks=pytest.mark.cuda_kernels),
]


@st.composite
def chunked_arrays(draw, max_dims: int = 3, max_side: int = 9):
    """A NumPy array and a chunking of it: irregular, single-element and empty chunks."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims)))
    chunks = []
    for n in shape:
        sizes, left = [], n
        while left > 0:
            sizes.append(draw(st.integers(1, left)))
            left -= sizes[-1]
        if draw(st.booleans()) and sizes:
            sizes.insert(draw(st.integers(0, len(sizes))), 0)  # a zero-size chunk
        chunks.append(tuple(sizes) or (0,))
    dtype = draw(st.sampled_from(ALL_DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = np.asarray(random_array(rng, shape, dtype))
    if a.dtype.kind == "f" and a.ndim:
        nan_fraction = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
        a[rng.random(shape) < nan_fraction] = np.nan
    return a, tuple(chunks)


@st.composite
def axes_for(draw, ndim: int):
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.sets(st.integers(0, ndim - 1)))
    return tuple(p - ndim if draw(st.booleans()) else p for p in sorted(picked))


FUNCTIONS = list(REFERENCES)


def check_reduction(name, a, chunks, axis, keepdims, device, split_every=None):
    """numbadask.<name> against the NumPy reference (values) and dask.array (dtype, shape)."""
    x = da.from_array(a, chunks=chunks)
    try:
        expected = REFERENCES[name](a, axis=axis, keepdims=keepdims)
    except (ValueError, TypeError) as error:
        # NumPy refuses (min of an empty axis, ptp of bool): so must we, same type.
        with pytest.raises(type(error)):
            getattr(numbadask, name)(x, axis=axis, keepdims=keepdims, device=device).compute()
        return
    lazy = getattr(numbadask, name)(x, axis=axis, keepdims=keepdims, device=device, split_every=split_every)
    assert lazy.dtype == np.asarray(expected).dtype
    assert lazy.shape == np.shape(expected)
    # Under query planning dask.array lacks var, std and the arg-reductions, and its
    # expressions' dtypes are not NumPy's (max of bool: int64): NumPy is the reference.
    if DASK_NAMES[name] and not QUERY_PLANNING:
        try:
            reference = getattr(da, DASK_NAMES[name])(x, axis=axis, keepdims=keepdims)
        except ValueError:
            reference = None  # dask.array refuses some empty cases that NumPy allows
        if reference is not None:
            assert lazy.dtype == reference.dtype and lazy.shape == reference.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = lazy.compute()
    assert_matches(got, expected)


def check_mean(a, chunks, axis, keepdims, device, split_every=None):
    check_reduction("mean", a, chunks, axis, keepdims, device, split_every)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", FUNCTIONS)
@given(case=chunked_arrays(), data=st.data(), keepdims=st.booleans())
def test_matches_numpy(name, device, case, data, keepdims):
    a, chunks = case
    check_reduction(name, a, chunks, data.draw(axes_for(a.ndim)), keepdims, device)


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=4 * settings().max_examples)
@given(
    case=chunked_arrays(max_dims=4, max_side=12),
    data=st.data(),
    keepdims=st.booleans(),
    split_every=st.sampled_from([None, 2, 3, 8]),
    specials=st.sampled_from([(), (np.inf,), (-np.inf,), (np.inf, -np.inf, np.nan)]),
)
def test_fuzz_every_function(name, case, data, keepdims, split_every, specials):
    """The larger budget: 4-d, +-inf among the NaNs, any tree depth (CPU kernels)."""
    a, chunks = case
    if a.dtype.kind == "f" and a.size and specials:
        rng = np.random.default_rng(a.size)
        a.reshape(-1)[rng.integers(0, a.size, 1 + a.size // 5)] = rng.choice(specials, 1 + a.size // 5)
    check_reduction(name, a, chunks, data.draw(axes_for(a.ndim)), keepdims, "auto", split_every)


def every_dtype_cases():
    """``(name, dtype, device)`` of :func:`test_every_dtype_every_axis`: every function
    on every dtype on the CPU kernels ("auto", "cpu"); on the CUDA kernels ("gpu") the
    first function of each (chunk kernel, dtype).  The functions that share a kernel
    (mean and sum of floats, var/std/nanvar/nanstd, min and nanmin, ...) run it on the
    same chunks and differ only in the finish on the host, the same code the CPU cases
    check; under the simulator each case is ~3.5 s, so each kernel runs once per dtype."""
    seen = set()
    for name in FUNCTIONS:
        for dtype in ALL_DTYPES:
            for device in ("auto", "cpu", "gpu"):
                if device == "gpu":
                    kernel = REGISTRY[name].kernel(np.dtype(dtype)).name
                    if (kernel, dtype) in seen:
                        continue
                    seen.add((kernel, dtype))
                marks = [pytest.mark.cuda_kernels] if device == "gpu" else []
                yield pytest.param(name, dtype, device, marks=marks, id=f"{name}-{np.dtype(dtype).name}-{device}")


@pytest.mark.parametrize(("name", "dtype", "device"), list(every_dtype_cases()))
def test_every_dtype_every_axis(name, device, dtype, rng):
    a = random_array(rng, (5, 7, 6), dtype)
    if a.dtype.kind == "f":
        a[rng.random(a.shape) < 0.2] = np.nan
        a[0, 0, :] = np.nan  # an all-NaN slice along the last axis
    # On the CUDA kernels four blocks, not eight: the same shapes of chunk (a size-1 axis,
    # rows cut from longer ones), half the simulated launches; the merges are host code.
    chunks = ((2, 3), (7,), (1, 5)) if device == "gpu" else ((2, 3), (4, 3), (1, 5))
    for axis in [None, 0, 1, -1, (0, 2), (-3, -2), (0, 1, 2), ()]:
        check_reduction(name, a, chunks, axis, False, device)
    check_reduction(name, a, chunks, (1,), True, device)


@pytest.mark.parametrize("device", DEVICES)
def test_deep_tree_reduction(device, rng):
    a = rng.standard_normal((40, 30))
    # The tree is merged on the host, whatever the device: the CUDA kernels (140 chunks,
    # ~0.07 s each under the simulator) need one tree to be checked in, not three.
    for split_every in [2, 3, {0: 2, 1: 4}][: 1 if device == "gpu" else 3]:
        check_mean(a, (3, 4), None, False, device, split_every=split_every)
        check_mean(a, (3, 4), 0, True, device, split_every=split_every)


@pytest.mark.parametrize("device", DEVICES)
def test_nan_and_inf_propagate(device):
    a = np.array([[1.0, np.nan, 3.0], [np.inf, 2.0, 1.0], [np.inf, -np.inf, 0.0], [1.0, 2.0, 3.0]])
    check_mean(a, (2, 2), 1, False, device)
    check_mean(a, (2, 2), None, False, device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.float16, np.bool_])
@pytest.mark.parametrize("name", ["sum", "nansum", "mean", "nanmean"])
def test_dtype_argument_like_numpy(name, dtype, rng):
    """Float dtype=: NumPy's result dtype, values accumulated in float64. Integer or bool
    dtype=: NumPy casts each element first (sum([0.5, 0.5], dtype=int) == 0); so do we."""
    a = (rng.random((6, 4)) * 10).astype(np.float32)
    a[1, 1] = np.nan if name.startswith("nan") else 1.5
    if np.dtype(dtype).kind in "biu" and name == "nanmean":
        # NumPy refuses an integer dtype= here ("inexact"); dask.array answers, and
        # numbadask hands the call to it (issue 17: dask.array's answer where it has one).
        x = da.from_array(a, chunks=3)
        np.testing.assert_array_equal(numbadask.nanmean(x, axis=0, dtype=dtype).compute(), da.nanmean(x, axis=0, dtype=dtype).compute())
        return
    if np.dtype(dtype).kind in "biu":
        a[1, 1] = 1.5
        expected = getattr(np, name)(a, axis=0, dtype=dtype)
    else:
        wide = getattr(np, name)(a.astype(np.float64), axis=0)
        expected = wide.astype(getattr(np, name)(a, axis=0, dtype=dtype).dtype)
    got = getattr(numbadask, name)(da.from_array(a, chunks=3), axis=0, dtype=dtype).compute()
    assert_matches(got, expected)


def test_float32_mean_is_accumulated_in_float64(rng):
    a = (1e4 + rng.random(1_000_000)).astype(np.float32)
    exact = a.astype(np.float64).mean()
    got = numbadask.mean(da.from_array(a, chunks=250_000), dtype=np.float64).compute()
    assert abs(got - exact) / exact < 1e-14
    assert abs(np.mean(a, dtype=np.float32) - exact) / exact > 1e-8  # NumPy's float32 path


def test_numpy_input_is_wrapped():
    a = np.arange(10.0)
    out = numbadask.mean(a)
    assert isinstance(out, da.Array)
    assert out.compute() == 4.5


def test_result_is_lazy_and_named():
    x = da.ones((4, 4), chunks=2)
    out = numbadask.mean(x, axis=1)
    assert isinstance(out, da.Array) and out.name.startswith("mean-numbadask-")
    assert out.chunks == ((2, 2),)


def test_same_graph_name_for_same_call():
    x = da.ones((4, 4), chunks=2)
    assert numbadask.mean(x, axis=0).name == numbadask.mean(x, axis=0).name


@pytest.mark.parametrize("scheduler", ["threads", "processes", "sync"])
def test_every_local_scheduler(scheduler, rng):
    a = rng.random((50, 20))
    x = da.from_array(a, chunks=(10, 7))
    with dask.config.set(scheduler=scheduler):
        got = numbadask.mean(x, axis=0).compute()
    assert_matches(got, a.mean(axis=0))


def test_empty_mean_warns_like_numpy():
    x = da.zeros((0, 3), chunks=2)
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        got = numbadask.mean(x, axis=0).compute()
    assert np.isnan(got).all() and got.shape == (3,)
    # No warning where NumPy gives none: reducing a non-empty axis of an empty array.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert numbadask.mean(da.zeros((3, 0), chunks=2), axis=0).compute().shape == (0,)


def test_zero_dimensional_input():
    assert numbadask.mean(da.from_array(np.float32(2.5))).compute() == np.float32(2.5)


@pytest.mark.parametrize(
    "bad, kwargs, error, match",
    [
        (np.ones((2, 3)), {"axis": 2}, AxisError, "axis 2 is out of bounds"),
        (np.ones((2, 3)), {"axis": -3}, AxisError, "axis -3 is out of bounds"),
        (np.ones((2, 3)), {"axis": (0, -2)}, ValueError, "repeated axis"),
        (np.ones((2, 3)), {"axis": 1.0}, TypeError, "float is not an integer"),
        (np.ones((2, 3)), {"axis": [0]}, TypeError, "list is not an integer"),
        (np.ones((2, 3)), {"device": "tpu"}, ValueError, "'tpu'"),
    ],
)
def test_bad_input_raises_clearly(bad, kwargs, error, match):
    """Dtypes without a kernel are not bad input: dask.array answers them (test_handoff.py)."""
    with pytest.raises(error, match=match):
        numbadask.mean(bad, **kwargs)


def test_gpu_without_gpu_or_simulator_says_what_to_do():
    code = (
        "import numbadask, numpy as np\n"
        "try:\n"
        "    numbadask.mean(np.ones(3), device='gpu')\n"
        "except numbadask.GPUUnavailableError as e:\n"
        "    print('ERROR', e)\n"
    )
    env = {"NUMBA_ENABLE_CUDASIM": "0", "CUDA_VISIBLE_DEVICES": ""}
    import os

    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("ERROR device='gpu'")
    assert "NUMBA_ENABLE_CUDASIM=1" in out and "numbadask[cuda12]" in out


def test_auto_never_needs_a_gpu():
    code = "import numbadask, numpy as np; print(float(numbadask.mean(np.ones(3)).compute()))"
    import os

    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.0"


def test_nanmean_of_all_nan_slice_warns_like_numpy():
    a = np.array([[np.nan, np.nan], [1.0, np.nan]])
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        got = numbadask.nanmean(da.from_array(a, chunks=1), axis=1).compute()
    np.testing.assert_array_equal(got, [np.nan, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nansum and count never warn
        np.testing.assert_array_equal(numbadask.nansum(a, axis=1).compute(), [0.0, 1.0])
        np.testing.assert_array_equal(numbadask.count(a, axis=1).compute(), [0, 1])


@pytest.mark.parametrize("device", DEVICES)
def test_integer_sums_are_exact_and_wrap_like_numpy(device):
    a = np.array([2**62, 2**62, 2**62, 3], dtype=np.int64)  # overflows int64
    x = da.from_array(a, chunks=2)
    with np.errstate(over="ignore"):
        assert numbadask.sum(x, device=device).compute() == a.sum()
    big = np.array([2**53 + 1, 1], dtype=np.int64)  # not exact in float64
    assert numbadask.sum(da.from_array(big, chunks=1), device=device).compute() == 2**53 + 2
    u = np.array([2**64 - 1, 2], dtype=np.uint64)
    assert numbadask.sum(da.from_array(u, chunks=1), device=device).compute() == u.sum()
    assert numbadask.sum(np.ones(5, dtype=bool), device=device).compute().dtype == np.int64


def test_count_of_integers_is_the_slice_length():
    got = numbadask.count(da.ones((4, 6), dtype=np.int16, chunks=3), axis=0).compute()
    np.testing.assert_array_equal(got, [4] * 6)
    assert got.dtype == np.int64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["var", "std", "nanvar", "nanstd"])
def test_ddof_like_numpy(name, device, rng):
    """Any finite real ddof, as NumPy takes it: negative, fractional, past the count;
    on empty slices (a negative ddof gives 0 there) and on integers, whose nan-variants
    follow var's rules in NumPy.  moments gives the same numbers."""
    a = rng.standard_normal((6, 5))
    a[2, 3] = np.nan
    arrays = [a, np.empty((0, 5)), np.arange(30, dtype=np.int32).reshape(6, 5)]
    for data in arrays:
        x = da.from_array(data, chunks=(4, 2))
        # ddof is applied on the host when the states are finished: the CUDA kernels
        # need one ddof and one past the count, not every kind of number.
        for ddof in (1, 9) if device == "gpu" else (0, 1, 2, 6, 9, -1, 0.5, 5.5, np.float32(2.5), np.int8(-2)):
            got = getattr(numbadask, name)(x, axis=0, ddof=ddof, device=device)
            moment = getattr(numbadask.moments(x, axis=0, ddof=ddof, skipna=name.startswith("nan"), device=device), name.removeprefix("nan"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                want = getattr(np, name)(data, axis=0, ddof=ddof)
                assert_matches(got.compute(), want)
                np.testing.assert_allclose(moment.compute(), want, rtol=1e-12, err_msg=f"moments ddof={ddof}")


@pytest.mark.parametrize(
    "ddof, error", [("1", TypeError), (True, TypeError), (None, TypeError), (np.nan, ValueError), (np.inf, ValueError)]
)
def test_bad_ddof_is_refused(ddof, error):
    with pytest.raises(error, match="ddof must be a finite real number"):
        numbadask.var(np.ones(3), ddof=ddof)


def test_too_few_values_warn_like_numpy():
    with pytest.warns(RuntimeWarning, match="Degrees of freedom <= 0"):
        assert np.isnan(numbadask.var(np.ones(1), ddof=1).compute())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sum", "nansum", "mean", "nanmean"])
def test_dtype_argument_wraps_and_casts_like_numpy(name, device):
    """NumPy casts each element to dtype= and adds in it: a float dtype= keeps a large
    integer sum from wrapping around; an integer dtype= makes mean a wrapped integer
    sum divided by the count; nansum counts NaN as 0 before an integer cast."""
    rng = np.random.default_rng(11)
    inputs = [
        rng.integers(-(2**62), 2**62, 40),
        rng.integers(0, 255, 40).astype(np.uint8),
        np.where(rng.random(40) < 0.2, np.nan, rng.normal(3, 10, 40)),
        rng.random(40) < 0.5,
    ]
    for a in inputs:
        for dtype in (np.int8, np.uint8, np.int64, np.float32, np.float64, bool):
            try:
                want = getattr(np, name)(a, dtype=dtype)
            except TypeError:  # NumPy's nanmean of floats wants a float dtype=; dask answers
                x = da.from_array(a, chunks=7)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    got = getattr(numbadask, name)(x, dtype=dtype, device=device).compute()
                    want = getattr(da, name)(x, dtype=dtype).compute()
                np.testing.assert_array_equal(got, want)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                got = getattr(numbadask, name)(da.from_array(a, chunks=7), dtype=dtype, device=device).compute()
            assert type(got) is type(want), (a.dtype, dtype)
            np.testing.assert_allclose(float(got), float(want), rtol=1e-6, err_msg=f"{a.dtype} dtype={dtype}")


def test_full_reductions_give_numpy_scalars_like_numpy():
    """json.dumps, isinstance(v, float) and the like work as on NumPy's results."""
    import json

    a = np.arange(6.0).reshape(2, 3)
    x = da.from_array(a, chunks=1)
    for name in [name for name in REFERENCES if name != "count"]:  # count: no NumPy function
        got, want = getattr(numbadask, name)(x).compute(), getattr(np, name)(a)
        assert type(got) is type(want), name
    assert isinstance(numbadask.count(x).compute(), np.int64)
    assert all(isinstance(v, np.generic) for v in dask.compute(*numbadask.moments(x)))
    assert json.dumps(float(numbadask.mean(x).compute())) == json.dumps(numbadask.mean(x).compute())
    assert type(numbadask.sum(x, keepdims=True).compute()) is np.ndarray  # as np.sum(a, keepdims=True)
    assert type(numbadask.moments(x, keepdims=True).mean.compute()) is np.ndarray


def _warning_texts(func) -> set[str]:
    """The texts of the RuntimeWarnings ``func()`` gives, less floating-point error
    reports (NumPy words those after the operation that met the NaN or zero)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        func()
    texts = {str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)}
    return {t for t in texts if not t.startswith(("invalid value", "divide by zero"))}


@pytest.mark.parametrize(
    ("name", "a", "kwargs"),
    [
        ("mean", np.empty(0), {}),
        ("nanmean", np.full(3, np.nan), {}),
        ("var", np.ones(2), {"ddof": 3}),
        ("std", np.ones(2), {"ddof": 2}),
        ("nanvar", np.array([1.0, np.nan]), {"ddof": 1}),
        ("nanstd", np.full(2, np.nan), {}),
        ("nanmin", np.full((2, 2), np.nan), {"axis": 0}),
        ("nanmax", np.array([[np.nan, 1.0], [np.nan, 2.0]]), {"axis": 0}),
    ],
)
def test_warnings_are_numpys_word_for_word(name, a, kwargs):
    want = _warning_texts(lambda: getattr(np, name)(a, **kwargs))
    assert want, "the case should make NumPy warn"
    assert _warning_texts(lambda: getattr(numbadask, name)(da.from_array(a, chunks=1), **kwargs).compute()) == want


@pytest.mark.parametrize("device", DEVICES)
def test_var_on_a_large_offset_is_as_accurate_as_numpy(device):
    """1e9 + U(0, 1) over 16 chunks: where a naive sum of squares has no digits left.
    The reference is exact (rational arithmetic): a float64 mean of such data is itself
    off by up to half an ulp of 1e9, enough to move a two-pass result by ~4e-14."""
    from fractions import Fraction

    x = 1e9 + np.random.default_rng(7).random(40_000 if device != "gpu" else 16_000)
    shift = Fraction(x[0])
    deviations = [Fraction(v) - shift for v in x]
    s1 = sum(deviations)
    exact = float((sum(d * d for d in deviations) - s1 * s1 / len(x)) / len(x))
    ours = float(numbadask.var(da.from_array(x, chunks=x.size // 16), device=device).compute())
    numpy_error = abs(float(np.var(x)) - exact) / exact
    assert abs(ours - exact) / exact <= max(numpy_error, 1e-14)
    naive = (np.sum(x * x) - np.sum(x) ** 2 / x.size) / x.size
    assert abs(naive - exact) / exact > 1e-3  # what a sum of squares would give


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("skipna", [False, True])
def test_moments_match_numpy(device, skipna, rng):
    a = rng.standard_normal((30, 20)) + 100
    a[rng.random(a.shape) < 0.1] = np.nan
    a[:, 3] = np.nan
    x = da.from_array(a, chunks=(7, 6))
    for axis in (None, 0, 1):
        m = numbadask.moments(x, axis=axis, ddof=1, skipna=skipna, device=device)
        got = dict(zip(m._fields, dask.compute(*m)))
        prefix = "nan" if skipna else ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = {
                "count": np.sum(~np.isnan(a), axis=axis),
                "sum": getattr(np, prefix + "sum")(a, axis=axis),
                "mean": getattr(np, prefix + "mean")(a, axis=axis),
                "var": getattr(np, prefix + "var")(a, axis=axis, ddof=1),
                "std": getattr(np, prefix + "std")(a, axis=axis, ddof=1),
                "min": getattr(np, prefix + "min")(a, axis=axis),
                "max": getattr(np, prefix + "max")(a, axis=axis),
            }
        for field, want in expected.items():
            np.testing.assert_allclose(np.asarray(got[field]), want, rtol=1e-10, err_msg=f"{field} axis={axis}")


@legacy_dask_only
def test_moments_read_the_data_once(monkeypatch):
    """All seven results share the chunk tasks: one kernel run per chunk in all."""
    from numbadask.engine import definition

    x = da.from_array(np.random.default_rng(3).random((40, 40)), chunks=10)
    m = numbadask.moments(x, axis=0)
    runs = []
    kernel = definition.run_kernel
    monkeypatch.setattr(definition, "run_kernel", lambda *args: runs.append(1) or kernel(*args))
    assert all(v.shape == (40,) for v in dask.compute(*m))
    assert len(runs) == x.npartitions
