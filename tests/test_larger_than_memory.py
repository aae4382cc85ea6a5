"""``numbadask stats`` over a Zarr store several times larger than the memory its
cluster's worker is given: it completes, right, with the worker's memory bounded.

The worker is a real process under a nanny with ``memory_limit``: Dask pauses it at 80%
and kills it at 95% of that limit.  A worker process with numpy, numba, dask and
distributed loaded and the kernels compiled holds about 230 MiB before any data, so
the limit is 384 MiB (not the 64-100 MiB a bare process could live in) and the store
is 1.2 GB, over three times the limit.  The job runs with its default chunks, which
numbadask keeps to a sixteenth of a thread's share of the worker's limit.  The worker's resident memory is sampled every
10 ms by a thread inside it while the job runs.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from numbadask.main import cli

# A LocalCluster over a store three times its worker's memory: the extended tier.
pytestmark = pytest.mark.extended

MiB = 2**20
LIMIT = 384 * MiB
ROWS, COLS, CHUNK_ROWS = 38_400, 4096, 256  # 1.26 GB of float64 in 150 chunks of 8 MiB


def write_store(path, zarr) -> dict:
    """Write the store chunk by chunk (never whole in memory); return NumPy's answers."""
    z = zarr.create_array(path, shape=(ROWS, COLS), chunks=(CHUNK_ROWS, COLS), dtype="f8", compressors=None)
    rng = np.random.default_rng(7)
    sums, lo, hi = [], math.inf, -math.inf
    for start in range(0, ROWS, CHUNK_ROWS):
        block = rng.random((CHUNK_ROWS, COLS)) + 1000.0
        z[start : start + CHUNK_ROWS] = block
        sums.append(math.fsum(block.sum(axis=1)))
        lo, hi = min(lo, block.min()), max(hi, block.max())
    return {"sum": math.fsum(sums), "min": lo, "max": hi, "count": ROWS * COLS}


def start_sampling(dask_worker) -> int:
    """Runs in the worker: a thread recording the peak RSS; returns the RSS now."""
    import threading
    import time

    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "stop": False}

    def sample() -> None:
        while not state["stop"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker._numbadask_memory = state
    return state["peak"]


def stop_sampling(dask_worker) -> int:
    state = dask_worker._numbadask_memory
    state["stop"] = True
    return state["peak"]


def test_stats_over_zarr_larger_than_worker_memory(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("psutil")
    import dask.array as da
    from distributed import Client, LocalCluster

    import numbadask

    store = tmp_path / "big.zarr"
    expected = write_store(store, zarr)
    assert ROWS * COLS * 8 > 3 * LIMIT
    with LocalCluster(n_workers=1, threads_per_worker=2, memory_limit=LIMIT, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            pids = client.run(os.getpid)
            # Compile the kernels in the worker first: the baseline is the worker at work.
            client.compute(list(numbadask.moments(da.ones((64, 64), chunks=32)))).pop().result()
            (baseline,) = client.run(start_sampling).values()
            # Default ("auto") chunks: kept to 12 MiB for this worker, not Dask's 128 MiB.
            assert cli.main(["stats", str(store), "--scheduler", cluster.scheduler_address, "--json"]) == 0
            (peak,) = client.run(stop_sampling).values()
            assert client.run(os.getpid) == pids  # the nanny never had to restart it
    result = json.loads(capsys.readouterr().out)
    assert result["chunks"] == [CHUNK_ROWS, COLS] and result["workers"] == 1
    out = result["stats"]
    # Seen here: baseline 205 MiB, peak 241 MiB.
    print(f"worker RSS: baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB, limit {LIMIT / MiB:.0f} MiB")
    assert out["count"] == expected["count"]
    assert out["sum"] == pytest.approx(expected["sum"], rel=1e-12)
    assert out["mean"] == pytest.approx(expected["sum"] / expected["count"], rel=1e-12)
    assert (out["min"], out["max"]) == (expected["min"], expected["max"])
    assert peak < 0.8 * LIMIT, f"worker peaked at {peak / MiB:.0f} MiB (limit {LIMIT / MiB:.0f} MiB)"
    # Bounded by a few chunks in flight (2 threads x 8 MiB, plus the reader's buffers),
    # not by the 1.2 GB read.
    assert peak - baseline < 96 * MiB, f"grew by {(peak - baseline) / MiB:.0f} MiB during the job"
