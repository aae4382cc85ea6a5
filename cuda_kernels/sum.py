"""Sums of a chunk over some axes on the GPU: the partial states of sum, mean and nan-variants.

Declared here as scalar steps and merges; the factory (:mod:`.factory`) makes the
kernels for every layout from them.  Float input accumulates in float64, integer and
bool input in int64 (exact, wrapping like NumPy); the NaN-skipping variant also counts
the values it kept.  No float atomics: the same bits on every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda, float64, int64

from numbadask.cpu.layout import Walk

from .factory import GpuReduction, reduce


@cuda.jit(device=True)
def _sum_step(s, value, j, aux):
    return (s[0] + float64(value),)


@cuda.jit(device=True)
def _nansum_step(s, value, j, aux):
    v = float64(value)
    keep = v == v
    return (s[0] + (v if keep else 0.0), s[1] + keep)


@cuda.jit(device=True)
def _isum_step(s, value, j, aux):
    return (s[0] + int64(value),)


@cuda.jit(device=True)
def _add_one(a, b):
    return (a[0] + b[0],)


@cuda.jit(device=True)
def _add_two(a, b):
    return (a[0] + b[0], a[1] + b[1])


#: The reductions, by the name of the launcher below.
REDUCTIONS = {
    "sum_float64": GpuReduction("sum_float64", (float64,), _sum_step, _add_one),
    "nansum_float64": GpuReduction("nansum_float64", (float64, int64), _nansum_step, _add_two),
    "sum_int64": GpuReduction("sum_int64", (int64,), _isum_step, _add_one),
}


def _states(name: str, walk: Walk, xp: Any) -> tuple[Any, ...]:
    reduction = REDUCTIONS[name]
    states = reduce(reduction, walk, (0,) * len(reduction.fields), xp)
    return tuple(a.reshape(walk.out_shape) for a in states)


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
    >>> from numbadask.cpu.layout import plan_walk  # doctest: +SKIP
    >>> sum_float64(plan_walk(np.ones((4, 3)), (0,)))   # doctest: +SKIP
    array([[4., 4., 4.]])
    """
    return _states("sum_float64", walk, xp)[0]


def nansum_float64(walk: Walk, xp: Any = np) -> tuple[Any, Any]:
    """Float64 sum of the non-NaN values and their int64 count; see :func:`sum_float64`."""
    return _states("nansum_float64", walk, xp)


def sum_int64(walk: Walk, xp: Any = np) -> Any:
    """Exact int64 sum (modulo 2**64) of a bool or integer chunk; see :func:`sum_float64`."""
    return _states("sum_int64", walk, xp)[0]
