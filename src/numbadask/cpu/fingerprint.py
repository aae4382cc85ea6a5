"""A fingerprint of what a user's function compiles to: the key of its cached kernels.

Numba compiles a function from its bytecode and freezes every global it reads (a
number, a tuple, an array, another jitted function) into the machine code.  So two
functions may share compiled code only when their bytecode, constants and every value
they read agree; :func:`fingerprint` hashes exactly those, following the functions
they call.  Anything it cannot vouch for (an object whose value it cannot read) makes
it give up: such a reduction is compiled in each process instead of loaded from disk,
never loaded stale.
"""

from __future__ import annotations

import hashlib
import types
from typing import Any

import numpy as np


class Unfingerprintable(TypeError):
    """A function reads an object whose value :func:`fingerprint` cannot hash."""


def fingerprint(*funcs: Any) -> str | None:
    """The sha256 (hex) of what ``funcs`` compile to, or None when it cannot be told.

    Examples
    --------
    >>> def f(x):
    ...     return (x + 1.0,)
    >>> def g(x):
    ...     return (x + 2.0,)
    >>> fingerprint(f) == fingerprint(f), fingerprint(f) == fingerprint(g)
    (True, False)
    >>> import threading
    >>> LOCK = threading.Lock()
    >>> def h(x):
    ...     return (x if LOCK else 0.0,)
    >>> fingerprint(h) is None  # a global whose value it cannot hash
    True
    """
    digest = hashlib.sha256()
    try:
        for func in funcs:
            digest.update(_value(func, set()))
    except Unfingerprintable:
        return None
    return digest.hexdigest()


def _value(obj: Any, seen: set[int]) -> bytes:
    """The bytes that stand for ``obj`` as a global or constant of compiled code."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return repr((type(obj).__name__, obj)).encode()
    if isinstance(obj, (tuple, list)):
        return b"(" + b",".join(_value(o, seen) for o in obj) + b")"
    if isinstance(obj, np.ndarray):
        return b"array" + repr((obj.dtype.str, obj.shape)).encode() + np.ascontiguousarray(obj).tobytes()
    if isinstance(obj, (np.generic, np.dtype)):
        return repr((type(obj).__name__, obj)).encode()
    if isinstance(obj, types.ModuleType):
        return b"module " + obj.__name__.encode()
    if isinstance(obj, (types.BuiltinFunctionType, np.ufunc)) or (isinstance(obj, type) and obj.__module__ in ("builtins", "numpy")):
        return b"builtin " + f"{getattr(obj, '__module__', '')}.{getattr(obj, '__name__', '')}".encode()
    py_func = getattr(obj, "py_func", None)  # a Numba dispatcher
    if isinstance(py_func, types.FunctionType):
        return b"jit " + repr(sorted(getattr(obj, "targetoptions", {}).items())).encode() + _value(py_func, seen)
    if isinstance(obj, types.FunctionType):
        return _function(obj, seen)
    if isinstance(obj, types.CodeType):
        return _code(obj, seen)
    raise Unfingerprintable(f"cannot fingerprint a {type(obj).__name__}")


def _function(func: types.FunctionType, seen: set[int]) -> bytes:
    if id(func) in seen:  # recursion: its code is being hashed already
        return b"recursive " + func.__qualname__.encode()
    seen.add(id(func))
    parts = [b"function", _code(func.__code__, seen), _value(func.__defaults__, seen)]
    for cell in func.__closure__ or ():
        parts.append(_value(cell.cell_contents, seen))
    for name in sorted(_names(func.__code__)):
        if name in func.__globals__:
            parts.append(name.encode() + b"=" + _value(func.__globals__[name], seen))
    return b"|".join(parts)


def _names(code: types.CodeType) -> set[str]:
    """Global (and attribute) names read by ``code`` and the code nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _code(code: types.CodeType, seen: set[int]) -> bytes:
    consts = b",".join(_code(c, seen) if isinstance(c, types.CodeType) else _value(c, seen) for c in code.co_consts)
    return b"code" + code.co_code + b"|" + consts + b"|" + ",".join(code.co_names).encode() + b"|" + repr(code.co_argcount).encode()
