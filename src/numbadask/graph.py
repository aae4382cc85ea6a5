"""The Dask graph of a reduction: one task per chunk, then a tree of merges.

Every numbadask reduction is built here: a layer of chunk tasks that turn each chunk
into a partial state, then a tree of tasks merging the states ``split_every`` at a time
(states are tuples of arrays: merged, never concatenated).  Building the graph
ourselves, rather than through ``dask.array.reduction``, lets a chunk task know its block's position (arg-reductions
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
from functools import partial
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from dask._task_spec import DataNode, GraphNode, List, Task, TaskRef

from .dispatch import ChunkError, GPUUnavailableError, failure_hint

if TYPE_CHECKING:
    import dask.array as da


#: Above this many chunks the chunk tasks fuse again: Dask's local scheduler copies its
#: cache of in-memory chunks once per task while it starts (``set(cache)`` in
#: ``dask.local.start_state_from_dask``), quadratic in the chunks left unfused.
#: Measured, chunks of one element: 5,000 chunks 0.57 s unfused / 1.2 s fused,
#: 20,000 4.3 / 6.1 s, 100,000 61 s unfused.
MAX_UNFUSED_CHUNKS = 10_000


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


def reduce_block(chunk: Callable[..., Any], label: str, block: tuple, x: Any, **kwargs: Any) -> Any:
    """``chunk(x, **kwargs)``, with any failure re-raised as a
    :class:`~numbadask.dispatch.ChunkError` naming ``label`` (the reduction and its
    kernel), the block and the chunk, so a bad chunk among thousands can be found."""
    try:
        return chunk(x, **kwargs)
    except GPUUnavailableError:
        raise  # already says what to do, and is not about this chunk
    except Exception as error:
        what = f"{type(x).__module__}.{type(x).__name__} of shape {getattr(x, 'shape', '?')}, dtype {getattr(x, 'dtype', '?')}"
        hint = failure_hint(error)
        message = f"{label} failed on block {block} ({what}): {type(error).__name__}: {error}"
        raise ChunkError(message + (f" -- {hint}" if hint else "")) from error


def block_offsets(x: da.Array) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each block's index and the global index of its first element, in C order."""
    starts = [tuple(itertools.accumulate(c[:-1], initial=0)) for c in x.chunks]
    return zip(itertools.product(*map(range, x.numblocks)), itertools.product(*starts))


def chunk_states(
    x: da.Array, name: str, axes: tuple[int, ...], chunk: Callable[..., Any], label: str, with_offsets: bool = False
) -> da.Array:
    """An array of partial states: ``chunk(block)`` (or ``chunk(block, offsets=...)``)
    per block of ``x``, one element along each reduced axis; failures name ``label``."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    task = UnfusedTask if x.npartitions <= MAX_UNFUSED_CHUNKS and _chunks_are_data(x) else Task
    graph = {}
    for index, offsets in block_offsets(x):
        key = (name, *index)
        kwargs = {"offsets": offsets} if with_offsets else {}
        graph[key] = task(key, reduce_block, chunk, label, (x.name, *index), TaskRef((x.name, *index)), **kwargs)
    chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))
    # States are tuples of arrays; the meta only has to survive dask's probes (astype,
    # which an object array fails for 0-d input, where np.empty holds None).
    meta = np.empty((0,) * x.ndim, dtype=np.float64)
    return da.Array(HighLevelGraph.from_collections(name, graph, dependencies=[x]), name, chunks, meta=meta)


def fan_in(split_every: int | dict[int, int], axes: tuple[int, ...]) -> dict[int, int]:
    """States merged per task along each reduced axis (dask.array's rule: an int is
    split evenly over the reduced axes, at least 2 each).

    Examples
    --------
    >>> fan_in(32, (0,)), fan_in(16, (0, 1)), fan_in({1: 8}, (0, 1))
    ({0: 32}, {0: 4, 1: 4}, {0: 2, 1: 8})
    """
    if isinstance(split_every, dict):
        return {a: max(int(split_every.get(a, 2)), 2) for a in axes}
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2 or a dict of them, got {split_every!r}")
    return dict.fromkeys(axes, max(int(split_every ** (1 / (len(axes) or 1))), 2))


def _merge_level(
    name: str, numblocks: tuple[int, ...], fan: dict[int, int], out: str, func: Callable[..., Any], keepdims: bool = True
) -> tuple[dict, tuple[int, ...]]:
    """One level of the tree: each task merges up to ``fan[axis]`` neighbouring blocks
    along each reduced axis (``keepdims=False``: the reduced axes leave the keys)."""
    out_blocks = tuple(-(-n // fan[a]) if a in fan else n for a, n in enumerate(numblocks))
    layer = {}
    for index in itertools.product(*map(range, out_blocks)):
        spans = [range(i * fan[a], min((i + 1) * fan[a], numblocks[a])) if a in fan else (i,) for a, i in enumerate(index)]
        refs = [TaskRef((name, *inner)) for inner in itertools.product(*spans)]
        key = (out, *(i for a, i in enumerate(index) if keepdims or a not in fan))
        layer[key] = Task(key, func, List(*refs))
    return layer, out_blocks


def tree_reduce(
    states: da.Array,
    axes: tuple[int, ...],
    combine: Callable[..., Any],
    aggregate: Callable[..., Any],
    keepdims: bool,
    split_every: int | dict[int, int],
    name: str,
    meta: Any,
) -> da.Array:
    """Merge the chunk states ``split_every`` at a time down to one block per output:
    ``combine(list_of_states, axis=axes, keepdims=True)`` on the inner levels, then
    ``aggregate`` on the last, which makes the result block.

    The tree is built here, with Task objects, rather than by dask.array's private
    ``_tree_reduce``: its tuple tasks cost Dask a conversion on every compute (about
    2 ms of a 6 ms compute of 64 chunks, ``bench/NOTES.md``)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    fan = fan_in(split_every, axes)
    token = tokenize(states.name, axes, keepdims, fan, repr(combine), repr(aggregate))
    layers = dict(states.dask.layers)
    dependencies = dict(states.dask.dependencies)
    current, numblocks = states.name, states.numblocks
    level = 0
    while any(numblocks[a] > fan[a] for a in axes):
        out = f"{name}-partial{level}-{token}"
        layers[out], numblocks = _merge_level(current, numblocks, fan, out, partial(combine, axis=axes, keepdims=True))
        dependencies[out] = {current}
        current, level = out, level + 1
    out = f"{name}-{token}"
    layers[out], _ = _merge_level(current, numblocks, fan, out, partial(aggregate, axis=axes, keepdims=keepdims), keepdims)
    dependencies[out] = {current}
    graph = HighLevelGraph(layers, dependencies)
    chunks = tuple((1,) if a in fan else c for a, c in enumerate(states.chunks) if keepdims or a not in fan)
    return da.Array(graph, out, chunks, meta=meta)
