"""Every built-in reduction, by name: the one table the public functions, the CLI's
``--stats`` list and the tests read.

Examples
--------
>>> from numbadask.registry import REGISTRY, nan_version
>>> REGISTRY["nanvar"].skipna, REGISTRY["nanvar"].nan_twin, nan_version("mean").name
(True, 'var', 'nanmean')
"""

from __future__ import annotations

from . import extremes, indices, sums, variances
from .definition import Reduction

_ORDER = (
    sums.SUM, sums.MEAN, variances.VAR, variances.STD, extremes.MIN, extremes.MAX, extremes.PTP, sums.COUNT,
    indices.ARGMIN, indices.ARGMAX, sums.NANSUM, sums.NANMEAN, variances.NANVAR, variances.NANSTD,
    extremes.NANMIN, extremes.NANMAX, indices.NANARGMIN, indices.NANARGMAX,
)  # fmt: skip

#: The reductions that are public functions of the same name, in the CLI's order.
REGISTRY: dict[str, Reduction] = {r.name: r for r in _ORDER}

#: What each family module declares; equal to the registry's values (tested).
DECLARED: tuple[Reduction, ...] = (*sums.REDUCTIONS, *extremes.REDUCTIONS, *indices.REDUCTIONS, *variances.REDUCTIONS)

#: The reduction behind :func:`numbadask.moments` (its state, finished field by field).
MOMENTS = variances.MOMENTS


def nan_version(name: str) -> Reduction:
    """The NaN-skipping version of reduction ``name`` (itself when it has none)."""
    for r in REGISTRY.values():
        if r.nan_twin == name:
            return r
    return REGISTRY[name]
