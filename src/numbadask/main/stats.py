"""The ``numbadask stats`` job: statistics of a SOURCE, on the scheduler asked for.

Open the source lazily (:mod:`numbadask.main.sources`), check the request by building its
graph on the host, start or join the scheduler (:mod:`numbadask.main.clusters`), move the
chunks to the workers' GPUs where that is the plan, then compute every statistic in one
``compute`` so the data is read once.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.main import clusters, sources
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


def compile_kernels(
    dtype: str, ndim: int, stats: Sequence[str] | None, axis: Any, ddof: float, skipna: bool, device: str, on_gpu: bool
) -> None:
    """Run the same statistics on tiny arrays of the same dtype and rank, here and at
    once, so that Numba compiles (or loads from its cache) every kernel the timed
    compute will call before it starts (a first run on a fresh install otherwise spends
    seconds compiling and reports that as GB/s).

    Numba compiles one machine code per argument type.  The chunk kernels read their
    chunk read-only whatever its flags (a writable array, a read-only memory map of a
    .npy file, a chunk unpickled in a worker: :func:`numbadask.walker.walk_buffer`), so
    only the dtype matters to them; the tiny array is cut in one-element chunks so the
    merges of several chunks run too.  The arg-reductions read the chunk as rows whose
    layout (C, Fortran or strided) follows the chunk's, so they also run on one chunk
    of each layout.

    Examples
    --------
    >>> compile_kernels("float32", 2, ["mean"], 0, 0, False, "cpu", False)
    """
    import dask
    import dask.array as da

    tiny = np.ones((2,) * ndim, dtype=dtype)
    arrays = [(tiny, 1)]  # several chunks: their merges compile too
    if ndim >= 2 and any(r.indexed for r in _reductions(stats, skipna)) and not on_gpu:
        strided = np.ones((2,) * (ndim - 1) + (4,), dtype=dtype)[..., ::2]
        arrays += [(tiny, -1), (np.asfortranarray(tiny), -1), (strided, -1)]
    for a, chunks in arrays:
        if on_gpu:
            import cupy

            a = cupy.asarray(a)
        # Read through a getter, as a file's chunks are: dask.array copies NumPy data
        # it is given into C order, which would lose the layouts.
        x = da.from_array(_Views(a), chunks=chunks, asarray=False, meta=a[(slice(0, 0),) * ndim])
        with warnings.catch_warnings():  # e.g. ddof >= 2 on two elements: not the user's data
            warnings.simplefilter("ignore")
            dask.compute(*lazy_stats(x, stats, axis, ddof, skipna, device).values(), scheduler="sync")


@dataclass(frozen=True, eq=False)
class _Views:
    """An array whose blocks are views of it, with its strides (see compile_kernels)."""

    array: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]


def _reductions(stats: Sequence[str] | None, skipna: bool) -> list[Any]:
    """The registry's reductions ``lazy_stats`` runs for ``stats`` (none for moments)."""
    return [nan_version(n) if skipna else REGISTRY[n] for n in stats or ()]


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
        rt.run_everywhere(compile_kernels, str(x.dtype), x.ndim, stats, axis, ddof, skipna, api_device, moved)
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
