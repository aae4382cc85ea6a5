"""Every built-in reduction, by name: the one table the public functions, the CLI's
``--stats`` list and the tests read.

Examples
--------
>>> from numbadask.reductions.registry import REGISTRY, nan_version
>>> REGISTRY["nanvar"].skipna, REGISTRY["nanvar"].nan_twin, nan_version("mean").name
(True, 'var', 'nanmean')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numbadask.engine import kernels
from numbadask.engine.definition import Reduction
from numbadask.reductions import extremes, indices, sums, variances

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


#: Every chunk kernel a built-in reduction may pick (the hand-written ones and the
#: non-NaN count built from a user-defined reduction).
KERNELS = (*kernels.BUILT_IN, sums.NON_NAN_COUNT)

_FAMILIES = (sums, extremes, indices, variances)


def function(name: str) -> Callable[..., Any]:
    """The public function ``numbadask.<name>`` of a registered reduction, or of
    ``moments``, read from the family module that declares it.

    Examples
    --------
    >>> function("nanmean").__name__, function("moments").__name__
    ('nanmean', 'moments')
    """
    for family in _FAMILIES:
        found = getattr(family, name, None)
        if callable(found) and getattr(found, "__name__", None) == name:
            return found
    raise KeyError(f"no numbadask reduction named {name!r}")


def nan_version(name: str) -> Reduction:
    """The NaN-skipping version of reduction ``name`` (itself when it has none)."""
    for r in REGISTRY.values():
        if r.nan_twin == name:
            return r
    return REGISTRY[name]
