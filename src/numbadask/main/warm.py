"""Compile numbadask's CPU kernels ahead of time: ``numbadask warm`` and :func:`warm`.

The first call of a reduction on a new dtype compiles its Numba kernels (about a second
per kernel and layout on a 2-core machine) and caches them on disk
(:mod:`numbadask.cpu.cache`); every later process loads them in milliseconds.  This
module pays that cost up front, where it is cheap to wait: in a container image's build
step, or once on every worker of a cluster before the first job.

What it compiles: each function of the family (:data:`FUNCTIONS`: the public reductions
of :data:`numbadask.reductions.registry.REGISTRY` and ``moments``) on each dtype asked for
(default :data:`DTYPES`), over small arrays whose chunks walk as every case of the CPU
walk does (:data:`LAYOUTS`; :func:`numbadask.cpu.walker.walk_case`): contiguous chunks,
square chunks cut from a C-ordered array (strided rows), chunks with a step along
their rows, and broadcast chunks (``da.ones``, ``da.full``), each reduced over all
axes, the first and the last.  Through the public functions, so it compiles exactly
what a call uses, and with the synchronous scheduler, so in this process.

Not compiled: the CUDA kernels (compiled per GPU at first use), user-defined
reductions (:func:`numbadask.reduction`, cached on their own first use), the
two-array statistics (``cov``, ``corr``, ...) and dtypes not asked for.

Examples
--------
>>> report = warm(dtypes=["float64"], functions=["sum"], layouts=["contiguous"])
>>> [(r.dtype, r.function) for r in report]
[('float64', 'sum')]
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numba.core import event

from numbadask.cpu import notice
from numbadask.main.warmup import chunked
from numbadask.reductions.registry import REGISTRY, function

#: The dtypes compiled when none are named: the common float, integer and bool inputs.
DTYPES: tuple[str, ...] = ("float64", "float32", "int64", "int32", "bool")
#: Every function :func:`warm` can compile: the family, in the CLI's order, and moments.
FUNCTIONS: tuple[str, ...] = (*REGISTRY, "moments")
#: The chunk layouts of the sample arrays (see the module docstring).
LAYOUTS: tuple[str, ...] = ("contiguous", "squares", "strided", "broadcast")
#: The axes each sample array (2-d) is reduced over.
AXES: tuple[Any, ...] = (None, 0, 1)


class WarmError(ValueError):
    """A dtype, function or layout that :func:`warm` does not know."""


@dataclass(frozen=True)
class Warmed:
    """What compiling one function for one dtype took.

    Attributes
    ----------
    dtype, function : str
    seconds : float
        Wall time, compiling and loading from the cache included.
    compiled : int
        Numba functions of numbadask's compiled (0: everything came from the cache).
    """

    dtype: str
    function: str
    seconds: float
    compiled: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_names(text: str | Sequence[str] | None, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    """``"float32, float64"`` (or a list) -> ``("float32", "float64")``, each checked
    against ``allowed``; None, ``"all"`` or empty -> ``allowed``.

    Examples
    --------
    >>> parse_names("mean, std", FUNCTIONS, "function")
    ('mean', 'std')
    >>> parse_names("median", FUNCTIONS, "function")[0]
    Traceback (most recent call last):
    ...
    numbadask.main.warm.WarmError: unknown function 'median': choose from sum, mean, var, std, min, max, ptp, count, argmin, argmax, nansum, nanmean, nanvar, nanstd, nanmin, nanmax, nanargmin, nanargmax, moments (or all)
    """
    if text is None:
        return tuple(allowed)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names or names == ["all"]:
        return tuple(allowed)
    for name in names:
        if name not in allowed:
            raise WarmError(f"unknown {what} {name!r}: choose from {', '.join(allowed)} (or all)")
    return tuple(dict.fromkeys(names))


def parse_dtypes(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Like :func:`parse_names` for dtypes: any NumPy dtype name (``float16``, ``uint8``,
    ...), spelled as NumPy names it; None or ``"all"`` -> :data:`DTYPES`.

    Examples
    --------
    >>> parse_dtypes("f4, float64"), parse_dtypes(None)[:2]
    (('float32', 'float64'), ('float64', 'float32'))
    """
    if text is None:
        return DTYPES
    items = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not items or items == ["all"]:
        return DTYPES
    out = []
    for item in items:
        try:
            dtype = np.dtype(item)
        except TypeError:
            raise WarmError(f"unknown dtype {item!r}: name NumPy dtypes such as {', '.join(DTYPES)}") from None
        if dtype.kind not in "biuf":
            raise WarmError(f"numbadask reduces bool, integer and float arrays; got dtype {item!r}")
        out.append(dtype.name)
    return tuple(dict.fromkeys(out))


