"""``DataArray.nd``: the shared methods plus what only a DataArray has: arg-reductions
over several dimensions, ``moments`` as a Dataset, ``cov`` and ``corr``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr

from numbadask.reductions import variances
from numbadask.integrations.xarray.accessor import Accessor
from numbadask.integrations.xarray.docs import EXAMPLE_ARRAY, MOMENTS_PARAMETERS, PASS, SKIPNA, method_doc
from numbadask.integrations.xarray.reducers import MomentsCache, compute_together, is_dask, is_sequence_of_dims, numpy_in_numpy_out, reducer


@xr.register_dataarray_accessor("nd")
class DataArrayAccessor(Accessor):
    """numbadask's reductions of a :class:`xarray.DataArray`: ``da.nd.mean("time")``.

    Registered as ``.nd`` by ``import numbadask.xarray``.  Every method returns what
    xarray's method of the same name returns (dims, coordinates, name, attributes),
    computed by numbadask's kernels.

    >>> import xarray as xr, numbadask.xarray
    >>> xr.DataArray([3.0, 1.0, 2.0], dims="t").nd.argmin("t").item()
    1
    """

    def _eager_names(self) -> set[Hashable]:
        return set() if is_dask(self._obj.variable.data) else {None}

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
        if not is_sequence_of_dims(dim):
            return self._apply(reducer(name), dim, keep_attrs, False, False, **kwargs)
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
        flat = DataArrayAccessor(stacked)._apply(reducer(name), stacked_dim, keep_attrs, False, False, **kwargs)
        shape = tuple(obj.sizes[d] for d in dims)
        if is_dask(flat.variable.data):
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
    argmin.__doc__ = _ARG.format(which="minimum", name="argmin", skipna=SKIPNA, passed=PASS, example=EXAMPLE_ARRAY.strip(), one="[0, 1]", y=0, x=0)
    argmax.__doc__ = _ARG.format(which="maximum", name="argmax", skipna=SKIPNA, passed=PASS, example=EXAMPLE_ARRAY.strip(), one="[1, 2]", y=0, x=1)

    def moments(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        eager = self._eager_names()
        cache = MomentsCache(skipna, ddof, split_every, device)
        fields = {f: self._xarray_reduce(cache.field(f), dim, keep_attrs, keepdims, True, {}) for f in variances.FIELDS}
        out = xr.Dataset({f: v.variable for f, v in fields.items()}, coords=fields["count"].coords)
        if eager:  # every field at once: one read of the data
            values = compute_together([out[f].variable.data for f in variances.FIELDS])
            out = out.assign({f: out[f].variable.copy(data=v) for f, v in zip(variances.FIELDS, values)})
        return out

    moments.__doc__ = method_doc(
        "count, sum, mean, var, std, min and max along ``dim`` in one read of the data\n"
        "    (:func:`numbadask.moments`).",
        *MOMENTS_PARAMETERS,
        returns="""xarray.Dataset
        One variable per field of :class:`numbadask.MomentsResult`, with numbadask.moments'
        dtypes (count int64, sum of integer data float64, min/max the data's dtype), the
        reduction's coordinates and (by ``keep_attrs``) the DataArray's attributes; the
        seven share one graph.""",
        example=EXAMPLE_ARRAY + """
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
        if is_dask(a.variable.data) and not is_dask(b.variable.data):  # cut as a: no rechunk
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
        eager = not (is_dask(a.variable.data) or is_dask(b.variable.data))
        axis = tuple(range(-len(dims), 0))

        @numpy_in_numpy_out
        def apply(x: Any, y: Any) -> Any:
            return func(x, y, axis=axis, split_every=split_every, **kwargs)

        # xr.cov/xr.corr keep the first array's attributes unless keep_attrs=False is set.
        keep = xr.get_options()["keep_attrs"] is not False
        out = xr.apply_ufunc(apply, a, b, input_core_dims=[dims, dims], dask="allowed", keep_attrs="override" if keep else False)
        out.name = a.name if a.name == b.name else None  # xarray's rule for binary results
        if eager:
            (value,) = compute_together([out.variable.data])
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
        from numbadask.reductions import comoments

        return self._pairwise(comoments.cov, other, dim, split_every, ddof=ddof)

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
        from numbadask.reductions import comoments

        return self._pairwise(comoments.corr, other, dim, split_every)
