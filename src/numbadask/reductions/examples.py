"""User-defined reductions that ship with numbadask, each a few lines of plain Python
given to :func:`numbadask.reduction` (read the source: it is the tutorial).

Each is called like the built-ins, ``f(a, axis=None, keepdims=False,
split_every=None, device="auto")``, and returns a lazy float64 Dask array.

>>> import numpy as np
>>> from numbadask import examples
>>> x = np.array([[1.0, 2.0, 4.0], [3.0, 4.0, 12.0]])
>>> examples.l2_norm(x, axis=1).compute()
array([ 4.58257569, 13.        ])
>>> examples.count_above(x, threshold=3.5).compute()
np.float64(3.0)
>>> examples.value_range(x, axis=0).compute()
array([2., 2., 8.])
"""

from __future__ import annotations

import math

from numbadask.reductions.custom import reduction


def _add(a: tuple[float], b: tuple[float]) -> tuple[float]:
    return (a[0] + b[0],)


def _add2(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (a[0] + b[0], a[1] + b[1])


@reduction(merge=_add, identity=(0.0,))
def sum_of_squares(x: float) -> tuple[float]:
    """Sum of x**2 (NumPy: ``(a**2).sum(axis)``)."""
    return (x * x,)


def _sqrt_first(state: tuple[float]) -> float:
    return math.sqrt(state[0])


@reduction(merge=_add, identity=(0.0,), finalize=_sqrt_first)
def l2_norm(x: float) -> tuple[float]:
    """Euclidean norm, sqrt of the sum of x**2 (NumPy: ``np.linalg.norm`` over axes)."""
    return (x * x,)


def _lse_merge(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    # The state is (running max m, sum of exp(x - m)): rescale the smaller side to the
    # larger max, so no exp overflows however large x is.
    m = max(a[0], b[0])
    if m == -math.inf:  # both empty (or all -inf): exp(-inf - -inf) would be NaN
        return (m, a[1] + b[1])
    return (m, a[1] * math.exp(a[0] - m) + b[1] * math.exp(b[0] - m))


def _lse_finalize(state: tuple[float, float]) -> float:
    return state[0] + math.log(state[1])


@reduction(merge=_lse_merge, identity=(-math.inf, 0.0), finalize=_lse_finalize)
def logsumexp(x: float) -> tuple[float, float]:
    """log(sum(exp(x))), stable for any x (SciPy: ``scipy.special.logsumexp``)."""
    return (x, 1.0)


def _exp_mean(state: tuple[float, float]) -> float:
    return math.exp(state[0] / state[1])


@reduction(merge=_add2, identity=(0.0, 0.0), finalize=_exp_mean)
def geometric_mean(x: float) -> tuple[float, float]:
    """exp(mean(log(x))) (SciPy: ``scipy.stats.gmean``); NaN for negative values."""
    return (math.log(x), 1.0)


@reduction(merge=_add, identity=(0.0,))
def count_above(x: float, threshold: float = 0.0) -> tuple[float]:
    """How many values exceed ``threshold`` (a call-time parameter; NumPy:
    ``(a > threshold).sum(axis)``), as float64."""
    return (1.0 if x > threshold else 0.0,)


def _minmax_merge(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (min(a[0], b[0]), max(a[1], b[1]))


def _range(state: tuple[float, float]) -> float:
    return state[1] - state[0] if state[0] <= state[1] else math.nan


@reduction(merge=_minmax_merge, identity=(math.inf, -math.inf), finalize=_range, skipna=True)
def value_range(x: float) -> tuple[float, float]:
    """max - min of the non-NaN values (NumPy: ``np.nanmax(a) - np.nanmin(a)``); NaN
    for an all-NaN or empty slice."""
    return (x, x)


__all__ = ["count_above", "geometric_mean", "l2_norm", "logsumexp", "sum_of_squares", "value_range"]
