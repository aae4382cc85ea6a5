"""Benchmark: xarray's grouped reductions with flox, without flox, and under numbadask (issue 27).

One process, one daily float32 DataArray ``(365 * --years, 180, 360)`` (10 years:
0.88 GiB) with ``time``/``lat``/``lon`` coordinates, in memory, in Dask chunks of
``--days-per-chunk`` days (default 100) along time, threaded scheduler.  Rows:
``groupby("time.month").mean()``, ``groupby("time.month").std()``,
``groupby("time.dayofyear").mean()`` and ``resample(time="MS").mean()``.  Columns, each
timed on the same data in every round (interleaved, after a warm-up round):

* ``numbagg``: xarray + flox, ``engine="numbagg"`` (``use_flox``, ``use_numbagg`` on);
* ``flox``: xarray + flox, ``engine="flox"``;
* ``no flox``: xarray's own groupby (``use_flox=False``);
* ``numbadask``: the same xarray call inside ``numbadask.accelerate()``, which routes
  flox.xarray's ``groupby_reduce`` to ``numbadask.groupby_reduce``; where that routing
  is absent, ``numbadask.groupby_reduce`` called directly on the array with time last
  (the report names the path);
* ``read``: the read ceiling, ``numbadask.sum`` of the same Dask array (one read of it),
  timed in the same rounds; ``common.read_ceiling_gbps`` (the plain njit read of the
  NumPy buffer) is reported beside it.

Reported per row: medians and spread (min-max) of the times, numbadask's speed-up over
the fastest other column (median of per-round ratios; target >= 5x on every row), its
GB/s (the input read once) and fraction of the read ceiling (target: month mean >= 50%),
the peak resident memory each column's compute adds (``common.peak_rss_growth_bytes``, in
a second process of this script, ``--peaks``, so timings keep glibc's default
allocation; target: numbadask <= max(smallest other, 200 MiB)).  The numbadask commit
at start and end is recorded: others edit src/ while benchmarks run.  numbadask's result must equal the
no-flox one (``np.allclose``, rtol 1e-5, equal_nan) on every row, or the run fails.
Also the first grouped call in a new process with a warm cache (a (60, 4, 5) array,
``groupby("time.month").mean()`` under accelerate, after one warm-up process; target
<= 0.5 s), and with ``--gpu`` the same rows on Dask-of-CuPy chunks (skipped without
CuPy and a GPU).

Usage:  python bench/bench_groupby.py [--runs 3] [--years 10] [--days-per-chunk 100] [--gpu] [--out bench/results] [--tag T]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MiB, _map_large_allocations, command_line, interleaved_times, machine_name, output_parser, peak_rss_growth_bytes, read_ceiling_gbps, save_report  # noqa: E402

import numbadask  # noqa: E402

#: Each row: (xarray method, its argument, reduction).
ROWS: dict[str, tuple[str, str, str]] = {
    'groupby("time.month").mean()': ("groupby", "time.month", "mean"),
    'groupby("time.month").std()': ("groupby", "time.month", "std"),
    'groupby("time.dayofyear").mean()': ("groupby", "time.dayofyear", "mean"),
    'resample(time="MS").mean()': ("resample", "MS", "mean"),
}
MONTH_MEAN = next(iter(ROWS))  # the row with the read-fraction target
OTHERS = ("numbagg", "flox", "no flox")
SPEEDUP_TARGET, READ_FRACTION_TARGET, RSS_FLOOR_MIB, FIRST_CALL_TARGET_S = 5.0, 0.5, 200.0, 0.5

#: The first grouped call of a new process; ``{pre}``: more to import before the timer.
FIRST_CALL = """
import time
start = time.perf_counter()
import numpy as np, pandas as pd, xarray as xr, numbadask{pre}
x = xr.DataArray(np.random.default_rng(0).random((60, 4, 5), dtype=np.float32), dims=("time", "lat", "lon"),
                 coords={"time": pd.date_range("2000-01-01", periods=60, freq="D")}).chunk({"time": 20})
imported = time.perf_counter()
with numbadask.accelerate():
    x.groupby("time.month").mean().compute()
