"""Every CUDA kernel the launchers can use, compiled for the real GPU without one: each
reduction's rows and columns kernels (and the moments' shift pre-pass) for every input
dtype and layout, through numba-cuda's NVVM for sm_80 and sm_90 and then ``ptxas -v``
(``numbadask.main.cuda_static``, ``numbadask.cuda_kernels.ptx``).  Asserts: it compiles; no spills; 4 blocks of 256
threads stay resident (registers <= 64, shared memory); the launch bounds that cap the
registers are dropped only where they spill; the main loop issues U loads of the input.

Runs in the normal CPU suite, on the subset :data:`TARGETS` names.  The toolchain (NVVM, ptxas) comes with the ``test``
extra; without it the tests skip, unless ``NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1`` (set by
``ci/test_extended.sh``), where they fail.  Each architecture's kernels compile once for
the module, in child processes, only those the selected tests need.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from numbadask.cuda_kernels import ptx
from numbadask.main import cuda_static as static

# CI runs this module alone in one process (ci/test_extended.sh): the module fixture
# below compiles every case its tests need, in child processes, and under xdist each
# worker would compile them all.
pytestmark = pytest.mark.cuda_static

#: Every dtype on the first layout and float32/float64 on the base layouts: the
#: kernels the common chunks reach; each for sm_90 (H100/H200), the float32/float64
#: ones for sm_80 too (~6 min on the CI's 2 cores).  The full table (every layout,
#: both archs, ~50 min) is ``python bench/cuda_static.py``, or this test with
#: ``NUMBADASK_STATIC_ALL=1``.
ALL = os.environ.get("NUMBADASK_STATIC_ALL") == "1"
TARGETS = [
    t
    for t in static.targets()
    if ALL or (t.n_kept, t.n_reduced) == (1, 1) or (t.dtype in static.WIDE and (t.n_kept, t.n_reduced) in static.BASE_LAYOUTS)
]
CASES = [(t, arch) for t, arch in static.cases(TARGETS) if ALL or arch == "sm_90" or t.dtype in static.WIDE]
LOOPED = [(t, a) for t, a in CASES if t.kind != "shift"]

#: The committed report (``python bench/cuda_static.py`` writes it).
REPORT = Path(__file__).resolve().parents[1] / "bench" / "results" / "cuda-static.json"


def _over_budget() -> dict[tuple[str, str], int]:
    """``(kernel, arch) -> registers`` of the kernels the committed report measured over
    the register budget: their register tests are expected to fail (strictly: a kernel
    brought within budget fails here until the report is regenerated; one that goes
    over budget fails until it is fixed or the report records it)."""
    if not REPORT.exists():
        return {}
    report = json.loads(REPORT.read_text())
    return {
        (k["name"], arch): m["registers"]
        for k in report["kernels"]
        for arch, m in k["archs"].items()
        if m.get("registers") is not None and m["registers"] > report["register_budget"]
    }


OVER_BUDGET = _over_budget()


def _id(case: tuple[static.Target, str]) -> str:
    t, arch = case
    return f"{t.name}-{arch}"


def _with_known(cases: list, known: dict, what: str) -> list:
    params = []
    for case in cases:
        key = (case[0].name, case[1])
        reason = f"measured {known.get(key)} {what} (bench/results/cuda-static.json)"
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if key in known else []
        params.append(pytest.param(case, id=_id(case), marks=marks))
    return params


@pytest.fixture(scope="module")
def compiled(request: pytest.FixtureRequest) -> dict:
    reason = ptx.toolchain_missing()
    if reason:
        if os.environ.get("NUMBADASK_REQUIRE_CUDA_TOOLCHAIN") == "1":
            pytest.fail(f"NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    # Only what the selected tests of this module need (`-k` keeps it short).
    wanted = {}
    for item in request.session.items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        # Doctest items (the suite also collects src/) have no module attribute.
        if getattr(item, "module", None) is request.module and case:
            wanted[(case[0].name, case[1])] = case
    return static.check_many(wanted.values() or CASES)


def _result(compiled: dict, case: tuple[static.Target, str]) -> static.Result:
    r = compiled[(case[0].name, case[1])]
    assert r.ok, f"{r.name} does not compile for {r.arch}: {r.error}"
    return r


@pytest.mark.parametrize("case", [pytest.param(c, id=_id(c)) for c in CASES])
def test_compiles_without_spills(compiled, case):
    r = _result(compiled, case)
    assert (r.spill_stores, r.spill_loads) == (0, 0), f"{r.spill_stores} bytes spill stores, {r.spill_loads} bytes spill loads"
    assert r.fits(), f"{r.shared} bytes of shared memory a block: {static.BLOCKS_PER_SM} blocks do not fit a {r.arch} SM"


@pytest.mark.parametrize("case", _with_known(CASES, OVER_BUDGET, f"registers > {static.REGISTER_BUDGET}"))
def test_registers_within_budget(compiled, case):
    r = _result(compiled, case)
    assert r.registers <= static.REGISTER_BUDGET, f"{r.registers} registers > {static.REGISTER_BUDGET}"


@pytest.mark.parametrize("case", [pytest.param(c, id=_id(c)) for c in LOOPED])
def test_launch_bounds_dropped_only_where_they_spill(compiled, case):
    """Each factory kernel is compiled within the launch bounds (<= 64 registers)
    unless that spilled; then without them (as ``factory.compiled`` does)."""
    r = _result(compiled, case)
    assert r.bounded or r.bounded_spills, "compiled without launch bounds, but they did not spill"
    if r.bounded:
        assert r.registers <= static.REGISTER_BUDGET


@pytest.mark.parametrize("case", [pytest.param(c, id=_id(c)) for c in LOOPED])
def test_main_loop_issues_U_loads(compiled, case):
    r = _result(compiled, case)
    assert r.U is not None and r.U >= 2
    assert r.loads_main >= r.U, f"main loop issues {r.loads_main} input loads, U = {r.U} (loops: {r.loops})"


def test_targets_cover_every_launcher():
    """Every reduction the launchers use has kernels in the full list, for every dtype
    (the tests above compile the subset :data:`TARGETS`)."""
    everything = static.targets()
    sums = importlib.import_module("numbadask.cuda_kernels.sum").REDUCTIONS
    families = {t.family for t in everything}
    assert set(sums) <= families
    # The launchers' chunk kernels: MIN, MAX, MINMAX, MOMENTS, MOMENTS_MINMAX, ARGMIN, ARGMAX.
    launched = importlib.import_module("numbadask.cuda_kernels").LAUNCHERS
    assert len(launched) == len(sums) + 7
    values = ("min", "max", "minmax", "moments", "moments_minmax", "argmin", "argmax")
    assert set(values) <= families
    assert any(f.startswith("custom_") for f in families)
    # A user-defined reduction of two arrays read side by side (issue 18).
    assert {f"custom_{e}" for e in static.MULTI_EXAMPLES} <= families
    for family in values:
        for kind in ("rows", "columns"):
            assert {t.dtype for t in everything if t.family == family and t.kind == kind} == set(static.VALUE_DTYPES)
    assert {t.dtype for t in everything if t.family == "sum_int64"} == set(static.INTS)
    assert {t.dtype for t in everything if t.kind == "shift"} == set(static.VALUE_DTYPES)
    layouts = {(t.n_kept, t.n_reduced) for t in everything if t.family == "moments" and t.dtype == "float64"}
    assert layouts == set(static.FULL_LAYOUTS) and len(static.FULL_LAYOUTS) == 6
    assert len({t.name for t in everything}) == len(everything)


def test_input_loads_counts_only_the_input_inside_loops():
    text = """
    ld.param.u64 %rd1, [k_param_4];
    ld.param.u64 %rd9, [k_param_11];
    cvta.to.global.u64 %rd2, %rd1;
    $L__BB0_1:
    mul.wide.s32 %rd5, %r1, 4;
    add.s64 %rd3, %rd2, %rd5;
    ld.global.nc.f32 %f1, [%rd3];
    ld.v2.f32 {%f2, %f3}, [%rd3+4];
    ld.f64 %fd1, [%rd9];
    ld.local.f32 %f4, [%rd3];
    $L__BB0_2:
    ld.f32 %f5, [%rd3];
    @%p2 bra $L__BB0_2;
    @!%p1 bra.uni $L__BB0_1;
    ld.f32 %f6, [%rd3];
    """
    got = ptx.input_loads(text)
    # The outer loop holds 4 input loads, but an inner loop holds some: it is not
    # innermost, so the main loop is the inner one (1 load).
    assert got == {"total": 5, "main": 1, "loops": [("$L__BB0_1", 4), ("$L__BB0_2", 1)]}


def test_parse_ptxas_sums_spills_over_functions():
    text = """ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Function properties for helper
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 72 registers, used 1 barriers, 14340 bytes smem, 1552 bytes cmem[0]"""
    info = ptx.parse_ptxas(text)
    assert info == {"registers": 72, "spill_stores": 8, "spill_loads": 4, "stack": 16, "shared": 14340, "entries": 1}
    r = static.Result("k", "sm_80", ok=True, shared=40 * 1024)
    assert r.fits() and not static.Result("k", "sm_80", ok=True, shared=41 * 1024).fits()
