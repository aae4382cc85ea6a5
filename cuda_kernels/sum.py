"""Sums of a chunk over some axes on the GPU: the partial states of sum, mean and nan-variants.

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

Float input accumulates in float64, integer and bool input in int64 (exact, wrapping
like NumPy); the NaN-skipping variant also counts the values it kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64, int64

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


def _make_kernels(acc_type, skipna: bool):
    """The three sum kernels for one accumulator type (float64 or int64), skipping NaN
    or not.  Built by a factory so both settings are compile-time constants."""
    zero = acc_type(0)

    @cuda.jit(device=True)
    def add(acc, n, value):
        """One element into a running (sum, count); NaN skipped when skipna."""
        v = acc_type(value)
        if skipna:
            keep = v == v
            return acc + (v if keep else zero), n + keep
        return acc + v, n

    @cuda.jit
    def block_partials(buf, base, kept, red, n_out, n_red, partials, counts):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        shared = cuda.shared.array(THREADS, acc_type)
        shared_n = cuda.shared.array(THREADS, int64)
        tid = cuda.threadIdx.x
        step = cuda.gridDim.x * cuda.blockDim.x
        for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            acc = zero
            n = 0
            r = cuda.blockIdx.x * cuda.blockDim.x + tid
            while r < n_red:
                acc, n = add(acc, n, buf[start + _reduced_offset(r, red_sizes, red_strides)])
                r += step
            shared[tid] = acc
            shared_n[tid] = n
            cuda.syncthreads()
            width = cuda.blockDim.x // 2
            while width > 0:
                if tid < width:
                    shared[tid] += shared[tid + width]
                    shared_n[tid] += shared_n[tid + width]
                cuda.syncthreads()
                width //= 2
            if tid == 0:
                partials[m, cuda.blockIdx.x] = shared[0]
                counts[m, cuda.blockIdx.x] = shared_n[0]
            cuda.syncthreads()

    @cuda.jit
    def finish_partials(partials, counts, out, out_counts):
        m = cuda.grid(1)
        while m < partials.shape[0]:
            acc = zero
            n = 0
            for b in range(partials.shape[1]):
                acc += partials[m, b]
                n += counts[m, b]
            out[m] = acc
            out_counts[m] = n
            m += cuda.gridsize(1)

    @cuda.jit
    def column_sums(buf, base, kept, red, n_out, n_red, out, out_counts):
        kept_sizes, kept_strides, kept_out = kept
        red_sizes, red_strides = red
        m = cuda.grid(1)
        while m < n_out:
            start = base + _kept_offset(m, kept_sizes, kept_strides, kept_out)
            acc = zero
            n = 0
            for r in range(n_red):
                acc, n = add(acc, n, buf[start + _reduced_offset(r, red_sizes, red_strides)])
            out[m] = acc
            out_counts[m] = n
            m += cuda.gridsize(1)

    return block_partials, finish_partials, column_sums


_KERNELS = {
    "sum_float64": _make_kernels(float64, skipna=False),
    "nansum_float64": _make_kernels(float64, skipna=True),
    "sum_int64": _make_kernels(int64, skipna=False),
}


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
        # The simulator copies only contiguous arrays in; strided views are the GPU's
        # business (as_cuda_array keeps their strides there).
        return cuda.to_device(np.ascontiguousarray(a)) if read_only else a
    return cuda.as_cuda_array(a, sync=False)


def _launch(name: str, walk: Walk, xp: Any, acc_dtype: Any) -> tuple[Any, Any]:
    """Run kernel set ``name`` over the walk: (sums, counts), keepdims shape."""
    block_partials, finish_partials, column_sums = _KERNELS[name]
    buf = walk.buf.view(np.uint8) if walk.buf.dtype == np.bool_ else walk.buf
    kept, red, n_red = _axes_args(walk)
    n_out = walk.out_size
    out = xp.empty(n_out, dtype=acc_dtype)
    counts = xp.empty(n_out, dtype=np.int64)
    innermost_kept = walk.out_strides[-1] != 0
    with serialized():
        if innermost_kept or n_red <= FEW_PER_OUTPUT:
            column_sums[thread_grid(n_out), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, _device_view(out), _device_view(counts)
            )
        else:
            blocks, rows = block_grid(n_out, n_red)
            partials = xp.empty((n_out, blocks), dtype=acc_dtype)
            partial_counts = xp.empty((n_out, blocks), dtype=np.int64)
            block_partials[(blocks, rows), threads_per_block()](
                _device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red,
                _device_view(partials), _device_view(partial_counts),
            )
            finish_partials[thread_grid(n_out), threads_per_block()](
                _device_view(partials, read_only=True), _device_view(partial_counts, read_only=True),
                _device_view(out), _device_view(counts),
            )
    return out.reshape(walk.out_shape), counts.reshape(walk.out_shape)


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
    return _launch("sum_float64", walk, xp, np.float64)[0]


def nansum_float64(walk: Walk, xp: Any = np) -> tuple[Any, Any]:
    """Float64 sum of the non-NaN values and their int64 count; see :func:`sum_float64`."""
    return _launch("nansum_float64", walk, xp, np.float64)


def sum_int64(walk: Walk, xp: Any = np) -> Any:
    """Exact int64 sum (modulo 2**64) of a bool or integer chunk; see :func:`sum_float64`."""
    return _launch("sum_int64", walk, xp, np.int64)[0]
