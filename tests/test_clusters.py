"""Choosing, starting and joining schedulers; the decision to move chunks to GPUs.

Without a GPU here, the GPU side is tested as decision logic only (plan_device,
resolve_scheduler, the refusals); moving chunks onto real GPUs runs in tests marked
``gpu``."""

from __future__ import annotations

import socket
import time

import dask.array as da
import numpy as np
import pytest

import numbadask
from numbadask.main import clusters
from numbadask.engine import dispatch
from numbadask.main.clusters import SchedulerError, WorkerGPU, plan_device

GPU = WorkerGPU(real_gpu=True, reason=None)
SIM = WorkerGPU(real_gpu=False, reason=None)  # CUDA simulator: kernels run, on NumPy
CPU = WorkerGPU(real_gpu=False, reason="no GPU")


@pytest.mark.parametrize(
    "device, workers, expected",
    [
        ("auto", [GPU, GPU], ("auto", True)),  # every worker has a GPU: move the chunks
        ("auto", [GPU, CPU], ("auto", False)),  # a mixed cluster: leave them on the host
        ("auto", [CPU], ("auto", False)),
        ("auto", [], ("auto", False)),
        ("cpu", [GPU, GPU], ("cpu", False)),
        ("gpu", [GPU], ("gpu", True)),
        ("gpu", [SIM, SIM], ("gpu", False)),  # simulated kernels read NumPy chunks
    ],
)
def test_plan_device(device, workers, expected):
    assert plan_device(device, workers) == expected


def test_plan_device_refuses_gpu_without_one():
    with pytest.raises(dispatch.GPUUnavailableError, match="1 of 2 workers cannot run the CUDA kernels: no GPU"):
        plan_device("gpu", [GPU, CPU])
    with pytest.raises(dispatch.GPUUnavailableError, match="this machine"):
        plan_device("gpu", [CPU])
    with pytest.raises(ValueError, match="'tpu'"):
        plan_device("tpu", [CPU])


def test_resolve_and_check_scheduler():
    assert clusters.resolve_scheduler("auto", 2, True) == "local-cuda"
    assert clusters.resolve_scheduler("auto", 8, False) == "threads"  # no dask-cuda
    assert clusters.resolve_scheduler("auto", None, True) == "threads"  # NVML cannot tell
    assert clusters.check_scheduler("tls://node-1:8786") == "tls://node-1:8786"
    for bad in ("thread", "tcp://host", "127.0.0.1:8786"):
        with pytest.raises(SchedulerError, match="tcp://HOST:PORT"):
            clusters.check_scheduler(bad)


def test_worker_gpu_here_matches_dispatch():
    here = clusters.worker_gpu()
    assert here.reason == dispatch.gpu_unavailable_reason()
    assert here.real_gpu == (here.reason is None and not dispatch.simulator_enabled() and bool(dispatch.visible_gpu_count()))


def test_cuda_cluster_refused_with_a_reason_without_gpus(monkeypatch):
    monkeypatch.setattr(dispatch, "visible_gpu_count", lambda: 0)
    monkeypatch.setattr(dispatch, "simulator_enabled", lambda: False)
    reason = clusters.cuda_cluster_unavailable_reason()
    assert "dask-cuda" in reason or "no visible NVIDIA GPU" in reason
    with pytest.raises(dispatch.GPUUnavailableError, match="cannot start a GPU cluster"):
        numbadask.cluster(device="gpu")
    with pytest.raises(SchedulerError, match="local-cuda"):
        with clusters.runtime("local-cuda"):
            pass


def test_cluster_on_cpu_and_stats_through_it(rng):
    a = rng.random((300, 40))
    client = numbadask.cluster(device="cpu", n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    try:
        assert type(client.cluster).__name__ == "LocalCluster" and len(client.scheduler_info()["workers"]) == 2
        x = da.from_array(a, chunks=(100, 40))
        np.testing.assert_allclose(numbadask.mean(x, axis=0).compute(), a.mean(axis=0), rtol=1e-12)
    finally:
        client.shutdown()


def test_runtime_local_reports_workers_and_shuts_down():
    with clusters.runtime("local", n_workers=1) as rt:
        assert rt.client is not None and rt.workers == [clusters.worker_gpu()]
        assert rt.compute([da.ones(10, chunks=5).sum()], progress=False) == [10.0]
        x = rt.persist(da.arange(6, chunks=3))
        assert rt.compute([x.sum()], progress=True) == [15]
        cluster = rt.client.cluster
    assert cluster.status.name == "closed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_fails_fast_when_unreachable():
    start = time.monotonic()
    with pytest.raises(SchedulerError, match="could not reach the Dask scheduler"):
        numbadask.connect(f"tcp://127.0.0.1:{_free_port()}", timeout=2)
    assert time.monotonic() - start < 10


def test_to_gpus_keeps_the_meta_on_the_host():
    x = da.ones((4, 4), chunks=2)
    moved = clusters.to_gpus(x)
    assert type(moved._meta) is np.ndarray and moved.chunks == x.chunks  # no CuPy in the client


def test_progress_bar_only_for_work_longer_than_a_second(capsys):
    import io
    import time

    import dask

    slow = dask.delayed(time.sleep)(1.3)
    with clusters.runtime("threads") as rt:
        rt.compute([da.ones(4, chunks=2).sum()], progress=True)
        assert capsys.readouterr().out == ""  # quick work: no bar
        rt.compute([slow], progress=True)
        assert "100%" in capsys.readouterr().out
    assert not clusters.is_terminal(io.StringIO())  # pytest's captured stdout is no terminal either
