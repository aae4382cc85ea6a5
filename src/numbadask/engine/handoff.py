"""The hand-off: input numbadask has no kernel for goes to dask.array's own function.

dask.array's reductions are remembered by name the first time any is needed
(:func:`remember_dask_functions`), before anything (``numbadask.accelerate()``) can
replace them, so a hand-off always reaches dask.array's code.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numbadask.engine.definition import Reduction


#: The names of dask.array's reductions numbadask answers for (``count`` and
#: ``moments`` have no dask.array twin: their hand-off is built from these).
DASK_NAMES: tuple[str, ...] = (
    "sum", "mean", "var", "std", "min", "max", "ptp", "argmin", "argmax", "nansum", "nanmean",
    "nanvar", "nanstd", "nanmin", "nanmax", "nanargmin", "nanargmax",
)  # fmt: skip

_DASK_FUNCTIONS: dict[str, Any] = {}


def _is_dask_own(func: Any) -> bool:
    return callable(func) and str(getattr(func, "__module__", "")).startswith("dask.")


def remember_dask_functions() -> dict[str, Any]:
    """dask.array's own reduction functions by name, read once, the first time any is
    needed: the functions numbadask hands calls to.  Whatever replaces
    ``dask.array.sum`` and its kin later (``numbadask.accelerate()``) must call this
    first, so that a hand-off reaches dask.array's code and not numbadask again.

    Examples
    --------
    >>> remember_dask_functions()["sum"].__module__
    'dask.array.reductions'
    """
    if not _DASK_FUNCTIONS:
        import dask.array as da
        import dask.array.reductions
        import dask.array.routines

        found = {}
        for name in DASK_NAMES:
            for home in (dask.array.reductions, dask.array.routines, da):
                func = getattr(home, name, None)
                func = inspect.unwrap(func) if callable(func) else func  # a router made by functools.wraps
                if _is_dask_own(func):
                    found[name] = func
                    break
        _DASK_FUNCTIONS.update(found)
    return _DASK_FUNCTIONS


def dask_function(name: str) -> Any:
    """dask.array's own function ``name`` (see :func:`remember_dask_functions`)."""
    func = _DASK_FUNCTIONS.get(name) or remember_dask_functions().get(name)
    if func is None:
        raise RuntimeError(
            f"dask.array.{name} is not dask's own function (replaced before numbadask could remember it): "
            "call numbadask.engine.handoff.remember_dask_functions() before replacing dask.array's reductions"
        )
    return func


def hand_off(r: Reduction, a: Any, axis: Any, dtype: Any, keepdims: Any, split_every: Any, out: Any, ddof: Any) -> Any:
    """dask.array's own answer to the call: its function of ``r``'s name with the
    call's arguments (``device`` is not used: dask.array computes where the chunks
    are).  :func:`numbadask.ptp` takes dask.array's max minus its min (``dask.array.ptp``
    takes no ``keepdims``), :func:`numbadask.count` dask.array's sum of ``a == a`` (NaN
    and NaT are not equal to themselves).  Input that is not a Dask array is wrapped by
    ``dask.array.asanyarray`` first, as dask.array's reductions wrap it themselves (its
    arg-reductions do not, and fail on a NumPy array)."""
    import dask.array as da
    from dask.array.core import handle_out

    x = da.asanyarray(a)
    kwargs: dict[str, Any] = {"axis": axis, "keepdims": keepdims, "split_every": split_every}
    if r.name == "ptp":
        return handle_out(out, dask_function("max")(x, **kwargs) - dask_function("min")(x, **kwargs))
    if r.name == "count":
        return dask_function("sum")(x == x, dtype=np.int64, out=out, **kwargs)
    if r.integer_dtype is not None:
        kwargs["dtype"] = dtype
    if "ddof" in r.options:
        kwargs["ddof"] = ddof
    return dask_function(r.name)(x, out=out, **kwargs)
