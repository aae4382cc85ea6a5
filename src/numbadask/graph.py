"""The Dask graph of a reduction: chunk tasks, then a tree of merges.

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

Chunks in memory also group: on a local scheduler one chunk task reads neighbouring
chunks along a reduced axis, up to about 1 GiB, keeping one task per thread
(:func:`chunks_per_task`), and hands their states unmerged to the first merge, or,
when the group is exactly one first merge's blocks, runs that merge itself
(:func:`groups_are_first_merges`); either way the bits do not change.  The local
scheduler spends about 60 us of its main thread per task, taken from the kernels on a
busy machine: 64 tiny chunks computed in 6.4 ms one per task, 3.4 ms grouped; 256 in
23 and 10 ms.  There the chunk tasks also hold the
chunks themselves rather than references to the input's data layer, so the graph Dask
orders, culls and optimizes on every compute has no node per chunk: 64 tiny chunks
3.7-4.3 -> 2.7-2.8 ms per compute.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
import os
from functools import partial
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import dask
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

#: A chunk task reduces neighbouring in-memory chunks until it holds about this many
#: bytes ...
TASK_BYTES = 2**30
#: ... but leaves at least this many tasks per thread.  Fewer, larger tasks won wherever
#: measured: each task costs a hand-off through the scheduler's main thread, during
#: which its worker reads nothing (64 x 32 MiB, share of the read ceiling, sum: 89 / 93
#: / 92% with 1 / 4 / 16 chunks per task at ~50 GB/s, 68 / 78% with 1 / 4 at ~84 GB/s;
#: one task of 32 chunks per thread, merging them itself, 1.1 ms less idle time per
#: compute than two of 16; bench/NOTES.md).
TASKS_PER_THREAD = 1


class UnfusedTask(Task):
    """A task that Dask's low-level fusion leaves on its own."""

    @property
    def block_fusion(self) -> bool:
        return True


def _expr_backed(x: Any) -> bool:
    """True when ``x`` is a query-planning (expression-backed) dask Array: its ``.dask``
    is a plain dict of the whole (lowered) graph, with no layers.  (Asked of the type,
    not of ``__dask_graph__()``, which would lower the whole expression.)"""
    return hasattr(x, "expr")


#: Under query planning, the lowered graphs of the arrays one :func:`reduction` call
#: reads, by name: ``__dask_graph__()`` lowers the whole expression each time it is
#: asked (0.25 s for 2,500 blockwise chunks), and a call asks several times.  Held for
#: the call only: a graph may hold the chunks themselves.
_lowered: contextvars.ContextVar[dict | None] = contextvars.ContextVar("numbadask_lowered", default=None)