print(imported - start, time.perf_counter() - imported, numbadask.accelerate.routed().get("groupby_reduce", 0))
"""


def values(years: int) -> np.ndarray:
    """Daily temperature-like float32 data, 280 + 10 N(0, 1), (365 * years, 180, 360)."""
    return np.random.default_rng(0).standard_normal((365 * years, 180, 360), dtype=np.float32) * 10 + 280


def data(values: np.ndarray, days_per_chunk: int, xp: Any = None) -> Any:
    """``values`` as a DataArray with time, lat, lon coordinates, chunked along time;
    with ``xp`` (cupy) its chunks moved to the GPU."""
    import pandas as pd
    import xarray as xr

    n = values.shape[0]
    coords = {"time": pd.date_range("2000-01-01", periods=n, freq="D"), "lat": np.linspace(-89.5, 89.5, 180), "lon": np.linspace(0.5, 359.5, 360)}
    x = xr.DataArray(values, dims=("time", "lat", "lon"), coords=coords, name="t").chunk({"time": days_per_chunk})
    return x if xp is None else x.copy(data=x.data.map_blocks(xp.asarray))


def xarray_call(x: Any, row: str, **kwargs: Any) -> Any:
    """The row's xarray reduction of ``x`` (lazy), ``kwargs`` passed to it (to flox)."""
    method, arg, func = ROWS[row]
    grouped = x.groupby(arg) if method == "groupby" else x.resample(time=arg)
    return getattr(grouped, func)(**kwargs)


def direct_call(x: Any, row: str) -> np.ndarray:
    """``numbadask.groupby_reduce`` on the row's labels, time last, as flox.xarray calls
    flox's; the result with the group axis first, as xarray's."""
    method, arg, func = ROWS[row]
    t = x["time"].dt
    labels = ((t.year - t.year[0]) * 12 + t.month - 1).values if method == "resample" else getattr(t, arg.split(".")[1]).values
    result, _ = numbadask.groupby_reduce(x.data.transpose(1, 2, 0), labels, func=func, expected_groups=np.unique(labels))
    return np.moveaxis(result.compute(), -1, 0)


def routing_landed(x: Any) -> bool:
    """Whether ``accelerate()`` routes xarray's flox groupby to numbadask: a small
    month mean inside a block counts as a routed ``groupby_reduce``."""
    import xarray as xr

    before = numbadask.accelerate.routed().get("groupby_reduce", 0)
    with numbadask.accelerate(), xr.set_options(use_flox=True):
        xarray_call(x.isel(time=slice(0, 60), lat=slice(0, 4), lon=slice(0, 5)), MONTH_MEAN).compute()
    return numbadask.accelerate.routed().get("groupby_reduce", 0) > before


def columns(x: Any, row: str, routed: bool, gpu: bool = False) -> dict[str, Callable[[], Any]]:
    """Each column's computing call for ``row`` (numbagg is CPU-only: not on the GPU)."""
    import xarray as xr

    def under(block: Callable[[], Any], options: dict, **kwargs: Any) -> Callable[[], Any]:
        def call() -> Any:
            with block(), xr.set_options(**options):
                return xarray_call(x, row, **kwargs).compute()

        return call

    flox = {"use_flox": True, "use_numbagg": True}
    cols = {
        "numbagg": under(nullcontext, flox, engine="numbagg"),
        "flox": under(nullcontext, flox, engine="flox"),
        "no flox": under(nullcontext, {"use_flox": False}),
        "numbadask": under(numbadask.accelerate, {"use_flox": True}) if routed else lambda: direct_call(x, row),
    }
    return {k: v for k, v in cols.items() if not (gpu and k == "numbagg")}


def host_values(result: Any) -> np.ndarray:
    """A result's values on the host (NumPy), as float64."""
    values = getattr(result, "data", result)
    return np.asarray(values.get() if hasattr(values, "get") else values, dtype=np.float64)


