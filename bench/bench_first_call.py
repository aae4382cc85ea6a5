"""Benchmark: the first call in a fresh process, with numbadask's on-disk cache warm.

Two cases, each the first ``.compute()`` on ``da.ones((2048, 2048), chunks=1024)`` in a
new interpreter (this one, ``sys.executable``): the built-in ``numbadask.mean``, and a
user-defined two-field reduction (the mean as (sum, count)) in a module file that the
process imports, as a user's script would.  Each case gets its own empty cache folder
(``NUMBADASK_CACHE_DIR``; ``NUMBA_CACHE_DIR`` unset): one cold run fills it, then
``--runs`` warm runs, the cases taking turns, give the median and range of the import
time and of the first-compute time.  The cold run is reported only where the library
honours ``NUMBADASK_CACHE_DIR`` (a file appeared under it); elsewhere the library caches
where it always does (next to its installed source), which may be warm already: "n/a".

Usage:  python bench/bench_first_call.py [--runs 5] [--out bench/results] [--tag before]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FIRST_CALL, command_line, first_call_snippet, machine_name, output_parser, save_report  # noqa: E402

import numbadask  # noqa: E402  (only for its version and location: the timed imports are in fresh processes)

USER_MODULE = "first_call_mean2"
USER_SOURCE = '''"""A user's two-field reduction: the mean as (sum, count)."""
import numbadask


@numbadask.reduction(merge=lambda a, b: (a[0] + b[0], a[1] + b[1]), identity=(0.0, 0.0), finalize=lambda s: s[0] / s[1])
def mean2(x):
    return (x, 1.0)
'''

#: dask.array's own first compute, the yardstick: without a scheduler in dask.config it
#: looks for a distributed Client, which imports ``distributed`` (0.3 s here), as
#: numbadask's graph does when it asks which scheduler will run it.
DASK_FIRST_CALL = FIRST_CALL.replace("numbadask.mean(da.ones((2048, 2048), chunks=1024))", "da.ones((2048, 2048), chunks=1024).mean()")

CASES = {
    "dask.array mean (the yardstick)": DASK_FIRST_CALL,
    "built-in numbadask.mean": FIRST_CALL,
    "user-defined mean2 (sum, count)": first_call_snippet(USER_MODULE, "mean2"),
}


def first_call(snippet: str, env: dict[str, str], cwd: str) -> dict[str, float]:
    """Import and first-compute seconds of ``snippet`` in a fresh process, and the
    process's whole wall time (interpreter start and exit included)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", snippet], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"first-call snippet failed ({done.returncode}):\n{done.stderr}")
    imported, first = map(float, done.stdout.split()[-2:])
    return {"import_s": imported, "first_compute_s": first, "process_s": wall}


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def run(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="numbadask-first-call-") as tmp:
        modules = Path(tmp, "modules")
        modules.mkdir()
        (modules / f"{USER_MODULE}.py").write_text(USER_SOURCE)
        base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, (str(modules), os.environ.get("PYTHONPATH"))))
        envs, colds, honoured = {}, {}, {}
        for i, case in enumerate(CASES):
            cache = Path(tmp, f"cache-{i}")
            cache.mkdir()
            envs[case] = {**base, "NUMBADASK_CACHE_DIR": str(cache)}
            colds[case] = first_call(CASES[case], envs[case], str(modules))  # also the warm-up
            honoured[case] = any(p.is_file() for p in cache.rglob("*"))
        warm = {case: [] for case in CASES}
        for _ in range(runs):  # the cases take turns, so a slow spell of the machine hits both
            for case, snippet in CASES.items():
                warm[case].append(first_call(snippet, envs[case], str(modules)))
    results = []
    for case, snippet in CASES.items():
        results.append(
            {
                "case": case,
                "snippet": snippet,
                "cache_dir_honoured": honoured[case],
                "cold": colds[case] if honoured[case] else None,
                "warm": {key: summary([w[key] for w in warm[case]]) for key in ("import_s", "first_compute_s", "process_s")},
            }
        )
    return {
        "machine": machine_name(),
        "python": sys.executable,
        "numbadask_file": numbadask.__file__,
        "versions": {"numbadask": numbadask.__version__, "python": sys.version.split()[0]},
        "runs": runs,
        "user_module": USER_SOURCE,
        "results": results,
        "command": command_line(),
    }


def markdown(report: dict) -> str:
    def warm_cell(stat: dict) -> str:
        return f"{stat['median']:.3f} ({stat['min']:.3f}-{stat['max']:.3f})"

    lines = [
        f"# First call in a fresh process on {report['machine']}",
        "",
        "The first `.compute()` on `da.ones((2048, 2048), chunks=1024)` in a new interpreter, after "
        "importing numbadask and dask.array (and, for the user-defined case, the module defining it). "
        f"Each case has its own empty `NUMBADASK_CACHE_DIR` (`NUMBA_CACHE_DIR` unset): one cold run, then "
        f"{report['runs']} warm runs, the cases taking turns; warm cells are median (min-max) seconds. "
        "Cold is n/a where no file appeared under `NUMBADASK_CACHE_DIR` (dask.array compiles nothing; an older numbadask caches elsewhere, "
        "possibly warm already). Process: the whole `python -c` run, interpreter start and exit included.",
        "",
        f"numbadask {report['versions']['numbadask']} from `{report['numbadask_file']}`.",
        "",
        "| case | cold import s | cold first compute s | warm import s | warm first compute s | warm process s |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        cold = r["cold"]
        cold_cells = ["n/a", "n/a"] if cold is None else [f"{cold['import_s']:.3f}", f"{cold['first_compute_s']:.3f}"]
        warm = r["warm"]
        lines.append(
            f"| {r['case']} | {' | '.join(cold_cells)} | {warm_cell(warm['import_s'])} | "
            f"{warm_cell(warm['first_compute_s'])} | {warm_cell(warm['process_s'])} |"
        )
    lines += ["", "The user-defined reduction's module:", "", "```python", report["user_module"].rstrip(), "```"]
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = output_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="warm runs of each case")
    args = parser.parse_args()
    report = run(args.runs)
    save_report(report, markdown(report), "first-call", args)


if __name__ == "__main__":
    main()
