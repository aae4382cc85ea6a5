"""Benchmark: the first call in a fresh process, with numbadask's on-disk cache warm and cold.

Two cases, each the first ``.compute()`` on ``da.ones((2048, 2048), chunks=1024)`` in a
new interpreter (this one, ``sys.executable``): the built-in ``numbadask.mean``, and a
user-defined two-field reduction (the mean as (sum, count)) in a module file that the
process imports, as a user's script would.  Each case gets its own empty cache folder
(``NUMBADASK_CACHE_DIR``; ``NUMBA_CACHE_DIR`` unset): one cold run fills it, then
``--runs`` warm runs, the cases taking turns, give the median and range of the import
time and of the first-compute time.  The cold run is reported only where the library
honours ``NUMBADASK_CACHE_DIR`` (a file appeared under it); elsewhere the library caches
where it always does (next to its installed source), which may be warm already: "n/a".

Then the cold first calls of issue 26, each in a new process with a new empty cache
folder, ``--cold-runs`` times: ``numbadask.mean`` of a float64 array, and
``numbadask.std(x, axis=0)`` of a 2-d one (its process's first call), on
``da.from_array`` of a (2048, 2048) NumPy array in 1024-square chunks (strided views)
and on ``da.random`` (2048, 2048) in 1024-square chunks (contiguous chunks).  With
``--baseline PYTHON`` every cold case also runs under that interpreter (another install
of numbadask, e.g. the commit before), the two taking turns, so a slow spell of the
machine hits both.

Usage:  python bench/bench_first_call.py [--runs 5] [--cold-runs 5] [--baseline PYTHON]
                                         [--out bench/results] [--tag before]
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

_COLD = """
import time
start = time.perf_counter()
import numpy as np, numbadask, dask.array as da
x = {array}
imported = time.perf_counter()
numbadask.{call}.compute()
print(imported - start, time.perf_counter() - imported)
"""
_ARRAYS = {
    "from_array": "da.from_array(np.random.default_rng(0).random((2048, 2048)), chunks=1024)",
    "da.random": "da.random.default_rng(0).random((2048, 2048), chunks=1024)",
}
#: Issue 26's two numbers, each the first call of a new process on an empty cache.
COLD_CASES = {
    f"{call.split('(')[0]}{' axis 0' if 'axis' in call else ''}, float64, {name}": _COLD.format(array=array, call=call)
    for call in ("mean(x)", "std(x, axis=0)")
    for name, array in _ARRAYS.items()
}


def first_call(snippet: str, env: dict[str, str], cwd: str, python: str = sys.executable) -> dict[str, float]:
    """Import and first-compute seconds of ``snippet`` in a fresh process of ``python``,
    and the process's whole wall time (interpreter start and exit included)."""
    start = time.perf_counter()
    done = subprocess.run([python, "-c", snippet], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"first-call snippet failed ({done.returncode}):\n{done.stderr}")
    imported, first = map(float, done.stdout.split()[-2:])
    return {"import_s": imported, "first_compute_s": first, "process_s": wall}


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def cold_calls(runs: int, pythons: dict[str, str]) -> list[dict]:
    """Every cold case ``runs`` times under each interpreter, each in a new process with a
    new empty cache folder; the interpreters and cases take turns."""
    times: dict[tuple[str, str], list[dict]] = {(p, c): [] for p in pythons for c in COLD_CASES}
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    with tempfile.TemporaryDirectory(prefix="numbadask-cold-") as tmp:
        for r in range(runs):
            for case, snippet in COLD_CASES.items():
                for label, python in pythons.items():
                    cache = Path(tmp, f"{label}-{r}-{len(times[label, case])}-{abs(hash(case))}")
                    cache.mkdir()
                    env = {**base, "NUMBADASK_CACHE_DIR": str(cache)}
                    times[label, case].append(first_call(snippet, env, tmp, python))
    return [
        {
            "case": case,
            "numbadask": label,
            "python": python,
            "snippet": COLD_CASES[case],
            **{key: summary([t[key] for t in times[label, case]]) for key in ("import_s", "first_compute_s", "process_s")},
        }
        for case in COLD_CASES
        for label, python in pythons.items()
    ]


def run(runs: int, cold_runs: int = 0, baseline: str | None = None) -> dict:
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
    pythons = {"this": sys.executable, **({"baseline": baseline} if baseline else {})}
    return {
        "machine": machine_name(),
        "python": sys.executable,
        "numbadask_file": numbadask.__file__,
        "versions": {"numbadask": numbadask.__version__, "python": sys.version.split()[0]},
        "runs": runs,
        "user_module": USER_SOURCE,
        "results": results,
        "cold_runs": cold_runs,
        "cold": cold_calls(cold_runs, pythons) if cold_runs else [],
        "load_average": os.getloadavg(),
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
    if report.get("cold"):
        lines += [
            "",
            f"Cold first calls (issue 26): each the first call of a new process with a new empty `NUMBADASK_CACHE_DIR`, "
            f"{report['cold_runs']} runs per case and numbadask, taking turns; median (min-max) seconds. "
            f"\"baseline\" is another install, run by `{next((c['python'] for c in report['cold'] if c['numbadask'] == 'baseline'), '-')}`. "
            f"Load average when done: {', '.join(f'{v:.2f}' for v in report.get('load_average', ()))} (2 cores: above 2, the machine was shared).",
            "",
            "| case | numbadask | import s | first compute s | process s |",
            "|---|---|---|---|---|",
        ]
        for c in report["cold"]:
            lines.append(f"| {c['case']} | {c['numbadask']} | {warm_cell(c['import_s'])} | {warm_cell(c['first_compute_s'])} | {warm_cell(c['process_s'])} |")
        lines += ["", "Arrays: " + "; ".join(f"{name}: `{array}`" for name, array in _ARRAYS.items()) + "."]
    lines += ["", "The user-defined reduction's module:", "", "```python", report["user_module"].rstrip(), "```"]
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = output_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="warm runs of each case")
    parser.add_argument("--cold-runs", type=int, default=5, help="runs of each cold case, each on a new empty cache (0: none)")
    parser.add_argument("--baseline", help="another Python whose numbadask also runs the cold cases, taking turns")
    args = parser.parse_args()
    report = run(args.runs, args.cold_runs, args.baseline)
    save_report(report, markdown(report), "first-call", args)


if __name__ == "__main__":
    main()
