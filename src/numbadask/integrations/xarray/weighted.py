"""``obj.nd.weighted(w)``: xarray's weighted ``mean`` and ``sum``, each one read of the
data and the weights (:class:`NdWeighted`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

from numbadask.integrations.xarray.reducers import KERNEL_KINDS, is_dask, numpy_in_numpy_out


def _weight_check(w: Any) -> Any:
    if np.isnan(w).any():
        raise ValueError("`weights` cannot contain missing values. Missing values can be replaced by `weights.fillna(0)`.")
    return w


def _weighted_array(arr: Any, weights: Any, dim: Any, skipna: bool | None, keep_attrs: bool | None, field: str, split_every: Any) -> Any:
    """``arr.weighted(weights).<field>(dim)`` of one DataArray by numbadask's kernel: sum
    of w * a and of w (over the non-NaN a) in one read; xarray's own for what it does not
    reduce (non-numeric dtypes, a variable without the reduced dimensions, and integer
    weighted sums of integers, which xarray keeps exact in int64)."""
    from numbadask.reductions import pairs, weighted

    every = dim is None or dim is ...
    dims = list(dict.fromkeys((*arr.dims, *weights.dims))) if every else [dim] if isinstance(dim, str) or not isinstance(dim, Iterable) else list(dim)
    missing = [d for d in dims if d not in arr.dims and d not in weights.dims]
    integer_sum = field == "sum" and arr.dtype.kind in "biu" and weights.dtype.kind in "biu"
    if missing or integer_sum or arr.dtype.kind not in KERNEL_KINDS or weights.dtype.kind not in KERNEL_KINDS or not any(d in arr.dims for d in dims):
        return getattr(arr.weighted(weights), field)(dim=dim, skipna=skipna, keep_attrs=keep_attrs)
    skip = bool(skipna) if skipna is not None else arr.dtype.kind == "f"
    a, w = xr.align(arr, weights, join="inner", copy=False)
    if is_dask(a.variable.data):  # the weights cut as the data: broadcast per block, no rechunk
        w = w.chunk({d: a.chunksizes[d] for d in w.dims if d in a.dims})
    a, w = xr.broadcast(a, w)
    dtype = np.result_type(arr.dtype, weights.dtype)
    if field == "mean" or dtype.kind != "f":
        dtype = np.result_type(dtype, np.float64) if dtype.kind != "f" else dtype

    @numpy_in_numpy_out
    def apply(x: Any, y: Any) -> Any:
        x, y, shape = pairs.aligned_inputs(x, y, f"weighted {field}", ("data", "weights"))
        axes = tuple(range(len(shape) - len(dims), len(shape)))
        state = weighted.weighted_sums(x, y, shape, axes, skip, split_every)
        return weighted.weighted_field(state, x, field, dtype, axes, False, "nan")

    keep = xr.get_options()["keep_attrs"] if keep_attrs is None else keep_attrs
    out = xr.apply_ufunc(apply, a, w, input_core_dims=[dims, dims], dask="allowed", keep_attrs="override" if keep is True else False)
    out.name = arr.name
    return out


class NdWeighted:
    """``obj.nd.weighted(weights)``: weighted ``mean`` and ``sum`` like xarray's
    ``obj.weighted(weights)``, each one read of the data and the weights.

    xarray's rules: ``weights`` a DataArray without missing values (``ValueError``,
    xarray's message: for Dask-backed weights when computed); NaN in the data skipped
    for float data (``skipna=None``); the mean divides by the sum of the weights of the
    non-NaN values, NaN where that is 0; ``dim=None`` reduces every dimension;
    on a Dataset every data variable, in one graph.  Reduced in float64 by one
    ``@numba.njit`` kernel per block pair (:func:`numbadask.average`'s); integer
    weighted sums of integers and non-numeric data are handed to xarray's own.
    """

    def __init__(self, accessor: Any, weights: Any) -> None:
        if not isinstance(weights, xr.DataArray):
            raise ValueError("`weights` must be a DataArray")
        if is_dask(weights.variable.data):
            weights = weights.copy(data=weights.data.map_blocks(_weight_check, dtype=weights.dtype))
        elif weights.dtype.kind in "fc":
            _weight_check(weights.values)
        self._accessor, self._weights = accessor, weights

    def _reduce(self, field: str, dim: Any, skipna: bool | None, keep_attrs: bool | None, split_every: Any) -> Any:
        obj, weights = self._accessor._obj, self._weights
        args = (weights, dim, skipna, keep_attrs, field, split_every)
        if isinstance(obj, xr.DataArray):
            result = _weighted_array(obj, *args)
        else:
            result = obj.map(lambda v: _weighted_array(v, *args), keep_attrs=keep_attrs)
        eager = set() if is_dask(weights.variable.data) else self._accessor._eager_names()
        return self._accessor._materialize(result, eager)

    def mean(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None) -> Any:
        """Weighted mean along ``dim`` (xarray's ``weighted(w).mean``).

        Examples
        --------
        >>> import numpy as np, xarray as xr, numbadask.xarray
        >>> a = xr.DataArray([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], dims=("x", "time"))
        >>> w = xr.DataArray([1.0, 2.0, 1.0], dims="time")
        >>> a.nd.weighted(w).mean("time").values
        array([2., 5.])
        """
        return self._reduce("mean", dim, skipna, keep_attrs, split_every)

    def sum(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None) -> Any:
        """Weighted sum along ``dim`` (xarray's ``weighted(w).sum``).

        Examples
        --------
        >>> import xarray as xr, numbadask.xarray
        >>> ds = xr.Dataset({"t": ("time", [1.0, 2.0, 4.0])})
        >>> float(ds.nd.weighted(xr.DataArray([1.0, 1.0, 2.0], dims="time")).sum("time")["t"])
        11.0
        """
        return self._reduce("sum", dim, skipna, keep_attrs, split_every)
