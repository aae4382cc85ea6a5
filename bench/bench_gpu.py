"""GPU benchmark: numbadask's CUDA chunk kernels against CuPy, the read ceiling, host
time per chunk, and numbadask.mean end to end on a LocalCUDACluster (issue 16, item 7).

What it measures (on a real GPU, CuPy and numba-cuda installed):

* **the read ceiling**, per size and dtype: the faster of an unrolled Numba read kernel
  (8 or 16 independent loads in flight per thread, grid-stride, a few grids) and
  CuPy's own ``cupy.sum``; plus a device-to-device copy (bytes read + written);
* **every function** (sum, mean, nansum, nanmean, min, max, var, std, nanvar, argmin,
  argmax, moments) at the chunk-kernel level (``numbadask.cuda_kernels.LAUNCHERS``,
  each ``(chunk, axes, params, xp)``) against CuPy's function of the same name, for
  float32 and float64 (int32/int64: sum, mean, min, max) on the layouts 1-d, 2-d
  axis 1, 2-d axis 0 and 3-d middle axis, at 1 and 4 GiB.  ``moments`` is timed against
  CuPy's separate mean, var, min and max.  CUDA events around each call (the device
  synchronized before it, so the launch's host time counts when the GPU waits on
  it), median of interleaved rounds after one warm-up, with the spread; each row also
  checks the result against CuPy's and that every round gave the same bits;
* **host microseconds per chunk** on a 1 MiB chunk: N launches back to back timed with
  ``perf_counter``, one sync at the end (the GPU work is tiny);
* **accuracy**: float32 data near 1e4, accumulated in float64, against a float64
  reference; the same bits on three runs;
* **end to end**: ``numbadask.mean``/``moments`` against dask.array's own on the same
  persisted CuPy-backed Dask array on a one-GPU ``LocalCUDACluster`` (in a child
  process with a time limit; skipped with the reason if dask_cuda is missing).

Each case runs in try/except (a failure is recorded, the rest go on), inside a time
budget (``--budget-s``, sized to the ``timeout 180`` of ``ci/test_gpu.sh``: cases that
would not fit are listed under ``skipped``), and the JSON and Markdown are rewritten
after every case, so a kill still leaves the results so far.

``--dry-run`` runs every code path on the CPU in Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``), NumPy standing in for CuPy, on KiB-sized arrays: its
numbers mean nothing and its files say so (``dry_run: true``, ``gpu-dry-run-*``).

    python bench/bench_gpu.py --out gpu-results            # on the GPU, ~2.5 min
    python bench/bench_gpu.py --quick --out gpu-results    # 1 GiB only, fewer rounds
    python bench/bench_gpu.py --dry-run --out /tmp/dry     # CPU, simulator
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

T0 = time.perf_counter()
KiB, MiB, GiB = 2**10, 2**20, 2**30

#: Every public function benchmarked, and the ones also run on integer input.
FUNCTIONS = ("sum", "mean", "nansum", "nanmean", "min", "max", "var", "std", "nanvar", "argmin", "argmax", "moments")
INT_FUNCTIONS = ("sum", "mean", "min", "max")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
LAYOUTS = ("1d", "2d-axis1", "2d-axis0", "3d-axis1")
#: The launchers timed for host time per chunk (one function per distinct kernel).
HOST_FUNCTIONS = ("sum", "nansum", "min", "max", "var", "moments", "argmin", "argmax")
MOMENTS_SEPARATE = "cupy.mean+var+min+max"


# --------------------------------------------------------------------------- helpers


def size_label(nbytes: int) -> str:
    """``1GiB``, ``4GiB``, ``8KiB``: the size part of the result keys."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if nbytes >= unit:
            value = nbytes / unit
            return f"{value:.0f}{name}" if value == int(value) else f"{value:g}{name}"
    return f"{nbytes}B"


def parse_size(text: str) -> int:
    """``1GiB``/``4G``/``8KiB``/``65536B``/``0.5`` (GiB) to bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]?)(i?B)?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    # A bare number is GiB; a unit of only "B" is bytes.
    unit = {"": 1 if m.group(3) else GiB, "K": KiB, "M": MiB, "G": GiB}[m.group(2).upper()]
    return int(float(m.group(1)) * unit)


def median_spread(times: list[float]) -> tuple[float, float, float]:
    """(median, min, spread) of a list of seconds; spread = (max - min) / median."""
    if not times:
        return math.nan, math.nan, math.nan
    med = statistics.median(times)
    return med, min(times), (max(times) - min(times)) / med if med > 0 else math.nan


def flat_outputs(out: Any) -> list:
    """A kernel's outputs (an array, or a tuple/list of arrays) as a flat list."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in flat_outputs(o)]
    return [out]


def clean(obj: Any) -> Any:
    """NaN/inf as None and NumPy scalars as Python numbers, for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


class Budget:
    """Seconds left of the run's budget, counted from the process start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def used(self) -> float:
        return time.perf_counter() - T0

    def left(self) -> float:
        return self.seconds - self.used()


# --------------------------------------------------------------------------- backend


