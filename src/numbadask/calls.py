"""A call of a reduction: its arguments checked as NumPy checks them, then its graph.

:func:`reduce_call` serves every public reduction function: it reads what the
:class:`~numbadask.reduction.Reduction` declares (its NumPy function, NaN, ``dtype=``
and ``ddof`` rules) and hands the graph to :mod:`numbadask.graph`.
"""

from __future__ import annotations

import inspect
import math
import warnings
from contextvars import ContextVar
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


#: The names of dask.array's reductions numbadask answers for (``count`` and
#: ``moments`` have no dask.array twin: their hand-off is built from these).
DASK_NAMES: tuple[str, ...] = (
    "sum", "mean", "var", "std", "min", "max", "ptp", "argmin", "argmax", "nansum", "nanmean",
    "nanvar", "nanstd", "nanmin", "nanmax", "nanargmin", "nanargmax",
)  # fmt: skip

_DASK_FUNCTIONS: dict[str, Any] = {}


def _is_dask_own(func: Any) -> bool:
    return callable(func) and str(getattr(func, "__module__", "")).startswith("dask.")


def remember_dask_functions() -> dict[str, Any]:
    """dask.array's own reduction functions by name, read once, the first time any is
    needed: the functions numbadask hands calls to.  Whatever replaces
    ``dask.array.sum`` and its kin later (``numbadask.accelerate()``) must call this
    first, so that a hand-off reaches dask.array's code and not numbadask again.

    Examples
    --------
    >>> remember_dask_functions()["sum"].__module__
    'dask.array.reductions'
    """
    if not _DASK_FUNCTIONS:
        import dask.array as da
        import dask.array.reductions
        import dask.array.routines

        found = {}
        for name in DASK_NAMES:
            for home in (dask.array.reductions, dask.array.routines, da):
                func = getattr(home, name, None)
                func = inspect.unwrap(func) if callable(func) else func  # a router made by functools.wraps
                if _is_dask_own(func):
                    found[name] = func
                    break
        _DASK_FUNCTIONS.update(found)
    return _DASK_FUNCTIONS


def dask_function(name: str) -> Any:
    """dask.array's own function ``name`` (see :func:`remember_dask_functions`)."""
    func = _DASK_FUNCTIONS.get(name) or remember_dask_functions().get(name)
    if func is None:
        raise RuntimeError(
            f"dask.array.{name} is not dask's own function (replaced before numbadask could remember it): "
            "call numbadask.calls.remember_dask_functions() before replacing dask.array's reductions"
        )
    return func


def _plain_chunk_type(kind: type) -> bool:
    """Chunks the kernels reduce as they are: exactly ``numpy.ndarray`` (or a memory
    map of one, which holds nothing more) or exactly ``cupy.ndarray``."""
    return kind is np.ndarray or kind is np.memmap or (kind.__name__ == "ndarray" and kind.__module__.split(".")[0] == "cupy")


def kernel_reduces(x: Any) -> bool:
    """True when numbadask's kernels reduce the Dask array ``x``: a bool, integer or
    float dtype, and a meta (so chunks) of exactly ``numpy.ndarray`` or
    ``cupy.ndarray``.  Everything else is handed to dask.array (:func:`hand_off`).
    Two attribute reads per call."""
    return x.dtype.kind in _SUPPORTED_KINDS and _plain_chunk_type(type(x._meta))


def kernel_input(a: Any) -> tuple[da.Array | None, Any]:
    """``(x, a)``: ``a`` as a Dask array the kernels reduce, or ``(None, a)`` for input to
    hand to dask.array (``a`` then made an array if it was a list or a scalar).

    Dask arrays as they are; NumPy and CuPy arrays (and other array types: subclasses,
    sparse arrays) wrapped with Dask's automatic chunks (no copy); anything else through
    :func:`numpy.asarray`.

    Examples
    --------
    >>> kernel_input([1, 2, 3])[0].chunks
    ((3,),)
    >>> kernel_input(np.array([1j]))[0] is None
    True
    """
    import dask.array as da

    if not _DASK_FUNCTIONS:
        remember_dask_functions()
    if isinstance(a, da.Array):
        return (a if kernel_reduces(a) else None), a
    if isinstance(a, np.generic) or not (isinstance(a, np.ndarray) or hasattr(a, "__array_function__")):
        a = np.asarray(a)
    if a.dtype.kind not in _SUPPORTED_KINDS or not _plain_chunk_type(type(a)):
        return None, a
    return da.from_array(a, chunks="auto", asarray=False), a


def as_dask_array(a: Any, func: str) -> da.Array:
    """``a`` as a Dask array of a dtype and chunk type ``func`` reduces (a reduction
    with no dask.array twin to hand other input to: :func:`numbadask.reduction`'s);
    anything else refused with a ``TypeError``.

    Examples
    --------
    >>> as_dask_array([1, 2, 3], "sum").chunks
    ((3,),)
    """
    x, a = kernel_input(a)
    if x is None:
        check_input_dtype(func, np.dtype(a.dtype))
        raise TypeError(
            f"numbadask.{func} reduces chunks of exactly numpy.ndarray or cupy.ndarray; got chunks of "
            f"{type(getattr(a, '_meta', a)).__module__}.{type(getattr(a, '_meta', a)).__name__}"
        )
    return x


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


#: False while :func:`numbadask.accelerate` builds a routed call's graph: its results
#: then finish without NumPy's empty-slice warnings, as dask.array's do
#: (:data:`numbadask.definition.EMPTY_SLICE_WARNINGS`).  Read once per graph, in
#: :func:`reduce`; the flag travels in the graph (and its keys), not in the thread.
NUMPY_WARNINGS: ContextVar[bool] = ContextVar("numbadask_numpy_warnings", default=True)


