"""The reduction graph: chunk tasks on in-memory chunks stay unfused and group;
offsets are global."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask.array.optimization import optimize

import numbadask
import numbadask.engine.calls
import dask
from numbadask.engine import graph as nd_graph
from numbadask.engine.graph import UnfusedTask, block_offsets, chunks_per_task, fan_in, groups_are_first_merges
from cases import QUERY_PLANNING

pytestmark = pytest.mark.skipif(
    QUERY_PLANNING, reason="the graph's HighLevelGraph layers (under query planning numbadask's tasks sit in one FromGraph expression)"
)


@pytest.fixture
def one_chunk_per_task(monkeypatch):
    """Graphs as if chunks never grouped: one chunk task per chunk."""
    monkeypatch.setattr(nd_graph, "TASK_BYTES", 1)


def _optimized_chunk_tasks(result: da.Array) -> list:
    dsk = optimize(dict(result.__dask_graph__()), result.__dask_keys__())
    return [v for k, v in dsk.items() if isinstance(k, tuple) and "-chunk-" in k[0]]


def test_chunks_in_memory_are_not_fused(one_chunk_per_task):
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


def test_tree_levels_follow_the_fan_in(one_chunk_per_task):
    x = da.from_array(np.ones(64), chunks=1)
    graph = numbadask.sum(x, split_every=4).__dask_graph__()
    levels = sorted(name for name in graph.layers if name.startswith("sum-numbadask"))
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


def _chunk_task_count(result: da.Array) -> int:
    return len(_optimized_chunk_tasks(result))


def test_in_memory_chunks_group_until_tasks_per_thread():
    """64 tiny chunks on 2 threads: one task per thread is 32 chunks each."""
    x = da.from_array(np.arange(64.0), chunks=1)
    with dask.config.set(num_workers=2):
        assert chunks_per_task(x, (0,), {0: 32}) == {0: 32}
        assert _chunk_task_count(numbadask.sum(x)) == 2
    with dask.config.set(num_workers=8):
        assert chunks_per_task(x, (0,), {0: 32}) == {0: 8}
    with dask.config.set(num_workers=64):  # 64 chunks are one per thread already
        assert chunks_per_task(x, (0,), {0: 32}) == {}


def test_groups_hold_about_task_bytes_and_divide_the_first_merge(monkeypatch):
    monkeypatch.setattr(nd_graph, "TASK_BYTES", 3 * 8 * 10)  # three chunks of 10 float64
    x = da.from_array(np.zeros(2000), chunks=10)  # 200 chunks
    with dask.config.set(num_workers=1):
        assert chunks_per_task(x, (0,), {0: 32}) == {0: 2}  # 3 does not divide 32
        assert chunks_per_task(x, (0,), {0: 9}) == {0: 3}
        assert chunks_per_task(x, (0,), {0: 3}) == {0: 3}  # a whole first merge
        assert chunks_per_task(x, (0,), {0: 5}) == {}


def test_groups_run_along_the_last_reduced_axis_with_blocks():
    x = da.from_array(np.zeros((4, 16, 3)), chunks=(1, 1, 3))  # 64 chunks
    with dask.config.set(num_workers=1):
        assert chunks_per_task(x, (0, 1, 2), {0: 8, 1: 8, 2: 2}) == {1: 8}
        assert chunks_per_task(x, (0,), {0: 32}) == {0: 4}
        assert chunks_per_task(x, (2,), {2: 32}) == {}  # one block along it
        assert chunks_per_task(x, (), {}) == {}


def test_fan_in_goes_to_the_axes_with_blocks():
    assert fan_in(32, (0, 1), (64, 1)) == {0: 32, 1: 2}
    assert fan_in(64, (0, 1, 2), (4, 4, 4)) == {0: 4, 1: 4, 2: 4}  # not 3: 64 ** (1/3) < 4 in floats


def test_chunks_made_by_tasks_do_not_group():
    x = da.ones(64, chunks=1) + 1
    with dask.config.set(num_workers=1):
        assert chunks_per_task(x, (0,), {0: 32}) == {}
        assert float(numbadask.sum(x).compute()) == 128.0


def _graph_keys(result: da.Array) -> set:
    return {k[0] for k in dict(result.__dask_graph__()) if isinstance(k, tuple)}


@pytest.mark.parametrize("chunk", [1, 16])  # grouped (64 chunks), and one chunk per task (4)
def test_in_memory_chunks_are_inlined_into_the_chunk_tasks(chunk):
    """On a local scheduler the chunk tasks hold in-memory chunks themselves: the
    input's data layer, a node per chunk for Dask to order on every compute, is gone."""
    a = np.random.default_rng(5).random(64)
    x = da.from_array(a, chunks=chunk)
    for result, want in ((numbadask.sum(x), a.sum()), (numbadask.argmax(x), a.argmax()), (numbadask.moments(x).var, a.var())):
        assert x.name not in _graph_keys(result)
        np.testing.assert_allclose(result.compute(), want, rtol=1e-14)


