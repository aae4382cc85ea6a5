"""Static report of the CUDA kernels for the real GPU: registers, spills, shared memory
and input loads in the main loop of every kernel, compiled for sm_80 and sm_90 without
a GPU (numba-cuda's NVVM, then ptxas -v; see numbadask.main.cuda_static).

The budget: <= 64 registers per thread (4 blocks of 256 threads resident per SM), no
spills, and the main loop issuing U loads of the input.  Writes cuda-static.md and
cuda-static.json (no machine prefix: the numbers belong to the target GPUs, not to
the machine that compiled them).

Usage:  python bench/cuda_static.py [--out bench/results] [--only SUBSTRING] [--workers N] [--update]

``--update`` (with ``--only``): compile only the matching kernels and splice them into
the report already in ``--out``, keeping every other kernel's numbers (the report then
lists each partial command under ``updates``); the full run takes ~50 min on 2 cores.
"""

from __future__ import annotations

import json
import sys
from typing import Any
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, output_parser  # noqa: E402

from numbadask.cuda_kernels import ptx
from numbadask.main import cuda_static as static  # noqa: E402


def _verdict(r: static.Result) -> list[str]:
    if not r.ok:
        return ["does not compile"]
    problems = []
    if r.spill_stores or r.spill_loads:
        problems.append("spills")
    if r.registers > static.REGISTER_BUDGET:
        problems.append(f"{r.registers} registers")
    if not r.fits():
        problems.append("shared memory")
    if r.U is not None and r.loads_main < r.U:
        problems.append(f"{r.loads_main} loads < U={r.U}")
    return problems


def _cell(r: static.Result) -> str:
    if not r.ok:
        return "FAILS | | | "
    spills = "0" if not (r.spill_stores or r.spill_loads) else f"{r.spill_stores}/{r.spill_loads}"
    regs = f"**{r.registers}**" if r.registers > static.REGISTER_BUDGET else str(r.registers)
    if r.bounded is False and r.bounded_spills is not None:
        regs += f" (bounded: {r.bounded_spills} B spills)"
    return f"{regs} | {spills} | {r.shared} | {r.loads_main}"


def _bounds() -> str:
    from numbadask.cuda_kernels import factory

    return "(%d threads, %d blocks per SM)" % factory.LAUNCH_BOUNDS


