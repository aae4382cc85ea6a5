"""numbadask: exact, fast reductions over Dask arrays, one Numba kernel per chunk.

Each chunk is reduced by a Numba kernel chosen by where it lives: ``@numba.njit`` on
NumPy chunks, ``@numba.cuda.jit`` on CuPy chunks.  Importing numbadask imports neither
CuPy, ``numba.cuda``, ``distributed`` nor ``dask_cuda``.

>>> import dask.array as da, numbadask
>>> float(numbadask.mean(da.ones((4, 4), chunks=2)).compute())
1.0
"""

# First: Numba picks a kernel's cache locator when @numba.njit(cache=True) runs.
from numbadask.cpu import cache as numba_cache

numba_cache.install()

from numbadask.integrations.accelerate import accelerate
from numbadask.reductions.comoments import ComomentsResult, ProductMeans, comoments, corr, cov, product_means
from numbadask.reductions.weighted import average
from numbadask.reductions.custom import CustomReduction, reduction
from numbadask.reductions.extremes import max, min, nanmax, nanmin, ptp
from numbadask.reductions.groupby import groupby_reduce
from numbadask.reductions.indices import argmax, argmin, nanargmax, nanargmin
from numbadask.reductions.sums import count, mean, nanmean, nansum, sum
from numbadask.reductions.variances import MomentsResult, moments, nanstd, nanvar, std, var
from numbadask.engine.dispatch import ChunkError, GPUUnavailableError
from numbadask.main.clusters import cluster, connect
from numbadask.main.environment import numbadask_version
from numbadask.main.warm import warm

__version__ = numbadask_version()

__all__ = [
    "ChunkError",
    "ComomentsResult",
    "CustomReduction",
    "GPUUnavailableError",
    "MomentsResult",
    "ProductMeans",
    "groupby_reduce",
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
    "warm",
]
