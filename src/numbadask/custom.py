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
"""

from __future__ import annotations

import inspect
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import calls, dispatch
from .layout import plan_walk
from .definition import Reduction, Where

if TYPE_CHECKING:
    import dask.array as da

#: Random states checked for associativity, commutativity and the identity.
_CHECKS = 8


def _first_field(state: tuple[float, ...]) -> float:
    return state[0]


class FieldStates(NamedTuple):
    """The partial states of one block: float64 ``values`` of shape ``(k, *keepdims
    shape)``, and whether they came from a GPU (the result then goes back there)."""

    values: Any
    on_gpu: bool


class CustomReduction:
    """A reduction built from scalar functions; call it like :func:`numbadask.sum`.

    Made by :func:`reduction`; see the module docstring for the rules.
    """

    def __init__(
        self,
        map: Callable[..., tuple],
        merge: Callable[[tuple, tuple], tuple],
        identity: tuple[float, ...],
        finalize: Callable[[tuple], float] | None = None,
        skipna: bool = False,
        name: str | None = None,
    ) -> None:
        self.map, self.merge = map, merge
        self.finalize = finalize or _first_field
        self.identity = _check_identity(identity, map)
        self.skipna = bool(skipna)
        self.name = name or getattr(map, "__name__", "reduction")
        self.params = _map_parameters(map)
        self.__name__ = self.__qualname__ = self.name
        self.__doc__ = inspect.getdoc(map)
        self.__module__ = getattr(map, "__module__", __name__)
        self._lock = threading.Lock()
        self._kernels: dict[str, Any] = {}
        self._checked = False

    def __repr__(self) -> str:
        return f"<numbadask.reduction {self.name} ({len(self.identity)} fields{', skipna' if self.skipna else ''})>"

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
        p = len(self.params)
        if backend == "cpu":
            from .custom_kernels import CpuKernels

            return CpuKernels(self.map, self.merge, self.finalize, self.identity, p, self.skipna)
        # Imported here: it imports numba.cuda, which `import numbadask` must not.
        from .cuda_kernels.custom import CudaKernels

        return CudaKernels(self.map, self.merge, self.identity, p, self.skipna)

    def check(self, params: tuple[float, ...] | None = None) -> None:
        """Compile the functions for the host and check them on a few values.

        Raises ``TypeError`` when Numba cannot compile one (Numba's message included)
        and ``ValueError`` when ``map`` or ``merge`` returns a state of the wrong arity;
        warns when ``merge`` does not look associative and commutative or ``identity``
        is not neutral.  Runs once, at the first call, in the client (before any task).
        """
        if params is None:
            params = tuple(float(d) for _, d in self.params if d is not inspect.Parameter.empty)
            if len(params) != len(self.params):
                raise TypeError(f"{self.name}: check() needs a value for every parameter of map")
        from numba import types

        k = len(self.identity)
        state = types.UniTuple(types.float64, k)
        kernels = self.kernels("cpu")
        module = kernels.module
        self._compile("map", self.map, module.raw_map, (types.float64,) * (1 + len(params)), k)
        self._compile("merge", self.merge, module.raw_merge, (state, state), k)
        self._compile("finalize", self.finalize, module.raw_finalize, (state,), None)
        values = np.random.default_rng(0).uniform(0.5, 2.0, size=3 * _CHECKS)
        mapped = [kernels.mapped(float(v), params) for v in values]
        merged = [kernels.merged(mapped[i], mapped[i + 1]) for i in range(0, len(mapped), 2)]
        _check_laws(self, kernels.merged, mapped + merged)

    def _compile(self, role: str, func: Any, dispatcher: Any, signature: tuple, k: int | None) -> None:
        """Compile ``dispatcher`` (which calls the user's ``func`` and returns what it
        returns; loaded from Numba's cache where it can be) for ``signature``; check
        what it returns: a tuple of ``k`` numbers (``k`` None: one number)."""
        from numba import types
        from numba.core.errors import NumbaError

        what = f"numbadask.reduction {self.name!r}: {role} function {_qualname(func)}"
        try:
            dispatcher.compile(signature)
            returned = dispatcher.overloads[tuple(signature)].signature.return_type
        except NumbaError as err:
            raise TypeError(f"{what} cannot be compiled by Numba for {signature}; Numba says:\n{err}") from err
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

    def __call__(
        self,
        a: Any,
        axis: calls.Axis = None,
        keepdims: bool = False,
        split_every: int | dict[int, int] | None = None,
        device: str = "auto",
        **params: Any,
    ) -> da.Array:
        """Reduce ``a`` along ``axis``: a lazy Dask array of float64.

        Parameters as in :func:`numbadask.sum` (less ``dtype``), plus the parameters of
        ``map`` as keyword arguments.

        Examples
        --------
        >>> import numpy as np
        >>> from numbadask.examples import count_above
        >>> count_above(np.array([[1.0, 5.0], [7.0, 2.0]]), axis=0, threshold=4).compute()
        array([1., 1.])
        """
        values = self.bind(params)
        x = calls.as_dask_array(a, self.name)
        axes = calls.normalize_axes(axis, x.ndim)
        dispatch.check_device(device)
        with self._lock:
            checked = self._checked
        if not checked:
            self.check(values)
            with self._lock:
                self._checked = True
        float64 = np.dtype(np.float64)
        return calls.reduce(self.reduction, x, axes, float64, bool(keepdims), split_every, device, params=values, token=(self,))

    # --- the reduction the graph runs ----------------------------------------------

    @property
    def kernel(self) -> Any:
        """The chunk kernel: outputs float64 states of shape ``(k, *keepdims shape)``."""
        from .kernels import ChunkKernel  # here: numbadask.kernels imports this module

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


def _rebuild(state: dict[str, Any]) -> CustomReduction:
    red = CustomReduction.__new__(CustomReduction)
    red.__dict__.update(state, _lock=threading.Lock(), _kernels={})
    return red


def _field_states(values: Any, x: Any, axes: tuple[int, ...], where: Where) -> FieldStates:
    return FieldStates(values, dispatch.is_cupy_array(values))


def _qualname(func: Any) -> str:
    return getattr(func, "__qualname__", repr(func))


def _check_identity(identity: Any, map: Any) -> tuple[float, ...]:
    if not isinstance(identity, tuple) or not identity:
        raise ValueError(
            f"numbadask.reduction {_qualname(map)}: identity must be a non-empty tuple of numbers "
            f"(one per state field), got {identity!r}"
        )
    try:
        return tuple(float(v) for v in identity)
    except (TypeError, ValueError) as err:
        raise ValueError(f"numbadask.reduction {_qualname(map)}: identity fields must be numbers, got {identity!r}") from err


def _map_parameters(map: Any) -> tuple[tuple[str, Any], ...]:
    """``map``'s parameters after ``x``, with their defaults (keyword-passable only)."""
    params = list(inspect.signature(map).parameters.values())
    if not params:
        raise ValueError(f"numbadask.reduction: map function {_qualname(map)} must take the element x")
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValueError(f"numbadask.reduction: map function {_qualname(map)} cannot take *args or **kwargs")
    return tuple((p.name, p.default) for p in params[1:])


def _check_laws(red: CustomReduction, merged: Any, states: list[tuple]) -> None:
    """Warn when ``merge`` breaks associativity or commutativity, or ``identity`` is
    not neutral, on a few states (mapped values and merged pairs)."""

    def close(a: tuple, b: tuple) -> bool:
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))

    problems = []
    for i in range(0, len(states) - 2, 3):
        a, b, c = states[i : i + 3]
        if not close(merged(merged(a, b), c), merged(a, merged(b, c))):
            problems.append(f"merge(merge(a, b), c) != merge(a, merge(b, c)) for a={a}, b={b}, c={c}")
        if not close(merged(a, b), merged(b, a)):
            problems.append(f"merge(a, b) != merge(b, a) for a={a}, b={b}")
        if not close(merged(red.identity, a), a):
            problems.append(f"merge(identity, a) != a for identity={red.identity}, a={a}")
    if problems:
        warnings.warn(
            f"numbadask.reduction {red.name!r}: merge {_qualname(red.merge)} must be associative and commutative "
            f"with identity {red.identity}, or results depend on the chunking: {problems[0]}",
            UserWarning,
            stacklevel=4,
        )