def markdown(report: dict, results: dict) -> str:
    rows = report["kernels"]
    over = [k for k in rows if any(k["problems"].values())]
    lines = [
        "# CUDA kernels compiled for the real GPU (static checks)",
        "",
        f"`{report['command']}`, {report['seconds']:.0f} s on {report['host_cpus']} CPUs. Toolchain: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + ".",
        "",
        f"Budget: registers <= {static.REGISTER_BUDGET} (65536 / (4 blocks x 256 threads)), no spills, "
        f"4 blocks' shared memory fit an SM, main loop issues >= U loads of the input "
        "(input loads in the innermost PTX loop holding the most of them). "
        "Columns per arch: registers | spill stores/loads (bytes) | shared bytes | input loads in the main loop. "
        f"Factory kernels are compiled with launch bounds {_bounds()} (at most {static.REGISTER_BUDGET} registers), "
        "unless that spills: then without them, as the launchers do (`(bounded: N B spills)`: what the bounded "
        "compile spilled).",
        "",
        *[f"Updated by `{u['command']}` ({u['kernels']} kernels, {u['seconds']:.0f} s)." for u in report.get("updates", [])],
        "",
        f"{len(rows)} kernels x {len(report['archs'])} archs; {len(over)} kernels miss the budget on at least one arch; "
        f"{sum(1 for k in rows if any(m.get('bounded') is False and m.get('bounded_spills') is not None for m in k['archs'].values()))} "
        "compiled without the launch bounds on at least one arch (they spilled within them).",
        "",
    ]
    if over:
        lines += ["## Over budget", ""]
        for k in over:
            why = "; ".join(f"{a}: {', '.join(p)}" for a, p in k["problems"].items() if p)
            lines.append(f"- `{k['name']}` (U={k['U']}): {why}")
        lines.append("")
    head = "| kernel | U | " + " | ".join(f"{a} regs | spills | shared | loads" for a in report["archs"]) + " |"
    lines += ["## Every kernel", "", head, "|" + "---|" * (2 + 4 * len(report["archs"]))]
    for k in rows:
        cells = " | ".join(_cell(results[(k["name"], a)]) for a in report["archs"])
        lines.append(f"| `{k['name']}` | {k['U'] if k['U'] is not None else '-'} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = output_parser(__doc__)
    parser.add_argument("--only", default="", help="only kernels whose name contains this")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--update", action="store_true", help="splice the --only kernels into the existing report")
    args = parser.parse_args()
    if args.update and not args.only:
        sys.exit("--update needs --only: which kernels to recompile")
    reason = ptx.toolchain_missing()
    if reason:
        sys.exit(f"cannot compile the CUDA kernels here: {reason}")
    targets = [t for t in static.targets() if args.only in t.name]
    started = time.perf_counter()
    results = static.check_many(static.cases(targets), workers=args.workers)
    seconds = time.perf_counter() - started
    import os

    kernels = []
    for t in targets:
        per_arch = {a: results[(t.name, a)] for a in static.ARCHS}
        kernels.append(
            {
                "name": t.name,
                "kind": t.kind,
                "family": t.family,
                "dtype": t.dtype,
                "n_kept": t.n_kept,
                "n_reduced": t.n_reduced,
                "U": next((r.U for r in per_arch.values() if r.U is not None), None),
                "problems": {a: _verdict(r) for a, r in per_arch.items()},
                "archs": {
                    a: {
                        k: getattr(r, k)
                        for k in (
                            "ok", "error", "registers", "spill_stores", "spill_loads", "stack", "shared",
                            "loads_main", "loads_total", "bounded", "bounded_spills", "seconds",
                        )
                    }
                    for a, r in per_arch.items()
                },
            }
        )
    if args.update:
        report, results = _spliced(args.out, kernels, results, command_line(), round(seconds, 1))
        _write(args, report, results)
        return
    report = {
        "command": command_line(),
        "seconds": round(seconds, 1),
        "host_cpus": os.cpu_count(),
        "archs": list(static.ARCHS),
        "register_budget": static.REGISTER_BUDGET,
        "versions": ptx.versions(),
        "kernels": kernels,
    }
    _write(args, report, results)


def _spliced(out: Path, kernels: list[dict], results: dict, command: str, seconds: float) -> tuple[dict, dict]:
    """The committed report with ``kernels`` in place of (or added beside) those of the
    same name, in :func:`static.targets`' order; and every kernel's results."""
    report = json.loads((out / "cuda-static.json").read_text())
    fresh = {k["name"]: k for k in kernels}
    old = {k["name"]: k for k in report["kernels"]}
    merged = {**old, **fresh}
    order = [t.name for t in static.targets()]
    report["kernels"] = sorted((k for k in merged.values() if k["name"] in order), key=lambda k: order.index(k["name"]))  # stale names dropped
    report.setdefault("updates", []).append({"command": command, "seconds": seconds, "kernels": len(kernels), "versions": ptx.versions()})
    results = dict(results)
    for k in report["kernels"]:
        for arch, m in k["archs"].items():
            if (k["name"], arch) not in results:
                results[(k["name"], arch)] = static.Result(name=k["name"], arch=arch, **m)
    return report, results


def _write(args: Any, report: dict, results: dict) -> None:
    text = markdown(report, results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / "-".join(filter(None, ("cuda-static", args.tag)))
    Path(f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    Path(f"{stem}.md").write_text(text)


if __name__ == "__main__":
    main()
