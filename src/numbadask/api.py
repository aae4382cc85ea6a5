"""The public reductions: validate like NumPy, then build the graph (:mod:`numbadask.graph`)."""

from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple

import dask
import numpy as np

from . import dispatch, graph, specs
from .specs import Reduction

if TYPE_CHECKING:
    import dask.array as da

# dask.array is imported inside the functions, not here: importing it imports CuPy
# when CuPy is installed (dask/array/chunk_types.py), and `import numbadask` must not.

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple

Axis = int | tuple[int, ...] | None

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
    """NumPy's axis rules: None means all; ints only; in range; no repeats."""
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
    ``dtype=`` argument: NumPy's own rule, asked on a one-element array."""
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


def _nan_to_zero(block: Any) -> Any:
    xp = dispatch.array_module(block)
    return xp.where(xp.isnan(block), 0, block)


def _cast_first(x: da.Array, dtype: Any, spec: Reduction) -> da.Array:
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
        return (x.map_blocks(_nan_to_zero, dtype=x.dtype) if spec.name.startswith("nan") else x).astype(dtype)
    if kind == "f" and x.dtype.kind in "biu" and spec.name in ("sum", "nansum"):
        return x.astype(np.float64)
    return x


def _mean_in_integers(x: da.Array, axes: tuple[int, ...], dtype: Any, keepdims: bool, split_every: Any, device: str) -> da.Array:
    """np.mean with an integer or bool ``dtype=``: the sum in that dtype (wrapping
    around as NumPy's does), divided by the count and cast back, as NumPy computes it."""
    count = math.prod(x.shape[a] for a in axes)
    if math.isnan(count):
        raise ValueError("mean with an integer dtype= needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes() first")
    total = _reduce(specs.SUM, _cast_first(x, dtype, specs.SUM), axes, np.dtype(dtype), keepdims, split_every, device)
    return (total / count).astype(dtype)


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


def _split_every(split_every: Any) -> Any:
    if split_every is not None:
        return split_every
    return dask.config.get("split_every", None) or DEFAULT_SPLIT_EVERY


def _reduce(
    spec: Reduction,
    x: da.Array,
    axes: tuple[int, ...],
    result_dtype: Any,
    keepdims: bool,
    split_every: Any,
    device: str,
    meta: Any = None,
    chunk: Any = None,
    label: str | None = None,
    token: tuple = (),
) -> da.Array:
    """Chunk states from ``spec``'s kernels (or from ``chunk(block)``, named ``label``
    in errors, with ``token`` telling its graphs apart), merged in a tree, finalized to
    the result."""
    from dask.base import tokenize

    out_ndim = x.ndim if keepdims else x.ndim - len(axes)
    return graph.reduction(
        x,
        f"numbadask-{spec.name}",
        tokenize(x, spec.name, axes, device, *token),
        axes,
        chunk or partial(specs.chunk, reduction=spec, axes=axes, device=device),
        label or f"numbadask.{spec.name} (kernel {spec.kernel(x.dtype)})",
        partial(specs.combine, reduction=spec),
        partial(specs.aggregate, reduction=spec, result_dtype=result_dtype),
        keepdims,
        _split_every(split_every),
        result_meta(x, out_ndim, result_dtype, device) if meta is None else meta,
    )


def _sum_like(
    spec: Reduction, numpy_func: Any, a: Any, axis: Axis, dtype: Any, keepdims: bool, split_every: Any, device: str
) -> da.Array:
    """Validate like NumPy, then build the reduction ``spec``."""
    x = as_dask_array(a, spec.name)
    axes = normalize_axes(axis, x.ndim)
    result_dtype = result_dtype_of(numpy_func, x.dtype, dtype)
    dispatch.check_device(device)
    if spec.name in ("mean", "nanmean") and result_dtype.kind in "biu":
        return _mean_in_integers(x, axes, result_dtype, bool(keepdims), split_every, device)
    return _reduce(spec, _cast_first(x, dtype, spec), axes, result_dtype, bool(keepdims), split_every, device)


