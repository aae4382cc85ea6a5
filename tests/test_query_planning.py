"""Every reduction on Dask's query-planning Arrays (``array.query-planning=True``).

Dask reads the setting when ``dask.array`` is first imported, so each check runs in a
fresh interpreter with ``DASK_ARRAY__QUERY_PLANNING=True``.  (``ci/test_extended.sh``
also runs the API tests in that mode.)  dask.array itself lacks var, std, ptp and the
arg-reductions there (dask 2026.8); numbadask computes them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# New interpreters under query planning (the extended tier also runs the API tests there).
pytestmark = pytest.mark.extended

pytest.importorskip("dask.array._array_expr")

SCRIPT = textwrap.dedent(
    """
    import warnings
    import dask, dask.array as da, numpy as np, numbadask
    from numbadask.engine import definition

    assert da.array_expr_enabled(), "query planning is off"
    rng = np.random.default_rng(5)
    a = (1e4 + rng.standard_normal((23, 17, 6))).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    in_memory = da.from_array(a, chunks=(5, 4, 3))
    made_by_tasks = in_memory * 1 + 0       # chunks computed by upstream tasks
    names = ["sum", "nansum", "mean", "nanmean", "var", "nanvar", "std", "nanstd", "min",
             "max", "nanmin", "nanmax", "ptp", "count", "argmin", "argmax", "nanargmin",
             "nanargmax"]
    for x in (in_memory, made_by_tasks):
        for name in names:
            for axis in (None, 0, 1, 2, (0, 2), (1, 2)):
                if name.startswith(("arg", "nanarg")) and isinstance(axis, tuple):
                    continue
                for keepdims in (False, True):
                    if name.startswith(("arg", "nanarg")) and keepdims:
                        continue
                    lazy = getattr(numbadask, name)(x, axis=axis, keepdims=keepdims) if not name.startswith(("arg", "nanarg")) else getattr(numbadask, name)(x, axis=axis)
                    assert type(lazy) is type(x), (name, type(lazy))
                    assert lazy.name.startswith(name + "-numbadask-"), lazy.name
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        got = lazy.compute()
                        if name == "count":
                            want = np.sum(~np.isnan(a), axis=axis, keepdims=keepdims)
                        elif name.startswith(("arg", "nanarg")):
                            want = getattr(np, name)(a, axis=axis)
                        else:
                            want = getattr(np, name)(a.astype(np.float64), axis=axis, keepdims=keepdims)
                    assert np.shape(got) == np.shape(want) == lazy.shape, (name, axis, np.shape(got), np.shape(want))
                    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=1e-6, err_msg=f"{name} axis={axis}")

    # A rechunked array's name is not its keys' prefix until lowered.
    rechunked = made_by_tasks.rechunk((7, 5, 6))
    for name in ("sum", "nanvar", "nanmax", "argmin"):
        for axis in (None, 1):
            got = getattr(numbadask, name)(rechunked, axis=axis).compute()
            want = getattr(np, name)(a.astype(np.float64), axis=axis)
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{name} of a rechunked array")

    # The seven moments share one kernel run per chunk, as without query planning.
    runs, kernel = [], definition.run_kernel
    definition.run_kernel = lambda *args: runs.append(1) or kernel(*args)
    m = numbadask.moments(in_memory, axis=0)
    dask.compute(*m)
    assert len(runs) == np.prod(in_memory.numblocks), len(runs)
    definition.run_kernel = kernel

    # Results compose with dask's expressions and with each other.
    total = (numbadask.mean(in_memory, axis=0) + numbadask.nanmax(made_by_tasks, axis=0)).sum()
    want = np.sum(np.mean(a.astype(np.float64), axis=0) + np.nanmax(a, axis=0))
    np.testing.assert_allclose(float(total.compute()), want, rtol=1e-6)

    # Input numbadask has no kernel for is dask.array's to answer.
    c = da.from_array(np.arange(6) + 1j, chunks=2)
    assert complex(numbadask.sum(c).compute()) == complex(np.sum(np.arange(6) + 1j))
    print("ok")
    """
)


def test_every_reduction_under_query_planning():
    env = {**os.environ, "DASK_ARRAY__QUERY_PLANNING": "True"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


XARRAY_SCRIPT = textwrap.dedent(
    """
    import dask.array as da, numpy as np, pytest, xarray as xr
    import numbadask.xarray

    assert da.array_expr_enabled(), "query planning is off"
    rng = np.random.default_rng(3)
    a = xr.DataArray(rng.standard_normal((5, 4)), dims=("t", "x"), coords={"x": [1, 2, 3, 4]})
    b = a * a + 1
    # NumPy-backed data: NumPy results, equal to xarray's own (never object arrays).
    for name in ("sum", "mean", "var", "std", "min", "max", "count", "argmin", "argmax"):
        got = getattr(a.nd, name)("t")
        assert got.dtype != object, name
        xr.testing.assert_allclose(got, getattr(a, name)("t"))
    xr.testing.assert_allclose(a.nd.moments("t")["var"], a.var("t"))
    xr.testing.assert_allclose(a.nd.corr(b, "t"), xr.corr(a, b, "t"))
    xr.testing.assert_allclose(a.nd.weighted(b).mean("t"), a.weighted(b).mean("t"))
    ds = xr.Dataset({"u": a, "v": b})
    xr.testing.assert_allclose(ds.nd.std("t"), ds.std("t"))
    # Dask query-planning Arrays: xarray cannot hold them; a clear error, not object arrays.
    lazy = xr.DataArray(da.from_array(a.values, chunks=2), dims=("t", "x"))
    for obj in (lazy, xr.Dataset({"u": lazy})):
        with pytest.raises(TypeError, match="query-planning"):
            obj.nd.mean("t")
    print("ok")
    """
)


def test_xarray_accessor_under_query_planning():
    pytest.importorskip("xarray")
    env = {**os.environ, "DASK_ARRAY__QUERY_PLANNING": "True"}
    done = subprocess.run([sys.executable, "-c", XARRAY_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
