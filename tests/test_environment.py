"""``numbadask info``'s data: versions from metadata, GPUs from NVML (a stand-in NVML
here, since this machine has none), never a CUDA context."""

from __future__ import annotations

import sys
import types

import pytest

from numbadask.main import environment


class FakeNVMLError(Exception):
    pass


def fake_pynvml(count: int, fail_init: bool = False) -> types.ModuleType:
    """An NVML with ``count`` GPUs named "GPU <i>", each with (i + 1) x 16 GiB."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = FakeNVMLError
    nvml.calls = []

    def init():
        if fail_init:
            raise FakeNVMLError("Driver Not Loaded")
        nvml.calls.append("init")

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: count
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetName = lambda h: f"GPU {h}".encode()
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=(h + 1) * 16 * 2**30)
    return nvml


def test_gpus_listed_by_nvml_and_filtered_by_cuda_visible_devices(monkeypatch):
    nvml = fake_pynvml(3)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus, why = environment.visible_gpus()
    assert why is None and [g["name"] for g in gpus] == ["GPU 0", "GPU 1", "GPU 2"]
    assert gpus[2]["memory_gib"] == 48.0 and nvml.calls[-1] == "shutdown"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0,7")
    assert [g["index"] for g in environment.visible_gpus()[0]] == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert environment.visible_gpus() == ([], "CUDA_VISIBLE_DEVICES hides every GPU")


@pytest.mark.parametrize(
    "nvml, reason",
    [
        (None, "NVML is not installed"),
        (fake_pynvml(2, fail_init=True), "no NVIDIA driver (Driver Not Loaded)"),
        (fake_pynvml(0), "NVML sees no GPU"),
    ],
)
def test_why_no_gpu(monkeypatch, nvml, reason):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # None: `import pynvml` fails
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus, why = environment.visible_gpus()
    assert gpus == [] and reason in why


def test_report_never_imports_cuda_packages():
    import subprocess

    code = (
        "import sys, numbadask.main.environment as e; r = e.report()\n"
        "print(','.join(m for m in ('cupy', 'numba.cuda', 'dask_cuda', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
