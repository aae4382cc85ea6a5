"""The CUDA kernel factory: every block-reduction kernel, generated from a reduction's
scalar pieces (issue 16).

A :class:`GpuReduction` says, for one input dtype, what a reduction keeps and how:
the Numba types of its state fields, ``step(state, value, j, aux)`` folding one element
into a state (``j``: the element's index among its output's reduced elements, in C
order of the walk's reduced axes, which arg-min/max keep; ``aux``: its output's row of
a float64 array, e.g. the shift of shifted moments or a user's parameters) and
``merge(a, b)`` joining two states.  Threads fold elements in a strided order and
trees merge them out of order, so ``merge`` must be commutative and associative.

From it the factory generates two kernels, each with one explicit signature per
(input dtype, number of kept axes, number of reduced axes), so a launch is never typed
(:func:`kernel` makes either):

* the rows kernel, when the innermost memory axis is reduced (a full reduction, or
  trailing axes), CUB's shape: each thread issues ``U`` independent loads before it
  folds them (``U`` from the dtype: :func:`items_per_thread`, capped per reduction by
  its register budget), 256 threads a block, the block's states merged in a
  shared-memory tree in a fixed order, and the finish in the same launch: each block
  writes its partial state, fences and takes a ticket from a per-output counter
  (``cuda.atomic.inc`` wraps it back to 0 for the next launch); the last block merges
  every partial with the whole block, in a fixed order;
* the column kernel, when the innermost memory axis is kept (reducing leading
  axes, or middle axes of 3-d) or few elements fall to each output, PyTorch's shape:
  2-d blocks, threads along x over adjacent outputs (a warp reads adjacent memory),
  along y over rows, ``U`` loads in flight per thread, a shared-memory tree over y;
  the rows split across ``gridDim.y`` when the column tiles alone cannot fill the GPU,
  finished by the last block of each column tile as above.

No float atomics, and the grids come from the element counts alone
(:mod:`numbadask.cuda_kernels.launch`), so the bits are the same on any GPU and every
run.  The source is generated per number of state fields (shared-memory arrays need one
array per field, each with its own dtype, at compile time); the simulator runs it too.
:func:`reduce` is the host side: it picks the kernel, reuses scratch
(:mod:`.scratch`) and launches once.
"""

from __future__ import annotations

import functools
import linecache
import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import cuda, int32, types

from numbadask.cpu.layout import Walk

from . import scratch
from .source import kernel_source
from .launch import block_grid, column_block, column_grid, serialized, simulator, threads_per_block
from .walks import FEW_PER_OUTPUT, axes_args, device_view, kernel_buffer, kept_offset, reduced_offset


