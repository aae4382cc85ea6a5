"""The ``.nd`` accessor: numbadask's reductions on xarray objects, with xarray's conventions.

Importing this module (it needs the ``xarray`` extra: ``pip install 'numbadask[xarray]'``)
registers an accessor named ``nd`` on :class:`xarray.DataArray` and
:class:`xarray.Dataset`.  ``import numbadask`` alone never imports xarray.

Each method reduces through xarray's own ``reduce`` with numbadask's function in place of
NumPy's, so dimensions, coordinates, names and attributes come out exactly as from
xarray's method of the same name:

* ``dim``: a dimension name, a list of names, ``...`` or None (all dimensions);
* ``skipna=None`` skips NaN for float data (xarray's rule; integer and bool data hold no
  NaN); ``skipna=True`` / ``False`` forces the nan-function / the plain one;
* ``keep_attrs=None`` follows ``xr.set_options(keep_attrs=...)`` and, at its
  ``"default"``, the default of the installed xarray's reductions (recent versions keep
  the attributes, older ones dropped them);
* ``ddof`` (default 0) for ``var`` and ``std``, ``min_count`` for ``sum``;
* coordinates that do not depend on a reduced dimension are kept, the others dropped;
* on a Dataset, ``mean``, ``sum``, ``var``, ``std`` and the other numeric reductions drop
  the non-numeric data variables that have a reduced dimension (xarray's
  ``numeric_only``), ``min``, ``max``, ``count`` and ``argmin``/``argmax`` keep them.

Data numbadask has no kernel for (complex, datetime, string and object dtypes, and data
that is neither NumPy, CuPy nor Dask) is reduced by xarray's own function.

NumPy in, NumPy out: NumPy-backed data is reduced at once (a Dataset's variables in one
``dask.compute``).  Dask-backed data (of NumPy or CuPy chunks) gives Dask-backed results,
a Dataset's variables one lazy array each, so ``ds.nd.mean("time").compute()`` reads every
variable once, in one compute.  ``device`` and ``split_every`` pass through to numbadask.

>>> import numpy as np, xarray as xr, numbadask.xarray
>>> t = xr.DataArray(np.array([[1.0, np.nan], [3.0, 4.0]]), dims=("time", "x"),
...                  coords={"x": [10, 20]}, attrs={"units": "K"})
>>> t.nd.mean("time", keep_attrs=True)
<xarray.DataArray (x: 2)> Size: 16B
array([2., 4.])
Coordinates:
  * x        (x) int64 16B 10 20
Attributes:
    units:    K
>>> t.nd.sum("time", min_count=2).values
array([ 4., nan])
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Callable

import dask
import numpy as np

try:
    import xarray as xr
    from xarray.core import duck_array_ops
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("numbadask.xarray needs xarray: pip install 'numbadask[xarray]'") from error

from . import extremes, indices, sums, variances
from .custom import CustomReduction

__all__ = ["DataArrayAccessor", "DatasetAccessor", "NdWeighted"]

#: Dtype kinds numbadask's kernels reduce: bool, signed and unsigned integers, floats.
_KERNEL_KINDS = "biuf"

#: Warnings xarray silences while it reduces eagerly (``Variable.reduce`` and its
#: nan-functions); NumPy-backed data computed here silences them as well.
_SILENCED = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0")


def _is_dask(data: Any) -> bool:
    return dask.is_dask_collection(data)


def _refuse_query_planning(obj: Any) -> None:
    """Raise for data held as Dask's query-planning (expression-backed) Arrays.

    xarray cannot hold them yet: their ``__array_function__`` and ``__array__`` are
    missing, so xarray's own reductions raise and a result wrapped back into a DataArray
    becomes an object array of lazy Arrays, not numbers (xarray 2026.9, dask 2026.8).
    A clear error here is better than that."""
    variables = obj.variables.values() if hasattr(obj, "data_vars") else [obj.variable]
    for var in variables:
        if _is_dask(var._data) and hasattr(var._data, "expr"):
            raise TypeError(
                "numbadask.xarray: this xarray object holds Dask query-planning Arrays "
                "(array.query-planning=True), which xarray cannot reduce or hold results "
                "of (they become object arrays). Import dask.array with "
                "DASK_ARRAY__QUERY_PLANNING=False, or call numbadask's functions on the "
                "Dask arrays themselves (e.g. numbadask.mean(obj.data, axis=0))."
            )


def _numpy_in_numpy_out(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compute ``func``'s result at once when no input is a Dask array and the result is a
    query-planning Array: xarray turns such an Array into an object array of lazy
    Arrays (see :func:`_refuse_query_planning`).  Legacy Dask results are left lazy
    (``_Accessor._materialize`` computes them together)."""

    @functools.wraps(func)
    def wrapper(*arrays: Any, **kwargs: Any) -> Any:
        out = func(*arrays, **kwargs)
        if _is_dask(out) and hasattr(out, "expr") and not any(_is_dask(a) for a in arrays):
            (out,) = _compute_together([out])
        return out

    return wrapper