def sample_arrays(dtype: str, layouts: Iterable[str] = LAYOUTS) -> dict[str, Any]:
    """Small Dask arrays of ``dtype`` whose chunks have each layout of :data:`LAYOUTS`
    (:func:`numbadask.main.warmup.chunked`: views, or contiguous copies, of the array).

    Examples
    --------
    >>> x = sample_arrays("float32", ["squares"])["squares"]
    >>> x.shape, x.dtype, x.chunks
    ((8, 4), dtype('float32'), ((4, 4), (4,)))
    """
    dt = np.dtype(dtype)
    values = (np.arange(8 * 16) % 7).reshape(8, 16)
    wide = (values % 2 == 0) if dt == np.bool_ else values.astype(dt)
    make = {
        # (4, 8) C-contiguous chunks: one contiguous run per chunk; columns over axis 0.
        "contiguous": lambda: chunked(wide[:, :8], (4, 8), copy=True),
        # (4, 4) views of (4, 16) rows, as square chunks of a C-ordered array are:
        # four rows read side by side (the 4-row tile).
        "squares": lambda: chunked(wide[:, :4], (4, 4)),
        # a step of 2 along the rows: strided rows, and columns folded across.
        "strided": lambda: chunked(wide[:, ::2], (4, 8)),
        # stride 0 everywhere, as da.ones and da.full make them.
        "broadcast": lambda: chunked(np.broadcast_to(wide[0, 0], (8, 8)), (4, 8)),
    }
    return {name: make[name]() for name in layouts}


def _compute_all(name: str, arrays: dict[str, Any]) -> None:
    import dask

    func = function(name)
    lazy = []
    for x in arrays.values():
        for axis in AXES:
            result = func(x, axis=axis)
            lazy.extend(result if isinstance(result, tuple) else [result])
    with warnings.catch_warnings():  # all-equal or all-NaN samples: not the user's data
        warnings.simplefilter("ignore")
        dask.compute(*lazy, scheduler="sync")


class _CompileCounter(event.Listener):
    """Counts Numba compiles of numbadask's functions: Numba's ``numba:compile`` event
    fires for real compiles only, not for loads from the cache."""

    def __init__(self) -> None:
        self.count = 0

    def on_start(self, ev: event.Event) -> None:
        if notice.is_numbadask_function(getattr((ev.data or {}).get("dispatcher"), "py_func", None)):
            self.count += 1

    def on_end(self, ev: event.Event) -> None:
        pass


def warm(
    dtypes: str | Sequence[str] | None = None,
    functions: str | Sequence[str] | None = None,
    layouts: str | Sequence[str] | None = None,
    report: Callable[[Warmed], None] | None = None,
) -> list[Warmed]:
    """Compile (or load from the cache) the CPU kernels of ``functions`` for ``dtypes``
    in this process, so that later processes find them in numbadask's cache.

    Parameters
    ----------
    dtypes : str or sequence of str, optional
        NumPy dtype names, a list or comma-separated; default :data:`DTYPES`.
    functions : str or sequence of str, optional
        Names from :data:`FUNCTIONS`; default all of them.
    layouts : str or sequence of str, optional
        Names from :data:`LAYOUTS`; default all of them.
    report : callable, optional
        Called with each :class:`Warmed` as soon as it is done (the CLI prints it).

    Returns
    -------
    list of Warmed
        One per dtype and function, in that order.

    Notes
    -----
    On a cluster, run it once on every worker (workers on one machine share its cache
    folder): ``numbadask warm --scheduler tcp://HOST:PORT`` does, or
    ``client.run(numbadask.warm, dtypes=["float32"])``.  Running it again costs
    only the loads from the cache.
    """
    chosen_dtypes = parse_dtypes(dtypes)
    chosen_functions = parse_names(functions, FUNCTIONS, "function")
    chosen_layouts = parse_names(layouts, LAYOUTS, "layout")
    out = []
    old = notice.set_compile_notice(False)  # the report says what is compiled
    try:
        for dtype in chosen_dtypes:
            arrays = sample_arrays(dtype, chosen_layouts)
            for name in chosen_functions:
                counter = _CompileCounter()
                start = time.perf_counter()
                with event.install_listener("numba:compile", counter):
                    _compute_all(name, arrays)
                done = Warmed(dtype, name, time.perf_counter() - start, counter.count)
                out.append(done)
                if report is not None:
                    report(done)
    finally:
        notice.set_compile_notice(old)
    return out


def warm_workers(address: str, dtypes: Sequence[str], functions: Sequence[str], layouts: Sequence[str]) -> dict[str, list[Warmed]]:
    """:func:`warm` on every worker of the Dask scheduler at ``address``, one task per
    worker (in a worker thread: a ``client.run`` would hold the worker's event loop
    for the whole compile); returns each worker's report."""
    from numbadask.main.clusters import connect

    client = connect(address)
    try:
        workers = list(client.scheduler_info()["workers"])
        futures = {
            w: client.submit(warm, list(dtypes), list(functions), list(layouts), workers=[w], allow_other_workers=False, pure=False, key=f"numbadask-warm-{i}")
            for i, w in enumerate(workers)
        }
        return {w: f.result() for w, f in futures.items()}
    finally:
        client.close()
