"""The sum family: sum, nansum, mean, nanmean and count.

One partial state (:class:`~numbadask.reductions.states.SumCount`) for all five; they differ in
the kernel they pick for a dtype and in how they finish.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import kernels
from numbadask.engine.calls import reduce
from numbadask.engine.checks import Axis, SplitEvery
from numbadask.engine.definition import Reduction, Where
from numbadask.reductions.call import cast_first, reduce_call, with_parameters
from numbadask.reductions.custom import CustomReduction
from numbadask.reductions.states import SumCount, merge_sum_count

if TYPE_CHECKING:
    import dask.array as da


def _is_number(x: float) -> tuple[float]:
    # A select, not skipna's branch: branch-free folds vectorize.
    return (1.0 if x == x else 0.0,)


def _add(a: tuple[float], b: tuple[float]) -> tuple[float]:
    return (a[0] + b[0],)


#: The non-NaN count of float input: the generic path of user-defined reductions,
#: measured as fast as its former hand-written kernel (bench/NOTES.md) and exact
#: (float64 counts are exact up to 2**53 values).
NON_NAN_COUNTER = CustomReduction(_is_number, _add, (0.0,), name="count")


def _non_nan_count(on: str) -> kernels.Implementation:
    def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> tuple[Any, Any]:
        counts = NON_NAN_COUNTER.kernel.run(x, axes, on, xp)[0]
        return xp.zeros(counts.shape), counts.astype(np.int64)

    return run


NON_NAN_COUNT = kernels.ChunkKernel("non_nan_count", _non_nan_count("cpu"), kernels.zeros(np.float64, np.int64), gpu=_non_nan_count("gpu"))


def _float_sum(dtype: np.dtype) -> kernels.ChunkKernel:
    return kernels.SUM_FLOAT64


def _exact_sum(dtype: np.dtype) -> kernels.ChunkKernel:
    return kernels.SUM_FLOAT64 if dtype.kind == "f" else kernels.SUM_INT64


def _nan_sum(dtype: np.dtype) -> kernels.ChunkKernel:
    return kernels.NANSUM_FLOAT64 if dtype.kind == "f" else kernels.SUM_INT64


def _nan_mean_sum(dtype: np.dtype) -> kernels.ChunkKernel:
    return kernels.NANSUM_FLOAT64 if dtype.kind == "f" else kernels.SUM_FLOAT64


def _counter(dtype: np.dtype) -> kernels.ChunkKernel:
    return NON_NAN_COUNT if dtype.kind == "f" else kernels.SHAPE_COUNT


def _sum_count(out: Any, x: Any, axes: tuple[int, ...], where: Where) -> SumCount:
    """NaN-skipping kernels count what they kept; otherwise the count is the shape's."""
    if isinstance(out, tuple):
        return SumCount(*out)
    return SumCount(out, math.prod(x.shape[a] for a in axes))


# NumPy's words for an empty slice: np.nanmean's have no full stop; np.mean's had one
# before NumPy 2.4 ("Mean of empty slice.").
_MEAN_WORDS = "Mean of empty slice" + ("." if np.lib.NumpyVersion(np.__version__) < "2.4.0" else "")


def _mean(state: SumCount, result_dtype: np.dtype, words: str = "Mean of empty slice") -> Any:
    total, count = state
    if bool((count == 0) if isinstance(count, int) else (count == 0).any()):
        Reduction.numpy_warning(words)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return mean.astype(result_dtype)


def _total(state: SumCount, result_dtype: np.dtype) -> Any:
    # int64 totals wrap to unsigned or narrower results as NumPy's own accumulation does.
    return state.total.astype(result_dtype)


def _count(state: SumCount, result_dtype: np.dtype) -> Any:
    total, count = state
    if isinstance(count, int):
        return (total * 0 + count).astype(result_dtype)
    return count.astype(result_dtype)


