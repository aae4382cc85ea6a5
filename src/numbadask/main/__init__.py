"""The main job and the tools around it: the ``numbadask`` command (:mod:`.cli`), its
``stats`` job (:mod:`.stats`) over sources (:mod:`.sources`) on clusters
(:mod:`.clusters`), ``bench`` (:mod:`.benchmark`, :mod:`.timing`) and ``info``
(:mod:`.environment`).

The top layer: it may import every layer below (:mod:`numbadask.integrations`,
:mod:`numbadask.reductions`, :mod:`numbadask.engine`, :mod:`numbadask.cpu`,
:mod:`numbadask.cuda_kernels`); nothing imports it but the package root (for
:func:`numbadask.cluster` and :func:`numbadask.connect`).
"""
