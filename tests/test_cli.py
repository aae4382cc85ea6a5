"""The ``numbadask`` console script's main job, on small arrays."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from numbadask import cli


def test_main_job_runs_and_agrees(capsys):
    assert cli.main(["--size", "16MiB", "--chunk-size", "4MiB", "--repeat", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "on the CPU" in out and "agree" in out and "GB/s" in out and "dask.array mean" in out


@pytest.mark.cuda_kernels
def test_main_job_on_gpu_kernels(capsys):
    assert cli.main(["--size", "1MiB", "--chunk-size", "256KiB", "--repeat", "1", "--device", "gpu"]) == 0
    assert "agree" in capsys.readouterr().out


def test_parse_bytes():
    assert cli.parse_bytes("1GiB") == 2**30
    assert cli.parse_bytes("1.5 MB") == 1_500_000
    with pytest.raises(argparse.ArgumentTypeError, match="'lots'"):
        cli.parse_bytes("lots")


def test_bad_repeat_exits_2(capsys):
    assert cli.main(["--repeat", "0"]) == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_console_script_is_installed():
    exe = shutil.which("numbadask")
    assert exe, "the numbadask console script is not on PATH"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "synthetic ~1 GiB array" in out
