"""Float64 sum of a chunk over some axes on the GPU: the partial state behind ``mean``.

Two kernels cover every layout (a :class:`numbadask.layout.Walk` describes it):

* ``_block_partials`` when the innermost memory axis is reduced (a full reduction, or
  reducing trailing axes): for each output, ``blocks`` blocks walk the reduced
  elements with a grid-stride loop (adjacent threads read adjacent memory), reduce in
  a shared-memory tree, and write one partial each; ``_finish_partials`` then adds each
  output's partials in a fixed order.  No float atomics, so the bits are the same on
  every run.
* ``_column_sums`` when the innermost memory axis is kept (reducing leading axes) or
  few elements fall to each output: one thread per output, adjacent threads reading
  adjacent memory.

Every input dtype accumulates in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64

from numbadask.layout import Walk

from .launch import THREADS, block_grid, serialized, simulator, thread_grid, threads_per_block

#: Outputs with at most this many reduced elements each use one thread per output.
FEW_PER_OUTPUT = 64


@cuda.jit(device=True)
def _kept_offset(m, sizes, strides, out_strides):
    offset = 0
    for i in range(len(sizes)):
        offset += ((m // out_strides[i]) % sizes[i]) * strides[i]
    return offset


@cuda.jit(device=True)
def _reduced_offset(r, sizes, strides):
    if len(sizes) == 1:
        # One reduced axis (any contiguous full reduction): no 64-bit division per
        # element, which held the first H100 run to 30-50% of the read ceiling.
        return r * strides[0]
    offset = 0
    for i in range(len(sizes) - 1, -1, -1):
        offset += (r % sizes[i]) * strides[i]
        r //= sizes[i]
    return offset


@cuda.jit
def _block_partials(buf, base, kept, red, n_out, n_red, partials):
    kept_sizes, kept_strides, kept_out = kept
    red_sizes, red_strides = red
    shared = cuda.shared.array(THREADS, float64)
    tid = cuda.threadIdx.x
    step = cuda.gridDim.x * cuda.blockDim.x
    for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
        start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
        acc = 0.0
        r = cuda.blockIdx.x * cuda.blockDim.x + tid
        while r < n_red:
            acc += float64(buf[start + _reduced_offset(r, red_sizes, red_strides)])
            r += step
        shared[tid] = acc
        cuda.syncthreads()
        width = cuda.blockDim.x // 2
        while width > 0:
            if tid < width:
                shared[tid] += shared[tid + width]
            cuda.syncthreads()
            width //= 2
        if tid == 0:
            partials[m, cuda.blockIdx.x] = shared[0]
        cuda.syncthreads()


@cuda.jit
def _finish_partials(partials, out):
    m = cuda.grid(1)
    while m < partials.shape[0]:
        acc = 0.0
        for b in range(partials.shape[1]):
            acc += partials[m, b]
        out[m] = acc
        m += cuda.gridsize(1)


@cuda.jit
def _column_sums(buf, base, kept, red, n_out, n_red, out):
    kept_sizes, kept_strides, kept_out = kept
    red_sizes, red_strides = red
    m = cuda.grid(1)
    while m < n_out:
        start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
        acc = 0.0
        for r in range(n_red):
            acc += float64(buf[start + _reduced_offset(r, red_sizes, red_strides)])
        out[m] = acc
        m += cuda.gridsize(1)


def _axes_args(walk: Walk) -> tuple[tuple, tuple, int]:
    """Kept and reduced axes as tuples (kernels are specialized on their length)."""
    kept = [(int(n), int(s), int(o)) for n, s, o in zip(walk.sizes, walk.strides, walk.out_strides) if o]
    red = [(int(n), int(s)) for n, s, o in zip(walk.sizes, walk.strides, walk.out_strides) if not o]
    kept = kept or [(1, 0, 1)]
    red = red or [(1, 0)]
    n_red = int(np.prod([n for n, _ in red], dtype=np.int64))
    return tuple(zip(*kept)), tuple(zip(*red)), n_red


def _device_view(a: Any, *, read_only: bool = False) -> Any:
    """``a`` as the kernels take it.

    On a GPU, a CuPy array becomes a Numba device array without the per-call stream
    sync of passing it directly (numba-cuda #578); CuPy and Numba both launch on the
    legacy default stream, so order holds.  Under the simulator, NumPy outputs pass as
    they are (the simulator copies them back after the launch) and inputs are copied
    in once, as the simulator would also try to copy them back (and fail on read-only
    views such as broadcast chunks).
    """
    if simulator():
        return cuda.to_device(a) if read_only else a
    return cuda.as_cuda_array(a, sync=False)


def sum_float64(walk: Walk, xp: Any = np) -> Any:
    """Float64 sum over the walk's reduced axes, keepdims shape, on the chunk's device.

    Parameters
    ----------
    walk : Walk
        Layout of a CuPy chunk (or, under the simulator, a NumPy chunk).
    xp : module
        The chunk's array module; the result is allocated with it.

    Examples
    --------
    >>> import numpy as np                      # doctest: +SKIP
    >>> from numbadask.layout import plan_walk  # doctest: +SKIP
    >>> sum_float64(plan_walk(np.ones((4, 3)), (0,)))   # doctest: +SKIP
    array([[4., 4., 4.]])
    """
    buf = walk.buf.view(np.uint8) if walk.buf.dtype == np.bool_ else walk.buf
    kept, red, n_red = _axes_args(walk)
    n_out = walk.out_size
    out = xp.empty(n_out, dtype=np.float64)
    innermost_kept = walk.out_strides[-1] != 0
    with serialized():
        if innermost_kept or n_red <= FEW_PER_OUTPUT:
            _column_sums[thread_grid(n_out), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, _device_view(out)
            )
        else:
            blocks, rows = block_grid(n_out, n_red)
            partials = xp.empty((n_out, blocks), dtype=np.float64)
            _block_partials[(blocks, rows), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, _device_view(partials)
            )
            _finish_partials[thread_grid(n_out), threads_per_block()](
                _device_view(partials, read_only=True), _device_view(out)
            )
    return out.reshape(walk.out_shape)
