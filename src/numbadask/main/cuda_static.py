"""Static checks of the CUDA kernels for the real GPU, without one (issue 16, item 5).

Every kernel the launchers can use, for every input dtype and layout, is compiled as
numba-cuda would compile it on an A100 (``sm_80``) and an H100/H200 (``sm_90``):
through NVVM (:func:`numba.cuda.compile_ptx`, the same lowering as ``cuda.jit``) and
then ``ptxas -arch=sm_XX -v``, which prints each kernel's registers, spills and shared
memory.  Both ship in the CUDA 12 wheels (``nvidia-cuda-nvcc-cu12``: ``nvvm/`` and
``bin/ptxas``), so a CPU-only CI machine can run them; ``tests/test_cuda_static.py``
asserts on the results and ``bench/cuda_static.py`` tabulates them.

What is checked, per kernel and architecture (:class:`Result`):

* it compiles (NVVM and ptxas), the factory's kernels within their launch bounds
  (:data:`numbadask.cuda_kernels.factory.LAUNCH_BOUNDS`: at most 64 registers), or,
  where that spills, without them, as :func:`numbadask.cuda_kernels.factory.compiled`
  does on a GPU (``Result.bounded``);
* no spill stores or loads;
* registers <= :data:`REGISTER_BUDGET` (65536 per SM / (4 blocks x 256 threads)) and
  4 blocks' shared memory fit an SM: at least 4 blocks of 256 threads resident;
* the main loop issues ``U`` loads of the input
  (:func:`numbadask.cuda_kernels.ptx.input_loads`).

The toolchain (NVVM, ptxas, reading the PTX) is :mod:`numbadask.cuda_kernels.ptx`; this
module holds the table of kernels (:func:`targets`; the user-defined ones come from
:mod:`numbadask.reductions`, which is why it sits in the top layer) and the checks.
Compiles run in child processes (:func:`check_many`), one per batch and architecture,
so the device replacement and Numba's compile caches never leak into the caller or
from one architecture to the other.

Importing this module imports no Numba; the children do.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from numbadask.cuda_kernels.ptx import child_env, compile_ptx, input_loads, run_ptxas

#: The architectures checked, and the compute capability each is compiled for.
ARCHS = ("sm_80", "sm_90")
#: Threads per block of every kernel (rows: 256; columns: 32 x 8; the shift: 256).
THREADS = 256
#: Blocks of 256 threads that must stay resident per SM.
BLOCKS_PER_SM = 4
#: Registers per thread that keep BLOCKS_PER_SM blocks resident: 65536 / (4 x 256).
REGISTER_BUDGET = 65536 // (BLOCKS_PER_SM * THREADS)
#: Shared memory an SM can give its blocks (A100: 164 KiB; H100/H200: 228 KiB), and
#: what CUDA reserves per block (1 KiB from cc 8.0).
SHARED_PER_SM = {"sm_80": 164 * 1024, "sm_90": 228 * 1024}
SHARED_RESERVED_PER_BLOCK = 1024

#: Input dtypes as the kernels read them (bool is read as uint8).
INTS = ("uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64")
FLOATS = ("float16", "float32", "float64")
#: The dtypes of kernels that keep input values in their state: float16 is widened
#: to float32 first (:func:`.walks.kernel_buffer` with ``widen_float16``).
VALUE_DTYPES = (*INTS, "float32", "float64")
#: Layouts, ``(n_kept, n_reduced)`` axes of the walk: these for every dtype, and every
#: combination up to 4 axes for float32 and float64.
BASE_LAYOUTS = ((1, 1), (2, 1), (1, 2))
FULL_LAYOUTS = tuple((k, r) for k in range(1, 4) for r in range(1, 4) if k + r <= 4)
WIDE = ("float32", "float64")
#: User-defined reductions compiled (from :mod:`numbadask.examples`): logsumexp (two
#: fields, exp in the merge) and count_above (one field, one parameter).
CUSTOM_EXAMPLES = ("logsumexp", "count_above")
#: User-defined reductions of several arrays compiled (:data:`MULTI_EXAMPLES`' makers):
#: a weighted mean (two arrays read side by side, two fields, NaN positions skipped) and
#: the co-moments of CuPy block pairs (six fields, Chan's merge:
#: ``numbadask.reductions.comoments._costate``).
MULTI_EXAMPLES = ("weighted_mean", "comoments")
#: Their layouts (both kernels, float32 and float64 inputs).
MULTI_LAYOUTS = ((1, 1), (1, 2))


def _layouts(dtype: str) -> tuple[tuple[int, int], ...]:
    return FULL_LAYOUTS if dtype in WIDE else BASE_LAYOUTS


@dataclass(frozen=True)
class Target:
    """One kernel to compile: a ``kind`` (``rows``, ``columns`` or ``shift``, the shift
    pre-pass of moments), a reduction ``family`` (a key of :data:`.sum.REDUCTIONS`,
    ``minmax``, ``min``, ``max``, ``moments``, ``moments_minmax``, ``argmin``,
    ``argmax``, ``custom_<example>``), the input ``dtype`` as the kernel reads it and the layout.

    Plain data (it crosses to the child processes); :meth:`pyfunc`, :meth:`argtypes` and
    :meth:`loads` build the kernel's Python function, its Numba argument types and
    ``U``, the loads per thread of its main loop (``None``: not a block reduction).
    """

    kind: str
    family: str
    dtype: str
    n_kept: int
    n_reduced: int

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.family}_{self.dtype}_k{self.n_kept}r{self.n_reduced}"

    def reduction(self) -> Any:
        """The factory's :class:`.factory.GpuReduction` (``None`` for the shift)."""
        return None if self.kind == "shift" else _reduction(self.family, self.dtype)

    def loads(self) -> int | None:
        """``U``: loads per thread in the main loop on a real GPU (``None`` for the
        shift, one thread per output)."""
        import numpy as np

        r = self.reduction()
        return None if r is None else r.loads(np.dtype(self.dtype).itemsize, self.kind == "columns")

    def launch_bounds(self) -> tuple[int, int] | None:
        """The launch bounds the launchers compile it with (the factory's kernels:
        :data:`.factory.LAUNCH_BOUNDS`; the shift: none)."""
        return None if self.kind == "shift" else _module("factory").LAUNCH_BOUNDS

    def pyfunc(self) -> Any:
        """The kernel's Python function, as ``cuda.jit`` would compile it."""
        if self.kind == "shift":
            return _module("moments")._find_shift
        return _module("factory").kernel_function(self.reduction(), self.loads(), self.kind == "columns")

    def argtypes(self) -> tuple:
        """The kernel's explicit signature's argument types."""
        import numpy as np
        from numba import types

        factory = _module("factory")
        dtype = np.dtype(self.dtype)
        if self.kind == "shift":
            return (*factory.walk_argtypes(dtype, self.n_kept, self.n_reduced), types.Array(types.float64, 2, "C"))
        return factory.argtypes(self.reduction(), dtype, self.n_kept, self.n_reduced)


