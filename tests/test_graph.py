"""The reduction graph: chunk tasks on in-memory chunks stay unfused; offsets are global."""

from __future__ import annotations

import dask.array as da
import numpy as np
from dask.array.optimization import optimize

import numbadask
from numbadask.graph import UnfusedTask, block_offsets


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
