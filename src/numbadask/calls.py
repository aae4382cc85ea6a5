"""A call of a reduction: its arguments checked as NumPy checks them, then its graph.

:func:`reduce_call` serves every public reduction function: it reads what the
:class:`~numbadask.reduction.Reduction` declares (its NumPy function, NaN, ``dtype=``
and ``ddof`` rules) and hands the graph to :mod:`numbadask.graph`.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import dask
import numpy as np

from . import dispatch, graph
from .definition import Reduction, aggregate, chunk, combine

if TYPE_CHECKING:
    import dask.array as da

# dask.array is imported inside the functions, not here: importing it imports CuPy
# when CuPy is installed (dask/array/chunk_types.py), and `import numbadask` must not.

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple

Axis = int | tuple[int, ...] | None
SplitEvery = int | dict[int, int] | None

_SUPPORTED_KINDS = "biuf"  # bool, signed and unsigned integers, floats

#: Tree-reduction fan-in when neither the call nor dask's config sets one.  Partial
#: states are tiny, so merging many at once costs nothing, while each extra combine
#: task costs scheduler time (dask's default of 4 made 21 combine tasks for 64 chunks;
#: measured +8% GB/s on 64 x 32 MiB chunks with 16).
DEFAULT_SPLIT_EVERY = 32


def as_dask_array(a: Any, func: str) -> da.Array:
    """``a`` as a Dask array of a dtype ``func`` reduces.

    Dask arrays as they are; NumPy and CuPy arrays wrapped with Dask's automatic
    chunks (no copy); anything else through :func:`numpy.asarray`.

    Examples
    --------
    >>> as_dask_array([1, 2, 3], "sum").chunks
    ((3,),)
    """
    import dask.array as da

    if not isinstance(a, da.Array) and not dispatch.is_cupy_array(a):
        a = np.asarray(a)
    check_input_dtype(func, np.dtype(a.dtype))
    if isinstance(a, da.Array):
        return a
    return da.from_array(a, chunks="auto", asarray=False)


def check_input_dtype(func: str, dtype: np.dtype) -> None:
    """Refuse dtypes the kernels do not reduce, naming the rule and the dtype."""
    if dtype.kind not in _SUPPORTED_KINDS:
        raise TypeError(
            f"numbadask.{func} supports bool, integer and float16/32/64 arrays; "
            f"got dtype {dtype} (kind {dtype.kind!r})"
        )


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """NumPy's axis rules: None means all; ints only; in range; no repeats.

    Examples
    --------
    >>> normalize_axes(-1, 3), normalize_axes(None, 2)
    ((2,), (0, 1))
    """
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(
                f"axis must be None, an int or a tuple of ints; got {axis!r} "
                f"({type(item).__name__} is not an integer)"
            )
    return normalize_axis_tuple(tuple(int(i) for i in items), ndim)


def result_dtype_of(numpy_func: Any, input_dtype: np.dtype, dtype: Any) -> np.dtype:
    """The dtype ``numpy_func`` (np.sum, np.mean, ...) returns for this input and
    ``dtype=`` argument: NumPy's own rule, asked on a one-element array.

    Examples
    --------
    >>> result_dtype_of(np.mean, np.dtype(np.int32), None), result_dtype_of(np.sum, np.dtype(np.int8), "f4")
    (dtype('float64'), dtype('float32'))
    """
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in _SUPPORTED_KINDS:
            raise TypeError(f"dtype must be a bool, integer or float dtype; got dtype={dtype}")
    return _numpy_result_dtype(numpy_func, np.dtype(input_dtype), dtype)


@lru_cache(maxsize=512)
def _numpy_result_dtype(numpy_func: Any, input_dtype: np.dtype, dtype: np.dtype | None) -> np.dtype:
    """Cached: asking NumPy costs ~60 us of each graph build right after a compute
    has streamed the caches, a fifth of building a sum's graph (``bench/NOTES.md``)."""
    one = np.ones(1, dtype=input_dtype)
    with np.errstate(all="ignore"):
        return np.asarray(numpy_func(one) if dtype is None else numpy_func(one, dtype=dtype)).dtype


def check_ddof(ddof: Any) -> int | float:
    """``ddof`` as NumPy takes it, any finite real number (the divisor is ``n - ddof``);
    a bool, a non-number or a non-finite value is refused.

    Examples
    --------
    >>> check_ddof(1), check_ddof(0.5)
    (1, 0.5)
    """
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise TypeError(f"ddof must be a finite real number, got {ddof!r} ({type(ddof).__name__})")
    if not np.isfinite(ddof):
        raise ValueError(f"ddof must be a finite real number, got {ddof}")
    return int(ddof) if isinstance(ddof, (int, np.integer)) else float(ddof)


