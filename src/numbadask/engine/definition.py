"""What a reduction is: one :class:`Reduction` object, and the three steps Dask runs.

Every reduction, built-in or user-defined, is one object saying in one place

* ``kernel``: the :class:`~numbadask.engine.kernels.ChunkKernel` for an input dtype (its
  outputs, their dtypes and its identity, on the CPU and the GPU);
* ``state``: the partial state (:mod:`numbadask.reductions.states`) built from those outputs;
* ``merge``: how partial states merge (associative);
* ``finalize``: the merged state to the result, with its NaN and empty-slice rules;
* how it treats NaN (``skipna``), ``dtype=`` (``integer_dtype``) and ``ddof``
  (``options``), and NumPy's function of the same meaning (``numpy``: the result
  dtype rule, and the tests' reference).

The public functions (:mod:`numbadask.reductions.sums`, :mod:`numbadask.reductions.extremes`,
:mod:`numbadask.reductions.indices`, :mod:`numbadask.reductions.variances`), the CLI and the tests all read
these objects from one registry (:mod:`numbadask.reductions.registry`).  :func:`chunk`,
:func:`combine` and :func:`aggregate` are the graph's tasks (:mod:`numbadask.engine.graph`):
states travel as they are, never concatenated.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from dask.core import flatten

from numbadask.engine import dispatch


class Where(NamedTuple):
    """Where a chunk sits: its first element's global index and the array's shape
    (for the states of reductions whose ``indexed`` is set)."""

    offsets: tuple[int, ...] | None
    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Reduction:
    """One reduction; see the module docstring.

    Attributes
    ----------
    name : str
        The public function's name.
    kernel : callable
        ``kernel(input_dtype) -> ChunkKernel``.
    state : callable
        ``state(outputs, chunk, axes, where) -> partial state``.
    merge : callable
        ``merge(list_of_states) -> state``.
    finalize : callable
        ``finalize(state, result_dtype, **options) -> result block`` (keepdims shape).
    numpy : callable, optional
        NumPy's function of the same meaning.
    skipna : bool
        NaN values are skipped (the nan-functions) rather than propagated.  Input that
        cannot hold NaN is reduced as by the NaN-propagating twin, as in NumPy.
    nan_twin : str, optional
        For a NaN-skipping reduction, the name of the one that propagates NaN.
    integer_dtype : {"cast", "divide", "two-pass", None}
        What an integer or bool ``dtype=`` means: elements cast first (sum), the sum
        in that dtype divided by the count (mean), NumPy's two passes in that dtype
        (var, std: the mean, then the squared deviations cast and summed), or no
        ``dtype=`` at all (None).
    in_integers : callable, optional
        For ``integer_dtype`` "divide" and "two-pass": the call's graph when ``dtype=``
        is an integer or bool dtype, ``in_integers(r, x, axes, dtype, keepdims,
        split_every, device, ddof)``, computed as NumPy computes it (the family that
        declares the reduction owns the rule).
    exact_integers : bool
        Integer input is summed exactly in int64; a float ``dtype=`` then sums in
        floating point instead, as NumPy does.
    options : tuple of str
        The call's options ``finalize`` takes ("ddof", "skipna").
    indexed : bool
        Chunk states need the chunk's global offsets (``where``).
    """

    name: str
    kernel: Callable[[np.dtype], Any]
    state: Callable[[Any, Any, tuple[int, ...], Where], Any]
    merge: Callable[[list[Any]], Any]
    finalize: Callable[..., Any]
    numpy: Callable[..., Any] | None = None
    skipna: bool = False
    nan_twin: str | None = None
    integer_dtype: Literal["cast", "divide", "two-pass"] | None = "cast"
    in_integers: Callable[..., Any] | None = None
    exact_integers: bool = False
    options: tuple[str, ...] = ()
    indexed: bool = False

    def __repr__(self) -> str:
        return f"<Reduction {self.name}>"

    def skips_nan(self, dtype: np.dtype) -> bool:
        """Whether NaN is skipped for input of ``dtype`` (only floats hold NaN)."""
        return self.skipna and np.dtype(dtype).kind == "f"

    @staticmethod
    def numpy_warning(message: str) -> None:
        """Warn NumPy's ``message`` for a slice with nothing to reduce (a
        ``RuntimeWarning``: :data:`EMPTY_SLICE_WARNINGS`), from a ``finalize``: once per
        compute of one result, as NumPy warns once per call however many slices are
        empty, where :func:`aggregate` finishes the blocks (see :func:`_once_per_compute`)."""
        warned = _WARNED.get()
        if warned is not None:
            with _ROUNDS_LOCK:
                if message in warned:
                    return
                warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def finisher(self, input_dtype: np.dtype, ddof: float = 0) -> Callable[[Any, np.dtype], Any]:
        """``finalize`` with this call's options bound."""
        given = {"ddof": ddof, "skipna": self.skips_nan(input_dtype)}
        return functools.partial(self.finalize, **{k: given[k] for k in self.options})


def run_kernel(reduction: Reduction, x: Any, axes: tuple[int, ...], backend: str, params: tuple) -> Any:
    """The outputs of ``reduction``'s kernel on chunk ``x`` (already on ``backend``)."""
    return reduction.kernel(x.dtype).run(x, axes, backend, dispatch.array_module(x), params)


