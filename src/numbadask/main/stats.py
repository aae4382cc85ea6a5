"""The ``numbadask stats`` job: statistics of a SOURCE, on the scheduler asked for.

Open the source lazily (:mod:`numbadask.main.sources`), check the request by building its
graph on the host, start or join the scheduler (:mod:`numbadask.main.clusters`), move the
chunks to the workers' GPUs where that is the plan, then compute every statistic in one
``compute`` so the data is read once.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.main import clusters, sources, warmup
from numbadask.engine import dispatch
from numbadask.reductions.registry import REGISTRY, function, nan_version
from numbadask.reductions.variances import FIELDS

if TYPE_CHECKING:
    import dask.array as da

#: Every statistic ``--stats`` accepts: the numbadask reductions of those names.
FAMILY: tuple[str, ...] = tuple(REGISTRY)
#: What the default, one-pass :func:`numbadask.moments`, returns.
MOMENT_FIELDS: tuple[str, ...] = FIELDS
DEFAULT_WIDTH = 4096


class StatsError(ValueError):
    """A ``--stats`` or ``--axis`` value that names no statistic or axis."""


def parse_stats(text: str | None) -> tuple[str, ...] | None:
    """``"mean,std"`` -> ``("mean", "std")``; None or ``"moments"`` -> None (the
    one-pass :func:`numbadask.moments`).  ``moments`` among other stats stands for its
    seven statistics there.

    Examples
    --------
    >>> parse_stats("mean, std"), parse_stats(None), parse_stats("argmax,moments,mean")
    (('mean', 'std'), None, ('argmax', 'count', 'sum', 'mean', 'var', 'std', 'min', 'max'))
    >>> parse_stats("mean,median")
    Traceback (most recent call last):
    ...
    numbadask.main.stats.StatsError: unknown stat 'median' in --stats: choose from sum, mean, var, std, min, max, ptp, count, argmin, argmax, nansum, nanmean, nanvar, nanstd, nanmin, nanmax, nanargmin, nanargmax, moments
    """
    if text is None or text.strip() == "moments":
        return None
    names: list[str] = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name == "moments":
            names += MOMENT_FIELDS
        elif name in FAMILY:
            names.append(name)
        else:
            raise StatsError(f"unknown stat {name!r} in --stats: choose from {', '.join(FAMILY)}, moments")
    if not names:
        raise StatsError("--stats is empty: name at least one statistic, such as mean,std")
    return tuple(dict.fromkeys(names))


def parse_axis(text: str | None) -> int | tuple[int, ...] | None:
    """``"0"`` -> 0, ``"0,1"`` -> (0, 1), None or ``"all"`` -> None.

    Examples
    --------
    >>> parse_axis("-1"), parse_axis("0,1"), parse_axis(None)
    (-1, (0, 1), None)
    """
    if text is None or text.strip().lower() in ("all", "none"):
        return None
    try:
        axes = tuple(int(a) for a in text.split(","))
    except ValueError:
        raise StatsError(f"--axis takes an integer, integers joined by commas, or 'all'; got {text!r}") from None
    return axes[0] if len(axes) == 1 else axes


def lazy_stats(
    x: da.Array, stats: Sequence[str] | None, axis: Any, ddof: float, skipna: bool, device: str
) -> dict[str, da.Array]:
    """``{label: lazy result}``: the moments' fields, or each named reduction (its
    nan-version under ``skipna``, labelled by the function used).

    Examples
    --------
    >>> import dask.array as da
    >>> sorted(lazy_stats(da.ones(4, chunks=2), ["mean", "min"], None, 0, True, "cpu"))
    ['nanmean', 'nanmin']
    """
    if stats is None:
        return function("moments")(x, axis=axis, ddof=ddof, skipna=skipna, device=device)._asdict()
    out = {}
    for name in stats:
        r = nan_version(name) if skipna else REGISTRY[name]
        kwargs = {"ddof": ddof} if "ddof" in r.options else {}
        out[r.name] = function(r.name)(x, axis=axis, device=device, **kwargs)
    return out


def _auto_chunk_bytes() -> int:
    """Dask's "auto" chunk size (``array.chunk-size``, 128 MiB unless configured)."""
    import dask
    from dask.utils import parse_bytes

    return parse_bytes(dask.config.get("array.chunk-size"))


