"""The Dask graph of a reduction: one task per chunk, then dask.array's tree reduction.

Every numbadask reduction is built here: a layer of chunk tasks that turn each chunk
into a partial state, then ``dask.array.reductions._tree_reduce`` merging the states
``split_every`` at a time (with ``concatenate=False``: states are tuples of arrays, not
arrays to concatenate).  Building the chunk layer ourselves, rather than through
``dask.array.reduction``, lets a chunk task know its block's position (arg-reductions
need global offsets) and lets it refuse low-level fusion with an input that is already
in memory.

Why refuse fusion there: Dask fuses a chunk task with its single dependency into one
subgraph task, and running a subgraph costs a ``dask.order`` call (about 130 us).
When that dependency is a chunk already in memory (a persisted array, or NumPy data
wrapped by ``from_array``), fusing saves nothing.  Measured on 64 tiny chunks, threaded
scheduler: 17.5 ms per compute fused, 10.7 ms not (``bench/NOTES.md``).  Inputs that are
tasks (reading a file, an elementwise op) still fuse with the chunk task as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from dask._task_spec import DataNode, GraphNode, Task, TaskRef

if TYPE_CHECKING:
    import dask.array as da


class UnfusedTask(Task):
    """A task that Dask's low-level fusion leaves on its own."""

    @property
    def block_fusion(self) -> bool:
        return True


def _chunks_are_data(x: da.Array) -> bool:
    """True when ``x``'s chunks sit in its graph as data, not tasks that make them."""
    from dask.highlevelgraph import MaterializedLayer

    layer = x.dask.layers.get(x.name)
    if not isinstance(layer, MaterializedLayer) or x.npartitions == 0:
        return False
    first = layer.get((x.name, *(0,) * x.ndim))
    return isinstance(first, DataNode) or not isinstance(first, (GraphNode, tuple))


def block_offsets(x: da.Array) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each block's index and the global index of its first element, in C order."""
    starts = [tuple(itertools.accumulate(c[:-1], initial=0)) for c in x.chunks]
    return zip(itertools.product(*map(range, x.numblocks)), itertools.product(*starts))


def chunk_states(
    x: da.Array, name: str, axes: tuple[int, ...], chunk: Callable[..., Any], with_offsets: bool = False
) -> da.Array:
    """An object array of partial states: ``chunk(block)`` (or ``chunk(block,
    offsets=...)``) per block of ``x``, one element along each reduced axis."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    task = UnfusedTask if _chunks_are_data(x) else Task
    graph = {}
    for index, offsets in block_offsets(x):
        key = (name, *index)
        kwargs = {"offsets": offsets} if with_offsets else {}
        graph[key] = task(key, chunk, TaskRef((x.name, *index)), **kwargs)
    chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))
    # States are tuples of arrays; the meta only has to survive dask's probes (astype,
    # which an object array fails for 0-d input, where np.empty holds None).
    meta = np.empty((0,) * x.ndim, dtype=np.float64)
    return da.Array(HighLevelGraph.from_collections(name, graph, dependencies=[x]), name, chunks, meta=meta)


def tree_reduce(
    states: da.Array,
    axes: tuple[int, ...],
    combine: Callable[..., Any],
    aggregate: Callable[..., Any],
    keepdims: bool,
    dtype: Any,
    split_every: Any,
    name: str,
    meta: Any,
) -> da.Array:
    """Merge the chunk states ``split_every`` at a time down to one block per output."""
    from dask.array.reductions import _tree_reduce

    result = _tree_reduce(states, aggregate, axes, keepdims, dtype, split_every, combine, name=name, concatenate=False)
    result._meta = meta
    return result
