"""The arg family: argmin, argmax, nanargmin and nanargmax.

One partial state (:class:`~numbadask.reductions.states.ArgBest`): the best non-NaN value, its
global index and the first NaN's global index.  Chunks need their offsets in the whole
array to report global indices: the graph hands them to the chunk tasks (the
reductions are ``indexed``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import dispatch, kernels
from numbadask.reductions.call import function_without_dtype
from numbadask.engine.definition import Reduction, Where
from numbadask.reductions.states import ArgBest, merge_arg_best

if TYPE_CHECKING:
    pass


def _global_index(local: Any, xp: Any, chunk_shape: tuple[int, ...], axis: int | None, offsets: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """Chunk-local indices (-1: none) as indices into the whole array (an array of
    unknown shape is one chunk along each axis of unknown size: its own shape)."""
    if not shape:
        return local
    if any(s != s for s in shape):  # NaN: unknown
        shape = tuple(c if s != s else s for s, c in zip(shape, chunk_shape))
    if axis is not None:
        return xp.where(local >= 0, local + offsets[axis], -1)
    valid = local >= 0
    multi = xp.unravel_index(xp.where(valid, local, 0), chunk_shape)
    flat = xp.ravel_multi_index(tuple(i + o for i, o in zip(multi, offsets)), shape)
    return xp.where(valid, flat, -1)


def _arg_best(out: Any, x: Any, axes: tuple[int, ...], where: Where) -> ArgBest:
    """The ArgBest state of one chunk, with global indices, in the keepdims shape."""
    value, index, nan_index = out
    xp = dispatch.array_module(value)
    axis = kernels.arg_axis(axes)
    shape = kernels.keepdims_shape(x.shape, axes)
    if x.size == 0:  # nothing found: every index stays -1
        return ArgBest(value.reshape(shape), index.reshape(shape), nan_index.reshape(shape))
    index = _global_index(index, xp, x.shape, axis, where.offsets, where.shape)
    nan_index = _global_index(nan_index, xp, x.shape, axis, where.offsets, where.shape)
    return ArgBest(value.reshape(shape), index.reshape(shape), nan_index.reshape(shape))


def _finalize(state: ArgBest, result_dtype: np.dtype, skipna: bool) -> Any:
    value, index, nan_index = state
    if skipna:
        if bool((index < 0).any()):
            raise ValueError("All-NaN slice encountered")
        return index.astype(result_dtype)
    xp = dispatch.array_module(index)
    return xp.where(nan_index >= 0, nan_index, index).astype(result_dtype)


def _family(name: str, numpy: Any, want_max: bool, **rules: Any) -> Reduction:
    kernel = kernels.ARGMAX if want_max else kernels.ARGMIN
    return Reduction(
        name=name,
        kernel=lambda dtype: kernel,
        state=_arg_best,
        merge=functools.partial(merge_arg_best, want_max=want_max),
        finalize=_finalize,
        numpy=numpy,
        integer_dtype=None,
        options=("skipna",),
        indexed=True,
        **rules,
    )


ARGMIN = _family("argmin", np.argmin, want_max=False)
ARGMAX = _family("argmax", np.argmax, want_max=True)
NANARGMIN = _family("nanargmin", np.nanargmin, want_max=False, skipna=True, nan_twin="argmin")
NANARGMAX = _family("nanargmax", np.nanargmax, want_max=True, skipna=True, nan_twin="argmax")

REDUCTIONS = (ARGMIN, ARGMAX, NANARGMIN, NANARGMAX)

_DOC = """{summary}

    NumPy's rules: ``axis`` is None (an index into the flattened array) or an int; ties
    go to the first occurrence; {nan_rule}  Indices are global across chunks.  Same
    ``keepdims``, ``split_every`` and ``device`` as :func:`sum`.  A hand-written
    kernel: the generic :func:`numbadask.reduction` path never sees an element's index.

    {handoff}

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.{name}(np.array([[3.0, np.nan, 1.0], [2.0, 5.0, 2.0]]), axis=1).compute()
    array({example})
    """


def _function(r: Reduction, summary: str, nan_rule: str, example: str) -> Any:
    return function_without_dtype(r, _DOC, summary=summary, nan_rule=nan_rule, example=example)


_NAN = "a slice holding NaN gives the index of its first NaN."
_SKIP = (
    "NaN are skipped; an all-NaN slice raises ``ValueError: All-NaN slice encountered``.  "
    "The index is always a non-NaN value's: NumPy's version returns a NaN's index when the "
    "extreme is an infinity that comes after a NaN (it replaces NaN by that infinity)."
)

argmin = _function(ARGMIN, "Index of the minimum (:func:`numpy.argmin`).", _NAN, "[1, 0]")
argmax = _function(ARGMAX, "Index of the maximum (:func:`numpy.argmax`).", _NAN, "[1, 1]")
nanargmin = _function(NANARGMIN, "Index of the minimum ignoring NaN (:func:`numpy.nanargmin`).", _SKIP, "[2, 0]")
nanargmax = _function(NANARGMAX, "Index of the maximum ignoring NaN (:func:`numpy.nanargmax`).", _SKIP, "[0, 1]")