def default_source(memory_bytes: int | None = None) -> str:
    """The no-argument job's array: float64, min(1 GiB, an eighth of RAM).

    Examples
    --------
    >>> default_source(memory_bytes=2**30)
    'random:4096x4096:float64'
    """
    memory = memory_bytes if memory_bytes is not None else _physical_memory()
    nbytes = min(2**30, memory // 8)
    rows = max(1, nbytes // (8 * DEFAULT_WIDTH))
    return f"random:{rows}x{DEFAULT_WIDTH}:float64"


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 4 * 2**30


@dataclass
class StatsResult:
    """What one ``stats`` run found, and how fast."""

    source: str
    shape: tuple[int, ...]
    dtype: str
    chunksize: tuple[int, ...]
    nbytes: int
    axis: Any
    device: str
    scheduler: str
    workers: int  # threads, processes or cluster workers running tasks at once
    worker_kind: str  # "threads", "processes" or "workers"
    elapsed_s: float
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def gbps(self) -> float:
        """Input bytes per second of the compute, in GB/s."""
        return self.nbytes / self.elapsed_s / 1e9 if self.elapsed_s > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; NaN and infinities as the strings "nan", "inf", "-inf"."""
        return {
            "source": self.source,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "chunks": list(self.chunksize),
            "nbytes": self.nbytes,
            "axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis,
            "device": self.device,
            "scheduler": self.scheduler,
            "workers": self.workers,
            "worker_kind": self.worker_kind,
            "elapsed_s": self.elapsed_s,
            "gbps": self.gbps,
            "stats": {name: json_value(v) for name, v in self.values.items()},
        }


def json_value(value: Any) -> Any:
    """A NumPy result as JSON: numbers, nested lists; non-finite floats as strings.

    Examples
    --------
    >>> json_value(np.array([1.5, np.nan, -np.inf])), json_value(np.int64(3))
    ([1.5, 'nan', '-inf'], 3)
    """
    plain = np.asarray(value).tolist()

    def fix(v: Any) -> Any:
        if isinstance(v, list):
            return [fix(i) for i in v]
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return v

    return fix(plain)


def device_label(api_device: str, moved: bool) -> str:
    """How the result table names where the kernels ran.

    Examples
    --------
    >>> device_label("auto", True), device_label("cpu", False)
    ('GPU', 'CPU')
    """
    if moved:
        return "GPU"
    if api_device == "gpu":
        return "GPU (CUDA simulator)" if dispatch.simulator_enabled() else "GPU"
    return "CPU"


def _fit_chunks_to_workers(x: da.Array, source: str, chunks: Any, rt: clusters.Runtime) -> da.Array:
    """``x`` reopened with smaller "auto" chunks where Dask's (128 MiB) would not fit
    the workers' memory limits several times over; else ``x`` as it is."""
    cap = rt.chunk_bytes_cap()
    if chunks != "auto" or cap is None or cap >= _auto_chunk_bytes():
        return x
    return sources.open_source(source, f"{cap}B")


def run_stats(
    source: str,
    stats: Sequence[str] | None = None,
    axis: Any = None,
    ddof: float = 0,
    skipna: bool = False,
    chunks: Any = "auto",
    device: str = "auto",
    scheduler: str = "auto",
    persist: bool = False,
    progress: bool = False,
) -> StatsResult:
    """Compute statistics of SOURCE on the scheduler named, timing the compute.

    Parameters
    ----------
    source : str
        As :func:`numbadask.main.sources.open_source` takes it.
    stats : sequence of str, optional
        Names from :data:`FAMILY`; None: the fields of :func:`numbadask.moments`.
    axis, ddof, skipna
        As the reductions take them (``skipna`` picks the nan-versions).
    chunks : str or tuple
        Dask's chunk spelling ("auto", "64MiB", ``(1000, -1)``).  On a cluster whose
        workers have a memory limit, "auto" chunks are kept to a sixteenth of a
        thread's share of it (so a 384 MiB, 2-thread worker reads 12 MiB chunks).
    device : {"auto", "cpu", "gpu"}
    scheduler : str
        One of :data:`numbadask.main.clusters.SCHEDULERS` or ``tcp://HOST:PORT``.
    persist : bool
        Load the array into (worker) memory first and time only the reduction.
    progress : bool
        Show a progress bar for work that outlasts a second.

    Examples
    --------
    >>> r = run_stats("random:1000x10", stats=["mean", "max"], axis=0, scheduler="threads")
    >>> sorted(r.values), r.values["mean"].shape, r.device
    (['max', 'mean'], (10,), 'CPU')
    """
    from numbadask.main.timing import timed

    x = sources.open_source(source, chunks)
    # Build the graph once before any cluster starts: a bad axis fails in a second.
    lazy_stats(x, stats, axis, ddof, skipna, "cpu")
    with clusters.runtime(scheduler, device) as rt:
        x = _fit_chunks_to_workers(x, source, chunks, rt)
        api_device, moved = clusters.plan_device(device, rt.workers)
        data = clusters.to_gpus(x) if moved else x
        if persist:
            data = rt.persist(data, progress)
        build = functools.partial(lazy_stats, stats=stats, axis=axis, ddof=ddof, skipna=skipna, device=api_device)
        rt.run_everywhere(warmup.compile_kernels, str(x.dtype), x.chunks, moved, build, sources.memory_order(source))
        lazy = lazy_stats(data, stats, axis, ddof, skipna, api_device)
        if moved or api_device == "gpu":  # results come back as NumPy: no CuPy in the client
            lazy = {k: v.map_blocks(dispatch.to_host, meta=np.empty((0,) * v.ndim, v.dtype)) for k, v in lazy.items()}
        elapsed, values = timed(lambda: rt.compute(list(lazy.values()), progress))
    return StatsResult(
        source=source,
        shape=tuple(x.shape),
        dtype=str(x.dtype),
        chunksize=tuple(int(c) for c in x.chunksize),
        nbytes=int(x.nbytes),
        axis=axis,
        device=device_label(api_device, moved),
        scheduler=rt.scheduler,
        workers=rt.size()[0],
        worker_kind=rt.size()[1],
        elapsed_s=elapsed,
        values={name: np.asarray(v) for name, v in zip(lazy, values)},
    )
