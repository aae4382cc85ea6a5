#!/usr/bin/env bash
# A peer project's own test file, run twice: as shipped, and under numbadask.accelerate()
# (ci/accelerate_plugin.py, `-p accelerate_plugin`); fails when a test that passes
# without accelerate() fails with it (ci/compare_junit.py compares the two runs).
# Usage: ci/peer_suite.sh LABEL TEST_FILE ROOTDIR [pytest args...]
#   LABEL: the name printed ("Dask's test_reductions.py"); ROOTDIR: the installed
#   package's directory (its own conftest files apply, this repository's do not).
# Writes $OUT_DIR (default build/peer-suite): plain.xml, accelerated.xml,
# regressions.txt (ids), regressions-errors.txt (their messages with accelerate()).
# Called by ci/test_dask_suite.sh and ci/test_xarray_suite.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
label="$1" tests="$2" rootdir="$3"
shift 3
out="${OUT_DIR:-$here/../build/peer-suite}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -f "$out/plain.xml" "$out/accelerated.xml"
run() {  # $1: step name; $2: junit file; rest: extra pytest args.  Test failures are expected here.
    local name="$1" xml="$2"; shift 2
    # From an empty directory, so neither this repository's pytest config nor its
    # conftest apply; the peer's own conftest files under ROOTDIR do.
    (cd "$(mktemp -d)" && PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHON="$python" \
        bash "$here/pytest.sh" "$name" "$tests" -o addopts= --rootdir="$rootdir" --confcutdir="$rootdir" \
        -W ignore::pytest.PytestUnknownMarkWarning --junitxml="$xml" "$@") || true
}
start=$SECONDS
run "$label as shipped" "$out/plain.xml" "$@"
run "$label under numbadask.accelerate()" "$out/accelerated.xml" -p accelerate_plugin "$@"
"$python" "$here/compare_junit.py" "$label" "$out/plain.xml" "$out/accelerated.xml" "$out" "$((SECONDS - start))"