def _lowering_once(func: Callable[..., Any]) -> Callable[..., Any]:
    """Within a call of ``func`` each expression-backed array's graph is lowered once."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _lowered.set({})
        try:
            return func(*args, **kwargs)
        finally:
            _lowered.reset(token)

    return wrapper


def _expr_graph(x: Any) -> dict:
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

    if not (expr or any(map(_expr_backed, dependencies))):
        return da.Array(HighLevelGraph.from_collections(name, graph, dependencies=dependencies), name, chunks, meta=meta)
    from dask.array._array_expr._collection import new_collection

    merged: dict = {}
    for d in dependencies:
        merged.update(_expr_graph(d))
    merged.update(graph)
    return new_collection(_from_tasks()(merged, meta, chunks, list(graph), name))


@functools.lru_cache(maxsize=1)
def _from_tasks() -> type:
    """dask's ``FromGraph`` expression keeping our key names: no alias task per block,
    and no tokenizing of the (possibly chunk-holding) graph: our names are tokens
    already.  Made on first use: ``import numbadask`` must not import dask.array."""
    from dask.array._array_expr._io import FromGraph

    class FromTasks(FromGraph):
        @property
        def _name(self) -> str:
            return self.operand("name_prefix")

        def __dask_tokenize__(self) -> str:
            return self.operand("name_prefix")

        def _layer(self) -> dict:
            return self.operand("layer")

    return FromTasks


def _lowered_collection(x: Any) -> Any:
    """An expression-backed ``x`` as its lowered expression: its ``name`` is then the
    prefix of its graph's keys (a rechunk's is not before lowering)."""
    from dask.array._array_expr._collection import new_collection

    return new_collection(x.expr.lower_completely())


def _npartitions(x: Any) -> int:
    """How many blocks ``x`` has (the expression-backed Array has no ``npartitions``)."""
    return math.prod(x.numblocks)


def _first_chunk(x: da.Array) -> Any:
    """The graph entry of ``x``'s first block, if ``x`` holds its chunks itself."""
    from dask.highlevelgraph import MaterializedLayer

    if _npartitions(x) == 0:
        return None
    if _expr_backed(x):
        # Query planning: no layers to tell data from tasks; the lowered graph's entry
        # for the first block is a DataNode when the chunk is in memory.
        return _expr_graph(x).get((x.name, *(0,) * x.ndim))
    layer = x.dask.layers.get(x.name)
    if not isinstance(layer, MaterializedLayer) or _npartitions(x) == 0:
        return None
    return layer.get((x.name, *(0,) * x.ndim))


def _chunks_in_memory(x: da.Array) -> bool:
    """True when ``x``'s chunks are arrays in its graph (not futures, not tasks)."""
    first = _first_chunk(x)
    value = first.value if isinstance(first, DataNode) else first
    return not isinstance(value, (GraphNode, tuple)) and hasattr(value, "shape")


def _chunks_are_data(x: da.Array) -> bool:
    """True when ``x``'s chunks sit in its graph as data, not tasks that make them."""
    first = _first_chunk(x)
    if first is None:
        return False
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


def reduce_group(
    chunk: Callable[..., Any],
    label: str,
    blocks: list,
    xs: list,
    offsets: list | None = None,
    merge: Callable[[list], Any] | None = None,
) -> Any:
    """The partial states of neighbouring chunks ``xs``, in order (``blocks`` their keys,
    ``offsets`` their global offsets for the arg reductions).  Left unmerged, the first
    merge level flattens them, so grouping leaves every merge, and the bits, as they are
    with one chunk per task; a group that is exactly one first merge's blocks is
    merged here instead (``merge``): the same merge of the same states, one task less."""
    if offsets is None:
        states = [reduce_block(chunk, label, block, x) for block, x in zip(blocks, xs)]
    else:
        states = [reduce_block(chunk, label, block, x, offsets=o) for block, x, o in zip(blocks, xs, offsets)]
    return states if merge is None else merge(states)


def local_thread_count() -> int:
    """Tasks Dask's local schedulers run at once: ``num_workers`` or the CPUs this
    process may use (dask's own rule)."""
    from dask.system import CPU_COUNT

    return int(dask.config.get("num_workers", None) or CPU_COUNT)


def _local_threads_over(x: da.Array) -> int | None:
    """Threads of the local scheduler that will run a graph over ``x``, when ``x``'s
    chunks are arrays in this process's graph; None for chunks made by tasks, and
    under a distributed client (its scheduler places tasks, and persisted chunks may
    sit on different workers)."""
    from dask.base import get_scheduler

    if getattr(get_scheduler(), "__self__", None) is not None:  # a distributed Client's get
        return None
    return local_thread_count() if _chunks_in_memory(x) else None


