"""NumPy's warnings for a slice with nothing to reduce, once per compute of one result
(issue 26): NumPy warns once per call however many slices are empty; numbadask warned
once per output block."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest

import numbadask

WORDS = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0 for slice")


def texts(func) -> list[str]:
    """The NumPy slice warnings ``func()`` gives, in order, repeats included."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        func()
    return [str(w.message) for w in caught if str(w.message).startswith(WORDS)]


THREE_ROWS = np.ones((3, 6))
ALL_NAN = np.full((3, 6), np.nan)


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize(
    "name, a, kwargs",
    [
        ("var", THREE_ROWS, {"ddof": 3}),
        ("std", THREE_ROWS, {"ddof": 4}),
        ("nanvar", ALL_NAN, {}),
        ("nanmean", ALL_NAN, {}),
        ("nanmax", ALL_NAN, {}),
        ("nanmin", ALL_NAN, {}),
        ("mean", np.ones((0, 6)), {}),
    ],
)
def test_once_per_compute_of_one_result_like_numpy(scheduler, name, a, kwargs):
    want = texts(lambda: getattr(np, name)(a, axis=0, **kwargs))
    assert len(want) == 1
    result = getattr(numbadask, name)(da.from_array(a, chunks=(max(1, a.shape[0]), 2)), axis=0, **kwargs)
    assert result.numblocks == (3,)  # three output blocks, each with slices to warn about
    with dask.config.set(scheduler=scheduler):
        assert texts(result.compute) == want
        assert texts(result.compute) == want  # and again on the next compute, as NumPy on the next call


def test_each_result_of_one_compute_warns_once():
    x = da.from_array(ALL_NAN, chunks=(3, 2))
    got = texts(lambda: dask.compute(numbadask.nanmean(x, axis=0), numbadask.nanmean(x, axis=1), numbadask.nanmax(x, axis=0)))
    assert sorted(got) == ["All-NaN slice encountered", "Mean of empty slice", "Mean of empty slice"]


def test_a_compute_that_stopped_early_does_not_silence_the_next():
    """Only one block of a result computed (as when a compute fails part way): the next
    compute of the whole result warns once all the same."""
    x = da.from_array(THREE_ROWS, chunks=(3, 2))
    result = numbadask.var(x, axis=0, ddof=3)
    first = result.__dask_keys__()[0]
    with dask.config.set(scheduler="sync"):
        assert texts(lambda: dask.get(dict(result.__dask_graph__()), first)) == ["Degrees of freedom <= 0 for slice"]
        assert texts(result.compute) == ["Degrees of freedom <= 0 for slice"]
        assert texts(result.compute) == ["Degrees of freedom <= 0 for slice"]


def test_accelerate_stays_silent_and_direct_calls_still_warn():
    x = da.from_array(ALL_NAN, chunks=(3, 2))
    with numbadask.accelerate():
        assert texts(lambda: da.nanmean(x, axis=0).compute()) == []
    assert texts(lambda: numbadask.nanmean(x, axis=0).compute()) == ["Mean of empty slice"]


def test_once_per_compute_on_an_in_process_cluster():
    """A LocalCluster with processes=False finishes every block in this process, as the
    threaded scheduler does (the README's claim)."""
    from distributed import Client, LocalCluster

    x = da.from_array(ALL_NAN, chunks=(3, 2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster):
        result = numbadask.nanmean(x, axis=0)
        assert texts(result.compute) == ["Mean of empty slice"]
        assert texts(result.compute) == ["Mean of empty slice"]