def _kernel_data(data: Any) -> bool:
    """Whether numbadask reduces ``data``: a NumPy, CuPy or Dask array of a kernel dtype
    (anything else goes to xarray's own function)."""
    dtype = getattr(data, "dtype", None)
    if not isinstance(dtype, np.dtype) or dtype.kind not in _KERNEL_KINDS:
        return False
    if isinstance(data, np.ndarray):
        return type(data) is np.ndarray  # not np.ma.MaskedArray or other subclasses
    if _is_dask(data):
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


def _reducer(name: str) -> Callable[..., Any]:
    """The function given to xarray's ``reduce`` for the method ``name``: numbadask's
    function (or its nan-twin, by ``skipna``) where numbadask has a kernel, else xarray's
    own function (``duck_array_ops.<name>``) with the same arguments."""

    @_numpy_in_numpy_out
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


def _custom(r: CustomReduction, params: dict[str, Any]) -> Callable[..., Any]:
    @_numpy_in_numpy_out
    def reduce(data: Any, axis: Any = None, *, split_every: Any = None, device: str = "auto") -> Any:
        return r(data, axis=axis, split_every=split_every, device=device, **params)

    reduce.__name__ = reduce.__qualname__ = r.name
    return reduce


class _MomentsCache:
    """``numbadask.moments`` of each variable once, whichever field xarray asks for: the
    seven fields of a variable are lazy arrays of one graph, one read of the data."""

    def __init__(self, skipna: bool | None, ddof: float, split_every: Any, device: str) -> None:
        self.skipna, self.ddof, self.split_every, self.device = skipna, ddof, split_every, device
        self.results: dict[tuple[int, Any], tuple[Any, variances.MomentsResult]] = {}

    def field(self, name: str) -> Callable[..., Any]:
        @_numpy_in_numpy_out
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


def _compute_together(arrays: list[Any]) -> list[Any]:
    with warnings.catch_warnings():
        for message in _SILENCED:
            warnings.filterwarnings("ignore", message, RuntimeWarning)
        return list(dask.compute(*arrays))


def _is_sequence_of_dims(dim: Any) -> bool:
    return dim is ... or (isinstance(dim, Sequence) and not isinstance(dim, str))


_DIM = """dim : str, list of str, ``...`` or None, optional
        Dimension(s) to reduce; None (default) or ``...``: all of them."""
_SKIPNA = """skipna : bool or None, optional
        Skip NaN; None (default): skip them in float data, as xarray does."""
_KEEP = """keep_attrs : bool or None, optional
        Keep the attributes; None (default): xarray's default for reductions
        (``xr.set_options(keep_attrs=...)``).
    keepdims : bool, optional
        Keep the reduced dimensions with length 1 (their coordinates are dropped)."""
_PASS = """split_every, device
        Passed to numbadask (see :func:`numbadask.sum`)."""


def _doc(summary: str, *parameters: str, returns: str = "", example: str = "") -> str:
    body = "\n    ".join(parameters + (_KEEP, _PASS))
    doc = f"""{summary}

    Parameters
    ----------
    {body}
    """
    if returns:
        doc += f"""
    Returns
    -------
    {returns}
    """
    if example:
        doc += f"""
    Examples
    --------
{example}
    """
    return doc


_DDOF = """ddof : int or float, optional
        Delta degrees of freedom: the divisor is ``N - ddof`` (default 0)."""

