"""A call's arguments checked as NumPy checks them, and which input the kernels take.

NumPy's rules for ``axis``, ``ddof``, ``dtype=`` and the arg-reductions' axis; the
result dtype NumPy gives; and the one test of whether numbadask's kernels reduce an
array (:func:`kernel_reduces`: a bool, integer or float dtype in chunks of exactly
``numpy.ndarray`` or ``cupy.ndarray``) or hand it to dask.array (:mod:`.handoff`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.engine.handoff import remember_dask_functions

if TYPE_CHECKING:
    import dask.array as da

    from numbadask.engine.definition import Reduction

# dask.array is imported inside the functions, not here: importing it imports CuPy
# when CuPy is installed (dask/array/chunk_types.py), and `import numbadask` must not.

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple


Axis = int | tuple[int, ...] | None

SplitEvery = int | dict[int, int] | None

SUPPORTED_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def _plain_chunk_type(kind: type) -> bool:
    """Chunks the kernels reduce as they are: exactly ``numpy.ndarray`` (or a memory
    map of one, which holds nothing more) or exactly ``cupy.ndarray``."""
    return kind is np.ndarray or kind is np.memmap or (kind.__name__ == "ndarray" and kind.__module__.split(".")[0] == "cupy")


def kernel_reduces(x: Any) -> bool:
    """True when numbadask's kernels reduce the Dask array ``x``: a bool, integer or
    float dtype, and a meta (so chunks) of exactly ``numpy.ndarray`` or
    ``cupy.ndarray``.  Everything else is handed to dask.array (:func:`hand_off`).
    Two attribute reads per call."""
    return x.dtype.kind in SUPPORTED_KINDS and _plain_chunk_type(type(x._meta))


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

    remember_dask_functions()  # before anything replaces them (numbadask.accelerate)
    if isinstance(a, da.Array):
        return (a if kernel_reduces(a) else None), a
    if isinstance(a, np.generic) or not (isinstance(a, np.ndarray) or hasattr(a, "__array_function__")):
        a = np.asarray(a)
    if a.dtype.kind not in SUPPORTED_KINDS or not _plain_chunk_type(type(a)):
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
    if dtype.kind not in SUPPORTED_KINDS:
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
        if dtype.kind not in SUPPORTED_KINDS:
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


def arg_axes(r: Reduction, x: da.Array, axis: Any) -> tuple[int, ...]:
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
