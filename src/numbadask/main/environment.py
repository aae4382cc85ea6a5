"""What this machine offers numbadask: package versions, visible GPUs, the simulator.

Read without importing the packages (versions come from their metadata) and without a
CUDA context (GPUs come from NVML), so asking never changes what a later cluster sees.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from numbadask.engine import dispatch

#: Each package shown, and the distributions that provide it (CuPy ships per CUDA).
PACKAGES: dict[str, tuple[str, ...]] = {
    "numbadask": ("numbadask",),
    "numba": ("numba",),
    "numba-cuda": ("numba-cuda",),
    "dask": ("dask",),
    "distributed": ("distributed",),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"),
    "dask-cuda": ("dask-cuda",),
    "zarr": ("zarr",),
    "h5py": ("h5py",),
    "numbagg": ("numbagg",),
}
NOT_INSTALLED = "not installed"


def numbadask_version() -> str:
    """This numbadask's version, from its metadata ("0+unknown" in a source tree that was
    never installed).

    Examples
    --------
    >>> numbadask_version() != ""
    True
    """
    try:
        return version("numbadask")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def package_version(distributions: tuple[str, ...]) -> str:
    """The version of the first of ``distributions`` installed, else "not installed".

    Examples
    --------
    >>> package_version(("no-such-distribution",))
    'not installed'
    """
    for name in distributions:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return NOT_INSTALLED


def package_versions() -> dict[str, str]:
    """``{package: version or "not installed"}`` for :data:`PACKAGES`.

    Examples
    --------
    >>> package_versions()["dask"] != "not installed"
    True
    """
    return {name: package_version(dists) for name, dists in PACKAGES.items()}


def _visible_indices(count: int) -> list[int]:
    """NVML indices that CUDA_VISIBLE_DEVICES (integer form) leaves visible."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    items = [v.strip() for v in visible.split(",")][: dispatch.listed_gpus(visible, count)]  # CUDA stops at the first bad one
    if not all(v.isdigit() for v in items):  # UUIDs/MIG names: NVML order, first len(items)
        return list(range(len(items)))
    return [int(v) for v in items]


def visible_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """The GPUs visible (``name``, ``memory_gib``) and, when there are none, why.

    Examples
    --------
    >>> gpus, why = visible_gpus()
    >>> bool(gpus) != bool(why)
    True
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return [], "CUDA_VISIBLE_DEVICES hides every GPU"
    try:
        import pynvml
    except ImportError:
        return [], "NVML is not installed (nvidia-ml-py, which the cuda12/cuda13 extras bring)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], f"NVML found no NVIDIA driver ({exc})"
    try:
        gpus = []
        for index in _visible_indices(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append({"index": index, "name": name.decode() if isinstance(name, bytes) else name, "memory_gib": round(memory / 2**30, 1)})
    finally:
        pynvml.nvmlShutdown()
    return gpus, None if gpus else "NVML sees no GPU"


def report() -> dict[str, Any]:
    """Everything ``numbadask info`` shows, as data.

    Examples
    --------
    >>> sorted(report())
    ['cuda_simulator', 'gpus', 'no_gpu_reason', 'versions']
    """
    gpus, why = visible_gpus()
    return {
        "versions": package_versions(),
        "gpus": gpus,
        "no_gpu_reason": why,
        "cuda_simulator": dispatch.simulator_enabled(),
    }
