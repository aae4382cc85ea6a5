"""The walk as the CUDA kernels see it: device functions from an output's or a reduced
element's index to its offset in the chunk's buffer, and the host-side arguments that
describe the layout (from :class:`numbadask.cpu.layout.Walk`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda, int64, uint64

from numbadask.cpu.layout import Walk

from .launch import simulator

#: Outputs with at most this many reduced elements each go to the column kernel (a
#: block per output would idle): threads along x over adjacent outputs.
FEW_PER_OUTPUT = 64


@cuda.jit(device=True)
def kept_offset(m, sizes, strides, out_strides):
    # Unsigned, as in reduced_offset: m, the sizes and the output strides are positive.
    q = uint64(m)
    offset = 0
    for i in range(len(sizes)):
        offset += int64((q // uint64(out_strides[i])) % uint64(sizes[i])) * strides[i]
    return offset


@cuda.jit(device=True)
def reduced_offset(r, sizes, strides):
    if len(sizes) == 1:
        # One reduced axis (any contiguous full reduction): no 64-bit division per
        # element, which held the first H100 run to 30-50% of the read ceiling.
        return r * strides[0]
    # Unsigned division (r and the sizes are never negative): Python's floor division
    # and modulo of signed integers cost sign fix-ups per load, and registers.  The
    # outermost axis needs no modulo: what is left of r is its index.
    q = uint64(r)
    offset = 0
    for i in range(len(sizes) - 1, 0, -1):
        n = uint64(sizes[i])
        offset += int64(q % n) * strides[i]
        q //= n
    return offset + int64(q) * strides[0]


def axes_args(walk: Walk) -> tuple[tuple, tuple, int]:
    """Kept and reduced axes as tuples (kernels are specialized on their length), and
    the number of reduced elements per output.  Cached by layout: the chunks of one
    array share a few, and building the tuples per launch is host time per chunk."""
    return _axes_args(walk.sizes.tobytes(), walk.strides.tobytes(), walk.out_strides.tobytes())


@functools.lru_cache(maxsize=1024)
def _axes_args(sizes: bytes, strides: bytes, out_strides: bytes) -> tuple[tuple, tuple, int]:
    columns = [np.frombuffer(b, dtype=np.int64).tolist() for b in (sizes, strides, out_strides)]
    kept = [(n, s, o) for n, s, o in zip(*columns) if o]
    red = [(n, s) for n, s, o in zip(*columns) if not o]
    kept = kept or [(1, 0, 1)]
    red = red or [(1, 0)]
    n_red = math.prod(n for n, _ in red)
    return tuple(zip(*kept)), tuple(zip(*red)), n_red


def device_view(a: Any, *, read_only: bool = False) -> Any:
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


def kernel_buffer(walk: Walk, widen_float16: bool = False) -> Any:
    """The walk's buffer in a dtype the kernels read: bool as uint8; float16 widened to
    float32 with ``widen_float16`` (the one copy, for kernels that keep input values in
    their state, as min/max do; sums convert each float16 value as they read it)."""
    buf = walk.buf
    if buf.dtype == np.bool_:
        return buf.view(np.uint8)
    if buf.dtype == np.float16 and widen_float16:
        return buf.astype(np.float32)
    return buf
