"""``Dataset.nd``: the shared methods over every data variable (each read once, in one
graph), plus ``moments`` as ``<name>_<field>`` variables.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import xarray as xr

from numbadask.reductions import variances
from numbadask.reductions.custom import CustomReduction
from numbadask.integrations.xarray.accessor import Accessor
from numbadask.integrations.xarray.docs import MOMENTS_PARAMETERS, PASS, SKIPNA, method_doc
from numbadask.integrations.xarray.reducers import KERNEL_KINDS, MomentsCache, compute_together, is_dask, is_sequence_of_dims, reducer


@xr.register_dataset_accessor("nd")
class DatasetAccessor(Accessor):
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
        return {n for n, v in self._obj.data_vars.items() if not is_dask(v.variable.data)}

    def _xarray_reduce(self, func: Callable[..., Any], dim: Any, keep_attrs: bool | None, keepdims: bool, numeric_only: bool, kwargs: dict[str, Any]) -> Any:
        return self._obj.reduce(func, dim=dim, keep_attrs=keep_attrs, keepdims=keepdims, numeric_only=numeric_only, **kwargs)

    def _kernel_variables(self) -> Any:
        """The Dataset less the data variables numbadask's kernels cannot reduce."""
        ds = self._obj
        return ds.drop_vars([n for n, v in ds.data_vars.items() if v.dtype.kind not in KERNEL_KINDS])

    def reduce(self, r: CustomReduction, dim: Any = None, *, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto", **params: Any) -> Any:
        return Accessor.reduce(DatasetAccessor(self._kernel_variables()), r, dim, keep_attrs=keep_attrs, keepdims=keepdims, split_every=split_every, device=device, **params)

    reduce.__doc__ = Accessor.reduce.__doc__

    def _arg(self, name: str, dim: Any, skipna: bool | None, keep_attrs: bool | None, split_every: Any, device: str) -> Any:
        if dim is None:
            warnings.warn(
                f"Dataset.{name}() with no dim gives flat indices, as xarray's does today (it "
                "will become an error there).",
                FutureWarning,
                stacklevel=3,
            )
        elif is_sequence_of_dims(dim):
            raise ValueError(
                f"When dim is a sequence or ..., DataArray.{name}() returns a dict. dicts cannot be "
                f"contained in a Dataset, so cannot call Dataset.{name}() with a sequence or ... for dim"
            )
        kwargs = {"skipna": skipna, "split_every": split_every, "device": device}
        return self._apply(reducer(name), None if dim is None else [dim], keep_attrs, False, False, **kwargs)

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
    argmin.__doc__ = _ARG.format(which="minimum", name="argmin", skipna=SKIPNA, passed=PASS)
    argmax.__doc__ = _ARG.format(which="maximum", name="argmax", skipna=SKIPNA, passed=PASS)

    def moments(self, dim: Any = None, *, skipna: bool | None = None, ddof: float = 0, keep_attrs: bool | None = None, keepdims: bool = False, split_every: Any = None, device: str = "auto") -> Any:
        ds = self._kernel_variables()
        eager = DatasetAccessor(ds)._eager_names()
        cache = MomentsCache(skipna, ddof, split_every, device)
        fields = {f: ds.reduce(cache.field(f), dim=dim, keep_attrs=keep_attrs, keepdims=keepdims) for f in variances.FIELDS}
        first = fields["count"]
        source = {f"{n}_{f}": (n, f) for n in first.data_vars for f in variances.FIELDS}
        variables = {k: fields[f][n].variable for k, (n, f) in source.items()}
        out = xr.Dataset(variables, coords=first.coords, attrs=first.attrs)
        lazy = [k for k, (n, _) in source.items() if n in eager and is_dask(out[k].variable.data)]
        if lazy:
            values = compute_together([out[k].variable.data for k in lazy])
            out = out.assign({k: out[k].variable.copy(data=v) for k, v in zip(lazy, values)})
        return out

    moments.__doc__ = method_doc(
        "count, sum, mean, var, std, min and max of every data variable along ``dim``, each\n"
        "    variable read once (:func:`numbadask.moments`).",
        *MOMENTS_PARAMETERS,
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
