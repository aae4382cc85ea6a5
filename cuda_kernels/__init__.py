"""Numba CUDA kernels and their host launchers (shipped as ``numbadask.cuda_kernels``).

Importing this package imports ``numba.cuda`` (never CuPy); ``numbadask`` imports it
only when a chunk is reduced on the GPU.  With ``NUMBA_ENABLE_CUDASIM=1`` the same
kernels run in Numba's simulator on NumPy arrays, which is how CPU-only CI tests them.

:data:`LAUNCHERS` gives each chunk kernel of :mod:`numbadask.engine.kernels`, by its
name, its CUDA implementation, taking ``(chunk, axes, params, xp)`` like the CPU one.

A layer beside the CPU kernels (:mod:`numbadask.cpu`): it imports them (the chunk's
walk, the min/max limits, the helpers of user-defined states) and nothing above them;
:mod:`numbadask.engine` imports it, lazily, when a chunk is reduced on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numbadask.cpu.args import arg_axis
from numbadask.cpu.layout import Walk, plan_walk

from .argminmax import argminmax
from .minmax import max_only, min_only, minmax
from .moments import shifted_moments, shifted_moments_minmax
from .sum import nansum_float64, sum_float64, sum_int64


#: ``implementation(chunk, axes, params, xp) -> outputs``, as the CPU kernels'.
Implementation = Callable[[Any, tuple[int, ...], tuple, Any], Any]


def _on_walk(kernel: Callable[[Walk, Any], Any]) -> Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        return kernel(plan_walk(x, axes, xp), xp)

    return run


def _arg(want_max: bool) -> Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
        return argminmax(x, arg_axis(axes), want_max, xp)

    return run


#: CUDA implementations by chunk kernel name (``ChunkKernel.name``).
LAUNCHERS: dict[str, Implementation] = {
    "sum_float64": _on_walk(sum_float64),
    "nansum_float64": _on_walk(nansum_float64),
    "sum_int64": _on_walk(sum_int64),
    # min and max alone keep one running value and the count, as on the CPU.
    "min_only": _on_walk(min_only),
    "max_only": _on_walk(max_only),
    "minmax": _on_walk(minmax),
    "shifted_moments": _on_walk(shifted_moments),
    "shifted_moments_minmax": _on_walk(shifted_moments_minmax),
    "argmin": _arg(want_max=False),
    "argmax": _arg(want_max=True),
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
