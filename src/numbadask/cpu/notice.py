"""One line on stderr when numbadask starts compiling kernels, so that a first call on
an empty cache (seconds of Numba compiling) is not silence.

:func:`register` (called by :func:`numbadask.cpu.cache.install`) listens to Numba's
``numba:compile`` event, which fires for a real compile only, after the on-disk cache
had no entry: loading a cached kernel fires nothing.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from numba.core import event


def is_numbadask_function(py_func: Any) -> bool:
    """True for a Python function of numbadask's: a module of the package (the walk
    cases bound by :mod:`numbadask.cpu.walker` keep its module name) or a module
    generated for a user-defined reduction (``numbadask_reduction_<hash>``).

    Examples
    --------
    >>> import json
    >>> is_numbadask_function(register), is_numbadask_function(json.dumps)
    (True, False)
    """
    module = getattr(py_func, "__module__", None) or ""
    return module == "numbadask" or module.startswith(("numbadask.", "numbadask_reduction_"))


class CompileNotice(event.Listener):
    """Print one line at the first compile of a numbadask function in this process.

    Printed only if the notice is enabled (:func:`set_compile_notice`; the CLI turns it
    off for ``--json`` and for ``numbadask warm``, which prints its own report), the
    function is numbadask's (:func:`is_numbadask_function`: the user's own ``@njit``
    functions are not ours to announce) and ``sys.stderr.isatty()`` is true at that
    moment: never into a file, a pipe, a notebook, a Dask worker's log or pytest's
    captured output.  Once printed, never again in this process.  The dtype named is
    that of the kernel's first array argument (bool input is read as uint8).
    """

    def __init__(self) -> None:
        self.enabled = True
        self.shown = False
        self.registered = False
        self._lock = threading.Lock()

    def on_start(self, ev: event.Event) -> None:
        if self.shown or not self.enabled:
            return
        data = ev.data or {}
        if not is_numbadask_function(getattr(data.get("dispatcher"), "py_func", None)):
            return
        stream = sys.stderr
        try:
            terminal = stream is not None and stream.isatty()
        except (AttributeError, ValueError):  # a replaced or closed stream
            terminal = False
        if not terminal:
            return
        with self._lock:
            if self.shown:
                return
            self.shown = True
        print(f"numbadask: compiling kernels for {_dtype_of(data.get('args', ()))} (first use; cached afterwards)...", file=stream, flush=True)

    def on_end(self, ev: event.Event) -> None:
        pass


def _dtype_of(args: Any) -> str:
    """The dtype of the first array among Numba argument types, as the notice names it."""
    for arg in args or ():
        dtype = getattr(arg, "dtype", None)
        if dtype is not None:
            return "bool/uint8" if str(dtype) == "uint8" else str(dtype)
    return "a new input type"


#: The notice of this process.
NOTICE = CompileNotice()


def register() -> None:
    """Listen to Numba's compiles (once; a second call changes nothing).

    Examples
    --------
    >>> register()
    >>> NOTICE.registered
    True
    """
    with NOTICE._lock:
        if not NOTICE.registered:
            event.register("numba:compile", NOTICE)
            NOTICE.registered = True


def set_compile_notice(enabled: bool) -> bool:
    """Turn the notice on or off; returns the old setting.

    Examples
    --------
    >>> old = set_compile_notice(False)
    >>> set_compile_notice(old)
    False
    """
    old, NOTICE.enabled = NOTICE.enabled, bool(enabled)
    return old
