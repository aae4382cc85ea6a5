"""The CUDA kernel factory: one block-reduction kernel generated from a reduction's
scalar pieces (issue 16).

A :class:`GpuReduction` says, for one input dtype, what a reduction keeps and how:
the Numba types of its state fields, ``step(state, value, aux)`` folding one element
into a state (``aux`` is a per-output float64, e.g. the shift of shifted moments), and
``merge(a, b)`` joining two states, ``a`` the earlier.  From it :func:`rows_kernel`
generates the kernel for reductions whose innermost memory axis is reduced (a full
reduction, or trailing axes), CUB's shape:

* each thread issues ``U`` independent loads before it folds them (``U`` from the
  dtype: :func:`items_per_thread`), 256 threads a block, so many loads are in flight
  (one load per thread left the old kernels latency-bound: float32 at half the GB/s
  of float64 on the H100);
* the block's states merge in a shared-memory tree, in a fixed association order;
* the finish is in the same launch: each block writes its partial state, fences, and
  takes a ticket from a per-output counter (``cuda.atomic.inc`` wraps it back to 0 for
  the next launch); the last block merges every partial with the whole block, in a
  fixed order.  No float atomics, and the grid comes from the element count alone
  (:func:`numbadask.cuda_kernels.launch.block_grid`), so the bits are the same on any
  GPU and on every run.

The source is generated per number of state fields (shared-memory arrays need one
array per field, each with its own dtype, at compile time) and compiled with
``cuda.jit``; the simulator runs the same source.
"""

from __future__ import annotations

import functools
import linecache
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import cuda, int32

from numbadask.layout import Walk

from .launch import block_grid, serialized, simulator, threads_per_block
from .walks import axes_args, device_view, kernel_buffer, kept_offset, reduced_offset


@dataclass(frozen=True)
class GpuReduction:
    """What a reduction keeps and does, for one input dtype, in device functions.

    Attributes
    ----------
    name : str
        Names the generated kernel (one per reduction and dtype).
    fields : tuple
        Numba types of the state fields (e.g. ``(float64, int64)``: a sum and a count).
    step : device function
        ``step(state, value, aux) -> state``: one element of the input in.
    merge : device function
        ``merge(a, b) -> state``: two states joined, ``a`` covering earlier elements.
    """

    name: str
    fields: tuple
    step: Any
    merge: Any


def items_per_thread(itemsize: int) -> int:
    """Loads each thread issues before folding them: CUB's 16 for 4-byte types, 8 for
    8-byte ones (16 KiB or 16 KiB of a tile per block either way)."""
    return 16 if itemsize <= 4 else 8


_SOURCE = '''
def {name}(buf, base, kept, red, n_out, n_red, aux, {identity}, {partials}, counter, {outs}):
    kept_sizes, kept_strides, kept_out = kept
    red_sizes, red_strides = red
{shared}
    last = cuda.shared.array(1, int32)
    tid = cuda.threadIdx.x
    bx = cuda.blockIdx.x
    nb = cuda.gridDim.x
    threads = cuda.blockDim.x
    tile = threads * U
    for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
        start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
        k = aux[m % aux.size]
        s = ({typed_identity},)
        r = bx * tile + tid
        # Whole tiles: U loads issued before any is folded.
        while r + (U - 1) * threads < n_red:
{loads}
{steps}
            r += nb * tile
        # The one tile that may be partial.
        for u in range(U):
            q = r + u * threads
            if q < n_red:
                s = step(s, buf[start + reduced_offset(q, red_sizes, red_strides)], k)
{to_shared}
        cuda.syncthreads()
{tree}
        if tid == 0:
{to_partials}
            cuda.threadfence()
            last[0] = cuda.atomic.inc(counter, m, nb - 1) == nb - 1
        cuda.syncthreads()
        if last[0]:
            s = ({typed_identity},)
            b = tid
            while b < nb:
                s = merge(s, ({from_partials},))
                b += threads
{to_shared_last}
            cuda.syncthreads()
{tree_last}
            if tid == 0:
{to_outs}
        cuda.syncthreads()
'''

