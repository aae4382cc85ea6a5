"""Helpers shared by the benchmarks: timing, the read ceiling, memory, machine name."""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numba
import numpy as np

from numbadask.main.timing import interleaved_times  # noqa: F401  (the benchmarks' one timing loop)

MiB = 2**20


def chunkings(side: int, names: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Chunk shapes of a C-ordered ``(side, side)`` float64 array by name (all, or
    ``names`` in that order): 256 MiB and 32 MiB row strips, and 32 MiB square chunks
    (strided views: ``square`` rows of ``square`` elements each)."""
    square = int(np.sqrt(32 * MiB / 8))
    shapes = {
        "256MiB-rows": (max(1, 256 * MiB // (8 * side)), side),
        "32MiB-rows": (max(1, 32 * MiB // (8 * side)), side),
        "32MiB-squares": (square, square),
    }
    if names is None:
        return shapes
    unknown = [n for n in names if n not in shapes]
    if unknown:
        raise ValueError(f"unknown chunkings {unknown}; choose from {list(shapes)}")
    return {n: shapes[n] for n in names}


def chunking_label(name: str) -> str:
    """``"32MiB-squares"`` -> ``"32 MiB squares"``."""
    return name.replace("MiB-", " MiB ")


def first_call_snippet(module: str = "numbadask", reduction: str = "mean") -> str:
    """Python source for a fresh process: times importing numbadask, dask.array and
    ``module``, then the first compute of ``module.reduction`` on
    ``da.ones((2048, 2048), chunks=1024)``; prints both seconds."""
    also = "" if module == "numbadask" else f"\nimport {module}"
    return f"""
import time
start = time.perf_counter()
import numbadask, dask.array as da{also}
imported = time.perf_counter()
{module}.{reduction}(da.ones((2048, 2048), chunks=1024)).compute()
print(imported - start, time.perf_counter() - imported)
"""


#: The first numbadask.mean in a fresh process (``bench_mean.py``, ``bench_first_call.py``).
FIRST_CALL = first_call_snippet()


def median_time(func: Callable[[], Any], runs: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@numba.njit(nogil=True, fastmath={"reassoc"})
def _two_stream_sum(a, b):
    acc = 0.0
    for i in range(a.size):
        acc += a[i] + b[i]
    return acc


def _plain_sum(x):
    """The fastest plain read we know here: a vectorized sum reading two equal runs of
    ``x`` side by side, each from a 64-byte boundary (NumPy sums the few values before
    and after them).  Two streams per core read 5-7% faster than one on this
    machine (one stream was the ceiling until 2026-11-26), and in its fast state loads
    that do not straddle cache lines another ~3% (unaligned until 2026-11-27; NumPy's
    large buffers start 16 bytes past a page; ``bench/NOTES.md``)."""
    head = min(x.size, (-x.ctypes.data % 64) // x.itemsize)
    per_line = 64 // x.itemsize
    run = (x.size - head) // 2 // per_line * per_line
    body = x[head : head + 2 * run]
    return _two_stream_sum(body[:run], body[run:]) + float(x[:head].sum()) + float(x[head + 2 * run :].sum())


def read_ceiling_gbps(flat: np.ndarray, threads: int = 2, runs: int = 5) -> float:
    """GB/s of the plain vectorized njit read (:func:`_plain_sum`) over ``flat`` split
    across ``threads``: what reading the array costs on this machine, the bound for
    any reduction."""
    parts = np.array_split(flat, threads)
    _plain_sum(parts[0][:16])
    with ThreadPoolExecutor(threads) as pool:
        seconds = median_time(lambda: list(pool.map(_plain_sum, parts)), runs=runs)
    return flat.nbytes / seconds / 1e9


def peak_growth_bytes(func: Callable[[], Any]) -> int:
    """Peak traced allocation during ``func()`` above what was live before (NumPy
    reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _map_large_allocations() -> None:
    """Make glibc serve every allocation of 128 KiB or more with a fresh mapping, freed
    back to the system: by default it raises that threshold to the size of blocks freed
    earlier and keeps them resident, so a repeated temporary would not grow the peak."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD, fixed (no more dynamic raising)
    libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD


def peak_rss_growth_bytes(func: Callable[[], Any]) -> int | None:
    """Peak resident memory during ``func()`` above the resident memory before, or
    None where Linux's peak counter cannot be reset.  Unlike tracemalloc it sees
    every allocation, Numba's and C libraries' included: the peak (``VmHWM``) is reset
    to the current size through ``/proc/self/clear_refs`` first, and large blocks are
    mapped afresh (:func:`_map_large_allocations`)."""
    _map_large_allocations()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _proc_status_bytes("VmRSS")
    except (OSError, StopIteration):
        return None
    func()
    return max(0, _proc_status_bytes("VmHWM") - before)


def machine_name() -> str:
    """A file-name-safe machine label: cores and CPU model, e.g. ``cpu-2core-amd-epyc``."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1] for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os

    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:40] or "unknown"
    return f"cpu-{os.cpu_count()}core-{slug}"


def command_line() -> str:
    """This process's command line, interpreter included, for the reports."""
    return shlex.join([sys.executable, *sys.argv])


def output_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark's output takes: ``--out`` (folder)
    and ``--tag`` (``before`` -> ``<machine>-<name>-before.json``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--tag", default="", help="suffix of the file names, e.g. before / after")
    return parser


def save_report(report: dict, text: str, name: str, args: argparse.Namespace) -> None:
    """Print ``text`` and save ``<machine>-<name>[-<tag>].json`` and ``.md`` under ``args.out``."""
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "-".join(filter(None, (report["machine"], name, args.tag)))
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{stem}.md").write_text(text)


def bench_main(
    doc: str,
    name: str,
    run: Callable[..., dict],
    markdown: Callable[[dict], str],
    runs: int,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line every CPU benchmark shares: run on the threaded scheduler,
    print the markdown table, save ``<machine>-<name>[-<tag>].json`` and ``.md``.
    ``add_arguments`` adds a benchmark's own options; ``run`` then gets the parsed
    arguments as a third argument.  The report gains the exact ``command``."""
    import dask

    parser = output_parser(doc)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=runs)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    with dask.config.set(scheduler="threads"):
        report = run(args.size_gib, args.runs, *([args] if add_arguments else []))
    report["command"] = command_line()
    save_report(report, markdown(report), name, args)
