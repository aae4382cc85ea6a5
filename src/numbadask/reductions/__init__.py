"""The public reductions, one module per family, each declaring its
:class:`~numbadask.engine.definition.Reduction` objects next to its public functions.

What lives here: sums, means and counts (:mod:`.sums`), min, max and ptp
(:mod:`.extremes`), arg-reductions (:mod:`.indices`), variances and moments
(:mod:`.variances`), the two-array statistics (:mod:`.comoments`, :mod:`.weighted`,
sharing :mod:`.pairs`), user-defined reductions (:mod:`.custom`, with the checks of a
definition in :mod:`.custom_checks` and reductions of several arrays in
:mod:`.custom_arrays`) and the ones that ship (:mod:`.examples`, public as
``numbadask.examples``); the partial states they share (:mod:`.states`), a call's
NumPy rules (:mod:`.call`) and the registry of the built-ins (:mod:`.registry`).

What it may import: :mod:`numbadask.engine` and, below it, :mod:`numbadask.cpu` and
:mod:`numbadask.cuda_kernels`.  Never the integrations or the main job above it.
"""