def _is_number(x: float) -> tuple[float]:
    # A select, not skipna's branch: branch-free folds vectorize.
    return (1.0 if x == x else 0.0,)


def _add(a: tuple[float], b: tuple[float]) -> tuple[float]:
    return (a[0] + b[0],)


#: The non-NaN count of float input, for :func:`numbadask.count`: the built-in that
#: runs on this generic path (measured as fast as its former hand-written kernel).
NON_NAN_COUNT = CustomReduction(_is_number, _add, (0.0,), name="count")


def reduction(
    map: Callable[..., tuple] | None = None,
    *,
    merge: Callable[[tuple, tuple], tuple],
    identity: tuple[float, ...],
    finalize: Callable[[tuple], float] | None = None,
    skipna: bool = False,
    name: str | None = None,
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
        call's keyword arguments.
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

    Returns
    -------
    CustomReduction
        Callable as ``f(a, axis=None, keepdims=False, split_every=None,
        device="auto", **params)``, returning a lazy float64 Dask array.

    Raises
    ------
    ValueError
        ``identity`` not a tuple of numbers, ``map`` without an element parameter;
        at the first call, a ``map``/``merge`` state of the wrong arity.
    TypeError
        At the first call: a function Numba cannot compile (with Numba's message).

    Examples
    --------
    >>> import numpy as np, numbadask
    >>> @numbadask.reduction(merge=lambda a, b: (a[0] + b[0],), identity=(0.0,))
    ... def count_above(x, threshold):
    ...     return (1.0 if x > threshold else 0.0,)
    >>> x = np.arange(10.0).reshape(2, 5)
    >>> count_above(x, axis=1, threshold=2.5).compute()
    array([2., 5.])
    """
    def make(func: Callable[..., tuple]) -> CustomReduction:
        return CustomReduction(func, merge, identity, finalize, skipna, name)

    return make if map is None else make(map)