def chunk(
    x: Any,
    *,
    reduction: Reduction,
    axes: tuple[int, ...],
    device: str,
    params: tuple = (),
    shape: tuple[int, ...] = (),
    offsets: tuple[int, ...] | None = None,
) -> Any:
    """Partial state of one chunk over ``axes``, in the keepdims shape, on the device
    ``device`` picks for it."""
    if type(x) is not np.ndarray and not isinstance(x, np.generic) and not dispatch.is_cupy_array(x) and type(x) is not np.memmap:
        raise TypeError(
            f"numbadask reduces chunks of exactly numpy.ndarray or cupy.ndarray, got a {type(x).__module__}.{type(x).__name__} "
            "where the Dask array's meta said a plain array: give the array a meta of its chunks' type "
            "(da.from_array(..., meta=...), map_blocks(..., meta=...)), and numbadask hands such arrays to dask.array"
        )
    backend, x = dispatch.place(x, device)
    return reduction.state(run_kernel(reduction, x, axes, backend, params), x, axes, Where(offsets, shape))


def combine(states: Any, axis: tuple[int, ...], keepdims: bool, *, reduction: Reduction) -> Any:
    """Merge the (nested lists of) partial states of neighbouring chunks."""
    if not isinstance(states, list):
        states = [states]
    return reduction.merge(list(flatten(states, container=list)))


#: NumPy's warnings for a slice with nothing to reduce (no values, all NaN, n <= ddof).
#: numbadask warns as NumPy does; dask.array's reductions stay silent, and so do the
#: calls :func:`numbadask.accelerate` routes (``numpy_warnings=False``).
EMPTY_SLICE_WARNINGS = ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0 for slice")


#: The rounds of :func:`_once_per_compute`: result name -> (the blocks finished in the
#: current compute, the warnings given in it).  A few hundred results at most.
_ROUNDS: collections.OrderedDict[str, tuple[set, set]] = collections.OrderedDict()
_ROUNDS_LOCK = threading.Lock()
_MAX_ROUNDS = 256
#: The warnings given in the current round, while a block is finished (None elsewhere).
_WARNED: ContextVar[set | None] = ContextVar("numbadask_warned", default=None)


@contextlib.contextmanager
def _once_per_compute(block: str, blocks: int, here: int | None) -> Iterator[None]:
    """Finish ``block`` (``"<result name>|<index>"``) of a result of ``blocks`` blocks
    so that :meth:`Reduction.numpy_warning` warns each message once per compute of the
    result.  A compute is a round: it starts at a block no round is open for, or at a
    block the open round has already finished (the result computed again, after a
    compute that stopped early), and ends when every block is finished.

    Only in the process that built the graph (``here``, its pid), where a local
    scheduler (sync, threads; an in-process distributed worker) finishes every block:
    a worker process of the processes scheduler or of a distributed cluster sees some
    of the blocks of some computes, so there each block warns as NumPy would for it
    (printed by the worker: Dask carries no warning back to the client)."""
    if here != os.getpid():
        yield
        return
    name, _, index = block.rpartition("|")
    with _ROUNDS_LOCK:
        done, warned = _ROUNDS.get(name, (None, None))
        if done is None or index in done:
            done, warned = set(), set()
            _ROUNDS[name] = (done, warned)
            while len(_ROUNDS) > _MAX_ROUNDS:
                _ROUNDS.popitem(last=False)
        done.add(index)
        if len(done) >= blocks:  # the last block of this compute: the next starts anew
            _ROUNDS.pop(name, None)
    token = _WARNED.set(warned)
    try:
        yield
    finally:
        _WARNED.reset(token)


def aggregate(
    states: Any,
    axis: tuple[int, ...],
    keepdims: bool,
    *,
    reduction: Reduction,
    finalize: Callable[[Any, np.dtype], Any],
    result_dtype: np.dtype,
    numpy_warnings: bool = True,
    built_in: int | None = None,
    block: str | None = None,
    blocks: int = 1,
) -> Any:
    """Merge the last partial states and ``finalize`` them into the result block, with
    NumPy's empty-slice warnings unless ``numpy_warnings`` is False (dask.array's way):
    once per compute of the result where the graph names the ``block``
    (``"<result name>|<index>"``) and the result's number of ``blocks`` and this is the process (pid ``built_in``) that built
    it (:func:`_once_per_compute`), else once per block."""
    state = combine(states, axis, True, reduction=reduction)
    if numpy_warnings:
        with _once_per_compute(block, blocks, built_in) if block is not None else contextlib.nullcontext():
            result = finalize(state, result_dtype)
    else:
        with warnings.catch_warnings():
            for message in EMPTY_SLICE_WARNINGS:
                warnings.filterwarnings("ignore", message, RuntimeWarning)
            result = finalize(state, result_dtype)
    return drop_axes(result, axis, keepdims)


def drop_axes(result: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """A keepdims-shaped result block without the reduced ``axis`` unless ``keepdims``;
    a NumPy 0-d result as a NumPy scalar, as NumPy's and dask.array's reductions give
    (CuPy keeps 0-d arrays, as CuPy's do)."""
    if not keepdims:
        result = result.reshape(tuple(n for i, n in enumerate(result.shape) if i not in axis))
    return result[()] if isinstance(result, np.ndarray) and result.ndim == 0 else result


class StateBlock:
    """A merged partial state standing as one block of a Dask array, so that several
    results can be finished from it in one graph (one read of the data)."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state


def keep_state(state: Any, result_dtype: Any) -> StateBlock:
    """The ``finalize`` of a reduction whose results are finished later, field by field."""
    return StateBlock(state)