def check(cols: dict[str, Callable[[], Any]], row: str) -> None:
    """Fail loudly unless numbadask's result equals xarray-without-flox's."""
    ours, theirs = host_values(cols["numbadask"]()), host_values(cols["no flox"]())
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-5, equal_nan=True):
        worst = np.nanmax(np.abs(ours - theirs) / np.abs(theirs)) if ours.shape == theirs.shape else "shape"
        raise AssertionError(f"{row}: numbadask {ours.shape} differs from xarray without flox {theirs.shape} (max rel. error {worst})")


def spread(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def first_call(runs: int) -> dict:
    """Import and first-call seconds of :data:`FIRST_CALL` in ``runs`` new processes
    each, after one warm-up process (which fills the on-disk cache where it is cold):
    as a user's script runs it, and with flox imported before the timer (xarray imports
    flox, and flox numpy_groupies' Numba module, on the first grouped call)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    cases = {"as is": FIRST_CALL.replace("{pre}", ""), "flox imported first": FIRST_CALL.replace("{pre}", ", flox.xarray")}
    outs: dict[str, list] = {case: [] for case in cases}
    for _ in range(runs + 1):
        for case, snippet in cases.items():
            done = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parent)
            if done.returncode:
                raise RuntimeError(f"first-call process failed:\n{done.stderr}")
            outs[case].append([float(v) for v in done.stdout.split()[-3:]])
    result = {}
    for case, measured in outs.items():
        imports, firsts, routed = zip(*measured[1:])
        result[case] = {"import_s": spread(list(imports)), "first_call_s": spread(list(firsts)), "routed": all(routed), "target_s": FIRST_CALL_TARGET_S}
    return result


def contenders(x: Any, routed: bool, gpu: bool = False) -> tuple[dict, dict[str, Callable[[], Any]]]:
    """Each row's columns, and all of them flat (``"row|column"``) with ``"read"``."""
    table = {row: columns(x, row, routed, gpu) for row in ROWS}
    funcs = {f"{row}|{c}": f for row, cols in table.items() for c, f in cols.items()}
    return table, funcs | {"read": lambda: float(numbadask.sum(x.data).compute())}


def peaks(years: int, days_per_chunk: int) -> dict[str, float | None]:
    """MiB of resident memory each contender's compute adds (after one untimed call),
    in this process with large blocks mapped afresh from the start: in the timing
    process glibc would keep blocks freed earlier resident, and peaks would read 0
    (mapping afresh there slows every column's allocations instead)."""
    _map_large_allocations()
    x = data(values(years), days_per_chunk)
    out = {}
    for name, f in contenders(x, routing_landed(x))[1].items():
        f()
        peak = peak_rss_growth_bytes(f)
        out[name] = None if peak is None else peak / MiB
    return out


def measure(x: Any, runs: int, routed: bool, gpu: bool = False, peaks: dict | None = None) -> list[dict]:
    """Check, then time every row's columns and the read in interleaved rounds; with
    ``peaks`` (MiB per contender) the memory targets; one result dict per row."""
    nbytes, peaks = x.nbytes, peaks or {}
    table, funcs = contenders(x, routed, gpu)
    for row, cols in table.items():
        check(cols, row)
    times = interleaved_times(funcs, runs)
    read_s = statistics.median(times["read"])
    rows = []
    for row, cols in table.items():
        t = {c: times[f"{row}|{c}"] for c in cols}
        others = [c for c in cols if c != "numbadask"]
        fastest = min(others, key=lambda c: statistics.median(t[c]))
        ratios = [o / n for o, n in zip(t[fastest], t["numbadask"])]
        nd_s = statistics.median(t["numbadask"])
        peak = {c: peaks.get(f"{row}|{c}") for c in cols}
        rss_limit = None if any(peak[c] is None for c in cols) else max(min(peak[c] for c in others), RSS_FLOOR_MIB)
        fraction = read_s / nd_s
        rows.append({
            "row": row, "seconds": {c: spread(t[c]) for c in cols}, "raw_seconds": t, "fastest_other": fastest,
            "speedup": spread(ratios), "speedup_met": statistics.median(ratios) >= SPEEDUP_TARGET, "nd_gbps": nbytes / nd_s / 1e9,
            "read_fraction": fraction, "read_fraction_met": fraction >= READ_FRACTION_TARGET if row == MONTH_MEAN else None,
            "peak_growth_mib": peak, "rss_limit_mib": rss_limit, "rss_met": None if rss_limit is None else peak["numbadask"] <= rss_limit,
        })  # fmt: skip
    rows.append({"row": "read", "seconds": {"read": spread(times["read"])}, "gbps": nbytes / read_s / 1e9, "peak_growth_mib": peaks.get("read")})
    return rows


def gpu_section(args: Any) -> dict:
    """The rows on Dask-of-CuPy chunks, or why they were skipped."""
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1).sum()
    except Exception as e:  # no CuPy, no driver, no device
        return {"skipped": f"{type(e).__name__}: {e}"}
    x = data(values(args.years), args.days_per_chunk, cupy)
    x = x.copy(data=x.data.persist())
    routed = routing_landed(x)
    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    try:
        return {"device": device, "numbadask_path": "accelerate" if routed else "direct", "results": measure(x, args.runs, routed, gpu=True)}
    except Exception as e:  # a column that does not run on CuPy chunks: recorded, not fatal
        return {"device": device, "failed": f"{type(e).__name__}: {e}"}


