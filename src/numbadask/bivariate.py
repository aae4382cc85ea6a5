"""Statistics of two aligned arrays in one read: :func:`comoments`, :func:`cov`,
:func:`corr`, :func:`product_means` (mean(x*x), mean(y*y), mean(x*y)) and
:func:`average` (weighted means, :func:`numpy.average`'s rules; also the accessor's
``weighted``).

The graph: x and y are broadcast and chunk-aligned as ``da.blockwise`` inputs; one
task per pair of aligned blocks reduces both with one ``@numba.njit`` kernel
(:mod:`numbadask.cpu_comoments`) into a small state in the keepdims shape; the states
merge in numbadask's fixed-order tree (:func:`numbadask.graph.tree_reduce`), and each
result is finished from the merged state (:func:`numbadask.graph.finish_blocks`), so
all of them share one graph and one read of the inputs.  Chunks must be
``numpy.ndarray`` (the njit kernels) or CuPy arrays (one CUDA kernel per block pair,
made by :func:`numbadask.reduction` from :func:`_costate` and :func:`_weighted_pair`);
masked, sparse and other chunk types raise ``TypeError`` when computed rather than have
their masks ignored.  Legacy and query-planning (expression-backed) Dask Arrays alike.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import graph
from .calls import Axis, SplitEvery, _split_every, check_ddof, normalize_axes
from .custom import reduction
from .definition import drop_axes
from .dispatch import array_module, is_cupy_array

if TYPE_CHECKING:
    import dask.array as da

_KINDS = "biuf"


class CoState(NamedTuple):
    """Merged co-moments per output position (arrays in the keepdims shape): pairs
    with neither value NaN, shifts Kx and Ky taken from the data, the means of x - Kx
    and y - Ky over those pairs, the centred second sums, and how many pairs each
    position saw (an int).  The means are kept relative to the shifts so that an offset
    (1e8 + noise) costs no digits of their differences in the merges."""

    count: Any
    kx: Any
    ky: Any
    mean_x: Any
    mean_y: Any
    m2x: Any
    m2y: Any
    cxy: Any
    seen: int


class ComomentsResult(NamedTuple):
    """The lazy results of :func:`comoments`; they share one graph (one read)."""

    count: Any
    mean_x: Any
    mean_y: Any
    var_x: Any
    var_y: Any
    cov: Any
    corr: Any


def _as_dask(a: Any, func: str, what: str, like: Any = None) -> da.Array:
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


def _aligned(x: Any, y: Any, func: str, names: tuple[str, str]) -> tuple[da.Array, da.Array, tuple[int, ...]]:
    """x and y as Dask arrays, and their broadcast shape (they are broadcast block by
    block and cut alike in :func:`_state_graph`, as ``da.blockwise`` inputs)."""
    import dask.array as da

    if isinstance(y, da.Array) and not isinstance(x, da.Array):
        y = _as_dask(y, func, names[1])
        x = _as_dask(x, func, names[0], like=y)
    else:
        x = _as_dask(x, func, names[0])
        y = _as_dask(y, func, names[1], like=x)
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"numbadask.{func}: {names[0]} of shape {x.shape} and {names[1]} of shape {y.shape} do not broadcast together") from None
    return x, y, shape


def _paired(x: Any, y: Any, chunk: Any, axes: tuple[int, ...]) -> Any:
    """``chunk`` of one block of x and the aligned block of y, broadcast to one shape
    (views, no copies)."""
    _check_chunks(x, y)  # before broadcast_arrays, which would drop a mask
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


def _two_d(block: Any, axes: tuple[int, ...], rows: bool | None = None) -> tuple[Any, bool]:
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


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if a in axes else n for a, n in enumerate(shape))


def _check_chunks(*blocks: Any) -> None:
    """Only NumPy and CuPy chunks: a masked, sparse or other array type would have its
    mask or layout ignored by the code here (a silently wrong number)."""
    for block in blocks:
        if type(block) is not np.ndarray and not is_cupy_array(block):
            raise TypeError(
                f"numbadask's two-array reductions take chunks that are numpy.ndarray or cupy.ndarray, not {type(block).__module__}.{type(block).__name__}"
            )


def _costate_merge(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s pairwise update of (count, mean_x, mean_y, m2x, m2y, cxy): the
    scalar form of :func:`merge_costates` (no shifts), compiled for the GPU."""
    na, nb = a[0], b[0]
    if na == 0.0:
        return b
    if nb == 0.0:
        return a
    n = na + nb
    frac_b = nb / n  # one division: the GPU's is a subroutine
    frac_a = 1.0 - frac_b
    dx, dy = b[1] - a[1], b[2] - a[2]
    # An infinite mean (data holding inf): NumPy's mean, inf or NaN.
    mean_x = a[1] + dx * frac_b if math.isfinite(dx) else a[1] * frac_a + b[1] * frac_b
    mean_y = a[2] + dy * frac_b if math.isfinite(dy) else a[2] * frac_a + b[2] * frac_b
    weight = na * frac_b  # na * nb / n
    return (n, mean_x, mean_y, a[3] + b[3] + dx * dx * weight, a[4] + b[4] + dy * dy * weight, a[5] + b[5] + dx * dy * weight)


