"""What numbadask hands to dask.array, and the dask.array behaviours it matches.

One table of (chunk type, dtype) cases numbadask has no kernel for: each public function
must give dask.array's own answer (or raise its error), and NumPy's where NumPy defines
one.  A wrong number here is the worst defect the library can have: these would be
reduced as plain data if the hand-off were missing.
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest

import numbadask
from cases import legacy_dask_only
from numbadask.engine import checks, handoff


class Tagged(np.ndarray):
    """A plain ndarray subclass carrying extra data (a unit) through every operation."""

    def __new__(cls, values, unit="m"):
        obj = np.asarray(values).view(cls)
        obj.unit = unit
        return obj

    def __array_finalize__(self, obj):
        self.unit = getattr(obj, "unit", None)


_MASKED = np.ma.masked_array([[1.0, 50.0, 3.0, -7.0], [4.0, 2.0, 9.0, 100.0]], mask=[[0, 1, 0, 0], [0, 0, 0, 1]])
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix's own
    _MATRIX = np.matrix([[1.0, 5.0, 3.0], [4.0, 2.0, 9.0]])
_MASKED_INT = np.ma.masked_array(np.arange(8).reshape(2, 4), mask=[[1, 0, 0, 0], [0, 0, 0, 1]])

# (case, input, NumPy's reference for the same data or None where NumPy's answer is not
# the one to compare with (masked: np.ma's, in the reference column))
CASES = [
    ("complex128", np.array([[1 + 2j, 3 - 1j, -2 + 0.5j], [0.25j, 4 + 0j, -1 - 1j]]), True),
    ("complex64", np.array([[1 + 2j, 3 - 1j, -2 + 0.5j], [0.25j, 4 + 0j, -1 - 1j]], dtype=np.complex64), True),
    ("datetime64", np.array([["2020-01-03", "2021-06-01", "2019-12-31"], ["2020-02-02", "2022-01-01", "2020-01-01"]], dtype="M8[D]"), True),
    ("timedelta64", np.array([[5, -3, 7], [2, 11, 0]], dtype="m8[s]"), True),
    ("object", np.array([[1, 5, 3], [4, 2, 9]], dtype=object), True),
    ("masked float", _MASKED, True),
    ("masked int", _MASKED_INT, True),
    ("ndarray subclass", Tagged(np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 9.0]])), True),
    ("np.matrix", _MATRIX, False),  # dask.array refuses it (matrix.sum takes no keepdims): so do we
]
FUNCTIONS = ["sum", "mean", "min", "max", "var", "std", "argmin", "argmax", "nansum", "nanmax", "ptp"]
AXES = [None, 0, 1]


def _dask_answer(name, x, **kwargs):
    """dask.array's own function, not whatever may replace dask.array.<name>."""
    if name == "ptp":
        kw = {k: v for k, v in kwargs.items() if k != "keepdims"}
        return handoff.dask_function("max")(x, **kw) - handoff.dask_function("min")(x, **kw)
    return handoff.dask_function(name)(x, **kwargs)


def _numpy_answer(name, data, axis):
    module = np.ma if isinstance(data, np.ma.MaskedArray) else np
    func = getattr(module, name if name != "ptp" else "ptp", None) or getattr(np, name)
    return func(data, axis=axis)


def _outcome(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "value", dask.compute(make())[0]
        except Exception as error:  # noqa: BLE001 - the error is the answer to match
            return "error", type(error)


def _assert_same(got, want, case):
    if isinstance(want, np.ma.MaskedArray) or isinstance(got, np.ma.MaskedArray):
        np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want), err_msg=case)
        got, want = np.ma.filled(got, 0), np.ma.filled(want, 0)
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, case
    if got.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=case)
    else:
        np.testing.assert_array_equal(got, want, err_msg=case)


