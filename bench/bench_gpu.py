"""GPU benchmark: numbadask's CUDA kernels (the family) and numbadask.mean on a LocalCUDACluster.

Needs a real GPU with CuPy and numba-cuda (dask-cuda for the end-to-end part).  All
device timings are CUDA events around the work, median of repeated runs after
warm-up, on fresh random data (never zeros).  Writes ``gpu-<device>.json`` and
``gpu-<device>.md`` to ``--out``.

    python bench/bench_gpu.py --out gpu-results
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GiB = 2**30


def event_seconds(cp: Any, func: Callable[[], Any], runs: int = 10, warmup: int = 2) -> float:
    """Median seconds of ``func`` between two CUDA events on the current stream."""
    for _ in range(warmup):
        func()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(runs):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        func()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def read_kernel():
    from numba import cuda

    @cuda.jit
    def read_pass(x, out):
        i = cuda.grid(1)
        acc = 0.0
        while i < x.size:
            acc += x[i]
            i += cuda.gridsize(1)
        out[cuda.grid(1)] = acc

    return read_pass


def ceilings(cp: Any, nbytes: int) -> dict:
    """Device-to-device copy (bytes read + written) and a read-only pass, in GB/s."""
    from numba import cuda

    x = cp.random.default_rng(0).random(nbytes // 8)
    y = cp.empty_like(x)
    copy_s = event_seconds(cp, lambda: cp.copyto(y, x))
    y = None  # free the copy before the read pass
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    blocks, threads = sms * 8, 256
    out = cp.empty(blocks * threads)
    kernel = read_kernel()
    xd, od = cuda.as_cuda_array(x, sync=False), cuda.as_cuda_array(out, sync=False)
    read_s = event_seconds(cp, lambda: kernel[blocks, threads](xd, od))
    return {
        "bytes": x.nbytes,
        "copy_gbps": 2 * x.nbytes / copy_s / 1e9,
        "read_ceiling_gbps": x.nbytes / read_s / 1e9,
        "multiprocessors": sms,
    }


def _per_chunk_functions(cp: Any) -> dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    """name -> (numbadask's per-chunk kernel as a full reduction, CuPy's equivalent)."""
    from numbadask import cuda_kernels
    from numbadask.layout import plan_walk

    def run(kernel: str, a: Any) -> Any:
        return getattr(cuda_kernels, kernel)(plan_walk(a, tuple(range(a.ndim)), cp), cp)

    def cupy_moments(a: Any) -> Any:
        return cp.mean(a), cp.var(a), cp.min(a), cp.max(a)

    return {
        "sum": (lambda a: run("sum_float64", a), cp.sum),
        "mean": (lambda a: run("sum_float64", a) / a.size, cp.mean),
        "nanmean": (lambda a: run("nansum_float64", a), cp.nanmean),
        "min": (lambda a: run("minmax", a), cp.min),
        "max": (lambda a: run("minmax", a), cp.max),
        "var": (lambda a: run("shifted_moments", a), cp.var),
        "moments": (lambda a: run("shifted_moments_minmax", a), cupy_moments),
    }


def kernel_rows(cp: Any, sizes_gib: list[float], ceiling: float) -> list[dict]:
    """Each per-chunk kernel of the family against CuPy on the same array (1-d), plus
    mean over the rows and over the columns of a 2-d array."""
    from numbadask import cuda_kernels
    from numbadask.layout import plan_walk

    functions = _per_chunk_functions(cp)
    rows = []
    rng = cp.random.default_rng(1)

    def record(name: str, dtype: str, layout: str, a: Any, ours: Callable, theirs: Callable) -> None:
        ours_s = event_seconds(cp, ours)
        theirs_s = event_seconds(cp, theirs)
        rows.append(
            {
                "function": name,
                "dtype": dtype,
                "gib": a.nbytes / GiB,
                "layout": layout,
                "ours_s": ours_s,
                "cupy_s": theirs_s,
                "ours_gbps": a.nbytes / ours_s / 1e9,
                "cupy_gbps": a.nbytes / theirs_s / 1e9,
                "ratio_vs_cupy": theirs_s / ours_s,
                "fraction_of_read_ceiling": a.nbytes / ours_s / 1e9 / ceiling,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    for dtype in ("float32", "float64"):
        for gib in sizes_gib:
            n = int(gib * GiB) // np.dtype(dtype).itemsize
            x = rng.random(n, dtype=dtype)
            for name, (ours, theirs) in functions.items():
                record(name, dtype, "1d", x, lambda f=ours, x=x: f(x), lambda f=theirs, x=x: f(x))
            if gib == sizes_gib[0]:
                for axis in (1, 0):
                    a = x.reshape(-1, 8192)
                    walk_axes = (axis,)
                    record(
                        "mean", dtype, f"2d-axis{axis}", a,
                        lambda a=a, w=walk_axes: cuda_kernels.sum_float64(plan_walk(a, w, cp), cp) / a.shape[w[0]],
                        lambda a=a, axis=axis: cp.mean(a, axis=axis),
                    )
            del x
    return rows


def accuracy(cp: Any) -> dict:
    """float32 data near 1e4: relative error of the mean, ours and CuPy's, against a
    float64 reference; and whether 3 runs give the same bits."""
    import dask.array as da

    import numbadask

    x = (1e4 + cp.random.default_rng(3).random(2**28)).astype(cp.float32)
    ref = float(cp.sum(x, dtype=cp.float64)) / x.size
    lazy = lambda: numbadask.mean(da.from_array(x, chunks=2**26, asarray=False))  # noqa: E731
    ours = [float(lazy().compute(scheduler="threads")) for _ in range(3)]
    cupy_mean = float(cp.mean(x))
    return {
        "n": int(x.size),
        "float32_relerr_ours": abs(ours[0] - ref) / ref,
        "float32_relerr_cupy": abs(cupy_mean - ref) / ref,
        "deterministic": len({np.float64(v).tobytes() for v in ours}) == 1,
    }


def _random_block(block_info=None):
    import cupy

    info = block_info[None]
    return cupy.random.default_rng(info["chunk-location"][0]).random(info["chunk-shape"])


def end_to_end(gib: float, chunk_mib: int) -> dict:
    """numbadask.mean vs dask.array's mean on a persisted CuPy-backed Dask array on a
    one-GPU LocalCUDACluster (wall time of compute(), median of 5 after warm-up)."""
    import cupy
    import dask
    import dask.array as da
    from dask_cuda import LocalCUDACluster
    from distributed import Client, wait

    import numbadask

    n = int(gib * GiB) // 8
    chunk = chunk_mib * 2**20 // 8
    with LocalCUDACluster(n_workers=1, dashboard_address=None) as cluster, Client(cluster):
        x = da.map_blocks(_random_block, chunks=((chunk,) * (n // chunk),), dtype=np.float64, meta=cupy.empty((0,)))
        x = x.persist()
        wait(x)

        def timed(func):
            func()
            times = []
            for _ in range(5):
                start = time.perf_counter()
                func()
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        ours_s = timed(lambda: numbadask.mean(x).compute())
        dask_s = timed(lambda: x.mean().compute())
        moments_s = timed(lambda: dask.compute(*numbadask.moments(x)))
        separate_s = timed(lambda: dask.compute(x.mean(), x.var(), x.min(), x.max()))
        agree = bool(np.isclose(float(numbadask.mean(x).compute()), float(x.mean().compute()), rtol=1e-12))
        return {"gib": x.nbytes / GiB, "chunk_mib": chunk_mib, "n_chunks": x.npartitions, "numbadask_s": ours_s, "dask_s": dask_s, "speedup_vs_dask": dask_s / ours_s, "agree": agree,
                "moments_s": moments_s, "dask_mean_var_min_max_s": separate_s, "moments_speedup_vs_dask": separate_s / moments_s}


def section(report: dict, name: str, func: Callable[[], Any]) -> Any:
    """Run one part; record its error instead of losing the other parts."""
    try:
        report[name] = func()
    except Exception:
        report.setdefault("errors", {})[name] = traceback.format_exc()
        print(f"{name} failed:\n{report['errors'][name]}", file=sys.stderr, flush=True)
    return report.get(name)


def markdown(r: dict) -> str:
    lines = [f"# GPU: numbadask on {r.get('device', '?')}", ""]
    c = r.get("ceilings") or {}
    if c:
        lines += [f"Read ceiling (read-only Numba pass) {c['read_ceiling_gbps']:.0f} GB/s; device-to-device copy {c['copy_gbps']:.0f} GB/s (read + written).", ""]
    if r.get("kernels"):
        lines += ["| function | dtype | GiB | layout | ours GB/s | CuPy GB/s | ours / CuPy speed | ours / read ceiling |", "|---|---|---|---|---|---|---|---|"]
        for k in r["kernels"]:
            lines.append(f"| {k['function']} | {k['dtype']} | {k['gib']:.0f} | {k['layout']} | {k['ours_gbps']:.0f} | {k['cupy_gbps']:.0f} | {k['ratio_vs_cupy']:.2f}x | {k['fraction_of_read_ceiling']:.0%} |")
        lines.append("")
    e = r.get("end_to_end")
    if e:
        lines += [f"End to end on a one-GPU LocalCUDACluster, {e['gib']:.0f} GiB float64 in {e['n_chunks']} CuPy chunks of {e['chunk_mib']} MiB: numbadask.mean {e['numbadask_s'] * 1e3:.1f} ms, dask.array mean {e['dask_s'] * 1e3:.1f} ms ({e['speedup_vs_dask']:.2f}x); end to end / kernel-only: {r.get('end_to_end_over_kernel', float('nan')):.2f}. moments {e['moments_s'] * 1e3:.1f} ms vs dask.array's mean, var, min, max {e['dask_mean_var_min_max_s'] * 1e3:.1f} ms ({e['moments_speedup_vs_dask']:.2f}x).", ""]
    a = r.get("accuracy")
    if a:
        lines += [f"float32 mean of {a['n']} values near 1e4, relative error vs float64: ours {a['float32_relerr_ours']:.1e}, CuPy {a['float32_relerr_cupy']:.1e}; same bits over 3 runs: {a['deterministic']}.", ""]
    for name, err in (r.get("errors") or {}).items():
        lines += [f"**{name} failed**:", "```", err.strip()[-1500:], "```", ""]
    lines.append("Command: `python bench/bench_gpu.py` (from `ci/test_gpu.sh`)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-results"))
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--e2e-gib", type=float, default=2.0)
    args = parser.parse_args()
    report: dict = {}
    # The cluster starts before this process touches CUDA (dask-cuda #719).
    section(report, "end_to_end", lambda: end_to_end(args.e2e_gib, 256))
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(0)
    report["device"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    report["cupy"] = cp.__version__
    section(report, "ceilings", lambda: ceilings(cp, 2 * GiB))
    ceiling = (report.get("ceilings") or {}).get("read_ceiling_gbps", float("nan"))
    report["read_ceiling_gbps"] = ceiling
    kernels = section(report, "kernels", lambda: kernel_rows(cp, args.sizes_gib, ceiling)) or []
    key = lambda k: f"{k['function']}/{k['dtype']}/{k['gib']:.0f}GiB/{k['layout']}"  # noqa: E731
    report["kernel_gbps"] = {key(k): k["ours_gbps"] for k in kernels}
    report["ratio_vs_cupy"] = {key(k): k["ratio_vs_cupy"] for k in kernels}
    report["moments_vs_cupy_separate"] = {key(k): k["ratio_vs_cupy"] for k in kernels if k["function"] == "moments"}
    acc = section(report, "accuracy", lambda: accuracy(cp)) or {}
    report.update({k: v for k, v in acc.items() if k != "n"})
    e2e = report.get("end_to_end")
    kernel_2g = [
        k for k in kernels
        if k["function"] == "mean" and k["dtype"] == "float64" and k["layout"] == "1d" and abs(k["gib"] - args.e2e_gib) < 1e-6
    ]
    if e2e and kernel_2g:
        report["end_to_end_over_kernel"] = e2e["numbadask_s"] / kernel_2g[0]["ours_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", report["device"].lower()).strip("-")
    (args.out / f"gpu-{slug}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / f"gpu-{slug}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
