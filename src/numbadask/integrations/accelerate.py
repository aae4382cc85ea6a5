"""``numbadask.accelerate()``: numbadask's kernels under code that calls ``dask.array``.

Dask has no hook that routes ``da.mean`` or ``x.mean()`` to another library, and
xarray's reductions of Dask-backed data call ``dask.array``'s functions (through NumPy's
``__array_function__``: ``np.nanmean(dask_array)`` runs ``dask.array.nanmean``).  So
:class:`accelerate` replaces dask.array's reduction functions, in every place Dask and
xarray look them up, by routers that send each call either to numbadask's function of
the same name or to dask.array's own, and puts dask.array's back when the last
``accelerate`` is restored.

Which calls numbadask takes is decided per call, in one function (:func:`claims`): a
Dask array (legacy or query-planning) of a bool, integer or float dtype whose chunks are
exactly ``numpy.ndarray`` or ``cupy.ndarray``, with only arguments numbadask's function
takes.  Everything else (complex, datetime, object input; ndarray subclasses, sparse or
masked chunks; ``out=``; ...) runs dask.array's own function, unchanged.  A routed
call answers as dask.array's would in one more way: without NumPy's empty-slice warnings
("Mean of empty slice", "All-NaN slice encountered"), which dask.array does not give
and numbadask's own functions do.

Under Dask's query planning (``DASK_ARRAY__QUERY_PLANNING=True``) the same names are
replaced in the same places, so ``da.mean(x)`` and the expression ``Array``'s methods
(``x.mean()``) route as on legacy Arrays.  There dask.array (2026.8) refuses ``var``,
``std``, ``ptp`` and the arg-reductions (``NotImplementedError``); a call of those that
numbadask claims is computed, NumPy's answer (the README's "Differences from
dask.array" lists it).  NumPy's functions of an expression Array (``np.mean(x)``), and
so xarray's reductions, are not routed: dask raises ``NotImplementedError`` in the
expression Array's ``__array_function__``, and xarray (2026.9) could not hold the
result anyway (the expression Array has no ``__array__``, so xarray's ``NamedArray``
turns it into an object array of lazy arrays); they keep dask's error.

Routing is on only inside an ``accelerate`` block, in the thread (more exactly, the
:mod:`contextvars` context) that entered it: the replaced functions stay installed while
any block is open anywhere, but a call in another thread goes to dask.array's function.

Examples
--------
>>> import dask.array as da, numbadask
>>> x = da.arange(12.0, chunks=5)
>>> original = da.mean
>>> with numbadask.accelerate():
...     float(x.mean().compute()), float(da.std(x).compute()) > 0
(5.5, True)
>>> numbadask.accelerate.routed()["mean"] >= 1, da.mean is original
(True, True)

Called once, it stays on until its handle is restored:

>>> handle = numbadask.accelerate()
>>> numbadask.accelerate.active()
True
>>> handle.restore()
>>> numbadask.accelerate.active(), da.mean is original
(False, True)
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import math
import threading
from collections import Counter
from typing import Any

import numpy as np

from numbadask.integrations import grouped

__all__ = ["NAMES", "accelerate", "claims"]

#: The reductions of dask.array that numbadask has (``ptp`` where dask.array has it).
NAMES: tuple[str, ...] = (
    "sum", "mean", "nansum", "nanmean", "min", "max", "nanmin", "nanmax", "ptp",
    "argmin", "argmax", "nanargmin", "nanargmax", "var", "std", "nanvar", "nanstd",
)  # fmt: skip

# The open blocks of this context, innermost last: (handle key, enabled) pairs.  A tuple
# (immutable), so a thread or task that copied the context cannot change ours.
_STACK: contextvars.ContextVar[tuple[tuple[int, bool], ...]] = contextvars.ContextVar("numbadask_accelerate", default=())

_LOCK = threading.RLock()
_installs = 0  # open enabled handles, all threads together
_saved: list[tuple[Any, str, Any, Any]] = []  # (namespace, key, original, router)
_routed: Counter[str] = Counter()
_declined: Counter[str] = Counter()
_keys = itertools.count()  # a handle's key in _STACK (not id(): ids are reused)


def _on() -> bool:
    stack = _STACK.get()
    return bool(stack) and stack[-1][1]


# --- which calls numbadask takes -------------------------------------------------


def _numbadask_function(name: str) -> Any:
    from numbadask.reductions import registry

    return registry.function(name)


@functools.lru_cache(maxsize=1)
def _deps() -> tuple[Any, Any, Any, Any]:
    """``(dask.array, kernel_reduces, REGISTRY, NUMPY_WARNINGS)``, imported on first use
    (``import numbadask`` imports neither dask.array nor, before this module, the
    reductions) and then held: an import statement inside :func:`claims` cost about
    3 us of its 8-12 us per call (measured here)."""
    import dask.array as da

    from numbadask.engine.calls import NUMPY_WARNINGS
    from numbadask.engine.checks import kernel_reduces
    from numbadask.reductions.registry import REGISTRY

    return da, kernel_reduces, REGISTRY, NUMPY_WARNINGS


@functools.lru_cache(maxsize=None)
def _numbadask_parameters(name: str) -> frozenset[str]:
    params = inspect.signature(_numbadask_function(name)).parameters
    return frozenset(p for p in params if p not in ("a", "device"))


def claims(name: str, a: Any, kwargs: dict[str, Any]) -> bool:
    """Whether numbadask computes ``dask.array.<name>(a, **kwargs)`` under accelerate().

    The one place this is decided (numbadask's own ``handles()`` can replace it):
    ``a`` is a ``dask.array.Array`` (legacy, or the expression-backed Array of query
    planning), its dtype is bool, integer or float, its chunk type (``a._meta``) is
    exactly ``numpy.ndarray`` or ``cupy.ndarray``, and each argument in ``kwargs`` (the
    ones the caller gave, other than ``a``) is one numbadask's function takes with a
    value it accepts.  Today that leaves out: an argument numbadask's function lacks;
    ``out=`` under query planning (dask's expression Arrays cannot be overwritten); a
    ``dtype=`` that is not bool, integer or float; an integer ``dtype=`` for nanmean
    of float input (NumPy refuses it, dask.array answers); argmin/argmax, nanmin/nanmax
    (dask.array refuses them) and ``mean`` with an integer ``dtype=``, over arrays of
    unknown chunk sizes.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> claims("sum", x, {}), claims("sum", x.astype(complex), {}), claims("sum", x, {"where": x > 0})
    (True, False, False)
    """
    da, kernel_reduces, REGISTRY, _ = _deps()
    if not isinstance(a, da.Array):  # the legacy class, or the expression class under query planning
        return False
    if not kernel_reduces(a):
        return False
    dtype = a.dtype
    accepted = _numbadask_parameters(name)
    if any(k not in accepted for k in kwargs):
        return False
    if "out" in kwargs and _query_planning():
        return False  # numbadask's out= (dask's handle_out) overwrites legacy Arrays only
    r = REGISTRY[name]
    if kwargs.get("dtype") is not None:
        try:
            kind = np.dtype(kwargs["dtype"]).kind
        except TypeError:
            return False
        if kind not in "biuf":
            return False
        if kind in "biu" and r.integer_dtype == "divide":
            if r.skipna and dtype.kind == "f":
                return False  # np.nanmean refuses an integer dtype= on float input; dask answers
            if any(math.isnan(s) for s in a.shape):
                return False
    if (r.indexed or name in ("nanmin", "nanmax")) and any(math.isnan(s) for s in a.shape):
        return False  # dask.array's own rule: its error, or its arg-reduction over one unknown chunk
    return True


# --- the routers -----------------------------------------------------------------

def _router(name: str, original: Any) -> Any:
    """A function with ``original``'s signature: numbadask's ``name`` for the calls
    :func:`claims` gives it inside an accelerate() block, ``original`` for all others.
    A call is read with ``original``'s parameters, or, where ``original`` takes only
    ``*args, **kwargs`` (dask's query-planning placeholders), with those of dask's own
    function of that name (:func:`_call_signature`)."""
    sig = _call_signature(name, original)
    defaults = {p.name: p.default for p in sig.parameters.values()}
    first = next(iter(sig.parameters))

    @functools.wraps(original)
    def route(*args: Any, **kwargs: Any) -> Any:
        if not _on():
            return original(*args, **kwargs)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:
            return original(*args, **kwargs)  # dask's own error for a wrong call
        given = dict(bound.arguments)
        a = given.pop(first)
        # Arguments left at dask's default (out=None, ...) are not passed on.
        given = {k: v for k, v in given.items() if not (v is defaults.get(k) or _is_default(v, defaults.get(k)))}
        if claims(name, a, given):
            with _LOCK:
                _routed[name] += 1
            NUMPY_WARNINGS = _deps()[3]
            quiet = NUMPY_WARNINGS.set(False)  # dask.array gives no empty-slice warnings
            try:
                return _numbadask_function(name)(a, **given)
            finally:
                NUMPY_WARNINGS.reset(quiet)
        with _LOCK:
            _declined[name] += 1
        return original(*args, **kwargs)

    route.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    route.__numbadask_original__ = original  # type: ignore[attr-defined]
    return route


def _is_default(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty or value is None or default is None:
        return False
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # noqa: BLE001 - an array or odd object: not the default
        return False


# --- where Dask and xarray look the functions up: the Dask internals read here -------
#
# Everything this module knows of Dask's insides is in this section.  Public API first:
# ``dask.array.array_expr_enabled()`` and ``dask.array.Array`` (the expression class under
# query planning).  Beyond it: the modules ``dask.array.reductions`` and
# ``dask.array.routines`` (the Array methods, legacy and expression, import their function
# from ``dask.array.reductions`` at call time), ``dask.array.core._HANDLED_FUNCTIONS``
# (the legacy ``__array_function__``'s alias table, ``np.amax`` -> ``dask.array.max``)
# and the shape of dask's query-planning placeholders (``*args, **kwargs``).


@functools.lru_cache(maxsize=1)
def _query_planning() -> bool:
    """Whether ``dask.array.Array`` is the expression-backed class (read once: dask
    refuses to switch after ``dask.array`` is imported)."""
    import dask.array as da

    return bool(getattr(da, "array_expr_enabled", lambda: False)())


def _namespaces() -> list[Any]:
    """Where Dask and xarray look the functions up: the ``dask.array`` namespace (also
    the legacy Array's ``__array_function__``, so NumPy's functions and xarray),
    ``dask.array.reductions`` (both Array classes' methods import from there at call
    time), ``dask.array.routines`` (ptp) and the legacy ``__array_function__``'s table of
    aliases (``np.amax`` -> ``dask.array.max``)."""
    import dask.array as da
    import dask.array.core
    import dask.array.reductions
    import dask.array.routines

    return [da, dask.array.reductions, dask.array.routines, dask.array.core._HANDLED_FUNCTIONS]


def _call_signature(name: str, original: Any) -> inspect.Signature:
    """The parameters a call of dask's ``original`` is read with: its own, or where it
    has none named (under query planning ``dask.array.argmin``, ``ptp``, ... are
    placeholders taking ``*args, **kwargs`` that raise ``NotImplementedError``) those
    of dask's own ``name`` in ``dask.array.reductions`` or ``dask.array.routines``."""
    sig = inspect.signature(original)
    named = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if next(iter(sig.parameters.values())).kind in named:
        return sig
    import dask.array.reductions
    import dask.array.routines

    for home in (dask.array.reductions, dask.array.routines):
        func = getattr(home, name, None)
        if callable(func):
            func = getattr(func, "__numbadask_original__", func)
            return inspect.signature(func)
    raise RuntimeError(f"dask has no dask.array.{name} with named parameters")


#: What an install replaces, worked out once and reused while dask's namespaces hold
#: the same functions: ``(key, [(namespace, name, original, router), ...])``.  Working it
#: out (and reading each router's signature) on every outermost block cost ~1.8 ms.
_plan: tuple[Any, list[tuple[Any, Any, Any, Any]]] | None = None


def _replacements() -> list[tuple[Any, Any, Any, Any]]:
    """Each ``(namespace, name, dask's function, its router)`` to install."""
    global _plan
    spaces = _namespaces()
    modules = [space for space in spaces if not isinstance(space, dict)]
    tables = [space for space in spaces if isinstance(space, dict)]
    key = (tuple(len(t) for t in tables), tuple(id(getattr(m, name, None)) for m in modules for name in NAMES))
    if _plan is not None and _plan[0] == key:
        return _plan[1]
    # The functions of each name: dask.array's, and under query planning the other
    # modules' where they differ (dask.array.argmin is then a placeholder).
    originals: dict[int, tuple[str, Any]] = {}
    for name in NAMES:
        for module in modules:
            f = getattr(module, name, None)
            if callable(f):
                originals.setdefault(id(f), (name, f))
    routers = {i: _router(name, f) for i, (name, f) in originals.items()}
    found = [(m, name, getattr(m, name, None)) for m in modules for name in NAMES]
    found += [(t, k, v) for t in tables for k, v in t.items()]
    plan = [(space, k, v, routers[id(v)]) for space, k, v in found if id(v) in routers and originals[id(v)][1] is v]
    _plan = (key, plan)  # the plan holds the originals, so their ids in the key stay theirs
    return plan


def _install() -> None:
    from numbadask.engine.handoff import remember_dask_functions

    # numbadask's hand-offs must reach dask's own functions, not these routers.
    remember_dask_functions()
    for space, key, original, router in _replacements():
        if isinstance(space, dict):
            if space.get(key) is original:
                _saved.append((space, key, original, router))
                space[key] = router
        elif getattr(space, key, None) is original:
            _saved.append((space, key, original, router))
            setattr(space, key, router)
    found = grouped.replacement(_on, _count)  # xarray's grouped reductions, through flox
    if found is not None:
        _saved.append(found)
        setattr(found[0], found[1], found[3])


def _count(name: str, routed: bool) -> None:  # for the grouped router
    with _LOCK:
        (_routed if routed else _declined)[name] += 1


def _uninstall() -> None:
    while _saved:
        space, key, original, router = _saved.pop()
        if isinstance(space, dict):
            if space.get(key) is router:
                space[key] = original
        elif getattr(space, key, None) is router:
            setattr(space, key, original)


class accelerate:  # noqa: N801 - used like a function: numbadask.accelerate()
    """Route dask.array's reductions to numbadask's, in a ``with`` block or from a call.

    ``numbadask.accelerate()`` turns routing on at once, in the calling thread (its
    :mod:`contextvars` context), and returns a handle: used as a context manager, the
    block's end restores; called once, ``handle.restore()`` does.  ``accelerate(False)``
    turns routing off until restored (a block inside an accelerate block that runs
    dask.array's own functions).  Blocks and handles nest and may be restored in any
    order; ``restore()`` twice is a no-op.

    What is routed: ``dask.array``'s :data:`NAMES` (also in ``dask.array.reductions``
    and ``.routines``), the ``Array`` methods that call them (``x.sum()``, ``x.argmin()``,
    ...), NumPy's functions on Dask arrays (``np.amax(x)``) and so xarray's reductions
    of Dask-backed data; each call to numbadask where :func:`claims` says so, else to
    dask.array.  Under query planning the same functions and the expression Array's
    methods, not NumPy's functions (nor xarray's reductions): dask's
    ``__array_function__`` refuses them there.  And xarray's groupby, resample and
    groupby_bins reductions, where flox is installed and xarray imported, to
    :func:`numbadask.groupby_reduce` (:mod:`numbadask.integrations.grouped`).

    Which calls: :meth:`claims`.  How to check: :meth:`routed` counts the calls numbadask
    computed, by name, :meth:`declined` those handed back inside a block, :meth:`active`
    says whether routing is on here.  The routers are installed while any handle is
    open in any thread; the originals are back, identical, when the last is restored.

    Parameters
    ----------
    enabled : bool, default True
        False: turn routing off in this context until restored.
    """

    def __init__(self, enabled: bool = True) -> None:
        global _installs
        self.enabled = bool(enabled)
        self._open = True
        self._key = next(_keys)
        if self.enabled:
            with _LOCK:
                if _installs == 0:
                    _install()
                _installs += 1
        _STACK.set((*_STACK.get(), (self._key, self.enabled)))

    def __enter__(self) -> accelerate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """End this handle: routing as it was before it (in this context); dask.array's
        functions put back when no enabled handle is left open."""
        global _installs
        if not self._open:
            return
        stack = _STACK.get()
        mine = [i for i, (key, _) in enumerate(stack) if key == self._key]
        if not mine:
            raise RuntimeError("restore() an accelerate() handle in the thread (context) that created it")
        i = mine[-1]
        _STACK.set(stack[:i] + stack[i + 1 :])
        self._open = False
        if self.enabled:
            with _LOCK:
                _installs -= 1
                if _installs == 0:
                    _uninstall()

    def __repr__(self) -> str:
        state = "open" if self._open else "restored"
        return f"numbadask.accelerate({self.enabled}) [{state}]"

    #: :func:`claims`, the predicate deciding which calls numbadask computes.
    claims = staticmethod(claims)

    @staticmethod
    def active() -> bool:
        """Whether calls in this thread (context) are routed now."""
        return _on()

    @staticmethod
    def installed() -> bool:
        """Whether the routers are in dask.array now (any thread has a handle open)."""
        return _installs > 0

    @staticmethod
    def routed() -> dict[str, int]:
        """Calls numbadask computed under accelerate(), by name, since import (or
        :meth:`reset_counts`)."""
        with _LOCK:
            return dict(_routed)

    @staticmethod
    def declined() -> dict[str, int]:
        """Calls inside an accelerate() block handed to dask.array's (or flox's) own."""
        with _LOCK:
            return dict(_declined)

    @staticmethod
    def reset_counts() -> None:
        """Set :meth:`routed` and :meth:`declined` back to empty."""
        with _LOCK:
            _routed.clear()
            _declined.clear()
