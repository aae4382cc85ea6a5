"""Benchmark: the reduction family against dask.array on the same in-memory array.

2 GiB float64 (1% NaN for the nan-functions), 256 MiB and 32 MiB row chunks and 32 MiB
square chunks (strided views of the C-ordered array; ``--chunkings`` picks some), threaded
scheduler, one process. Each round times, for each function in turn, the 2-thread Numba
read ceiling (a contiguous read of the whole array, just before, so the fraction compares
neighbours in time on a shared machine whose bandwidth drifts), the numbadask function and
its dask.array counterpart; `moments` (count, sum, mean, var, std, min, max in one read)
against dask.compute(x.mean(), x.var(), x.min(), x.max()); and the same call as existing
code makes it (``x.mean()``, ``da.nanmean(x)``) under ``numbadask.accelerate()``.
Then one more compute of each, for the peak resident memory it adds, and the host cost
of deciding per call who computes it (the hand-off check, accelerate()'s ``claims``).

Usage:  python bench/bench_family.py [--size-gib 2] [--runs 9] [--out bench/results] [--tag before]
                                    [--chunkings 256MiB-rows,32MiB-rows,32MiB-squares]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MiB,
    _plain_sum,
    bench_main,
    chunking_label,
    chunkings,
    interleaved_times,
    machine_name,
    peak_rss_growth_bytes,
)

import numbadask  # noqa: E402

FUNCTIONS = ["sum", "mean", "min", "max", "var", "argmin", "nansum", "nanmean", "nanmin", "nanmax", "nanvar", "nanargmin"]


#: The Array methods dask.array has; the other functions are called as ``da.<name>``.
METHODS = {"sum", "mean", "min", "max", "var", "argmin"}


def accelerated(name: str, data: da.Array):
    """The same call as existing code makes it (``x.mean()``, ``da.nanmean(x)``), routed
    to numbadask by :func:`numbadask.accelerate`."""
    with numbadask.accelerate():
        result = getattr(data, name)() if name in METHODS else getattr(da, name)(data)
    return result.compute()


def decision_microseconds(x: da.Array, repeats: int = 20_000) -> dict[str, float]:
    """Host cost of deciding per call who computes it: numbadask's hand-off check
    (``checks.kernel_input``) and accelerate()'s ``claims``, in microseconds per call."""
    import timeit

    from numbadask.integrations.accelerate import claims
    from numbadask.engine.checks import kernel_input

    return {
        "kernel_input_us": min(timeit.repeat(lambda: kernel_input(x), number=repeats, repeat=5)) / repeats * 1e6,
        "claims_us": min(timeit.repeat(lambda: claims("mean", x, {}), number=repeats, repeat=5)) / repeats * 1e6,
    }


def numbadask_moments(x):
    return dask.compute(*numbadask.moments(x))


def dask_separate(x):
    """What moments replaces: dask.array's mean, var, min and max, computed together."""
    return dask.compute(x.mean(), x.var(), x.min(), x.max())


def chunking_names(text: str) -> list[str]:
    """``--chunkings``: comma-separated names of :func:`common.chunkings`, checked."""
    try:
        return list(chunkings(1, text.split(",")))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ",".join(chunkings(1))
    parser.add_argument("--chunkings", type=chunking_names, default=names.split(","), help=f"default {names}")


