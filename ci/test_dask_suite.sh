#!/usr/bin/env bash
# Dask's own reduction tests (dask/array/tests/test_reductions.py from the installed
# dask), run twice: as shipped, and with dask.array's reductions routed to numbadask by
# numbadask.accelerate() (ci/accelerate_plugin.py).  Fails when a test that passes
# without accelerate() fails with it.  Usage: ci/test_dask_suite.sh [pytest args...]
# Writes $OUT_DIR (default build/dask-suite): plain.xml, accelerated.xml, regressions.txt.
# Under query planning: DASK_ARRAY__QUERY_PLANNING=True ci/test_dask_suite.sh (dask 2026.8:
# 179 passed without accelerate(), 196 with, 0 regressions; 412 s for both runs here, so
# CI runs this mode only by hand).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
out="${OUT_DIR:-$here/../build/dask-suite}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
dask_dir="$("$python" -c 'import dask, os; print(os.path.dirname(dask.__file__))')"
tests="$dask_dir/array/tests/test_reductions.py"
run() {  # $1: step name; $2: junit file; rest: extra pytest args.  Test failures are expected here.
    local name="$1" xml="$2"; shift 2
    # From an empty directory, so neither this repository's pytest config nor its
    # conftest apply; dask's own conftest (its xfail fixture) does.
    (cd "$(mktemp -d)" && PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHON="$python" \
        bash "$here/pytest.sh" "$name" "$tests" -o addopts= --rootdir="$dask_dir" --confcutdir="$dask_dir" \
        -W ignore::pytest.PytestUnknownMarkWarning --junitxml="$xml" "$@") || true
}
start=$SECONDS
run "Dask's test_reductions.py as shipped" "$out/plain.xml" "$@"
run "Dask's test_reductions.py under numbadask.accelerate()" "$out/accelerated.xml" -p accelerate_plugin "$@"
"$python" - "$out" "$((SECONDS - start))" <<'PY'
import sys
import xml.etree.ElementTree as ET

out, seconds = sys.argv[1], sys.argv[2]

def results(path):
    res = {}
    for case in ET.parse(path).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        res[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    return res

def counts(res):
    return {k: sum(v == k for v in res.values()) for k in ("passed", "failed", "skipped")}

plain, accel = results(f"{out}/plain.xml"), results(f"{out}/accelerated.xml")
regressions = sorted(n for n, v in plain.items() if v == "passed" and accel.get(n) != "passed")
fixed = sorted(n for n, v in accel.items() if v == "passed" and plain.get(n) == "failed")
print(f"dask test_reductions.py without accelerate(): {counts(plain)}")
print(f"dask test_reductions.py with accelerate():    {counts(accel)}")
print(f"regressions (pass without, not with): {len(regressions)}; fixed: {len(fixed)}; both runs: {seconds} s")
with open(f"{out}/regressions.txt", "w") as f:
    for n in regressions:
        print(f"  REGRESSION {n} ({accel.get(n, 'missing')})")
        f.write(n + "\n")
sys.exit(1 if regressions else 0)
PY