@reduction(merge=_costate_merge, identity=(0.0,) * 6, skipna=True, arrays=2)
def _costate(x: float, y: float) -> tuple:
    """The co-moment state of one pair (NaN pairs skipped): the CUDA kernel that reads a
    pair of CuPy blocks side by side (Welford's update, one pass; the CPU has its own
    shifted kernels, :mod:`numbadask.cpu_comoments`)."""
    return (1.0, x, y, 0.0, 0.0, 0.0)


def _weighted_merge(a: tuple, b: tuple) -> tuple:
    return (a[0] + b[0], a[1] + b[1])


@reduction(merge=_weighted_merge, identity=(0.0, 0.0), arrays=2)
def _weighted_pair(a: float, w: float, skip: float = 0.0) -> tuple:
    """sum(w * a) and sum(w) of one pair: the CUDA kernel of CuPy blocks (``skip``:
    a NaN ``a`` counts as no element, a NaN weight still makes the sums NaN)."""
    if skip != 0.0 and a != a:
        return (0.0, 0.0)
    return (w * a, w)


def _gpu_states(r: Any, x: Any, y: Any, axes: tuple[int, ...], params: tuple = ()) -> Any:
    """The float64 states ``(k, *keepdims shape)`` of one CuPy block pair from the
    user-defined reduction ``r``'s CUDA kernel (one read of both blocks)."""
    from .custom import _aligned_chunk

    with np.errstate(invalid="ignore", over="ignore"):  # inf data in the simulator: NumPy's mean, quietly
        return _aligned_chunk(x, y, reduction=r, axes=axes, device="gpu", params=params).values


def _gpu_state(x: Any, y: Any, axes: tuple[int, ...]) -> CoState:
    """The state of one block pair on the GPU: :func:`_costate`'s kernel."""
    v = _gpu_states(_costate, x, y, axes)
    xp = array_module(v)
    zero = xp.zeros_like(v[1])
    return CoState(v[0].astype(xp.int64), zero, zero, v[1], v[2], v[3], v[4], v[5], math.prod(x.shape[a] for a in axes))


def _block_state(x: Any, y: Any, axes: tuple[int, ...]) -> CoState:
    """The state of one block of x and its aligned block of y."""
    from . import cpu_comoments

    _check_chunks(x, y)
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return _gpu_state(x, y, axes)
    shape = _keepdims_shape(x.shape, axes)
    x2, rows = _two_d(x, axes)
    y2, _ = _two_d(y, axes, rows)
    kernel = cpu_comoments.comoments_rows if rows else cpu_comoments.comoments_columns
    fields = kernel(x2, y2)
    return CoState(*(f.reshape(shape) for f in fields), math.prod(x.shape[a] for a in axes))


