"""Statistics of two aligned arrays in one read: :func:`comoments`, :func:`cov`,
:func:`corr` and :func:`product_means` (mean(x*x), mean(y*y), mean(x*y)); weighted
means are in :mod:`.weighted`, the pieces both share in :mod:`.pairs`.

The graph: x and y are broadcast and chunk-aligned as ``da.blockwise`` inputs; one
task per pair of aligned blocks reduces both with one ``@numba.njit`` kernel
(:mod:`numbadask.cpu.comoments`) into a small state in the keepdims shape; the states
merge in numbadask's fixed-order tree (:func:`numbadask.engine.graph.tree_reduce`), and each
result is finished from the merged state (:func:`numbadask.engine.graph.finish_blocks`), so
all of them share one graph and one read of the inputs.  Chunks must be
``numpy.ndarray`` (the njit kernels) or CuPy arrays (one CUDA kernel per block pair,
made by :func:`numbadask.reduction` from :func:`_costate`);
masked, sparse and other chunk types raise ``TypeError`` when computed rather than have
their masks ignored.  Legacy and query-planning (expression-backed) Dask Arrays alike.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from numbadask.engine import graph
from numbadask.engine.checks import Axis, SplitEvery, check_ddof, normalize_axes
from numbadask.engine.definition import drop_axes
from numbadask.engine.dispatch import array_module
from numbadask.engine.kernels import keepdims_shape
from numbadask.reductions.custom import reduction
from numbadask.reductions.pairs import aligned_inputs, check_chunks, float_dtype, gpu_states, result_meta_like, state_graph, two_d

if TYPE_CHECKING:
    import dask.array as da


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
    shifted kernels, :mod:`numbadask.cpu.comoments`)."""
    return (1.0, x, y, 0.0, 0.0, 0.0)


def _gpu_state(x: Any, y: Any, axes: tuple[int, ...]) -> CoState:
    """The state of one block pair on the GPU: :func:`_costate`'s kernel."""
    v = gpu_states(_costate, x, y, axes)
    xp = array_module(v)
    zero = xp.zeros_like(v[1])
    return CoState(v[0].astype(xp.int64), zero, zero, v[1], v[2], v[3], v[4], v[5], math.prod(x.shape[a] for a in axes))


def _block_state(x: Any, y: Any, axes: tuple[int, ...]) -> CoState:
    """The state of one block of x and its aligned block of y."""
    from numbadask.cpu import comoments as cpu_comoments

    check_chunks(x, y)
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return _gpu_state(x, y, axes)
    shape = keepdims_shape(x.shape, axes)
    x2, rows = two_d(x, axes)
    y2, _ = two_d(y, axes, rows)
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
    x, y, shape = aligned_inputs(x, y, "comoments", ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    ddof = check_ddof(ddof)
    state = state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    return ComomentsResult(**_fields(state, x, axes, ddof, bool(skipna), bool(keepdims), ComomentsResult._fields, np.dtype(np.float64)))


def _fields(state: da.Array, x: da.Array, axes: tuple[int, ...], ddof: float, skipna: bool, keepdims: bool, names: tuple[str, ...], dtype: np.dtype) -> dict[str, da.Array]:
    out_ndim = state.ndim if keepdims else state.ndim - len(axes)
    fields = {}
    for field in names:
        field_dtype = np.dtype(np.int64) if field == "count" else dtype
        finish = functools.partial(_finish, field=field, ddof=ddof, skipna=skipna, dtype=field_dtype, axes=axes, keepdims=keepdims)
        fields[field] = graph.finish_blocks(state, f"comoments-numbadask-{field}", finish, axes, keepdims, result_meta_like(x, out_ndim, field_dtype))
    return fields


def _one_field(field: str, x: Any, y: Any, axis: Axis, ddof: float, skipna: bool, keepdims: bool, split_every: SplitEvery) -> da.Array:
    x, y, shape = aligned_inputs(x, y, field, ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    ddof = check_ddof(ddof)
    state = state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    # np.cov and xr.cov give float64 for any input; corr, like xr.corr, the mean's dtype.
    dtype = np.dtype(np.float64) if field == "cov" else float_dtype(x.dtype, y.dtype)
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
        float64, whatever the input dtypes.

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
    x, y, axis, skipna, keepdims, split_every
        As in :func:`cov`.

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
    x, y, shape = aligned_inputs(x, y, "product_means", ("x", "y"))
    axes = normalize_axes(axis, len(shape))
    state = state_graph(x, y, shape, axes, split_every, "comoments", _chunk, merge_costates)
    out_ndim = len(shape) if keepdims else len(shape) - len(axes)
    fields = {}
    for field in ProductMeans._fields:
        finish = functools.partial(_product_finish, field=field, skipna=bool(skipna), axes=axes, keepdims=bool(keepdims))
        fields[field] = graph.finish_blocks(state, f"product-means-numbadask-{field}", finish, axes, bool(keepdims), result_meta_like(x, out_ndim, np.dtype(np.float64)))
    return ProductMeans(**fields)