class Backend:
    """CuPy and CUDA events on a GPU; NumPy and ``perf_counter`` in the dry run."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        if dry:
            self.xp = np
            self.cupy = None
        else:
            import cupy

            self.xp = self.cupy = cupy

    def sync(self) -> None:
        if not self.dry:
            self.cupy.cuda.Device().synchronize()

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a) if self.dry else self.cupy.asnumpy(a)

    def timed_call(self, func: Callable[[], Any]) -> tuple[Any, float, float]:
        """``(output, device seconds, host seconds to enqueue)`` of one call, the device
        idle before it."""
        if self.dry:
            t0 = time.perf_counter()
            out = func()
            t1 = time.perf_counter()
            return out, t1 - t0, t1 - t0
        cp = self.cupy
        self.sync()
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        t0 = time.perf_counter()
        start.record()
        out = func()
        stop.record()
        t1 = time.perf_counter()
        stop.synchronize()
        return out, cp.cuda.get_elapsed_time(start, stop) / 1e3, t1 - t0

    def random(self, n: int, dtype: str, seed: int) -> Any:
        """Fresh random data (never zeros): [0, 1) floats, integers in +-2**20."""
        rng = self.xp.random.default_rng(seed)
        if np.dtype(dtype).kind == "f":
            return rng.random(n, dtype=dtype)
        try:
            return rng.integers(-(2**20), 2**20, size=n, dtype=dtype)
        except Exception:  # a CuPy Generator without integers() for this dtype
            return self.xp.random.randint(-(2**20), 2**20, size=n).astype(dtype)

    def free(self) -> None:
        if not self.dry:
            self.cupy.get_default_memory_pool().free_all_blocks()

    def kernel_array(self, a: Any) -> Any:
        """``a`` as a Numba kernel argument without a sync per launch."""
        if self.dry:
            return a
        from numba import cuda

        return cuda.as_cuda_array(a, sync=False)

    def multiprocessors(self) -> int:
        if self.dry:
            return 1
        return int(self.cupy.cuda.Device().attributes["MultiProcessorCount"])

    def device_name(self) -> str:
        if self.dry:
            return "dry-run (Numba CUDA simulator, NumPy for CuPy)"
        props = self.cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)


# --------------------------------------------------------------------------- read ceiling


@functools.lru_cache(maxsize=None)
def read_kernel(loads: int, dtype: str) -> Any:
    """A grid-stride read-only pass: each thread issues ``loads`` independent loads,
    then adds them (in the input's dtype: only the reading matters)."""
    from numba import cuda

    lines = [f"    v{u} = x[i + {u} * stride]" if u else "    v0 = x[i]" for u in range(loads)]
    src = "\n".join(
        [
            "def read_unrolled(x, out):",
            "    n = x.shape[0]",
            "    stride = cuda.gridsize(1)",
            "    i = cuda.grid(1)",
            "    acc = zero",
            f"    while i + {loads - 1} * stride < n:",
            *["    " + line for line in lines],
            "        acc += " + " + ".join(f"v{u}" for u in range(loads)),
            f"        i += {loads} * stride",
            "    while i < n:",
            "        acc += x[i]",
            "        i += stride",
            "    out[cuda.grid(1)] = acc",
        ]
    )
    namespace: dict = {"cuda": cuda, "zero": np.dtype(dtype).type(0)}
    exec(compile(src, f"<read_unrolled_{loads}_{dtype}>", "exec"), namespace)  # noqa: S102
    return cuda.jit(namespace["read_unrolled"])


def read_variants(be: Backend, x: Any) -> dict[str, Callable[[], Any]]:
    """Unrolled read kernels over the 1-d array ``x``: 8 and 16 loads per thread, 4 and
    16 blocks of 256 threads per SM (2 blocks of 32 threads in the simulator)."""
    variants = {}
    xd = be.kernel_array(x)
    grids = [(2, 32)] if be.dry else [(be.multiprocessors() * bps, 256) for bps in (4, 16)]
    for loads in (8, 16):
        kernel = read_kernel(loads, str(x.dtype))
        for blocks, threads in grids:
            out = be.xp.empty(blocks * threads, dtype=x.dtype)
            od = be.kernel_array(out)
            name = f"read.u{loads}.b{blocks}x{threads}"
            variants[name] = functools.partial(lambda k, b, t, xd, od: k[b, t](xd, od), kernel, blocks, threads, xd, od)
    return variants


# --------------------------------------------------------------------------- numbadask glue


def reduction_of(function: str) -> Any:
    from numbadask.reductions.registry import MOMENTS, REGISTRY

    return MOMENTS if function == "moments" else REGISTRY[function]


def kernel_of(function: str, dtype: str) -> Any:
    """The chunk kernel (a ``numbadask.engine.kernels.ChunkKernel``) behind ``function``."""
    return reduction_of(function).kernel(np.dtype(dtype))


def launcher_of(chunk_kernel: Any) -> Callable[..., Any]:
    """Its CUDA launcher, ``(chunk, axes, params, xp)``."""
    from numbadask.cuda_kernels import LAUNCHERS

    return LAUNCHERS.get(chunk_kernel) or chunk_kernel.cuda()


def finish(function: str, outputs: Any, x: Any, axes: tuple[int, ...]) -> list:
    """The function's value(s) from one chunk's kernel outputs, through the reduction's
    own state and finalize (what the graph does with a one-chunk array)."""
    from numbadask.engine.definition import Where
    from numbadask.reductions.variances import field_value

    r = reduction_of(function)
    state = r.state(outputs, x, axes, Where((0,) * x.ndim, tuple(x.shape)))
    if function == "moments":
        return [field_value(state, f, 0, False) for f in ("mean", "var", "min", "max")]
    result_dtype = np.asarray(r.numpy(np.ones(2, dtype=x.dtype))).dtype
    return [r.finisher(x.dtype)(state, result_dtype)]


def cupy_call(be: Backend, function: str, a: Any, axis: int) -> Callable[[], Any]:
    xp = be.xp
    if function == "moments":
        return lambda: (xp.mean(a, axis=axis), xp.var(a, axis=axis), xp.min(a, axis=axis), xp.max(a, axis=axis))
    return functools.partial(getattr(xp, function), a, axis=axis)


def layout_view(x: Any, layout: str, dry: bool) -> tuple[Any, tuple[int, ...], int]:
    """``(view, axes, axis)`` of the flat array ``x`` for ``layout``."""
    n = x.size
    cols = 32 if dry else 8192
    outer, inner = (2, 16) if dry else (16, 1024)
    if layout == "1d":
        return x, (0,), 0
    if layout in ("2d-axis1", "2d-axis0"):
        if n % cols:
            raise ValueError(f"{n} elements do not reshape to (-1, {cols})")
        axis = 1 if layout == "2d-axis1" else 0
        return x.reshape(-1, cols), (axis,), axis
    if layout == "3d-axis1":
        if n % (outer * inner):
            raise ValueError(f"{n} elements do not reshape to ({outer}, -1, {inner})")
        return x.reshape(outer, -1, inner), (1,), 1
    raise ValueError(f"unknown layout {layout!r}")


def output_bits(be: Backend, out: Any) -> str:
    digest = hashlib.sha1()
    for a in flat_outputs(out):
        digest.update(np.ascontiguousarray(be.to_host(a)).tobytes())
    return digest.hexdigest()


def compare(be: Backend, ours: list, theirs: list, function: str, dtype: str) -> tuple[bool, float]:
    """(agree, largest relative difference) of our values and CuPy's."""
    worst = 0.0
    ok = True
    for a, b in zip(ours, theirs):
        a = be.to_host(a).astype(np.float64).ravel()
        b = be.to_host(b).astype(np.float64).ravel()
        if a.shape != b.shape:
            return False, math.inf
        if function.startswith("arg"):
            ok &= bool(np.array_equal(a, b))
            worst = max(worst, float(np.mean(a != b)) if a.size else 0.0)
            continue
        rtol = 1e-4 if dtype == "float32" else 1e-9
        finite = np.isfinite(a) & np.isfinite(b)
        ok &= bool(np.array_equal(np.isnan(a), np.isnan(b)))
        if finite.any():
            diff = np.abs(a[finite] - b[finite]) / np.maximum(np.abs(b[finite]), 1e-300)
            worst = max(worst, float(diff.max()))
            ok &= bool(np.allclose(a[finite], b[finite], rtol=rtol, atol=1e-12 if dtype == "float64" else 1e-6))
    return ok, worst


# --------------------------------------------------------------------------- timing


def time_rounds(be: Backend, calls: dict[str, Callable[[], Any]], rounds: int, errors: dict, keep: set[str]) -> dict[str, dict]:
    """Each call once to warm up (compiles), then ``rounds`` interleaved rounds of all
    of them.  Returns name -> {device, host: lists of seconds, outs: outputs of every
    round (and the warm-up's) for names in ``keep``, else the last}.  A call that fails is recorded in
    ``errors`` and dropped."""
    live, warm = {}, {}
    for name, func in calls.items():
        try:
            warm[name] = func()
            be.sync()
            live[name] = func
        except Exception:
            errors[name] = traceback.format_exc()
    # The warm-up's output counts among the runs whose bits must agree.
    results = {name: {"device": [], "host": [], "outs": [warm[name]]} for name in live}
    for _ in range(rounds):
        for name, func in list(live.items()):
            try:
                out, device_s, host_s = be.timed_call(func)
            except Exception:
                errors[name] = traceback.format_exc()
                del live[name], results[name]
                continue
            r = results[name]
            r["device"].append(device_s)
            r["host"].append(host_s)
            r["outs"] = [*r["outs"], out] if name in keep else [out]
    return results


# --------------------------------------------------------------------------- the report


class Run:
    """Holds the report and writes it after every step."""

    def __init__(self, args: argparse.Namespace, be: Backend) -> None:
        self.args = args
        self.be = be
        self.budget = Budget(args.budget_s)
        self.report: dict = {
            "dry_run": be.dry,
            "timings_meaningful": not be.dry,
            "kernels": [],
            "skipped": [],
            "errors": {},
            "cases": [],
        }
        self.ceilings: dict[tuple[str, str], float] = {}
        self.slug = "dry-run-numba-cuda-simulator" if be.dry else None

    def error(self, name: str, text: str) -> None:
        self.report["errors"][name] = text
        print(f"--- {name} failed:\n{text}", file=sys.stderr, flush=True)

    def section(self, name: str, func: Callable[[], Any], reserve: float = 0.0, need: float = 0.0) -> Any:
        """Run one part (if ``need`` seconds are left beyond ``reserve``); record its
        error instead of losing the other parts."""
        if self.budget.left() - reserve < need:
            self.skip(name, f"time budget: {self.budget.left():.0f} s left, {reserve:.0f} s kept for later parts")
            return None
        start = time.perf_counter()
        try:
            self.report[name] = func()
        except Exception:
            self.error(name, traceback.format_exc())
        print(f"=== {name}: {time.perf_counter() - start:.1f} s (total {self.budget.used():.1f} s)", flush=True)
        self.write()
        return self.report.get(name)

    def skip(self, what: str, why: str) -> None:
        self.report["skipped"].append({"what": what, "why": why})
        print(f"--- skipped {what}: {why}", flush=True)

    def write(self) -> None:
        r = self.report
        rows = [k for k in r["kernels"] if "ours_s" in k]
        key = lambda k: f"{k['function']}/{k['dtype']}/{k['size']}/{k['layout']}"  # noqa: E731
        r["kernel_gbps"] = {key(k): k["ours_gbps"] for k in rows}
        r["ratio_vs_cupy"] = {key(k): k["ratio_vs_cupy"] for k in rows}
        r["fraction_of_read_ceiling"] = {key(k): k["fraction_of_read_ceiling"] for k in rows}
        r["moments_vs_cupy_separate"] = {key(k): k["ratio_vs_cupy"] for k in rows if k["function"] == "moments"}
        if self.ceilings:
            r["read_ceiling_gbps"] = max(self.ceilings.values())
        r["targets"] = targets(r)
        r["elapsed_s"] = self.budget.used()
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        slug = self.slug or re.sub(r"[^a-z0-9]+", "-", str(r.get("device", "unknown-gpu")).lower()).strip("-")
        (out / f"gpu-{slug}.json").write_text(json.dumps(clean(r), indent=1) + "\n")
        (out / f"gpu-{slug}.md").write_text(markdown(r, self.args))


# --------------------------------------------------------------------------- parts


def run_case(run: Run, x: Any, dtype: str, layout: str, copy_into: Any = None) -> None:
    """Every function of ``dtype`` on one layout of the flat array ``x``: our chunk
    kernels and CuPy's functions, interleaved; the read ceiling on the 1-d layout."""
    be, xp = run.be, run.be.xp
    size = size_label(x.nbytes)
    view, axes, axis = layout_view(x, layout, be.dry)
    functions = [f for f in (INT_FUNCTIONS if np.dtype(dtype).kind == "i" else FUNCTIONS) if f in run.args.functions]
    kernel_name, calls = {}, {}
    for f in functions:
        try:
            ck = kernel_of(f, dtype)
            kernel_name[f] = ck.name
            if f"ours.{ck.name}" not in calls:
                calls[f"ours.{ck.name}"] = functools.partial(launcher_of(ck), view, axes, (), xp)
        except Exception:
            run.error(f"{f}/{dtype}/{size}/{layout}: setup", traceback.format_exc())
    for f in functions:
        calls[MOMENTS_SEPARATE if f == "moments" else f"cupy.{f}"] = cupy_call(be, f, view, axis)
    if layout == "1d":
        if "cupy.sum" not in calls:
            calls["cupy.sum"] = cupy_call(be, "sum", view, axis)
        if np.dtype(dtype).kind == "f":
            try:
                calls.update(read_variants(be, view))
            except Exception:
                run.error(f"read kernel/{dtype}/{size}", traceback.format_exc())
        if copy_into is not None:
            calls["copy"] = functools.partial(xp.copyto, copy_into, view)
    errors: dict[str, str] = {}
    ours_names = {n for n in calls if n.startswith("ours.")}
    res = time_rounds(be, calls, run.args.rounds, errors, keep=ours_names)
    for name, text in errors.items():
        run.error(f"{name}/{dtype}/{size}/{layout}", text)
    med = {n: median_spread(r["device"]) for n, r in res.items()}
    gbps = lambda name, nbytes=x.nbytes: nbytes / med[name][0] / 1e9 if name in med else math.nan  # noqa: E731

    if layout == "1d":
        reads = {n: gbps(n) for n in med if n.startswith("read.")}
        best_read = max(reads, key=reads.get) if reads else None
        entry = {
            "size": size,
            "dtype": dtype,
            "bytes": int(x.nbytes),
            "read_kernel_gbps": reads.get(best_read, math.nan) if best_read else math.nan,
            "read_kernel_best": best_read,
            "read_kernel_variants_gbps": reads,
            "cupy_sum_gbps": gbps("cupy.sum"),
        }
        candidates = [v for v in (entry["read_kernel_gbps"], entry["cupy_sum_gbps"]) if math.isfinite(v)]
        if candidates and np.dtype(dtype).kind == "f":
            entry["read_ceiling_gbps"] = max(candidates)
            entry["ceiling_from"] = "read kernel" if entry["read_ceiling_gbps"] == entry["read_kernel_gbps"] else "cupy.sum"
            run.ceilings[(size, dtype)] = entry["read_ceiling_gbps"]
        if "copy" in med:
            entry["copy_gbps"] = 2 * x.nbytes / med["copy"][0] / 1e9
            run.report["ceilings"]["copy_gbps"] = entry["copy_gbps"]
        run.report["ceilings"]["by_case"][f"{dtype}/{size}"] = entry
    ceiling = run.ceilings.get((size, dtype))
    if ceiling is None:  # integers: the float ceiling of the same item size
        twin = {"int32": "float32", "int64": "float64"}.get(dtype)
        ceiling = run.ceilings.get((size, twin), math.nan)

    for f in functions:
        row: dict[str, Any] = {
            "function": f,
            "dtype": dtype,
            "size": size,
            "gib": x.nbytes / GiB,
            "layout": layout,
            "shape": list(view.shape),
            "axis": axis,
            "kernel": kernel_name.get(f),
        }
        ours, theirs = f"ours.{kernel_name.get(f)}", MOMENTS_SEPARATE if f == "moments" else f"cupy.{f}"
        if ours not in med or theirs not in med:
            missing = [n for n in (ours, theirs) if n not in med]
            row["error"] = "did not run: " + ", ".join(missing) + " (see errors)"
            run.report["kernels"].append(row)
            continue
        o, t = med[ours], med[theirs]
        row.update(
            {
                "ours_s": o[0],
                "cupy_s": t[0],
                "ours_gbps": x.nbytes / o[0] / 1e9,
                "cupy_gbps": x.nbytes / t[0] / 1e9,
                "ratio_vs_cupy": t[0] / o[0],
                "fraction_of_read_ceiling": x.nbytes / o[0] / 1e9 / ceiling,
                "ceiling_gbps": ceiling,
                "ours_min_s": o[1],
                "cupy_min_s": t[1],
                "ours_spread": o[2],
                "cupy_spread": t[2],
                "ours_enqueue_us": statistics.median(res[ours]["host"]) * 1e6,
                "cupy_enqueue_us": statistics.median(res[theirs]["host"]) * 1e6,
                "rounds": len(res[ours]["device"]),
            }
        )
        try:
            outs = res[ours]["outs"]
            row["same_bits_all_rounds"] = len({output_bits(be, out) for out in outs}) == 1
            row["bit_runs"] = len(outs)
            row["out_dtypes"] = [str(a.dtype) for a in flat_outputs(outs[-1])]
            values = finish(f, outs[-1], view, axes)
            theirs_out = res[theirs]["outs"][-1]
            row["agree_with_cupy"], row["max_rel_diff_vs_cupy"] = compare(be, values, flat_outputs(theirs_out), f, dtype)
        except Exception:
            row["check_error"] = traceback.format_exc()[-1500:]
        run.report["kernels"].append(row)
        print(
            json.dumps(clean({k: row.get(k) for k in ("function", "dtype", "size", "layout", "ours_gbps", "cupy_gbps", "ratio_vs_cupy", "fraction_of_read_ceiling", "agree_with_cupy", "same_bits_all_rounds")})),
            flush=True,
        )


def tables(run: Run, size: int, reserve: float) -> None:
    """All dtypes and layouts at one size: each (size, dtype) allocated once, reused by
    every layout."""
    be = run.be
    label = size_label(size)
    dtypes = [d for d in (*FLOAT_DTYPES, *INT_DTYPES) if d in run.args.dtypes]
    for seed, dtype in enumerate(dtypes):
        layouts = [lay for lay in LAYOUTS if lay in run.args.layouts]
        if run.budget.left() - reserve < run.args.case_need_s:
            run.skip(f"{dtype}/{label} ({', '.join(layouts)})", f"time budget: {run.budget.left():.0f} s left, {reserve:.0f} s kept for later parts")
            continue
        x = copy_into = None
        try:
            x = be.random(size // np.dtype(dtype).itemsize, dtype, seed=10 + seed)
            if dtype == "float64" and "ceilings" in run.report and "copy_gbps" not in run.report["ceilings"]:
                copy_into = be.xp.empty_like(x)
            be.sync()
        except Exception:
            run.error(f"allocate {dtype}/{label}", traceback.format_exc())
            layouts = []
        for layout in layouts:
            if run.budget.left() - reserve < run.args.case_need_s:
                run.skip(f"{dtype}/{label}/{layout}", f"time budget: {run.budget.left():.0f} s left, {reserve:.0f} s kept for later parts")
                continue
            start = time.perf_counter()
            try:
                run_case(run, x, dtype, layout, copy_into if layout == "1d" else None)
                error = None
            except Exception:
                error = traceback.format_exc()
                run.error(f"case {dtype}/{label}/{layout}", error)
            seconds = time.perf_counter() - start
            run.report["cases"].append({"size": label, "dtype": dtype, "layout": layout, "seconds": seconds, "failed": error is not None})
            print(f"=== case {dtype}/{label}/{layout}: {seconds:.1f} s (total {run.budget.used():.1f} s)", flush=True)
            copy_into = None
            run.write()
        del x, copy_into
        be.free()


def host_per_chunk(run: Run) -> dict:
    """Host microseconds per call on a 1 MiB chunk: N calls back to back, one sync at
    the end; our launchers, CuPy's functions and the whole chunk step
    (``numbadask.engine.definition.chunk``) for mean."""
    from numbadask.engine import definition

    be, xp = run.be, run.be.xp
    n_calls = run.args.host_calls
    chunk = run.args.host_chunk
    out: dict[str, Any] = {"chunk_bytes": chunk, "calls": n_calls, "us_per_call": {}, "enqueue_us_per_call": {}, "device_us_per_call": {}}
    # The simulator takes ~0.3 s a launch: the dry run proves the paths on fewer cases.
    cases = [("float64", "1d"), ("float64", "2d-axis0")] if be.dry else [("float64", "1d"), ("float32", "1d"), ("float64", "2d-axis0")]
    for seed, (dtype, layout) in enumerate(cases):
        x = be.random(chunk // np.dtype(dtype).itemsize, dtype, seed=100 + seed)
        if layout == "2d-axis0":
            x = x.reshape(-1, 16 if be.dry else 1024)
        axes = (0,)
        calls: dict[str, Callable[[], Any]] = {}
        for f in HOST_FUNCTIONS:
            try:
                ck = kernel_of(f, dtype)
                calls[f"{dtype}/{layout}/ours.{ck.name}"] = functools.partial(launcher_of(ck), x, axes, (), xp)
            except Exception:
                run.error(f"host/{dtype}/{layout}/{f}", traceback.format_exc())
        for f in ("sum", "mean", "min", "var"):
            calls[f"{dtype}/{layout}/cupy.{f}"] = cupy_call(be, f, x, 0)
        calls[f"{dtype}/{layout}/chunk_step.mean"] = functools.partial(
            definition.chunk, x, reduction=reduction_of("mean"), axes=axes, device="gpu", shape=tuple(x.shape), offsets=(0,) * x.ndim
        )
        for name, func in calls.items():
            try:
                func()
                be.sync()
                t0 = time.perf_counter()
                if not be.dry:
                    start, stop = be.cupy.cuda.Event(), be.cupy.cuda.Event()
                    start.record()
                for _ in range(n_calls):
                    func()
                t1 = time.perf_counter()
                if not be.dry:
                    stop.record()
                be.sync()
                t2 = time.perf_counter()
                out["us_per_call"][name] = (t2 - t0) / n_calls * 1e6
                out["enqueue_us_per_call"][name] = (t1 - t0) / n_calls * 1e6
                if not be.dry:
                    out["device_us_per_call"][name] = be.cupy.cuda.get_elapsed_time(start, stop) * 1e3 / n_calls
            except Exception:
                run.error(f"host/{name}", traceback.format_exc())
        del x
    ours = {k: v for k, v in out["us_per_call"].items() if "/ours." in k}
    out["max_ours_us"] = max(ours.values()) if ours else math.nan
    return out


def accuracy(run: Run) -> dict:
    """float32 data near 1e4: relative error of the mean, ours (float64 sum / n, and
    numbadask.mean's float32 result) and CuPy's, against a float64 reference; the same
    bits on three runs of each launcher; float32 input accumulates in float64."""
    be, xp = run.be, run.be.xp
    n = run.args.accuracy_bytes // 4
    x = (1e4 + be.random(n, "float32", seed=3)).astype(np.float32)
    ref = float(xp.sum(x, dtype=np.float64)) / n
    sum_launcher = launcher_of(kernel_of("sum", "float32"))
    runs = [sum_launcher(x, (0,), (), xp) for _ in range(3)]
    ours = float(be.to_host(flat_outputs(runs[0])[0]).ravel()[0]) / n
    out: dict[str, Any] = {
        "n": int(n),
        "float32_relerr_ours": abs(ours - ref) / ref,
        "float32_relerr_cupy": abs(float(xp.mean(x)) - ref) / ref,
        "float32_relerr_cupy_sum": abs(float(xp.sum(x)) / n - ref) / ref,
        "sum_out_dtype": str(flat_outputs(runs[0])[0].dtype),
        "accumulates_float64": flat_outputs(runs[0])[0].dtype == np.float64,
    }
    same = {"sum": len({output_bits(be, r) for r in runs}) == 1}
    for f in ("nanmean", "min", "var", "moments", "argmin"):
        try:
            launch = launcher_of(kernel_of(f, "float32"))
            bits = {output_bits(be, launch(x, (0,), (), xp)) for _ in range(3)}
            same[f] = len(bits) == 1
        except Exception:
            run.error(f"accuracy/same bits/{f}", traceback.format_exc())
    for layout in ("2d-axis0", "3d-axis1"):
        try:
            view, axes, _ = layout_view(x, layout, be.dry)
            launch = launcher_of(kernel_of("sum", "float32"))
            same[f"sum/{layout}"] = len({output_bits(be, launch(view, axes, (), xp)) for _ in range(3)}) == 1
        except Exception:
            run.error(f"accuracy/same bits/{layout}", traceback.format_exc())
    out["same_bits_3_runs"] = same
    out["deterministic"] = all(same.values())
    if importlib.util.find_spec("dask") is not None:
        try:
            import dask.array as da

            import numbadask

            lazy = numbadask.mean(da.from_array(x, chunks=max(1, n // 4), asarray=False))
            values = [lazy.compute(scheduler="threads") for _ in range(3)]
            out["float32_relerr_ours_result"] = abs(float(values[0]) - ref) / ref
            out["result_dtype"] = str(values[0].dtype)
            out["deterministic_dask_threads"] = len({np.asarray(be.to_host(v)).tobytes() for v in values}) == 1
        except Exception:
            run.error("accuracy/numbadask.mean", traceback.format_exc())
    del x
    be.free()
    return out


def _random_block(block_info=None):
    import cupy

    info = block_info[None]
    return cupy.random.default_rng(info["chunk-location"][0]).random(info["chunk-shape"])


def _random_block_numpy(block_info=None):
    info = block_info[None]
    return np.random.default_rng(info["chunk-location"][0]).random(info["chunk-shape"])


def end_to_end(nbytes: int, chunk_bytes: int, dry: bool, rounds: int) -> dict:
    """numbadask.mean/moments vs dask.array's on a persisted CuPy-backed Dask array on a
    one-GPU LocalCUDACluster (wall time of compute(), median after a warm-up).  In the
    dry run a LocalCluster with NumPy chunks stands in."""
    import dask
    import dask.array as da
    from distributed import Client, wait

    import numbadask

    if dry:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
        block, meta, kind = _random_block_numpy, np.empty((0,)), "LocalCluster, NumPy chunks (dry-run stand-in)"
    else:
        import cupy
        from dask_cuda import LocalCUDACluster

        # The cluster starts before this process touches CUDA (dask-cuda #719).
        cluster = LocalCUDACluster(n_workers=1, dashboard_address=None)
        block, meta, kind = _random_block, None, "LocalCUDACluster, 1 GPU, CuPy chunks"
    n, chunk = nbytes // 8, chunk_bytes // 8
    with cluster, Client(cluster):
        meta = cupy.empty((0,)) if meta is None else meta
        x = da.map_blocks(block, chunks=((chunk,) * max(1, n // chunk),), dtype=np.float64, meta=meta).persist()
        wait(x)

        def timed(func: Callable[[], Any]) -> tuple[float, float]:
            func()
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                func()
                times.append(time.perf_counter() - start)
            return statistics.median(times), median_spread(times)[2]

        ours_s, ours_spread = timed(lambda: numbadask.mean(x).compute())
        dask_s, dask_spread = timed(lambda: x.mean().compute())
        moments_s, _ = timed(lambda: dask.compute(*numbadask.moments(x)))
        separate_s, _ = timed(lambda: dask.compute(x.mean(), x.var(), x.min(), x.max()))
        agree = bool(np.isclose(float(numbadask.mean(x).compute()), float(x.mean().compute()), rtol=1e-12))
        return {
            "cluster": kind,
            "gib": x.nbytes / GiB,
            "size": size_label(x.nbytes),
            "chunk_mib": chunk_bytes / MiB,
            "n_chunks": x.npartitions,
            "rounds": rounds,
            "numbadask_s": ours_s,
            "dask_s": dask_s,
            "speedup_vs_dask": dask_s / ours_s,
            "numbadask_spread": ours_spread,
            "dask_spread": dask_spread,
            "agree": agree,
            "moments_s": moments_s,
            "dask_mean_var_min_max_s": separate_s,
            "moments_speedup_vs_dask": separate_s / moments_s,
        }


def end_to_end_child(run: Run) -> dict | None:
    """:func:`end_to_end` in a child process (its own CUDA context, before any CuPy
    work there, dask-cuda #719), killed with its workers if it outlives its limit."""
    args = run.args
    if not run.be.dry and importlib.util.find_spec("dask_cuda") is None:
        run.skip("end_to_end", "dask_cuda is not importable")
        return {"skipped": "dask_cuda is not importable"}
    limit = min(args.e2e_timeout_s, run.budget.left() - 3)
    if limit < 15:
        run.skip("end_to_end", f"time budget: {run.budget.left():.0f} s left")
        return None
    run.be.free()
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "e2e.json"
        cmd = [sys.executable, __file__, "--e2e-only", str(result), "--e2e-size", f"{args.e2e_size}B", "--e2e-chunk", f"{args.e2e_chunk}B", "--e2e-rounds", str(args.e2e_rounds)]
        cmd += ["--dry-run"] if run.be.dry else []
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"end to end took longer than {limit:.0f} s; killed") from None
        if not result.exists():
            raise RuntimeError(f"end to end child exited {proc.returncode} without a result (its traceback is in the log above)")
        data = json.loads(result.read_text())
    if "error" in data:
        raise RuntimeError(data["error"])
    return data


def end_to_end_over_kernel(report: dict) -> tuple[float, str] | None:
    """End-to-end mean time over the kernel-only time of the same bytes (float64 1-d
    mean), scaled from the nearest size when that size was not run."""
    e2e = report.get("end_to_end") or {}
    if "numbadask_s" not in e2e:
        return None
    rows = [k for k in report["kernels"] if k["function"] == "mean" and k["dtype"] == "float64" and k["layout"] == "1d" and "ours_s" in k]
    if not rows:
        return None
    nbytes = e2e["gib"] * GiB
    best = min(rows, key=lambda k: abs(math.log(k["gib"] * GiB / nbytes)))
    kernel_s = best["ours_s"] * nbytes / (best["gib"] * GiB)
    basis = f"mean/float64/{best['size']}/1d" + ("" if best["size"] == e2e["size"] else f" scaled to {e2e['size']}")
    return e2e["numbadask_s"] / kernel_s, basis


# --------------------------------------------------------------------------- targets and markdown


def targets(r: dict) -> list[dict]:
    """Issue 16's targets, each with the values it rests on and whether it was met."""
    rows = [k for k in r.get("kernels", []) if "ours_s" in k]
    out = []

    def add(name: str, values: list[float], bar: float) -> None:
        if values:
            out.append({"target": name, "worst": min(values), "bar": bar, "met": min(values) >= bar, "n": len(values)})

    main = [k for k in rows if k["function"] in ("sum", "mean", "nanmean", "min", "max") and k["dtype"] in FLOAT_DTYPES]
    flat = [k for k in main if k["layout"] in ("1d", "2d-axis1")]
    add("sum/mean/nanmean/min/max 1-d & axis-1: ours/CuPy >= 0.95", [k["ratio_vs_cupy"] for k in flat], 0.95)
    add("sum/mean/nanmean/min/max 1-d & axis-1: fraction of ceiling >= 0.85", [k["fraction_of_read_ceiling"] for k in flat if math.isfinite(k["fraction_of_read_ceiling"])], 0.85)
    add("sum/mean/nanmean/min/max axis-0 & 3-d middle: ours/CuPy >= 1.5", [k["ratio_vs_cupy"] for k in main if k["layout"] in ("2d-axis0", "3d-axis1")], 1.5)
    add("moments >= 3x CuPy's separate mean, var, min, max", [k["ratio_vs_cupy"] for k in rows if k["function"] == "moments"], 3.0)
    host = (r.get("host_per_chunk") or {}).get("us_per_call", {})
    ours_host = [v for k, v in host.items() if "/ours." in k]
    if ours_host:
        out.append({"target": "host time per chunk <= 30 us (launchers)", "worst": max(ours_host), "bar": 30.0, "met": max(ours_host) <= 30.0, "n": len(ours_host)})
    e2e = r.get("end_to_end") or {}
    if "speedup_vs_dask" in e2e:
        add("end to end mean no slower than dask.array", [e2e["speedup_vs_dask"]], 1.0)
    acc = r.get("accuracy") or {}
    if "deterministic" in acc:
        out.append({"target": "float32 accumulated in float64, same bits on 3 runs", "met": bool(acc.get("accumulates_float64")) and bool(acc["deterministic"])})
    if r.get("dry_run"):  # the simulator's timings say nothing about the speed targets
        for t in out:
            if "worst" in t:
                t["met"] = None
    bad = [k for k in rows if k.get("agree_with_cupy") is False or k.get("same_bits_all_rounds") is False]
    out.append({"target": "every row agrees with CuPy and repeats its bits", "met": not bad, "failing": [f"{k['function']}/{k['dtype']}/{k['size']}/{k['layout']}" for k in bad][:40]})
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _gb(v: Any) -> str:
    """GB/s: whole numbers, or 3 digits below 10 (the dry run's)."""
    return _f(v, ".0f" if v is None or not math.isfinite(v) or abs(v) >= 10 else ".3g")


def markdown(r: dict, args: argparse.Namespace) -> str:
    lines = [f"# GPU: numbadask's CUDA kernels on {r.get('device', '?')}", ""]
    if r.get("dry_run"):
        lines += [
            "**DRY RUN**: Numba's CUDA simulator on the CPU, NumPy standing in for CuPy, KiB-sized arrays. "
            "It proves the benchmark's code paths; its timings mean nothing.",
            "",
        ]
    versions = ", ".join(f"{k} {r[k]}" for k in ("numba", "numba_cuda", "cupy", "numpy") if r.get(k))
    lines += [f"Versions: {versions}. Rounds: {args.rounds} (median; spread = (max - min) / median). Elapsed: {_f(r.get('elapsed_s'), '.0f')} s.", ""]
    c = r.get("ceilings") or {}
    if c.get("by_case"):
        lines += ["## Read ceiling", "", "| dtype | size | unrolled read kernel GB/s (best variant) | cupy.sum GB/s | ceiling GB/s |", "|---|---|---|---|---|"]
        for e in c["by_case"].values():
            lines.append(f"| {e['dtype']} | {e['size']} | {_gb(e.get('read_kernel_gbps'))} ({e.get('read_kernel_best')}) | {_gb(e.get('cupy_sum_gbps'))} | {_gb(e.get('read_ceiling_gbps'))} |")
        lines += ["", f"Device-to-device copy: {_gb(c.get('copy_gbps'))} GB/s (read + written). {c.get('multiprocessors', '?')} SMs.", ""]
    if r.get("kernels"):
        lines += [
            "## Chunk kernels against CuPy",
            "",
            "ours/CuPy > 1 means ours is faster; `moments` is against CuPy's separate mean, var, min and max.",
            "",
            "| function | dtype | size | layout | kernel | ours GB/s | CuPy GB/s | ours/CuPy | of ceiling | spread ours/CuPy | agrees | same bits |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for k in r["kernels"]:
            if "ours_s" not in k:
                lines.append(f"| {k['function']} | {k['dtype']} | {k['size']} | {k['layout']} | {k.get('kernel')} | {k.get('error', 'failed')} ||||||||")
                continue
            agree = k.get("agree_with_cupy", "check failed" if "check_error" in k else "-")
            lines.append(
                f"| {k['function']} | {k['dtype']} | {k['size']} | {k['layout']} | {k['kernel']} | {_gb(k['ours_gbps'])} | {_gb(k['cupy_gbps'])} | "
                f"{_f(k['ratio_vs_cupy'], '.2f')}x | {_f(k['fraction_of_read_ceiling'], '.0%')} | {_f(k['ours_spread'], '.0%')}/{_f(k['cupy_spread'], '.0%')} | {agree} | {k.get('same_bits_all_rounds', '-')} |"
            )
        lines.append("")
    h = r.get("host_per_chunk")
    if h:
        lines += [f"## Host time per call on a {size_label(h['chunk_bytes'])} chunk ({h['calls']} calls back to back, one sync)", "", "| call | us per call | us to enqueue | device us per call |", "|---|---|---|---|"]
        for name, us in h["us_per_call"].items():
            lines.append(f"| {name} | {us:.1f} | {_f(h['enqueue_us_per_call'].get(name), '.1f')} | {_f(h['device_us_per_call'].get(name), '.1f')} |")
        lines.append("")
    a = r.get("accuracy")
    if a:
        lines += [
            "## Accuracy and determinism",
            "",
            f"float32 mean of {a['n']} values near 1e4, relative error against a float64 reference: ours (float64 sum / n) {_f(a['float32_relerr_ours'], '.1e')}, "
            f"numbadask.mean's {a.get('result_dtype', '?')} result {_f(a.get('float32_relerr_ours_result'), '.1e')}, CuPy's mean {_f(a['float32_relerr_cupy'], '.1e')}, "
            f"CuPy's float32 sum / n {_f(a['float32_relerr_cupy_sum'], '.1e')}. Sum output dtype {a['sum_out_dtype']}. Same bits on 3 runs: {a['same_bits_3_runs']} "
            f"(dask threads: {a.get('deterministic_dask_threads', '-')}).",
            "",
        ]
    e = r.get("end_to_end")
    if e:
        if "numbadask_s" in e:
            lines += [
                "## End to end",
                "",
                f"{e['cluster']}: {e['size']} float64 in {e['n_chunks']} chunks of {e['chunk_mib']:g} MiB, median of {e['rounds']}: numbadask.mean {e['numbadask_s'] * 1e3:.1f} ms, "
                f"dask.array mean {e['dask_s'] * 1e3:.1f} ms ({e['speedup_vs_dask']:.2f}x), agree {e['agree']}; moments {e['moments_s'] * 1e3:.1f} ms vs dask.array's mean, var, min, max "
                f"{e['dask_mean_var_min_max_s'] * 1e3:.1f} ms ({e['moments_speedup_vs_dask']:.2f}x). End to end / kernel-only: {_f(r.get('end_to_end_over_kernel'), '.2f')} ({r.get('end_to_end_over_kernel_basis', '-')}).",
                "",
            ]
        else:
            lines += [f"End to end: skipped ({e.get('skipped')}).", ""]
    if r.get("targets"):
        title = "## Targets (issue 16)" + (": dry run, the timing targets say nothing" if r.get("dry_run") else "")
        lines += [title, "", "| target | worst | met |", "|---|---|---|"]
        for t in r["targets"]:
            lines.append(f"| {t['target']} | {_f(t.get('worst'), '.2f')} | {t['met']}{' (' + ', '.join(t['failing']) + ')' if t.get('failing') else ''} |")
        lines.append("")
    if r.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {s['what']}: {s['why']}" for s in r["skipped"]] + [""]
    for name, err in (r.get("errors") or {}).items():
        lines += [f"**{name} failed**:", "```", err.strip()[-1200:], "```", ""]
    lines.append(f"Command: `python bench/bench_gpu.py {' '.join(sys.argv[1:])}` (from `ci/test_gpu.sh`)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("gpu-results"), help="folder for gpu-<device>.json and .md")
    p.add_argument("--sizes", type=parse_size, nargs="+", help="array sizes (default 1GiB 4GiB; dry run 4KiB)")
    p.add_argument("--rounds", type=int, help="timed rounds after the warm-up (default 5; quick 3; dry run 1)")
    p.add_argument("--quick", action="store_true", help="1 GiB only, 3 rounds, end to end on 1 GiB")
    p.add_argument("--dry-run", action="store_true", help="CPU only: Numba's CUDA simulator, NumPy for CuPy, KiB sizes")
    p.add_argument("--budget-s", type=float, help="start no part after this many seconds from the start (default 165, under test_gpu.sh's timeout 180; dry run 420)")
    p.add_argument("--case-need-s", type=float, default=3.0, help="seconds a case needs left to start")
    p.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=FUNCTIONS)
    p.add_argument("--dtypes", nargs="+", default=[*FLOAT_DTYPES, *INT_DTYPES], choices=[*FLOAT_DTYPES, *INT_DTYPES])
    p.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    p.add_argument("--host-calls", type=int, help="launches per host-time measurement (default 200; dry run 1)")
    p.add_argument("--host-chunk", type=parse_size, help="chunk size for host time per call (default 1MiB; dry run 4KiB)")
    p.add_argument("--accuracy-bytes", type=parse_size, help="float32 bytes for the accuracy part (default 1GiB; dry run 4KiB)")
    p.add_argument("--e2e-size", type=parse_size, help="end-to-end array size (default 4GiB; quick 1GiB; dry run 64KiB)")
    p.add_argument("--e2e-chunk", type=parse_size, help="end-to-end chunk size (default 256MiB; dry run 8KiB)")
    p.add_argument("--e2e-rounds", type=int, help="default 5; dry run 2")
    p.add_argument("--e2e-timeout-s", type=float, help="default 50; dry run 120 (its first call compiles the CPU kernels)")
    p.add_argument("--e2e-reserve-s", type=float, default=35.0, help="seconds kept for the end-to-end part")
    p.add_argument("--no-e2e", action="store_true")
    p.add_argument("--e2e-only", type=Path, help=argparse.SUPPRESS)  # the child: write its result here
    args = p.parse_args(argv)
    dry, quick = args.dry_run, args.quick
    args.budget_s = args.budget_s or (420.0 if dry else 165.0)
    args.e2e_rounds = args.e2e_rounds or (2 if dry else 5)
    args.e2e_timeout_s = args.e2e_timeout_s or (120.0 if dry else 50.0)
    args.sizes = args.sizes or ([4 * KiB] if dry else [GiB] if quick else [GiB, 4 * GiB])
    args.rounds = args.rounds or (1 if dry else 3 if quick else 5)
    args.host_calls = args.host_calls or (1 if dry else 200)
    args.host_chunk = args.host_chunk or (4 * KiB if dry else MiB)
    args.accuracy_bytes = args.accuracy_bytes or (4 * KiB if dry else GiB)
    args.e2e_size = args.e2e_size or (64 * KiB if dry else GiB if quick else 4 * GiB)
    args.e2e_chunk = args.e2e_chunk or (8 * KiB if dry else 256 * MiB)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
    if args.e2e_only:
        try:
            data = end_to_end(args.e2e_size, args.e2e_chunk, args.dry_run, args.e2e_rounds)
        except Exception:
            data = {"error": traceback.format_exc()}
            print(data["error"], file=sys.stderr, flush=True)
        args.e2e_only.write_text(json.dumps(clean(data)))
        return 0

    be = Backend(args.dry_run)
    run = Run(args, be)
    r = run.report
    import numba

    r.update({"device": be.device_name(), "numba": numba.__version__, "numpy": np.__version__})
    try:
        import numba_cuda

        r["numba_cuda"] = numba_cuda.__version__
    except Exception:
        pass
    if be.cupy is not None:
        r["cupy"] = be.cupy.__version__
    r["ceilings"] = {"multiprocessors": be.multiprocessors(), "by_case": {}}
    r["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(f"=== {r['device']}: sizes {[size_label(s) for s in args.sizes]}, {args.rounds} rounds, budget {args.budget_s:.0f} s", flush=True)
    run.write()

    e2e_reserve = 0.0 if args.no_e2e else args.e2e_reserve_s
    run.section("host_per_chunk", lambda: host_per_chunk(run), reserve=e2e_reserve)
    first, rest = args.sizes[:1], args.sizes[1:]
    for size in first:
        tables(run, size, reserve=e2e_reserve + 8)
    acc = run.section("accuracy", lambda: accuracy(run), reserve=e2e_reserve) or {}
    r.update({k: v for k, v in acc.items() if k in ("float32_relerr_ours", "float32_relerr_cupy", "deterministic")})
    for size in rest:
        tables(run, size, reserve=e2e_reserve)
    if not args.no_e2e:
        run.section("end_to_end", lambda: end_to_end_child(run))
        ratio = end_to_end_over_kernel(r)
        if ratio:
            r["end_to_end_over_kernel"], r["end_to_end_over_kernel_basis"] = ratio
    run.write()
    # Legacy aliases: the ceiling keys of the old report's "ceilings" section.
    c = r["ceilings"]
    if run.ceilings:
        (size, dtype), c["read_ceiling_gbps"] = max(run.ceilings.items(), key=lambda item: item[1])
        c["bytes"] = c["by_case"][f"{dtype}/{size}"]["bytes"]
        c["read_ceiling_case"] = f"{dtype}/{size}"
    run.write()
    print(Path(args.out / f"gpu-{run.slug or re.sub(r'[^a-z0-9]+', '-', r['device'].lower()).strip('-')}.md").read_text(), flush=True)
    failed_rows = [k for k in r["kernels"] if "ours_s" not in k]
    print(f"=== done in {run.budget.used():.1f} s: {len(r['kernels']) - len(failed_rows)} rows, {len(failed_rows)} failed rows, {len(r['errors'])} errors, {len(r['skipped'])} skipped", flush=True)
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
