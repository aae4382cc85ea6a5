"""User-defined reductions: plain scalar Python functions become a CPU kernel, a CUDA
kernel and a Dask tree reduction (:func:`reduction`).

A reduction keeps a *state* per output position: a tuple of ``k`` float64 fields
(``(sum,)``, ``(sum, count)``, ``(max, sum of exp)``...).  The user gives

* ``map(x, *params) -> state``: the state of one element (``x`` is a float64);
* ``merge(a, b) -> state``: two states into one; must be associative and commutative
  (chunks, blocks and GPU threads are merged in a tree, not left to right);
* ``identity``: the state of no elements (``merge(identity, s) == s``);
* ``finalize(state) -> value`` (default: the first field), run once per output;
* ``skipna``: whether NaN elements are skipped (they then count as the identity).

States of CuPy chunks are merged and finalized on the host (``k`` floats per output,
less than a kernel launch costs) and the result goes back to the GPU as a CuPy array.

Every function must be compilable by Numba in nopython mode (``math``, NumPy scalar
functions, ``if``/``else``), for the CPU (``@numba.njit``) and, when a chunk is
reduced on the GPU, for CUDA (``@numba.cuda.jit(device=True)``).  Kernels are built
once per reduction, on the first chunk of each backend, and Numba compiles each once
per input dtype (both cached, thread-safely: Dask runs chunks in threads).

Parameters of ``map`` beyond ``x`` (``def above(x, threshold)``) are given as keyword
arguments when the reduction is called (defaults from ``map``'s signature apply); they
reach the kernels as a tuple of float64 run-time arguments, so a new value does not
recompile anything.

Several arrays read side by side: ``reduction(..., arrays=n)`` says that ``map``'s
first ``n`` parameters are one element of each of ``n`` arrays (``def wsum(x, w)``
with ``arrays=2``), and the parameters after them are the keyword parameters above;
the rule is explicit, so every single-array reduction keeps its meaning (a parameter
without a default, ``def above(x, threshold)``, stays a keyword parameter).  The
call takes the arrays first, positionally (``wsum(x, w, axis=0)``).  They are
broadcast against each other (NumPy's rule, as ``da.broadcast_arrays``: shapes
aligned from the last dimension, sizes equal or 1; otherwise a ``ValueError`` naming
the shapes and the dimension) and cut alike as ``da.map_blocks`` inputs are
(``unify_chunks``: along each dimension every boundary any of them has, so blocks are
split, never merged; a NumPy or CuPy input with the shape of a Dask input takes its
chunks).  ``axis`` counts in the broadcast shape.  One task per aligned block reads
every input once, and one kernel (CPU or CUDA) walks the blocks side by side, each
through its own strides (a broadcast axis has stride 0: no copy to the broadcast
shape).  With ``skipna`` a position is skipped, counting as the identity, when *any*
input is NaN there.  The elements reach ``map`` as float64 whatever the input dtypes
(bool, integers, float16/32/64, mixed).  The graph is
:func:`numbadask.engine.aligned.aligned_reduction`, for any reduction of aligned arrays.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from numbadask.cpu.layout import plan_walk
from numbadask.engine import calls, checks, dispatch
from numbadask.engine.definition import Reduction, Where
from numbadask.engine.kernels import ChunkKernel
from numbadask.reductions.custom_arrays import aligned_chunk, as_aligned_dask_arrays
from numbadask.reductions.custom_checks import check_arrays, check_identity, check_laws, guarded, map_parameters, qualname
from numbadask.reductions.states import FieldStates

if TYPE_CHECKING:
    import dask.array as da

#: Random states checked for associativity, commutativity and the identity.
_CHECKS = 8


def _first_field(state: tuple[float, ...]) -> float:
    return state[0]


class CustomReduction:
    """A reduction built from scalar functions; call it like :func:`numbadask.sum`.

    Made by :func:`reduction`; see the module docstring for the rules.
    """

    def __init__(
        self, map: Callable[..., tuple], merge: Callable[[tuple, tuple], tuple], identity: tuple[float, ...],
        finalize: Callable[[tuple], float] | None = None, skipna: bool = False, name: str | None = None, arrays: int = 1,
    ) -> None:  # fmt: skip
        self.map, self.merge = map, merge
        self.finalize = finalize or _first_field
        self.identity = check_identity(identity, map)
        self.skipna = bool(skipna)
        self.name = name or getattr(map, "__name__", "reduction")
        self.arrays = check_arrays(arrays, map)
        self.array_names, self.params = map_parameters(map, self.arrays)
        self.__name__ = self.__qualname__ = self.name
        self.__doc__ = inspect.getdoc(map)
        self.__module__ = getattr(map, "__module__", __name__)
        self._lock = threading.Lock()
        self._kernels: dict[str, Any] = {}
        self._checked = False

    def __repr__(self) -> str:
        arrays = f", {self.arrays} arrays" if self.arrays > 1 else ""
        return f"<numbadask.reduction {self.name} ({len(self.identity)} fields{arrays}{', skipna' if self.skipna else ''})>"

    def __reduce__(self) -> Any:
        """Pickle by reference when this object is what a module names after ``map``
        (the decorator replaced the function there, so the function itself cannot be
        pickled by reference); else by value, without kernels or lock: a worker
        process builds its own kernels on first use."""
        module = sys.modules.get(self.__module__)
        qualname = getattr(self.map, "__qualname__", "")
        if self.__module__ != "__main__" and module is not None and getattr(module, qualname, None) is self:
            return qualname
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_kernels")}
        return (_rebuild, (state,))

    def __dask_tokenize__(self) -> tuple:
        return ("numbadask.reduction", self.name, id(self))

    def kernels(self, backend: str) -> Any:
        """The CPU (``"cpu"``) or CUDA (``"gpu"``) kernels, built once on first use."""
        with self._lock:
            if backend not in self._kernels:
                self._kernels[backend] = self._build(backend)
            return self._kernels[backend]

    def _build(self, backend: str) -> Any:
        p, n = len(self.params), self.arrays
        if backend == "cpu":
            from numbadask.cpu.factory import CpuKernels

            return CpuKernels(self.map, self.merge, self.finalize, self.identity, p, self.skipna, n)
        # Imported here: it imports numba.cuda, which `import numbadask` must not.
        from numbadask.cuda_kernels.custom import CudaKernels

        return CudaKernels(self.map, self.merge, self.identity, p, self.skipna, n)

    def check(self, params: tuple[float, ...] | None = None) -> None:
        """Compile the functions for the host and check them on a few values.

        Raises ``TypeError`` naming the reduction, the role (map, merge or finalize)
        and the function when one cannot be compiled (Numba's message included) or
        fails on the check values (any exception: a ``ValueError`` raised inside it, an
        ``ImportError`` from Numba for ``np.linalg`` without SciPy), the original
        chained; ``ValueError`` when ``map`` or ``merge`` returns a state of the wrong
        arity; warns when ``merge`` does not look associative and commutative or
        ``identity`` is not neutral.  Runs once, at the first call, in the client
        (before any task).
        """
        if params is None:
            params = tuple(float(d) for _, d in self.params if d is not inspect.Parameter.empty)
            if len(params) != len(self.params):
                raise TypeError(f"{self.name}: check() needs a value for every parameter of map")
        from numba import types

        k, n = len(self.identity), self.arrays
        state = types.UniTuple(types.float64, k)
        kernels = self.kernels("cpu")
        module = kernels.module
        self._compile("map", self.map, module.raw_map, (types.float64,) * (n + len(params)), k)
        self._compile("merge", self.merge, module.raw_merge, (state, state), k)
        self._compile("finalize", self.finalize, module.raw_finalize, (state,), None)
        values = np.random.default_rng(0).uniform(0.5, 2.0, size=(3 * _CHECKS, n))
        mapped_ = guarded(self.name, "map", self.map, kernels.mapped)
        merged_ = guarded(self.name, "merge", self.merge, kernels.merged)
        mapped = [mapped_(*(float(v) for v in row), params) for row in values]
        merged = [merged_(mapped[i], mapped[i + 1]) for i in range(0, len(mapped), 2)]
        check_laws(self, merged_, mapped + merged)
        finalized = guarded(self.name, "finalize", self.finalize, module.raw_finalize)
        for state in merged:
            finalized(state)

    def _compile(self, role: str, func: Any, dispatcher: Any, signature: tuple, k: int | None) -> None:
        """Compile ``dispatcher`` (which calls the user's ``func`` and returns what it
        returns; loaded from Numba's cache where it can be) for ``signature``; check
        what it returns: a tuple of ``k`` numbers (``k`` None: one number)."""
        from numba import types
        from numba.core.errors import NumbaError

        what = f"numbadask.reduction {self.name!r}: {role} function {qualname(func)}"
        try:
            dispatcher.compile(signature)
            returned = dispatcher.overloads[tuple(signature)].signature.return_type
        except NumbaError as err:
            raise TypeError(f"{what} cannot be compiled by Numba for {signature}; Numba says:\n{err}") from err
        except Exception as err:  # Numba raises others too: np.linalg without SciPy is an ImportError
            raise TypeError(f"{what} cannot be compiled by Numba for {signature}: {type(err).__name__}: {err}") from err
        if k is None:
            if not isinstance(returned, (types.Number, types.Boolean)):
                raise ValueError(f"{what} must return one number, got {returned}")
            return
        numeric = isinstance(returned, types.BaseTuple) and all(isinstance(t, (types.Number, types.Boolean)) for t in returned)
        if not numeric or len(returned) != k:
            got = f"a tuple of {len(returned)} ({returned})" if isinstance(returned, types.BaseTuple) else str(returned)
            raise ValueError(f"{what} must return a state: a tuple of {k} numbers like the identity {self.identity}; got {got}")

    def bind(self, params: dict[str, Any]) -> tuple[float, ...]:
        """Call-time keyword arguments as the tuple of float64 the kernels take."""
        names = [n for n, _ in self.params]
        unknown = set(params) - set(names)
        if unknown:
            raise TypeError(f"{self.name}() got unexpected keyword argument(s) {sorted(unknown)}; map takes {names}")
        values = []
        for n, default in self.params:
            if n not in params and default is inspect.Parameter.empty:
                raise TypeError(f"{self.name}() missing parameter {n!r} of map")
            values.append(float(params.get(n, default)))
        return tuple(values)

    def __call__(self, *args: Any, **kwargs: Any) -> da.Array:
        """Reduce the arrays along ``axis``: a lazy Dask array of float64.

        ``f(x, axis=None, keepdims=False, split_every=None, device="auto", **params)``
        for one array; ``f(x, w, ..., axis=None, ...)`` for a reduction of several
        (``arrays=``): the arrays first, positionally.  ``axis`` and the options as in
        :func:`numbadask.sum` (less ``dtype``; after the arrays they may also come
        positionally, in that order), plus the parameters of ``map`` as keyword
        arguments.

        Examples
        --------
        >>> import numpy as np
        >>> from numbadask.examples import count_above
        >>> count_above(np.array([[1.0, 5.0], [7.0, 2.0]]), axis=0, threshold=4).compute()
        array([1., 1.])
        """
        n = self.arrays
        if len(args) < n:
            got = f"{len(args)} array{'s' if len(args) != 1 else ''}"
            raise TypeError(f"{self.name}() reduces {n} arrays (map's {', '.join(self.array_names)}) given positionally; got {got}")
        if len(args) > n + len(_OPTIONS):
            raise TypeError(f"{self.name}() takes {n} array(s) and at most {len(_OPTIONS)} options {_OPTIONS} positionally; got {len(args)} arguments")
        options = dict(_OPTIONS_DEFAULT)
        for option, value in zip(_OPTIONS, args[n:]):
            if option in kwargs:
                raise TypeError(f"{self.name}() got multiple values for argument {option!r}")
            options[option] = value
        options.update({k: kwargs.pop(k) for k in _OPTIONS if k in kwargs})
        values = self.bind(kwargs)
        if n == 1:
            return self._reduce_one(args[0], values, **options)
        return self._reduce_aligned(args[:n], values, **options)

    def _check_once(self, values: tuple[float, ...]) -> None:
        with self._lock:
            checked = self._checked
        if not checked:
            self.check(values)
            with self._lock:
                self._checked = True

    def _reduce_one(self, a: Any, values: tuple[float, ...], axis: checks.Axis, keepdims: bool, split_every: Any, device: str) -> da.Array:
        x = checks.as_dask_array(a, self.name)
        axes = checks.normalize_axes(axis, x.ndim)
        dispatch.check_device(device)
        self._check_once(values)
        float64 = np.dtype(np.float64)
        return calls.reduce(self.reduction, x, axes, float64, bool(keepdims), split_every, device, params=values, token=(self,))

    def _reduce_aligned(self, given: tuple, values: tuple[float, ...], axis: checks.Axis, keepdims: bool, split_every: Any, device: str) -> da.Array:
        """Several arrays, broadcast and cut alike (:func:`numbadask.engine.aligned.aligned_reduction`)."""
        from dask.base import tokenize

        from numbadask.engine import aligned
        from numbadask.engine.definition import aggregate, combine

        arrays = as_aligned_dask_arrays(given, self.name)
        what = f"numbadask.reduction {self.name!r}"
        shape = aligned.broadcast_shape([a.shape for a in arrays], list(self.array_names), what)
        axes = checks.normalize_axes(axis, len(shape))
        dispatch.check_device(device)
        self._check_once(values)
        keepdims = bool(keepdims)
        float64 = np.dtype(np.float64)
        r = self.reduction
        lead = next((a for a in arrays if dispatch.is_cupy_array(a._meta)), arrays[0])
        meta = calls.result_meta(lead, len(shape) if keepdims else len(shape) - len(axes), float64, device)
        split_every, dask_rule = calls.split_every_of(split_every)
        chunk = functools.partial(aligned_chunk, reduction=self, axes=axes, device=device, params=values)
        return aligned.aligned_reduction(
            arrays,
            shape,
            f"{self.name}-numbadask",
            tokenize(*arrays, self.name, shape, axes, device, values, self),
            axes,
            chunk,
            f"{what} ({self.arrays} arrays)",
            functools.partial(combine, reduction=r),
            functools.partial(aggregate, reduction=r, finalize=r.finisher(float64), result_dtype=float64, numpy_warnings=calls.NUMPY_WARNINGS.get()),
            keepdims,
            split_every,
            meta,
            dask_rule=dask_rule,
        )

    # --- the reduction the graph runs ----------------------------------------------

    @property
    def kernel(self) -> Any:
        """The chunk kernel: outputs float64 states of shape ``(k, *keepdims shape)``."""
        return ChunkKernel(f"{self.name} (user-defined)", self._reduce_chunk("cpu"), self._identity_states, gpu=self._reduce_chunk("gpu"))

    @property
    def reduction(self) -> Reduction:
        """This reduction as the graph and the registry see every reduction."""
        kernel = self.kernel
        return Reduction(
            name=self.name,
            kernel=lambda dtype: kernel,
            state=_field_states,
            merge=self.merge_states,
            finalize=self.finalize_states,
            integer_dtype=None,
            skipna=self.skipna,
        )

    def _reduce_chunk(self, backend: str) -> Any:
        def run(x: Any, axes: tuple[int, ...], params: tuple, xp: Any) -> Any:
            return self.kernels(backend).reduce(plan_walk(x, axes, xp), params, xp)

        return run

    def _identity_states(self, shape: tuple[int, ...], dtype: np.dtype, xp: Any) -> Any:
        return xp.asarray(np.array(self.identity).reshape((-1,) + (1,) * len(shape)) * np.ones(shape))

    def merge_states(self, states: list[FieldStates]) -> FieldStates:
        """Merge the states of neighbouring blocks on the host (``k`` floats per
        output: copying a GPU's states costs less than a kernel launch)."""
        merge_columns = self.kernels("cpu").merge_columns
        values = dispatch.to_host(states[0].values)
        shape = values.shape
        merged = values.reshape(shape[0], -1)
        for other in states[1:]:
            merged = merge_columns(np.ascontiguousarray(merged), dispatch.to_host(other.values).reshape(shape[0], -1))
        return FieldStates(merged.reshape(shape), any(s.on_gpu for s in states))

    def finalize_states(self, state: FieldStates, result_dtype: np.dtype) -> Any:
        """The result block: ``finalize`` of each output's state, on the states' device."""
        values = dispatch.to_host(state.values)
        result = self.kernels("cpu").finalize_columns(values.reshape(values.shape[0], -1)).reshape(values.shape[1:])
        if state.on_gpu:
            import cupy

            return cupy.asarray(result)
        return result


#: The options a call takes besides the arrays and map's parameters, in positional order.
_OPTIONS = ("axis", "keepdims", "split_every", "device")
_OPTIONS_DEFAULT = {"axis": None, "keepdims": False, "split_every": None, "device": "auto"}


def _rebuild(state: dict[str, Any]) -> CustomReduction:
    red = CustomReduction.__new__(CustomReduction)
    red.__dict__.update(state, _lock=threading.Lock(), _kernels={})
    return red


def _field_states(values: Any, x: Any, axes: tuple[int, ...], where: Where) -> FieldStates:
    return FieldStates(values, dispatch.is_cupy_array(values))


def reduction(
    map: Callable[..., tuple] | None = None,
    *,
    merge: Callable[[tuple, tuple], tuple],
    identity: tuple[float, ...],
    finalize: Callable[[tuple], float] | None = None,
    skipna: bool = False,
    name: str | None = None,
    arrays: int = 1,
) -> Any:
    """Make a Dask reduction from scalar functions: a Numba kernel per chunk (njit on
    NumPy chunks, CUDA on CuPy chunks), merged in Dask's tree reduction.

    Use it as a decorator on ``map`` (``@numbadask.reduction(merge=..., identity=...)``)
    or call it with ``map`` first.

    Parameters
    ----------
    map : callable
        ``map(x, *params) -> tuple``: the state of one element; ``x`` is the element as
        a float64 (any bool, integer or float input); extra parameters come from the
        call's keyword arguments.  With ``arrays=n``, ``map(x, y, ..., *params)``: one
        element of each of the ``n`` arrays, at the same (broadcast) position.
    merge : callable
        ``merge(a, b) -> tuple``: two states into one; associative and commutative.
    identity : tuple of float
        The state of no elements; its length is the number of state fields.
    finalize : callable, optional
        ``finalize(state) -> float``: the result of one output from its merged state
        (default: the first field).  An empty slice gives ``finalize(identity)``.
    skipna : bool, optional
        Skip NaN elements: each counts as ``identity``, whatever ``map`` makes of it.
    name : str, optional
        Name of the reduction in errors and in the graph (default: ``map``'s name).
    arrays : int, optional
        How many arrays the reduction reads side by side (default 1): ``map``'s first
        ``arrays`` parameters (without defaults) take their elements; the arrays are
        broadcast (NumPy's rule) and cut alike as ``da.map_blocks`` inputs are.  With
        ``skipna``, a position where any of them is NaN is skipped.

    Returns
    -------
    CustomReduction
        Callable as ``f(a, axis=None, keepdims=False, split_every=None,
        device="auto", **params)`` (with ``arrays=n``: ``f(a, b, ..., axis=None,
        ...)``, the ``n`` arrays first), returning a lazy float64 Dask array.

    Raises
    ------
    ValueError
        ``identity`` not a tuple of numbers, ``map`` without an element parameter
        per array, ``arrays`` not a positive int; when called, arrays whose shapes
        do not broadcast; at the first call, a ``map``/``merge`` state of the wrong
        arity.
    TypeError
        At the first call: a function Numba cannot compile (with Numba's message) or
        that fails on the check values (any exception, chained), naming the role
        (map, merge, finalize) and the function; a call with fewer arrays than
        ``arrays``.

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> @numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,))
    ... def count_above(x, threshold):
    ...     return (1.0 if x > threshold else 0.0,)
    >>> x = np.arange(10.0).reshape(2, 5)
    >>> count_above(x, axis=1, threshold=2.5).compute()
    array([2., 5.])

    A weighted mean of two arrays in one read, the weights broadcast along axis 0:

    >>> @numbadask.reduction(merge=lambda a, b: (a[0] + b[0], a[1] + b[1]), identity=(0.0, 0.0),
    ...                      finalize=lambda s: s[0] / s[1], arrays=2, skipna=True)
    ... def weighted_mean(x, w):
    ...     return (x * w, w)
    >>> data = np.array([[1.0, 2.0, 3.0], [3.0, np.nan, 5.0]])
    >>> weighted_mean(data, np.array([1.0, 3.0, 0.0]), axis=1).compute()  # NaN position skipped
    array([1.75, 3.  ])
    """
    def make(func: Callable[..., tuple]) -> CustomReduction:
        return CustomReduction(func, merge, identity, finalize, skipna, name, arrays)

    return make if map is None else make(map)
