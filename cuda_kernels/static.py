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
  (:data:`.factory.LAUNCH_BOUNDS`: at most 64 registers), or, where that spills,
  without them, as :func:`.factory.compiled` does on a GPU (``Result.bounded``);
* no spill stores or loads;
* registers <= :data:`REGISTER_BUDGET` (65536 per SM / (4 blocks x 256 threads)) and
  4 blocks' shared memory fit an SM: at least 4 blocks of 256 threads resident;
* the main loop issues ``U`` loads of the input (:func:`input_loads`): PTX loops are
  found from labels and backward branches, loads of the input from the registers
  derived from the input array's data pointer, and the innermost loop holding input
  loads with the most of them is the main loop.

One obstacle (``../shared/DESIGN.md``): compiling a kernel that calls device functions
asks ``numba.cuda.dispatcher.get_current_device()`` for the compute capability, which
fails without a driver; :func:`target_device` replaces it, only while compiling, by an
object whose ``compute_capability`` is the target.  Compiles run in child processes
(:func:`check_many`), one per batch and architecture, so the replacement and Numba's
compile caches never leak into the caller or from one architecture to the other.

Importing this module imports no Numba; the children do.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The architectures checked, and the compute capability each is compiled for.
ARCHS = ("sm_80", "sm_90")
CC = {"sm_80": (8, 0), "sm_90": (9, 0)}
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
#: ``numbadask.bivariate._costate``).
MULTI_EXAMPLES = ("weighted_mean", "comoments")
#: Their layouts (both kernels, float32 and float64 inputs).
MULTI_LAYOUTS = ((1, 1), (1, 2))
#: The index of the input array's data pointer among the kernel's PTX parameters:
#: Numba passes a 1-d array as (meminfo, parent, nitems, itemsize, data, shape, strides).
INPUT_DATA_PARAM = 4


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
    from numbadask import reduction

    def merge(a: tuple, b: tuple) -> tuple:
        return (a[0] + b[0], a[1] + b[1])

    def weighted_mean(x: float, w: float) -> tuple:
        return (x * w, w)

    return reduction(weighted_mean, merge=merge, identity=(0.0, 0.0), finalize=lambda s: s[0] / s[1], skipna=True, arrays=2)


@functools.lru_cache(maxsize=None)
def _custom(example: str) -> Any:
    from numbadask import examples

    from numbadask import bivariate

    makers = {"weighted_mean": _weighted_mean, "comoments": lambda: bivariate._costate}
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


# --- the toolchain --------------------------------------------------------------------


def find_ptxas() -> str | None:
    """ptxas: ``$NUMBADASK_PTXAS``, the ``nvidia-cuda-nvcc-cu12`` wheel's, CUDA_HOME's
    or CUDA_PATH's, or the one on PATH."""
    candidates = [os.environ.get("NUMBADASK_PTXAS")]
    spec = importlib.util.find_spec("nvidia.cuda_nvcc") if importlib.util.find_spec("nvidia") else None
    if spec is not None and spec.submodule_search_locations:
        candidates += [str(Path(p) / "bin" / "ptxas") for p in spec.submodule_search_locations]
    candidates += [str(Path(os.environ[v]) / "bin" / "ptxas") for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    candidates.append(shutil.which("ptxas"))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def ptxas_version(ptxas: str | None = None) -> str:
    """ptxas's release line, e.g. ``Cuda compilation tools, release 12.9, V12.9.86``."""
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        return "missing"
    out = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout
    return next((line for line in out.splitlines() if "release" in line), out.strip())


@functools.lru_cache(maxsize=1)
def toolchain_missing() -> str | None:
    """Why the kernels cannot be compiled here (``None``: they can): numba-cuda, ptxas
    or NVVM absent.  NVVM is probed by compiling a small kernel in a child process."""
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install numba-cuda)"
    ptxas = find_ptxas()
    if ptxas is None:
        return "ptxas not found (pip install nvidia-cuda-nvcc-cu12, or set NUMBADASK_PTXAS)"
    code = "from numbadask.cuda_kernels.static import _probe; _probe()"
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), timeout=300)
    except subprocess.TimeoutExpired:
        return "NVVM probe timed out"
    if run.returncode != 0 or "probe ok" not in run.stdout:
        last = ((run.stderr or run.stdout).strip().splitlines() or ["no output"])[-1]
        return f"NVVM, NVRTC or ptxas unusable (pip install -e '.[test]' brings them): {last[-600:]}"
    return None


