"""Benchmark: numbadask.mean against dask.array's mean on the same in-memory array.

One process, one 2 GiB float64 array (C-ordered), three chunkings: 256 MiB row strips,
32 MiB row strips and 32 MiB square chunks (strided views).  For each: median of >= 5
runs after warm-up, GB/s, ratio to dask.array, fraction of a 2-thread Numba read
ceiling measured in the same run, and peak memory growth.  Then the first call in a
fresh process, with Numba's on-disk cache cold and warm.

Usage:  python bench/bench_mean.py [--size-gib 2] [--runs 9] [--out bench/results] [--tag before]
        (``DASK_ARRAY__QUERY_PLANNING=True`` first: both sides on dask's expression Arrays)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FIRST_CALL,
    MiB,
    _plain_sum,
    bench_main,
    chunkings,
    interleaved_times,
    machine_name,
    peak_growth_bytes,
)

import numbadask  # noqa: E402


def first_call_seconds() -> dict[str, float]:
    """Import and first-mean times in a fresh process, Numba cache cold then warm."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "NUMBADASK_CACHE_DIR": cache}  # Numba's, and the library's own
        for label in ("cold_cache", "warm_cache"):
            text = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True)
            imported, first = map(float, text.stdout.split())
            out["import_s"] = imported
            out[f"first_mean_{label}_s"] = first
    return out


def run(size_gib: float, runs: int) -> dict:
    side = int(np.sqrt(size_gib * 2**30 / 8))
    a = np.random.default_rng(0).random((side, side))
    halves = np.array_split(a.reshape(-1), 2)
    _plain_sum(halves[0][:16])
    pool = ThreadPoolExecutor(2)
    rows = []
    for name, chunks in chunkings(side).items():
        x = da.from_array(a, chunks=chunks).persist()  # blocks are views of `a`
        assert np.isclose(numbadask.mean(x).compute(), x.mean().compute(), rtol=1e-12)
        times = interleaved_times(
            {
                "ceiling": lambda: list(pool.map(_plain_sum, halves)),
                "numbadask": lambda: numbadask.mean(x).compute(),
                "dask": lambda: x.mean().compute(),
            },
            runs,
        )
        t = {k: statistics.median(v) for k, v in times.items()}
        ratio = statistics.median(d / o for d, o in zip(times["dask"], times["numbadask"]))
        frac = statistics.median(c / o for c, o in zip(times["ceiling"], times["numbadask"]))
        frac_dask = statistics.median(c / d for c, d in zip(times["ceiling"], times["dask"]))
        rows.append(
            {
                "chunking": name,
                "chunks": list(chunks),
                "n_chunks": int(np.prod(x.numblocks)),  # (query planning's Array has no npartitions)
                "ceiling_gbps": a.nbytes / t["ceiling"] / 1e9,
                "numbadask_s": t["numbadask"],
                "dask_s": t["dask"],
                "numbadask_gbps": a.nbytes / t["numbadask"] / 1e9,
                "dask_gbps": a.nbytes / t["dask"] / 1e9,
                "speedup_vs_dask": ratio,
                "numbadask_fraction_of_ceiling": frac,
                "dask_fraction_of_ceiling": frac_dask,
                "numbadask_peak_growth_mib": peak_growth_bytes(lambda: numbadask.mean(x).compute()) / MiB,
                "dask_peak_growth_mib": peak_growth_bytes(lambda: x.mean().compute()) / MiB,
                "chunk_mib": chunks[0] * chunks[1] * 8 / MiB,
                "raw_seconds": times,
            }
        )
    pool.shutdown()
    return {
        "machine": machine_name(),
        "cores": os.cpu_count(),
        "array": {"shape": list(a.shape), "dtype": "float64", "gib": a.nbytes / 2**30},
        "runs": runs,
        "scheduler": "threads",
        # DASK_ARRAY__QUERY_PLANNING=True before the run: dask's expression-backed Arrays.
        "query_planning": bool(getattr(da, "array_expr_enabled", lambda: False)()),
        "method": "rounds of (ceiling, numbadask, dask) in turn; medians, and medians of per-round ratios",
        "results": rows,
        "first_call": first_call_seconds(),
        "versions": {"numbadask": numbadask.__version__, "dask": dask.__version__, "numpy": np.__version__},
    }


def markdown(report: dict) -> str:
    lines = [
        f"# mean: numbadask vs dask.array on {report['machine']}",
        "",
        f"{report['array']['gib']:.2f} GiB float64 in memory, threaded scheduler, "
        f"query planning {'on' if report.get('query_planning') else 'off'}, {report['runs']} "
        "rounds after a warm-up round; each round times the 2-thread Numba read ceiling, "
        "numbadask.mean and dask.array's mean in turn. GB/s are medians; ratios are "
        "medians of per-round ratios.",
        "",
        "| chunking | ceiling GB/s | numbadask GB/s | dask GB/s | speed-up | numbadask / ceiling | dask / ceiling | peak growth numbadask / dask (MiB) | chunk (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['chunking']} | {r['ceiling_gbps']:.1f} | {r['numbadask_gbps']:.1f} | {r['dask_gbps']:.1f} | {r['speedup_vs_dask']:.2f}x | "
            f"{r['numbadask_fraction_of_ceiling']:.0%} | {r['dask_fraction_of_ceiling']:.0%} | "
            f"{r['numbadask_peak_growth_mib']:.1f} / {r['dask_peak_growth_mib']:.1f} | {r['chunk_mib']:.0f} |"
        )
    fc = report["first_call"]
    lines += [
        "",
        f"First call in a fresh process: import {fc['import_s']:.2f} s; first mean "
        f"{fc['first_mean_cold_cache_s']:.2f} s with Numba's cache cold (compiles), "
        f"{fc['first_mean_warm_cache_s']:.2f} s with it warm (`cache=True`).",
        "",
        f"Command: `{report.get('command', 'python bench/bench_mean.py')}`",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    bench_main(__doc__, "mean", run, markdown, runs=9)


if __name__ == "__main__":
    main()
