"""Benchmark: xarray + Dask against numbadask's ``.nd`` accessor on the same Dataset.

One process, one Dataset of three float32 variables ``u``, ``v``, ``w`` (time, lat,
lon), ``--size-gib`` each (default 1), in memory and chunked along time (``--chunk-mib``
per chunk, default 32), threaded scheduler.  Cases (issue 18):

* ``ds.mean("time")`` and ``ds.std("time")`` against ``ds.nd.mean`` / ``ds.nd.std``;
* the quadratic means mean(u*u), mean(v*v), mean(u*v) (one ``dask.compute`` of the
  three xarray expressions) against ``numbadask.product_means(u, v)`` (one read);
* ``xr.corr(u, v, "time")`` against ``u.nd.corr(v, "time")``;
* ``ds.weighted(weights).mean("time")`` against ``ds.nd.weighted(weights).mean("time")``.

Each round times every case's two contenders in turn (interleaved, so a shared
machine's drift reaches both alike); medians of times and of per-round ratios are
reported, with the spread (min-max of the ratios), GB/s of input read (each input once)
and the peak resident memory each compute adds (``VmHWM``; Numba's and NumPy's
allocations alike), against the target of one chunk per thread.

Usage:  python bench/bench_xarray.py [--size-gib 1] [--runs 5] [--chunk-mib 32] [--out bench/results] [--tag T]
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MiB, bench_main, interleaved_times, machine_name, peak_rss_growth_bytes  # noqa: E402

import numbadask  # noqa: E402
import numbadask.xarray  # noqa: E402,F401  (registers .nd)

#: The issue's targets: speed-up over xarray + Dask per case.
TARGETS = {"mean": None, "std": 2.0, "quadratic_means": 5.0, "corr": 5.0, "weighted_mean": None}


def dataset(size_gib: float, chunk_mib: float):
    """Three correlated float32 variables with an offset (exactness matters), NaN-free,
    chunked along time; and positive weights along time."""
    import xarray as xr

    lat, lon = 180, 360
    n_time = max(2, int(size_gib * 2**30 / (4 * lat * lon)))
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n_time, lat, lon), dtype=np.float32)
    u = base + 10
    v = 0.5 * base + rng.standard_normal((n_time, lat, lon), dtype=np.float32)
    w = rng.standard_normal((n_time, lat, lon), dtype=np.float32) + 280
    steps = max(1, int(chunk_mib * MiB / (4 * lat * lon)))
    coords = {"time": np.arange(n_time), "lat": np.linspace(-89.5, 89.5, lat), "lon": np.linspace(0.5, 359.5, lon)}
    ds = xr.Dataset({name: (("time", "lat", "lon"), data, {"units": "m/s"}) for name, data in (("u", u), ("v", v), ("w", w))}, coords=coords)
    weights = xr.DataArray(rng.random(n_time) + 0.5, dims="time", coords={"time": coords["time"]})
    return ds.chunk({"time": steps}), weights, steps


def cases(ds, weights) -> dict[str, tuple]:
    """Each case: (xarray + Dask, numbadask, GiB of input read once)."""
    import xarray as xr

    u, v = ds["u"], ds["v"]
    gib = {"one": u.nbytes / 2**30}
    return {
        "mean": (lambda: ds.mean("time").compute(), lambda: ds.nd.mean("time").compute(), 3 * gib["one"]),
        "std": (lambda: ds.std("time").compute(), lambda: ds.nd.std("time").compute(), 3 * gib["one"]),
        "quadratic_means": (
            lambda: dask.compute((u * u).mean("time"), (v * v).mean("time"), (u * v).mean("time")),
            lambda: dask.compute(*numbadask.product_means(u.data, v.data, axis=0)),
            2 * gib["one"],
        ),
        "corr": (lambda: xr.corr(u, v, "time").compute(), lambda: u.nd.corr(v, "time").compute(), 2 * gib["one"]),
        "weighted_mean": (
            lambda: ds.weighted(weights).mean("time").compute(),
            lambda: ds.nd.weighted(weights).mean("time").compute(),
            3 * gib["one"],
        ),
    }


def _values(result) -> list[np.ndarray]:
    """The arrays of a Dataset, a DataArray or a tuple of them, for the answer check."""
    if isinstance(result, tuple):
        return [np.asarray(getattr(r, "values", r), dtype=np.float64) for r in result]
    if hasattr(result, "data_vars"):
        return [np.asarray(result[k].values, dtype=np.float64) for k in sorted(result.data_vars)]
    return [np.asarray(result.values, dtype=np.float64)]


def run(size_gib: float, runs: int, args=None) -> dict:
    chunk_mib = getattr(args, "chunk_mib", 32.0)
    ds, weights, steps = dataset(size_gib, chunk_mib)
    chunk_bytes = steps * ds["u"].shape[1] * ds["u"].shape[2] * 4
    threads = os.cpu_count() or 1
    rows = []
    all_cases = cases(ds, weights)
    for name, (theirs, ours, gib) in all_cases.items():
        # Same answers first (float32 data: xarray's float32 sums are the looser side).
        for t, o in zip(_values(theirs()), _values(ours())):
            np.testing.assert_allclose(o, t, rtol=2e-3, atol=1e-5, err_msg=name)
    contenders = {f"{name}.{side}": f for name, (theirs, ours, _) in all_cases.items() for side, f in (("xarray", theirs), ("nd", ours))}
    times = interleaved_times(contenders, runs)
    for name, (theirs, ours, gib) in all_cases.items():
        t_x, t_nd = times[f"{name}.xarray"], times[f"{name}.nd"]
        ratios = [x / n for x, n in zip(t_x, t_nd)]
        peak_x, peak_nd = peak_rss_growth_bytes(theirs), peak_rss_growth_bytes(ours)
        rows.append(
            {
                "case": name,
                "xarray_s": statistics.median(t_x),
                "nd_s": statistics.median(t_nd),
                "speedup": statistics.median(ratios),
                "speedup_min": min(ratios),
                "speedup_max": max(ratios),
                "target": TARGETS[name],
                "input_gib": gib,
                "nd_gbps": gib * 2**30 / statistics.median(t_nd) / 1e9,
                "xarray_gbps": gib * 2**30 / statistics.median(t_x) / 1e9,
                "xarray_peak_growth_mib": None if peak_x is None else peak_x / MiB,
                "nd_peak_growth_mib": None if peak_nd is None else peak_nd / MiB,
                "raw_seconds": {"xarray": t_x, "nd": t_nd},
            }
        )
    import xarray as xr

    return {
        "machine": machine_name(),
        "cores": threads,
        "dataset": {"variables": 3, "dtype": "float32", "shape": list(ds["u"].shape), "gib_each": ds["u"].nbytes / 2**30, "chunk_time_steps": steps},
        "chunk_mib": chunk_bytes / MiB,
        "peak_target_mib": threads * chunk_bytes / MiB,
        "runs": runs,
        "scheduler": "threads",
        "method": "rounds of every case's (xarray, nd) in turn after a warm-up round; medians, medians of per-round ratios and their min-max",
        "results": rows,
        "versions": {"numbadask": numbadask.__version__, "dask": dask.__version__, "xarray": xr.__version__, "numpy": np.__version__},
    }


def markdown(report: dict) -> str:
    d = report["dataset"]
    lines = [
        f"# xarray + Dask vs numbadask's .nd on {report['machine']}",
        "",
        f"A Dataset of 3 float32 variables {tuple(d['shape'])} ({d['gib_each']:.2f} GiB each), in memory, "
        f"chunked along time ({d['chunk_time_steps']} steps, {report['chunk_mib']:.0f} MiB a chunk); threaded "
        f"scheduler, {report['cores']} threads; {report['runs']} interleaved rounds after a warm-up. Speed-up: median "
        "(min-max) of per-round ratios. GB/s: each input read once over the median time. Peak growth: resident "
        f"memory a compute adds (target: one chunk per thread, {report['peak_target_mib']:.0f} MiB).",
        "",
        "| case | xarray+Dask s | .nd s | speed-up (spread) | target | .nd GB/s | xarray GB/s | peak growth .nd / xarray (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        peaks = " / ".join("-" if p is None else f"{p:.0f}" for p in (r["nd_peak_growth_mib"], r["xarray_peak_growth_mib"]))
        target = f">= {r['target']:.0f}x" if r["target"] else "-"
        lines.append(
            f"| {r['case']} | {r['xarray_s']:.3f} | {r['nd_s']:.3f} | {r['speedup']:.2f}x ({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) | "
            f"{target} | {r['nd_gbps']:.1f} | {r['xarray_gbps']:.1f} | {peaks} |"
        )
    lines += ["", f"Command: `{report.get('command', 'python bench/bench_xarray.py')}`"]
    return "\n".join(lines) + "\n"


def _arguments(parser) -> None:
    parser.add_argument("--chunk-mib", type=float, default=32.0, help="MiB per chunk along time")
    parser.set_defaults(size_gib=1.0)  # GiB per variable (the issue's ~1 GiB each)


def main() -> None:
    bench_main(__doc__, "xarray", run, markdown, runs=5, add_arguments=_arguments)


if __name__ == "__main__":
    main()