_PARAMETERS = """
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


def _with_parameters(func: Any) -> Any:
    func.__doc__ = func.__doc__.replace("    {parameters}\n", _PARAMETERS.lstrip("\n"))
    return func


@_with_parameters
def sum(
    a: Any,
    axis: Axis = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> da.Array:
    """Sum along the given axes, computed by a Numba kernel per chunk.

    NumPy's semantics: bool and integer input sum exactly in int64 (uint64 for unsigned),
    wrapping as NumPy does; float input sums in float64 with compensation (NumPy sums
    float32 in float32), then is cast to the result dtype (float32 stays float32).
    NaN propagates.

    A hand-written kernel, not the generic :func:`numbadask.reduction` path (which is
    as fast on float64, bench/NOTES.md): compensated float sums and exact integer sums
    need more than that path's float64 states.  The same holds for :func:`nansum`,
    :func:`mean` and :func:`nanmean`.

    {parameters}
    Examples
    --------
    >>> import dask.array as da
    >>> import numbadask
    >>> x = da.arange(12, chunks=5).reshape(3, 4)
    >>> int(numbadask.sum(x).compute())
    66
    >>> numbadask.sum(x, axis=0).compute()
    array([12, 15, 18, 21])
    """
    return _sum_like(specs.SUM, np.sum, a, axis, dtype, keepdims, split_every, device)


@_with_parameters
def nansum(
    a: Any,
    axis: Axis = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> da.Array:
    """Sum along the given axes treating NaN as zero (:func:`numpy.nansum`).

    An all-NaN or empty slice sums to 0.  Accumulators as in :func:`sum`.

    {parameters}
    Examples
    --------
    >>> import numpy as np, numbadask
    >>> float(numbadask.nansum(np.array([1.0, np.nan, 2.0])).compute())
    3.0
    """
    return _sum_like(specs.NANSUM, np.nansum, a, axis, dtype, keepdims, split_every, device)


@_with_parameters
def nanmean(
    a: Any,
    axis: Axis = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> da.Array:
    """Mean along the given axes ignoring NaN (:func:`numpy.nanmean`).

    An all-NaN or empty slice gives NaN with NumPy's ``RuntimeWarning: Mean of empty
    slice`` (at compute time).  Every input accumulates in float64.

    {parameters}
    Examples
    --------
    >>> import numpy as np, numbadask
    >>> float(numbadask.nanmean(np.array([1.0, np.nan, 2.0])).compute())
    1.5
    """
    return _sum_like(specs.NANMEAN, np.nanmean, a, axis, dtype, keepdims, split_every, device)


_MINMAX_DOC = """{summary}

    One read of each chunk finds its smallest and largest non-NaN values and counts the
    NaN; {nan_rule}  Reducing over an empty axis raises NumPy's ``ValueError``.  Same
    parameters as :func:`sum`, less ``dtype``; the result has the input's dtype.

    A hand-written kernel, not the generic :func:`numbadask.reduction` path: it keeps
    the input's dtype exactly (int64 beyond 2**53 included; that path keeps float64)
    and vectorizes through LLVM's ``minnum``/``maxnum`` intrinsics, where ``min()``
    and ``max()`` in a generic merge do not (0.73-0.75x the speed, bench/NOTES.md).

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.{name}(np.array([[3.0, np.nan, 1.0], [2.0, 5.0, 4.0]]), axis=1).compute()
    array({example})
    """


def _minmax_function(spec: Reduction, numpy_func: Any, summary: str, nan_rule: str, example: str) -> Any:
    def reduce(
        a: Any,
        axis: Axis = None,
        keepdims: bool = False,
        split_every: int | dict[int, int] | None = None,
        device: str = "auto",
    ) -> da.Array:
        return _sum_like(spec, numpy_func, a, axis, None, keepdims, split_every, device)

    reduce.__name__ = reduce.__qualname__ = spec.name
    reduce.__doc__ = _MINMAX_DOC.format(summary=summary, nan_rule=nan_rule, name=spec.name, example=example)
    return reduce


_PROPAGATES = "a slice holding NaN gives NaN, as in NumPy."
_SKIPS = 'NaN are skipped; an all-NaN slice gives NaN with NumPy\'s ``RuntimeWarning: All-NaN slice encountered``.'

min = _minmax_function(specs.MIN, np.min, "Minimum along the given axes (:func:`numpy.min`).", _PROPAGATES, "[nan,  2.]")
max = _minmax_function(specs.MAX, np.max, "Maximum along the given axes (:func:`numpy.max`).", _PROPAGATES, "[nan,  5.]")
nanmin = _minmax_function(specs.NANMIN, np.nanmin, "Minimum ignoring NaN (:func:`numpy.nanmin`).", _SKIPS, "[1., 2.]")
nanmax = _minmax_function(specs.NANMAX, np.nanmax, "Maximum ignoring NaN (:func:`numpy.nanmax`).", _SKIPS, "[3., 5.]")
ptp = _minmax_function(specs.PTP, np.ptp, "Range, maximum minus minimum (:func:`numpy.ptp`).", _PROPAGATES, "[nan,  3.]")


def check_ddof(ddof: Any) -> int | float:
    """``ddof`` as NumPy takes it, any finite real number (the divisor is ``n - ddof``);
    a bool, a non-number or a non-finite value is refused."""
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise TypeError(f"ddof must be a finite real number, got {ddof!r} ({type(ddof).__name__})")
    if not np.isfinite(ddof):
        raise ValueError(f"ddof must be a finite real number, got {ddof}")
    return int(ddof) if isinstance(ddof, (int, np.integer)) else float(ddof)


def _variance_like(
    name: str, numpy_func: Any, a: Any, axis: Axis, dtype: Any, keepdims: bool, ddof: Any, split_every: Any, device: str
) -> da.Array:
    x = as_dask_array(a, name)
    if dtype is not None and np.dtype(dtype).kind in "biu":
        raise TypeError(
            f"numbadask.{name} computes in floating point: dtype= must be a float dtype, got dtype={np.dtype(dtype)} "
            "(NumPy would square and sum in that integer type, wrapping around)"
        )
    # NumPy's nanvar/nanstd of input that cannot hold NaN are var/std, rules included.
    skipna = name.startswith("nan") and x.dtype.kind == "f"
    spec = specs.variance_reduction(name, check_ddof(ddof), skipna=skipna, root=name.endswith("std"))
    return _sum_like(spec, numpy_func, x, axis, dtype, keepdims, split_every, device)


_VAR_DOC = """{summary}

    Each chunk keeps shifted moments (the count, a shift K taken from the data, and the
    sums of x - K and (x - K)**2) in float64, merged through exact shift differences:
    stable on data with a large offset (1e9 + U(0, 1)) where a plain sum of squares
    loses every digit.  {nan_rule}  ``ddof`` is any finite real number, as in NumPy
    (the divisor is ``n - ddof``); where ``n - ddof <= 0`` the result is NaN (or inf)
    with NumPy's warning ``Degrees of freedom <= 0 for slice``.  Other parameters as
    in :func:`sum`.  A hand-written kernel, not the generic :func:`numbadask.reduction`
    path: the shift is taken from each chunk's data and states merge through exact
    shift differences.

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> x = 1e9 + np.array([[1.0, 2.0, 3.0, 4.0], [2.0, np.nan, 2.0, 2.0]])
    >>> numbadask.{name}(x, axis=1{ddof_example}).compute()
    array({example})
    """


def _variance_function(name: str, numpy_func: Any, summary: str, nan_rule: str, example: str) -> Any:
    def reduce(
        a: Any,
        axis: Axis = None,
        dtype: Any = None,
        keepdims: bool = False,
        ddof: float = 0,
        split_every: int | dict[int, int] | None = None,
        device: str = "auto",
    ) -> da.Array:
        return _variance_like(name, numpy_func, a, axis, dtype, keepdims, ddof, split_every, device)

    reduce.__name__ = reduce.__qualname__ = name
    ddof_example = ", ddof=1" if name.endswith("std") else ""
    reduce.__doc__ = _VAR_DOC.format(summary=summary, nan_rule=nan_rule, name=name, example=example, ddof_example=ddof_example)
    return reduce


var = _variance_function("var", np.var, "Variance along the given axes (:func:`numpy.var`).", "NaN propagates.", "[1.25,  nan]")
std = _variance_function("std", np.std, "Standard deviation along the given axes (:func:`numpy.std`).", "NaN propagates.", "[1.29099445,        nan]")
nanvar = _variance_function("nanvar", np.nanvar, "Variance ignoring NaN (:func:`numpy.nanvar`).", "NaN are skipped.", "[1.25, 0.  ]")
nanstd = _variance_function("nanstd", np.nanstd, "Standard deviation ignoring NaN (:func:`numpy.nanstd`).", "NaN are skipped.", "[1.29099445, 0.        ]")


class MomentsResult(NamedTuple):
    """The lazy results of :func:`moments`; they share one graph."""

    count: Any
    sum: Any
    mean: Any
    var: Any
    std: Any
    min: Any
    max: Any


def _finish_moment(
    block: Any, field: str, ddof: int | float, skipna: bool, result_dtype: np.dtype, axes: tuple[int, ...], keepdims: bool
) -> Any:
    """One field of :func:`moments` from the merged state in ``block``."""
    state = block.state
    xp = dispatch.array_module(state.s1)
    n = state.count
    bad = (n == 0) if skipna else (n < state.seen) | (n == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if field == "count":
            value = n
        elif field == "sum":
            value = xp.where(n > 0, state.shift * n + state.s1, 0.0)
            value = value if skipna else xp.where(n < state.seen, np.nan, value)
        elif field == "mean":
            value = xp.where(bad, np.nan, state.shift + state.s1 / n)
        elif field in ("var", "std"):
            value = specs.variance(state, ddof, skipna)
            value = xp.sqrt(value) if field == "std" else value
        else:
            value = state.lo if field == "min" else state.hi
            if value.dtype.kind == "f":
                value = xp.where(bad, np.nan, value)
    return specs.drop_axes(value.astype(result_dtype), axes, keepdims)


def moments(
    a: Any,
    axis: Axis = None,
    ddof: float = 0,
    skipna: bool = False,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> MomentsResult:
    """count, sum, mean, var, std, min and max in one read of the data.

    One fused, hand-written kernel per chunk (for the reasons given in :func:`var` and
    :func:`min`) keeps the count, shifted moments (as :func:`var`) and the min and max; the states merge through exact shift differences (numerically stable,
    like Chan et al.'s pairwise update but exact in the shift).  The seven results are
    lazy Dask arrays of one graph: computing any or all of them (``dask.compute(*m)``)
    reads the data once.

    Parameters
    ----------
    a, axis, keepdims, split_every, device
        As in :func:`sum`.
    ddof : int or float, optional
        Delta degrees of freedom of ``var`` and ``std`` (any finite real, as in NumPy).
    skipna : bool, optional
        Skip NaN (the nan-functions' semantics) instead of propagating it.

    Returns
    -------
    MomentsResult
        ``count`` (int64: non-NaN values), ``sum``, ``mean``, ``var``, ``std`` (float64,
        or float32/float16 for such input), ``min``, ``max`` (the input's dtype).  Slices
        with no values give NaN (sum 0, count 0) without warnings; ``sum`` of integer
        input is float64 here (use :func:`sum` for exact integer sums).

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> m = numbadask.moments(np.array([1.0, 2.0, 4.0, np.nan]), skipna=True)
    >>> [round(float(v), 12) for v in dask.compute(m.count, m.mean, m.var, m.min, m.max)]
    [3.0, 2.333333333333, 1.555555555556, 1.0, 4.0]
    """
    x = as_dask_array(a, "moments")
    axes = normalize_axes(axis, x.ndim)
    ddof = check_ddof(ddof)
    dispatch.check_device(device)
    meta = np.empty((0,) * x.ndim, dtype=object)
    state = _reduce(specs.MOMENTS, x, axes, None, True, split_every, device, meta=meta)
    mean_dtype = result_dtype_of(np.mean, x.dtype, None)
    dtypes = {
        "count": np.dtype(np.int64),
        "sum": mean_dtype if x.dtype.kind == "f" else np.dtype(np.float64),
        "mean": mean_dtype,
        "var": mean_dtype,
        "std": mean_dtype,
        "min": x.dtype,
        "max": x.dtype,
    }
    fields = {}
    for field, dtype in dtypes.items():
        finish = partial(
            _finish_moment,
            field=field,
            ddof=ddof,
            skipna=bool(skipna) and x.dtype.kind == "f",  # as NumPy's nan-functions of ints
            result_dtype=dtype,
            axes=axes,
            keepdims=bool(keepdims),
        )
        meta = result_meta(x, x.ndim if keepdims else x.ndim - len(axes), dtype, device)
        fields[field] = graph.finish_blocks(state, f"numbadask-moments-{field}", finish, axes, bool(keepdims), meta)
    return MomentsResult(**fields)


def _arg_reduce(spec: Reduction, want_max: bool, a: Any, axis: Any, keepdims: bool, split_every: Any, device: str) -> da.Array:
    """Build an arg reduction: a chunk layer that knows each chunk's offsets, then
    dask.array's tree reduction with the same combine and aggregate as the others."""
    from dask.base import tokenize

    x = as_dask_array(a, spec.name)
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"numbadask.{spec.name} takes axis=None or an int, got {axis!r}")
        axis = normalize_axis_tuple(int(axis), x.ndim)[0]
    axes = tuple(range(x.ndim)) if axis is None else (axis,)
    if any(np.isnan(c) for i in axes for c in x.chunks[i]):
        raise ValueError(f"numbadask.{spec.name} needs known chunk sizes along the reduced axes; call x.compute_chunk_sizes()")
    if (x.size if axis is None else x.shape[axis]) == 0:
        raise ValueError(f"attempt to get {spec.name.removeprefix('nan')} of an empty sequence")
    dispatch.check_device(device)
    return graph.reduction(
        x,
        f"numbadask-{spec.name}",
        tokenize(x, spec.name, axis, device),
        axes,
        partial(specs.arg_chunk, reduction=spec, device=device, axis=axis, shape=x.shape, want_max=want_max),
        f"numbadask.{spec.name} (kernel argminmax)",
        partial(specs.combine, reduction=spec),
        partial(specs.aggregate, reduction=spec, result_dtype=np.dtype(np.intp)),
        bool(keepdims),
        _split_every(split_every),
        result_meta(x, x.ndim if keepdims else x.ndim - len(axes), np.dtype(np.intp), device),
        with_offsets=True,
    )


_ARG_DOC = """{summary}

    NumPy's rules: ``axis`` is None (an index into the flattened array) or an int; ties
    go to the first occurrence; {nan_rule}  Indices are global across chunks.  Same
    ``keepdims``, ``split_every`` and ``device`` as :func:`sum`.  A hand-written
    kernel: the generic :func:`numbadask.reduction` path never sees an element's index.

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.{name}(np.array([[3.0, np.nan, 1.0], [2.0, 5.0, 2.0]]), axis=1).compute()
    array({example})
    """


def _arg_function(spec: Reduction, want_max: bool, summary: str, nan_rule: str, example: str) -> Any:
    def reduce(
        a: Any,
        axis: int | None = None,
        keepdims: bool = False,
        split_every: int | dict[int, int] | None = None,
        device: str = "auto",
    ) -> da.Array:
        return _arg_reduce(spec, want_max, a, axis, keepdims, split_every, device)

    reduce.__name__ = reduce.__qualname__ = spec.name
    reduce.__doc__ = _ARG_DOC.format(summary=summary, nan_rule=nan_rule, name=spec.name, example=example)
    return reduce


_ARG_NAN = "a slice holding NaN gives the index of its first NaN."
_ARG_SKIP = (
    "NaN are skipped; an all-NaN slice raises ``ValueError: All-NaN slice encountered``.  "
    "The index is always a non-NaN value's: NumPy's version returns a NaN's index when the "
    "extreme is an infinity that comes after a NaN (it replaces NaN by that infinity)."
)

argmin = _arg_function(specs.ARGMIN, False, "Index of the minimum (:func:`numpy.argmin`).", _ARG_NAN, "[1, 0]")
argmax = _arg_function(specs.ARGMAX, True, "Index of the maximum (:func:`numpy.argmax`).", _ARG_NAN, "[1, 1]")
nanargmin = _arg_function(specs.NANARGMIN, False, "Index of the minimum ignoring NaN (:func:`numpy.nanargmin`).", _ARG_SKIP, "[2, 0]")
nanargmax = _arg_function(specs.NANARGMAX, True, "Index of the maximum ignoring NaN (:func:`numpy.nanargmax`).", _ARG_SKIP, "[0, 1]")


def count(
    a: Any,
    axis: Axis = None,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> da.Array:
    """Number of non-NaN values along the given axes (int64, like ``np.count_nonzero``).

    Same parameters as :func:`sum`, less ``dtype``.  Float input is counted by the
    generic kernels of :func:`numbadask.reduction` (a float64 count per output, exact
    up to 2**53 values), measured as fast as the hand-written NaN-skipping sum it
    replaced; integer and bool input need no kernel (the count is the slice length).

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> numbadask.count(np.array([[1.0, np.nan], [np.nan, np.nan]]), axis=1).compute()
    array([1, 0])
    """
    return _sum_like(specs.COUNT, _numpy_count, a, axis, None, keepdims, split_every, device)


def _numpy_count(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """The NumPy definition of :func:`count` (used for its result dtype)."""
    return np.count_nonzero(a == a, axis=None) if dtype is None else np.asarray(0, dtype=dtype)


@_with_parameters
def mean(
    a: Any,
    axis: Axis = None,
    dtype: Any = None,
    keepdims: bool = False,
    split_every: int | dict[int, int] | None = None,
    device: str = "auto",
) -> da.Array:
    """Arithmetic mean along the given axes, computed by a Numba kernel per chunk.

    Same signature, values, dtype and shape as :func:`dask.array.mean` (and so
    :func:`numpy.mean`), plus ``device``.  Every input dtype accumulates in float64
    (NumPy sums float32 in float32), so float32 means are as accurate as float64 ones
    before the final cast.  An empty slice gives NaN with NumPy's ``RuntimeWarning:
    Mean of empty slice`` (at compute time).

    {parameters}
    Examples
    --------
    >>> import dask.array as da
    >>> import numbadask
    >>> x = da.arange(12, chunks=5).reshape(3, 4)
    >>> float(numbadask.mean(x).compute())
    5.5
    >>> numbadask.mean(x, axis=0).compute()
    array([4., 5., 6., 7.])
    """
    return _sum_like(specs.MEAN, np.mean, a, axis, dtype, keepdims, split_every, device)
