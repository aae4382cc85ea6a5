"""The CPU kernels, one per partial state, by the names the CUDA kernels share.

Each walks a chunk's memory through the one walk of :mod:`numbadask.walker` with a
plug-in of its own module: sums (:mod:`numbadask.cpu_sums`), min and max
(:mod:`numbadask.cpu_extremes`), shifted moments (:mod:`numbadask.cpu_moments`); the
arg kernels read rows (:mod:`numbadask.cpu_args`).  Rules they all follow (measured;
see DESIGN.md): ``nogil=True``, no ``parallel=True``, no full ``fastmath``, float input
accumulated in float64 and integers in int64, never a copy of the chunk.
"""

from .cpu_args import argminmax, rows_view
from .cpu_extremes import max_only, min_only, minmax, minmax_dtype, minmax_empty, minmax_limits
from .cpu_moments import shifted_moments, shifted_moments_minmax
from .cpu_sums import nansum_float64, sum_float64, sum_int64
from .walker import walk_buffer

__all__ = [
    "argminmax",
    "max_only",
    "min_only",
    "minmax",
    "minmax_dtype",
    "minmax_empty",
    "minmax_limits",
    "nansum_float64",
    "rows_view",
    "shifted_moments",
    "shifted_moments_minmax",
    "sum_float64",
    "sum_int64",
    "walk_buffer",
]
