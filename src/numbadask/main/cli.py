"""The ``numbadask`` command: argument parsing and printing, nothing else.

``numbadask stats SOURCE`` (the main job; also what ``numbadask`` alone runs, on a
synthetic array), ``numbadask info``, ``numbadask bench`` and ``numbadask warm``.  The
work is done by :mod:`numbadask.main.stats`, :mod:`numbadask.main.environment`,
:mod:`numbadask.main.benchmark` and :mod:`numbadask.main.warm`.
Errors print one line on stderr and exit 1 (2 for usage errors); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from numbadask.engine import dispatch
from numbadask.main import clusters, environment

__version__ = environment.numbadask_version()

_UNITS = {"": 1, "B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9}
COMMANDS = ("stats", "info", "bench", "warm")


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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _usage_checked(check: Any) -> Any:
    """An argparse ``type`` that checks an option's text with ``check`` and keeps the
    text: a value that cannot mean anything is a usage error (exit 2), like one argparse
    finds itself."""

    def checked(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return checked


def _module(name: str) -> Any:
    """``numbadask.main.<name>``, imported when an option is checked (not by ``--help``)."""
    import importlib

    return importlib.import_module(f"numbadask.main.{name}")


def _ddof(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"--ddof takes a finite real number, such as 1 or 0.5; got {text!r}")
    return value


def _address(text: str) -> str:
    if not clusters.ADDRESS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"a scheduler address looks like tcp://HOST:PORT; got {text!r}")
    return text


def _scheduler(text: str) -> str:
    try:
        return clusters.check_scheduler(text)
    except clusters.SchedulerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ----------------------------------------------------------------------------- stats


def _format_value(value: np.ndarray) -> str:
    if value.ndim == 0:
        return repr(value[()].item())
    body = np.array2string(value, threshold=8, edgeitems=3, precision=6, separator=", ").replace("\n", "")
    return f"{body}  (shape {value.shape})"


def format_bytes(nbytes: int) -> str:
    """``1536`` -> ``"1.50 KiB"``: the largest binary unit that keeps a leading digit.

    Examples
    --------
    >>> format_bytes(2**30), format_bytes(3 * 2**19), format_bytes(12)
    ('1.00 GiB', '1.50 MiB', '12 B')
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} B"


def format_rate(gbps: float) -> str:
    """A rate with three significant digits (no digits after the point from 100 up),
    so a small or slow run never reads ``0.00``.

    Examples
    --------
    >>> format_rate(0.0381), format_rate(44.13), format_rate(1683.2)
    ('0.0381', '44.1', '1683')
    """
    if not math.isfinite(gbps) or gbps <= 0 or gbps >= 99.95:
        return f"{gbps:.0f}"
    return f"{gbps:.{max(0, 2 - math.floor(math.log10(gbps)))}f}"