_EXAMPLE_ARRAY = """    >>> import numpy as np, xarray as xr, numbadask.xarray
    >>> a = xr.DataArray([[1.0, 5.0, np.nan], [3.0, 2.0, 4.0]], dims=("y", "x"))"""


def _weight_check(w: Any) -> Any:
    if np.isnan(w).any():
        raise ValueError("`weights` cannot contain missing values. Missing values can be replaced by `weights.fillna(0)`.")
    return w


def _weighted_array(arr: Any, weights: Any, dim: Any, skipna: bool | None, keep_attrs: bool | None, field: str, split_every: Any) -> Any:
    """``arr.weighted(weights).<field>(dim)`` of one DataArray by numbadask's kernel: sum
    of w * a and of w (over the non-NaN a) in one read; xarray's own for what it does not
    reduce (non-numeric dtypes, a variable without the reduced dimensions, and integer
    weighted sums of integers, which xarray keeps exact in int64)."""
    from . import bivariate

    every = dim is None or dim is ...
    dims = list(dict.fromkeys((*arr.dims, *weights.dims))) if every else [dim] if isinstance(dim, str) or not isinstance(dim, Iterable) else list(dim)
    missing = [d for d in dims if d not in arr.dims and d not in weights.dims]
    integer_sum = field == "sum" and arr.dtype.kind in "biu" and weights.dtype.kind in "biu"
    if missing or integer_sum or arr.dtype.kind not in _KERNEL_KINDS or weights.dtype.kind not in _KERNEL_KINDS or not any(d in arr.dims for d in dims):
        return getattr(arr.weighted(weights), field)(dim=dim, skipna=skipna, keep_attrs=keep_attrs)
    skip = bool(skipna) if skipna is not None else arr.dtype.kind == "f"
    a, w = xr.align(arr, weights, join="inner", copy=False)
    if _is_dask(a.variable.data):  # the weights cut as the data: broadcast per block, no rechunk
        w = w.chunk({d: a.chunksizes[d] for d in w.dims if d in a.dims})
    a, w = xr.broadcast(a, w)
    dtype = np.result_type(arr.dtype, weights.dtype)
    if field == "mean" or dtype.kind != "f":
        dtype = np.result_type(dtype, np.float64) if dtype.kind != "f" else dtype
    axis = tuple(range(-len(dims), 0))

    @_numpy_in_numpy_out
    def apply(x: Any, y: Any) -> Any:
        x, y, shape = bivariate._aligned(x, y, f"weighted {field}", ("data", "weights"))
        axes = tuple(range(len(shape) - len(dims), len(shape)))
        state = bivariate.weighted_sums(x, y, shape, axes, skip, split_every)
        return bivariate.weighted_field(state, x, field, dtype, axes, False, "nan")

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

    def __init__(self, accessor: _Accessor, weights: Any) -> None:
        if not isinstance(weights, xr.DataArray):
            raise ValueError("`weights` must be a DataArray")
        if _is_dask(weights.variable.data):
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
        eager = set() if _is_dask(weights.variable.data) else self._accessor._eager_names()
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
        >>> import numpy as np, xarray as xr, numbadask.xarray
        >>> a = xr.DataArray([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], dims=("x", "time"))
        >>> w = xr.DataArray([1.0, 2.0, 1.0], dims="time")
        >>> a.nd.weighted(w).sum("time").values
        array([ 4., 20.])
        """
        return self._reduce("sum", dim, skipna, keep_attrs, split_every)


class _Accessor:
    """What the DataArray and Dataset accessors share: the reduction methods."""

    _obj: Any

    def __init__(self, obj: Any) -> None:
        _refuse_query_planning(obj)
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
            if eager and _is_dask(result.variable.data):
                (value,) = _compute_together([result.variable.data])
                return result.copy(data=value)
            return result
        names = [n for n, v in result.data_vars.items() if n in eager and _is_dask(v.variable.data)]
        if not names:
            return result
        values = _compute_together([result[n].variable.data for n in names])
        return result.assign({n: result[n].variable.copy(data=v) for n, v in zip(names, values)})

    def _method(self, name: str, dim: Any, skipna: Any, keep_attrs: Any, keepdims: bool, split_every: Any, device: str, numeric_only: bool, **kwargs: Any) -> Any:
        return self._apply(_reducer(name), dim, keep_attrs, keepdims, numeric_only, skipna=skipna, split_every=split_every, device=device, **kwargs)

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

    sum.__doc__ = _doc(
        "Sum along ``dim`` (xarray's ``sum``): :func:`numbadask.sum` or :func:`numbadask.nansum`.",
        _DIM,
        _SKIPNA,
        """min_count : int or None, optional
        With NaN skipped, the result is NaN where fewer than ``min_count`` values are
        valid (integer results then become float64); ignored without skipping, as in
        xarray.""",
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.sum("x").values
    array([6., 9.])
    >>> a.nd.sum("x", min_count=3).values
    array([nan,  9.])""",
    )

    def mean(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("mean", dim, skipna, keep_attrs, keepdims, split_every, device, True)

    mean.__doc__ = _doc(
        "Mean along ``dim`` (xarray's ``mean``): :func:`numbadask.mean` or :func:`numbadask.nanmean`.",
        _DIM,
        _SKIPNA,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.mean("y").values
    array([2. , 3.5, 4. ])
    >>> a.nd.mean("y", skipna=False).values
    array([2. , 3.5, nan])""",
    )

    def var(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("var", dim, skipna, keep_attrs, keepdims, split_every, device, True, ddof=ddof)

    var.__doc__ = _doc(
        "Variance along ``dim`` (xarray's ``var``): :func:`numbadask.var` or :func:`numbadask.nanvar`.",
        _DIM,
        _SKIPNA,
        _DDOF,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.var("x", ddof=1).values
    array([8., 1.])""",
    )

    def std(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("std", dim, skipna, keep_attrs, keepdims, split_every, device, True, ddof=ddof)

    std.__doc__ = _doc(
        "Standard deviation along ``dim`` (xarray's ``std``): :func:`numbadask.std` or :func:`numbadask.nanstd`.",
        _DIM,
        _SKIPNA,
        _DDOF,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.std("x").values
    array([2.        , 0.81649658])""",
    )

    def min(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("min", dim, skipna, keep_attrs, keepdims, split_every, device, False)

    min.__doc__ = _doc(
        "Minimum along ``dim`` (xarray's ``min``): :func:`numbadask.min` or :func:`numbadask.nanmin`; the data's dtype.",
        _DIM,
        _SKIPNA,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.min("x").values
    array([1., 2.])""",
    )

    def max(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("max", dim, skipna, keep_attrs, keepdims, split_every, device, False)

    max.__doc__ = _doc(
        "Maximum along ``dim`` (xarray's ``max``): :func:`numbadask.max` or :func:`numbadask.nanmax`; the data's dtype.",
        _DIM,
        _SKIPNA,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.max("y", skipna=False).values
    array([ 3.,  5., nan])""",
    )

    def ptp(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._method("ptp", dim, skipna, keep_attrs, keepdims, split_every, device, True)

    ptp.__doc__ = _doc(
        "Range, maximum minus minimum, along ``dim``: :func:`numbadask.ptp` (xarray has no ``ptp``).\n\n"
        "    With NaN skipped it is ``nanmax - nanmin`` (two numbadask reductions of the same\n"
        "    chunks, in one compute).  On a Dataset, non-numeric variables with a reduced\n"
        "    dimension are dropped, as by ``mean``.",
        _DIM,
        _SKIPNA,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.ptp("x").values
    array([4., 2.])""",
    )

    def count(self, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        return self._apply(_reducer("count"), dim, keep_attrs, keepdims, False, split_every=split_every, device=device)

    count.__doc__ = _doc(
        "Number of non-NaN values along ``dim`` (xarray's ``count``): :func:`numbadask.count`, int64.",
        _DIM,
        example=_EXAMPLE_ARRAY + """
    >>> a.nd.count("x").values
    array([2, 3])""",
    )

    # --- beyond the family ------------------------------------------------------------

    def reduce(self, r: CustomReduction, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto", **params: Any) -> Any:
        if not isinstance(r, CustomReduction):
            raise TypeError(f"reduce() takes a reduction made by numbadask.reduction, got {type(r).__name__}; for another function use xarray's own reduce()")
        return self._apply(_custom(r, params), dim, keep_attrs, keepdims, True, split_every=split_every, device=device)

    reduce.__doc__ = _doc(
        "Reduce along ``dim`` with a user-defined :func:`numbadask.reduction` (float64 results).\n\n"
        "    On a Dataset, every variable of bool, integer or float dtype is reduced; the\n"
        "    others are dropped.",
        """r : CustomReduction
        A reduction made by :func:`numbadask.reduction` (``numbadask.examples`` has six).""",
        _DIM,
        """**params
        The parameters of ``r``'s ``map``, as keyword arguments.""",
        example="""    >>> import numpy as np, xarray as xr, numbadask.xarray
    >>> from numbadask.examples import count_above
    >>> a = xr.DataArray([[1.0, 5.0, 7.0], [3.0, 2.0, 4.0]], dims=("y", "x"))
    >>> a.nd.reduce(count_above, "x", threshold=3.5).values
    array([2., 1.])""",
    )


_MOMENTS_PARAMETERS = (
    _DIM,
    _SKIPNA,
    """ddof : int or float, optional
        Delta degrees of freedom of ``var`` and ``std`` (default 0).""",
)


@xr.register_dataarray_accessor("nd")
class DataArrayAccessor(_Accessor):
    """numbadask's reductions of a :class:`xarray.DataArray`: ``da.nd.mean("time")``.

    Registered as ``.nd`` by ``import numbadask.xarray``.  Every method returns what
    xarray's method of the same name returns (dims, coordinates, name, attributes),
    computed by numbadask's kernels.

    >>> import xarray as xr, numbadask.xarray
    >>> xr.DataArray([3.0, 1.0, 2.0], dims="t").nd.argmin("t").item()
    1
    """

    def _eager_names(self) -> set[Hashable]:
        return set() if _is_dask(self._obj.variable.data) else {None}

    def _xarray_reduce(self, func: Callable[..., Any], dim: Any, keep_attrs: bool | None, keepdims: bool, numeric_only: bool, kwargs: dict[str, Any]) -> Any:
        return self._obj.reduce(func, dim=dim, keep_attrs=keep_attrs, keepdims=keepdims, **kwargs)

    def _arg(self, name: str, dim: Any, skipna: bool | None, keep_attrs: bool | None, split_every: Any, device: str) -> Any:
        obj = self._obj
        kwargs = {"skipna": skipna, "split_every": split_every, "device": device}
        if dim is None:
            warnings.warn(
                f"{name} with no dim gives the flat index of the flattened data, as xarray's "
                f"DataArray.{name}() does today; pass dim=... for a dict of indices of each dimension.",
                FutureWarning,
                stacklevel=3,
            )
        if not _is_sequence_of_dims(dim):
            return self._apply(_reducer(name), dim, keep_attrs, False, False, **kwargs)
        dims = list(obj.dims) if dim is ... else list(dim)
        missing = [d for d in dims if d not in obj.dims]
        if missing:
            raise ValueError(f"Dimensions {missing} not found in data dimensions {obj.dims}")
        stacked_dim = "_unravel_argminmax_dim_0"
        n = 1
        while stacked_dim in obj.dims:
            stacked_dim, n = f"_unravel_argminmax_dim_{n}", n + 1
        # xarray's Variable._unravel_argminmax: one flat index over the stacked dims, unravelled.
        stacked = obj.stack({stacked_dim: dims}, create_index=False)
        flat = DataArrayAccessor(stacked)._apply(_reducer(name), stacked_dim, keep_attrs, False, False, **kwargs)
        shape = tuple(obj.sizes[d] for d in dims)
        if _is_dask(flat.variable.data):
            import dask.array as da

            unravelled = da.unravel_index(flat.variable.data, shape)
        else:
            unravelled = np.unravel_index(flat.variable.data, shape)
        return {d: flat.copy(data=i) for d, i in zip(dims, unravelled)}

    def argmin(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None, device: str = "auto") -> Any:
        return self._arg("argmin", dim, skipna, keep_attrs, split_every, device)

    def argmax(self, dim: Any = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None, device: str = "auto") -> Any:
        return self._arg("argmax", dim, skipna, keep_attrs, split_every, device)

    _ARG = """Index of the {which} along ``dim``, as xarray's ``DataArray.{name}``: :func:`numbadask.{name}`
    or :func:`numbadask.nan{name}` (int64, ties to the first; an all-NaN slice raises
    ``ValueError`` when NaN are skipped).

    Parameters
    ----------
    dim : str, list of str, ``...`` or None, optional
        One name: a DataArray of indices along it.  A list or ``...``: a dict of
        DataArrays, one per dimension, that ``da.isel`` takes.  None: the index into the
        flattened data (with xarray's ``FutureWarning``).
    {skipna}
    keep_attrs : bool or None, optional
        Keep the attributes; None (default): xarray's default for reductions.
    {passed}

    Examples
    --------
    {example}
    >>> a.nd.{name}("x").values
    array({one})
    >>> {{d: int(i) for d, i in a.nd.{name}(...).items()}}
    {{'y': {y}, 'x': {x}}}
    """
    argmin.__doc__ = _ARG.format(which="minimum", name="argmin", skipna=_SKIPNA, passed=_PASS, example=_EXAMPLE_ARRAY.strip(), one="[0, 1]", y=0, x=0)
    argmax.__doc__ = _ARG.format(which="maximum", name="argmax", skipna=_SKIPNA, passed=_PASS, example=_EXAMPLE_ARRAY.strip(), one="[1, 2]", y=0, x=1)

    def moments(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        eager = self._eager_names()
        cache = _MomentsCache(skipna, ddof, split_every, device)
        fields = {f: self._xarray_reduce(cache.field(f), dim, keep_attrs, keepdims, True, {}) for f in variances.FIELDS}
        out = xr.Dataset({f: v.variable for f, v in fields.items()}, coords=fields["count"].coords)
        if eager:  # every field at once: one read of the data
            values = _compute_together([out[f].variable.data for f in variances.FIELDS])
            out = out.assign({f: out[f].variable.copy(data=v) for f, v in zip(variances.FIELDS, values)})
        return out

    moments.__doc__ = _doc(
        "count, sum, mean, var, std, min and max along ``dim`` in one read of the data\n"
        "    (:func:`numbadask.moments`).",
        *_MOMENTS_PARAMETERS,
        returns="""xarray.Dataset
        One variable per field of :class:`numbadask.MomentsResult`, with numbadask.moments'
        dtypes (count int64, sum of integer data float64, min/max the data's dtype), the
        reduction's coordinates and (by ``keep_attrs``) the DataArray's attributes; the
        seven share one graph.""",
        example=_EXAMPLE_ARRAY + """
    >>> m = a.nd.moments("x")
    >>> list(m.data_vars)
    ['count', 'sum', 'mean', 'var', 'std', 'min', 'max']
    >>> m["mean"].values, m["count"].values
    (array([3., 3.]), array([2, 3]))""",
    )


    def _pairwise(self, func: Callable[..., Any], other: Any, dim: Any, split_every: Any, **kwargs: Any) -> Any:
        """``func(x, y, axis=...)`` of this DataArray and ``other``, aligned (inner join)
        and broadcast as :func:`xarray.cov` does, reducing ``dim`` (None or ``...``:
        every dimension)."""
        if not isinstance(other, xr.DataArray):
            raise TypeError(f"other must be an xarray.DataArray, not {type(other).__name__}")
        a, b = xr.align(self._obj, other, join="inner", copy=False)
        if _is_dask(a.variable.data) and not _is_dask(b.variable.data):  # cut as a: no rechunk
            b = b.chunk({d: a.chunksizes[d] for d in b.dims if d in a.dims})
        a, b = xr.broadcast(a, b)
        if dim is None or dim is ...:
            dims = list(a.dims)
        elif isinstance(dim, str) or not isinstance(dim, Iterable):
            dims = [dim]
        else:
            dims = list(dim)
        missing = [d for d in dims if d not in a.dims]
        if missing:
            raise ValueError(f"Dimensions {missing} not found in data dimensions {a.dims}")
        eager = not (_is_dask(a.variable.data) or _is_dask(b.variable.data))
        axis = tuple(range(-len(dims), 0))

        @_numpy_in_numpy_out
        def apply(x: Any, y: Any) -> Any:
            return func(x, y, axis=axis, split_every=split_every, **kwargs)

        # xr.cov/xr.corr keep the first array's attributes unless keep_attrs=False is set.
        keep = xr.get_options()["keep_attrs"] is not False
        out = xr.apply_ufunc(apply, a, b, input_core_dims=[dims, dims], dask="allowed", keep_attrs="override" if keep else False)
        out.name = a.name if a.name == b.name else None  # xarray's rule for binary results
        if eager:
            (value,) = _compute_together([out.variable.data])
            out = out.copy(data=value)
        return out

    def cov(self, other: Any, dim: Any = None, ddof: int = 1, *, split_every: Any = None) -> Any:
        """Covariance with ``other`` along ``dim`` (:func:`xarray.cov`), one read of both.

        :func:`numbadask.cov`: the two DataArrays are aligned (inner join) and broadcast
        as xarray does; pairs where either is NaN are skipped; the divisor is
        ``n - ddof`` (default 1, as xarray's).  NumPy in, NumPy out; Dask in, Dask out.

        Parameters
        ----------
        other : xarray.DataArray
        dim : str, list of str, ``...`` or None
            Dimensions to reduce; None or ``...``: all of them.
        ddof : int, optional
            Delta degrees of freedom (default 1).
        split_every : int or dict, optional
            Fan-in of the merge tree.

        Returns
        -------
        xarray.DataArray
            float64, with the coordinates of the kept dimensions, no name, and this
            DataArray's attributes unless ``xr.set_options(keep_attrs=False)`` (as
            xr.cov).

        Examples
        --------
        >>> import numpy as np, xarray as xr, numbadask.xarray
        >>> a = xr.DataArray([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0]], dims=("x", "time"))
        >>> b = xr.DataArray([[2.0, 4.0, 7.0], [3.0, 2.0, 1.0]], dims=("x", "time"))
        >>> a.nd.cov(b, "time").values
        array([ 2.5, -2. ])
        """
        from . import bivariate

        return self._pairwise(bivariate.cov, other, dim, split_every, ddof=ddof)

    def corr(self, other: Any, dim: Any = None, *, split_every: Any = None) -> Any:
        """Pearson correlation with ``other`` along ``dim`` (:func:`xarray.corr`), one read
        of both.

        :func:`numbadask.corr`, aligned, broadcast and NaN-skipping as in :meth:`cov`;
        constant slices and slices with no pairs give NaN.

        Parameters
        ----------
        other : xarray.DataArray
        dim : str, list of str, ``...`` or None
            Dimensions to reduce; None or ``...``: all of them.
        split_every : int or dict, optional
            Fan-in of the merge tree.

        Returns
        -------
        xarray.DataArray

        Examples
        --------
        >>> import numpy as np, xarray as xr, numbadask.xarray
        >>> a = xr.DataArray([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0]], dims=("x", "time"))
        >>> b = xr.DataArray([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]], dims=("x", "time"))
        >>> a.nd.corr(b, "time").values
        array([ 1., -1.])
        """
        from . import bivariate

        return self._pairwise(bivariate.corr, other, dim, split_every)


@xr.register_dataset_accessor("nd")
class DatasetAccessor(_Accessor):
    """numbadask's reductions of a :class:`xarray.Dataset`: ``ds.nd.mean("time")``.

    Registered as ``.nd`` by ``import numbadask.xarray``.  Every data variable is reduced;
    Dask-backed ones give lazy results that one ``.compute()`` computes together (each
    variable read once), NumPy-backed ones are computed in one ``dask.compute``.

    >>> import numpy as np, xarray as xr, numbadask.xarray
    >>> ds = xr.Dataset({"u": ("t", [1.0, 3.0]), "v": ("t", [2, 6])})
    >>> ds.nd.mean("t")
    <xarray.Dataset> Size: 16B
    Dimensions:  ()
    Data variables:
        u        float64 8B 2.0
        v        float64 8B 4.0
    """

    def _eager_names(self) -> set[Hashable]:
        return {n for n, v in self._obj.data_vars.items() if not _is_dask(v.variable.data)}

    def _xarray_reduce(self, func: Callable[..., Any], dim: Any, keep_attrs: bool | None, keepdims: bool, numeric_only: bool, kwargs: dict[str, Any]) -> Any:
        return self._obj.reduce(func, dim=dim, keep_attrs=keep_attrs, keepdims=keepdims, numeric_only=numeric_only, **kwargs)

    def _kernel_variables(self) -> Any:
        """The Dataset less the data variables numbadask's kernels cannot reduce."""
        ds = self._obj
        return ds.drop_vars([n for n, v in ds.data_vars.items() if v.dtype.kind not in _KERNEL_KINDS])

    def reduce(self, r: CustomReduction, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto", **params: Any) -> Any:
        return _Accessor.reduce(DatasetAccessor(self._kernel_variables()), r, dim, keep_attrs=keep_attrs, keepdims=keepdims, split_every=split_every, device=device, **params)

    reduce.__doc__ = _Accessor.reduce.__doc__

    def _arg(self, name: str, dim: Any, skipna: bool | None, keep_attrs: bool | None, split_every: Any, device: str) -> Any:
        if dim is None:
            warnings.warn(
                f"Dataset.{name}() with no dim gives flat indices, as xarray's does today (it "
                "will become an error there).",
                FutureWarning,
                stacklevel=3,
            )
        elif _is_sequence_of_dims(dim):
            raise ValueError(
                f"When dim is a sequence or ..., DataArray.{name}() returns a dict. dicts cannot be "
                f"contained in a Dataset, so cannot call Dataset.{name}() with a sequence or ... for dim"
            )
        kwargs = {"skipna": skipna, "split_every": split_every, "device": device}
        return self._apply(_reducer(name), None if dim is None else [dim], keep_attrs, False, False, **kwargs)

    def argmin(self, dim: Hashable | None = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None, device: str = "auto") -> Any:
        return self._arg("argmin", dim, skipna, keep_attrs, split_every, device)

    def argmax(self, dim: Hashable | None = None, *, skipna: bool | None = None, keep_attrs: bool | None = None, split_every: Any = None, device: str = "auto") -> Any:
        return self._arg("argmax", dim, skipna, keep_attrs, split_every, device)

    _ARG = """Index of each variable's {which} along one dimension, as xarray's ``Dataset.{name}``
    (:func:`numbadask.{name}` / :func:`numbadask.nan{name}` by ``skipna``).

    Parameters
    ----------
    dim : str or None
        The dimension (a sequence or ``...`` raises ``ValueError``, as in xarray).
    {skipna}
    keep_attrs : bool or None, optional
        Keep the attributes; None (default): xarray's default for reductions.
    {passed}
    """
    argmin.__doc__ = _ARG.format(which="minimum", name="argmin", skipna=_SKIPNA, passed=_PASS)
    argmax.__doc__ = _ARG.format(which="maximum", name="argmax", skipna=_SKIPNA, passed=_PASS)

    def moments(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        ds = self._kernel_variables()
        eager = DatasetAccessor(ds)._eager_names()
        cache = _MomentsCache(skipna, ddof, split_every, device)
        fields = {f: ds.reduce(cache.field(f), dim=dim, keep_attrs=keep_attrs, keepdims=keepdims) for f in variances.FIELDS}
        first = fields["count"]
        source = {f"{n}_{f}": (n, f) for n in first.data_vars for f in variances.FIELDS}
        variables = {k: fields[f][n].variable for k, (n, f) in source.items()}
        out = xr.Dataset(variables, coords=first.coords, attrs=first.attrs)
        lazy = [k for k, (n, _) in source.items() if n in eager and _is_dask(out[k].variable.data)]
        if lazy:
            values = _compute_together([out[k].variable.data for k in lazy])
            out = out.assign({k: out[k].variable.copy(data=v) for k, v in zip(lazy, values)})
        return out

    moments.__doc__ = _doc(
        "count, sum, mean, var, std, min and max of every data variable along ``dim``, each\n"
        "    variable read once (:func:`numbadask.moments`).",
        *_MOMENTS_PARAMETERS,
        returns="""xarray.Dataset
        The variables ``<name>_count``, ``<name>_sum``, ... ``<name>_max`` for each data
        variable of bool, integer or float dtype (the others are dropped), with
        numbadask.moments' dtypes, the reduction's coordinates and (by ``keep_attrs``)
        the attributes.""",
        example="""    >>> import xarray as xr, numbadask.xarray
    >>> ds = xr.Dataset({"u": ("t", [1.0, 3.0]), "v": ("t", [2, 6])})
    >>> m = ds.nd.moments("t")
    >>> float(m["u_mean"]), float(m["v_var"]), int(m["v_max"])
    (2.0, 4.0, 6)""",
    )