def _module(name: str) -> Any:
    # The package's names `sum`, `minmax`, ... are its functions; the modules by path.
    return importlib.import_module(f"numbadask.cuda_kernels.{name}")


def _weighted_mean() -> Any:
    """A reduction of two arrays: the weighted mean, sum(x * w) / sum(w), skipping
    positions where x or w is NaN (made here: ``numbadask.examples`` ships one-array
    reductions)."""
    from numbadask.reductions.custom import reduction

    def merge(a: tuple, b: tuple) -> tuple:
        return (a[0] + b[0], a[1] + b[1])

    def weighted_mean(x: float, w: float) -> tuple:
        return (x * w, w)

    return reduction(weighted_mean, merge=merge, identity=(0.0, 0.0), finalize=lambda s: s[0] / s[1], skipna=True, arrays=2)


@functools.lru_cache(maxsize=None)
def _custom(example: str) -> Any:
    from numbadask.reductions import comoments, examples

    makers = {"weighted_mean": _weighted_mean, "comoments": lambda: comoments._costate}
    r = makers[example]() if example in makers else getattr(examples, example)
    return _module("custom").CudaKernels(r.map, r.merge, r.identity, len(r.params), r.skipna, r.arrays)


def _reduction(family: str, dtype: str) -> Any:
    import numpy as np

    d = np.dtype(dtype)
    sums = _module("sum").REDUCTIONS
    if family in sums:
        return sums[family]
    if family in ("minmax", "min", "max"):
        return _module("minmax").block_reduction(d, "both" if family == "minmax" else family)
    if family in ("moments", "moments_minmax"):
        return _module("moments")._kernels(d, family == "moments_minmax")
    if family in ("argmin", "argmax"):
        return _module("argminmax").reduction(d, family == "argmax")
    if family.startswith("custom_"):
        return _custom(family[len("custom_") :]).reduction
    raise ValueError(f"unknown reduction family {family!r}")


