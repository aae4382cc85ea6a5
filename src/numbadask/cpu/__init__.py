"""The CPU kernels: ``@numba.njit(nogil=True)`` code that reduces one NumPy chunk.

What lives here: the chunk's layout as a walk over its own memory, one block's or
several aligned blocks' (:mod:`.layout`), the one walk every kernel runs
(:mod:`.walker`), one module of block loops per family (:mod:`.sums`, :mod:`.extremes`,
:mod:`.moments`, :mod:`.args`, :mod:`.comoments`), the LLVM min/max intrinsics
(:mod:`.llvm_minmax`), the factory that writes the kernels of a user-defined reduction
(:mod:`.factory`, named by :mod:`.fingerprint`) and the on-disk kernel cache
(:mod:`.cache`).

What it may import: NumPy, Numba and its own modules; nothing else of numbadask (it is
the bottom layer).  Rules every kernel follows (measured; ``DESIGN.md``): ``nogil=True``,
never ``parallel=True``, no full ``fastmath``, float input accumulated in float64 and
integers in int64, never a copy of the chunk.
"""
