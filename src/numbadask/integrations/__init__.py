"""numbadask under other libraries' code: :mod:`.accelerate` (dask.array's reductions
routed to numbadask) and :mod:`.xarray` (the ``.nd`` accessor).

What it may import: :mod:`numbadask.reductions` and the layers below it; never the main
job above it.  ``import numbadask`` imports :mod:`.accelerate` only; the accessor is
registered by ``import numbadask.xarray``.
"""
