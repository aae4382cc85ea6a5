"""The ``.nd`` accessor on xarray objects, split by concern: the shared reduction methods
(:mod:`.accessor`), the DataArray's (:mod:`.dataarray`) and the Dataset's
(:mod:`.dataset`) accessors, ``weighted`` (:mod:`.weighted`), what each method hands to
xarray's ``reduce`` (:mod:`.reducers`) and the docstrings' shared texts (:mod:`.docs`).

Registered by ``import numbadask.xarray`` (needs the ``xarray`` extra).  It may import
:mod:`numbadask.reductions` and the layers below it.
"""

try:
    import xarray  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("numbadask.xarray needs xarray: pip install 'numbadask[xarray]'") from error