@pytest.mark.parametrize("axis", AXES, ids=lambda a: f"axis={a}")
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(("case", "data", "numpy_too"), CASES, ids=[c[0] for c in CASES])
def test_handed_to_dask_array(case, data, numpy_too, name, axis):
    x = da.from_array(data, chunks=2, asarray=False)
    assert not checks.kernel_reduces(x), case
    want = _outcome(lambda: _dask_answer(name, x, axis=axis))
    got = _outcome(lambda: getattr(numbadask, name)(x, axis=axis))
    assert got[0] == want[0], f"{case} {name}: numbadask {got}, dask.array {want}"
    if want[0] == "error":
        assert got[1] is want[1], case
        return
    _assert_same(got[1], want[1], f"{case} {name} axis={axis}")
    if numpy_too and case != "object":
        reference = _outcome(lambda: _numpy_answer(name, data, axis))
        if reference[0] == "value":
            _assert_same(got[1], reference[1], f"{case} {name} axis={axis} vs NumPy")


@pytest.mark.parametrize(("case", "data", "numpy_too"), CASES[:4] + CASES[5:6], ids=[c[0] for c in CASES[:4] + CASES[5:6]])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_numpy_input_is_handed_over_too(case, data, numpy_too, name):
    """Not only Dask arrays: NumPy input of such a dtype or type keeps its type, and
    every function answers as dask.array's does on it wrapped (dask.array's own
    arg-reductions fail on a NumPy array: numbadask wraps it first, as dask.array's
    other reductions do)."""
    want = _outcome(lambda: _dask_answer(name, da.asanyarray(data), axis=0))
    got = _outcome(lambda: getattr(numbadask, name)(data, axis=0))
    assert got[0] == want[0], f"{case} {name}: numbadask {got}, dask.array {want}"
    if want[0] == "value":
        _assert_same(got[1], want[1], case)
    else:
        assert got[1] is want[1], case


def test_a_hand_off_builds_dask_arrays_graph():
    x = da.from_array(np.array([1 + 1j, 2, 3]), chunks=2)
    result = numbadask.sum(x)
    assert "numbadask" not in result.name
    assert result.name == handoff.dask_function("sum")(x).name  # the very same graph


@legacy_dask_only
def test_count_and_moments_of_handed_over_input():
    m = da.from_array(_MASKED, chunks=2)
    assert int(numbadask.count(m).compute()) == int(_MASKED.count())
    dates = np.array(["2020-01-01", "NaT", "2021-01-01"], dtype="M8[D]")
    np.testing.assert_array_equal(numbadask.count(dates).compute(), 2)
    moments = numbadask.moments(m, axis=1)
    np.testing.assert_allclose(moments.mean.compute(), _MASKED.mean(axis=1))
    np.testing.assert_allclose(moments.var.compute(), _MASKED.var(axis=1))


def test_a_chunk_that_is_not_what_the_meta_says_is_refused():
    """A meta that lies (plain ndarray, masked chunks) must not give a wrong number."""
    x = da.from_array(_MASKED, chunks=2, meta=np.empty((0, 0)))
    assert checks.kernel_reduces(x)
    with pytest.raises(Exception, match="exactly numpy.ndarray"):
        numbadask.sum(x).compute()


def test_kernel_dtypes_and_plain_chunks_stay_with_numbadask():
    for data in (np.arange(6.0), np.arange(6), np.ones(6, dtype=bool), np.arange(6, dtype=np.float32)):
        x = da.from_array(data, chunks=2)
        assert checks.kernel_reduces(x)
        assert numbadask.sum(x).name.startswith("sum-numbadask-")


# --- dask.array behaviours numbadask matches -------------------------------------------------


@legacy_dask_only
@pytest.mark.parametrize("name", ["sum", "mean", "max", "var", "argmax", "nanmin"])
def test_out_like_dask_array(name):
    y = da.from_array(np.arange(40.0).reshape(10, 4), chunks=3)
    out = da.zeros(4, chunks=2)
    returned = getattr(numbadask, name)(y, axis=0, out=out)
    assert returned is out
    np.testing.assert_allclose(out.compute(), getattr(np, name)(np.arange(40.0).reshape(10, 4), axis=0))
    with pytest.raises(ValueError, match="Mismatched shapes"):
        getattr(numbadask, name)(y, axis=1, out=da.zeros(3, chunks=2))