def print_stats(result: Any) -> None:
    """The human-readable table of a :class:`numbadask.main.stats.StatsResult`."""
    axis = "all" if result.axis is None else result.axis
    nchunks = int(np.prod([-(-s // c) if c else 1 for s, c in zip(result.shape, result.chunksize)]))
    print(f"numbadask {__version__} stats of {result.source}")
    print(
        f"  array {result.shape} {result.dtype}, {format_bytes(result.nbytes)} in {nchunks} chunk{'' if nchunks == 1 else 's'} of "
        f"{result.chunksize}; axis {axis}; scheduler {result.scheduler} ({result.workers} {result.worker_kind}); device {result.device}"
    )
    width = max(len(name) for name in result.values)
    for name, value in result.values.items():
        print(f"  {name:<{width}}  {_format_value(value)}")
    print(f"  elapsed {result.elapsed_s:.3f} s, {format_rate(result.gbps)} GB/s ({result.device})")


def cmd_stats(args: argparse.Namespace) -> int:
    from numbadask.cpu import notice
    from numbadask.main import sources, stats

    if args.json:  # stdout is the JSON; no compile notice on stderr either
        notice.set_compile_notice(False)
    source = args.source
    persist = args.persist
    if source is None:  # the built-in main job: a synthetic array in memory
        source, persist = stats.default_source(), True
    result = stats.run_stats(
        source,
        stats=stats.parse_stats(args.stats),
        axis=stats.parse_axis(args.axis),
        ddof=args.ddof,
        skipna=args.skipna,
        chunks=sources.parse_chunks(args.chunks),
        device=args.device,
        scheduler=args.scheduler,
        persist=persist,
        progress=not args.json and clusters.is_terminal(),
    )
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print_stats(result)
    return 0


# ------------------------------------------------------------------------------ info


def cmd_info(args: argparse.Namespace) -> int:
    report = environment.report()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"numbadask {__version__}")
    for name, ver in report["versions"].items():
        print(f"  {name:<12} {ver}")
    if report["gpus"]:
        for gpu in report["gpus"]:
            print(f"  GPU {gpu['index']}: {gpu['name']}, {gpu['memory_gib']} GiB")
    else:
        print(f"  GPUs: none visible ({report['no_gpu_reason']})")
    state = "on (NUMBA_ENABLE_CUDASIM=1)" if report["cuda_simulator"] else "off"
    print(f"  CUDA simulator: {state}")
    return 0


# ----------------------------------------------------------------------------- bench


def gpu_usable() -> bool:
    """True when a real GPU with CuPy and numba-cuda can run the CUDA kernels here."""
    if dispatch.simulator_enabled() or dispatch.gpu_unavailable_reason():
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device: the CPU it is
        return False


def cmd_bench(args: argparse.Namespace) -> int:
    from numbadask.main import benchmark

    device = args.device
    if device == "auto":
        device = "gpu" if gpu_usable() else "cpu"
    elif device == "gpu" and dispatch.gpu_unavailable_reason():
        raise dispatch.GPUUnavailableError(dispatch.gpu_unavailable_reason())
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    benchmark.check_functions(functions)
    label = "GPU" if device == "gpu" else "CPU"
    if device == "gpu" and dispatch.simulator_enabled():
        label = "GPU kernels in Numba's CUDA simulator"
    print(
        f"numbadask {__version__} bench on the {label}: {args.size / 2**30:.2f} GiB float64 in memory, "
        f"chunks of {args.chunk_size / 2**20:.0f} MiB, threaded scheduler, median of {args.runs} rounds"
    )
    rows = benchmark.run_bench(args.size, args.chunk_size, functions, args.runs, device)
    print("| function | numbadask GB/s | dask.array GB/s | speed-up | numbagg GB/s | agree |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        numbagg = format_rate(r.gbps(r.numbagg_s)) if r.numbagg_s else "-"
        print(
            f"| {r.function} | {format_rate(r.gbps(r.numbadask_s))} | {format_rate(r.gbps(r.dask_s))} | {r.speedup:.2f}x | "
            f"{numbagg} | {'yes' if r.agree else 'NO'} |"
        )
    return 0 if all(r.agree for r in rows) else 1


# ------------------------------------------------------------------------------ warm


def cmd_warm(args: argparse.Namespace) -> int:
    from numbadask.cpu import cache
    from numbadask.main import warm

    dtypes = warm.parse_dtypes(args.dtypes)
    functions = warm.parse_names(args.functions, warm.FUNCTIONS, "function")
    layouts = warm.parse_names(args.layouts, warm.LAYOUTS, "layout")
    where = args.scheduler or str(cache.cache_root() / "numba")
    if not args.json:
        s = "s" * (len(functions) != 1)
        print(f"numbadask {__version__} warm: CPU kernels of {len(functions)} function{s} for {', '.join(dtypes)} into {where}", flush=True)

    def line(w: Any, worker: str = "") -> None:
        done = f"{w.compiled} compiled" if w.compiled else "from the cache"
        print(f"  {worker}{w.dtype:<8} {w.function:<10} {w.seconds:7.2f} s  ({done})", flush=True)

    if args.scheduler:
        reports = warm.warm_workers(args.scheduler, dtypes, functions, layouts)
    else:
        reports = {"": warm.warm(dtypes, functions, layouts, report=None if args.json else line)}
    if args.json:
        print(json.dumps({worker or "local": [w.to_json() for w in report] for worker, report in reports.items()}))
        return 0
    for worker, report in reports.items():
        if worker:
            for w in report:
                line(w, f"{worker} ")
        seconds = sum(w.seconds for w in report)
        compiled = sum(w.compiled for w in report)
        print(f"  {worker + ': ' if worker else ''}{len(report)} function/dtype pairs in {seconds:.1f} s; {compiled} Numba functions compiled")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    # --debug before or after the command; SUPPRESS keeps a subcommand's default from
    # overwriting `numbadask --debug stats ...`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    parser = argparse.ArgumentParser(
        prog="numbadask",
        description="Fast, exact reductions over Dask arrays with a Numba kernel per chunk. "
        "With no command: `numbadask stats` of a synthetic array of min(1 GiB, RAM/8), held in memory.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"numbadask {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{stats,info,bench,warm}")

    stats = commands.add_parser("stats", parents=[common], help="statistics of an array in a file (the main job)")
    stats.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="a .npy file, a Zarr store (STORE[:/ARRAY]), an HDF5 dataset FILE.h5:/DATASET, or "
        "random:SHAPE[:DTYPE] (e.g. random:20000x20000:float32); default: a synthetic array",
    )
    stats.add_argument("--stats", type=_usage_checked(lambda t: _module("stats").parse_stats(t)), help="comma-separated: sum, mean, var, std, min, max, ptp, count, argmin, argmax "
                       "and nan-versions, and moments (default: moments, i.e. count,sum,mean,var,std,min,max in one pass)")
    stats.add_argument("--axis", type=_usage_checked(lambda t: _module("stats").parse_axis(t)), help="axis or comma-separated axes to reduce (default: all)")
    stats.add_argument("--ddof", type=_ddof, default=0, help="delta degrees of freedom of var/std, any real number as in NumPy (default 0)")
    stats.add_argument("--skipna", action="store_true", help="skip NaN (the nan-versions of the stats)")
    stats.add_argument("--chunks", type=_usage_checked(lambda t: _module("sources").parse_chunks(t)), help="'auto' (default; follows the file's chunks), a size like 64MiB, or 1000x-1")
    stats.add_argument("--device", choices=dispatch.DEVICES, default="auto", help="where the kernels run (default auto)")
    stats.add_argument(
        "--scheduler",
        type=_scheduler,
        default="auto",
        help="threads, processes, local (LocalCluster), local-cuda (LocalCUDACluster) or tcp://HOST:PORT; "
        "auto (default): local-cuda with 2+ GPUs and dask-cuda, else threads",
    )
    stats.add_argument("--persist", action="store_true", help="load the array into memory first; time the reduction only")
    stats.add_argument("--json", action="store_true", help="print the result as JSON on stdout, and nothing else")
    stats.set_defaults(func=cmd_stats)

    info = commands.add_parser("info", parents=[common], help="versions, visible GPUs and the CUDA simulator")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(func=cmd_info)

    bench = commands.add_parser("bench", parents=[common], help="numbadask vs dask.array (and numbagg) on this machine")
    bench.add_argument("--size", type=parse_bytes, default=parse_bytes("256MiB"), help="array size (default 256MiB)")
    bench.add_argument("--chunk-size", type=parse_bytes, default=parse_bytes("32MiB"), help="chunk size (default 32MiB)")
    bench.add_argument("--functions", type=_usage_checked(lambda t: _module("benchmark").check_functions([f.strip() for f in t.split(",") if f.strip()])), default="mean,std,nanmean,moments", help="comma-separated (default mean,std,nanmean,moments)")
    bench.add_argument("--runs", type=_positive_int, default=3, help="timed rounds; medians shown (default 3)")
    bench.add_argument("--device", choices=dispatch.DEVICES, default="auto", help="where to reduce (default: GPU if usable)")
    bench.set_defaults(func=cmd_bench)

    warm = commands.add_parser("warm", parents=[common], help="compile the CPU kernels ahead of time (an image build, every worker)")
    names = lambda what, allowed: _usage_checked(lambda t: _module("warm").parse_names(t, getattr(_module("warm"), allowed), what))  # noqa: E731
    warm.add_argument("--dtypes", type=_usage_checked(lambda t: _module("warm").parse_dtypes(t)), help="comma-separated NumPy dtypes (default: float64,float32,int64,int32,bool)")
    warm.add_argument("--functions", type=names("function", "FUNCTIONS"), help="comma-separated: the --stats names and moments (default: all)")
    warm.add_argument("--layouts", type=names("layout", "LAYOUTS"), help="comma-separated chunk layouts: contiguous, squares, strided, broadcast (default: all)")
    warm.add_argument("--scheduler", type=_address, help="tcp://HOST:PORT: compile on every worker of that Dask scheduler instead of here")
    warm.add_argument("--json", action="store_true", help="print the report as JSON on stdout, and nothing else")
    warm.set_defaults(func=cmd_warm)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """``numbadask`` and ``numbadask --json`` mean ``numbadask stats ...``."""
    if any(a in COMMANDS for a in argv) or any(a in ("-h", "--help", "--version") for a in argv):
        return argv
    return ["stats", *argv]


def _mistyped_command(argv: list[str]) -> str | None:
    """``"unknown command 'stast'; did you mean 'stats'?"`` when the word in the
    command's place is close to a command and names no file; else None (a SOURCE, or
    no word: ``numbadask data.npy`` and ``numbadask`` mean ``numbadask stats ...``).

    Examples
    --------
    >>> _mistyped_command(["stast", "data.npy"]), _mistyped_command(["data.npy"])
    ("unknown command 'stast'; did you mean 'stats'?", None)
    """
    word = next((a for a in argv if a != "--debug"), None)
    if word is None or word.startswith("-") or word in COMMANDS or any(c in word for c in "./:\\") or os.path.exists(word):
        return None
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    return f"unknown command {word!r}; did you mean {close[0]!r}?" if close else None


def _one_line(exc: BaseException) -> str:
    ours = (ValueError, ImportError, ConnectionError, dispatch.GPUUnavailableError)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if type(exc).__module__.startswith("numbadask") or type(exc) in ours else f"{type(exc).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``numbadask`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    mistyped = _mistyped_command(argv)
    if mistyped:
        build_parser().error(mistyped)  # exits 2, as argparse does for every usage error
    args = build_parser().parse_args(_with_default_command(argv))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("numbadask: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"numbadask: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