def _split_every(split_every: SplitEvery) -> tuple[Any, bool]:
    """The fan-in, and whether the call or dask's ``split_every`` config set it (then
    the tree is dask.array's, of dask's depth: :func:`numbadask.graph.dask_fan_in`)."""
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
    split_every, dask_rule = _split_every(split_every)
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


def _arg_axes(r: Reduction, x: da.Array, axis: Any) -> tuple[int, ...]:
    """NumPy's argmin/argmax rules: axis None (flat indices) or one int; no empty
    slices; and, as our indices are global, known chunk sizes."""
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"numbadask.{r.name} takes axis=None or an int, got {axis!r}")
        axis = normalize_axis_tuple(int(axis), x.ndim)[0]
    axes = tuple(range(x.ndim)) if axis is None else (axis,)
    if any(len(x.chunks[i]) > 1 and any(np.isnan(c) for c in x.chunks[i]) for i in axes):  # dask.array's rule and words
        raise ValueError(
            f"numbadask.{r.name}: arg-reductions do not work with arrays that have unknown chunksizes "
            "along the reduced axes (global indices need them); call x.compute_chunk_sizes()"
        )
    if (x.size if axis is None else x.shape[axis]) == 0:
        raise ValueError(f"attempt to get {r.name.removeprefix('nan')} of an empty sequence")
    return axes


def hand_off(r: Reduction, a: Any, axis: Any, dtype: Any, keepdims: Any, split_every: SplitEvery, out: Any, ddof: Any) -> Any:
    """dask.array's own answer to the call: its function of ``r``'s name with the
    call's arguments (``device`` is not used: dask.array computes where the chunks
    are).  :func:`numbadask.ptp` takes dask.array's max minus its min (``dask.array.ptp``
    takes no ``keepdims``), :func:`numbadask.count` dask.array's sum of ``a == a`` (NaN
    and NaT are not equal to themselves)."""
    import dask.array as da
    from dask.array.core import handle_out

    kwargs: dict[str, Any] = {"axis": axis, "keepdims": keepdims, "split_every": split_every}
    if r.name == "ptp":
        x = da.asanyarray(a)
        return handle_out(out, dask_function("max")(x, **kwargs) - dask_function("min")(x, **kwargs))
    if r.name == "count":
        x = da.asanyarray(a)
        return dask_function("sum")(x == x, dtype=np.int64, out=out, **kwargs)
    if r.integer_dtype is not None:
        kwargs["dtype"] = dtype
    if "ddof" in r.options:
        kwargs["ddof"] = ddof
    return dask_function(r.name)(a, out=out, **kwargs)


def reduce_call(
    r: Reduction,
    a: Any,
    axis: Any = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: SplitEvery = None,
    device: str = "auto",
    ddof: Any = 0,
    out: Any = None,
) -> da.Array:
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
    if dtype is not None and np.dtype(dtype).kind not in _SUPPORTED_KINDS:  # complex, strings, ...: dask.array's answer
        return hand_off(r, x, axis, dtype, keepdims, split_every, None, ddof)
    if dtype is not None and r.skipna and r.integer_dtype in ("divide", "two-pass") and x.dtype.kind == "f" and np.dtype(dtype).kind in "biu":
        # np.nanmean/nanvar/nanstd of floats refuse an integer dtype=; dask.array answers
        return hand_off(r, x, axis, dtype, keepdims, split_every, None, ddof)
    if r.indexed:
        axes = _arg_axes(r, x, axis)
        result_dtype = np.dtype(np.intp)
    else:
        axes = normalize_axes(axis, x.ndim)
        if dtype is not None and np.dtype(dtype).kind in "biu" and r.integer_dtype == "two-pass":
            ddof = check_ddof(ddof)
            dispatch.check_device(device)
            return _var_in_integers(r, x, axes, np.dtype(dtype), keepdims, split_every, device, ddof)
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


def _var_in_integers(
    r: Reduction, x: da.Array, axes: tuple[int, ...], dtype: np.dtype, keepdims: bool, split_every: SplitEvery, device: str, ddof: float
) -> da.Array:
    """np.var and np.std with an integer or bool ``dtype=``, as NumPy computes them
    (``numpy/_core/_methods.py``): the mean is the sum in that dtype (elements cast
    first) divided by the count and cast back; the squared deviations are cast to it
    and summed in it; the sum divided by ``max(n - ddof, 0)`` and cast back (std: its
    square root, cast back).  Two reads of the data, as NumPy's two passes."""
    from .sums import SUM  # here: numbadask.sums imports this module

    count = math.prod(x.shape[a] for a in axes)
    if math.isnan(count):
        raise ValueError(f"{r.name} with an integer dtype= needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    if count - ddof <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=4)
    with np.errstate(all="ignore"):
        total = reduce(SUM, _cast_first(x, dtype, SUM), axes, dtype, True, split_every, device)
        mean = (total / count).astype(dtype)
        deviation = x - mean
        squares = deviation * deviation if deviation.dtype.kind != "b" else deviation
        ret = reduce(SUM, _cast_first(squares, dtype, SUM), axes, dtype, keepdims, split_every, device)
        ret = (ret / max(count - ddof, 0)).astype(dtype)
        if r.finalize.keywords.get("field") == "std":
            ret = ret.map_blocks(np.sqrt, dtype=np.float64).astype(dtype)
    return ret


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


def with_parameters(func: Any) -> Any:
    """Put :data:`PARAMETERS` where ``func``'s docstring says ``{parameters}``."""
    func.__doc__ = func.__doc__.replace("    {parameters}\n", "    " + HANDOFF + "\n" + PARAMETERS)
    return func