@pytest.mark.parametrize("dtype", ["i8", "i4", "u1", "?"])
@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("axis", [None, 0])
def test_var_with_an_integer_dtype_is_numpys(name, dtype, axis):
    data = np.array([[0.5, 1.7, 2.2], [3.9, -1.3, 4.0], [7.25, 8.5, -2.0]])
    got = getattr(numbadask, name)(da.from_array(data, chunks=2), axis=axis, dtype=dtype).compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "std" and axis is not None:  # NumPy refuses sqrt into an int array
            want = np.sqrt(np.var(data, axis=axis, dtype=dtype)).astype(dtype)
        else:
            want = getattr(np, name)(data, axis=axis, dtype=dtype)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["nanmean", "nanvar", "nanstd"])
def test_nan_functions_with_an_integer_dtype_are_dask_arrays(name):
    """NumPy refuses an integer dtype= for these of floats; dask.array answers."""
    x = da.from_array(np.array([0.5, 1.7, np.nan, 3.9], dtype=np.float32), chunks=2)
    assert getattr(numbadask, name)(x, dtype="i8").compute() == handoff.dask_function(name)(x, dtype="i8").compute()


def _max_dependencies(result):
    graph = dict(result.__dask_graph__())
    from dask.core import get_dependencies

    return max(len(get_dependencies(graph, k)) for k in graph)


def _levels(result, prefix):
    return sorted(n for n in result.__dask_graph__().layers if n.startswith(prefix))


@legacy_dask_only
@pytest.mark.parametrize("setting", [{0: 2, 1: 3}, 4, 20])
def test_split_every_from_dask_config_gives_dasks_tree(setting, monkeypatch):
    """The same merge levels as dask.array's, one chunk per task (grouped chunks merge
    in their task: the same merges, one layer less)."""
    from numbadask.engine import graph

    monkeypatch.setattr(graph, "TASK_BYTES", 1)
    x = da.from_array(np.arange(242.0).reshape(11, 22), chunks=(3, 4))
    with dask.config.set(split_every=setting):
        ours = numbadask.sum(x)
        theirs = handoff.dask_function("sum")(x)
        ours_axis = numbadask.sum(x, axis=0)
        theirs_axis = handoff.dask_function("sum")(x, axis=0)
    levels = len(_levels(ours, "sum-numbadask")) - 1  # less the chunk layer
    assert levels == len(_levels(theirs, "sum")) - 1
    assert len(_levels(ours_axis, "sum-numbadask")) == len(_levels(theirs_axis, "sum"))
    np.testing.assert_allclose(ours.compute(), np.arange(242.0).sum())


def test_graph_names_start_with_the_functions_name():
    x = da.ones(5, chunks=2)
    for name in ("sum", "mean", "var", "std", "min", "max", "argmin", "nansum", "nanvar", "ptp", "count"):
        result = getattr(numbadask, name)(x)
        assert result.name.startswith(f"{name}-numbadask-"), result.name
        assert all(str(k[0] if isinstance(k, tuple) else k).startswith((f"{name}-numbadask", "ones")) for k in result.__dask_graph__())
    assert numbadask.moments(x).mean.name.startswith("moments-numbadask-mean-")


def test_dashboard_prefix_names_numbadask():
    from dask.utils import key_split

    assert key_split(numbadask.sum(da.ones(5, chunks=2)).name) == "sum-numbadask"


@legacy_dask_only
@pytest.mark.parametrize("name", ["argmax", "nanargmin"])
def test_arg_reductions_over_one_chunk_of_unknown_size(name):
    x = da.ones((10, 10), chunks=(10, 10))
    x = x[x[0, :] > 0, :]
    assert np.isnan(x.shape[0])
    ref = getattr(np, name)(np.ones((10, 10)), axis=0)
    np.testing.assert_array_equal(getattr(numbadask, name)(x, axis=0).compute(), ref)
    assert int(getattr(numbadask, name)(x).compute()) == getattr(np, name)(np.ones((10, 10)))
    y = da.arange(10, chunks=5)
    with pytest.raises(ValueError, match="unknown chunksize"):
        getattr(numbadask, name)(y[y > 1])
