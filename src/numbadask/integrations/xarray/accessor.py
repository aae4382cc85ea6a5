"""The reduction methods the DataArray and Dataset accessors share (:class:`Accessor`):
xarray's ``reduce`` with numbadask's function in NumPy's place, so dimensions,
coordinates and attributes come out as from xarray's own methods.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import xarray as xr

from numbadask.reductions.custom import CustomReduction
from numbadask.integrations.xarray.docs import DDOF, DIM, EXAMPLE_ARRAY, SKIPNA, method_doc
from numbadask.integrations.xarray.reducers import compute_together, custom_reducer, is_dask, reducer, refuse_query_planning
from numbadask.integrations.xarray.weighted import NdWeighted


class Accessor:
    """What the DataArray and Dataset accessors share: the reduction methods."""

    _obj: Any

    def __init__(self, obj: Any) -> None:
        refuse_query_planning(obj)
        self._obj = obj

    # --- the plumbing -----------------------------------------------------------------

    def _eager_names(self) -> set[Hashable]:
        """The data variables that are not Dask-backed (their results are computed)."""
        raise NotImplementedError

    def _xarray_reduce(self, func: Callable[..., Any], dim: Any, keep_attrs: bool | None, keepdims: bool, numeric_only: bool, kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _apply(
        self, func: Callable[..., Any], dim: Any, keep_attrs: bool | None, keepdims: bool, numeric_only: bool, **kwargs: Any
    ) -> Any:
        eager = self._eager_names()
        return self._materialize(self._xarray_reduce(func, dim, keep_attrs, keepdims, numeric_only, kwargs), eager)

    def _materialize(self, result: Any, eager: set[Hashable]) -> Any:
        """NumPy in, NumPy out: compute, in one ``dask.compute``, the lazy results of the
        variables that were not Dask-backed."""
        if isinstance(result, xr.DataArray):
            if eager and is_dask(result.variable.data):
                (value,) = compute_together([result.variable.data])
                return result.copy(data=value)
            return result
        names = [n for n, v in result.data_vars.items() if n in eager and is_dask(v.variable.data)]
        if not names:
            return result
        values = compute_together([result[n].variable.data for n in names])
        return result.assign({n: result[n].variable.copy(data=v) for n, v in zip(names, values)})

    def _method(self, name: str, dim: Any, skipna: Any, keep_attrs: Any, keepdims: bool, split_every: Any, device: str, numeric_only: bool, **kwargs: Any) -> Any:
        return self._apply(reducer(name), dim, keep_attrs, keepdims, numeric_only, skipna=skipna, split_every=split_every, device=device, **kwargs)

    def weighted(self, weights: Any) -> NdWeighted:
        """Weighted ``mean`` and ``sum`` like xarray's ``weighted``: ``obj.nd.weighted(w).mean("time")``.

        See :class:`NdWeighted`.

        Examples
        --------
        >>> import xarray as xr, numbadask.xarray
        >>> ds = xr.Dataset({"t": ("time", [1.0, 2.0, 4.0])})
        >>> float(ds.nd.weighted(xr.DataArray([1.0, 1.0, 2.0], dims="time")).mean("time")["t"])
        2.75
        """
        return NdWeighted(self, weights)

    # --- the family -------------------------------------------------------------------

    def sum(self, dim: Any = None, *, skipna: bool | None = None, min_count: int | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("sum", dim, skipna, keep_attrs, keepdims, split_every, device, True, min_count=min_count)

    sum.__doc__ = method_doc(
        "Sum along ``dim`` (xarray's ``sum``): :func:`numbadask.sum` or :func:`numbadask.nansum`.", DIM, SKIPNA,
        """min_count : int or None, optional
        With NaN skipped, the result is NaN where fewer than ``min_count`` values are
        valid (integer results then become float64); ignored without skipping, as in
        xarray.""",
        example=EXAMPLE_ARRAY + """
    >>> a.nd.sum("x").values
    array([6., 9.])
    >>> a.nd.sum("x", min_count=3).values
    array([nan,  9.])""",
    )

    def mean(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("mean", dim, skipna, keep_attrs, keepdims, split_every, device, True)

    mean.__doc__ = method_doc(
        "Mean along ``dim`` (xarray's ``mean``): :func:`numbadask.mean` or :func:`numbadask.nanmean`.", DIM, SKIPNA,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.mean("y").values
    array([2. , 3.5, 4. ])
    >>> a.nd.mean("y", skipna=False).values
    array([2. , 3.5, nan])""",
    )

    def var(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("var", dim, skipna, keep_attrs, keepdims, split_every, device, True, ddof=ddof)

    var.__doc__ = method_doc(
        "Variance along ``dim`` (xarray's ``var``): :func:`numbadask.var` or :func:`numbadask.nanvar`.", DIM, SKIPNA, DDOF,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.var("x", ddof=1).values
    array([8., 1.])""",
    )

    def std(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("std", dim, skipna, keep_attrs, keepdims, split_every, device, True, ddof=ddof)

    std.__doc__ = method_doc(
        "Standard deviation along ``dim`` (xarray's ``std``): :func:`numbadask.std` or :func:`numbadask.nanstd`.", DIM, SKIPNA, DDOF,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.std("x").values
    array([2.        , 0.81649658])""",
    )

    def min(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("min", dim, skipna, keep_attrs, keepdims, split_every, device, False)

    min.__doc__ = method_doc(
        "Minimum along ``dim`` (xarray's ``min``): :func:`numbadask.min` or :func:`numbadask.nanmin`; the data's dtype.", DIM, SKIPNA,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.min("x").values
    array([1., 2.])""",
    )

    def max(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("max", dim, skipna, keep_attrs, keepdims, split_every, device, False)

    max.__doc__ = method_doc(
        "Maximum along ``dim`` (xarray's ``max``): :func:`numbadask.max` or :func:`numbadask.nanmax`; the data's dtype.", DIM, SKIPNA,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.max("y", skipna=False).values
    array([ 3.,  5., nan])""",
    )

    def ptp(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("ptp", dim, skipna, keep_attrs, keepdims, split_every, device, True)

    ptp.__doc__ = method_doc(
        "Range, maximum minus minimum, along ``dim``: :func:`numbadask.ptp` (xarray has no ``ptp``).\n\n"
        "    With NaN skipped it is ``nanmax - nanmin`` (two numbadask reductions of the same\n"
        "    chunks, in one compute).  On a Dataset, non-numeric variables with a reduced\n"
        "    dimension are dropped, as by ``mean``.",
        DIM,
        SKIPNA,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.ptp("x").values
    array([4., 2.])""",
    )

    def count(self, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._apply(reducer("count"), dim, keep_attrs, keepdims, False, split_every=split_every, device=device)

    count.__doc__ = method_doc(
        "Number of non-NaN values along ``dim`` (xarray's ``count``): :func:`numbadask.count`, int64.", DIM,
        example=EXAMPLE_ARRAY + """
    >>> a.nd.count("x").values
    array([2, 3])""",
    )

    # --- beyond the family ------------------------------------------------------------

    def reduce(self, r: CustomReduction, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto", **params: Any) -> Any:
        if not isinstance(r, CustomReduction):
            raise TypeError(f"reduce() takes a reduction made by numbadask.reduction, got {type(r).__name__}; for another function use xarray's own reduce()")
        return self._apply(custom_reducer(r, params), dim, keep_attrs, keepdims, True, split_every=split_every, device=device)

    reduce.__doc__ = method_doc(
        "Reduce along ``dim`` with a user-defined :func:`numbadask.reduction` (float64 results).\n\n"
        "    On a Dataset, every variable of bool, integer or float dtype is reduced; the\n"
        "    others are dropped.",
        """r : CustomReduction
        A reduction made by :func:`numbadask.reduction` (``numbadask.examples`` has six).""",
        DIM,
        """**params
        The parameters of ``r``'s ``map``, as keyword arguments.""",
        example="""    >>> import numpy as np, xarray as xr, numbadask.xarray
    >>> from numbadask.examples import count_above
    >>> a = xr.DataArray([[1.0, 5.0, 7.0], [3.0, 2.0, 4.0]], dims=("y", "x"))
    >>> a.nd.reduce(count_above, "x", threshold=3.5).values
    array([2., 1.])""",
    )
