"""What a user-defined reduction's definition must satisfy, checked when it is made
(the identity, the element parameters of ``map``) and at its first call (the laws of
``merge``: associative, commutative, with ``identity`` neutral).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np


def qualname(func: Any) -> str:
    return getattr(func, "__qualname__", repr(func))


def check_identity(identity: Any, map: Any) -> tuple[float, ...]:
    if not isinstance(identity, tuple) or not identity:
        raise ValueError(
            f"numbadask.reduction {qualname(map)}: identity must be a non-empty tuple of numbers "
            f"(one per state field), got {identity!r}"
        )
    try:
        return tuple(float(v) for v in identity)
    except (TypeError, ValueError) as err:
        raise ValueError(f"numbadask.reduction {qualname(map)}: identity fields must be numbers, got {identity!r}") from err


def check_arrays(arrays: Any, map: Any) -> int:
    if isinstance(arrays, bool) or not isinstance(arrays, (int, np.integer)) or arrays < 1:
        raise ValueError(f"numbadask.reduction {qualname(map)}: arrays must be a positive int (how many of map's first parameters are array elements), got {arrays!r}")
    return int(arrays)


def map_parameters(map: Any, arrays: int = 1) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """The names of ``map``'s first ``arrays`` parameters (the elements), and its
    parameters after them with their defaults (keyword-passable only)."""
    params = list(inspect.signature(map).parameters.values())
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"numbadask.reduction: map function {qualname(map)} cannot take *args or **kwargs")
    elements = params[:arrays]
    if len(elements) < arrays or any(p.kind is p.KEYWORD_ONLY for p in elements):
        if arrays == 1:
            raise ValueError(f"numbadask.reduction: map function {qualname(map)} must take the element x")
        raise ValueError(
            f"numbadask.reduction: map function {qualname(map)} must take one element of each of the arrays=={arrays} arrays "
            f"as its first {arrays} positional parameters; it has {[p.name for p in params]}"
        )
    if arrays > 1:
        defaulted = [p.name for p in elements if p.default is not p.empty]
        if defaulted:
            raise ValueError(
                f"numbadask.reduction: map function {qualname(map)}: its first {arrays} parameters are array elements "
                f"(arrays={arrays}) and take no default; {defaulted} {'has' if len(defaulted) == 1 else 'have'} one"
            )
    return tuple(p.name for p in elements), tuple((p.name, p.default) for p in params[arrays:])


def check_laws(red: Any, merged: Any, states: list[tuple]) -> None:
    """Warn when ``merge`` breaks associativity or commutativity, or ``identity`` is
    not neutral, on a few states (mapped values and merged pairs)."""

    def close(a: tuple, b: tuple) -> bool:
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))

    problems = []
    for i in range(0, len(states) - 2, 3):
        a, b, c = states[i : i + 3]
        if not close(merged(merged(a, b), c), merged(a, merged(b, c))):
            problems.append(f"merge(merge(a, b), c) != merge(a, merge(b, c)) for a={a}, b={b}, c={c}")
        if not close(merged(a, b), merged(b, a)):
            problems.append(f"merge(a, b) != merge(b, a) for a={a}, b={b}")
        if not close(merged(red.identity, a), a):
            problems.append(f"merge(identity, a) != a for identity={red.identity}, a={a}")
    if problems:
        warnings.warn(
            f"numbadask.reduction {red.name!r}: merge {qualname(red.merge)} must be associative and commutative "
            f"with identity {red.identity}, or results depend on the chunking: {problems[0]}",
            UserWarning,
            stacklevel=4,
        )


def guarded(name: str, role: str, func: Any, kernel: Any) -> Any:
    """``kernel`` (which calls the user's ``func``, the ``role`` function of reduction
    ``name``), raising ``TypeError`` naming the reduction, the role and the function
    when it fails, the error chained."""

    def call(*args: Any) -> Any:
        try:
            return kernel(*args)
        except Exception as err:
            what = f"numbadask.reduction {name!r}: {role} function {qualname(func)}"
            raise TypeError(f"{what} failed on the check values {args}: {type(err).__name__}: {err}") from err

    return call