def source_state() -> str:
    """The commit of numbadask's checkout and a hash of its uncommitted changes to src/
    (others edit it while benchmarks run: a run is consistent only if this holds)."""
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=Path(numbadask.__file__).parent).stdout.strip()  # noqa: E731
    diff = git("diff", "HEAD", "--", ".")
    return git("rev-parse", "--short", "HEAD") + (f"+dirty:{hashlib.sha1(diff.encode()).hexdigest()[:8]}" if diff else "")


def run(args: Any) -> dict:
    import flox
    import numbagg
    import xarray as xr

    start_state = source_state()
    v = values(args.years)
    x = data(v, args.days_per_chunk)
    routed = routing_landed(x)
    cmd = [sys.executable, __file__, "--peaks", "--years", str(args.years), "--days-per-chunk", str(args.days_per_chunk)]
    done = subprocess.run(cmd, capture_output=True, text=True)  # peaks() in a new process
    if done.returncode:
        raise RuntimeError(f"peak-memory process failed:\n{done.stderr}")
    rows = measure(x, args.runs, routed, peaks=json.loads(done.stdout.splitlines()[-1]))
    plain = read_ceiling_gbps(v.reshape(-1), threads=os.cpu_count() or 1)
    report = {
        "machine": machine_name(),
        "cores": os.cpu_count(),
        "data": {"shape": list(x.shape), "dtype": "float32", "gib": x.nbytes / 2**30, "days_per_chunk": args.days_per_chunk},
        "runs": args.runs,
        "scheduler": "threads",
        "numbadask_path": "accelerate" if routed else "direct numbadask.groupby_reduce",
        "read_ceiling": "numbadask.sum of the same Dask array (one read), timed in the same rounds",
        "peaks": "measured in a separate process of this script (--peaks), large blocks mapped afresh, after one untimed call each",
        "plain_read_gbps": plain,
        "results": rows,
        "first_call": first_call(args.runs),
        "versions": {"numbadask": numbadask.__version__, "dask": dask.__version__, "xarray": xr.__version__, "flox": flox.__version__, "numbagg": numbagg.__version__, "numpy": np.__version__},
    }
    if args.gpu:
        report["gpu"] = gpu_section(args)
    report["source"] = {"start": start_state, "end": source_state()}
    return report


