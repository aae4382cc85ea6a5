"""The ``numbadask`` command.

For now it runs the main job: a synthetic array held in memory, its mean computed by
numbadask and by dask.array, checked to agree, and both timed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from . import __version__, dispatch
from .api import mean

_UNITS = {"": 1, "B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def parse_bytes(text: str) -> int:
    """``"1GiB"`` -> 1073741824; plain numbers are bytes.

    Examples
    --------
    >>> parse_bytes("256MiB")
    268435456
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 1GiB or 256MiB, got {text!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


def gpu_usable() -> bool:
    """True when a real GPU with CuPy and numba-cuda can run the CUDA kernels here."""
    if dispatch.simulator_enabled() or dispatch.gpu_unavailable_reason():
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device: the CPU it is
        return False


def synthetic_array(nbytes: int, chunk_bytes: int, device: str) -> da.Array:
    """A persisted random float64 array of about ``nbytes`` (on the GPU for "gpu")."""
    cols = 4096
    rows = max(1, nbytes // (8 * cols))
    chunk_rows = max(1, min(rows, chunk_bytes // (8 * cols)))
    x = da.random.default_rng(0).random((rows, cols), chunks=(chunk_rows, cols))
    if device == "gpu" and not dispatch.simulator_enabled():
        import cupy

        x = x.map_blocks(cupy.asarray, dtype=x.dtype, meta=cupy.empty((0, 0)))
    return x.persist()


def _timed(compute: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = compute()
    return time.perf_counter() - start, value


def run_main_job(nbytes: int, chunk_bytes: int, device: str, repeat: int) -> int:
    """Mean of a synthetic array with numbadask and dask.array; print the comparison."""
    if device == "auto":
        device = "gpu" if gpu_usable() else "cpu"
    label = "GPU" if device == "gpu" else "CPU"
    if device == "gpu" and dispatch.simulator_enabled():
        label = "GPU kernels in Numba's CUDA simulator"
    print(f"numbadask {__version__}: mean of a synthetic float64 array on the {label}")
    x = synthetic_array(nbytes, chunk_bytes, device)
    gb = x.nbytes / 1e9
    print(f"array: shape {x.shape}, {x.nbytes / 2**30:.2f} GiB, {x.npartitions} chunks of {x.chunksize}")

    first, ours = _timed(lambda: mean(x, device=device).compute())
    ours_t = min(_timed(lambda: mean(x, device=device).compute())[0] for _ in range(repeat))
    theirs_t, theirs = min((_timed(lambda: x.mean().compute()) for _ in range(repeat)), key=lambda r: r[0])
    ours, theirs = float(ours), float(theirs)
    agree = bool(np.isclose(ours, theirs, rtol=1e-12, atol=0))
    rows = [
        ("numbadask.mean (first call, compiles)", first),
        ("numbadask.mean", ours_t),
        ("dask.array mean", theirs_t),
    ]
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1e3:9.1f} ms  {gb / seconds:7.2f} GB/s")
    print(f"  speed-up over dask.array: {theirs_t / ours_t:.2f}x")
    print(f"  mean: numbadask {ours!r}, dask.array {theirs!r} -> {'agree' if agree else 'DISAGREE'}")
    return 0 if agree else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numbadask",
        description="Fast, exact reductions over Dask arrays with Numba kernels per chunk. "
        "With no arguments: the mean of a synthetic ~1 GiB array, numbadask vs dask.array.",
    )
    parser.add_argument("--size", type=parse_bytes, default=parse_bytes("1GiB"), help="array size (default 1GiB)")
    parser.add_argument("--chunk-size", type=parse_bytes, default=parse_bytes("128MiB"), help="chunk size (default 128MiB)")
    parser.add_argument("--device", choices=dispatch.DEVICES, default="auto", help="where to reduce (default: GPU if usable)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after the first; the best is shown (default 3)")
    parser.add_argument("--version", action="version", version=f"numbadask {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``numbadask`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.repeat < 1:
        print("numbadask: --repeat must be at least 1", file=sys.stderr)
        return 2
    if args.device == "gpu":
        reason = dispatch.gpu_unavailable_reason()
        if reason:
            print(f"numbadask: {reason}", file=sys.stderr)
            return 2
    with dask.config.set(scheduler="threads"):
        return run_main_job(args.size, args.chunk_size, args.device, args.repeat)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