def run(size_gib: float, runs: int, args: argparse.Namespace) -> dict:
    side = int(np.sqrt(size_gib * 2**30 / 8))
    a = np.random.default_rng(0).random((side, side))
    a_nan = a.copy()
    a_nan.reshape(-1)[:: 100] = np.nan
    halves = np.array_split(a.reshape(-1), 2)
    _plain_sum(halves[0][:16])
    pool = ThreadPoolExecutor(2)
    rows = []
    for chunking, chunks in chunkings(side, args.chunkings).items():
        x = da.from_array(a, chunks=chunks).persist()
        xn = da.from_array(a_nan, chunks=chunks).persist()
        ceiling = lambda: list(pool.map(_plain_sum, halves))  # noqa: E731
        contenders = {}
        for name in FUNCTIONS:
            data = xn if name.startswith("nan") else x
            contenders[f"ceiling.{name}"] = ceiling
            contenders[f"numbadask.{name}"] = lambda name=name, data=data: getattr(numbadask, name)(data).compute()
            contenders[f"dask.{name}"] = lambda name=name, data=data: getattr(da, name)(data).compute()
            contenders[f"accelerate.{name}"] = lambda name=name, data=data: accelerated(name, data)
            assert np.isclose(float(contenders[f"numbadask.{name}"]()), float(contenders[f"dask.{name}"]()), rtol=1e-10)
            assert float(contenders[f"accelerate.{name}"]()) == float(contenders[f"numbadask.{name}"]())
        contenders["ceiling.moments"] = ceiling
        contenders["numbadask.moments"] = lambda: numbadask_moments(x)
        contenders["dask.moments"] = lambda: dask_separate(x)
        times = interleaved_times(contenders, runs)
        decision = decision_microseconds(x)
        for name in [*FUNCTIONS, "moments"]:
            ours, theirs, ceil = times[f"numbadask.{name}"], times[f"dask.{name}"], times[f"ceiling.{name}"]
            routed = times.get(f"accelerate.{name}")
            growth = {who: peak_rss_growth_bytes(contenders[f"{who}.{name}"]) for who in ("numbadask", "dask")}
            rows.append(
                {
                    "function": name,
                    "chunking": chunking,
                    "chunks": list(chunks),
                    "chunk_mib": chunks[0] * chunks[1] * 8 / MiB,
                    "numbadask_gbps": a.nbytes / statistics.median(ours) / 1e9,
                    "dask_gbps": a.nbytes / statistics.median(theirs) / 1e9,
                    "speedup_vs_dask": statistics.median(t / o for t, o in zip(theirs, ours)),
                    "fraction_of_ceiling": statistics.median(c / o for c, o in zip(ceil, ours)),
                    "ceiling_gbps": a.nbytes / statistics.median(ceil) / 1e9,
                    "peak_rss_growth_mib": {who: None if b is None else b / MiB for who, b in growth.items()},
                    # Under accelerate(): time of the direct call over the routed one (1.0: the same speed).
                    "accelerate_vs_direct": None if routed is None else statistics.median(o / r for o, r in zip(ours, routed)),
                    "accelerate_speedup_vs_dask": None if routed is None else statistics.median(t / r for t, r in zip(theirs, routed)),
                    "decision_us": decision,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    pool.shutdown()
    return {"machine": machine_name(), "array_gib": a.nbytes / 2**30, "runs": runs, "results": rows}


def markdown(report: dict) -> str:
    lines = [
        f"# The family: numbadask vs dask.array on {report['machine']}",
        "",
        f"{report['array_gib']:.2f} GiB float64 in memory (1% NaN for nan-functions), threaded scheduler, "
        f"{report['runs']} interleaved rounds after a warm-up round; ratios are medians of per-round ratios.",
        "",
        "Peak growth: the process's peak resident memory during one compute above what was resident before "
        "(Linux `VmHWM`, reset first), so Numba's and NumPy's temporaries both count. The read ceiling is a "
        "contiguous read of the whole array for every chunking (square chunks are strided views).",
        "",
        "`accelerate()`: the same call as existing code makes it (`x.mean()`, `da.nanmean(x)`) inside "
        "`with numbadask.accelerate():`; the column is the direct call's time over the routed one's "
        "(1.00x: the same speed). `moments` has no dask.array twin to route.",
        "",
        "| function | chunks | numbadask GB/s | dask GB/s | speed-up | accelerate() vs direct | read ceiling GB/s "
        "| numbadask / read ceiling | peak growth numbadask / dask (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        growth = r.get("peak_rss_growth_mib", {})
        mib = " / ".join("-" if growth.get(who) is None else f"{growth[who]:.1f}" for who in ("numbadask", "dask"))
        routed = r.get("accelerate_vs_direct")
        routed = "-" if routed is None else f"{routed:.2f}x"
        lines.append(
            f"| {r['function']} | {chunking_label(r['chunking'])} | {r['numbadask_gbps']:.1f} | {r['dask_gbps']:.1f} | "
            f"{r['speedup_vs_dask']:.2f}x | {routed} | {r['ceiling_gbps']:.1f} | {r['fraction_of_ceiling']:.0%} | {mib} |"
        )
    decisions = {(r["chunking"], json.dumps(r["decision_us"])) for r in report["results"] if r.get("decision_us")}
    for chunking, decision in sorted(decisions):
        d = json.loads(decision)
        lines += [
            "",
            f"Deciding who computes a call ({chunking_label(chunking)}): numbadask's hand-off check "
            f"{d['kernel_input_us']:.2f} us, accelerate()'s claims {d['claims_us']:.2f} us per call.",
        ]
    lines += ["", f"Command: `{report.get('command', 'python bench/bench_family.py')}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    bench_main(__doc__, "family", run, markdown, runs=9, add_arguments=add_arguments)  # 5 rounds let one slow round of this shared machine decide a median


if __name__ == "__main__":
    main()
