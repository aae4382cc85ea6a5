"""What the ``.nd`` accessor gives to xarray's own ``reduce``: numbadask's function for
each method (:func:`reducer`, or xarray's own for data numbadask has no kernel for),
user-defined reductions (:func:`custom_reducer`), the seven fields of ``moments`` from
one graph (:class:`MomentsCache`), and the rules on which data goes where.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import dask
import numpy as np
from xarray.core import duck_array_ops

from numbadask.reductions import extremes, indices, sums, variances
from numbadask.reductions.custom import CustomReduction


#: Dtype kinds numbadask's kernels reduce: bool, signed and unsigned integers, floats.
KERNEL_KINDS = "biuf"


#: Warnings xarray silences while it reduces eagerly (``Variable.reduce`` and its
#: nan-functions); NumPy-backed data computed here silences them as well.
_SILENCED = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0")


def is_dask(data: Any) -> bool:
    return dask.is_dask_collection(data)


def refuse_query_planning(obj: Any) -> None:
    """Raise for data held as Dask's query-planning (expression-backed) Arrays.

    xarray cannot hold them yet: their ``__array_function__`` and ``__array__`` are
    missing, so xarray's own reductions raise and a result wrapped back into a DataArray
    becomes an object array of lazy Arrays, not numbers (xarray 2026.9, dask 2026.8).
    A clear error here is better than that."""
    variables = obj.variables.values() if hasattr(obj, "data_vars") else [obj.variable]
    for var in variables:
        if is_dask(var._data) and hasattr(var._data, "expr"):
            raise TypeError(
                "numbadask.xarray: this xarray object holds Dask query-planning Arrays "
                "(array.query-planning=True), which xarray cannot reduce or hold results "
                "of (they become object arrays). Import dask.array with "
                "DASK_ARRAY__QUERY_PLANNING=False, or call numbadask's functions on the "
                "Dask arrays themselves (e.g. numbadask.mean(obj.data, axis=0))."
            )


def numpy_in_numpy_out(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compute ``func``'s result at once when no input is a Dask array and the result is a
    query-planning Array: xarray turns such an Array into an object array of lazy
    Arrays (see :func:`refuse_query_planning`).  Legacy Dask results are left lazy
    (``Accessor._materialize`` computes them together)."""

    @functools.wraps(func)
    def wrapper(*arrays: Any, **kwargs: Any) -> Any:
        out = func(*arrays, **kwargs)
        if is_dask(out) and hasattr(out, "expr") and not any(is_dask(a) for a in arrays):
            (out,) = compute_together([out])
        return out

    return wrapper


def _kernel_data(data: Any) -> bool:
    """Whether numbadask reduces ``data``: a NumPy, CuPy or Dask array of a kernel dtype
    (anything else goes to xarray's own function)."""
    dtype = getattr(data, "dtype", None)
    if not isinstance(dtype, np.dtype) or dtype.kind not in KERNEL_KINDS:
        return False
    if isinstance(data, np.ndarray):
        return type(data) is np.ndarray  # not np.ma.MaskedArray or other subclasses
    if is_dask(data):
        return True
    return type(data).__module__.split(".")[0] == "cupy"


def _skips(data: Any, skipna: bool | None) -> bool:
    """xarray's rule: the nan-function when skipna, or when skipna is None and the data is
    float (``duck_array_ops._create_nan_agg_method``; our kinds hold no complex/object)."""
    return bool(skipna) or (skipna is None and data.dtype.kind == "f")


