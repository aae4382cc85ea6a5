"""What the two-array statistics share: both inputs as Dask arrays broadcast and cut
alike (:func:`aligned_inputs`), a pair of blocks read by one task (:func:`paired`) as
2-d views the njit kernels walk (:func:`two_d`), and the graph of their states
(:func:`state_graph`, :func:`numbadask.engine.aligned.aligned_reduction`).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import aligned
from numbadask.engine.calls import split_every_of
from numbadask.engine.checks import SplitEvery
from numbadask.engine.dispatch import array_module, is_cupy_array

if TYPE_CHECKING:
    import dask.array as da


_KINDS = "biuf"


def as_dask(a: Any, func: str, what: str, like: Any = None) -> da.Array:
    """``a`` as a Dask array (NumPy and CuPy arrays wrapped, not copied: with the chunks
    of the Dask array ``like`` when it has ``a``'s shape, so no rechunk aligns them)."""
    import dask.array as da

    if not isinstance(a, da.Array):
        if isinstance(a, np.generic) or not (isinstance(a, np.ndarray) or hasattr(a, "__array_function__")):
            a = np.asarray(a)
        _check_kind(a.dtype, func, what)
        chunks = like.chunks if isinstance(like, da.Array) and like.shape == a.shape else "auto"
        a = da.from_array(a, chunks=chunks, asarray=False) if a.ndim else da.from_array(a, chunks=())
    _check_kind(a.dtype, func, what)
    return a


def _check_kind(dtype: np.dtype, func: str, what: str) -> None:
    if dtype.kind not in _KINDS:
        raise TypeError(
            f"numbadask.{func}: {what} has dtype {dtype}; only bool, integer and real floating dtypes are supported "
            f"(complex, object, datetime and string data are not)"
        )


def aligned_inputs(x: Any, y: Any, func: str, names: tuple[str, str]) -> tuple[da.Array, da.Array, tuple[int, ...]]:
    """x and y as Dask arrays, and their broadcast shape (they are broadcast block by
    block and cut alike in :func:`state_graph`, as ``da.blockwise`` inputs)."""
    import dask.array as da

    if isinstance(y, da.Array) and not isinstance(x, da.Array):
        y = as_dask(y, func, names[1])
        x = as_dask(x, func, names[0], like=y)
    else:
        x = as_dask(x, func, names[0])
        y = as_dask(y, func, names[1], like=x)
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"numbadask.{func}: {names[0]} of shape {x.shape} and {names[1]} of shape {y.shape} do not broadcast together") from None
    return x, y, shape


def paired(x: Any, y: Any, chunk: Any, axes: tuple[int, ...]) -> Any:
    """``chunk`` of one block of x and the aligned block of y, broadcast to one shape
    (views, no copies)."""
    check_chunks(x, y)  # before broadcast_arrays, which would drop a mask
    x, y = array_module(x).broadcast_arrays(x, y)
    return chunk(x, y, axes=axes)


def _merged(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int] | None:
    """(size, stride) of these axes seen as one, or None when their strides do not allow
    it without a copy (a broadcast axis, stride 0, merges with other stride-0 axes)."""
    dims = [(n, st) for n, st in zip(shape, strides) if n != 1]
    if not dims:
        return 1, 0
    for (_, outer), (n, inner) in zip(dims, dims[1:]):
        if outer != inner * n:
            return None
    return math.prod(shape), dims[-1][1]


