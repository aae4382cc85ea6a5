"""User-defined reductions (numbadask.reduction) and the shipped examples, against NumPy.

CPU kernels always; CUDA kernels (``cuda_kernels``) in the simulator on tiny arrays or on
a GPU; CuPy chunks (``gpu``) on a real GPU only.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import threading
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numbadask
from cases import array_module, to_numpy
from numbadask import examples


def _logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _nanrange(a, axis=None, keepdims=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(a, axis=axis, keepdims=keepdims) - np.nanmin(a, axis=axis, keepdims=keepdims)


#: Each shipped example and its NumPy reference (``a`` positive: geometric_mean's domain).
REFERENCES = {
    "sum_of_squares": lambda a, **kw: np.sum(a * a, **kw),
    "l2_norm": lambda a, **kw: np.sqrt(np.sum(a * a, **kw)),
    "logsumexp": _logsumexp,
    "geometric_mean": lambda a, **kw: np.exp(np.mean(np.log(a), **kw)),
    "count_above": lambda a, **kw: np.sum(a > 1.5, **kw).astype(np.float64),
    "value_range": _nanrange,
}
PARAMS = {"count_above": {"threshold": 1.5}}


def run_example(name, x, **kwargs):
    return getattr(examples, name)(x, **PARAMS.get(name, {}), **kwargs).compute()


def positive(rng, shape):
    return rng.uniform(0.1, 3.0, size=shape)


@pytest.mark.parametrize("name", list(REFERENCES))
def test_examples_match_numpy(name, rng):
    a = positive(rng, (23, 17))
    a[3, 4] = 1e3  # logsumexp must not overflow
    x = da.from_array(a, chunks=((5, 10, 8), (9, 8)))
    for axis in [None, 0, 1, -1, (0, 1)]:
        for keepdims in (False, True):
            got = run_example(name, x, axis=axis, keepdims=keepdims)
            expected = REFERENCES[name](a, axis=axis, keepdims=keepdims)
            assert got.dtype == np.float64 and got.shape == np.shape(expected)
            np.testing.assert_allclose(got, expected, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(0, 9), min_size=1, max_size=3),
    chunk=st.integers(1, 5),
    dtype=st.sampled_from([np.float64, np.float32, np.float16, np.int16, np.uint8, np.bool_]),
    data=st.data(),
)
def test_sum_of_squares_any_layout(shape, chunk, dtype, data):
    a = (np.arange(np.prod(shape)).reshape(shape) % 7 - 3).astype(dtype)
    view = data.draw(st.sampled_from(["c", "reversed", "transposed"]))
    a = {"c": a, "reversed": a[::-1], "transposed": a.T}[view]
    axis = data.draw(st.one_of(st.none(), st.integers(-a.ndim, a.ndim - 1)))
    keepdims = data.draw(st.booleans())
    got = examples.sum_of_squares(da.from_array(a, chunks=chunk), axis=axis, keepdims=keepdims).compute()
    wide = a.astype(np.float64)
    np.testing.assert_allclose(got, np.sum(wide * wide, axis=axis, keepdims=keepdims), rtol=1e-12)


def test_strided_and_broadcast_chunks(rng):
    a = positive(rng, (6, 40, 10))
    for view in (a[:, ::3, ::-2], np.broadcast_to(a[:, :1], a.shape), a.transpose(2, 0, 1)):
        x = da.from_array(view, chunks=(3, 7, 4))
        for axis in [None, 0, (1, 2), 2]:
            np.testing.assert_allclose(examples.logsumexp(x, axis=axis).compute(), _logsumexp(view, axis=axis), rtol=1e-12)


def test_parameters_are_call_time_keywords(rng):
    a = rng.standard_normal(1000)
    x = da.from_array(a, chunks=300)
    for threshold in (-1.0, 0.0, 0.5, 2):
        assert examples.count_above(x, threshold=threshold).compute() == np.sum(a > threshold)
    assert examples.count_above(x).compute() == np.sum(a > 0.0)  # map's default
    with pytest.raises(TypeError, match="unexpected keyword.*'limit'"):
        examples.count_above(x, limit=1.0)

    @numbadask.reduction(merge=lambda p, q: (p[0] + q[0],), identity=(0.0,))
    def scaled(v, scale):
        return (v * scale,)

    with pytest.raises(TypeError, match="missing parameter 'scale'"):
        scaled(x)
    np.testing.assert_allclose(scaled(x, scale=3).compute(), 3 * a.sum(), rtol=1e-12)


def test_nan_skipped_or_propagated():
    a = np.array([[1.0, np.nan, 4.0], [np.nan, np.nan, np.nan], [2.0, 7.0, -1.0]])
    x = da.from_array(a, chunks=2)
    np.testing.assert_equal(examples.value_range(x, axis=1).compute(), [3.0, np.nan, 8.0])
    got = examples.sum_of_squares(x, axis=1).compute()
    np.testing.assert_equal(got, np.sum(a * a, axis=1))  # NaN propagates when not skipped


def test_empty_slices_finalize_the_identity():
    x = da.zeros((0, 4), chunks=2)
    np.testing.assert_equal(examples.sum_of_squares(x, axis=0).compute(), np.zeros(4))
    np.testing.assert_equal(examples.logsumexp(x, axis=0).compute(), np.full(4, -np.inf))
    np.testing.assert_equal(examples.value_range(x, axis=0).compute(), np.full(4, np.nan))


def test_matches_dask_array_graph_shape_and_split_every(rng):
    a = positive(rng, (64, 8))
    x = da.from_array(a, chunks=(4, 8))
    lazy = examples.l2_norm(x, axis=0, split_every=3)
    assert lazy.shape == (8,) and lazy.dtype == np.float64 and lazy.npartitions == 1
    np.testing.assert_allclose(lazy.compute(), np.linalg.norm(a, axis=0), rtol=1e-12)


def test_kernels_are_built_once_under_threads(rng, monkeypatch):
    red = numbadask.reduction(lambda v: (v,), merge=lambda p, q: (p[0] + q[0],), identity=(0.0,), name="plain_sum")
    builds = []
    original = red._build
    monkeypatch.setattr(red, "_build", lambda backend: builds.append(backend) or original(backend))
    a = rng.standard_normal((40, 40))
    x = da.from_array(a, chunks=5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(red(x, axis=1).compute(scheduler="threads"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["cpu"] and len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, a.sum(axis=1), rtol=1e-12)


def test_pickles_for_process_workers(rng):
    a = positive(rng, (20, 5))
    x = da.from_array(a, chunks=5)
    clone = pickle.loads(pickle.dumps(examples.geometric_mean))
    np.testing.assert_allclose(clone(x, axis=0).compute(), np.exp(np.log(a).mean(axis=0)), rtol=1e-12)
    import cloudpickle  # a reduction made in a function travels by value, without kernels

    local = numbadask.reduction(lambda v: (v * v,), merge=_add, identity=(0.0,), name="local")
    local(x)
    clone = cloudpickle.loads(cloudpickle.dumps(local))
    assert clone._kernels == {} and clone.name == "local"
    np.testing.assert_allclose(clone(x).compute(), np.sum(a * a), rtol=1e-12)
    with dask.config.set(scheduler="processes", num_workers=2):
        np.testing.assert_allclose(examples.l2_norm(x).compute(), np.linalg.norm(a), rtol=1e-12)


def test_cpu_use_never_imports_numba_cuda():
    code = (
        "import sys, numpy as np\n"
        "from numbadask import examples\n"
        "examples.logsumexp(np.arange(6.0).reshape(2, 3), axis=1).compute()\n"
        "print('numba.cuda' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_skipna_counts_nan_as_the_identity(rng):
    a = rng.standard_normal((50, 30))
    a[rng.random(a.shape) < 0.2] = np.nan
    red = numbadask.reduction(lambda v: (v * v, 1.0), merge=lambda p, q: (p[0] + q[0], p[1] + q[1]),
                              identity=(0.0, 0.0), finalize=lambda s: s[0] / s[1], skipna=True, name="nanmeansq")
    x = da.from_array(a, chunks=(20, 7))
    for axis in (None, 0, 1):
        np.testing.assert_allclose(red(x, axis=axis).compute(), np.nanmean(a * a, axis=axis), rtol=1e-12)


# --- bad definitions fail early and clearly -------------------------------------------


def _add(p, q):
    return (p[0] + q[0],)


def test_uncompilable_function_names_itself_and_shows_numba():
    def uses_a_dict(v):
        return ({"v": v}["v"] + object(),)

    red = numbadask.reduction(uses_a_dict, merge=_add, identity=(0.0,))
    with pytest.raises(TypeError, match=r"(?s)map function .*uses_a_dict cannot be compiled by Numba.*Numba says"):
        red(np.ones(3))


def test_wrong_state_arity():
    with pytest.raises(ValueError, match=r"map function .*two must return a state: a tuple of 1 numbers.*got a tuple of 2"):

        @numbadask.reduction(merge=_add, identity=(0.0,))
        def two(v):
            return (v, v)

        two(np.ones(3))

    def scalar(v):
        return v

    with pytest.raises(ValueError, match=r"map function .*scalar must return a state: a tuple of 1 numbers.*got float64"):
        numbadask.reduction(scalar, merge=_add, identity=(0.0,))(np.ones(3))
    with pytest.raises(ValueError, match="merge function .* must return a state: a tuple of 2 numbers.*got a tuple of 1"):
        numbadask.reduction(lambda v: (v, 1.0), merge=_add, identity=(0.0, 0.0))(np.ones(3))
    with pytest.raises(ValueError, match="identity must be a non-empty tuple"):
        numbadask.reduction(lambda v: (v,), merge=_add, identity=0.0)
    with pytest.raises(ValueError, match=r"cannot take \*args"):
        numbadask.reduction(lambda *v: v, merge=_add, identity=(0.0,))


def test_non_associative_merge_warns():
    red = numbadask.reduction(lambda v: (v,), merge=lambda p, q: (p[0] - q[0],), identity=(0.0,), name="minus")
    with pytest.warns(UserWarning, match="'minus'.*must be associative and commutative"):
        red(np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        examples.sum_of_squares(np.ones(3))  # a lawful merge does not warn


def test_bad_finalize():
    def pair(s):
        return (s[0], s[0])

    with pytest.raises(ValueError, match=r"finalize function .*pair must return one number"):
        numbadask.reduction(lambda v: (v,), merge=_add, identity=(0.0,), finalize=pair)(np.ones(3))

    def uses_a_set(s):
        return len({s[0], "x"})

    with pytest.raises(TypeError, match=r"(?s)finalize function .*uses_a_set cannot be compiled.*Numba says"):
        numbadask.reduction(lambda v: (v,), merge=_add, identity=(0.0,), finalize=uses_a_set)(np.ones(3))


def test_gpu_without_gpu_or_simulator_fails_in_the_client():
    from numbadask.engine import dispatch

    if dispatch.gpu_unavailable_reason() is None:
        pytest.skip("a GPU (or the simulator) is usable here")
    with pytest.raises(numbadask.GPUUnavailableError):
        examples.sum_of_squares(np.ones(3), device="gpu")


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3", "datetime64[s]"])
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="supports bool, integer and float16/32/64"):
        examples.sum_of_squares(np.zeros(3, dtype=dtype))


# --- the CUDA kernels (simulator: tiny arrays) and CuPy chunks --------------------------


@pytest.mark.cuda_kernels
@pytest.mark.parametrize("name", list(REFERENCES))
def test_examples_cuda_kernels_match_numpy(name, rng):
    a = positive(rng, (9, 70))
    a[1, 2] = np.nan if name == "value_range" else a[1, 2]
    x = da.from_array(a, chunks=(5, 70))
    for axis in [None, 0, 1]:
        got = to_numpy(run_example(name, x, axis=axis, device="gpu"))
        np.testing.assert_allclose(got, REFERENCES[name](a, axis=axis), rtol=1e-12)


@pytest.mark.cuda_kernels
def test_cuda_kernels_on_strided_views_with_parameters(rng):
    a = rng.standard_normal((8, 12, 6))
    view = a[::-1, ::2]
    x = da.from_array(view, chunks=(4, 6, 3))
    for axis in [(0, 1), 2]:
        got = to_numpy(examples.count_above(x, axis=axis, threshold=0.3, device="gpu").compute())
        np.testing.assert_array_equal(got, np.sum(view > 0.3, axis=axis))


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(REFERENCES))
def test_examples_on_cupy_chunks_stay_on_gpu(name, rng):
    import cupy

    a = positive(rng, (300, 257))
    x = da.from_array(cupy.asarray(a), chunks=(100, 128), asarray=False)
    for axis in [None, 0, 1]:
        got = run_example(name, x, axis=axis)
        assert array_module(got) is cupy
        np.testing.assert_allclose(to_numpy(got), REFERENCES[name](a, axis=axis), rtol=1e-11)


def test_kernels_are_built_at_the_first_call_not_at_definition():
    red = numbadask.reduction(lambda v: (v,), merge=_add, identity=(0.0,))
    assert red._kernels == {}
    lazy = red(np.array([3.0, 4.0]))  # the first call checks the definition in the client
    assert list(red._kernels) == ["cpu"]
    assert math.isclose(float(lazy.compute()), 7.0)


# --- any failure of a user's function at the first call names it (issue 26) ---------


def _uses_linalg(v):
    return (np.linalg.svd(np.ones((2, 2)))[1][0] * v,)


def _parses_text(v):
    return (float(str(v)),)


def _merge_refuses(a, b):
    if a[0] + b[0] > 0.0:
        raise ValueError("merge refused")
    return (a[0] + b[0],)


def _finalize_refuses(s):
    if s[0] > 0.0:
        raise ZeroDivisionError("finalize refused")
    return s[0]


@pytest.mark.parametrize(
    "role, func, original",
    [
        ("map", _parses_text, ValueError),  # compiles; fails when run on the check values
        ("merge", _merge_refuses, ValueError),
        ("finalize", _finalize_refuses, ZeroDivisionError),
    ],
)
def test_a_users_function_that_fails_when_checked_is_a_type_error_naming_it(role, func, original):
    functions = {"map": lambda v: (v,), "merge": _add, role: func}
    red = numbadask.reduction(functions.pop("map"), **functions, identity=(0.0,), name="mine")
    with pytest.raises(TypeError, match=rf"numbadask.reduction 'mine': {role} function .*{func.__name__}.*{original.__name__}") as info:
        red(np.ones(3))
    assert isinstance(info.value.__cause__, original)


def test_a_users_function_that_fails_to_compile_for_any_reason_is_a_type_error_naming_it():
    """Numba raises more than NumbaError while compiling: np.linalg without SciPy is an
    ImportError."""
    red = numbadask.reduction(_uses_linalg, merge=_add, identity=(0.0,), name="svd")
    try:
        import scipy  # noqa: F401
    except ImportError:
        with pytest.raises(TypeError, match=r"(?s)numbadask.reduction 'svd': map function .*_uses_linalg cannot be compiled.*ImportError.*scipy") as info:
            red(np.ones(3))
        assert isinstance(info.value.__cause__, ImportError)
    else:
        assert red(np.ones(3)).compute() > 0  # with SciPy it compiles


def test_a_wrong_arity_state_stays_a_value_error():
    with pytest.raises(ValueError, match="map function .* must return a state"):
        numbadask.reduction(lambda v: (v, v), merge=_add, identity=(0.0,))(np.ones(3))
