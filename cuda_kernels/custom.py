"""CUDA kernels generated from a user-defined reduction (:func:`numbadask.reduction`).

The user's scalar ``map``/``merge`` functions are compiled as CUDA device functions
and closed over by kernels built here, with the same fixed-arity helpers as the CPU
kernels (:func:`numbadask.custom_kernels.state_helpers`).  The kernels follow
:mod:`.sum`: ``block_partials`` when the innermost memory axis is reduced (each block
folds a grid-stride share of one output's elements, merges its threads' states in a
shared-memory tree, writes one partial state; ``finish_partials`` merges each output's
partials in a fixed order: the same bits every run, no atomics), ``column_states``
(one thread per output) when the innermost axis is kept or outputs are small.

Threads fold elements in a strided order and the tree merges threads out of order, so
the merge must be commutative as well as associative (it is checked on a few values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64

from numbadask.custom_kernels import state_helpers
from numbadask.layout import Walk

from .launch import THREADS, block_grid, serialized, thread_grid, threads_per_block
from .walks import FEW_PER_OUTPUT, axes_args, device_view, kept_offset, reduced_offset


def _device(func: Any) -> Any:
    return cuda.jit(device=True)(func)


class CudaKernels:
    """The CUDA kernels of one user-defined reduction (Numba specializes and caches
    them per input dtype on first launch)."""

    def __init__(self, user_map: Any, user_merge: Any, identity: tuple[float, ...], p: int, skipna: bool) -> None:
        k = len(identity)
        h = state_helpers(k, p, _device(user_map), _device(user_merge), _device)
        mapped, merged, load, store = h.mapped, h.merged, h.load, h.store
        ident = tuple(float(v) for v in identity)

        @cuda.jit(device=True)
        def visit(acc, value, params):
            v = float64(value)
            if skipna and v != v:
                return acc
            return merged(acc, mapped(v, params))

        @cuda.jit
        def block_partials(buf, base, kept, red, n_out, n_red, params, partials):
            kept_sizes, kept_strides, kept_out = kept
            red_sizes, red_strides = red
            shared = cuda.shared.array((k, THREADS), float64)
            tid = cuda.threadIdx.x
            step = cuda.gridDim.x * cuda.blockDim.x
            for m in range(cuda.blockIdx.y, n_out, cuda.gridDim.y):
                start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
                acc = ident
                r = cuda.blockIdx.x * cuda.blockDim.x + tid
                while r < n_red:
                    acc = visit(acc, buf[start + reduced_offset(r, red_sizes, red_strides)], params)
                    r += step
                store(shared, tid, acc)
                cuda.syncthreads()
                width = cuda.blockDim.x // 2
                while width > 0:
                    if tid < width:
                        store(shared, tid, merged(load(shared, tid), load(shared, tid + width)))
                    cuda.syncthreads()
                    width //= 2
                if tid == 0:
                    store(partials, m * cuda.gridDim.x + cuda.blockIdx.x, load(shared, 0))
                cuda.syncthreads()

        @cuda.jit
        def finish_partials(partials, blocks, out):
            m = cuda.grid(1)
            while m < out.shape[1]:
                acc = ident
                for b in range(blocks):
                    acc = merged(acc, load(partials, m * blocks + b))
                store(out, m, acc)
                m += cuda.gridsize(1)

        @cuda.jit
        def column_states(buf, base, kept, red, n_out, n_red, params, out):
            kept_sizes, kept_strides, kept_out = kept
            red_sizes, red_strides = red
            m = cuda.grid(1)
            while m < n_out:
                start = base + kept_offset(m, kept_sizes, kept_strides, kept_out)
                acc = ident
                for r in range(n_red):
                    acc = visit(acc, buf[start + reduced_offset(r, red_sizes, red_strides)], params)
                store(out, m, acc)
                m += cuda.gridsize(1)

        self.k = k
        self._kernels = block_partials, finish_partials, column_states

    def reduce(self, walk: Walk, params: tuple[float, ...], xp: Any = np) -> Any:
        """The states of one chunk on its device: float64, shape ``(k, *walk.out_shape)``."""
        block_partials, finish_partials, column_states = self._kernels
        buf = walk.buf.view(np.uint8) if walk.buf.dtype == np.bool_ else walk.buf
        kept, red, n_red = axes_args(walk)
        n_out = walk.out_size
        out = xp.empty((self.k, n_out), dtype=np.float64)
        # An empty tuple as a kernel argument is an edge case of Numba's CUDA target we
        # do not need to meet: with no parameters, pass one that map never reads.
        params = params or (0.0,)
        with serialized():
            if walk.out_strides[-1] != 0 or n_red <= FEW_PER_OUTPUT:
                column_states[thread_grid(n_out), threads_per_block()](
                    device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, params, device_view(out)
                )
            else:
                blocks, rows = block_grid(n_out, n_red)
                partials = xp.empty((self.k, n_out * blocks), dtype=np.float64)
                block_partials[(blocks, rows), threads_per_block()](
                    device_view(buf, read_only=True), walk.base, kept, red, n_out, n_red, params, device_view(partials)
                )
                finish_partials[thread_grid(n_out), threads_per_block()](
                    device_view(partials, read_only=True), blocks, device_view(out)
                )
        return out.reshape((self.k, *walk.out_shape))
