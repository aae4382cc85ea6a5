"""``numbadask bench``: numbadask against dask.array (and numbagg) on this machine.

A small, quick version of ``bench/bench_family.py`` that ships with the package: a
synthetic float64 array in memory (1% NaN for the nan-functions), each function timed
against its dask.array counterpart in interleaved rounds on the threaded scheduler,
results checked to agree.  numbagg, when installed, reduces the whole NumPy array in one
call (no Dask): a reference for what a fast single-node kernel does.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numbadask.engine import dispatch
from numbadask.main.timing import interleaved_times, median_ratio

DEFAULT_FUNCTIONS: tuple[str, ...] = ("mean", "std", "nanmean", "moments")
#: dask.array's way to compute what each numbadask function computes.
DASK_WAYS: dict[str, Callable[[Any], Any]] = {
    "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(),
    "var": lambda x: x.var(),
    "std": lambda x: x.std(),
    "min": lambda x: x.min(),
    "max": lambda x: x.max(),
    "argmin": lambda x: x.argmin(),
    "argmax": lambda x: x.argmax(),
    "nansum": lambda x: _da().nansum(x),
    "nanmean": lambda x: _da().nanmean(x),
    "nanvar": lambda x: _da().nanvar(x),
    "nanstd": lambda x: _da().nanstd(x),
    "nanmin": lambda x: _da().nanmin(x),
    "nanmax": lambda x: _da().nanmax(x),
    "moments": lambda x: (x.mean(), x.var(), x.min(), x.max()),
}
NUMBAGG_FUNCTIONS = ("nansum", "nanmean", "nanvar", "nanstd", "nanmin", "nanmax")


def _da() -> Any:
    import dask.array as da

    return da


@dataclass
class BenchRow:
    """Median seconds of one function's contenders, and whether their answers agree."""

    function: str
    nbytes: int
    numbadask_s: float
    dask_s: float
    speedup: float  # median of per-round dask / numbadask
    numbagg_s: float | None
    agree: bool

    def gbps(self, seconds: float | None) -> float | None:
        return None if seconds is None else self.nbytes / seconds / 1e9


def check_functions(names: Sequence[str]) -> tuple[str, ...]:
    """The functions to time, refusing unknown names.

    Examples
    --------
    >>> check_functions(["mean", "moments"])
    ('mean', 'moments')
    """
    for name in names:
        if name not in DASK_WAYS:
            raise ValueError(f"bench cannot time {name!r}: choose from {', '.join(DASK_WAYS)}")
    return tuple(names)


def synthetic(nbytes: int, chunk_bytes: int, device: str, nan_fraction: float = 0.0) -> tuple[Any, Any]:
    """A random float64 (rows x 4096) array of about ``nbytes`` and its Dask wrapper in
    chunks of rows of about ``chunk_bytes`` (views of it, no copy; on the GPU for "gpu")."""
    import dask.array as da

    cols = 4096
    rows = max(1, nbytes // (8 * cols))
    chunk_rows = max(1, min(rows, chunk_bytes // (8 * cols)))
    a = np.random.default_rng(0).random((rows, cols))
    if nan_fraction:
        a.reshape(-1)[:: int(1 / nan_fraction)] = np.nan
    if device == "gpu" and not dispatch.simulator_enabled():
        import cupy

        a = cupy.asarray(a)
    return a, da.from_array(a, chunks=(chunk_rows, cols), asarray=False)


def _agree(ours: Any, theirs: Any) -> bool:
    ours = np.atleast_1d(np.asarray([dispatch.to_host(v) for v in (ours if isinstance(ours, tuple) else (ours,))], dtype=float))
    theirs = np.atleast_1d(np.asarray([dispatch.to_host(v) for v in (theirs if isinstance(theirs, tuple) else (theirs,))], dtype=float))
    return bool(np.allclose(ours, theirs, rtol=1e-9, atol=0, equal_nan=True))


def bench_function(name: str, a: Any, x: Any, runs: int, device: str) -> BenchRow:
    """Time numbadask's ``name``, dask.array's and (CPU, nan-functions) numbagg's."""
    import dask

    from numbadask.reductions.registry import function

    def ours() -> Any:
        if name == "moments":
            m = function("moments")(x, device=device)
            return tuple(dask.compute(m.mean, m.var, m.min, m.max))
        return function(name)(x, device=device).compute()

    def theirs() -> Any:
        way = DASK_WAYS[name](x)
        return tuple(dask.compute(*way)) if isinstance(way, tuple) else way.compute()

    contenders = {"numbadask": ours, "dask": theirs}
    if name in NUMBAGG_FUNCTIONS and device != "gpu" and importlib.util.find_spec("numbagg"):
        import numbagg

        contenders["numbagg"] = lambda: getattr(numbagg, name)(a)
    agree = _agree(ours(), theirs())
    times = interleaved_times(contenders, runs)
    return BenchRow(
        function=name,
        nbytes=int(x.nbytes),
        numbadask_s=statistics.median(times["numbadask"]),
        dask_s=statistics.median(times["dask"]),
        speedup=median_ratio(times["dask"], times["numbadask"]),
        numbagg_s=statistics.median(times["numbagg"]) if "numbagg" in times else None,
        agree=agree,
    )


def run_bench(nbytes: int, chunk_bytes: int, functions: Sequence[str], runs: int, device: str) -> list[BenchRow]:
    """One :class:`BenchRow` per function, on the threaded scheduler.

    Examples
    --------
    >>> rows = run_bench(2**20, 2**18, ["mean"], runs=1, device="cpu")
    >>> rows[0].function, rows[0].agree
    ('mean', True)
    """
    import dask

    functions = check_functions(functions)
    rows = []
    with dask.config.set(scheduler="threads"):
        plain = synthetic(nbytes, chunk_bytes, device)
        with_nan = synthetic(nbytes, chunk_bytes, device, nan_fraction=0.01) if any(f.startswith("nan") for f in functions) else plain
        for name in functions:
            a, x = with_nan if name.startswith("nan") else plain
            rows.append(bench_function(name, a, x, runs, device))
    return rows
