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

# Importing the accessors registers them as ``.nd`` (the ImportError without xarray says
# which extra to install).
from numbadask.integrations.xarray.dataarray import DataArrayAccessor
from numbadask.integrations.xarray.dataset import DatasetAccessor
from numbadask.integrations.xarray.weighted import NdWeighted

__all__ = ["DataArrayAccessor", "DatasetAccessor", "NdWeighted"]
