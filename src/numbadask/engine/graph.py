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

import itertools
import math
import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
from dask._task_spec import DataNode, GraphNode, List, Task, TaskRef

from numbadask.engine.collections import (
    chunks_are_data,
    chunks_in_memory,
    expr_backed,
    expr_graph,
    lowered,
    lowering_once,
    new_array,
    npartitions,
)
from numbadask.engine.dispatch import ChunkError, GPUUnavailableError, failure_hint

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


def reduce_block(chunk: Callable[..., Any], label: str, block: tuple, *xs: Any, **kwargs: Any) -> Any:
    """``chunk(*xs, **kwargs)`` (one chunk, or the aligned blocks of several arrays), with
    any failure re-raised as a :class:`~numbadask.engine.dispatch.ChunkError` naming
    ``label`` (the reduction and its kernel), the block and the chunks' types, shapes and
    dtypes, so a bad chunk among thousands can be found."""
    try:
        return chunk(*xs, **kwargs)
    except GPUUnavailableError:
        raise  # already says what to do, and is not about this chunk
    except Exception as error:
        what = ", ".join(f"{type(x).__module__}.{type(x).__name__} of shape {getattr(x, 'shape', '?')}, dtype {getattr(x, 'dtype', '?')}" for x in xs)
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


def local_threads_over(x: da.Array) -> int | None:
    """Threads of the local scheduler that will run a graph over ``x``, when ``x``'s
    chunks are arrays in this process's graph; None for chunks made by tasks, and
    under a distributed client (its scheduler places tasks, and persisted chunks may
    sit on different workers)."""
    if distributed_scheduler():
        return None
    return local_thread_count() if chunks_in_memory(x) else None


def distributed_scheduler() -> bool:
    """Whether a distributed Client's scheduler runs graphs here (it places tasks)."""
    from dask.base import get_scheduler

    return getattr(get_scheduler(), "__self__", None) is not None  # a distributed Client's get


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
    threads = local_threads_over(x) if multi else None
    if threads is None:
        return {}
    axis = multi[-1]  # the last: C order keeps each group's states in the merge order
    chunk_bytes = max(1, math.prod(x.shape) * x.dtype.itemsize // npartitions(x))  # no .nbytes on the expr Array
    wanted = min(TASK_BYTES // chunk_bytes, npartitions(x) // (TASKS_PER_THREAD * threads), fan[axis], x.numblocks[axis])
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

    task = UnfusedTask if npartitions(x) <= MAX_UNFUSED_CHUNKS and chunks_are_data(x) else Task
    source = (expr_graph(x) if expr_backed(x) else x.dask.layers[x.name]) if inline else {}
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
    if not referenced and expr_backed(x):  # every chunk inlined: no graph of x needed
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
    expr = expr_backed(states)
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


@lowering_once
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
    if expr_backed(x):
        x = lowered(x)
    fan = dask_fan_in(split_every, axes) if dask_rule else fan_in(split_every, axes, x.numblocks)
    # A fan-in the caller chose is dask.array's tree exactly: one chunk per task, so no
    # task depends on more than ``split_every`` others (dask's test_tree_reduce_depth).
    group = {} if dask_rule else chunks_per_task(x, axes, fan)
    grouping = "".join(f"-g{a}x{n}" for a, n in group.items())  # other blocks, other keys
    local = local_threads_over(x) is not None
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
    from dask.base import tokenize

    out = f"{name}-{tokenize(states.name, finish)}"
    graph = {}
    for index in itertools.product(*map(range, states.numblocks)):
        key = (out, *(i for a, i in enumerate(index) if keepdims or a not in axes))
        graph[key] = Task(key, finish, TaskRef((states.name, *index)))
    chunks = tuple(c for a, c in enumerate(states.chunks) if keepdims or a not in axes)
    return new_array(graph, out, chunks, meta, [states])




