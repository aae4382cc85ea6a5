"""CUDA kernels of a user-defined reduction (:func:`numbadask.reduction`).

The user's scalar ``map``/``merge`` functions are compiled as CUDA device functions,
wrapped by the same fixed-arity helpers as the CPU kernels
(:func:`numbadask.cpu.factory.state_helpers`) and declared to the factory
(:mod:`.factory`) as a step and a merge over ``k`` float64 fields; the parameters
reach the step as the kernel's auxiliary row.  Threads fold elements in a strided
order and trees merge them out of order, so the merge must be commutative as well as
associative (it is checked on a few values).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numba import cuda, float64

from numbadask.cpu.factory import state_helpers
from numbadask.cpu.layout import Walk

from . import scratch
from .factory import GpuReduction, reduce, reduce_joint
from .walks import kernel_buffer

_names = itertools.count()


def _device(func: Any) -> Any:
    return cuda.jit(device=True)(func)


def _step_source(n: int) -> str:
    """``step`` for ``n >= 2`` arrays: one value of each, skipped (with ``skipna``) when
    any is NaN."""
    xs = [f"x{i}" for i in range(n)]
    converts = "\n".join(f"    x{i} = float64(v{i})" for i in range(n))
    nan = " or ".join(f"{x} != {x}" for x in xs)
    return (
        f"def step(acc, {', '.join(f'v{i}' for i in range(n))}, j, params):\n{converts}\n"
        f"    if skipna and ({nan}):\n        return acc\n"
        f"    return merged(acc, mapped({', '.join(xs)}, params))\n"
    )


class CudaKernels:
    """The CUDA reduction of one user-defined reduction of ``n`` arrays (the factory
    compiles and caches its kernels per input dtypes and layout on first launch)."""

    def __init__(self, user_map: Any, user_merge: Any, identity: tuple[float, ...], p: int, skipna: bool, n: int = 1) -> None:
        k = len(identity)
        h = state_helpers(k, p, _device(user_map), _device(user_merge), _device, n)
        mapped, merged = h.mapped, h.merged

        if n == 1:

            @cuda.jit(device=True)
            def step(acc, value, j, params):
                v = float64(value)
                if skipna and v != v:
                    return acc
                return merged(acc, mapped(v, params))

            self.reduction = GpuReduction(f"user{next(_names)}_k{k}_p{p}", (float64,) * k, step, merged)
        else:
            names: dict[str, Any] = {"float64": float64, "skipna": bool(skipna), "merged": merged, "mapped": mapped}
            exec(compile(_step_source(n), f"<numbadask.reduction step n={n}>", "exec"), names)
            step = cuda.jit(device=True)(names["step"])
            self.reduction = GpuReduction(f"user{next(_names)}_k{k}_p{p}_n{n}", (float64,) * k, step, merged, inputs=n)
        self.k = k
        self.identity = tuple(float(v) for v in identity)

    def reduce(self, walk: Walk, params: tuple[float, ...], xp: Any = np) -> Any:
        """The states of one chunk on its device: float64, shape ``(k, *walk.out_shape)``."""
        # A row that map never reads when there are no parameters: the aux array
        # needs at least one column.
        aux = scratch.constant(xp, tuple(params) or (0.0,))
        states = reduce(self.reduction, walk, self.identity, xp, aux=aux, buf=kernel_buffer(walk))
        return xp.stack(states).reshape((self.k, *walk.out_shape))

    def reduce_joint(self, walk: Any, params: tuple[float, ...], xp: Any = np) -> Any:
        """The states of aligned blocks of the ``n`` arrays over their
        :class:`numbadask.cpu.layout.JointWalk`, as :meth:`reduce`."""
        aux = scratch.constant(xp, tuple(params) or (0.0,))
        states = reduce_joint(self.reduction, walk, self.identity, xp, aux=aux)
        return xp.stack(states).reshape((self.k, *walk.out_shape))
