"""The ``numbadask`` command: stats over real files, info, bench, and its errors."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numbadask.main import cli, stats


def run_json(capsys, *argv: str) -> dict:
    """``numbadask stats ... --json`` in-process; stdout must be one JSON document."""
    assert cli.main(["stats", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def data(rng) -> np.ndarray:
    a = rng.standard_normal((300, 70)) * 10 + 3
    a[5, 7] = np.nan
    return a


def test_stats_npy_default_moments_match_numpy(tmp_path, capsys, data):
    path = tmp_path / "a.npy"
    np.save(path, data)
    out = run_json(capsys, str(path), "--chunks", "64x-1", "--skipna", "--ddof", "1")
    assert out["shape"] == [300, 70] and out["chunks"] == [64, 70] and out["device"] == "CPU"
    got = out["stats"]
    assert got["count"] == data.size - 1
    for name, ref in [("mean", np.nanmean), ("sum", np.nansum), ("min", np.nanmin), ("max", np.nanmax)]:
        assert got[name] == pytest.approx(ref(data), rel=1e-12), name
    assert got["var"] == pytest.approx(np.nanvar(data, ddof=1), rel=1e-12)
    assert got["std"] == pytest.approx(np.nanstd(data, ddof=1), rel=1e-12)


def test_stats_named_family_along_an_axis(tmp_path, capsys, data):
    path = tmp_path / "a.npy"
    np.save(path, data)
    out = run_json(capsys, str(path), "--stats", "mean,std,argmax,count,ptp", "--axis", "0", "--chunks", "100x30")
    got = {k: np.array(v, dtype=float) for k, v in out["stats"].items()}
    assert sorted(got) == ["argmax", "count", "mean", "ptp", "std"]
    good = ~np.isnan(data).any(axis=0)  # the NaN column gives NaN (mean) or its index (argmax)
    np.testing.assert_allclose(got["mean"][good], data.mean(axis=0)[good], rtol=1e-12)
    assert np.isnan(got["mean"][7]) and got["argmax"][7] == 5
    np.testing.assert_allclose(got["std"][good], data.std(axis=0)[good], rtol=1e-12)
    np.testing.assert_array_equal(got["argmax"][good], data.argmax(axis=0)[good])
    np.testing.assert_array_equal(got["count"], (~np.isnan(data)).sum(axis=0))
    np.testing.assert_allclose(got["ptp"][good], np.ptp(data, axis=0)[good], rtol=1e-12)


def test_stats_zarr_and_hdf5(tmp_path, capsys, data):
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    clean = np.nan_to_num(data)
    for fmt in (2, 3):
        z = zarr.create_array(tmp_path / f"v{fmt}.zarr", shape=clean.shape, chunks=(50, 70), dtype=clean.dtype, zarr_format=fmt)
        z[:] = clean
        out = run_json(capsys, str(tmp_path / f"v{fmt}.zarr"), "--stats", "sum,min", "--axis", "1")
        np.testing.assert_allclose(out["stats"]["sum"], clean.sum(axis=1), rtol=1e-12)
        np.testing.assert_array_equal(out["stats"]["min"], clean.min(axis=1))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("/group/x", data=clean.astype(np.float32), chunks=(60, 70))
    out = run_json(capsys, f"{tmp_path / 'f.h5'}:/group/x", "--stats", "mean")
    assert out["dtype"] == "float32" and out["chunks"][1] == 70
    assert out["stats"]["mean"] == pytest.approx(clean.astype(np.float32).astype(np.float64).mean(), rel=1e-6)


def test_stats_random_source_is_lazy_and_right(capsys):
    from numbadask.main.sources import open_source

    reference = open_source("random:400x50:float32", chunks=(100, 50)).compute()
    out = run_json(capsys, "random:400x50:float32", "--chunks", "100x50", "--stats", "mean,max")
    assert out["dtype"] == "float32" and out["shape"] == [400, 50]
    assert out["stats"]["mean"] == pytest.approx(float(reference.astype(np.float64).mean()), rel=1e-6)
    assert out["stats"]["max"] == float(reference.max())


def test_stats_table_on_processes_scheduler(tmp_path, capsys, data):
    path = tmp_path / "a.npy"
    np.save(path, np.nan_to_num(data))
    assert cli.main(["stats", str(path), "--stats", "mean", "--scheduler", "processes", "--chunks", "100x-1"]) == 0
    out = capsys.readouterr().out
    assert "scheduler processes" in out and "device CPU" in out and "GB/s" in out and "elapsed" in out
    assert repr(float(np.nan_to_num(data).mean()))[:12] in out


def test_no_arguments_runs_stats_on_the_default_array(monkeypatch, capsys):
    monkeypatch.setattr(stats, "default_source", lambda: "random:512x256:float64")
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "stats of random:512x256:float64" in out and "mean" in out and "GB/s" in out
    assert stats.default_source.__module__  # the real one is sized to the machine:
    assert monkeypatch.undo() is None and "x4096:float64" in stats.default_source()


def test_info(capsys):
    assert cli.main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versions"]["dask"] not in ("", "not installed") and "cupy" in report["versions"]
    assert report["gpus"] or report["no_gpu_reason"]
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "distributed" in out and "CUDA simulator:" in out and "dask-cuda" in out


def test_bench_small(capsys):
    assert cli.main(["bench", "--size", "4MiB", "--chunk-size", "1MiB", "--runs", "1", "--functions", "mean,nanmean,moments", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| mean |" in out and "| moments |" in out and "dask.array GB/s" in out and "NO" not in out


@pytest.mark.cuda_kernels
def test_stats_on_gpu_kernels(capsys):
    out = run_json(capsys, "random:200x30", "--chunks", "100x30", "--device", "gpu", "--stats", "mean,max")
    assert out["device"].startswith("GPU")


# ---------------------------------------------------------------------------- errors


def error_of(capsys, *argv: str) -> str:
    """One line on stderr, nothing on stdout, exit status 1."""
    assert cli.main(list(argv)) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("numbadask: error: ")
    return line


def test_error_missing_file(tmp_path, capsys):
    assert "no such file or directory" in error_of(capsys, "stats", str(tmp_path / "nope.npy"))


def test_error_wrong_dataset_path(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["x"] = np.ones(3)
    assert "no dataset '/y'" in error_of(capsys, "stats", f"{tmp_path / 'f.h5'}:/y")


def test_error_unknown_stat_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["stats", "random:10", "--stats", "mean,median"])
    assert exc.value.code == 2 and "unknown stat 'median'" in capsys.readouterr().err


def test_error_gpu_without_gpu(capsys, monkeypatch):
    from numbadask.engine import dispatch

    monkeypatch.setattr(dispatch, "gpu_unavailable_reason", lambda: "no GPU here (test)")
    assert "--device gpu" in error_of(capsys, "stats", "random:10", "--device", "gpu")


def test_error_unreachable_scheduler_fails_fast(capsys, monkeypatch):
    import socket
    import time

    from numbadask.main import clusters

    monkeypatch.setattr(clusters, "CONNECT_TIMEOUT_S", 2.0)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    line = error_of(capsys, "stats", "random:10", "--scheduler", address)
    assert f"could not reach the Dask scheduler at {address} within 2 s" in line
    assert time.monotonic() - start < 10


def test_bench_errors(capsys, monkeypatch):
    from numbadask.engine import dispatch

    with pytest.raises(SystemExit) as exc:  # a usage error
        cli.main(["bench", "--functions", "mean,median"])
    assert exc.value.code == 2 and "bench cannot time 'median'" in capsys.readouterr().err
    monkeypatch.setattr(dispatch, "gpu_unavailable_reason", lambda: "no GPU here (test)")
    assert "no GPU here (test)" in error_of(capsys, "bench", "--device", "gpu")


def test_error_bad_axis_names_the_axis(capsys):
    assert "axis 5" in error_of(capsys, "stats", "random:10x10", "--axis", "5")


def test_debug_shows_the_traceback(tmp_path):
    for argv in (["stats", str(tmp_path / "nope.npy"), "--debug"], ["--debug", "stats", str(tmp_path / "nope.npy")]):
        with pytest.raises(Exception, match="no such file"):
            cli.main(argv)


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["stats", "random:10", "--scheduler", "nowhere"])
    assert exc.value.code == 2 and "tcp://HOST:PORT" in capsys.readouterr().err


def test_parse_bytes():
    assert cli.parse_bytes("1GiB") == 2**30
    assert cli.parse_bytes("1.5 MB") == 1_500_000
    with pytest.raises(argparse.ArgumentTypeError, match="'lots'"):
        cli.parse_bytes("lots")


def test_console_script_is_installed():
    # This interpreter's script first: another numbadask may be earlier on PATH.
    here = Path(sys.executable).with_name("numbadask")
    exe = str(here) if here.exists() else shutil.which("numbadask")
    assert exe, "the numbadask console script is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "stats" in out and "info" in out and "bench" in out and "synthetic array" in out
