"""The graph of one call of a reduction, its arguments already checked: chunk states
from the reduction's kernel, merged in a tree of ``split_every`` at a time, finished
into the result (:func:`reduce`), with the result's meta on the right device.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import dask
import numpy as np

from numbadask.engine import dispatch, graph
from numbadask.engine.checks import SplitEvery
from numbadask.engine.definition import Reduction, aggregate, chunk, combine

if TYPE_CHECKING:
    import dask.array as da

# dask.array is imported inside the functions, not here: importing it imports CuPy
# when CuPy is installed (dask/array/chunk_types.py), and `import numbadask` must not.

#: Tree-reduction fan-in when neither the call nor dask's config sets one.  Partial
#: states are tiny, so merging many at once costs nothing, while each extra combine
#: task costs scheduler time (dask's default of 4 made 21 combine tasks for 64 chunks;
#: measured +8% GB/s on 64 x 32 MiB chunks with 16).
DEFAULT_SPLIT_EVERY = 32


def result_meta(x: da.Array, ndim: int, dtype: np.dtype, device: str) -> Any:
    """An empty array of the result's type: on the device the chunks end up on."""
    from dask.array.utils import meta_from_array

    if device == "cpu" or (device == "gpu" and dispatch.simulator_enabled()):
        like = np.empty((0,) * x.ndim, dtype=x.dtype)
    elif device == "gpu":
        import cupy

        like = cupy.empty((0,) * x.ndim, dtype=x.dtype)
    else:
        like = x._meta
    return meta_from_array(like, ndim=ndim, dtype=dtype)


#: False while :func:`numbadask.accelerate` builds a routed call's graph: its results
#: then finish without NumPy's empty-slice warnings, as dask.array's do
#: (:data:`numbadask.engine.definition.EMPTY_SLICE_WARNINGS`).  Read once per graph, in
#: :func:`reduce`; the flag travels in the graph (and its keys), not in the thread.
NUMPY_WARNINGS: ContextVar[bool] = ContextVar("numbadask_numpy_warnings", default=True)


def split_every_of(split_every: SplitEvery) -> tuple[Any, bool]:
    """The fan-in, and whether the call or dask's ``split_every`` config set it (then
    the tree is dask.array's, of dask's depth: :func:`numbadask.engine.graph.dask_fan_in`)."""
    if split_every is None:
        split_every = dask.config.get("split_every", None)
    if split_every is None:
        return DEFAULT_SPLIT_EVERY, False
    return split_every, True


def reduce(
    r: Reduction,
    x: da.Array,
    axes: tuple[int, ...],
    result_dtype: Any,
    keepdims: bool,
    split_every: SplitEvery,
    device: str,
    *,
    ddof: float = 0,
    params: tuple = (),
    meta: Any = None,
    token: tuple = (),
) -> da.Array:
    """The graph of ``r`` over ``axes`` of ``x``: chunk states from ``r``'s kernel
    (``params``: run-time arguments of user-defined kernels, ``token`` telling their
    graphs apart), merged in a tree, finalized to the result."""
    from dask.base import tokenize

    out_ndim = x.ndim if keepdims else x.ndim - len(axes)
    split_every, dask_rule = split_every_of(split_every)
    return graph.reduction(
        x,
        f"{r.name}-numbadask",
        tokenize(x, r.name, axes, device, ddof, params, *token),
        axes,
        partial(chunk, reduction=r, axes=axes, device=device, params=params, shape=tuple(x.shape)),
        f"numbadask.{r.name} (kernel {r.kernel(x.dtype).name})",
        partial(combine, reduction=r),
        partial(aggregate, reduction=r, finalize=r.finisher(x.dtype, ddof), result_dtype=result_dtype, numpy_warnings=NUMPY_WARNINGS.get()),
        keepdims,
        split_every,
        result_meta(x, out_ndim, result_dtype, device) if meta is None else meta,
        with_offsets=r.indexed,
        dask_rule=dask_rule,
    )