def targets() -> list[Target]:
    """Every kernel the launchers can use, for every dtype and layout they reach.

    * sums (:data:`.sum.REDUCTIONS`): float sums read float16/32/64 directly, the
      integer sum bool (as uint8) and every integer dtype;
    * min and max together and alone, moments (plain and with min/max) and
      arg-min/max: every integer dtype, float32 (float16 is widened to it) and float64;
    * the moments' shift pre-pass, for the same dtypes and layouts as moments;
    * user-defined reductions (:data:`CUSTOM_EXAMPLES`): float64 and float32, and (the
      last example) the other dtypes a chunk may have (bool as uint8, integers,
      float16) on the first layout; a reduction of two arrays
      (:data:`MULTI_EXAMPLES`, both inputs of the dtype) on :data:`MULTI_LAYOUTS`.

    Each reduction has a rows kernel (innermost memory axis reduced) and a columns
    kernel (kept), for layouts :data:`BASE_LAYOUTS`, and :data:`FULL_LAYOUTS` for float32
    and float64.  Arg-min/max walk a 2-d (outputs, values) view, always one kept and
    one reduced axis.
    """
    out: list[Target] = []

    def add(family: str, dtypes: Iterable[str], layouts: Any = _layouts) -> None:
        for dtype in dtypes:
            for k, r in layouts(dtype):
                out.extend(Target(kind, family, dtype, k, r) for kind in ("rows", "columns"))

    add("sum_float64", FLOATS)
    add("nansum_float64", FLOATS)
    add("sum_int64", INTS)
    add("minmax", VALUE_DTYPES)
    add("min", VALUE_DTYPES)
    add("max", VALUE_DTYPES)
    add("moments", VALUE_DTYPES)
    add("moments_minmax", VALUE_DTYPES)
    for dtype in VALUE_DTYPES:
        out.extend(Target("shift", "moments", dtype, k, r) for k, r in _layouts(dtype))
    add("argmin", VALUE_DTYPES, lambda d: ((1, 1),))
    add("argmax", VALUE_DTYPES, lambda d: ((1, 1),))
    for example in CUSTOM_EXAMPLES:
        add(f"custom_{example}", WIDE)
    add(f"custom_{CUSTOM_EXAMPLES[-1]}", (*INTS, "float16"), lambda d: ((1, 1),))
    for example in MULTI_EXAMPLES:
        add(f"custom_{example}", WIDE, lambda d: MULTI_LAYOUTS)
    return out


# --- loads of the input in PTX loops ---------------------------------------------------


# --- checking -------------------------------------------------------------------------


@dataclass
class Result:
    """One kernel compiled for one architecture (``ok`` False: ``error`` says why)."""

    name: str
    arch: str
    ok: bool
    error: str = ""
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    stack: int | None = None
    shared: int | None = None
    loads_main: int | None = None
    loads_total: int | None = None
    loops: list = field(default_factory=list)
    U: int | None = None
    #: Compiled within the launch bounds (:data:`.factory.LAUNCH_BOUNDS`); False: they
    #: made it spill (``bounded_spills``: bytes of spill stores and loads, or of stack),
    #: so it was compiled without them, as the launchers do; None: it has none (shift).
    bounded: bool | None = None
    bounded_spills: int | None = None
    seconds: float = 0.0

    def fits(self) -> bool:
        """At least :data:`BLOCKS_PER_SM` blocks' shared memory fit one SM."""
        per_block = (self.shared or 0) + SHARED_RESERVED_PER_BLOCK
        return BLOCKS_PER_SM * per_block <= SHARED_PER_SM[self.arch]