def test_chunks_made_by_tasks_are_referenced_not_inlined():
    x = da.ones(64, chunks=4) + 1
    assert x.name in _graph_keys(numbadask.sum(x))
    mixed = {("mixed", 0): np.ones(4), ("mixed", 1): (np.add, ("mixed", 0), 1.0)}  # data, then a task
    y = da.Array(mixed, "mixed", ((4, 4),), meta=np.empty(0))
    result = numbadask.sum(y)
    assert "mixed" in _graph_keys(result)
    assert float(result.compute()) == 12.0


FUNCTIONS = [numbadask.sum, numbadask.mean, numbadask.var, numbadask.nanmax, numbadask.argmin, numbadask.nanargmax]


CASES = [  # (chunks of a (9, 40, 10) array, axis): each groups chunks along axis 1
    ((9, 3, 10), None),
    ((9, 3, 10), 1),
    ((9, 3, 10), (0, 1)),
    ((9, 3, 10), (1, 2)),
    ((2, 3, 5), 1),
]


@pytest.mark.parametrize("split_every", [None, 4, 6])
@pytest.mark.parametrize(("chunks", "axis"), CASES)
def test_grouped_chunks_give_the_same_bits(monkeypatch, chunks, axis, split_every):
    """Groups hand their states, unmerged and in order, to the first merge: the
    answer is bit for bit the one of one chunk per task, and NumPy's to rounding.
    (numbadask's default fan-in varies here: a ``split_every`` the caller gives is
    dask.array's tree, one chunk per task.)"""
    a = np.random.default_rng(2).normal(1e3, 1.0, size=(9, 40, 10))
    a[3, 21, 7], a[4, 2, 1] = np.nan, a.max() + 1
    x = da.from_array(a, chunks=chunks)
    if isinstance(split_every, int) and isinstance(axis, tuple):
        split_every = {axis[0]: 2, 1: split_every}  # every fan but axis 1's is 2
    if split_every is not None:
        monkeypatch.setattr(numbadask.engine.calls, "DEFAULT_SPLIT_EVERY", split_every)
    for func in FUNCTIONS:
        if "arg" in func.__name__ and isinstance(axis, tuple):
            continue
        with dask.config.set(num_workers=1):
            grouped = func(x, axis=axis)
        with monkeypatch.context() as patch:
            patch.setattr(nd_graph, "TASK_BYTES", 1)
            single = func(x, axis=axis)
        assert _chunk_task_count(grouped) < _chunk_task_count(single) == x.npartitions
        np.testing.assert_array_equal(grouped.compute(), single.compute(), err_msg=func.__name__)
        want = getattr(np, func.__name__)(a, axis=axis)
        np.testing.assert_allclose(grouped.compute(), want, rtol=1e-12, err_msg=func.__name__)


def test_no_groups_where_no_count_divides_the_fan():
    """Two axes of 10 blocks share split_every=121 as 11 x 11: no count up to the 10
    blocks of an axis divides 11, so no group falls inside the first merges."""
    x = da.from_array(np.zeros((40, 40)), chunks=4)
    with dask.config.set(num_workers=1):
        assert chunks_per_task(x, (0, 1), fan_in(121, (0, 1), x.numblocks)) == {}


