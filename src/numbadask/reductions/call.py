"""A public function's call of a reduction: checked as NumPy checks it, then its graph.

:func:`reduce_call` serves every public reduction function: it reads what the
:class:`~numbadask.engine.definition.Reduction` declares (its NumPy function, NaN,
``dtype=`` and ``ddof`` rules), hands input the kernels do not reduce to dask.array
(:func:`numbadask.engine.handoff.hand_off`) and builds the graph of the rest
(:func:`numbadask.engine.calls.reduce`).  The docstrings' shared parameter text lives
here too (:func:`with_parameters`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine import dispatch
from numbadask.engine.calls import reduce
from numbadask.engine.checks import (
    SUPPORTED_KINDS,
    Axis,
    SplitEvery,
    arg_axes,
    check_ddof,
    kernel_input,
    normalize_axes,
    result_dtype_of,
)
from numbadask.engine.definition import Reduction
from numbadask.engine.handoff import hand_off

if TYPE_CHECKING:
    import dask.array as da


def _nan_to_zero(block: Any) -> Any:
    xp = dispatch.array_module(block)
    return xp.where(xp.isnan(block), 0, block)


def cast_first(x: da.Array, dtype: Any, r: Reduction) -> da.Array:
    """NumPy casts each element to ``dtype=`` before adding; do the same where it
    changes the answer.  An integer or bool ``dtype=`` on float input truncates each
    element (``np.sum([0.5, 0.5], dtype=int)`` is 0), NaN replaced by 0 first in the
    nan-functions (``np.nansum([1.5, nan], dtype=int)`` is 1, where a cast NaN would be
    the most negative integer).  A float ``dtype=`` on integer input sums in floating
    point, where our exact integer sum would wrap around (in float64: our accumulator)."""
    if dtype is None:
        return x
    kind = np.dtype(dtype).kind
    if kind in "biu" and x.dtype.kind == "f":
        return (x.map_blocks(_nan_to_zero, dtype=x.dtype) if r.skipna else x).astype(dtype)
    if kind == "f" and x.dtype.kind in "biu" and r.exact_integers:
        return x.astype(np.float64)
    return x


def reduce_call(
    r: Reduction, a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False,
    split_every: SplitEvery = None, device: str = "auto", ddof: Any = 0, out: Any = None,
) -> da.Array:  # fmt: skip
    """A public function's call of ``r``: validated like NumPy, then its graph, and
    ``out`` handled as dask.array does; input the kernels do not reduce handed to
    dask.array (:func:`hand_off`)."""
    x, a = kernel_input(a)
    if x is None:
        if device not in dispatch.DEVICES:
            dispatch.check_device(device)
        return hand_off(r, a, axis, dtype, keepdims, split_every, out, ddof)
    result = _reduce_call(r, x, axis, dtype, keepdims, split_every, device, ddof)
    if out is None:
        return result
    from dask.array.core import handle_out

    return handle_out(out, result)


def _reduce_call(r: Reduction, x: da.Array, axis: Any, dtype: Any, keepdims: Any, split_every: SplitEvery, device: str, ddof: Any) -> da.Array:
    keepdims = bool(keepdims)
    if dtype is not None and np.dtype(dtype).kind not in SUPPORTED_KINDS:  # complex, strings, ...: dask.array's answer
        return hand_off(r, x, axis, dtype, keepdims, split_every, None, ddof)
    if dtype is not None and r.skipna and r.integer_dtype in ("divide", "two-pass") and x.dtype.kind == "f" and np.dtype(dtype).kind in "biu":
        # np.nanmean/nanvar/nanstd of floats refuse an integer dtype=; dask.array answers
        return hand_off(r, x, axis, dtype, keepdims, split_every, None, ddof)
    if r.indexed:
        axes = arg_axes(r, x, axis)
        result_dtype = np.dtype(np.intp)
    else:
        axes = normalize_axes(axis, x.ndim)
        result_dtype = None if r.integer_dtype == "two-pass" else result_dtype_of(r.numpy, x.dtype, dtype)
    if "ddof" in r.options:
        ddof = check_ddof(ddof)
    dispatch.check_device(device)
    if r.in_integers is not None and dtype is not None and np.dtype(dtype).kind in "biu":
        return r.in_integers(r, x, axes, np.dtype(dtype), keepdims, split_every, device, ddof)
    if result_dtype is None:
        result_dtype = result_dtype_of(r.numpy, x.dtype, dtype)
    return reduce(r, cast_first(x, dtype, r), axes, result_dtype, keepdims, split_every, device, ddof=ddof)


PARAMETERS = """
    Parameters
    ----------
    a : dask.array.Array, numpy.ndarray or cupy.ndarray
        Input; NumPy and CuPy arrays are wrapped as Dask arrays (automatic chunks).
    axis : None, int or tuple of ints, optional
        Axes to reduce (negative counts from the end); None means all.
    dtype : dtype, optional
        Result dtype, as NumPy's ``dtype=``.
    keepdims : bool, optional
        Keep the reduced axes with size 1.
    split_every : int or dict, optional
        Fan-in of Dask's tree reduction, as in :func:`dask.array.reduction` (the same
        tree depth).  Default: dask's ``split_every`` config if set, else 32 (partial
        states are small).
    out : dask.array.Array, optional
        As dask.array's ``out=``: the array made to hold the result (same shape).
    device : {"auto", "cpu", "gpu"}, optional
        ``"auto"``: each chunk is reduced where it lives (NumPy chunk: CPU kernel; CuPy
        chunk: CUDA kernel on its GPU).  ``"cpu"``: CuPy chunks are copied to the host.
        ``"gpu"``: NumPy chunks are copied to the GPU (or, with
        ``NUMBA_ENABLE_CUDASIM=1``, run through the CUDA kernels in Numba's simulator).

    Returns
    -------
    dask.array.Array
        Lazy result with NumPy's dtype and shape; NumPy or CuPy chunks per ``device``.

    Raises
    ------
    TypeError
        ``axis``/``dtype`` of the wrong type.
    numpy.exceptions.AxisError
        An axis out of range.
    ValueError
        A repeated axis, or an unknown ``device``.
    numbadask.GPUUnavailableError
        ``device="gpu"`` with no usable GPU and the simulator off.
"""

#: The hand-off, said in every public reduction's docstring.
HANDOFF = """Input numbadask has no kernel for (a dtype other than bool, integer and float:
    complex, datetime64, timedelta64, object, strings) or whose chunks are not exactly
    ``numpy.ndarray`` or ``cupy.ndarray`` (masked arrays, other ``ndarray`` subclasses,
    sparse arrays; decided per call from the Dask array's dtype and ``_meta``) is handed
    to dask.array's function of the same name with the same arguments: dask.array's
    answer, or its error."""


def function_without_dtype(r: Reduction, doc: str, **fields: str) -> Callable[..., Any]:
    """The public function of a reduction that takes no ``dtype=`` (min, max, ptp and
    the arg-reductions, whose result dtype is the input's or intp), documented by the
    template ``doc`` filled with ``fields``, the reduction's ``name`` and :data:`HANDOFF`.
    The arg-reductions take ``axis`` None or one int (:func:`arg_axes`)."""

    def reduce(
        a: Any, axis: Axis = None, keepdims: bool = False, split_every: SplitEvery = None, out: Any = None, device: str = "auto"
    ) -> da.Array:
        return reduce_call(r, a, axis, None, keepdims, split_every, device, out=out)

    reduce.__name__ = reduce.__qualname__ = r.name
    reduce.__doc__ = doc.format(handoff=HANDOFF, name=r.name, **fields)
    return reduce


def with_parameters(func: Any) -> Any:
    """Put :data:`PARAMETERS` where ``func``'s docstring says ``{parameters}``."""
    func.__doc__ = func.__doc__.replace("    {parameters}\n", "    " + HANDOFF + "\n" + PARAMETERS)
    return func
