"""The Dask side: what a reduction is, how a call is checked, and the graph that runs it.

What lives here: the :class:`~.definition.Reduction` contract and the three graph tasks
(chunk, combine, aggregate) in :mod:`.definition`; the chunk kernels, one object per
partial state on every device (:mod:`.kernels`); where a chunk is reduced and moving it
there (:mod:`.dispatch`); NumPy's argument rules (:mod:`.checks`); the hand-off of input
numbadask has no kernel for to dask.array (:mod:`.handoff`); the graphs: one array
(:mod:`.graph`), several aligned arrays (:mod:`.aligned`), and Dask's two collection
kinds, legacy and query-planning (:mod:`.collections`).

What it may import: :mod:`numbadask.cpu` and :mod:`numbadask.cuda_kernels` (the latter
only when a chunk is reduced on a GPU), Dask, NumPy, Numba.  Never the reductions, the
integrations or the main job above it.
"""
