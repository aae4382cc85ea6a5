"""User-defined reductions of several arrays read side by side (``arrays=n``): the
call's arrays as Dask arrays cut alike, and the task that reduces one aligned block of
each with one kernel (the graph is :func:`numbadask.engine.aligned.aligned_reduction`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import checks, dispatch
from numbadask.reductions.states import FieldStates

if TYPE_CHECKING:
    import dask.array as da


def as_aligned_dask_arrays(given: tuple, func: str) -> list[da.Array]:
    """The arrays of a call as Dask arrays the kernels reduce (refused as
    :func:`numbadask.engine.checks.as_dask_array` refuses); a NumPy or CuPy array with the
    shape of a given Dask array is cut as that one is, so no rechunk aligns them."""
    import dask.array as da

    like = {a.shape: a for a in given if isinstance(a, da.Array)}
    out = []
    for a in given:
        if not isinstance(a, da.Array) and getattr(a, "shape", None) in like and hasattr(a, "dtype") and not isinstance(a, np.generic):
            x = checks.as_dask_array(a, func)  # refuses what the kernels do not reduce
            if x.chunks != like[a.shape].chunks:
                x = da.from_array(a, chunks=like[a.shape].chunks, asarray=False)
        else:
            x = checks.as_dask_array(a, func)
        out.append(x)
    return out


def aligned_chunk(*blocks: Any, reduction: Any, axes: tuple[int, ...], device: str, params: tuple) -> FieldStates:
    """The states of the aligned blocks of a reduction of several arrays: broadcast to
    one shape (views), reduced side by side by one kernel on the device ``device``
    picks (CuPy when any block is one, under ``"auto"``)."""
    for b in blocks:
        if type(b) is not np.ndarray and not isinstance(b, np.generic) and not dispatch.is_cupy_array(b) and type(b) is not np.memmap:
            raise TypeError(
                f"numbadask reduces chunks of exactly numpy.ndarray or cupy.ndarray, got a {type(b).__module__}.{type(b).__name__} "
                "where the Dask array's meta said a plain array"
            )
    on_gpu = device == "gpu" or (device == "auto" and any(dispatch.is_cupy_array(b) for b in blocks))
    backend = "gpu" if on_gpu else "cpu"
    blocks = [dispatch.to_gpu(b) if on_gpu else dispatch.to_host(b) for b in blocks]
    xp = dispatch.array_module(blocks[0])
    blocks = xp.broadcast_arrays(*blocks)
    shape = blocks[0].shape
    if 0 in shape:
        values = reduction._identity_states(tuple(1 if d in axes else m for d, m in enumerate(shape)), np.dtype(np.float64), xp)
    else:
        from numbadask.cpu.layout import plan_joint_walk

        values = reduction.kernels(backend).reduce_joint(plan_joint_walk(blocks, axes, xp), params, xp)
    return FieldStates(values, dispatch.is_cupy_array(values))
