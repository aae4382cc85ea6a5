"""Dask's two kinds of Array, legacy (a HighLevelGraph of layers) and query-planning
(an expression, ``DASK_ARRAY__QUERY_PLANNING=True``), seen the same way by the graphs:
whether an array's chunks are data in its graph, its lowered graph (once per call),
and a new Array made of our own tasks (:func:`new_array`).
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dask._task_spec import DataNode, GraphNode

if TYPE_CHECKING:
    import dask.array as da


def expr_backed(x: Any) -> bool:
    """True when ``x`` is a query-planning (expression-backed) dask Array: its ``.dask``
    is a plain dict of the whole (lowered) graph, with no layers.  (Asked of the type,
    not of ``__dask_graph__()``, which would lower the whole expression.)"""
    return hasattr(x, "expr")


#: Under query planning, the lowered graphs of the arrays one :func:`reduction` call
#: reads, by name: ``__dask_graph__()`` lowers the whole expression each time it is
#: asked (0.25 s for 2,500 blockwise chunks), and a call asks several times.  Held for
#: the call only: a graph may hold the chunks themselves.
_lowered: contextvars.ContextVar[dict | None] = contextvars.ContextVar("numbadask_lowered", default=None)


def lowering_once(func: Callable[..., Any]) -> Callable[..., Any]:
    """Within a call of ``func`` each expression-backed array's graph is lowered once."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _lowered.set({})
        try:
            return func(*args, **kwargs)
        finally:
            _lowered.reset(token)

    return wrapper


def expr_graph(x: Any) -> dict:
    """The lowered graph of an expression-backed ``x`` (once per :func:`reduction`)."""
    memo = _lowered.get()
    if memo is None:
        return x.__dask_graph__()
    if x.name not in memo:
        memo[x.name] = x.__dask_graph__()
    return memo[x.name]


def new_array(graph: dict, name: str, chunks: tuple, meta: Any, dependencies: list, expr: bool = False) -> da.Array:
    """A dask Array whose blocks are ``(name, *index)`` in ``graph``, which refers to
    ``dependencies``' keys: a HighLevelGraph layer, or under query planning an
    expression holding the merged graph (it has no layers to add one to)."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    if not (expr or any(map(expr_backed, dependencies))):
        return da.Array(HighLevelGraph.from_collections(name, graph, dependencies=dependencies), name, chunks, meta=meta)
    from dask.array._array_expr._collection import new_collection

    merged: dict = {}
    for d in dependencies:
        merged.update(expr_graph(d))
    merged.update(graph)
    return new_collection(_from_tasks()(merged, meta, chunks, list(graph), name))


def _from_tasks() -> type:
    """dask's ``FromGraph`` expression keeping our key names
    (:class:`numbadask.engine.expr_tasks.FromTasks`), imported on first use: ``import
    numbadask`` must not import dask.array."""
    from numbadask.engine.expr_tasks import FromTasks

    return FromTasks


def lowered(x: Any) -> Any:
    """An expression-backed ``x`` as its lowered expression: its ``name`` is then the
    prefix of its graph's keys (a rechunk's is not before lowering)."""
    from dask.array._array_expr._collection import new_collection

    return new_collection(x.expr.lower_completely())


def npartitions(x: Any) -> int:
    """How many blocks ``x`` has (the expression-backed Array has no ``npartitions``)."""
    return math.prod(x.numblocks)


def _first_chunk(x: da.Array) -> Any:
    """The graph entry of ``x``'s first block, if ``x`` holds its chunks itself."""
    from dask.highlevelgraph import MaterializedLayer

    if npartitions(x) == 0:
        return None
    if expr_backed(x):
        # Query planning: no layers to tell data from tasks; the lowered graph's entry
        # for the first block is a DataNode when the chunk is in memory.
        return expr_graph(x).get((x.name, *(0,) * x.ndim))
    layer = x.dask.layers.get(x.name)
    if not isinstance(layer, MaterializedLayer) or npartitions(x) == 0:
        return None
    return layer.get((x.name, *(0,) * x.ndim))


def chunks_in_memory(x: da.Array) -> bool:
    """True when ``x``'s chunks are arrays in its graph (not futures, not tasks)."""
    first = _first_chunk(x)
    value = first.value if isinstance(first, DataNode) else first
    return not isinstance(value, (GraphNode, tuple)) and hasattr(value, "shape")


def chunks_are_data(x: da.Array) -> bool:
    """True when ``x``'s chunks sit in its graph as data, not tasks that make them."""
    first = _first_chunk(x)
    if first is None:
        return False
    return isinstance(first, DataNode) or not isinstance(first, (GraphNode, tuple))


def sources_in_memory(x: da.Array) -> bool:
    """True when every chunk ``x``'s graph starts from is an array held in the graph
    (``from_array``, persisted data), whatever elementwise or transposing layers lie
    between: then holding one of ``x``'s chunks for a later task holds no new memory
    beyond a view.  Under query planning, only where ``x``'s own chunks are data."""
    from dask.highlevelgraph import MaterializedLayer

    if expr_backed(x):
        return chunks_in_memory(x)
    roots = [name for name, deps in x.dask.dependencies.items() if not deps]
    for name in roots:
        layer = x.dask.layers[name]
        if not isinstance(layer, MaterializedLayer):
            return False
        for value in layer.values():
            value = value.value if isinstance(value, DataNode) else value
            if isinstance(value, (GraphNode, tuple)) or not hasattr(value, "shape"):
                return False
    return bool(roots)


def chunks_as_views(x: da.Array) -> dict[tuple[int, ...], Any] | None:
    """``x``'s chunks by block index, where each is an array in memory or a transpose of
    one (xarray's ``transpose`` of ``from_array`` data, which is how flox receives a
    grouped reduction): made here, as views, so the tasks hold them and the scheduler
    runs no task per chunk.  None for anything else (the chunks stay tasks).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> x = da.from_array(np.arange(24.0).reshape(4, 6), chunks=(2, 6)).T
    >>> views = chunks_as_views(x)
    >>> sorted(views), views[(0, 1)].base is not None
    ([(0, 0), (0, 1)], True)
    """
    from dask.blockwise import Blockwise
    from dask.highlevelgraph import MaterializedLayer

    if expr_backed(x):
        return None

    def held(name: str) -> dict | None:
        layer = x.dask.layers.get(name)
        if not isinstance(layer, MaterializedLayer):
            return None
        found = {}
        for key, value in layer.items():
            value = value.value if isinstance(value, DataNode) else value
            if isinstance(value, (GraphNode, tuple)) or not hasattr(value, "shape"):
                return None
            found[key[1:]] = value
        return found

    own = held(x.name)
    if own is not None:
        return own
    layer = x.dask.layers.get(x.name)
    task = getattr(layer, "task", None)
    if not isinstance(layer, Blockwise) or task is None or getattr(task.func, "__name__", "") != "transpose" or len(layer.indices) != 1:
        return None
    (source, labels), axes = layer.indices[0], task.kwargs.get("axes")
    chunks = held(source) if labels is not None and axes is not None else None
    if chunks is None:
        return None
    out = layer.output_indices
    views = {}
    for index in itertools.product(*map(range, x.numblocks)):
        block = chunks.get(tuple(index[out.index(label)] for label in labels))
        if block is None:
            return None
        views[index] = block.transpose(axes)
    return views