def _reduced_size(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _null_out(result: Any, data: Any, axis: Any, min_count: int, split_every: Any, device: str) -> Any:
    """xarray's ``nanops._maybe_null_out``: NaN where fewer than ``min_count`` values were
    valid, integer results promoted to float64 (float results keep their dtype)."""
    import dask.array as da

    dtype = result.dtype if result.dtype.kind == "f" else np.dtype(np.float64)
    result = result.astype(dtype)
    if data.dtype.kind == "f":
        valid = sums.count(data, axis=axis, split_every=split_every, device=device)
        return da.where(valid >= min_count, result, dtype.type(np.nan))
    if _reduced_size(data.shape, axis) >= min_count:  # no NaN: every value is valid
        return result
    return da.full_like(result, np.nan, dtype=dtype)


def reducer(name: str) -> Callable[..., Any]:
    """The function given to xarray's ``reduce`` for the method ``name``: numbadask's
    function (or its nan-twin, by ``skipna``) where numbadask has a kernel, else xarray's
    own function (``duck_array_ops.<name>``) with the same arguments."""

    @numpy_in_numpy_out
    def reduce(data: Any, axis: Any = None, skipna: bool | None = None, *, split_every: Any = None, device: str = "auto", **kwargs: Any) -> Any:
        if not _kernel_data(data) or (name in ("argmin", "argmax") and isinstance(axis, tuple)):
            return _xarray_function(name, data, axis, skipna, kwargs)
        if axis == () and name in ("sum", "mean", "min", "max"):
            return data  # xarray's invariant_0d: no reduced dimension leaves the data as is
        skip = _skips(data, skipna)
        common = {"axis": axis, "split_every": split_every, "device": device}
        if name == "sum":
            min_count = kwargs.pop("min_count", None)
            result = (sums.nansum if skip else sums.sum)(data, **common, **kwargs)
            if skip and min_count is not None:  # xarray ignores min_count without skipna
                result = _null_out(result, data, axis, min_count, split_every, device)
            return result
        if name == "count":
            return sums.count(data, **common)
        if name == "ptp" and skip:
            return extremes.nanmax(data, **common) - extremes.nanmin(data, **common)
        functions = {
            "mean": (sums.mean, sums.nanmean),
            "var": (variances.var, variances.nanvar),
            "std": (variances.std, variances.nanstd),
            "min": (extremes.min, extremes.nanmin),
            "max": (extremes.max, extremes.nanmax),
            "ptp": (extremes.ptp, extremes.ptp),
            "argmin": (indices.argmin, indices.nanargmin),
            "argmax": (indices.argmax, indices.nanargmax),
        }
        return functions[name][skip](data, **common, **kwargs)

    reduce.__name__ = reduce.__qualname__ = name
    return reduce


def _xarray_function(name: str, data: Any, axis: Any, skipna: bool | None, kwargs: dict[str, Any]) -> Any:
    """What xarray's own reduction computes for data numbadask has no kernel for."""
    if name == "count":
        return duck_array_ops.count(data, axis=axis)
    if name == "ptp":  # xarray has no ptp: its max - min (timedelta for datetime data)
        return duck_array_ops.max(data, axis=axis, skipna=skipna) - duck_array_ops.min(data, axis=axis, skipna=skipna)
    return getattr(duck_array_ops, name)(data, axis=axis, skipna=skipna, **kwargs)


def custom_reducer(r: CustomReduction, params: dict[str, Any]) -> Callable[..., Any]:
    @numpy_in_numpy_out
    def reduce(data: Any, axis: Any = None, *, split_every: Any = None, device: str = "auto") -> Any:
        return r(data, axis=axis, split_every=split_every, device=device, **params)

    reduce.__name__ = reduce.__qualname__ = r.name
    return reduce


class MomentsCache:
    """``numbadask.moments`` of each variable once, whichever field xarray asks for: the
    seven fields of a variable are lazy arrays of one graph, one read of the data."""

    def __init__(self, skipna: bool | None, ddof: float, split_every: Any, device: str) -> None:
        self.skipna, self.ddof, self.split_every, self.device = skipna, ddof, split_every, device
        self.results: dict[tuple[int, Any], tuple[Any, variances.MomentsResult]] = {}

    def field(self, name: str) -> Callable[..., Any]:
        @numpy_in_numpy_out
        def reduce(data: Any, axis: Any = None) -> Any:
            key = (id(data), axis)
            if key not in self.results:  # keep `data` alive: its id stays its own
                m = variances.moments(
                    data, axis=axis, ddof=self.ddof, skipna=_skips(data, self.skipna), split_every=self.split_every, device=self.device
                )
                self.results[key] = (data, m)
            return getattr(self.results[key][1], name)

        reduce.__name__ = reduce.__qualname__ = f"moments_{name}"
        return reduce


def compute_together(arrays: list[Any]) -> list[Any]:
    with warnings.catch_warnings():
        for message in _SILENCED:
            warnings.filterwarnings("ignore", message, RuntimeWarning)
        return list(dask.compute(*arrays))


def is_sequence_of_dims(dim: Any) -> bool:
    return dim is ... or (isinstance(dim, Sequence) and not isinstance(dim, str))