def _probe() -> None:
    import numpy as np
    from numba import cuda, float64, types

    @cuda.jit(device=True)
    def twice(x):
        return 2.0 * x

    def kernel(a):
        a[0] = twice(a[0])

    with target_device((8, 0)):
        ptx, _ = cuda.compile_ptx(kernel, (types.Array(float64, 1, "C"),), cc=(8, 0))
    assert np.dtype("float64")  # numpy importable alongside
    with tempfile.TemporaryDirectory() as d:
        info = run_ptxas(ptx, "sm_80", Path(d))
    print("probe ok", info["registers"])


class _Device:
    def __init__(self, cc: tuple[int, int]) -> None:
        self.compute_capability = cc


@contextlib.contextmanager
def target_device(cc: tuple[int, int]) -> Iterator[None]:
    """While compiling: ``numba.cuda.dispatcher.get_current_device()`` answers a device
    of compute capability ``cc`` (device functions ask it; there is no driver)."""
    import numba.cuda.dispatcher as dispatcher

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: _Device(cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def compile_ptx(pyfunc: Any, argtypes: tuple, arch: str, launch_bounds: tuple | None = None) -> str:
    """``pyfunc`` compiled by numba-cuda's NVVM for ``arch``, as PTX (with
    ``launch_bounds``: ``.maxntid``/``.minnctapersm``, which ptxas honours)."""
    from numba import cuda

    cc = CC[arch]
    options = {} if launch_bounds is None else {"launch_bounds": launch_bounds}
    with target_device(cc):
        ptx, _ = cuda.compile_ptx(pyfunc, argtypes, cc=cc, **options)
    return ptx


_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_ENTRY = re.compile(r"Compiling entry function '(\S+)'")


def parse_ptxas(text: str) -> dict:
    """Registers (the most of any entry function), spill stores and loads and stack
    frame (summed over all functions) and shared memory (the most of any entry) from
    ``ptxas -v``'s report.

    >>> parse_ptxas('''ptxas info    : Compiling entry function 'k' for 'sm_80'
    ... ptxas info    : Function properties for k
    ...     8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
    ... ptxas info    : Used 38 registers, used 1 barriers, 2052 bytes smem, 736 bytes cmem[0]''')
    {'registers': 38, 'spill_stores': 4, 'spill_loads': 4, 'stack': 8, 'shared': 2052, 'entries': 1}
    """
    info = {"registers": None, "spill_stores": 0, "spill_loads": 0, "stack": 0, "shared": 0, "entries": 0}
    for line in text.splitlines():
        if _ENTRY.search(line):
            info["entries"] += 1
        m = _FRAME.search(line)
        if m:
            info["stack"] += int(m.group(1))
            info["spill_stores"] += int(m.group(2))
            info["spill_loads"] += int(m.group(3))
        m = _USED.search(line)
        if m:
            info["registers"] = max(info["registers"] or 0, int(m.group(1)))
            s = _SMEM.search(line)
            if s:
                info["shared"] = max(info["shared"], int(s.group(1)))
    return info


def run_ptxas(ptx: str, arch: str, workdir: Path, ptxas: str | None = None) -> dict:
    """``ptxas -arch=<arch> -v`` on ``ptx``: :func:`parse_ptxas`'s dict; raises
    ``RuntimeError`` with ptxas's message if it fails."""
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise RuntimeError("ptxas not found")
    src = workdir / "kernel.ptx"
    src.write_text(ptx)
    run = subprocess.run([ptxas, f"-arch={arch}", "-v", str(src), "-o", str(workdir / "kernel.cubin")], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"ptxas -arch={arch} failed: {(run.stderr or run.stdout).strip()[-2000:]}")
    info = parse_ptxas(run.stderr + run.stdout)
    if info["registers"] is None:
        raise RuntimeError(f"no register count in ptxas -v's output: {run.stderr[-500:]}")
    return info


# --- loads of the input in PTX loops ---------------------------------------------------

_LABEL = re.compile(r"^(\$?[\w$]+):")
_BRANCH = re.compile(r"^(?:@!?%\w+\s+)?bra(?:\.uni)?\s+(\$?[\w$]+)\s*;")
_PARAM = re.compile(r"^ld\.param\.\w+\s+(%\w+)\s*,\s*\[\s*\w+_param_(\d+)\s*\]")
_REG = re.compile(r"%\w+")
_ADDRESS = re.compile(r"\[\s*(%\w+)")
#: State spaces a load of the input never uses.
_NOT_INPUT = ("param", "shared", "local", "const")


def _instructions(ptx: str) -> list[str]:
    """The kernel body's statements and labels, one per item, comments stripped."""
    lines = []
    for raw in ptx.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line and not line.startswith((".", "{", "}")):
            lines.append(line)
    return lines


def input_loads(ptx: str, data_param: int = INPUT_DATA_PARAM) -> dict:
    """Loads of the input in ``ptx``: in all (``total``), per loop (``loops``: label
    and loads inside, nested loops included) and in the main loop (``main``: the most
    loads of any innermost loop that holds input loads).

    A load reads the input when its address derives (through arithmetic and moves,
    never through a load) from the input array's data pointer, the kernel parameter
    ``data_param``; a generic ``ld.`` (as Numba emits) or ``ld.global.`` counts, a
    ``param``/``shared``/``local``/``const`` one never does; a vector load counts
    each element.  A loop is the code between a label and the last branch back to it.

    >>> ptx = '''
    ... ld.param.u64 %rd1, [k_param_4];
    ... mov.u64 %rd2, 0;
    ... $L__BB0_1:
    ... add.s64 %rd3, %rd1, %rd2;
    ... ld.f64 %fd1, [%rd3];
    ... ld.global.f64 %fd2, [%rd3+8];
    ... ld.shared.f64 %fd3, [%rd4];
    ... add.s64 %rd2, %rd2, 16;
    ... @%p1 bra $L__BB0_1;
    ... ld.f64 %fd4, [%rd3];
    ... '''
    >>> input_loads(ptx)
    {'total': 3, 'main': 2, 'loops': [('$L__BB0_1', 2)]}
    """
    body = _instructions(ptx)
    tainted: set[str] = set()
    for line in body:
        m = _PARAM.match(line)
        if m and int(m.group(2)) == data_param:
            tainted.add(m.group(1))
    # Forward taint to a fixed point (loops carry pointers around through moves).
    arith = []
    for line in body:
        if _LABEL.match(line):
            continue
        text = re.sub(r"^@!?%\w+\s+", "", line).rstrip(";")
        op, _, operands = text.partition(" ")
        if op.startswith(("ld", "st", "bra", "ret", "bar", "setp", "atom", "red", "call", "membar", "fence")):
            continue
        regs = _REG.findall(operands)
        if len(regs) >= 2:
            arith.append((regs[0], regs[1:]))
    changed = True
    while changed:
        changed = False
        for dest, sources in arith:
            if dest not in tainted and any(s in tainted for s in sources):
                tainted.add(dest)
                changed = True
    labels: dict[str, int] = {}
    loads: list[tuple[int, int]] = []  # (position, elements)
    back: dict[str, int] = {}
    for i, line in enumerate(body):
        m = _LABEL.match(line)
        if m:
            labels[m.group(1)] = i
            continue
        m = _BRANCH.match(line)
        if m and m.group(1) in labels:
            back[m.group(1)] = i
            continue
        text = re.sub(r"^@!?%\w+\s+", "", line)
        op = text.split(None, 1)[0] if text else ""
        if op.startswith("ld.") and not any(f".{s}" in op for s in _NOT_INPUT):
            a = _ADDRESS.search(text)
            if a and a.group(1) in tainted:
                width = re.search(r"\.v(\d)", op)
                loads.append((i, int(width.group(1)) if width else 1))
    loops = sorted(((labels[name], end, name) for name, end in back.items()), key=lambda t: (t[0], -t[1]))

    def inside(start: int, end: int) -> int:
        return sum(n for pos, n in loads if start <= pos <= end)

    counts = [(name, inside(start, end)) for start, end, name in loops]
    main = 0
    for (start, end, name), (_, n) in zip(loops, counts):
        nested = any(
            (s, e) != (start, end) and start <= s and e <= end and c > 0 for (s, e, _), (_, c) in zip(loops, counts)
        )
        if n > 0 and not nested:
            main = max(main, n)
    return {"total": sum(n for _, n in loads), "main": main, "loops": counts}


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


def _child_env() -> dict:
    env = dict(os.environ)
    env["NUMBA_ENABLE_CUDASIM"] = "0"  # the real compiler, whatever the caller runs
    return env


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
        code = "from numbadask.cuda_kernels.static import _worker; _worker()"
        try:
            run = subprocess.run(
                [sys.executable, "-c", code, str(src), str(dst)], capture_output=True, text=True, env=_child_env(), timeout=timeout
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


def versions() -> dict:
    """The toolchain's versions, for the reports."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("numba", "numba-cuda", "nvidia-cuda-nvcc-cu12", "nvidia-cuda-nvrtc-cu12"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    out["ptxas"] = ptxas_version()
    return out
