"""numbadask: exact, fast reductions over Dask arrays, one Numba kernel per chunk.

Each chunk is reduced by a Numba kernel chosen by where it lives: ``@numba.njit`` on
NumPy chunks, ``@numba.cuda.jit`` on CuPy chunks.  Importing numbadask imports neither
CuPy, ``numba.cuda``, ``distributed`` nor ``dask_cuda``.

>>> import dask.array as da, numbadask
>>> float(numbadask.mean(da.ones((4, 4), chunks=2)).compute())
1.0
"""

# First: Numba picks a kernel's cache locator when @numba.njit(cache=True) runs.
from . import numba_cache

numba_cache.install()

from importlib.metadata import PackageNotFoundError, version

from .accelerate import accelerate
from .bivariate import ComomentsResult, ProductMeans, average, comoments, corr, cov, product_means
from .custom import CustomReduction, reduction
from .extremes import max, min, nanmax, nanmin, ptp
from .indices import argmax, argmin, nanargmax, nanargmin
from .sums import count, mean, nanmean, nansum, sum
from .variances import MomentsResult, moments, nanstd, nanvar, std, var
from .clusters import cluster, connect
from .dispatch import ChunkError, GPUUnavailableError

try:
    __version__ = version("numbadask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ChunkError",
    "ComomentsResult",
    "CustomReduction",
    "GPUUnavailableError",
    "MomentsResult",
    "ProductMeans",
    "__version__",
    "accelerate",
    "argmax",
    "argmin",
    "average",
    "cluster",
    "comoments",
    "connect",
    "corr",
    "count",
    "cov",
    "max",
    "mean",
    "min",
    "moments",
    "nanargmax",
    "nanargmin",
    "nanmax",
    "nanmean",
    "nanmin",
    "nanstd",
    "nansum",
    "nanvar",
    "product_means",
    "ptp",
    "reduction",
    "std",
    "sum",
    "var",
]
