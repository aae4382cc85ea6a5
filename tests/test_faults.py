"""Faults: a bad chunk is named, not crashed on; a killed worker costs re-runs, not a
wrong answer; a GPU out-of-memory error comes with a hint."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest

import numbadask
from numbadask import ChunkError

CHUNKS = 40
CHUNK = 2_000


class Poison:
    """A chunk type no kernel reads: numbadask's chunk task refuses it (a chunk that is
    not exactly numpy.ndarray or cupy.ndarray, under a meta that says it is); its data
    also raises when asked for."""

    shape = (CHUNK,)
    ndim = 1
    dtype = np.dtype(np.float64)

    def __init__(self, error: Exception):
        self.error = error

    def __array__(self, dtype=None, copy=None):
        raise self.error


class OutOfMemoryError(MemoryError):
    """Stands in for CuPy's, which ``failure_hint`` knows by name and module."""


OutOfMemoryError.__module__ = "cupy.cuda.memory"


def _poison_block(block, block_info=None):
    if block_info[0]["chunk-location"] != (1,):
        return block
    return Poison(RuntimeError("poisoned chunk"))


def _poisoned() -> da.Array:
    x = da.from_array(np.ones(3 * CHUNK), chunks=CHUNK)
    return x.map_blocks(_poison_block, dtype=np.float64)


def test_a_failing_chunk_is_named_with_its_kernel():
    with pytest.raises(ChunkError) as info:
        numbadask.sum(_poisoned()).compute(scheduler="threads")
    message = str(info.value)
    for words in ("numbadask.sum (kernel sum_float64)", "block (", ", 1)", "Poison", "exactly numpy.ndarray"):
        assert words in message, message
    assert isinstance(info.value.__cause__, TypeError)


def test_arg_reductions_name_the_chunk_too():
    with pytest.raises(ChunkError, match=r"numbadask\.argmax \(kernel argmax\) failed on block .*exactly numpy\.ndarray"):
        numbadask.argmax(_poisoned()).compute(scheduler="sync")


def test_gpu_out_of_memory_message_has_a_hint(monkeypatch):
    """The message path, without a GPU: a kernel raising an error of CuPy's
    OutOfMemoryError class name."""
    from numbadask.engine import definition

    def out_of_memory(*args, **kwargs):
        raise OutOfMemoryError("Out of memory allocating 16,000 bytes")

    monkeypatch.setattr(definition, "run_kernel", out_of_memory)
    with pytest.raises(ChunkError, match="GPU ran out of memory: use smaller chunks"):
        numbadask.mean(da.ones(3 * CHUNK, chunks=CHUNK)).compute(scheduler="sync")


@pytest.mark.gpu
def test_real_gpu_out_of_memory_is_explained():
    import cupy

    pool = cupy.get_default_memory_pool()
    x = cupy.random.default_rng(0).random(2**20)
    limit = pool.get_limit()
    pool.set_limit(size=pool.total_bytes())  # no room for the kernel's outputs
    try:
        with pytest.raises(ChunkError, match="GPU ran out of memory"):
            numbadask.moments(da.from_array(x, chunks=2**18, asarray=False)).mean.compute(scheduler="sync")
    finally:
        pool.set_limit(size=limit)


@pytest.mark.extended
def test_a_bad_chunk_on_a_cluster_raises_and_leaves_workers_alive():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        before = client.run(os.getpid)
        with pytest.raises(ChunkError, match="exactly numpy.ndarray"):
            client.compute(numbadask.sum(_poisoned())).result(timeout=60)
        assert client.run(os.getpid) == before  # no worker died or restarted
        assert float(client.compute(numbadask.sum(da.ones(10, chunks=5))).result()) == 10.0


def _slow_block(block_info=None, log_dir=""):
    """A chunk made from its position (so a lost one is made again, identically),
    slowly, leaving a file behind each time it runs."""
    (i,) = block_info[None]["chunk-location"]
    (Path(log_dir) / f"{i}-{uuid.uuid4().hex}").touch()
    time.sleep(0.1)
    return np.random.default_rng(i).normal(1e3, 1.0, CHUNK)


@pytest.mark.extended
def test_a_killed_worker_costs_reruns_not_a_wrong_answer(tmp_path):
    from distributed import Client, LocalCluster

    x = da.map_blocks(_slow_block, log_dir=str(tmp_path), chunks=((CHUNK,) * CHUNKS,), dtype=np.float64)
    reference = np.concatenate([np.random.default_rng(i).normal(1e3, 1.0, CHUNK) for i in range(CHUNKS)])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        futures = client.compute(list(numbadask.moments(x)))
        while len(list(tmp_path.iterdir())) < CHUNKS // 4:
            time.sleep(0.02)
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        count, total, mean, var, std, low, high = client.gather(futures)
    runs = len(list(tmp_path.iterdir()))
    print(f"worker {victim} killed mid-moments: {runs - CHUNKS} chunk tasks re-run")
    assert count == reference.size and np.isclose(mean, reference.mean(), rtol=1e-14)
    assert np.isclose(var, reference.var(), rtol=1e-12) and (low, high) == (reference.min(), reference.max())
    assert runs >= CHUNKS


def test_many_threads_at_once_get_right_answers():
    """32 threads call the family at once (some dtypes compiled for the first time in
    the race): the dispatch and compile caches hold no state that threads can corrupt."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    names = ["sum", "mean", "var", "min", "argmax", "nanmean", "nanstd", "ptp"]
    dtypes = [np.float64, np.float32, np.int16, np.uint8, np.float16]
    jobs = [(name, dtype, rng.integers(0, 100, (37, 11)).astype(dtype)) for name in names for dtype in dtypes]

    def run(job):
        name, _, a = job
        return getattr(numbadask, name)(da.from_array(a, chunks=(8, 5)), axis=0).compute(scheduler="threads")

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(run, jobs * 2))
    for (name, dtype, a), got in zip(jobs * 2, results):
        # float16 accumulates in float64 here, so the reference does too
        want = getattr(np, name)(a.astype(np.float64) if dtype == np.float16 else a, axis=0)
        np.testing.assert_allclose(got, want, rtol=1e-3 if dtype == np.float16 else 1e-6, err_msg=f"{name} {dtype}")


SCHEDULERS = ["sync", "threads", "processes"]


def test_same_bits_across_runs_and_schedulers():
    """Merges follow the graph's order, not the order tasks finish in: every local
    scheduler, run after run, gives the same bits (distributed: see test_processes)."""
    a = np.random.default_rng(3).normal(1e6, 1.0, (300, 70)).astype(np.float32)
    x = da.from_array(a, chunks=(23, 9))
    lazy = [numbadask.sum(x), numbadask.mean(x, axis=0), numbadask.var(x, axis=1), *numbadask.moments(x)]
    first = dask.compute(*lazy, scheduler="sync")
    for scheduler in SCHEDULERS:
        for _ in range(2):
            again = dask.compute(*lazy, scheduler=scheduler)
            for want, got in zip(first, again):
                assert np.array_equal(want, got), scheduler


def test_split_every_changes_bits_by_at_most_rounding():
    """Another ``split_every`` is another merge tree: equal to rounding, not bitwise."""
    a = np.random.default_rng(4).normal(0.0, 1.0, 20_000)
    x = da.from_array(a, chunks=100)
    sums = [float(numbadask.sum(x, split_every=s).compute()) for s in (2, 4, 32, 200)]
    np.testing.assert_allclose(sums, np.sum(a), rtol=1e-14)