def merge_costates(states: list[CoState], axis: Any = None, keepdims: bool = True) -> CoState:
    """Merge the states of blocks that share output positions, in their order, by Chan
    et al.'s pairwise update of means and centred (co-)moments; the means relative to
    the first non-empty state's shifts (exact differences of nearby shifts).

    Examples
    --------
    >>> import numpy as np
    >>> one, zero = np.array([1.0]), np.array([0.0])
    >>> a = CoState(np.array([2]), one, 2 * one, 0.5 * one, one, 0.5 * one, 2 * one, one, 2)
    >>> b = CoState(np.array([1]), 3 * one, one, zero, zero, zero, zero, zero, 1)
    >>> m = merge_costates([a, b])   # the pairs (1, 2), (2, 4), (3, 1)
    >>> m.count, m.kx + m.mean_x, m.m2x, m.cxy
    (array([3]), array([2.]), array([2.]), array([-1.]))
    """
    merged = states[0]
    for other in states[1:]:
        xp = array_module(merged.mean_x)
        na, nb = merged.count, other.count
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            frac_b = xp.where(n > 0, nb / xp.maximum(n, 1), 0.0)
            frac_a = xp.where(n > 0, na / xp.maximum(n, 1), 0.0)
            weight = na * frac_b  # na * nb / n
            shifts, means, deltas = [], [], []
            for ka, kb, a, b in ((merged.kx, other.kx, merged.mean_x, other.mean_x), (merged.ky, other.ky, merged.mean_y, other.mean_y)):
                k = xp.where(na > 0, ka, kb)
                a = a + (ka - k)
                b = b + (kb - k)
                both = (na > 0) & (nb > 0)
                delta = xp.where(both, b - a, 0.0)
                # An infinite mean (data holding inf): NumPy's mean, inf or NaN.
                mean = xp.where(xp.isfinite(delta), a + delta * frac_b, a * frac_a + b * frac_b)
                shifts.append(k)
                means.append(xp.where(na == 0, b, xp.where(nb == 0, a, mean)))
                deltas.append(delta)
            dx, dy = deltas
            m2x = merged.m2x + other.m2x + dx * dx * weight
            m2y = merged.m2y + other.m2y + dy * dy * weight
            cxy = merged.cxy + other.cxy + dx * dy * weight
        merged = CoState(n, shifts[0], shifts[1], means[0], means[1], m2x, m2y, cxy, merged.seen + other.seen)
    return merged


def _chunk(x: Any, y: Any, axes: tuple[int, ...]) -> CoState:
    return _block_state(x, y, axes)


def _state_graph(x: da.Array, y: da.Array, shape: tuple[int, ...], axes: tuple[int, ...], split_every: SplitEvery, name: str, chunk: Any, merge: Any) -> da.Array:
    """The merged states (one object block per output block, keepdims) of ``chunk``
    applied to aligned blocks of x and y, broadcast to ``shape`` and cut alike
    (:func:`numbadask.graph.aligned_reduction`: one task per block pair, also under
    query planning, where dask.array has no ``broadcast_arrays``)."""
    from dask.base import tokenize

    fan_every, dask_rule = _split_every(split_every)
    meta = np.empty((0,) * len(shape), dtype=object)
    pair = functools.partial(_paired, chunk=chunk, axes=axes)
    token = tokenize(x, y, shape, axes, name, chunk)
    label = f"numbadask.{name.split('-')[0]}"
    return graph.aligned_reduction([x, y], shape, f"{name}-numbadask", token, axes, pair, label, merge, merge, True, fan_every, meta, dask_rule=dask_rule)


