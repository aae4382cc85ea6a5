"""``numbadask.groupby_reduce``: flox's grouped reductions on numbadask's kernels.

Same signature and results as ``flox.groupby_reduce`` (the result with the group axes
last, then the groups), for the reductions numbadask has kernels for
(:data:`FUNCS`, and any :func:`numbadask.reduction`): each chunk is read once, a
chunk's state holds only the groups in it, and the graph is one of flox's methods
(:mod:`numbadask.engine.grouped_graph`).  What it has no kernel for (``prod``,
``first``, quantiles, arg-reductions, complex or datetime data, labels that are Dask
arrays, reducing fewer axes than the labels have, ...) goes to flox's own function
when flox is installed, and raises ``NotImplementedError`` saying what when it is not.

Rules kept from flox (``flox/aggregations.py``, ``flox/xrdtypes.py``): result dtypes
(sums of integers in the platform integer, means, variances and standard deviations
of floats in the input's float dtype, of integers in float64; min and max keep the
dtype; counts in ``intp``; a ``fill_value`` promotes), NaN labels and labels outside
``expected_groups`` belong to no group, bins are closed on the right, groups with
fewer than ``min_count`` non-NaN values (and groups with no values) become
``fill_value``.  float32 data is accumulated in float64, as every numbadask reduction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from numbadask.engine import dispatch, grouped, grouped_graph
from numbadask.engine.definition import Reduction
from numbadask.reductions.custom import CustomReduction
from numbadask.reductions.registry import REGISTRY

#: The reductions ``groupby_reduce`` runs itself, by flox's names.
FUNCS = ("sum", "nansum", "mean", "nanmean", "var", "nanvar", "std", "nanstd", "min", "max", "nanmin", "nanmax", "count")

#: The result dtype rule of each (see :func:`result_dtype`).
_FLOATING = {"mean", "nanmean", "var", "nanvar", "std", "nanstd"}
_PRESERVING = {"min", "max", "nanmin", "nanmax"}

#: flox's fill for a group with no values when no ``fill_value`` is given.
_EMPTY_FILL = {"count": 0, "sum": 0, "nansum": 0}


def result_dtype(func: str, array_dtype: np.dtype, dtype: Any, fill_value: Any) -> np.dtype:
    """flox's result dtype for ``func`` of ``array_dtype`` data (bool counted as the
    platform integer), ``dtype=`` and ``fill_value``.

    Examples
    --------
    >>> [str(result_dtype(f, np.dtype("float32"), None, None)) for f in ("sum", "mean", "max", "count")]
    ['float32', 'float32', 'float32', 'int64']
    >>> [str(result_dtype(f, np.dtype("int16"), None, np.nan)) for f in ("sum", "mean", "max")]
    ['float64', 'float64', 'float64']
    """
    if array_dtype == np.bool_ and func != "count":
        array_dtype = np.dtype(np.int_)
    if dtype is not None:
        out = np.dtype(dtype)
    elif func == "count":
        out = np.dtype(np.intp)
    elif func in _FLOATING:
        out = array_dtype if array_dtype.kind == "f" else np.dtype(np.float64)
    elif func in _PRESERVING:
        out = array_dtype
    else:
        out = np.result_type(array_dtype, np.int_) if array_dtype.kind == "i" else np.result_type(array_dtype, np.uint) if array_dtype.kind == "u" else array_dtype
    if fill_value is not None:
        out = np.result_type(out, fill_value)
    return out


def _promoted(dtype: np.dtype) -> np.dtype:
    """flox's ``maybe_promote``: a dtype that holds NaN."""
    if dtype.kind == "f":
        return dtype
    if dtype.kind in "iu":
        return np.dtype(np.float32 if dtype.itemsize <= 2 else np.float64)
    return np.dtype(object)


