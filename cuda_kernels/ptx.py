"""The CUDA toolchain without a GPU: a kernel's Python function compiled through NVVM
as numba-cuda compiles it for a real GPU (:func:`compile_ptx`, for ``sm_80`` or
``sm_90``), ``ptxas -v`` run on the PTX (:func:`run_ptxas`: registers, spills, shared
memory) and the input loads of its main loop read from the PTX (:func:`input_loads`).

Both tools ship in the CUDA 12 wheels (``nvidia-cuda-nvcc-cu12``: ``nvvm/`` and
``bin/ptxas``).  One obstacle (``DESIGN.md``): compiling a kernel that calls device
functions asks ``numba.cuda.dispatcher.get_current_device()`` for the compute
capability, which fails without a driver; :func:`target_device` replaces it, only
while compiling, by an object whose ``compute_capability`` is the target.  The table
of kernels to check and the checks themselves are :mod:`numbadask.main.cuda_static`.

Importing this module imports no Numba.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The compute capability each architecture is compiled for.
CC = {"sm_80": (8, 0), "sm_90": (9, 0)}

#: What ``ptxas -v`` prints of each kernel (:func:`parse_ptxas`).
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_ENTRY = re.compile(r"Compiling entry function '(\S+)'")


#: The index of the input array's data pointer among the kernel's PTX parameters:
#: Numba passes a 1-d array as (meminfo, parent, nitems, itemsize, data, shape, strides).
INPUT_DATA_PARAM = 4


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
    code = "from numbadask.cuda_kernels.ptx import _probe; _probe()"
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300)
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


def child_env() -> dict:
    env = dict(os.environ)
    env["NUMBA_ENABLE_CUDASIM"] = "0"  # the real compiler, whatever the caller runs
    return env


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