def _float_dtype(*dtypes: np.dtype) -> np.dtype:
    """NumPy's mean dtype of data of these dtypes: float64 for integers and bools."""
    dtype = np.result_type(*dtypes)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _field(state: CoState, field: str, ddof: float, skipna: bool) -> Any:
    """One field of :class:`ComomentsResult` from a merged state (float64; count int64)."""
    xp = array_module(state.mean_x)
    n = state.count
    bad = (n == 0) if skipna else (n == 0) | (n < state.seen)
    if field == "count":
        return n
    with np.errstate(invalid="ignore", divide="ignore"):
        if field == "mean_x":
            value = state.kx + state.mean_x
        elif field == "mean_y":
            value = state.ky + state.mean_y
        elif field in ("var_x", "var_y"):
            m2 = xp.maximum(state.m2x if field == "var_x" else state.m2y, 0.0)
            value = m2 / (n - ddof)
            # An infinite mean (data holding inf): deviations inf - inf, NaN as in NumPy.
            bad = bad | (n - ddof <= 0) | ~xp.isfinite(state.mean_x if field == "var_x" else state.mean_y)
        else:
            bad = bad | ~xp.isfinite(state.mean_x) | ~xp.isfinite(state.mean_y)
        if field == "cov":
            # xarray's arithmetic: the mean of the products, times n / (n - ddof).
            value = (state.cxy / xp.maximum(n, 1)) * (n / (n - ddof))
        elif field == "corr":  # cov / (std_x * std_y), ddof cancelling
            value = state.cxy / xp.sqrt(xp.maximum(state.m2x, 0.0) * xp.maximum(state.m2y, 0.0))
        return xp.where(bad, np.nan, value)


def _finish(block: Any, field: str, ddof: float, skipna: bool, dtype: np.dtype, axes: tuple[int, ...], keepdims: bool) -> Any:
    return drop_axes(_field(block, field, ddof, skipna).astype(dtype), axes, keepdims)


def _result_meta(like: da.Array, ndim: int, dtype: np.dtype) -> Any:
    xp = array_module(like._meta)
    return xp.empty((0,) * ndim, dtype=dtype)