def test_groups_that_are_whole_first_merges_merge_in_their_task():
    """64 chunks on 2 threads, split_every 32: each chunk task reads the 32 chunks of
    one first merge and merges them itself, so the chunk tasks feed the final merge
    directly, with the bits of one chunk per task."""
    a = np.random.default_rng(3).normal(1e3, 1.0, size=(64, 5))
    x = da.from_array(a, chunks=(1, 5))
    assert groups_are_first_merges(x.numblocks, (0, 1), {0: 32, 1: 2}, {0: 32})
    for func in FUNCTIONS:
        with dask.config.set(num_workers=2):
            grouped = func(x)
        layers = [name for name in grouped.dask.layers if "partial" in name]
        assert layers == [] and _chunk_task_count(grouped) == 2, func.__name__
        with dask.config.set(num_workers=64):
            single = func(x)
        assert _chunk_task_count(single) == 64
        np.testing.assert_array_equal(grouped.compute(), single.compute(), err_msg=func.__name__)


class _Unreadable:
    """An in-memory chunk whose data raises when read."""

    shape, ndim, dtype = (4,), 1, np.dtype(np.float64)

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("unreadable chunk")


def test_a_failing_chunk_in_a_group_is_named():
    chunks = {("mixed", i): (_Unreadable() if i == 5 else np.ones(4)) for i in range(16)}
    x = da.Array(chunks, "mixed", ((4,) * 16,), meta=np.empty(0))
    with dask.config.set(num_workers=1):
        assert chunks_per_task(x, (0,), {0: 32}) == {0: 16}
        with pytest.raises(numbadask.ChunkError, match=r"block \('mixed', 5\).*_Unreadable"):
            numbadask.sum(x).compute(scheduler="sync")


def _computed_graph(result: da.Array) -> dict:
    """The graph ``compute`` runs: optimized, with Dask's finalize task."""
    # dask < 2025.1 (ci/test_floors.sh) has no expressions: finalize runs outside the graph.
    FinalizeCompute = pytest.importorskip("dask._expr", reason="dask < 2025.1 finalizes outside the graph").FinalizeCompute
    from dask.base import collections_to_expr

    return dict(FinalizeCompute(collections_to_expr([result], True)).optimize().__dask_graph__())


def test_the_final_merge_runs_as_its_own_task_locally():
    """Not fused with Dask's finalize into a subgraph, whose every run costs a
    dask.order call."""
    x = da.from_array(np.arange(64.0), chunks=8)
    result = numbadask.sum(x)
    final = [task for key, task in _computed_graph(result).items() if key == result.__dask_keys__()[0]]
    assert len(final) == 1 and final[0].func is not None and final[0].block_fusion
    assert float(result.compute()) == np.arange(64.0).sum()


def test_no_groups_under_a_distributed_client():
    """A distributed scheduler places tasks itself, and persisted chunks may sit on
    different workers: one chunk per task there."""
    from distributed import Client, LocalCluster

    a = np.arange(64.0)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster):
        x = da.from_array(a, chunks=1)
        assert chunks_per_task(x, (0,), {0: 32}) == {}
        persisted = x.persist()
        assert chunks_per_task(persisted, (0,), {0: 32}) == {}
        assert x.name in _graph_keys(numbadask.sum(x))  # the data goes to the scheduler once, as x's
        assert float(numbadask.sum(persisted).compute()) == a.sum()
        final = numbadask.sum(persisted)  # fused with finalize: one task less to place
        assert final.__dask_keys__()[0] not in _computed_graph(final)


def test_a_given_split_every_is_dasks_tree():
    """With ``split_every`` given (or in dask's config) no task depends on more than
    the fan-in: chunks do not group, as in dask.array (its test_tree_reduce_depth)."""
    x = da.from_array(np.arange(242.0).reshape(11, 22), chunks=(3, 4))
    for result in (numbadask.sum(x, split_every={0: 2, 1: 3}), numbadask.mean(x, axis=0, split_every=2)):
        graph = dict(result.__dask_graph__())
        deps = [len(task.dependencies) for key, task in graph.items() if hasattr(task, "dependencies")]
        assert _chunk_task_count(result) == x.npartitions and max(deps) <= 6
    with dask.config.set(split_every={0: 2, 1: 3}, num_workers=1):
        assert _chunk_task_count(numbadask.sum(x)) == x.npartitions