def factorize(by: np.ndarray, expected: Any, isbin: bool) -> tuple[np.ndarray, Any]:
    """Codes ``0..G-1`` of labels ``by`` (-1: NaN, or not among ``expected``) and the
    groups, as flox gives them back: sorted unique labels, ``expected`` as a
    ``pandas.Index``, or for bins (``isbin``, ``expected`` the edges) the intervals,
    closed on the right.

    Examples
    --------
    >>> codes, groups = factorize(np.array([3.0, 1.0, np.nan, 3.0]), None, False)
    >>> codes.tolist(), groups.tolist()
    ([1, 0, -1, 1], [1.0, 3.0])
    >>> codes, groups = factorize(np.array([0.5, 1.0, 2.5, 9.0]), np.array([0, 1, 2, 3]), True)
    >>> codes.tolist(), [str(g) for g in groups]
    ([0, 0, 2, -1], ['(0, 1]', '(1, 2]', '(2, 3]'])
    """
    import pandas as pd

    if isbin:
        if isinstance(expected, pd.IntervalIndex):
            return expected.get_indexer(by.ravel()).reshape(by.shape).astype(np.int64), expected
        breaks = np.asarray(expected)
        codes = np.searchsorted(breaks, by, side="left") - 1  # (b[i], b[i + 1]] -> i; NaN sorts last
        return np.where((codes < 0) | (codes >= breaks.size - 1), -1, codes).astype(np.int64), pd.IntervalIndex.from_breaks(breaks)
    if expected is None:
        flat = pd.Index(by.ravel())
        groups = flat[~flat.isna()].unique().sort_values()
        return groups.get_indexer(flat).reshape(by.shape).astype(np.int64), np.asarray(groups)
    index = expected if isinstance(expected, pd.Index) else pd.Index(np.asarray(expected))
    return index.get_indexer(pd.Index(by.ravel())).reshape(by.shape).astype(np.int64), index


def _reduction_of(func: Any) -> Reduction | None:
    if isinstance(func, CustomReduction):
        return func.reduction
    if isinstance(func, str) and func in FUNCS:
        return REGISTRY[func]
    return None


def _handled(array: Any, bys: Sequence[Any], func: Any, axis: Any, engine: Any, reindex: Any, sort: bool, kwargs: dict) -> str | None:
    """Why numbadask leaves this call to flox (None: it takes it)."""
    import dask.array as da

    if _reduction_of(func) is None:
        return f"func={func!r} has no numbadask kernel (it runs {FUNCS} and numbadask.reduction objects)"
    if not isinstance(array, (np.ndarray, da.Array)) or (isinstance(array, np.ndarray) and type(array) is not np.ndarray):
        return f"the array is a {type(array).__module__}.{type(array).__name__}, not a NumPy or Dask array"
    if isinstance(array, da.Array) and type(array._meta) is not np.ndarray and not dispatch.is_cupy_array(array._meta):
        return "the Dask array's chunks are not NumPy or CuPy arrays"
    if np.dtype(array.dtype).kind not in "biuf":
        return f"dtype {array.dtype} is not bool, integer or float"
    if any(not isinstance(b, np.ndarray) for b in bys):
        return "the labels are not NumPy arrays (Dask labels)"
    if engine not in (None, "numbadask") or reindex is not None or not sort:
        return "engine=, reindex= or sort=False asks for flox's own machinery"
    nax = bys[0].ndim if axis is None else len(np.atleast_1d(axis))
    if nax != bys[0].ndim:
        return "it reduces fewer axes than the labels have"
    if isinstance(func, CustomReduction) and kwargs.get("dtype") is not None:
        return "dtype= with a user-defined reduction"
    return None


def leaves_to_flox(array: Any, by: Sequence[Any], kwargs: dict) -> str | None:
    """Why :func:`groupby_reduce` would hand ``groupby_reduce(array, *by, **kwargs)`` to
    flox (None: numbadask computes it), as ``numbadask.accelerate()`` asks.

    Examples
    --------
    >>> import dask.array as da
    >>> leaves_to_flox(da.ones(4, chunks=2), [np.arange(4)], {"func": "mean"}) is None
    True
    >>> leaves_to_flox(da.ones(4, chunks=2), [np.arange(4)], {"func": "median"})[:20]
    "func='median' has no"
    """
    if not by or not hasattr(array, "dtype"):
        return "no labels, or no array"
    bys = _labels(array, by)
    get = kwargs.get
    return _handled(array, bys, get("func"), get("axis"), get("engine"), get("reindex"), get("sort", True), {"dtype": get("dtype")})