def two_d(block: Any, axes: tuple[int, ...], rows: bool | None = None) -> tuple[Any, bool]:
    """``block`` as 2-D: (positions, reduced) (``rows``) or (reduced, positions), the
    kept axes in their order.  A strided view where the strides allow it (so a
    broadcast input, e.g. weights along one axis, is not copied to the chunk's size);
    else a copy by ``reshape``, (positions, reduced) when the reduced axes are the
    trailing ones.

    ``rows=None`` chooses by memory: the reduced axes innermost in the view when they
    are innermost in memory.  A (time, lat, lon) block transposed to (lat, lon, time)
    (xarray's ``weighted`` moves the reduced dimension last) is then read as (time,
    positions) by the column kernels, along its contiguous rows, where the row kernels
    read it one 4-byte element per 259 KB stride.  The second block of a pair takes
    the first one's ``rows``, so both views index alike."""
    kept = [a for a in range(block.ndim) if a not in axes]
    trailing = list(axes) == list(range(len(kept), block.ndim))
    red = _merged(tuple(block.shape[a] for a in axes), tuple(block.strides[a] for a in axes))
    pos = _merged(tuple(block.shape[a] for a in kept), tuple(block.strides[a] for a in kept))
    if rows is None:
        rows = trailing
        if red is not None and pos is not None and red[0] > 1 and pos[0] > 1 and abs(red[1]) != abs(pos[1]):
            rows = abs(red[1]) < abs(pos[1])
    first, second = (kept, list(axes)) if rows else (list(axes), kept)
    outer, inner = (pos, red) if rows else (red, pos)
    if outer is not None and inner is not None and block.size:
        view = np.lib.stride_tricks.as_strided(block, shape=(outer[0], inner[0]), strides=(outer[1], inner[1]), writeable=False)
        return view, rows
    n0 = math.prod(block.shape[a] for a in first)
    n1 = math.prod(block.shape[a] for a in second)
    return block.transpose((*first, *second)).reshape(n0, n1), rows


def check_chunks(*blocks: Any) -> None:
    """Only NumPy and CuPy chunks: a masked, sparse or other array type would have its
    mask or layout ignored by the code here (a silently wrong number)."""
    for block in blocks:
        if type(block) is not np.ndarray and not is_cupy_array(block):
            raise TypeError(
                f"numbadask's two-array reductions take chunks that are numpy.ndarray or cupy.ndarray, not {type(block).__module__}.{type(block).__name__}"
            )


def gpu_states(r: Any, x: Any, y: Any, axes: tuple[int, ...], params: tuple = ()) -> Any:
    """The float64 states ``(k, *keepdims shape)`` of one CuPy block pair from the
    user-defined reduction ``r``'s CUDA kernel (one read of both blocks)."""
    from numbadask.reductions.custom_arrays import aligned_chunk

    with np.errstate(invalid="ignore", over="ignore"):  # inf data in the simulator: NumPy's mean, quietly
        return aligned_chunk(x, y, reduction=r, axes=axes, device="gpu", params=params).values


def state_graph(x: da.Array, y: da.Array, shape: tuple[int, ...], axes: tuple[int, ...], split_every: SplitEvery, name: str, chunk: Any, merge: Any) -> da.Array:
    """The merged states (one object block per output block, keepdims) of ``chunk``
    applied to aligned blocks of x and y, broadcast to ``shape`` and cut alike
    (:func:`numbadask.engine.aligned.aligned_reduction`: one task per block pair, also under
    query planning, where dask.array has no ``broadcast_arrays``)."""
    from dask.base import tokenize

    fan_every, dask_rule = split_every_of(split_every)
    meta = np.empty((0,) * len(shape), dtype=object)
    pair = functools.partial(paired, chunk=chunk, axes=axes)
    token = tokenize(x, y, shape, axes, name, chunk)
    label = f"numbadask.{name.split('-')[0]}"
    return aligned.aligned_reduction([x, y], shape, f"{name}-numbadask", token, axes, pair, label, merge, merge, True, fan_every, meta, dask_rule=dask_rule)


def float_dtype(*dtypes: np.dtype) -> np.dtype:
    """NumPy's mean dtype of data of these dtypes: float64 for integers and bools."""
    dtype = np.result_type(*dtypes)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def result_meta_like(like: da.Array, ndim: int, dtype: np.dtype) -> Any:
    xp = array_module(like._meta)
    return xp.empty((0,) * ndim, dtype=dtype)