def _nan_to_zero(block: Any) -> Any:
    xp = dispatch.array_module(block)
    return xp.where(xp.isnan(block), 0, block)


def _cast_first(x: da.Array, dtype: Any, r: Reduction) -> da.Array:
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


def _split_every(split_every: SplitEvery) -> Any:
    if split_every is not None:
        return split_every
    return dask.config.get("split_every", None) or DEFAULT_SPLIT_EVERY


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
    return graph.reduction(
        x,
        f"numbadask-{r.name}",
        tokenize(x, r.name, axes, device, ddof, params, *token),
        axes,
        partial(chunk, reduction=r, axes=axes, device=device, params=params, shape=tuple(x.shape)),
        f"numbadask.{r.name} (kernel {r.kernel(x.dtype).name})",
        partial(combine, reduction=r),
        partial(aggregate, reduction=r, finalize=r.finisher(x.dtype, ddof), result_dtype=result_dtype),
        keepdims,
        _split_every(split_every),
        result_meta(x, out_ndim, result_dtype, device) if meta is None else meta,
        with_offsets=r.indexed,
    )


def _arg_axes(r: Reduction, x: da.Array, axis: Any) -> tuple[int, ...]:
    """NumPy's argmin/argmax rules: axis None (flat indices) or one int; no empty
    slices; and, as our indices are global, known chunk sizes."""
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"numbadask.{r.name} takes axis=None or an int, got {axis!r}")
        axis = normalize_axis_tuple(int(axis), x.ndim)[0]
    axes = tuple(range(x.ndim)) if axis is None else (axis,)
    if any(np.isnan(c) for i in axes for c in x.chunks[i]):
        raise ValueError(f"numbadask.{r.name} needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    if (x.size if axis is None else x.shape[axis]) == 0:
        raise ValueError(f"attempt to get {r.name.removeprefix('nan')} of an empty sequence")
    return axes


def reduce_call(
    r: Reduction,
    a: Any,
    axis: Any = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: SplitEvery = None,
    device: str = "auto",
    ddof: Any = 0,
) -> da.Array:
    """A public function's call of ``r``: validated like NumPy, then its graph."""
    x = as_dask_array(a, r.name)
    keepdims = bool(keepdims)
    if r.indexed:
        axes = _arg_axes(r, x, axis)
        result_dtype = np.dtype(np.intp)
    else:
        axes = normalize_axes(axis, x.ndim)
        if dtype is not None and np.dtype(dtype).kind in "biu" and r.integer_dtype == "refuse":
            raise TypeError(
                f"numbadask.{r.name} computes in floating point: dtype= must be a float dtype, got dtype={np.dtype(dtype)} "
                "(NumPy would square and sum in that integer type, wrapping around)"
            )
        result_dtype = result_dtype_of(r.numpy, x.dtype, dtype)
    if "ddof" in r.options:
        ddof = check_ddof(ddof)
    dispatch.check_device(device)
    if r.integer_dtype == "divide" and result_dtype.kind in "biu":
        return _mean_in_integers(r, x, axes, result_dtype, keepdims, split_every, device)
    return reduce(r, _cast_first(x, dtype, r), axes, result_dtype, keepdims, split_every, device, ddof=ddof)


def _mean_in_integers(
    r: Reduction, x: da.Array, axes: tuple[int, ...], dtype: np.dtype, keepdims: bool, split_every: SplitEvery, device: str
) -> da.Array:
    """np.mean with an integer or bool ``dtype=``: the sum in that dtype (wrapping
    around as NumPy's does), divided by the count and cast back, as NumPy computes it."""
    from .sums import SUM  # here: numbadask.sums imports this module

    count = math.prod(x.shape[a] for a in axes)
    if math.isnan(count):
        raise ValueError("mean with an integer dtype= needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    total = reduce(SUM, _cast_first(x, dtype, SUM), axes, dtype, keepdims, split_every, device)
    return (total / count).astype(dtype)


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
        Fan-in of Dask's tree reduction, as in :func:`dask.array.reduction`.  Default:
        dask's ``split_every`` config if set, else 32 (partial states are small).
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
        Unsupported input dtype (complex, object, string, datetime) or ``axis``/``dtype``
        of the wrong type.
    numpy.exceptions.AxisError
        An axis out of range.
    ValueError
        A repeated axis, or an unknown ``device``.
    numbadask.GPUUnavailableError
        ``device="gpu"`` with no usable GPU and the simulator off.
"""


def with_parameters(func: Any) -> Any:
    """Put :data:`PARAMETERS` where ``func``'s docstring says ``{parameters}``."""
    func.__doc__ = func.__doc__.replace("    {parameters}\n", PARAMETERS.lstrip("\n"))
    return func
