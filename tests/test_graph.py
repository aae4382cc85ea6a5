"""The reduction graph: chunk tasks on in-memory chunks stay unfused; offsets are global."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask.array.optimization import optimize

import numbadask
from numbadask.graph import UnfusedTask, block_offsets, fan_in


def _optimized_chunk_tasks(result: da.Array) -> list:
    dsk = optimize(dict(result.__dask_graph__()), result.__dask_keys__())
    return [v for k, v in dsk.items() if isinstance(k, tuple) and "-chunk-" in k[0]]


def test_chunks_in_memory_are_not_fused():
    a = np.random.default_rng(0).random((8, 8))
    x = da.from_array(a, chunks=4)
    for result, want in ((numbadask.sum(x), a.sum()), (numbadask.argmin(x), a.argmin()), (numbadask.moments(x).mean, a.mean())):
        tasks = _optimized_chunk_tasks(result)
        assert len(tasks) == x.npartitions
        assert all(isinstance(t, UnfusedTask) for t in tasks)
        np.testing.assert_allclose(result.compute(), want, rtol=1e-14)


def test_chunks_made_by_tasks_still_fuse():
    x = da.ones((8, 8), chunks=4) + 1
    dsk = optimize(dict(numbadask.sum(x).__dask_graph__()), numbadask.sum(x).__dask_keys__())
    assert not any(isinstance(v, UnfusedTask) for v in dsk.values())
    assert float(numbadask.sum(x).compute()) == 128.0


def test_block_offsets_are_global_starts():
    x = da.zeros((5, 7), chunks=((2, 3), (4, 3)))
    assert list(block_offsets(x)) == [((0, 0), (0, 0)), ((0, 1), (0, 4)), ((1, 0), (2, 0)), ((1, 1), (2, 4))]


@pytest.mark.parametrize("split_every", [2, 3, 8, {0: 2, 2: 3}, {1: 5}])
@pytest.mark.parametrize("axis", [None, 0, (0, 2), 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_tree_of_any_depth_matches_numpy(split_every, axis, keepdims):
    a = np.random.default_rng(1).random((9, 7, 10))
    x = da.from_array(a, chunks=(1, 2, 3))
    got = numbadask.sum(x, axis=axis, keepdims=keepdims, split_every=split_every)
    want = a.sum(axis=axis, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.compute(), want, rtol=1e-14)


def test_tree_levels_follow_the_fan_in():
    x = da.from_array(np.ones(64), chunks=1)
    graph = numbadask.sum(x, split_every=4).__dask_graph__()
    levels = sorted(name for name in graph.layers if name.startswith("numbadask-sum"))
    sizes = sorted(len(graph.layers[name]) for name in levels)
    assert sizes == [1, 4, 16, 64]  # chunks, two merge levels, the aggregate


@pytest.mark.parametrize("split_every", [1, 0, -3, 2.5, True, "4"])
def test_bad_split_every_is_refused(split_every):
    with pytest.raises(ValueError, match="split_every"):
        numbadask.sum(da.ones(8, chunks=2), split_every=split_every)


def test_fan_in_like_dask():
    assert fan_in(32, (0,)) == {0: 32}
    assert fan_in(16, (0, 1)) == {0: 4, 1: 4}
    assert fan_in(3, (0, 1, 2)) == {0: 2, 1: 2, 2: 2}