def chunks_per_task(x: da.Array, axes: tuple[int, ...], fan: dict[int, int]) -> dict[int, int]:
    """How many neighbouring chunks one chunk task reads: ``{axis: count}``, empty for
    one chunk per task.

    Chunks group when they are arrays already in this process's graph (NumPy data
    wrapped by ``from_array``) and the graph runs on a local scheduler, whose main
    thread spends about 60 us per task, taken from the kernels on a busy machine
    (``bench/NOTES.md``).  A task then reads neighbouring chunks along the last reduced
    axis that has several, up to about :data:`TASK_BYTES`, leaving at least
    :data:`TASKS_PER_THREAD` tasks per thread.  The count divides that axis's first
    merge ``fan``, so groups fall inside the first merges and the merged states, in the
    same order, are those of one chunk per task.
    """
    multi = [a for a in axes if x.numblocks[a] > 1]
    threads = _local_threads_over(x) if multi else None
    if threads is None:
        return {}
    axis = multi[-1]  # the last: C order keeps each group's states in the merge order
    chunk_bytes = max(1, math.prod(x.shape) * x.dtype.itemsize // _npartitions(x))  # no .nbytes on the expr Array
    wanted = min(TASK_BYTES // chunk_bytes, _npartitions(x) // (TASKS_PER_THREAD * threads), fan[axis], x.numblocks[axis])
    count = max((d for d in range(1, wanted + 1) if fan[axis] % d == 0), default=1)
    return {axis: count} if count > 1 else {}


def chunk_states(
    x: da.Array,
    name: str,
    axes: tuple[int, ...],
    chunk: Callable[..., Any],
    label: str,
    group: dict[int, int],
    with_offsets: bool = False,
    inline: bool = False,
    merge: Callable[[list], Any] | None = None,
) -> da.Array:
    """An array of partial states: ``chunk(block)`` (or ``chunk(block, offsets=...)``)
    per block of ``x``, or per ``group`` of neighbouring blocks a list of them, or
    their ``merge`` (:func:`reduce_group`); failures name ``label``.  With ``inline``,
    for chunks in memory, the tasks hold the chunks themselves and the graph leaves out
    ``x``'s."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    task = UnfusedTask if _npartitions(x) <= MAX_UNFUSED_CHUNKS and _chunks_are_data(x) else Task
    source = (_expr_graph(x) if _expr_backed(x) else x.dask.layers[x.name]) if inline else {}
    referenced = []

    def block_input(key: tuple) -> GraphNode:
        """The chunk itself, inlined, or a reference to the entry that holds it."""
        value = source.get(key)
        value = value.value if isinstance(value, DataNode) else value
        if value is None or isinstance(value, (GraphNode, tuple)):  # not inlined, or a task
            referenced.append(key)
            return TaskRef(key)
        return DataNode(None, value)

    offsets = dict(block_offsets(x)) if with_offsets else {}
    out_blocks = tuple(-(-n // group.get(a, 1)) for a, n in enumerate(x.numblocks))
    graph = {}
    for index in itertools.product(*map(range, out_blocks)):
        key = (name, *index)
        if group:
            blocks = list(itertools.product(*(_span(i, group.get(a, 1), x.numblocks[a]) for a, i in enumerate(index))))
            kwargs = {"offsets": [offsets[b] for b in blocks]} if with_offsets else {}
            kwargs |= {"merge": merge} if merge is not None else {}
            keys = [(x.name, *b) for b in blocks]
            graph[key] = task(key, reduce_group, chunk, label, keys, List(*map(block_input, keys)), **kwargs)
        else:
            kwargs = {"offsets": offsets[index]} if with_offsets else {}
            graph[key] = task(key, reduce_block, chunk, label, (x.name, *index), block_input((x.name, *index)), **kwargs)
    chunks = tuple((1,) * n if i in axes else c for i, (c, n) in enumerate(zip(x.chunks, out_blocks)))
    # States are tuples of arrays; the meta only has to survive dask's probes (astype,
    # which an object array fails for 0-d input, where np.empty holds None).
    meta = np.empty((0,) * x.ndim, dtype=np.float64)
    if not referenced and _expr_backed(x):  # every chunk inlined: no graph of x needed
        return new_array(graph, name, chunks, meta, [], expr=True)
    return new_array(graph, name, chunks, meta, [x] if referenced else [])


def _span(index: int, size: int, n: int) -> range:
    """Blocks ``index * size`` up to ``size`` of ``n``: group ``index`` along one axis."""
    return range(index * size, min((index + 1) * size, n))


def fan_in(split_every: int | dict[int, int], axes: tuple[int, ...], numblocks: tuple[int, ...] | None = None) -> dict[int, int]:
    """States merged per task along each reduced axis.  An int is split evenly over
    the reduced axes that have several blocks (over all of them without
    ``numblocks``, dask.array's rule), at least 2 each.

    Examples
    --------
    >>> fan_in(32, (0,)), fan_in(16, (0, 1)), fan_in({1: 8}, (0, 1)), fan_in(32, (0, 1), (64, 1))
    ({0: 32}, {0: 4, 1: 4}, {0: 2, 1: 8}, {0: 32, 1: 2})
    """
    if isinstance(split_every, dict):
        return {a: max(int(split_every.get(a, 2)), 2) for a in axes}
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2 or a dict of them, got {split_every!r}")
    shared = [a for a in axes if numblocks is None or numblocks[a] > 1] or axes
    each = max(int(split_every ** (1 / (len(shared) or 1)) + 1e-9), 2)
    return {a: each if a in shared else 2 for a in axes}


def dask_fan_in(split_every: int | dict[int, int], axes: tuple[int, ...]) -> dict[int, int]:
    """dask.array's fan-in (``_tree_reduce``), for a ``split_every`` the call or dask's
    config sets: a dict's value per axis (2 where missing), an int's ``len(axes)``-th
    root over every reduced axis, at least 2, so the tree has dask.array's depth.

    Examples
    --------
    >>> dask_fan_in(16, (0, 1)), dask_fan_in({0: 2, 1: 3}, (0, 1)), dask_fan_in(64, (0, 1, 2))
    ({0: 4, 1: 4}, {0: 2, 1: 3}, {0: 3, 1: 3, 2: 3})
    """
    if isinstance(split_every, dict):
        return fan_in(split_every, axes)
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2 or a dict of them, got {split_every!r}")
    return dict.fromkeys(axes, max(int(split_every ** (1 / (len(axes) or 1))), 2))


def _merge_level(
    name: str,
    numblocks: tuple[int, ...],
    fan: dict[int, int],
    out: str,
    func: Callable[..., Any],
    keepdims: bool = True,
    task: type[Task] = Task,
    numbered: bool = False,
) -> tuple[dict, tuple[int, ...]]:
    """One level of the tree: each ``task`` merges up to ``fan[axis]`` neighbouring
    blocks along each reduced axis (``keepdims=False``: the reduced axes leave the
    keys).  ``numbered``: each task also tells ``func`` which block it makes, of how
    many, and which process built the graph (``block="<out>|<index>"``, ``blocks=``,
    ``built_in=`` its pid; not in the keys, which stay the same in every process)."""
    out_blocks = tuple(-(-n // fan[a]) if a in fan else n for a, n in enumerate(numblocks))
    total = math.prod(out_blocks)
    layer = {}
    for index in itertools.product(*map(range, out_blocks)):
        refs = [TaskRef((name, *inner)) for inner in itertools.product(*(_span(i, fan.get(a, 1), numblocks[a]) for a, i in enumerate(index)))]
        key = (out, *(i for a, i in enumerate(index) if keepdims or a not in fan))
        number = {"block": f"{out}|{index}", "blocks": total, "built_in": os.getpid()} if numbered else {}
        layer[key] = task(key, func, List(*refs), **number)
    return layer, out_blocks


def tree_reduce(
    states: da.Array,
    axes: tuple[int, ...],
    combine: Callable[..., Any],
    aggregate: Callable[..., Any],
    keepdims: bool,
    fan: dict[int, int],
    group: dict[int, int],
    name: str,
    meta: Any,
    merged_in_chunk_tasks: bool = False,
    final_task: type[Task] = Task,
    numbered: bool = False,
) -> da.Array:
    """Merge the chunk states ``fan[axis]`` at a time down to one block per output:
    ``combine(list_of_states, axis=axes, keepdims=True)`` on the inner levels, then
    ``aggregate`` on the last (its tasks of type ``final_task``; ``numbered``: called
    with ``block=`` and ``blocks=`` too, see :func:`_merge_level`), which makes the
    result block.  ``states`` holding ``group`` chunks per block merge ``fan // group``
    blocks at the first level, unless ``merged_in_chunk_tasks``: then they are that
    level's output.

    The tree is built here, with Task objects, rather than by dask.array's private
    ``_tree_reduce``: its tuple tasks cost Dask a conversion on every compute (about
    2 ms of a 6 ms compute of 64 chunks, ``bench/NOTES.md``)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    token = tokenize(states.name, axes, keepdims, fan, repr(combine), repr(aggregate))  # states.name holds the grouping
    expr = _expr_backed(states)
    layers = {} if expr else dict(states.dask.layers)
    dependencies = {} if expr else dict(states.dask.dependencies)
    current, numblocks = states.name, states.numblocks
    level_fan = dict(fan) if merged_in_chunk_tasks else {a: f // group.get(a, 1) for a, f in fan.items()}
    level = 0
    while any(numblocks[a] > level_fan[a] for a in axes):
        out = f"{name}-partial{level}-{token}"
        layers[out], numblocks = _merge_level(current, numblocks, level_fan, out, partial(combine, axis=axes, keepdims=True))
        dependencies[out] = {current}
        current, level, level_fan = out, level + 1, fan
    out = f"{name}-{token}"
    layers[out], _ = _merge_level(current, numblocks, level_fan, out, partial(aggregate, axis=axes, keepdims=keepdims), keepdims, final_task, numbered)
    dependencies[out] = {current}
    chunks = tuple((1,) if a in fan else c for a, c in enumerate(states.chunks) if keepdims or a not in fan)
    if expr:
        return new_array({k: v for layer in layers.values() for k, v in layer.items()}, out, chunks, meta, [states])
    return da.Array(HighLevelGraph(layers, dependencies), out, chunks, meta=meta)


@_lowering_once
def reduction(
    x: da.Array,
    name: str,
    token: str,
    axes: tuple[int, ...],
    chunk: Callable[..., Any],
    label: str,
    combine: Callable[..., Any],
    aggregate: Callable[..., Any],
    keepdims: bool,
    split_every: int | dict[int, int],
    meta: Any,
    with_offsets: bool = False,
    dask_rule: bool = False,
) -> da.Array:
    """The whole graph of a reduction named ``name`` over ``axes`` of ``x``: chunk
    states (:func:`chunk_states`, ``chunk`` named ``label`` in errors), then the merge
    tree (:func:`tree_reduce`; ``aggregate`` also takes the ``block=`` it makes, of
    ``blocks=``).  ``token`` tells graphs of the same name apart.
    ``dask_rule``: ``split_every`` was set by the call or dask's config, and spreads
    over the reduced axes as in dask.array (:func:`dask_fan_in`), one chunk per task."""
    if _expr_backed(x):
        x = _lowered_collection(x)
    fan = dask_fan_in(split_every, axes) if dask_rule else fan_in(split_every, axes, x.numblocks)
    # A fan-in the caller chose is dask.array's tree exactly: one chunk per task, so no
    # task depends on more than ``split_every`` others (dask's test_tree_reduce_depth).
    group = {} if dask_rule else chunks_per_task(x, axes, fan)
    grouping = "".join(f"-g{a}x{n}" for a, n in group.items())  # other blocks, other keys
    local = _local_threads_over(x) is not None
    merged = groups_are_first_merges(x.numblocks, axes, fan, group)
    merge = partial(combine, axis=axes, keepdims=True) if merged else None
    grouping += "-merged" if merged else ""
    states = chunk_states(x, f"{name}-chunk-{token}{grouping}", axes, chunk, label, group, with_offsets, local, merge)
    # Locally the final merge stays its own task: fused with Dask's finalize it runs as
    # a subgraph, and each subgraph run costs a dask.order call, 2/3 of that task's
    # time (0.15-0.2 ms less idle time per compute of 64 x 32 MiB, bench/NOTES.md).
    # A distributed scheduler's round trip per task costs more than that order call.
    final_task = UnfusedTask if local else Task
    return tree_reduce(states, axes, combine, aggregate, keepdims, fan, group, name, meta, merged, final_task, numbered=True)


def groups_are_first_merges(numblocks: tuple[int, ...], axes: tuple[int, ...], fan: dict[int, int], group: dict[int, int]) -> bool:
    """True when each group of chunks is exactly the blocks one inner merge of the
    first level would take, so the chunk task can run that merge itself: one task
    less per group, and one level of tasks less after the last chunk.  Not when the
    first level is the last (its merge makes the result block).

    Examples
    --------
    >>> groups_are_first_merges((64, 1), (0, 1), {0: 32, 1: 2}, {0: 32})
    True
    >>> groups_are_first_merges((64, 1), (0, 1), {0: 32, 1: 2}, {0: 16})  # half of one
    False
    >>> groups_are_first_merges((32, 1), (0, 1), {0: 32, 1: 2}, {0: 16})  # the final merge
    False
    """
    if len(group) != 1:
        return False
    ((axis, count),) = group.items()
    others_whole = all(numblocks[a] == 1 for a in axes if a != axis)
    return count == fan[axis] < numblocks[axis] and others_whole


def finish_blocks(
    states: da.Array, name: str, finish: Callable[[Any], Any], axes: tuple[int, ...], keepdims: bool, meta: Any
) -> da.Array:
    """``finish(block)`` for each block of a reduced ``states`` array (one block along
    each of ``axes``), the result dropping ``axes`` unless ``keepdims``: what
    ``map_blocks`` with ``drop_axis`` would do, without its concatenation of blocks."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    out = f"{name}-{tokenize(states.name, finish)}"
    graph = {}
    for index in itertools.product(*map(range, states.numblocks)):
        key = (out, *(i for a, i in enumerate(index) if keepdims or a not in axes))
        graph[key] = Task(key, finish, TaskRef((states.name, *index)))
    chunks = tuple(c for a, c in enumerate(states.chunks) if keepdims or a not in axes)
    return new_array(graph, out, chunks, meta, [states])


# --- several arrays read side by side ------------------------------------------------


def broadcast_shape(shapes: list[tuple[int, ...]], names: list[str], what: str) -> tuple[int, ...]:
    """NumPy's broadcast shape of ``shapes`` (dimensions compared from the last: equal,
    or one of them 1), or a ``ValueError`` naming the rule, the arrays and the
    dimension that breaks it (``what`` names the call in the message).

    Examples
    --------
    >>> broadcast_shape([(4, 3, 2), (3, 2), (1, 1)], ["x", "w", "s"], "f")
    (4, 3, 2)
    >>> broadcast_shape([(4, 3), (4,)], ["x", "y"], "f")
    Traceback (most recent call last):
    ...
    ValueError: f: arrays do not broadcast together (NumPy's rule: aligned from the last dimension, sizes must be equal or 1): x has shape (4, 3) and y (4,); at dimension -1, x has 3 and y 4
    """
    ndim = max((len(s) for s in shapes), default=0)
    shape = []
    for d in range(-ndim, 0):
        sizes = [(s[d], n) for s, n in zip(shapes, names) if len(s) >= -d]
        unknown = [n for m, n in sizes if math.isnan(m)]
        if unknown and any(m != 1 and not math.isnan(m) for m, _ in sizes):
            raise ValueError(
                f"{what}: {unknown[0]} has an unknown size along dimension {d} (its chunk sizes are unknown), where it must "
                f"match another array's; call .compute_chunk_sizes() on it first"
            )
        big = {m for m, _ in sizes if m != 1 and not math.isnan(m)}
        if unknown and not big:
            shape.append(math.nan)
            continue
        if len(big) > 1:
            (m0, n0), (m1, n1) = [(m, n) for m, n in sizes if m != 1][0], [(m, n) for m, n in sizes if m not in (1, _first_size(sizes))][0]
            listed = " and ".join(f"{n} {tuple(s)}" if i else f"{n} has shape {tuple(s)}" for i, (s, n) in enumerate(zip(shapes, names)))
            raise ValueError(
                f"{what}: arrays do not broadcast together (NumPy's rule: aligned from the last dimension, sizes must be equal or 1): "
                f"{listed}; at dimension {d}, {n0} has {m0} and {n1} {m1}"
            )
        shape.append(big.pop() if big else 1)
    return tuple(shape)


def _full_size(size: float, full: float) -> bool:
    """True when an array's ``size`` along a dimension is the broadcast size ``full``
    (not 1 broadcast; unknown sizes, NaN, match each other)."""
    return full != 1 and (size == full or (math.isnan(size) and math.isnan(full)))


def _first_size(sizes: list[tuple[int, str]]) -> int:
    """The first size other than 1 in ``(size, name)`` pairs."""
    return next(m for m, _ in sizes if m != 1)


def common_chunks(arrays: list[da.Array], shape: tuple[int, ...], what: str) -> tuple[list[da.Array], tuple[tuple[int, ...], ...]]:
    """``arrays`` cut alike, as ``da.blockwise``/``map_blocks`` inputs are
    (``dask.array.core.unify_chunks``): along each dimension of the broadcast
    ``shape``, the arrays that have it at full size are cut at every boundary any of
    them has (chunks (5, 2) and (4, 3) become (4, 1, 2): blocks split, never
    merged); an array of size 1 there is broadcast, one block.  Returns the arrays
    (rechunked where needed) and the chunks of the broadcast shape.  Unknown chunk
    sizes raise ``ValueError`` when two arrays must be cut alike along them.

    Examples
    --------
    >>> import dask.array as da
    >>> x, w = da.ones((4, 7), chunks=(2, (5, 2))), da.ones(7, chunks=((4, 3),))
    >>> (x, w), chunks = common_chunks([x, w], (4, 7), "f")
    >>> chunks, w.chunks
    (((2, 2), (4, 1, 2)), ((4, 1, 2),))
    """
    from dask.array.core import common_blockdim

    ndim = len(shape)
    wanted = [list(a.chunks) for a in arrays]
    chunks = []
    for d in range(ndim):
        full = [(i, d - (ndim - a.ndim)) for i, a in enumerate(arrays) if a.ndim > ndim - 1 - d and _full_size(a.shape[d - (ndim - a.ndim)], shape[d])]
        dims = [arrays[i].chunks[j] for i, j in full]
        if not dims:
            chunks.append((shape[d],) if shape[d] != 1 else (1,))
            continue
        if len(set(dims)) > 1 and any(math.isnan(c) for dim in dims for c in dim):
            raise ValueError(
                f"{what}: the arrays must be cut alike along dimension {d}, but their chunk sizes there are unknown "
                f"({dims}); call .compute_chunk_sizes() on them first"
            )
        common = common_blockdim(dims)
        for i, j in full:
            wanted[i][j] = common
        chunks.append(tuple(common))
    out = [a.rechunk(tuple(w)) if tuple(w) != a.chunks else a for a, w in zip(arrays, wanted)]
    return out, tuple(chunks)


def aligned_block(a: da.Array, index: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """The block of ``a`` (right-aligned, broadcast along its size-1 dimensions) that
    block ``index`` of the broadcast ``ndim``-dimensional array reads."""
    lead = ndim - a.ndim
    return tuple(0 if a.numblocks[d] == 1 else index[lead + d] for d in range(a.ndim))


def reduce_aligned(chunk: Callable[..., Any], label: str, block: tuple, *xs: Any) -> Any:
    """``chunk(*xs)`` for the aligned blocks ``xs`` of several arrays, failures re-raised
    as :class:`~numbadask.dispatch.ChunkError` naming ``label``, the block and the
    blocks' types, shapes and dtypes (as :func:`reduce_block` does for one array)."""
    try:
        return chunk(*xs)
    except GPUUnavailableError:
        raise
    except Exception as error:
        what = ", ".join(f"{type(x).__module__}.{type(x).__name__} of shape {getattr(x, 'shape', '?')}, dtype {getattr(x, 'dtype', '?')}" for x in xs)
        hint = failure_hint(error)
        message = f"{label} failed on block {block} ({what}): {type(error).__name__}: {error}"
        raise ChunkError(message + (f" -- {hint}" if hint else "")) from error


def aligned_states(
    arrays: list[da.Array], shape: tuple[int, ...], chunks: tuple, name: str, axes: tuple[int, ...], chunk: Callable[..., Any], label: str
) -> da.Array:
    """An array of partial states, one block per block of the broadcast ``shape`` (cut
    as ``chunks``, :func:`common_chunks`): ``chunk(*blocks)`` of the aligned blocks of
    every array (each as it is: ``chunk`` broadcasts them), in the keepdims shape of
    ``axes``.  One task per block, reading every input once; left unfused when the
    inputs' chunks are data in the graph (as :func:`chunk_states`)."""
    ndim = len(shape)
    arrays = [_lowered_collection(a) if _expr_backed(a) else a for a in arrays]
    data = all(_chunks_are_data(a) for a in arrays) and math.prod(len(c) for c in chunks) <= MAX_UNFUSED_CHUNKS
    task = UnfusedTask if data else Task
    graph = {}
    for index in itertools.product(*(range(len(c)) for c in chunks)):
        key = (name, *index)
        refs = [TaskRef((a.name, *aligned_block(a, index, ndim))) for a in arrays]
        graph[key] = task(key, reduce_aligned, chunk, label, index, *refs)
    state_chunks = tuple((1,) * len(c) if a in axes else c for a, c in enumerate(chunks))
    meta = np.empty((0,) * ndim, dtype=np.float64)
    return new_array(graph, name, state_chunks, meta, list(arrays))


@_lowering_once
def aligned_reduction(
    arrays: list[da.Array],
    shape: tuple[int, ...],
    name: str,
    token: str,
    axes: tuple[int, ...],
    chunk: Callable[..., Any],
    label: str,
    combine: Callable[..., Any],
    aggregate: Callable[..., Any],
    keepdims: bool,
    split_every: int | dict[int, int],
    meta: Any,
    dask_rule: bool = False,
) -> da.Array:
    """The graph of a reduction of several arrays read side by side (``chunk(*blocks)``
    per aligned block, :func:`aligned_states`), over ``axes`` of their broadcast
    ``shape`` (:func:`broadcast_shape`; cut alike by :func:`common_chunks`), merged in
    the tree of :func:`tree_reduce` as :func:`reduction` merges one array's states.
    Any reduction of aligned arrays can use it (user-defined ones do; the two-array
    statistics' graph is the same shape)."""
    arrays, chunks = common_chunks(list(arrays), shape, label)
    states = aligned_states(arrays, shape, chunks, f"{name}-chunk-{token}", axes, chunk, label)
    fan = dask_fan_in(split_every, axes) if dask_rule else fan_in(split_every, axes, states.numblocks)
    local = all(_local_threads_over(a) is not None for a in arrays)
    return tree_reduce(states, axes, combine, aggregate, keepdims, fan, {}, name, meta, False, UnfusedTask if local else Task)