def check(target: Target, arch: str, workdir: Path | None = None) -> Result:
    """``target`` compiled for ``arch`` in this process (see :func:`check_many`)."""
    started = time.perf_counter()
    result = Result(target.name, arch, ok=False)
    try:
        result.U = target.loads()
        # As .factory.compiled does on a GPU: within the launch bounds, unless the
        # kernel then needs local memory (spills), else without them.
        bounds = target.launch_bounds()
        with contextlib.ExitStack() as stack:
            d = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            ptx = compile_ptx(target.pyfunc(), target.argtypes(), arch, bounds)
            info = run_ptxas(ptx, arch, d)
            if bounds is not None and (info["stack"] or info["spill_stores"] or info["spill_loads"]):
                # (A stack frame without spills would count too: local memory.)
                result.bounded_spills = info["spill_stores"] + info["spill_loads"] or info["stack"]
                bounds = None
                ptx = compile_ptx(target.pyfunc(), target.argtypes(), arch)
                info = run_ptxas(ptx, arch, d)
        result.bounded = bounds is not None
        loads = input_loads(ptx)
        result.registers = info["registers"]
        result.spill_stores = info["spill_stores"]
        result.spill_loads = info["spill_loads"]
        result.stack = info["stack"]
        result.shared = info["shared"]
        result.loads_main = loads["main"]
        result.loads_total = loads["total"]
        result.loops = loads["loops"]
        result.ok = True
    except Exception as e:  # reported per kernel; the batch goes on
        result.error = "".join(traceback.format_exception_only(type(e), e)).strip()[-3000:]
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _worker() -> None:
    """A child's main: a JSON batch ``{"arch", "targets"}`` from the file named by
    ``argv[1]``, the results' JSON to ``argv[2]``."""
    batch = json.loads(Path(sys.argv[1]).read_text())
    arch = batch["arch"]
    results = []
    with tempfile.TemporaryDirectory() as d:
        for spec in batch["targets"]:
            results.append(asdict(check(Target(**spec), arch, Path(d))))
    Path(sys.argv[2]).write_text(json.dumps(results))


def _run_batch(targets: list[Target], arch: str, timeout: float) -> list[Result]:
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "batch.json", Path(d) / "results.json"
        src.write_text(json.dumps({"arch": arch, "targets": [asdict(t) for t in targets]}))
        code = "from numbadask.main.cuda_static import _worker; _worker()"
        try:
            run = subprocess.run(
                [sys.executable, "-c", code, str(src), str(dst)], capture_output=True, text=True, env=child_env(), timeout=timeout
            )
            failure = "" if run.returncode == 0 and dst.exists() else f"compile process exited {run.returncode}: {run.stderr.strip()[-2000:]}"
        except subprocess.TimeoutExpired:
            failure = f"compile process ran past {timeout:.0f} s"
        if failure:
            return [Result(t.name, arch, ok=False, error=failure) for t in targets]
        return [Result(**r) for r in json.loads(dst.read_text())]


def cases(targets_: Iterable[Target] | None = None, archs: Iterable[str] = ARCHS) -> list[tuple[Target, str]]:
    """Every (target, arch) pair (default: all :func:`targets` on all :data:`ARCHS`)."""
    ts = targets() if targets_ is None else list(targets_)
    return [(t, a) for t in ts for a in archs]


def check_many(
    pairs: Iterable[tuple[Target, str]], workers: int | None = None, batch_size: int = 48, timeout: float = 1800
) -> dict[tuple[str, str], Result]:
    """Every ``(target, arch)`` compiled and measured, keyed by ``(target.name, arch)``.

    Compiles run in child processes of a fresh interpreter (simulator off), one per
    batch of up to ``batch_size`` kernels of one architecture, a reduction's kernels
    kept together (its device functions compile once); ``workers`` at a time
    (default ``$NUMBADASK_STATIC_WORKERS``, else the CPU count up to 4).
    """
    if workers is None:
        workers = int(os.environ.get("NUMBADASK_STATIC_WORKERS", "0")) or max(1, min(4, os.cpu_count() or 1))
    by_arch: dict[str, dict[tuple[str, str], list[Target]]] = {}
    for t, arch in pairs:
        by_arch.setdefault(arch, {}).setdefault((t.family, t.dtype), []).append(t)
    batches: list[tuple[list[Target], str]] = []
    for arch, groups in by_arch.items():
        current: list[Target] = []
        for group in groups.values():
            if current and len(current) + len(group) > batch_size:
                batches.append((current, arch))
                current = []
            current = current + group
        if current:
            batches.append((current, arch))
    batches.sort(key=lambda b: -len(b[0]))  # the longest first: the workers finish together
    results: dict[tuple[str, str], Result] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in pool.map(lambda b: _run_batch(b[0], b[1], timeout), batches):
            results.update({(r.name, r.arch): r for r in batch})
    return results