def _yes(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "**no**"


def _table(rows: list[dict], cols: tuple[str, ...]) -> list[str]:
    s = lambda d: f"{d['median']:.3f} ({d['min']:.3f}-{d['max']:.3f})"  # noqa: E731
    mib = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    lines = [
        "| row | " + " | ".join(f"{c} s" for c in cols) + " | speed-up vs fastest (spread) | >= 5x | numbadask GB/s | of read | >= 50% | peak growth MiB " + " / ".join(cols) + " | RSS met |",
        "|---" * (len(cols) + 8) + "|",
    ]
    for r in rows[:-1]:
        sp = r["speedup"]
        lines.append(
            f"| {r['row']} | " + " | ".join(s(r["seconds"][c]) for c in cols)
            + f" | {sp['median']:.2f}x vs {r['fastest_other']} ({sp['min']:.2f}-{sp['max']:.2f}) | {_yes(r['speedup_met'])} | {r['nd_gbps']:.2f}"
            + f" | {100 * r['read_fraction']:.0f}% | {_yes(r['read_fraction_met'])} | " + " / ".join(mib(r["peak_growth_mib"][c]) for c in cols)
            + f" | {_yes(r['rss_met'])} (limit {mib(r['rss_limit_mib'])}) |"
        )  # fmt: skip
    read = rows[-1]
    lines += ["", f"Read ceiling: {s(read['seconds']['read'])} s, {read['gbps']:.2f} GB/s, peak growth {mib(read['peak_growth_mib'])} MiB."]
    return lines


def markdown(report: dict) -> str:
    d = report["data"]
    lines = [
        f"# Grouped reductions (issue 27) on {report['machine']}",
        "",
        f"A daily float32 DataArray {tuple(d['shape'])} ({d['gib']:.2f} GiB), in memory, {d['days_per_chunk']} days a chunk; "
        f"threaded scheduler, {report['cores']} threads; {report['runs']} interleaved rounds after a warm-up; seconds: median (min-max). "
        f"numbadask column: {report['numbadask_path']}. Speed-up: median (min-max) of per-round ratios against the column with the "
        f"smallest median. Read ceiling: {report['read_ceiling']}; the plain njit read of the NumPy buffer "
        f"(`common.read_ceiling_gbps`) gives {report['plain_read_gbps']:.2f} GB/s. Peak growth: resident memory a compute adds, "
        "measured in a separate process with large blocks mapped afresh; "
        f"RSS target: numbadask <= max(smallest other, {RSS_FLOOR_MIB:.0f} MiB).",
        "",
        *_table(report["results"], (*OTHERS, "numbadask")),
        "",
        "First grouped call in a new process, warm cache (`groupby(\"time.month\").mean()` of a (60, 4, 5) array under accelerate, "
        f"after a warm-up process; median (min-max) of {report['runs']} processes each):",
        "",
        "| case | routed to numbadask | import s | first call s | <= 0.5 s |",
        "|---|---|---|---|---|",
    ]
    for case, fc in report["first_call"].items():
        t, i = fc["first_call_s"], fc["import_s"]
        lines.append(f"| {case} | {fc['routed']} | {i['median']:.2f} | {t['median']:.3f} ({t['min']:.3f}-{t['max']:.3f}) | {_yes(t['median'] <= fc['target_s'])} |")
    gpu = report.get("gpu")
    if gpu is not None:
        lines += ["", "## GPU (Dask of CuPy)", ""]
        lines += [f"Skipped: {gpu['skipped']}"] if "skipped" in gpu else [f"Failed on {gpu['device']}: {gpu['failed']}"] if "failed" in gpu else [f"{gpu['device']}, numbadask path: {gpu['numbadask_path']}.", "", *_table(gpu["results"], ("flox", "no flox", "numbadask"))]
    src = report["source"]
    changed = "" if src["start"] == src["end"] else f" **changed during the run** (to {src['end']}): numbers may mix versions"
    lines += ["", f"numbadask source: {src['start']}{changed}; versions: {report['versions']}.", "", f"Command: `{report.get('command', 'python bench/bench_groupby.py')}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = output_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--days-per-chunk", type=int, default=100)
    parser.add_argument("--gpu", action="store_true", help="also the rows on Dask-of-CuPy chunks (skipped without CuPy and a GPU)")
    parser.add_argument("--peaks", action="store_true", help=argparse.SUPPRESS)  # internal: print peaks() as JSON
    args = parser.parse_args()
    if args.peaks:
        with dask.config.set(scheduler="threads"):
            print(json.dumps(peaks(args.years, args.days_per_chunk)))
        return
    with dask.config.set(scheduler="threads"):
        report = run(args)
    report["command"] = command_line()
    save_report(report, markdown(report), "groupby", args)


if __name__ == "__main__":
    main()