def _numpy_count(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """The NumPy definition of :func:`count` (its result dtype)."""
    return np.count_nonzero(a == a, axis=None) if dtype is None else np.asarray(0, dtype=dtype)


def _sum_family(name: str, numpy: Any, kernel: Any, finalize: Any, **rules: Any) -> Reduction:
    return Reduction(name=name, kernel=kernel, state=_sum_count, merge=merge_sum_count, finalize=finalize, numpy=numpy, **rules)


def _mean_in_integers(
    r: Reduction, x: da.Array, axes: tuple[int, ...], dtype: np.dtype, keepdims: bool, split_every: SplitEvery, device: str, ddof: float = 0
) -> da.Array:
    """np.mean with an integer or bool ``dtype=``: the sum in that dtype (wrapping
    around as NumPy's does), divided by the count and cast back, as NumPy computes it."""
    count = math.prod(x.shape[a] for a in axes)
    if math.isnan(count):
        raise ValueError("mean with an integer dtype= needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    total = reduce(SUM, cast_first(x, dtype, SUM), axes, dtype, keepdims, split_every, device)
    return (total / count).astype(dtype)


SUM = _sum_family("sum", np.sum, _exact_sum, _total, exact_integers=True)
NANSUM = _sum_family("nansum", np.nansum, _nan_sum, _total, skipna=True, nan_twin="sum", exact_integers=True)
MEAN = _sum_family("mean", np.mean, _float_sum, functools.partial(_mean, words=_MEAN_WORDS), integer_dtype="divide", in_integers=_mean_in_integers)
NANMEAN = _sum_family("nanmean", np.nanmean, _nan_mean_sum, _mean, skipna=True, nan_twin="mean", integer_dtype="divide", in_integers=_mean_in_integers)
COUNT = _sum_family("count", _numpy_count, _counter, _count, integer_dtype=None)

REDUCTIONS = (SUM, MEAN, COUNT, NANSUM, NANMEAN)


def _function(r: Reduction, doc: str) -> Any:
    def reduce(
        a: Any,
        axis: Axis = None,
        dtype: Any = None,
        keepdims: bool = False,
        split_every: SplitEvery = None,
        out: Any = None,
        device: str = "auto",
    ) -> da.Array:
        return reduce_call(r, a, axis, dtype, keepdims, split_every, device, out=out)

    reduce.__name__ = reduce.__qualname__ = r.name
    reduce.__doc__ = doc
    return with_parameters(reduce)


sum = _function(
    SUM,
    """Sum along the given axes, computed by a Numba kernel per chunk.

    NumPy's semantics: bool and integer input sum exactly in int64 (uint64 for unsigned),
    wrapping as NumPy does; float input sums in float64 with compensation (NumPy sums
    float32 in float32), then is cast to the result dtype (float32 stays float32).
    NaN propagates.

    A hand-written kernel, not the generic :func:`numbadask.reduction` path (which is
    as fast on float64, bench/NOTES.md): compensated float sums and exact integer sums
    need more than that path's float64 states.  The same holds for :func:`nansum`,
    :func:`mean` and :func:`nanmean`.

    {parameters}
    Examples
    --------
    >>> import dask.array as da
    >>> import numbadask
    >>> x = da.arange(12, chunks=5).reshape(3, 4)
    >>> int(numbadask.sum(x).compute())
    66
    >>> numbadask.sum(x, axis=0).compute()
    array([12, 15, 18, 21])
    """,
)
nansum = _function(
    NANSUM,
    """Sum along the given axes treating NaN as zero (:func:`numpy.nansum`).

    An all-NaN or empty slice sums to 0.  Accumulators as in :func:`sum`.

    {parameters}
    Examples
    --------
    >>> import numpy as np, numbadask
    >>> float(numbadask.nansum(np.array([1.0, np.nan, 2.0])).compute())
    3.0
    """,
)
mean = _function(
    MEAN,
    """Arithmetic mean along the given axes, computed by a Numba kernel per chunk.

    Same signature, values, dtype and shape as :func:`dask.array.mean` (and so
    :func:`numpy.mean`), plus ``device``.  Every input dtype accumulates in float64
    (NumPy sums float32 in float32), so float32 means are as accurate as float64 ones
    before the final cast.  An empty slice gives NaN with NumPy's ``RuntimeWarning:
    Mean of empty slice`` (at compute time).

    {parameters}
    Examples
    --------
    >>> import dask.array as da, numbadask
    >>> y = da.arange(8, chunks=3).reshape(2, 4)
    >>> float(numbadask.mean(y).compute()), numbadask.mean(y, axis=0).compute()
    (3.5, array([2., 3., 4., 5.]))
    """,
)
nanmean = _function(
    NANMEAN,
    """Mean along the given axes ignoring NaN (:func:`numpy.nanmean`).

    An all-NaN or empty slice gives NaN with NumPy's ``RuntimeWarning: Mean of empty
    slice`` (at compute time).  Every input accumulates in float64.

    {parameters}
    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.nanmean(np.array([[1.0, np.nan], [2.0, 5.0]]), axis=0).compute()
    array([1.5, 5. ])
    """,
)


def count(
    a: Any, axis: Axis = None, keepdims: bool = False, split_every: SplitEvery = None, out: Any = None, device: str = "auto"
) -> da.Array:
    """Number of non-NaN values along the given axes (int64, like ``np.count_nonzero``).

    Same parameters as :func:`sum`, less ``dtype``.  dask.array has no ``count``: input
    numbadask has no kernel for (see :func:`sum`) is counted by dask.array's ``sum`` of
    ``a == a`` (NaN and NaT are not equal to themselves; masked values are not counted).  Float input is counted by the
    generic kernels of :func:`numbadask.reduction` (a float64 count per output, exact
    up to 2**53 values), measured as fast as the hand-written NaN-skipping sum it
    replaced; integer and bool input need no kernel (the count is the slice length).

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.count(np.array([[1.0, np.nan], [np.nan, np.nan]]), axis=1).compute()
    array([1, 0])
    """
    return reduce_call(COUNT, a, axis, None, keepdims, split_every, device, out=out)
