"""CPU kernels generated from a user-defined reduction (:func:`numbadask.reduction`).

The user writes plain scalar functions: ``map(x, *params) -> state``,
``merge(a, b) -> state`` and ``finalize(state) -> value``, a state being a tuple of
``k`` numbers.  This module turns them into ``@numba.njit(nogil=True)`` kernels that
walk a chunk's memory through a :class:`numbadask.layout.Walk` (no copy), fold
``map(x)`` into one state per output position with ``merge``, and write the states as
a float64 array of shape ``(k, n_out)``.

Two things need code written for a given state arity ``k`` and parameter count ``p``,
because Numba can neither call a closure with ``*args`` nor build a tuple of a length
known only at run time:

* ``mapped(v, params)``: ``map(v, params[0], ..., params[p-1])`` with every field cast
  to float64;
* ``merged(a, b)``, ``load(arr, j)``, ``store(arr, j, state)``: a merge with float64
  fields, and moving a state in and out of column ``j`` of a ``(k, n)`` array.

:func:`state_helpers` writes these few lines as source text and ``exec``s them in a
namespace holding only the user's (already wrapped) functions and ``float64``: the one
place in numbadask that generates code.  The CUDA kernels
(``numbadask.cuda_kernels.custom``) use the same helpers, wrapped as device functions.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
from numba import float64

from .cpu_kernels import _advance, _visits, walk_buffer
from .layout import Walk

#: Elements folded into one block state before the blocks are merged: short enough
#: that a sum-like state keeps its rounding error small (two-level summation), long
#: enough that the loop vectorizes.
BLOCK = 512

# ``reassoc`` lets LLVM vectorize the fold of a merge the user declared associative;
# no other fast-math flag (NaN and inf must keep their meaning).
_REASSOC = {"reassoc", "contract"}


def helper_source(k: int, p: int) -> str:
    """The source of ``mapped``, ``merged``, ``load`` and ``store`` for ``k`` state
    fields and ``p`` parameters.

    Examples
    --------
    >>> print(helper_source(2, 1).splitlines()[1])
        t = user_map(v, params[0])
    """
    fields = ", ".join(f"float64(t[{f}])" for f in range(k))
    args = "".join(f", params[{i}]" for i in range(p))
    loads = ", ".join(f"a[{f}, j]" for f in range(k))
    stores = "\n".join(f"    a[{f}, j] = s[{f}]" for f in range(k))
    picks = ", ".join(f"x[{f}] if keep else y[{f}]" for f in range(k))
    return (
        f"def mapped(v, params):\n    t = user_map(v{args})\n    return ({fields},)\n\n"
        f"def merged(x, y):\n    t = user_merge(x, y)\n    return ({fields},)\n\n"
        f"def load(a, j):\n    return ({loads},)\n\n"
        f"def store(a, j, s):\n{stores}\n\n"
        f"def select(keep, x, y):\n    return ({picks},)\n"
    )


def state_helpers(k: int, p: int, user_map: Any, user_merge: Any, jit: Callable[[Any], Any]) -> SimpleNamespace:
    """``mapped``, ``merged``, ``load``, ``store`` and ``select`` built from :func:`helper_source`,
    each wrapped by ``jit`` (``numba.njit(inline="always")`` or a CUDA device jit)."""
    namespace: dict[str, Any] = {"float64": float64, "user_map": user_map, "user_merge": user_merge}
    exec(compile(helper_source(k, p), f"<numbadask.reduction helpers k={k} p={p}>", "exec"), namespace)
    return SimpleNamespace(**{name: jit(namespace[name]) for name in ("mapped", "merged", "load", "store", "select")})


def _inline(func: Any) -> Any:
    # Inlined at Numba's IR level, so the caller's fastmath flags reach the user's code
    # (an LLVM-level inline would keep the callee's strict flags and not vectorize).
    return numba.njit(inline="always", error_model="numpy")(func)


def _element_folds(h: SimpleNamespace, ident: tuple, skipna: bool) -> tuple:
    """Fold elements into a state: ``visit`` one element, ``fold`` a 1-D run,
    ``fold_4_rows`` four runs side by side."""
    mapped, merged, select = h.mapped, h.merged, h.select  # Numba needs plain names

    @numba.njit(inline="always", fastmath=_REASSOC, error_model="numpy")
    def visit(v, params):
        if skipna:
            # NaN maps to the identity, a select per field: branch-free, so the
            # folds vectorize (a `continue`, or a select between merged and old
            # state tuples, held a NaN-skipping sum of squares to 8-10 GB/s; this
            # form reaches ~30, 2 threads here).
            return select(v == v, mapped(v, params), ident)
        return mapped(v, params)

    @numba.njit(nogil=True, fastmath=_REASSOC, error_model="numpy")
    def fold(seg, params):
        acc = ident
        for i in range(seg.size):
            acc = merged(acc, visit(np.float64(seg[i]), params))
        return acc

    @numba.njit(nogil=True, fastmath=_REASSOC, error_model="numpy")
    def fold_4_rows(a, b, c, d, params):
        # Four equally long rows read side by side: four memory streams in flight
        # instead of one (as cpu_kernels._block_sum_4_rows; square chunks of a C
        # array, where each row alone restarts the prefetcher).
        acc = ident
        for i in range(a.size):
            ab = merged(visit(np.float64(a[i]), params), visit(np.float64(b[i]), params))
            cd = merged(visit(np.float64(c[i]), params), visit(np.float64(d[i]), params))
            acc = merged(acc, merged(ab, cd))
        return acc

    return visit, fold, fold_4_rows


def _row_folds(h: SimpleNamespace, ident: tuple, fold: Any, fold_4_rows: Any) -> tuple:
    """Fold one row (any stride) or a tile of contiguous rows into a state."""
    merged = h.merged  # Numba needs plain names

    @numba.njit(nogil=True, error_model="numpy")
    def fold_row(buf, start, n, step, params):
        # Blocks of BLOCK elements each fold to a state, then the blocks merge:
        # sliced views (not buf[start + i]) keep Numba's wraparound check out of
        # the loop so LLVM can vectorize it.
        total = ident
        if step == 1:
            for b in range(0, n, BLOCK):
                total = merged(total, fold(buf[start + b : start + min(b + BLOCK, n)], params))
        elif step == 0:  # a broadcast axis: the same element n times
            one = fold(buf[start : start + 1], params)
            for _ in range(n):
                total = merged(total, one)
        else:
            seg = buf[start::step][:n]
            for b in range(0, n, BLOCK):
                total = merged(total, fold(seg[b : b + BLOCK], params))
        return total

    @numba.njit(nogil=True, error_model="numpy")
    def fold_tile(buf, start, rows, row_stride, n, params):
        """``rows`` contiguous rows of ``n`` elements, ``row_stride`` apart."""
        total = ident
        r = 0
        while r + 4 <= rows:
            for b in range(0, n, BLOCK):
                m = min(BLOCK, n - b)
                s0 = start + r * row_stride + b
                s1, s2, s3 = s0 + row_stride, s0 + 2 * row_stride, s0 + 3 * row_stride
                total = merged(total, fold_4_rows(buf[s0 : s0 + m], buf[s1 : s1 + m], buf[s2 : s2 + m], buf[s3 : s3 + m], params))
            r += 4
        while r < rows:
            total = merged(total, fold_row(buf, start + r * row_stride, n, 1, params))
            r += 1
        return total

    return fold_row, fold_tile


def _chunk_walk(h: SimpleNamespace, visit: Any, fold_row: Any, fold_tile: Any) -> Any:
    """The kernel of one chunk: every output's state, merged into ``out`` (``(k, n_out)``)."""
    merged, load, store = h.merged, h.load, h.store  # Numba needs plain names

    @numba.njit(nogil=True, error_model="numpy")
    def walk(buf, base, sizes, strides, out_strides, out, params):
        # The innermost memory axis (or two, as a tile) is folded per visit when
        # reduced, else each of its elements goes into its own output; an odometer
        # walks the outer axes.
        k_axes = sizes.size
        n = sizes[k_axes - 1]
        step = strides[k_axes - 1]
        out_step = out_strides[k_axes - 1]
        # Two innermost axes reduced, rows contiguous: fold them as one tile.
        tiled = k_axes >= 2 and step == 1 and out_step == 0 and out_strides[k_axes - 2] == 0
        outer = k_axes - 2 if tiled else k_axes - 1
        index = np.zeros(k_axes, dtype=np.int64)
        offset = base
        out_offset = 0
        for _ in range(_visits(sizes, outer)):
            if tiled:
                state = fold_tile(buf, offset, sizes[k_axes - 2], strides[k_axes - 2], n, params)
                store(out, out_offset, merged(load(out, out_offset), state))
            elif out_step == 0:
                store(out, out_offset, merged(load(out, out_offset), fold_row(buf, offset, n, step, params)))
            else:
                for j in range(n):
                    o = out_offset + j * out_step
                    store(out, o, merged(load(out, o), visit(np.float64(buf[offset + j * step]), params)))
            offset, out_offset = _advance(index, sizes, strides, out_strides, outer, offset, out_offset)

    return walk


