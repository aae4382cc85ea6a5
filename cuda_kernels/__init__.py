"""Numba CUDA kernels and their host launchers (shipped as ``numbadask.cuda_kernels``).

Importing this package imports ``numba.cuda`` (never CuPy); ``numbadask`` imports it
only when a chunk is reduced on the GPU.  With ``NUMBA_ENABLE_CUDASIM=1`` the same
kernels run in Numba's simulator on NumPy arrays, which is how CPU-only CI tests them.

Kernels share their names with :mod:`numbadask.cpu_kernels`, so dispatch is a lookup.
"""

from .argminmax import argminmax
from .minmax import minmax
from .moments import shifted_moments, shifted_moments_minmax
from .sum import nansum_float64, sum_float64, sum_int64

# The CPU saves a third of its vector work by keeping one running value for min and
# max; the GPU kernel keeps both (not measured there: no GPU session has timed it).
min_only = max_only = minmax

__all__ = [
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
