"""Benchmark: user-defined reductions (numbadask.reduction) against the built-ins and dask.array.

1 GiB float64 in memory, 8, 32 and 128 MiB row chunks, threaded scheduler, one process.
Each round times, in turn: the 2-thread Numba read ceiling, the built-in numbadask.sum,
a user-defined sum of squares (defined below, as a user would), the same reduction
through dask.array.reduction over NumPy code, and `(x**2).sum()` in dask.array; then the
pairs that decide whether a built-in could use the generic path: a user-defined plain
sum against numbadask.sum, a user-defined max - min against numbadask.ptp, and a
user-defined non-NaN count against numbadask.count (1% NaN).

Usage:  python bench/bench_custom.py [--size-gib 1] [--runs 7] [--out bench/results]
"""

from __future__ import annotations

import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import _plain_sum, bench_main, interleaved_times, machine_name  # noqa: E402

import numbadask  # noqa: E402

MiB = 2**20


def _add(a, b):
    return (a[0] + b[0],)


@numbadask.reduction(merge=_add, identity=(0.0,))
def user_sum_of_squares(x):
    return (x * x,)


@numbadask.reduction(merge=_add, identity=(0.0,))
def user_sum(x):
    return (x,)


def _minmax(a, b):
    return (min(a[0], b[0]), max(a[1], b[1]))


@numbadask.reduction(merge=_minmax, identity=(np.inf, -np.inf), finalize=lambda s: s[1] - s[0])
def user_range(x):
    return (x, x)


@numbadask.reduction(merge=_add, identity=(0.0,))
def user_count(x):
    return (1.0 if x == x else 0.0,)


def _squares_chunk(x, axis, keepdims):
    return (x**2).sum(axis=axis, keepdims=keepdims)


def dask_reduction_sum_of_squares(x):
    """The same reduction written with dask.array.reduction over NumPy code."""
    return da.reduction(x, _squares_chunk, np.sum, dtype=np.float64)


def run(size_gib: float, runs: int) -> dict:
    n = int(size_gib * 2**30 / 8)
    side = 8192
    a = np.random.default_rng(0).random((n // side, side))
    a_nan = a.copy()
    a_nan.reshape(-1)[::100] = np.nan
    halves = np.array_split(a.reshape(-1), 2)
    _plain_sum(halves[0][:16])
    pool = ThreadPoolExecutor(2)
    rows = []
    for chunk_mib in (8, 32, 128):
        chunks = (chunk_mib * MiB // (8 * side), side)
        x = da.from_array(a, chunks=chunks).persist()
        xn = da.from_array(a_nan, chunks=chunks).persist()
        contenders = {
            "ceiling": lambda: list(pool.map(_plain_sum, halves)),
            "numbadask.sum": lambda: numbadask.sum(x).compute(),
            "user.sum_of_squares": lambda: user_sum_of_squares(x).compute(),
            "dask.reduction.sum_of_squares": lambda: dask_reduction_sum_of_squares(x).compute(),
            "dask.(x**2).sum()": lambda: (x**2).sum().compute(),
            "user.sum": lambda: user_sum(x).compute(),
            "numbadask.ptp": lambda: numbadask.ptp(x).compute(),
            "user.range": lambda: user_range(x).compute(),
            "numbadask.count": lambda: numbadask.count(xn).compute(),
            "user.count": lambda: user_count(xn).compute(),
        }
        squares = float(contenders["dask.reduction.sum_of_squares"]())
        assert np.isclose(float(contenders["user.sum_of_squares"]()), squares, rtol=1e-10)
        assert np.isclose(float(contenders["user.sum"]()), float(contenders["numbadask.sum"]()), rtol=1e-10)
        assert float(contenders["user.range"]()) == float(contenders["numbadask.ptp"]())
        assert float(contenders["user.count"]()) == float(contenders["numbadask.count"]())
        times = interleaved_times(contenders, runs)

        def ratio(slow: str, fast: str) -> float:
            """Median over rounds of time(slow) / time(fast): > 1 means ``fast`` wins."""
            return statistics.median(s / f for s, f in zip(times[slow], times[fast]))

        row = {
            "chunk_mib": chunk_mib,
            "gbps": {name: a.nbytes / statistics.median(t) / 1e9 for name, t in times.items()},
            "user_sum_of_squares_vs_numbadask_sum": ratio("numbadask.sum", "user.sum_of_squares"),
            "user_sum_of_squares_vs_dask_reduction": ratio("dask.reduction.sum_of_squares", "user.sum_of_squares"),
            "user_sum_of_squares_vs_dask_expression": ratio("dask.(x**2).sum()", "user.sum_of_squares"),
            "user_sum_vs_numbadask_sum": ratio("numbadask.sum", "user.sum"),
            "user_range_vs_numbadask_ptp": ratio("numbadask.ptp", "user.range"),
            "user_count_vs_numbadask_count": ratio("numbadask.count", "user.count"),
            "user_sum_of_squares_vs_ceiling": ratio("ceiling", "user.sum_of_squares"),
            # The most any reduction that reads the data once could gain over dask here.
            "ceiling_vs_dask_reduction": ratio("dask.reduction.sum_of_squares", "ceiling"),
            "times_s": times,
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "times_s"}), flush=True)
    pool.shutdown()
    return {"machine": machine_name(), "array_gib": a.nbytes / 2**30, "runs": runs, "results": rows}


def markdown(report: dict) -> str:
    lines = [
        f"# User-defined reductions on {report['machine']}",
        "",
        f"{report['array_gib']:.2f} GiB float64 in memory, row chunks, threaded scheduler, {report['runs']} "
        "interleaved rounds after a warm-up round. Ratios are medians of per-round time ratios "
        "(> 1: the user-defined reduction is faster).",
        "",
        "| chunks (MiB) | user sumsq / numbadask.sum | user sumsq / dask.reduction | user sumsq / dask `(x**2).sum()` "
        "| user sum / numbadask.sum | user range / numbadask.ptp | user count / numbadask.count "
        "| user sumsq / read ceiling | read ceiling / dask.reduction |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['chunk_mib']} | {r['user_sum_of_squares_vs_numbadask_sum']:.2f} | "
            f"{r['user_sum_of_squares_vs_dask_reduction']:.1f}x | {r['user_sum_of_squares_vs_dask_expression']:.1f}x | "
            f"{r['user_sum_vs_numbadask_sum']:.2f} | {r['user_range_vs_numbadask_ptp']:.2f} | "
            f"{r['user_count_vs_numbadask_count']:.2f} | {r['user_sum_of_squares_vs_ceiling']:.0%} | "
            f"{r['ceiling_vs_dask_reduction']:.1f}x |"
        )
    lines += ["", "GB/s (median over rounds):", "", "| chunks (MiB) | " + " | ".join(report["results"][0]["gbps"]) + " |"]
    lines.append("|---" * (1 + len(report["results"][0]["gbps"])) + "|")
    for r in report["results"]:
        lines.append(f"| {r['chunk_mib']} | " + " | ".join(f"{v:.1f}" for v in r["gbps"].values()) + " |")
    lines += ["", "Command: `python bench/bench_custom.py`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    bench_main(__doc__, "custom", run, markdown, runs=7)


if __name__ == "__main__":
    main()
