"""The main job's warm-up: compile, before the timer starts, every kernel the timed
compute will call, on a tiny array whose chunks walk as the real ones do.

Numba compiles one machine code per argument type, and the CPU walk one function per
layout case of a chunk (:func:`numbadask.cpu.walker.walk_case`): a chunk that is one
contiguous run walks as ``rows``, a 1-element chunk as ``broadcast_rows``, a view with
strided rows as ``tiles`` or ``strided_rows``.  A warm-up on chunks of another layout
than the real ones leaves the real case to compile inside the timed compute, where it
reads as seconds of "reduction" on a fresh install.  So the tiny array mirrors the real
array's chunking axis by axis (:func:`tiny_chunks`), and its chunks come both as views
of it (as a ``.npy`` file's memory-mapped chunks are; in the file's memory order) and
as C-contiguous copies (as generated, decompressed or persisted chunks are) where the
two differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def tiny_chunks(chunks: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Per axis, the tiny array's chunks for a real array chunked as ``chunks``: one
    chunk per size class of the real ones (1 element, or more, read as 2), in order of
    first appearance, and two where the real axis has several chunks of one class (so
    the merges of several chunks compile too).

    Examples
    --------
    >>> tiny_chunks(((300,), (70,)))                 # one chunk: two elements each way
    ((2,), (2,))
    >>> tiny_chunks(((64, 64, 64, 64, 44), (30, 30, 10)))
    ((2, 2), (2, 2))
    >>> tiny_chunks(((500, 500, 1), (1, 1)))         # a 1-element chunk walks apart
    ((2, 1), (1, 1))
    """
    out = []
    for sizes in chunks:
        classes = tuple(dict.fromkeys(1 if s <= 1 else 2 for s in sizes)) or (2,)
        if len(sizes) > 1 and len(classes) == 1:
            classes *= 2
        out.append(classes)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class _Blocks:
    """An array whose blocks are views of it, with its strides (``copy=False``), or
    C-contiguous copies of those views (``copy=True``)."""

    array: Any
    copy: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __getitem__(self, key: Any) -> Any:
        block = self.array[key]
        return block.copy(order="C") if self.copy else block


def chunked(array: Any, chunks: Any, copy: bool = False) -> Any:
    """``array`` (NumPy or CuPy) as a Dask array whose chunks are views of it, with its
    strides, or (``copy``) C-contiguous copies of them.  ``dask.array.from_array`` of a
    NumPy array would hand C-ordered copies only, losing the layouts a warm-up is for.

    Examples
    --------
    >>> row_stride = lambda x: int(x.map_blocks(lambda b: np.full((1, 1), b.strides[0]), chunks=(1, 1)).compute()[0, 0])
    >>> row_stride(chunked(np.ones((4, 6)), (2, 3))), row_stride(chunked(np.ones((4, 6)), (2, 3), copy=True))
    (48, 24)
    """
    import dask.array as da

    return da.from_array(_Blocks(array, copy), chunks=chunks, asarray=False, meta=array[(slice(0, 0),) * array.ndim])


def _views_are_contiguous(array: np.ndarray, chunks: tuple[tuple[int, ...], ...]) -> bool:
    """Whether every block of ``array`` chunked so, as a view, is C-contiguous."""
    import itertools

    edges = [np.cumsum((0, *c)) for c in chunks]
    blocks = itertools.product(*(zip(e[:-1], e[1:]) for e in edges))
    return all(array[tuple(slice(a, b) for a, b in block)].flags.c_contiguous for block in blocks)


def compile_kernels(dtype: str, chunks: Sequence[Sequence[int]], on_gpu: bool, lazy: Callable[[Any], Any], order: str = "C") -> None:
    """Compute ``lazy(x)`` (the timed run's graph builder) on a tiny array ``x`` of
    ``dtype`` chunked like the real array (``chunks``: its Dask chunks), here and at
    once, so that Numba compiles (or loads from its cache) every kernel the timed
    compute will call.  ``on_gpu``: the real chunks are moved to a GPU; ``order``: the
    memory order of the array the real chunks are views of (a Fortran-ordered ``.npy``
    file: "F").

    Examples
    --------
    >>> import functools, numbadask
    >>> compile_kernels("float32", ((64, 36), (70,)), False, functools.partial(numbadask.mean, axis=0))
    """
    import dask

    pattern = tiny_chunks(chunks)
    tiny = np.ones(tuple(sum(c) for c in pattern), dtype=dtype, order=order)
    if on_gpu:  # chunks moved to a GPU are contiguous CuPy arrays
        import cupy

        arrays = [chunked(cupy.asarray(tiny), pattern, copy=True)]
    else:
        arrays = [chunked(tiny, pattern)] + ([] if _views_are_contiguous(tiny, pattern) else [chunked(tiny, pattern, copy=True)])
    with warnings.catch_warnings():  # e.g. ddof >= 2 on two elements: not the user's data
        warnings.simplefilter("ignore")
        for x in arrays:
            results = lazy(x)
            dask.compute(*(results.values() if isinstance(results, dict) else [results]), scheduler="sync")