@dataclass(frozen=True)
class GpuReduction:
    """What a reduction keeps and does, for one input dtype, in device functions.

    Attributes
    ----------
    name : str
        Names the generated kernels (unique per reduction and dtype).
    fields : tuple
        Numba types of the state fields (e.g. ``(float64, int64)``: a sum and a count).
    step : device function
        ``step(state, value, j, aux) -> state``: one element of the input in.
    merge : device function
        ``merge(a, b) -> state``: two states joined (commutative and associative).
    max_loads : int
        Most loads a thread issues before folding them: a large state leaves fewer
        registers for loads in flight (``tests/test_cuda_static.py`` checks the budget).
    max_column_loads : int or None
        The same for the column kernel (``None``: ``max_loads``), whose per-thread
        bookkeeping (its output, its tile, the row split) takes more registers.
    inputs : int
        Arrays read side by side (user-defined reductions of several arrays): the
        kernel takes a buffer, a base and strides per input, each thread issues
        its loads of every input before folding them, and ``step`` takes one value
        of each, ``step(state, v0, v1, ..., j, aux)``.  The inputs share the loads
        in flight (:meth:`loads` is per input: :func:`items_per_thread` divided
        among them, at least 2).
    """

    name: str
    fields: tuple
    step: Any
    merge: Any
    max_loads: int = 16
    max_column_loads: int | None = None
    inputs: int = 1

    def loads(self, itemsize: int, columns: bool = False) -> int:
        """Loads per thread for input items of ``itemsize`` bytes on this target, in the
        column kernel (``columns``) or the rows kernel."""
        most = self.max_column_loads if columns and self.max_column_loads is not None else self.max_loads
        # Several inputs share the loads in flight: a block's tile stays CUB's 16 KiB.
        return 2 if simulator() else min(max(2, items_per_thread(itemsize) // self.inputs), most)


#: ``__launch_bounds__(256, 4)`` of the factory's kernels (PTX ``.maxntid 256`` and
#: ``.minnctapersm 4``): ptxas then keeps a kernel within 65536 / (4 x 256) = 64
#: registers, so 4 blocks stay resident per SM (issue 16 item 5); without it ptxas took
#: up to 128 for the column kernels.  Both kernels' blocks have 256 threads (the column
#: kernel's 32 x 8 too: the bound is on the product).  A kernel that would spill
#: within the bound is compiled without it (:func:`compiled`): more registers, fewer
#: blocks resident, but no local-memory traffic in the loop that issues the loads.
#: The simulator's ``jit`` refuses the option: :func:`launch_bounds` gives ``None``.
LAUNCH_BOUNDS = (256, 4)


def launch_bounds() -> tuple[int, int] | None:
    """:data:`LAUNCH_BOUNDS` on a GPU, ``None`` under the simulator."""
    return None if simulator() else LAUNCH_BOUNDS


def items_per_thread(itemsize: int) -> int:
    """Loads each thread issues before folding them: CUB's 16 for 4-byte types, 8 for
    8-byte ones (a 16 KiB tile per block either way)."""
    return 16 if itemsize <= 4 else 8


@functools.lru_cache(maxsize=None)
def kernel_function(reduction: GpuReduction, loads: int, columns: bool) -> Any:
    """The generated Python function of a kernel (what ``cuda.jit`` and
    ``cuda.compile_ptx`` compile), from :func:`.source.kernel_source`."""
    k = len(reduction.fields)
    name = f"{'columns' if columns else 'rows'}_{reduction.name}_u{loads}"
    source = kernel_source(name, k, loads, columns, reduction.inputs)
    filename = f"<numbadask.cuda_kernels.factory:{name}>"
    # Registered with linecache so tracebacks and the simulator show the source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tx, ty = column_block()
    names = {
        "cuda": cuda,
        "int32": int32,
        "U64": types.uint64,
        "THREADS": tx * ty if columns else threads_per_block(),
        "TX": tx,
        "TY": ty,
        "U": loads,
        "step": reduction.step,
        "merge": reduction.merge,
        "kept_offset": kept_offset,
        "reduced_offset": reduced_offset,
        **{f"F{i}": t for i, t in enumerate(reduction.fields)},
    }
    exec(compile(source, filename, "exec"), names)
    return names[name]


def walk_argtypes(dtype: Any, n_kept: int, n_reduced: int, inputs: int = 1) -> tuple:
    """The Numba types of the walk's arguments ``(buf, base, kept, red, n_out, n_red)``
    for input ``dtype`` (as the kernel reads it) and ``n_kept`` kept and ``n_reduced``
    reduced axes: what every kernel of the package takes first.  With several
    ``inputs`` (``dtype`` then one dtype or a tuple of one per input): ``(buf0, ...,
    base0, ..., kept, red, n_out, n_red)``, ``kept`` holding the sizes, each input's
    strides and the output strides, ``red`` the sizes and each input's strides."""
    i64 = types.int64
    dtypes = tuple(dtype) if isinstance(dtype, (tuple, list)) else (dtype,) * inputs
    return (
        *(types.Array(numba.from_dtype(np.dtype(d)), 1, "C") for d in dtypes),
        *(i64,) * inputs,
        types.UniTuple(types.UniTuple(i64, n_kept), 2 + inputs),
        types.UniTuple(types.UniTuple(i64, n_reduced), 1 + inputs),
        i64,
        i64,
    )


def argtypes(reduction: GpuReduction, dtype: Any, n_kept: int, n_reduced: int) -> tuple:
    """The Numba types of a factory kernel's arguments (see :func:`walk_argtypes`)."""
    fields = reduction.fields
    return (
        *walk_argtypes(dtype, n_kept, n_reduced, reduction.inputs),
        types.Array(types.float64, 2, "C"),
        *fields,
        *(types.Array(f, 2, "C") for f in fields),
        types.Array(types.uint32, 1, "C"),
        *(types.Array(f, 1, "C") for f in fields),
    )


@functools.lru_cache(maxsize=None)
def compiled(reduction: GpuReduction, dtype: np.dtype | tuple, n_kept: int, n_reduced: int, loads: int, columns: bool) -> Any:
    """The kernel compiled for exactly one signature (launches skip Numba's typing),
    within :func:`launch_bounds` unless that spills (the kernel then has local memory:
    it is compiled again without them; ``numbadask.main.cuda_static`` does the same)."""
    signature = types.void(*argtypes(reduction, dtype, n_kept, n_reduced))
    function = kernel_function(reduction, loads, columns)
    bounds = launch_bounds()
    if bounds is not None:
        bounded = cuda.jit(signature, launch_bounds=bounds)(function)
        if not bounded.get_local_mem_per_thread(signature):
            return bounded
    return cuda.jit(signature)(function)


def kernel(reduction: GpuReduction, dtype: Any, n_kept: int, n_reduced: int, columns: bool) -> Any:
    """:func:`compiled` with this target's loads per thread: the column kernel
    (``columns``: the innermost memory axis kept) or the rows kernel.  ``dtype``: a
    tuple of one dtype per input for a kernel of several (loads from the widest)."""
    if isinstance(dtype, tuple):
        dtype = tuple(np.dtype(d) for d in dtype)
        itemsize = max(d.itemsize for d in dtype)
    else:
        dtype = np.dtype(dtype)
        itemsize = dtype.itemsize
    return compiled(reduction, dtype, n_kept, n_reduced, reduction.loads(itemsize, columns), columns)


def uses_columns(walk: Walk, n_red: int) -> bool:
    """True when the column kernel reduces the walk: its innermost memory axis is kept,
    or each output has so few elements that a block per output would idle."""
    return bool(walk.out_strides[-1] != 0) or n_red <= FEW_PER_OUTPUT


def reduce(reduction: GpuReduction, walk: Walk, identity: tuple, xp: Any, aux: Any = None, buf: Any = None) -> tuple:
    """``reduction``'s state fields over the walk, each a flat array over the outputs,
    on the chunk's device, in one launch.

    ``identity`` gives each field's starting value; ``aux``, a 2-d float64 device array
    of 1 or ``n_out`` rows, is handed to ``step`` row by row (default: one row, 0.0);
    ``buf`` the walk's buffer as the kernel reads it (default: :func:`.walks.kernel_buffer`).
    """
    buf = kernel_buffer(walk) if buf is None else buf
    kept, red, n_red = axes_args(walk)
    return _launch(reduction, (buf,), (walk.base,), kept, red, n_red, walk, identity, xp, aux)


def reduce_joint(reduction: GpuReduction, walk: Any, identity: tuple, xp: Any, aux: Any = None, bufs: tuple | None = None) -> tuple:
    """:func:`reduce` for a reduction of ``reduction.inputs`` arrays over their
    :class:`numbadask.cpu.layout.JointWalk` (``bufs``: its buffers as the kernel
    reads them; default: bool read as uint8)."""
    bufs = tuple(b.view(np.uint8) if b.dtype == np.bool_ else b for b in walk.bufs) if bufs is None else bufs
    kept, red, n_red = _joint_axes_args(walk.sizes.tobytes(), walk.strides.tobytes(), walk.out_strides.tobytes(), len(bufs))
    return _launch(reduction, bufs, tuple(int(b) for b in walk.bases), kept, red, n_red, walk, identity, xp, aux)


@functools.lru_cache(maxsize=1024)
def _joint_axes_args(sizes: bytes, strides: bytes, out_strides: bytes, inputs: int) -> tuple[tuple, tuple, int]:
    """Kept axes as (sizes, each input's strides, output strides) and reduced axes as
    (sizes, each input's strides), with at least one axis each, and the reduced
    elements per output (as :func:`.walks.axes_args`, per input)."""
    n = np.frombuffer(sizes, dtype=np.int64).tolist()
    st = np.frombuffer(strides, dtype=np.int64).reshape(inputs, -1).tolist()
    out = np.frombuffer(out_strides, dtype=np.int64).tolist()
    kept = [(n[d], *(s[d] for s in st), out[d]) for d in range(len(n)) if out[d]] or [(1, *(0,) * inputs, 1)]
    red = [(n[d], *(s[d] for s in st)) for d in range(len(n)) if not out[d]] or [(1, *(0,) * inputs)]
    return tuple(zip(*kept)), tuple(zip(*red)), math.prod(r[0] for r in red)


def _launch(reduction: GpuReduction, bufs: tuple, bases: tuple, kept: tuple, red: tuple, n_red: int, walk: Any, identity: tuple, xp: Any, aux: Any) -> tuple:
    n_out = walk.out_size
    columns = uses_columns(walk, n_red)
    dtypes_in = tuple(b.dtype for b in bufs)
    launch = kernel(reduction, dtypes_in[0] if len(bufs) == 1 else dtypes_in, len(kept[0]), len(red[0]), columns)
    loads = reduction.loads(max(d.itemsize for d in dtypes_in), columns)
    if columns:
        grid = column_grid(n_out, n_red, loads)
        block = column_block()
        width, n_counters = grid[1], -(-n_out // block[0])  # one counter per column tile
    else:
        grid = block_grid(n_out, n_red, loads)
        block = threads_per_block()
        width, n_counters = grid[0], n_out
    if width == 1:  # one block per output (tile): the kernel never touches them
        n_out_partials, n_counters = 1, 1
    else:
        n_out_partials = n_out
    dtypes = [np.dtype(str(t)) for t in reduction.fields]
    partials = [
        scratch.buffer(xp, ("partial", i), d, n_out_partials * width).reshape(n_out_partials, width)
        for i, d in enumerate(dtypes)
    ]
    counter = scratch.buffer(xp, "counter", np.uint32, n_counters, zeroed=True)
    outs = [xp.empty(n_out, dtype=d) for d in dtypes]
    aux = scratch.constant(xp, (0.0,)) if aux is None else aux
    try:
        with serialized():
            launch[grid, block](
                *(device_view(b, read_only=True) for b in bufs), *bases, kept, red, n_out, n_red, device_view(aux, read_only=True),
                *identity, *map(device_view, partials), device_view(counter), *map(device_view, outs),
            )
    except BaseException:
        scratch.forget()
        raise
    return tuple(outs)