def comoments(
    x: Any, y: Any, axis: Axis = None, ddof: float = 0, skipna: bool = False, keepdims: bool = False, split_every: SplitEvery = None
) -> ComomentsResult:
    """Count, both means, both variances, covariance and correlation of x and y in one read.

    ``x`` and ``y`` are broadcast against each other and cut into the same chunks, as
    ``da.blockwise`` inputs are.  Each block of x and its aligned block of y are reduced
    together by one ``@numba.njit`` kernel to per-position state: the pair count, the
    means, and the centred second sums, from sums of ``x - Kx`` and ``y - Ky`` with the
    shifts taken from the block's data (exact on offset data such as 1e8 + noise, where
    a plain sum of squares loses every digit).  The states merge in a fixed-order tree
    by Chan et al.'s pairwise update, in float64 whatever the input dtype (integers,
    bools and float32 accumulate in float64).  CuPy chunks: one CUDA kernel per block
    pair reads both on the GPU (Welford's one-pass update per thread, Chan's merge
    between threads; no shifts, so on offset data its second sums carry a relative
    error near ``eps * offset / spread`` where the CPU's are exact).

    Every field is a statistic of the *pairs* ``(x[i], y[i])``.  ``skipna=True`` skips
    the pairs where either value is NaN (xarray's ``cov``/``corr``); ``skipna=False``
    gives NaN in every field but ``count`` for a slice holding a NaN in either array.
    Slices with no pairs (or, for ``var_*``, ``n - ddof <= 0``) give NaN without
    warnings, as :func:`numbadask.moments` does.  inf gives NumPy's answers (an
    infinite mean, NaN variances and covariance).

    Parameters
    ----------
    x, y : array_like
        Dask, NumPy or CuPy arrays (or anything :func:`numpy.asarray` takes) of bool,
        integer or real floating dtype; complex, object, datetime and string data raise
        ``TypeError``.
    axis : None, int or tuple of ints, optional
        Axes of the broadcast shape to reduce over (default: all).
    ddof : int or float, optional
        Delta degrees of freedom of ``var_x``, ``var_y`` and ``cov`` (divisor
        ``n - ddof``); ``corr`` does not depend on it.
    skipna : bool, optional
        Skip pairs where x or y is NaN.
    keepdims : bool, optional
        Keep the reduced axes with size one.
    split_every : int or dict, optional
        Fan-in of the merge tree, as in :func:`numbadask.sum`.

    Returns
    -------
    ComomentsResult
        ``count`` (int64: pairs used), ``mean_x``, ``mean_y``, ``var_x``, ``var_y``,
        ``cov``, ``corr`` (float64): lazy Dask arrays of one graph; ``dask.compute(*r)``
        reads x and y once.

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> x = 1e8 + np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    >>> y = np.array([2.0, 4.0, 7.0, 8.0, 1.0])
    >>> r = numbadask.comoments(x, y, skipna=True)
    >>> [round(float(v), 10) for v in dask.compute(*r)]
    [4.0, 100000002.5, 5.25, 1.25, 5.6875, 2.625, 0.984495185]
    """
    x, y, shape = _aligned(x, y, "comoments", ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    ddof = check_ddof(ddof)
    state = _state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    return ComomentsResult(**_fields(state, x, axes, ddof, bool(skipna), bool(keepdims), ComomentsResult._fields, np.dtype(np.float64)))


def _fields(state: da.Array, x: da.Array, axes: tuple[int, ...], ddof: float, skipna: bool, keepdims: bool, names: tuple[str, ...], dtype: np.dtype) -> dict[str, da.Array]:
    out_ndim = state.ndim if keepdims else state.ndim - len(axes)
    fields = {}
    for field in names:
        field_dtype = np.dtype(np.int64) if field == "count" else dtype
        finish = functools.partial(_finish, field=field, ddof=ddof, skipna=skipna, dtype=field_dtype, axes=axes, keepdims=keepdims)
        fields[field] = graph.finish_blocks(state, f"comoments-numbadask-{field}", finish, axes, keepdims, _result_meta(x, out_ndim, field_dtype))
    return fields


def _one_field(field: str, x: Any, y: Any, axis: Axis, ddof: float, skipna: bool, keepdims: bool, split_every: SplitEvery) -> da.Array:
    x, y, shape = _aligned(x, y, field, ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    ddof = check_ddof(ddof)
    state = _state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    # np.cov and xr.cov give float64 for any input; corr, like xr.corr, the mean's dtype.
    dtype = np.dtype(np.float64) if field == "cov" else _float_dtype(x.dtype, y.dtype)
    return _fields(state, x, axes, ddof, bool(skipna), bool(keepdims), (field,), dtype)[field]


def cov(
    x: Any, y: Any, axis: Axis = None, ddof: float = 1, skipna: bool = True, keepdims: bool = False, split_every: SplitEvery = None
) -> da.Array:
    """Covariance of x and y along ``axis``, with :func:`xarray.cov`'s semantics.

    One read of x and y (see :func:`comoments`, whose ``cov`` field this is): pairs where
    either is NaN are skipped (``skipna=True``, xarray's rule), the divisor is
    ``n - ddof`` with ``ddof=1`` by default as in xarray; slices with no pairs give NaN.
    The result is float64 for any input, as from :func:`numpy.cov` and :func:`xarray.cov`.

    Parameters
    ----------
    x, y, axis, keepdims, split_every
        As in :func:`comoments`.
    ddof : int or float, optional
        Delta degrees of freedom (default 1).
    skipna : bool, optional
        Skip NaN pairs (default); ``False``: NaN where a slice holds a NaN.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> float(numbadask.cov([1.0, 2.0, 3.0, np.nan], [1.0, 3.0, 2.0, 5.0]).compute())
    0.5
    """
    return _one_field("cov", x, y, axis, ddof, skipna, keepdims, split_every)


def corr(x: Any, y: Any, axis: Axis = None, skipna: bool = True, keepdims: bool = False, split_every: SplitEvery = None) -> da.Array:
    """Pearson correlation of x and y along ``axis``, with :func:`xarray.corr`'s semantics.

    One read of x and y (see :func:`comoments`, whose ``corr`` field this is): pairs
    where either is NaN are skipped (``skipna=True``, xarray's rule); a slice with no
    pairs, or where x or y is constant, gives NaN.  The result has the floating dtype
    NumPy's mean gives for x and y together (float32 for float32 data, as
    :func:`xarray.corr`; float64 for integers), though it is computed in float64.

    Parameters
    ----------
    x, y, axis, keepdims, split_every
        As in :func:`comoments`.
    skipna : bool, optional
        Skip NaN pairs (default); ``False``: NaN where a slice holds a NaN.

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    >>> numbadask.corr(x, [[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]], axis=1).compute()
    array([ 1., -1.])
    """
    return _one_field("corr", x, y, axis, 0, skipna, keepdims, split_every)


# --- weighted sums: average and the accessor's weighted ----------------------------


class WeightedState(NamedTuple):
    """sum(w * a) and sum(w) per output position (float64, keepdims shape)."""

    swa: Any
    sw: Any


def _weighted_chunk(a: Any, w: Any, axes: tuple[int, ...], skip: bool = False) -> WeightedState:
    """sum(w * a) and sum(w) of one block of a and its aligned block of weights (``skip``:
    leaving out the elements where a is NaN)."""
    from . import cpu_comoments

    _check_chunks(a, w)
    if type(a) is not np.ndarray or type(w) is not np.ndarray:
        return _gpu_weighted(a, w, axes, skip)
    shape = _keepdims_shape(a.shape, axes)
    a2, rows = _two_d(a, axes)
    w2, _ = _two_d(w, axes, rows)
    kernel = cpu_comoments.weighted_rows if rows else cpu_comoments.weighted_columns
    swa, sw = kernel(a2, w2, bool(skip))
    return WeightedState(swa.reshape(shape), sw.reshape(shape))


def _gpu_weighted(a: Any, w: Any, axes: tuple[int, ...], skip: bool = False) -> WeightedState:
    """The weighted sums of one block pair on the GPU: :func:`_weighted_pair`'s kernel."""
    swa, sw = _gpu_states(_weighted_pair, a, w, axes, (1.0 if skip else 0.0,))
    return WeightedState(swa, sw)


def merge_weighted(states: list[WeightedState], axis: Any = None, keepdims: bool = True) -> WeightedState:
    """Add the weighted sums of blocks that share output positions, in their order."""
    swa, sw = states[0]
    for other in states[1:]:
        swa, sw = swa + other.swa, sw + other.sw
    return WeightedState(swa, sw)


def weighted_sums(a: da.Array, w: da.Array, shape: tuple[int, ...], axes: tuple[int, ...], skip: bool, split_every: SplitEvery) -> da.Array:
    """The merged :class:`WeightedState` blocks of ``a`` and ``w`` (broadcast to
    ``shape``, see :func:`_aligned`) over ``axes``."""
    chunk = functools.partial(_weighted_chunk, skip=skip)
    return _state_graph(a, w, shape, axes, split_every, "weighted-skip" if skip else "weighted", chunk, merge_weighted)


def _weighted_finish(block: WeightedState, field: str, dtype: np.dtype, axes: tuple[int, ...], keepdims: bool, zero: str) -> Any:
    """``field`` ("mean", "sum" or "weights") of a merged block; ``zero``: what a zero sum
    of weights gives to the mean, "raise" (np.average's ZeroDivisionError) or "nan"."""
    xp = array_module(block.sw)
    if zero == "raise" and bool((block.sw == 0.0).any()):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    if field == "sum":
        value = block.swa
    elif field == "weights":
        value = block.sw
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = xp.where(block.sw == 0.0, np.nan, block.swa / block.sw)
    return drop_axes(value.astype(dtype), axes, keepdims)


def weighted_field(state: da.Array, like: da.Array, field: str, dtype: np.dtype, axes: tuple[int, ...], keepdims: bool, zero: str) -> da.Array:
    """One result of :func:`weighted_sums`' states, as a Dask array (``like``: an input,
    for the array type of the result's meta)."""
    out_ndim = state.ndim if keepdims else state.ndim - len(axes)
    finish = functools.partial(_weighted_finish, field=field, dtype=dtype, axes=axes, keepdims=keepdims, zero=zero)
    return graph.finish_blocks(state, f"weighted-numbadask-{field}", finish, axes, keepdims, _result_meta(like, out_ndim, dtype))


def average(a: Any, axis: Axis = None, weights: Any = None, returned: bool = False, keepdims: bool = False, split_every: SplitEvery = None) -> Any:
    """Weighted average along ``axis`` (:func:`numpy.average`), one read of a and weights.

    NumPy's rules: ``weights`` has the shape of ``a``, or (with ``axis`` given) the
    shape of ``a`` along ``axis`` (``TypeError`` without ``axis``, ``ValueError`` for any
    other shape, NumPy's messages); the result dtype is ``np.result_type(a, weights)``,
    float64 at least for integer or bool ``a``; NaN propagates.  Each block of a and its
    aligned block of weights are reduced together by one ``@numba.njit`` kernel to
    sum(w * a) and sum(w), in float64, merged in a fixed-order tree.  A zero sum of
    weights raises NumPy's ``ZeroDivisionError("Weights sum to zero, can't be
    normalized")``, when the result is computed (the result is lazy).  Without
    ``weights``: :func:`numbadask.mean`.  CuPy chunks: one CUDA kernel per block pair,
    on the GPU.  Complex, object and datetime data raise
    ``TypeError``.

    Parameters
    ----------
    a : array_like
        Dask, NumPy or CuPy array of bool, integer or real floating dtype.
    axis : None, int or tuple of ints, optional
        Axes to average over (default: all).
    weights : array_like, optional
        Weights of the values of ``a`` (shape rules above).
    returned : bool, optional
        Also return the sum of the weights, broadcast to the average's shape.
    keepdims : bool, optional
        Keep the reduced axes with size one.
    split_every : int or dict, optional
        Fan-in of the merge tree, as in :func:`numbadask.sum`.

    Returns
    -------
    dask.array.Array, or (average, sum_of_weights) with ``returned``
        Lazy arrays of one graph.

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> avg, scl = numbadask.average(a, axis=1, weights=[1.0, 0.0, 3.0], returned=True)
    >>> dask.compute(avg, scl)
    (array([2.5, 5.5]), array([4., 4.]))
    """
    import dask.array as da

    from .sums import mean

    from numpy.lib.array_utils import normalize_axis_tuple

    x = _as_dask(a, "average", "a")
    # In the order given, as np.average checks and lays out the weights.
    axes = normalize_axis_tuple(axis, x.ndim, argname="axis") if axis is not None else None
    if weights is None:
        avg = mean(x, axis=axes, keepdims=keepdims, split_every=split_every)
        if not returned:
            return avg
        scale = x.size / max(math.prod(avg.shape), 1) if x.size else 0.0
        return avg, da.full(avg.shape, scale, dtype=avg.dtype, chunks=avg.chunks)
    w = _as_dask(weights, "average", "weights")
    dtype = np.result_type(x.dtype, w.dtype, "f8") if x.dtype.kind in "biu" else np.result_type(x.dtype, w.dtype)
    if x.shape != w.shape:
        if axes is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if w.shape != tuple(x.shape[ax] for ax in axes):
            raise ValueError("Shape of weights must be consistent with shape of a along specified axis.")
        order = tuple(int(i) for i in np.argsort(axes))
        if order != tuple(range(len(order))):
            w = w.transpose(order)
        # np.average's reshape to size 1 along the other axes, as new axes (no reshape
        # on a query-planning Array)
        w = w[tuple(slice(None) if ax in axes else None for ax in range(x.ndim))]
    x, w, shape = _aligned(x, w, "average", ("a", "weights"))
    axes = normalize_axes(axes, len(shape))
    state = weighted_sums(x, w, shape, axes, False, split_every)
    avg = weighted_field(state, x, "mean", dtype, axes, bool(keepdims), "raise")
    if not returned:
        return avg
    return avg, weighted_field(state, x, "weights", dtype, axes, bool(keepdims), "raise")


# --- means of products: mean(x*x), mean(y*y), mean(x*y) in one pass --------------------


class ProductMeans(NamedTuple):
    """The lazy results of :func:`product_means`; they share one graph (one read)."""

    xx: Any
    yy: Any
    xy: Any


def _product_finish(block: CoState, field: str, skipna: bool, axes: tuple[int, ...], keepdims: bool) -> Any:
    xp = array_module(block.mean_x)
    n = block.count
    bad = (n == 0) if skipna else (n == 0) | (n < block.seen)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = block.kx + block.mean_x, block.ky + block.mean_y
        # mean(x*y) = cov(ddof=0) + mean(x) * mean(y); the centred sums carry the spread
        # exactly, so an offset (1e8 + noise) costs no digits of it.
        centred = {"xx": (block.m2x, mx, mx), "yy": (block.m2y, my, my), "xy": (block.cxy, mx, my)}[field]
        m2, a, b = centred
        value = m2 / xp.maximum(n, 1) + a * b
    return drop_axes(xp.where(bad, np.nan, value), axes, keepdims)


def product_means(x: Any, y: Any, axis: Axis = None, skipna: bool = False, keepdims: bool = False, split_every: SplitEvery = None) -> ProductMeans:
    """mean(x*x), mean(y*y) and mean(x*y) along ``axis`` in one read of x and y.

    The quadratic means of, e.g., two velocity components (``u*u``, ``v*v``, ``u*v``
    over time), which Dask computes as three reductions of temporaries, reading each
    input several times.  Here each block pair is reduced once by :func:`comoments`'
    kernel, and the three means are finished from the merged co-moments:
    ``mean(x*y) = cov + mean(x) * mean(y)`` (``cov`` with ``ddof=0``).  float64
    results; NaN pairs as in :func:`comoments` (``skipna=True`` skips a pair where x or
    y is NaN: every mean then uses the same pairs).

    Parameters
    ----------
    x, y, axis, skipna, keepdims, split_every
        As in :func:`comoments`.

    Returns
    -------
    ProductMeans
        ``xx``, ``yy``, ``xy``: lazy float64 Dask arrays of one graph.

    Examples
    --------
    >>> import dask, numpy as np, numbadask
    >>> u = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
    >>> v = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    >>> uu, vv, uv = dask.compute(*numbadask.product_means(u, v, axis=1))
    >>> uu, vv, uv   # (u*u).mean(1), (v*v).mean(1), (u*v).mean(1)
    (array([4.66666667, 0.66666667]), array([1.66666667, 1.        ]), array([1.66666667, 0.        ]))
    """
    x, y, shape = _aligned(x, y, "product_means", ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    state = _state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    out_ndim = len(shape) if keepdims else len(shape) - len(axes)
    fields = {}
    for field in ProductMeans._fields:
        finish = functools.partial(_product_finish, field=field, skipna=bool(skipna), axes=axes, keepdims=bool(keepdims))
        fields[field] = graph.finish_blocks(state, f"product-means-numbadask-{field}", finish, axes, bool(keepdims), _result_meta(x, out_ndim, np.dtype(np.float64)))
    return ProductMeans(**fields)
