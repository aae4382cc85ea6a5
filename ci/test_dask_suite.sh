#!/usr/bin/env bash
# Dask's own reduction tests (dask/array/tests/test_reductions.py from the installed
# dask), run twice: as shipped, and with dask.array's reductions routed to numbadask by
# numbadask.accelerate() (ci/accelerate_plugin.py).  Fails when a test that passes
# without accelerate() fails with it.  Usage: ci/test_dask_suite.sh [pytest args...]
# Writes $OUT_DIR (default build/dask-suite): plain.xml, accelerated.xml, regressions.txt
# (and regressions-errors.txt); ci/peer_suite.sh runs and compares.
# Under query planning: DASK_ARRAY__QUERY_PLANNING=True ci/test_dask_suite.sh (dask 2026.8:
# 179 passed without accelerate(), 196 with, 0 regressions; 412 s for both runs here, so
# CI runs this mode only by hand).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
dask_dir="$("$python" -c 'import dask, os; print(os.path.dirname(dask.__file__))')"
# dask's own conftest (its xfail fixture) applies.
OUT_DIR="${OUT_DIR:-$here/../build/dask-suite}" exec bash "$here/peer_suite.sh" \
    "Dask's test_reductions.py" "$dask_dir/array/tests/test_reductions.py" "$dask_dir" "$@"