_TREE = '''width = threads // 2
while width > 0:
    if tid < width:
        t = merge(({here},), ({there},))
{store_t}
    cuda.syncthreads()
    width //= 2'''


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _source(name: str, k: int, loads: int) -> str:
    """The kernel's source for ``k`` state fields and ``loads`` loads per thread."""
    fields = range(k)
    join = ", ".join
    tree = _TREE.format(
        here=join(f"h{i}[tid]" for i in fields),
        there=join(f"h{i}[tid + width]" for i in fields),
        store_t="\n".join(f"        h{i}[tid] = t[{i}]" for i in fields),
    )
    to_shared = "\n".join(f"h{i}[tid] = s[{i}]" for i in fields)
    return _SOURCE.format(
        name=name,
        identity=join(f"i{i}" for i in fields),
        typed_identity=join(f"F{i}(i{i})" for i in fields),
        partials=join(f"p{i}" for i in fields),
        outs=join(f"o{i}" for i in fields),
        shared="\n".join(f"    h{i} = cuda.shared.array(THREADS, F{i})" for i in fields),
        loads="\n".join(f"            v{u} = buf[start + reduced_offset(r + {u} * threads, red_sizes, red_strides)]" for u in range(loads)),
        steps="\n".join(f"            s = step(s, v{u}, k)" for u in range(loads)),
        to_shared=_indent(to_shared, 8),
        tree=_indent(tree, 8),
        to_partials="\n".join(f"            p{i}[m, bx] = h{i}[0]" for i in fields),
        from_partials=join(f"p{i}[m, b]" for i in fields),
        to_shared_last=_indent(to_shared, 12),
        tree_last=_indent(tree, 12),
        to_outs="\n".join(f"                o{i}[m] = h{i}[0]" for i in fields),
    )


@functools.lru_cache(maxsize=None)
def rows_kernel(reduction: GpuReduction, loads: int) -> Any:
    """The block-reduction kernel of ``reduction`` with ``loads`` loads per thread (see
    the module docstring), as a CUDA dispatcher::

        kernel[(blocks, rows), threads](buf, base, kept, red, n_out, n_red, aux,
                                        *identity, *partials, counter, *outs)

    ``partials`` are ``(n_out, blocks)`` arrays, one per field; ``counter`` a uint32
    array of ``n_out`` zeros (left at zeros after the launch); ``outs`` are ``n_out``
    arrays, one per field; ``aux`` a float64 array of 1 or ``n_out`` values.
    """
    k = len(reduction.fields)
    name = f"rows_{reduction.name}_u{loads}"
    source = _source(name, k, loads)
    filename = f"<numbadask.cuda_kernels.factory:{name}>"
    # Registered with linecache so tracebacks and the simulator show the source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    names = {
        "cuda": cuda,
        "int32": int32,
        "THREADS": threads_per_block(),
        "U": loads,
        "step": reduction.step,
        "merge": reduction.merge,
        "kept_offset": kept_offset,
        "reduced_offset": reduced_offset,
        **{f"F{i}": t for i, t in enumerate(reduction.fields)},
    }
    exec(compile(source, filename, "exec"), names)
    return cuda.jit(names[name])


def block_reduce(reduction: GpuReduction, walk: Walk, identity: tuple, xp: Any, aux: Any = None, buf: Any = None) -> tuple:
    """``reduction``'s state fields over the walk, flat over the outputs, by the
    factory's block kernel (for walks whose innermost memory axis is reduced).

    ``identity`` gives each field's starting value; ``aux``, a float64 device array of
    1 or ``n_out`` values, is handed to ``step`` per output (default: one 0.0); ``buf``
    the walk's buffer as the kernel reads it (default: :func:`.walks.kernel_buffer`)."""
    buf = kernel_buffer(walk) if buf is None else buf
    kept, red, n_red = axes_args(walk)
    n_out = walk.out_size
    loads = 2 if simulator() else items_per_thread(buf.dtype.itemsize)
    kernel = rows_kernel(reduction, loads)
    blocks, rows = block_grid(n_out, n_red, loads)
    dtypes = [np.dtype(str(t)) for t in reduction.fields]
    partials = [xp.empty((n_out, blocks), dtype=d) for d in dtypes]
    outs = [xp.empty(n_out, dtype=d) for d in dtypes]
    counter = xp.zeros(n_out, dtype=np.uint32)
    aux = xp.zeros(1) if aux is None else aux
    with serialized():
        kernel[(blocks, rows), threads_per_block()](
            device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, device_view(aux, read_only=True),
            *identity, *map(device_view, partials), device_view(counter), *map(device_view, outs),
        )
    return tuple(outs)
