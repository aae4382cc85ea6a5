"""Which backend reduces a chunk, and moving the chunk there.

This module decides without importing CuPy or ``numba.cuda``: a CuPy array is
recognised by its type's module, and GPU presence is read through NVML (which creates
no CUDA context: touching CUDA in the client before ``LocalCUDACluster`` starts pins
every worker to GPU 0, dask-cuda #719).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Literal

import numba
import numpy as np

Device = Literal["auto", "cpu", "gpu"]
Backend = Literal["cpu", "gpu"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "gpu")

INSTALL_HINT = (
    "install a CUDA build with `pip install 'numbadask[cuda12]'` (or [cuda13]) on a "
    "machine with an NVIDIA GPU, or set NUMBA_ENABLE_CUDASIM=1 before starting Python "
    "to run the CUDA kernels in Numba's simulator"
)


class GPUUnavailableError(RuntimeError):
    """``device="gpu"`` was asked for where no GPU (nor the simulator) can run it."""


class ChunkError(RuntimeError):
    """One chunk could not be reduced: the message names the reduction and its kernel,
    the block, the chunk's type, shape and dtype, and the cause (chained as
    ``__cause__``)."""


def failure_hint(error: BaseException) -> str:
    """Advice for errors with a known remedy (by class name: CuPy is never imported).

    Examples
    --------
    >>> class OutOfMemoryError(Exception): ...
    >>> OutOfMemoryError.__module__ = "cupy.cuda.memory"
    >>> failure_hint(OutOfMemoryError())[:31]
    'the GPU ran out of memory: use '
    >>> failure_hint(ValueError())
    ''
    """
    kind = type(error)
    if kind.__name__ == "OutOfMemoryError" and kind.__module__.startswith("cupy"):
        return (
            "the GPU ran out of memory: use smaller chunks (the kernels need no more than the chunk), "
            "fewer chunks per GPU at once (threads per worker), or an RMM pool (LocalCUDACluster(rmm_pool_size=...))"
        )
    if kind.__name__ == "CudaAPIError" and "OUT_OF_MEMORY" in str(error):
        return "the GPU ran out of memory: use smaller chunks or fewer threads per GPU worker"
    return ""


def is_cupy_array(x: Any) -> bool:
    """True for a CuPy array, decided without importing CuPy.

    Examples
    --------
    >>> import numpy as np
    >>> is_cupy_array(np.zeros(3))
    False
    """
    return type(x).__module__.split(".")[0] == "cupy"


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    return bool(numba.config.ENABLE_CUDASIM)


def listed_gpus(visible: str, count: int) -> int:
    """How many of ``count`` GPUs a ``CUDA_VISIBLE_DEVICES`` value exposes: CUDA takes
    indices (or GPU-/MIG- UUIDs) up to the first entry that names no device.

    Examples
    --------
    >>> listed_gpus("2,0,7", 3), listed_gpus("1", 4), listed_gpus("GPU-8932f937", 1), listed_gpus("-1", 2)
    (2, 1, 1, 0)
    """
    listed = 0
    for item in visible.split(","):
        item = item.strip()
        if not ((item.isdigit() and int(item) < count) or item.startswith(("GPU-", "MIG-"))):
            break
        listed += 1
    return min(listed, count)


def visible_gpu_count() -> int | None:
    """GPUs this process can see, asked of NVML (no CUDA context) and narrowed by
    ``CUDA_VISIBLE_DEVICES``; None when NVML is not installed and so cannot tell.

    Examples
    --------
    >>> count = visible_gpu_count()
    >>> count is None or count >= 0
    True
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return 0
    return count if visible is None else listed_gpus(visible, count)


def gpu_unavailable_reason() -> str | None:
    """Why this process cannot run the CUDA kernels, or None when it can (or might).

    Examples
    --------
    >>> reason = gpu_unavailable_reason()
    >>> reason is None or "NUMBA_ENABLE_CUDASIM" in reason
    True
    """
    if simulator_enabled():
        return None
    missing = [m for m in ("cupy", "numba_cuda") if importlib.util.find_spec(m) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return f"device='gpu' needs {' and '.join(missing)}, which {verb} not installed: {INSTALL_HINT}"
    if visible_gpu_count() == 0:
        return f"device='gpu' found no visible NVIDIA GPU (NVML, CUDA_VISIBLE_DEVICES): {INSTALL_HINT}"
    return None


def _distributed_client_active() -> bool:
    if "distributed" not in sys.modules:
        return False
    try:
        sys.modules["distributed"].default_client()
    except ValueError:
        return False
    return True


def check_device(device: str) -> None:
    """Validate ``device`` in the client; raise early where the GPU cannot be had.

    With a distributed client the workers, not this process, run the kernels, so the
    GPU check is left to them.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "gpu" and not _distributed_client_active():
        reason = gpu_unavailable_reason()
        if reason:
            raise GPUUnavailableError(reason)


def chunk_backend(chunk: Any, device: str) -> Backend:
    """The backend that reduces ``chunk``: the forced one, else where the chunk lives."""
    if device == "auto":
        return "gpu" if is_cupy_array(chunk) else "cpu"
    return device  # type: ignore[return-value]


def to_host(chunk: Any) -> np.ndarray:
    """The chunk as a NumPy array in native byte order (copied off the GPU when it is a
    CuPy array; copied when its bytes are swapped, which no kernel reads)."""
    chunk = chunk.get() if is_cupy_array(chunk) else np.asarray(chunk)
    return chunk if chunk.dtype.isnative else chunk.astype(chunk.dtype.newbyteorder("="))


def to_gpu(chunk: Any) -> Any:
    """The chunk where the CUDA kernels can read it.

    A CuPy array as it is; a NumPy array copied to the current GPU, or left on the
    host when the simulator (which runs kernels on NumPy arrays) is on.
    """
    if simulator_enabled():
        return to_host(chunk)
    if is_cupy_array(chunk):
        return chunk
    reason = gpu_unavailable_reason()
    if reason:
        raise GPUUnavailableError(reason)
    cupy = importlib.import_module("cupy")
    return cupy.asarray(to_host(chunk))


def place(chunk: Any, device: str) -> tuple[Backend, Any]:
    """The backend that reduces ``chunk`` and the chunk where that backend reads it."""
    backend = chunk_backend(chunk, device)
    return backend, (to_host(chunk) if backend == "cpu" else to_gpu(chunk))


def array_module(chunk: Any) -> Any:
    """``cupy`` for a CuPy array, else ``numpy``."""
    return importlib.import_module("cupy") if is_cupy_array(chunk) else np
