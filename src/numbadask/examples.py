"""Six user-defined reductions that ship with numbadask, each tested against NumPy on
the CPU and in the CUDA simulator: :func:`sum_of_squares`, :func:`l2_norm`,
:func:`logsumexp` (stable), :func:`geometric_mean`, :func:`count_above` (a ``threshold``
parameter) and :func:`value_range` (max - min, NaN skipped).

They live in :mod:`numbadask.reductions.examples`, beside the machinery they are made
with; this module is their public name.

>>> import numpy as np
>>> from numbadask.examples import l2_norm
>>> float(l2_norm(np.array([3.0, 4.0])).compute())
5.0
"""

from numbadask.reductions.examples import count_above, geometric_mean, l2_norm, logsumexp, sum_of_squares, value_range

__all__ = ["count_above", "geometric_mean", "l2_norm", "logsumexp", "sum_of_squares", "value_range"]
