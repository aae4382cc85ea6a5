"""Numba CUDA kernels and their host launchers (shipped as ``numbadask.cuda_kernels``).

Importing this package imports ``numba.cuda`` (never CuPy); ``numbadask`` imports it
only when a chunk is reduced on the GPU.  With ``NUMBA_ENABLE_CUDASIM=1`` the same
kernels run in Numba's simulator on NumPy arrays, which is how CPU-only CI tests them.

:data:`LAUNCHERS` gives each chunk kernel of :mod:`numbadask.kernels` its CUDA
implementation, taking ``(chunk, axes, params, xp)`` like the CPU one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numbadask import kernels
from numbadask.layout import Walk, plan_walk

from .argminmax import argminmax
from .minmax import max_only, min_only, minmax
from .moments import shifted_moments, shifted_moments_minmax
from .sum import nansum_float64, sum_float64, sum_int64


def _on_walk(kernel: Callable[[Walk, Any], Any]) -> kernels.Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        return kernel(plan_walk(x, axes, xp), xp)

    return run


def _arg(want_max: bool) -> kernels.Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        return argminmax(x, kernels.arg_axis(axes), want_max, xp)

    return run


LAUNCHERS: dict[kernels.ChunkKernel, kernels.Implementation] = {
    kernels.SUM_FLOAT64: _on_walk(sum_float64),
    kernels.NANSUM_FLOAT64: _on_walk(nansum_float64),
    kernels.SUM_INT64: _on_walk(sum_int64),
    # min and max alone keep one running value and the count, as on the CPU.
    kernels.MIN: _on_walk(min_only),
    kernels.MAX: _on_walk(max_only),
    kernels.MINMAX: _on_walk(minmax),
    kernels.MOMENTS: _on_walk(shifted_moments),
    kernels.MOMENTS_MINMAX: _on_walk(shifted_moments_minmax),
    kernels.ARGMIN: _arg(want_max=False),
    kernels.ARGMAX: _arg(want_max=True),
}

__all__ = [
    "LAUNCHERS",
    "argminmax",
    "max_only",
    "min_only",
    "minmax",
    "nansum_float64",
    "shifted_moments",
    "shifted_moments_minmax",
    "sum_float64",
    "sum_int64",
]