def groupby_reduce(
    array: Any,
    *by: Any,
    func: Any,
    expected_groups: Any = None,
    sort: bool = True,
    isbin: Any = False,
    axis: Any = None,
    fill_value: Any = None,
    dtype: Any = None,
    min_count: int | None = None,
    method: str | None = None,
    engine: str | None = None,
    reindex: Any = None,
    finalize_kwargs: dict | None = None,
    split_every: int | None = None,
    device: str = "auto",
) -> tuple[Any, ...]:
    """Reduce ``array`` per group of the labels ``by``, as ``flox.groupby_reduce``.

    Parameters
    ----------
    array : numpy.ndarray or dask.array.Array
        The data; the labels ``by`` cover its trailing axes.
    *by : numpy.ndarray
        Labels, each of the shape of ``array``'s trailing axes (several: one group
        axis each).  NaN labels belong to no group.
    func : str or numbadask.reduction
        One of :data:`FUNCS` or a user-defined reduction.
    expected_groups, isbin, axis, fill_value, dtype, min_count, sort, engine, reindex
        As in flox; ``isbin=True`` takes bin edges in ``expected_groups``.
    method : {"map-reduce", "cohorts", "blockwise", None}
        How chunks merge (:mod:`numbadask.engine.grouped_graph`); None chooses.
    finalize_kwargs : dict, optional
        ``{"ddof": n}`` for var and std.
    split_every : int, optional
        States merged per task (default 8).
    device : {"auto", "cpu", "gpu"}
        Where chunks are reduced, as for every numbadask reduction.

    Returns
    -------
    result, *groups
        A lazy Dask array (a NumPy array for NumPy input) of shape
        ``array.shape[:-by.ndim] + (number of groups, ...)``, and the groups.

    Examples
    --------
    >>> import dask.array as da, numbadask
    >>> x = da.from_array(np.arange(12.0).reshape(2, 6), chunks=(1, 4))
    >>> labels = np.array([0, 0, 1, 1, 0, 2])
    >>> result, groups = numbadask.groupby_reduce(x, labels, func="mean")
    >>> result
    dask.array<numbadask-groupby-mean, shape=(2, 3), dtype=float64, chunksize=(1, 3), chunktype=numpy.ndarray>
    >>> result.compute().round(3).tolist(), groups.tolist()
    ([[1.667, 2.5, 5.0], [7.667, 8.5, 11.0]], [0, 1, 2])
    """
    if not by:
        raise TypeError("groupby_reduce needs labels: groupby_reduce(array, by, func=...)")
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    bys = _labels(array, by)
    why = _handled(array, bys, func, axis, engine, reindex, sort, {"dtype": dtype})
    if why is not None:
        return _flox(why)(array, *by, func=func, expected_groups=expected_groups, sort=sort, isbin=isbin, axis=axis, fill_value=fill_value,
                          dtype=dtype, min_count=min_count, method=method, engine=engine, reindex=reindex, finalize_kwargs=finalize_kwargs)  # fmt: skip
    return _grouped(array, bys, func, expected_groups, isbin, fill_value, dtype, min_count, method, finalize_kwargs or {}, split_every or 8, device)


def _labels(array: Any, by: Sequence[Any]) -> tuple[Any, ...]:
    """The label arrays as NumPy arrays (Dask ones left as they are), size-1 axes
    broadcast against the array's trailing axes, as flox does (flox.xarray passes a
    label of shape (1, n) for an (m, n) array grouped over both axes).

    Examples
    --------
    >>> [b.shape for b in _labels(np.zeros((3, 4)), [np.arange(4)[None, :]])]
    [(3, 4)]
    """
    out = []
    for b in by:
        if hasattr(b, "dask"):
            out.append(b)
            continue
        b = np.asarray(b)
        trailing = tuple(array.shape[array.ndim - b.ndim :]) if b.ndim <= array.ndim else None
        if trailing is not None and b.shape != trailing and all(n in (1, m) for n, m in zip(b.shape, trailing)):
            b = np.broadcast_to(b, trailing)
        out.append(b)
    return tuple(out)


def _flox(why: str) -> Any:
    try:
        from flox.core import groupby_reduce as flox_groupby_reduce
    except ImportError:
        raise NotImplementedError(f"numbadask.groupby_reduce does not run this call ({why}) and flox, which would, is not installed: pip install flox") from None
    return flox_groupby_reduce


