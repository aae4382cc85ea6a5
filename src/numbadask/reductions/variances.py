"""The variance family: var, std, nanvar, nanstd, and moments.

One partial state (:class:`~numbadask.reductions.states.Moments`): the count of non-NaN values,
a shift K taken from the data, and the sums of x - K and (x - K)**2 (``moments`` also
min and max), merged through exact shift differences.  Every result, of the four
functions and of each field of :func:`moments`, is finished here from that state by
:func:`field_value`, so they share their NaN rules.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from numbadask.engine import dispatch, graph, kernels
from numbadask.engine.calls import reduce, result_meta
from numbadask.engine.checks import Axis, SplitEvery, check_ddof, kernel_input, normalize_axes, result_dtype_of
from numbadask.engine.definition import Reduction, Where, drop_axes, keep_state
from numbadask.reductions.call import HANDOFF, cast_first, reduce_call
from numbadask.reductions.states import Moments, merge_moments
from numbadask.reductions.sums import SUM

if TYPE_CHECKING:
    import dask.array as da


def _moments(out: Any, x: Any, axes: tuple[int, ...], where: Where) -> Moments:
    count, shift, s1, s2, *minmax = out
    lo, hi = minmax if minmax else (None, None)
    return Moments(count, shift, s1, s2, lo, hi, math.prod(x.shape[a] for a in axes))


def variance(state: Moments, ddof: float, skipna: bool) -> Any:
    """Variance from merged shifted moments: (s2 - s1**2/n) / max(n - ddof, 0), with
    NumPy's NaN rules: NaN where a slice held NaN (unless skipping it), and, skipping
    NaN, where n - ddof <= 0.  An empty slice has m2 = 0, as in NumPy, so a negative
    ``ddof`` gives 0 there."""
    xp = dispatch.array_module(state.s1)
    n = state.count
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = xp.where(n > 0, xp.maximum(state.s2 - state.s1 * state.s1 / n, 0.0), 0.0)
        var = m2 / xp.maximum(n - ddof, 0)
    if skipna:  # np.nanvar: NaN where n - ddof <= 0 (np.var divides by 0: inf or NaN)
        return xp.where(n - ddof <= 0, np.nan, var)
    return xp.where(n < state.seen, np.nan, var)


def field_value(state: Moments, field: str, ddof: float, skipna: bool) -> Any:
    """One of :data:`FIELDS` from a merged state: a slice with no values (or, not
    skipping NaN, holding one) gives NaN, its count 0 and its sum 0 (NaN if it held
    NaN); no warnings."""
    xp = dispatch.array_module(state.s1)
    n = state.count
    bad = (n == 0) if skipna else (n < state.seen) | (n == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if field == "count":
            return n
        if field == "sum":
            total = xp.where(n > 0, state.shift * n + state.s1, 0.0)
            return total if skipna else xp.where(n < state.seen, np.nan, total)
        if field == "mean":
            return xp.where(bad, np.nan, state.shift + state.s1 / n)
        if field in ("var", "std"):
            var = variance(state, ddof, skipna)
            return xp.sqrt(var) if field == "std" else var
    value = state.lo if field == "min" else state.hi
    return xp.where(bad, np.nan, value) if value.dtype.kind == "f" else value


def _var_finalize(state: Moments, result_dtype: np.dtype, *, field: str, ddof: float, skipna: bool) -> Any:
    dof = state.count - ddof if skipna else state.seen - ddof
    too_few = dof <= 0
    if bool(too_few.any() if hasattr(too_few, "any") else too_few):
        # NumPy 2's words: np.nanvar ends its sentence, np.var does not.
        Reduction.numpy_warning("Degrees of freedom <= 0 for slice" + ("." if skipna else ""))
    return field_value(state, field, ddof, skipna).astype(result_dtype)


def _var_in_integers(
    r: Reduction, x: da.Array, axes: tuple[int, ...], dtype: np.dtype, keepdims: bool, split_every: SplitEvery, device: str, ddof: float
) -> da.Array:
    """np.var and np.std with an integer or bool ``dtype=``, as NumPy computes them
    (``numpy/_core/_methods.py``): the mean is the sum in that dtype (elements cast
    first) divided by the count and cast back; the squared deviations are cast to it
    and summed in it; the sum divided by ``max(n - ddof, 0)`` and cast back (std: its
    square root, cast back).  Two reads of the data, as NumPy's two passes."""
    count = math.prod(x.shape[a] for a in axes)
    if math.isnan(count):
        raise ValueError(f"{r.name} with an integer dtype= needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    if count - ddof <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=4)
    with np.errstate(all="ignore"):
        total = reduce(SUM, cast_first(x, dtype, SUM), axes, dtype, True, split_every, device)
        mean = (total / count).astype(dtype)
        deviation = x - mean
        squares = deviation * deviation if deviation.dtype.kind != "b" else deviation
        ret = reduce(SUM, cast_first(squares, dtype, SUM), axes, dtype, keepdims, split_every, device)
        ret = (ret / max(count - ddof, 0)).astype(dtype)
        if r.finalize.keywords.get("field") == "std":
            ret = ret.map_blocks(np.sqrt, dtype=np.float64).astype(dtype)
    return ret


def _family(name: str, numpy: Any, field: str, **rules: Any) -> Reduction:
    return Reduction(
        name=name,
        kernel=lambda dtype: kernels.MOMENTS,
        state=_moments,
        merge=merge_moments,
        finalize=functools.partial(_var_finalize, field=field),
        numpy=numpy,
        integer_dtype="two-pass",
        in_integers=_var_in_integers,
        options=("ddof", "skipna"),
        **rules,
    )


VAR = _family("var", np.var, "var")
STD = _family("std", np.std, "std")
NANVAR = _family("nanvar", np.nanvar, "var", skipna=True, nan_twin="var")
NANSTD = _family("nanstd", np.nanstd, "std", skipna=True, nan_twin="std")
#: The state of :func:`moments`, kept as it is: its fields are finished one by one.
MOMENTS = Reduction(
    name="moments",
    kernel=lambda dtype: kernels.MOMENTS_MINMAX,
    state=_moments,
    merge=merge_moments,
    finalize=keep_state,
    integer_dtype=None,
)

REDUCTIONS = (VAR, STD, NANVAR, NANSTD)

_DOC = """{summary}

    Each chunk keeps shifted moments (the count, a shift K taken from the data, and the
    sums of x - K and (x - K)**2) in float64, merged through exact shift differences:
    stable on data with a large offset (1e9 + U(0, 1)) where a plain sum of squares
    loses every digit.  {nan_rule}  ``ddof`` is any finite real number, as in NumPy
    (the divisor is ``n - ddof``); where ``n - ddof <= 0`` the result is NaN (or inf)
    with NumPy's warning ``Degrees of freedom <= 0 for slice``.  Other parameters as
    in :func:`sum`.  A hand-written kernel, not the generic :func:`numbadask.reduction`
    path: the shift is taken from each chunk's data and states merge through exact
    shift differences.  An integer or bool ``dtype=`` is computed as NumPy does, in
    two passes in that dtype (:func:`_var_in_integers`).

    {handoff}

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> x = 1e9 + np.array([[1.0, 2.0, 3.0, 4.0], [2.0, np.nan, 2.0, 2.0]])
    >>> numbadask.{name}(x, axis=1{ddof_example}).compute()
    array({example})
    """


def _function(r: Reduction, summary: str, nan_rule: str, example: str) -> Any:
    def reduce(
        a: Any,
        axis: Axis = None,
        dtype: Any = None,
        keepdims: bool = False,
        ddof: float = 0,
        split_every: SplitEvery = None,
        out: Any = None,
        device: str = "auto",
    ) -> da.Array:
        return reduce_call(r, a, axis, dtype, keepdims, split_every, device, ddof, out=out)

    reduce.__name__ = reduce.__qualname__ = r.name
    ddof_example = ", ddof=1" if r.finalize.keywords["field"] == "std" else ""
    reduce.__doc__ = _DOC.format(handoff=HANDOFF, summary=summary, nan_rule=nan_rule, name=r.name, example=example, ddof_example=ddof_example)
    return reduce


var = _function(VAR, "Variance along the given axes (:func:`numpy.var`).", "NaN propagates.", "[1.25,  nan]")
std = _function(STD, "Standard deviation along the given axes (:func:`numpy.std`).", "NaN propagates.", "[1.29099445,        nan]")
nanvar = _function(NANVAR, "Variance ignoring NaN (:func:`numpy.nanvar`).", "NaN are skipped.", "[1.25, 0.  ]")
nanstd = _function(NANSTD, "Standard deviation ignoring NaN (:func:`numpy.nanstd`).", "NaN are skipped.", "[1.29099445, 0.        ]")


def _moments_by_dask(a: Any, axis: Axis, ddof: float, skipna: bool, keepdims: bool, split_every: SplitEvery) -> MomentsResult:
    """:func:`moments` of input the kernels do not reduce, from dask.array's functions."""
    import dask.array as da

    from numbadask.engine.handoff import dask_function

    x = da.asanyarray(a)
    nan = "nan" if skipna else ""
    kw = {"axis": axis, "keepdims": keepdims, "split_every": split_every}
    fields = {
        "count": dask_function("sum")(x == x, dtype=np.int64, **kw),
        "sum": dask_function(nan + "sum")(x, **kw),
        "mean": dask_function(nan + "mean")(x, **kw),
        "var": dask_function(nan + "var")(x, ddof=ddof, **kw),
        "std": dask_function(nan + "std")(x, ddof=ddof, **kw),
        "min": dask_function(nan + "min")(x, **kw),
        "max": dask_function(nan + "max")(x, **kw),
    }
    return MomentsResult(**fields)


class MomentsResult(NamedTuple):
    """The lazy results of :func:`moments`; they share one graph."""

    count: Any
    sum: Any
    mean: Any
    var: Any
    std: Any
    min: Any
    max: Any


#: The fields of :func:`moments`, in order.
FIELDS: tuple[str, ...] = MomentsResult._fields


def _finish_field(block: Any, field: str, ddof: float, skipna: bool, result_dtype: np.dtype, axes: tuple[int, ...], keepdims: bool) -> Any:
    return drop_axes(field_value(block.state, field, ddof, skipna).astype(result_dtype), axes, keepdims)


def moments(
    a: Any, axis: Axis = None, ddof: float = 0, skipna: bool = False, keepdims: bool = False, split_every: SplitEvery = None, device: str = "auto"
) -> MomentsResult:
    """count, sum, mean, var, std, min and max in one read of the data.

    One fused, hand-written kernel per chunk (for the reasons given in :func:`var` and
    :func:`min`) keeps the count, shifted moments (as :func:`var`) and the min and max;
    the states merge through exact shift differences (numerically stable, like Chan et
    al.'s pairwise update but exact in the shift).  The seven results are lazy Dask
    arrays of one graph: computing any or all of them (``dask.compute(*m)``) reads the
    data once.

    Parameters
    ----------
    a, axis, keepdims, split_every, device
        As in :func:`sum`.
    ddof : int or float, optional
        Delta degrees of freedom of ``var`` and ``std`` (any finite real, as in NumPy).
    skipna : bool, optional
        Skip NaN (the nan-functions' semantics) instead of propagating it.

    Returns
    -------
    MomentsResult
        ``count`` (int64: non-NaN values), ``sum``, ``mean``, ``var``, ``std`` (float64,
        or float32/float16 for such input), ``min``, ``max`` (the input's dtype).  Slices
        with no values give NaN (sum 0, count 0) without warnings; ``sum`` of integer
        input is float64 here (use :func:`sum` for exact integer sums).

    Input numbadask has no kernel for (see :func:`sum`) is answered field by field by
    dask.array's functions (``nansum``, ``nanmean``, ... with ``skipna``): several
    reads of the data, and dask.array's dtypes.

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> m = numbadask.moments(np.array([1.0, 2.0, 4.0, np.nan]), skipna=True)
    >>> [round(float(v), 12) for v in dask.compute(m.count, m.mean, m.var, m.min, m.max)]
    [3.0, 2.333333333333, 1.555555555556, 1.0, 4.0]
    """
    x, a = kernel_input(a)
    if x is None:
        return _moments_by_dask(a, axis, ddof, skipna, keepdims, split_every)
    axes = normalize_axes(axis, x.ndim)
    ddof = check_ddof(ddof)
    dispatch.check_device(device)
    state = reduce(MOMENTS, x, axes, None, True, split_every, device, meta=np.empty((0,) * x.ndim, dtype=object))
    mean_dtype = result_dtype_of(np.mean, x.dtype, None)
    dtypes = {
        "count": np.dtype(np.int64),
        "sum": mean_dtype if x.dtype.kind == "f" else np.dtype(np.float64),
        "mean": mean_dtype,
        "var": mean_dtype,
        "std": mean_dtype,
        "min": x.dtype,
        "max": x.dtype,
    }
    skip = bool(skipna) and x.dtype.kind == "f"  # as NumPy's nan-functions of ints
    out_ndim = x.ndim if keepdims else x.ndim - len(axes)
    fields = {}
    for field, dtype in dtypes.items():
        finish = functools.partial(_finish_field, field=field, ddof=ddof, skipna=skip, result_dtype=dtype, axes=axes, keepdims=bool(keepdims))
        meta = result_meta(x, out_ndim, dtype, device)
        fields[field] = graph.finish_blocks(state, f"moments-numbadask-{field}", finish, axes, bool(keepdims), meta)
    return MomentsResult(**fields)