def _column_ops(h: SimpleNamespace, finalize: Any) -> tuple:
    """Merge two ``(k, n)`` state arrays column by column; finalize one into ``n`` values."""
    merged, load, store = h.merged, h.load, h.store  # Numba needs plain names

    @numba.njit(nogil=True, error_model="numpy")
    def merge_columns(a, b):
        out = np.empty_like(a)
        for j in range(a.shape[1]):
            store(out, j, merged(load(a, j), load(b, j)))
        return out

    @numba.njit(nogil=True, error_model="numpy")
    def finalize_columns(a):
        out = np.empty(a.shape[1])
        for j in range(a.shape[1]):
            out[j] = np.float64(finalize(load(a, j)))
        return out

    return merge_columns, finalize_columns


class CpuKernels:
    """The njit kernels of one user-defined reduction (any input dtype: Numba
    specializes and caches each one per dtype on first use, thread-safely)."""

    def __init__(self, user_map: Any, user_merge: Any, user_finalize: Any, identity: tuple[float, ...], p: int, skipna: bool) -> None:
        h = state_helpers(len(identity), p, _inline(user_map), _inline(user_merge), _inline)
        ident = tuple(float(v) for v in identity)
        visit, fold, fold_4_rows = _element_folds(h, ident, skipna)
        fold_row, fold_tile = _row_folds(h, ident, fold, fold_4_rows)
        self._walk = _chunk_walk(h, visit, fold_row, fold_tile)
        self.finalize = _inline(user_finalize)
        self.merge_columns, self.finalize_columns = _column_ops(h, self.finalize)
        self.identity = ident
        self.mapped, self.merged = h.mapped, h.merged

    def reduce(self, walk: Walk, params: tuple[float, ...], xp: Any = np) -> np.ndarray:
        """The states of one NumPy chunk: float64, shape ``(k, *walk.out_shape)``
        (``xp``: always NumPy here; the CUDA kernels' ``reduce`` takes the same)."""
        out = np.empty((len(self.identity), walk.out_size), dtype=np.float64)
        out[:] = np.array(self.identity)[:, None]
        self._walk(walk_buffer(walk), walk.base, walk.sizes, walk.strides, walk.out_strides, out, params)
        return out.reshape((len(self.identity), *walk.out_shape))
