"""CPU kernels generated from a user-defined reduction (:func:`numbadask.reduction`),
cached on disk across processes.

The user writes plain scalar functions: ``map(x, *params) -> state``,
``merge(a, b) -> state`` and ``finalize(state) -> value``, a state being a tuple of
``k`` numbers.  Numba can neither call a closure with ``*args`` nor build a tuple of a
length known only at run time, so the few functions that handle a state are written
as source text for the given ``k`` and parameter count ``p`` (:func:`helper_source`,
also used by the CUDA kernels), together with the block loops that plug them into the
one CPU walk (:mod:`numbadask.cpu.walker`): :func:`module_source`.

That source is written once to a module file under
``numba_cache.cache_root()/reductions``, named by a hash of the source and of the
user's functions (:mod:`numbadask.cpu.fingerprint`), and imported; its functions carry
``cache=True``, so the second process to use the same reduction on the same dtype loads
the machine code from Numba's cache instead of compiling it (3-6 s).  A change to the
user's code makes another name; the same name always holds the same text, so processes
writing it at once cannot disagree.  Reductions whose functions cannot be fingerprinted
are compiled in memory, uncached.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

from numbadask.cpu import cache as numba_cache, walker
from numbadask.cpu.fingerprint import fingerprint
from numbadask.cpu.layout import JointWalk, Walk


def element_names(n: int) -> list[str]:
    """The names the generated source gives one element of each of ``n`` arrays:
    ``v`` for one array (the source of single-array reductions is unchanged), else
    ``v0, v1, ...``."""
    return ["v"] if n == 1 else [f"v{i}" for i in range(n)]


def helper_source(k: int, p: int, n: int = 1) -> str:
    """The source of ``mapped``, ``merged``, ``load``, ``store`` and ``select`` for ``k``
    state fields, ``p`` parameters and ``n`` arrays (the names ``user_map`` and
    ``user_merge`` are the user's functions, ``float64`` Numba's type).

    Examples
    --------
    >>> print(helper_source(2, 1).splitlines()[1])
        t = user_map(v, params[0])
    >>> print(helper_source(1, 0, 2).splitlines()[0])
    def mapped(v0, v1, params):
    """
    fields = ", ".join(f"float64(t[{f}])" for f in range(k))
    args = "".join(f", params[{i}]" for i in range(p))
    values = ", ".join(element_names(n))
    loads = ", ".join(f"a[{f}, j]" for f in range(k))
    stores = "\n".join(f"    a[{f}, j] = s[{f}]" for f in range(k))
    picks = ", ".join(f"x[{f}] if keep else y[{f}]" for f in range(k))
    return (
        f"def mapped({values}, params):\n    t = user_map({values}{args})\n    return ({fields},)\n\n"
        f"def merged(x, y):\n    t = user_merge(x, y)\n    return ({fields},)\n\n"
        f"def load(a, j):\n    return ({loads},)\n\n"
        f"def store(a, j, s):\n{stores}\n\n"
        f"def select(keep, x, y):\n    return ({picks},)\n"
    )


HELPERS = ("mapped", "merged", "load", "store", "select")


def state_helpers(k: int, p: int, user_map: Any, user_merge: Any, jit: Any, n: int = 1) -> types.SimpleNamespace:
    """The :data:`HELPERS` built from :func:`helper_source`, each wrapped by ``jit`` (a
    CUDA device jit, for the CUDA kernels)."""
    from numba import float64

    namespace: dict[str, Any] = {"float64": float64, "user_map": user_map, "user_merge": user_merge}
    exec(compile(helper_source(k, p, n), f"<numbadask.reduction helpers k={k} p={p} n={n}>", "exec"), namespace)
    return types.SimpleNamespace(**{name: jit(namespace[name]) for name in HELPERS})


_MODULE = '''"""The CPU kernels of one user-defined numbadask reduction: {k} state fields,
{p} parameters, skipna={skipna}{arrays}.  Written by numbadask.cpu.factory, which sets
user_map, user_merge and user_finalize after importing it.  Safe to delete."""

import numba
import numpy as np
from numba import float64

BLOCK = {block}
IDENTITY = tuple(float(v) for v in {identity!r})  # exact: repr of a float round-trips
SKIPNA = {skipna!r}
# reassoc lets LLVM vectorize the fold of a merge the user declared associative; no
# other fast-math flag (NaN and inf must keep their meaning).
REASSOC = {{"reassoc", "contract"}}
# Inlined at Numba's IR level, so the caller's fastmath flags reach the user's code
# (an LLVM-level inline would keep the callee's strict flags and not vectorize).
inline = numba.njit(inline="always", cache=CACHE, error_model="numpy")
kernel = numba.njit(nogil=True, cache=CACHE, error_model="numpy")
vectorized = numba.njit(nogil=True, cache=CACHE, fastmath=REASSOC, error_model="numpy")

{helpers}
mapped, merged, load, store, select = inline(mapped), inline(merged), inline(load), inline(store), inline(select)


{walk}@kernel
def merge_columns(a, b):
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        store(out, j, merged(load(a, j), load(b, j)))
    return out


@kernel
def finalize_columns(a):
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        out[j] = np.float64(user_finalize(load(a, j)))
    return out


# The user's functions as they are (their own return types), for checking them.
@kernel
def raw_map({values}{param_args}):
    return user_map({values}{param_args})


@kernel
def raw_merge(a, b):
    return user_merge(a, b)


@kernel
def raw_finalize(s):
    return user_finalize(s)
'''


#: The block loops of a single-array reduction: the plug-in of the one CPU walk
#: (:mod:`numbadask.cpu.walker`), inlined into each of its cases but the fastmath loops.
_SINGLE = '''@numba.njit(inline="always", cache=CACHE, fastmath=REASSOC, error_model="numpy")
def visit(v, params):
    if SKIPNA:
        # NaN maps to the identity, a select per field: branch-free, so the folds
        # vectorize (a `continue` held a NaN-skipping sum of squares to 8-10 GB/s;
        # this form reaches ~30, 2 threads here).
        return select(v == v, mapped(v, params), IDENTITY)
    return mapped(v, params)


@vectorized
def fold(seg, params):
    acc = IDENTITY
    for i in range(seg.size):
        acc = merged(acc, visit(np.float64(seg[i]), params))
    return acc


@vectorized
def fold_4(a, b, c, d, params):
    # Four equally long rows read side by side: four memory streams in flight.
    acc = IDENTITY
    for i in range(a.size):
        ab = merged(visit(np.float64(a[i]), params), visit(np.float64(b[i]), params))
        cd = merged(visit(np.float64(c[i]), params), visit(np.float64(d[i]), params))
        acc = merged(acc, merged(ab, cd))
    return acc


@inline
def fold_blocks(seg, total, params):
    # Blocks of BLOCK elements each fold to a state, then the blocks merge: a sliced
    # view (not buf[start + i]) keeps Numba's wraparound check out of the loop.
    for b in range(0, seg.size, BLOCK):
        total = merged(total, fold(seg[b : b + BLOCK], params))
    return total


@inline
def fold_row(state, o, buf, start, n, step, params):
    out = state[0]
    if step == 1:  # its own call, so Numba types the view as contiguous
        total = fold_blocks(buf[start : start + n], IDENTITY, params)
    elif step == 0:  # a broadcast axis: the same element n times
        one = fold(buf[start : start + 1], params)
        total = IDENTITY
        for _ in range(n):
            total = merged(total, one)
    else:
        total = fold_blocks(buf[start::step][:n], IDENTITY, params)
    store(out, o, merged(load(out, o), total))


@inline
def fold_4_rows(state, o, buf, start, n, row_stride, params):
    out = state[0]
    total = IDENTITY
    for b in range(0, n, BLOCK):
        s = start + b
        e = s + min(BLOCK, n - b)
        r = row_stride
        total = merged(total, fold_4(buf[s:e], buf[s + r : e + r], buf[s + 2 * r : e + 2 * r], buf[s + 3 * r : e + 3 * r], params))
    store(out, o, merged(load(out, o), total))


@inline
def fold_across(state, o, out_step, buf, start, n, step, params):
    out = state[0]
    for j in range(n):
        p = o + j * out_step
        store(out, p, merged(load(out, p), visit(np.float64(buf[start + j * step]), params)))


'''


def multi_walk_source(n: int) -> str:
    """The block loops and the walk of a reduction of ``n >= 2`` arrays read side by
    side (:class:`JointWalk`): every array has its own buffer, base and strides over
    the same axes; the innermost axis is folded per visit (a contiguous fast path
    when every array's step is 1), an odometer steps the outer ones.

    Examples
    --------
    >>> print(multi_walk_source(2).splitlines()[1])
    def visit(v0, v1, params):
    """
    v = element_names(n)
    values = ", ".join(v)
    numbers = ", ".join(f"np.float64(a{i}[i])" for i in range(n))
    strided = ", ".join(f"np.float64(b{i}[o{i} + i * s{i}])" for i in range(n))
    across = ", ".join(f"np.float64(b{i}[o{i} + j * s{i}])" for i in range(n))
    keep = " & ".join(f"({x} == {x})" for x in v)
    views = ", ".join(f"a{i}" for i in range(n))
    slices = ", ".join(f"b{i}[o{i} + b : o{i} + e]" for i in range(n))
    triples = ", ".join(f"b{i}, o{i}, s{i}" for i in range(n))
    moved = ", ".join(f"b{i}, o{i} + b * s{i}, s{i}" for i in range(n))
    contiguous = " and ".join(f"s{i} == 1" for i in range(n))
    bufs = ", ".join(f"b{i}" for i in range(n))
    steps = "\n".join(f"    s{i} = strides[{i}, k - 1]" for i in range(n))
    starts = "\n".join(f"    o{i} = bases[{i}]" for i in range(n))
    forward = "\n".join(f"            o{i} += strides[{i}, j]" for i in range(n))
    back = "\n".join(f"            o{i} -= strides[{i}, j] * sizes[j]" for i in range(n))
    return f"""@numba.njit(inline="always", cache=CACHE, fastmath=REASSOC, error_model="numpy")
def visit({values}, params):
    if SKIPNA:
        # A position where any array is NaN maps to the identity (branch-free).
        return select({keep}, mapped({values}, params), IDENTITY)
    return mapped({values}, params)


@vectorized
def fold({views}, params):
    # Equally long contiguous views, one per array, read side by side.
    acc = IDENTITY
    for i in range(a0.size):
        acc = merged(acc, visit({numbers}, params))
    return acc


@vectorized
def fold_strided({triples}, n, params):
    acc = IDENTITY
    for i in range(n):
        acc = merged(acc, visit({strided}, params))
    return acc


@kernel
def fold_row(out, o, {triples}, n, params):
    total = IDENTITY
    for b in range(0, n, BLOCK):
        e = min(b + BLOCK, n)
        if {contiguous}:
            total = merged(total, fold({slices}, params))
        else:
            total = merged(total, fold_strided({moved}, e - b, params))
    store(out, o, merged(load(out, o), total))


@kernel
def walk({bufs}, bases, sizes, strides, out_strides, out, params):
    k = sizes.size
    n = sizes[k - 1]
    out_step = out_strides[k - 1]
{steps}
{starts}
    o = 0
    outer = k - 1
    index = np.zeros(k, dtype=np.int64)
    count = 1
    for j in range(outer):
        count *= sizes[j]
    for _ in range(count):
        if out_step == 0:
            fold_row(out, o, {triples}, n, params)
        else:  # the innermost axis is kept: element j goes to output o + j * out_step
            for j in range(n):
                q = o + j * out_step
                store(out, q, merged(load(out, q), visit({across}, params)))
        j = outer - 1
        while j >= 0:
            index[j] += 1
{forward}
            o += out_strides[j]
            if index[j] < sizes[j]:
                break
{back}
            o -= out_strides[j] * sizes[j]
            index[j] = 0
            j -= 1


"""

def module_source(k: int, p: int, identity: tuple[float, ...], skipna: bool, n: int = 1) -> str:
    """The generated module of a reduction with ``k`` fields, ``p`` parameters and
    ``n`` arrays (one: the plug-in of :mod:`numbadask.cpu.walker`; several: their own
    walk, :func:`multi_walk_source`).

    Examples
    --------
    >>> source = module_source(2, 0, (0.0, 0.0), False)
    >>> "def fold_row(state, o, buf, start, n, step, params):" in source
    True
    >>> "def walk(b0, b1, bases, sizes, strides, out_strides, out, params):" in module_source(1, 0, (0.0,), True, n=2)
    True
    """
    param_args = "".join(f", p{i}" for i in range(p))
    return _MODULE.format(
        k=k,
        p=p,
        skipna=bool(skipna),
        arrays="" if n == 1 else f", {n} arrays",
        identity=tuple(repr(float(v)) for v in identity),
        block=walker.BLOCK,
        helpers=helper_source(k, p, n),
        walk=_SINGLE if n == 1 else multi_walk_source(n),
        values=", ".join(element_names(n)),
        param_args=param_args,
    )


def _write_once(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it is there: through a temporary file and an
    atomic rename, so a reader never sees half a file (several processes may write
    the same name at once; they write the same text)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_module(source: str, key: str | None) -> tuple[types.ModuleType, bool]:
    """The generated module of ``source``, and whether its kernels are cached on disk.

    With a ``key`` (the user's functions' fingerprint), the module is a file under
    ``cache_root()/reductions`` named by a hash of key and source; without one, or
    where that folder cannot be written, it runs in memory with ``CACHE = False``."""
    digest = hashlib.sha256(source.encode() + (key or "").encode()).hexdigest()[:24]
    name = f"numbadask_reduction_{digest}"
    if key is not None:
        path = numba_cache.cache_root() / "reductions" / f"{name}.py"
        try:
            _write_once(path, "CACHE = True\n" + source)
        except OSError:
            pass
        else:
            if name in sys.modules:
                return sys.modules[name], True
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module, True
    module = types.ModuleType(name)
    exec(compile("CACHE = False\n" + source, f"<{name}>", "exec"), module.__dict__)
    return module, False


def _inline(func: Any) -> Any:
    import numba

    return numba.njit(inline="always", error_model="numpy")(func)


class CpuKernels:
    """The njit kernels of one user-defined reduction of ``n`` arrays (any input
    dtypes: Numba specializes, and caches, each one per dtype on first use,
    thread-safely)."""

    def __init__(self, user_map: Any, user_merge: Any, user_finalize: Any, identity: tuple[float, ...], p: int, skipna: bool, n: int = 1) -> None:
        source = module_source(len(identity), p, identity, skipna, n)
        module, cached = load_module(source, fingerprint(user_map, user_merge, user_finalize))
        module.user_map, module.user_merge, module.user_finalize = _inline(user_map), _inline(user_merge), _inline(user_finalize)
        if n == 1:
            self._walk = walker.instantiate(
                f"walk_{module.__name__}",
                fold_row=module.fold_row,
                fold_4_rows=module.fold_4_rows,
                fold_across=module.fold_across,
                cache=cached,
            )
        else:
            self._walk = module.walk
        self.module = module
        self.n = n
        self.identity = tuple(float(v) for v in identity)
        self.mapped, self.merged = module.mapped, module.merged
        self.merge_columns, self.finalize_columns = module.merge_columns, module.finalize_columns

    def reduce(self, walk: Walk, params: tuple[float, ...], xp: Any = np) -> np.ndarray:
        """The states of one NumPy chunk: float64, shape ``(k, *walk.out_shape)``
        (``xp``: always NumPy here; the CUDA kernels' ``reduce`` takes the same)."""
        out = np.empty((len(self.identity), walk.out_size), dtype=np.float64)
        out[:] = np.array(self.identity)[:, None]
        self._walk(walker.walk_buffer(walk), walk.base, walk.sizes, walk.strides, walk.out_strides, (out,), params)
        return out.reshape((len(self.identity), *walk.out_shape))

    def reduce_joint(self, walk: JointWalk, params: tuple[float, ...], xp: Any = np) -> np.ndarray:
        """The states of aligned NumPy blocks of the ``n`` arrays, as :meth:`reduce`."""
        out = np.empty((len(self.identity), walk.out_size), dtype=np.float64)
        out[:] = np.array(self.identity)[:, None]
        self._walk(*map(walker.readable, walk.bufs), walk.bases, walk.sizes, walk.strides, walk.out_strides, out, params)
        return out.reshape((len(self.identity), *walk.out_shape))
