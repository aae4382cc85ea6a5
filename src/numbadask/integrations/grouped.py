"""xarray's grouped reductions under ``numbadask.accelerate()``: flox.xarray's
``groupby_reduce`` routed to :func:`numbadask.groupby_reduce`.

xarray's groupby, resample and groupby_bins reductions call
``flox.xarray.xarray_reduce`` (imported at call time, when ``use_flox`` is on and flox
is installed), which calls the ``groupby_reduce`` of its module's namespace once per
variable.  That one name is replaced; flox's own ``flox.core.groupby_reduce`` stays,
and numbadask hands it what it has no kernel for.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import Any


def router(original: Any, on: Callable[[], bool], count: Callable[[str, bool], None]) -> Any:
    """flox.xarray's ``groupby_reduce``: numbadask's for the calls it takes while
    ``on()`` (inside an accelerate() block), flox's for all others; ``count(name,
    routed)`` is told of each call made while on."""

    @functools.wraps(original)
    def route(array: Any, *by: Any, **kwargs: Any) -> Any:
        from numbadask.reductions import groupby

        if not on():
            return original(array, *by, **kwargs)
        taken = groupby.leaves_to_flox(array, by, kwargs) is None
        count("groupby_reduce", taken)
        return groupby.groupby_reduce(array, *by, **kwargs) if taken else original(array, *by, **kwargs)

    route.__numbadask_original__ = original  # type: ignore[attr-defined]
    return route


def replacement(on: Callable[[], bool], count: Callable[[str, bool], None]) -> tuple[Any, str, Any, Any] | None:
    """``(flox.xarray, "groupby_reduce", flox's function, its router)`` to install, or
    None: flox not installed, xarray not imported (an accelerate() opened before
    ``import xarray`` leaves xarray's groupby alone), or already routed."""
    if "xarray" not in sys.modules or importlib.util.find_spec("flox") is None:
        return None
    import flox.xarray

    original = flox.xarray.groupby_reduce
    if hasattr(original, "__numbadask_original__"):
        return None
    return flox.xarray, "groupby_reduce", original, router(original, on, count)