def _by_shape(array: Any, bys: tuple[np.ndarray, ...]) -> tuple[int, ...]:
    shape = bys[0].shape
    if any(b.shape != shape for b in bys) or tuple(array.shape[array.ndim - len(shape) :]) != shape or len(shape) > array.ndim:
        raise ValueError(f"the labels' shape {[b.shape for b in bys]} must be the shape of the array's trailing axes (array shape {array.shape})")
    return shape


def _grouped(array: Any, bys: tuple, func: Any, expected: Any, isbin: Any, fill_value: Any, dtype: Any, min_count: int | None,
             method: str | None, finalize_kwargs: dict, split_every: int, device: str) -> tuple[Any, ...]:  # fmt: skip
    import dask.array as da
    from dask.base import tokenize

    _by_shape(array, bys)
    expected_all = expected if isinstance(expected, tuple) else (expected,) * len(bys) if len(bys) > 1 and expected is None else (expected,)
    if len(expected_all) != len(bys):
        raise ValueError(f"expected_groups must give one entry per label array: {len(bys)} labels, {len(expected_all)} entries")
    isbins = isbin if isinstance(isbin, Sequence) else (isbin,) * len(bys)
    factorized = [factorize(b, e, bool(i)) for b, e, i in zip(bys, expected_all, isbins)]
    sizes = tuple(len(g) for _, g in factorized)
    codes = _combined_codes([c for c, _ in factorized], sizes)
    ngroups = int(np.prod(sizes))
    name = func.name if isinstance(func, CustomReduction) else func
    provided = expected is not None
    min_count_ = (1 if fill_value is not None and provided else 0) if min_count is None else int(min_count)
    if min_count_ > 0 and name in ("nansum",) and fill_value is None:
        fill_value = np.nan
    r = _reduction_of(func)
    x = array if isinstance(array, da.Array) else da.from_array(array, chunks=array.shape)
    out_dtype = result_dtype(name, np.dtype(array.dtype), dtype, fill_value) if not isinstance(func, CustomReduction) else np.dtype(np.float64)
    # A group with no values: fill_value, else flox's identity (count, sum) or NaN.
    empty_fill = fill_value if fill_value is not None else _EMPTY_FILL.get(name, np.nan)
    if isinstance(empty_fill, float) and np.isnan(empty_fill) and _has_empty(codes, ngroups):
        out_dtype = _promoted(out_dtype)
    reductions = (r,) + ((REGISTRY["count"],) if min_count_ > 0 else ())
    finalizers = tuple(q.finisher(np.dtype(array.dtype), finalize_kwargs.get("ddof", 0)) for q in reductions)
    params = func.bind({}) if isinstance(func, CustomReduction) else ()
    chunk = partial(grouped.grouped_chunk, reductions=reductions, grouped_axes=codes.ndim, device=device, params=params)
    merge = partial(grouped.merge, reductions=reductions)
    on_gpu = dispatch.is_cupy_array(getattr(x, "_meta", None))
    finish = partial(grouped.finish, finalizers=finalizers, result_dtype=out_dtype, empty_fill=empty_fill, fill_value=fill_value, min_count=min_count_, on_gpu=on_gpu)
    meta = (x._meta if on_gpu else np.empty((0,) * (x.ndim - codes.ndim + 1), dtype=out_dtype)).astype(out_dtype)
    token = tokenize(x, codes, ngroups, name, r.name, out_dtype, empty_fill, fill_value, min_count_, finalize_kwargs, method, split_every, device, params)
    result = grouped_graph.grouped_reduction(
        x, codes, ngroups, name=f"numbadask-groupby-{name}", token=token, chunk=chunk, merge=merge, finish=finish, method=method, split_every=split_every,
        meta=meta, group_shape=sizes if len(sizes) > 1 else None,
    )  # fmt: skip
    if not isinstance(array, da.Array):
        result = result.compute(scheduler="sync")
    return (result, *(g for _, g in factorized))


def _combined_codes(codes: list[np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
    """One code per combination of labels (C order over the label arrays), -1 where any is."""
    combined = codes[0].copy()
    for c, n in zip(codes[1:], sizes[1:]):
        combined = np.where((combined < 0) | (c < 0), -1, combined * n + c)
    return combined


def _has_empty(codes: np.ndarray, ngroups: int) -> bool:
    """Whether some group holds no labels (its result is the fill value)."""
    return bool(np.bincount(codes[codes >= 0].ravel(), minlength=ngroups).min(initial=1) == 0) if ngroups else False
