"""Scratch memory the kernel launches reuse: block partials, finish counters and small
constant arrays, kept per thread and per device instead of allocated per chunk.

Launches from one thread go to one stream in order (the legacy default stream, where
CuPy and Numba both launch), so a buffer handed to one launch may be handed to the
next: that launch runs only after the previous one finished with it.  Buffers grow to
the largest request and are never shrunk.  Counters are allocated as zeros and every
kernel leaves them at zero (``cuda.atomic.inc`` wraps back); a launch that raises may
leave them otherwise, so :func:`forget` drops everything after a failed launch.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_local = threading.local()
#: At most this many constant arrays are kept per thread (user parameters, say).
MAX_CONSTANTS = 64


def _device_key(xp: Any) -> Any:
    return xp.cuda.runtime.getDevice() if xp.__name__ == "cupy" else "host"


def _store() -> dict:
    if not hasattr(_local, "buffers"):
        _local.buffers = {}
    return _local.buffers


def buffer(xp: Any, slot: Any, dtype: Any, n: int, *, zeroed: bool = False) -> Any:
    """A 1-d array of ``n`` elements of ``dtype`` on the current device, for ``slot``
    (e.g. ``("partial", 0)``; two slots never share memory).  ``zeroed``: all zeros on
    entry (for counters the kernels leave at zero)."""
    key = (_device_key(xp), slot, np.dtype(dtype).str, zeroed)
    store = _store()
    held = store.get(key)
    if held is None or held.size < n:
        size = 1 << max(0, n - 1).bit_length()  # powers of two: few regrowths
        held = (xp.zeros if zeroed else xp.empty)(size, dtype=dtype)
        store[key] = held
    return held[:n]


def constant(xp: Any, values: tuple[float, ...]) -> Any:
    """``values`` as a ``(1, len(values))`` float64 array on the current device, made
    once per thread and device (kernels read it as every output's auxiliary row)."""
    host = np.array(values, dtype=np.float64).reshape(1, -1)
    # Keyed by the bytes: -0.0 == 0.0 and NaN != NaN as floats, not as bits.
    key = (_device_key(xp), "constant", host.tobytes())
    store = _store()
    held = store.get(key)
    if held is None:
        if sum(1 for k in store if k[1] == "constant") >= MAX_CONSTANTS:
            for k in [k for k in store if k[1] == "constant"]:
                del store[k]
        held = xp.asarray(host)
        store[key] = held
    return held


def forget() -> None:
    """Drop this thread's buffers (after a launch that raised: counters may not be 0)."""
    _local.buffers = {}
