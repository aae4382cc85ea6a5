"""The multi-node path for real: a ``dask scheduler`` and two ``dask worker`` processes
on 127.0.0.1, joined by ``numbadask stats --scheduler tcp://...``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from numbadask.main import cli

# A real scheduler and two worker processes: the extended tier.
pytestmark = pytest.mark.extended


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(procs: list[subprocess.Popen]) -> None:
    """Terminate each process group we started (a nanny and its worker), then kill
    what is left after 10 s."""
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_stats_on_a_scheduler_with_two_worker_processes(tmp_path, capsys, rng, monkeypatch):
    from distributed import Client

    from numbadask.main import clusters

    a = rng.standard_normal((500, 120)) * 3 + 7
    np.save(tmp_path / "a.npy", a)
    address = f"tcp://127.0.0.1:{free_port()}"
    logs = open(tmp_path / "cluster.log", "w")
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> None:
        cmd = [sys.executable, "-m", "dask", *args]  # `dask ...` of this interpreter
        procs.append(subprocess.Popen(cmd, stdout=logs, stderr=logs, start_new_session=True))

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard")
        with Client(address, timeout=30):
            pass  # the scheduler is up
        # No worker yet: a clear error after the connect timeout, not a hang.
        monkeypatch.setattr(clusters, "CONNECT_TIMEOUT_S", 1.0)
        assert cli.main(["stats", "random:10", "--scheduler", address]) == 1
        assert f"the Dask scheduler at {address} has no workers" in capsys.readouterr().err
        monkeypatch.undo()
        for i in range(2):
            start("worker", address, "--host", "127.0.0.1", "--no-dashboard", "--nthreads", "1", "--name", f"w{i}")
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        argv = ["stats", str(tmp_path / "a.npy"), "--scheduler", address, "--json", "--chunks", "100x-1"]
        assert cli.main([*argv, "--stats", "mean,std,min,argmax", "--axis", "0", "--ddof", "1"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["scheduler"] == address and out["workers"] == 2 and out["device"] == "CPU"
        got = out["stats"]
        np.testing.assert_allclose(got["mean"], a.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(got["std"], a.std(axis=0, ddof=1), rtol=1e-12)
        np.testing.assert_array_equal(got["min"], a.min(axis=0))
        np.testing.assert_array_equal(got["argmax"], a.argmax(axis=0))
        assert cli.main(argv) == 0  # the default one-pass moments, over the whole array
        got = json.loads(capsys.readouterr().out)["stats"]
        assert got["count"] == a.size and got["var"] == pytest.approx(a.var(), rel=1e-12)
    finally:
        stop(procs)
        logs.close()
    assert all(p.poll() is not None for p in procs)
