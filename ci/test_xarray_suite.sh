#!/usr/bin/env bash
# xarray's own groupby tests (xarray/tests/test_groupby.py from the installed xarray),
# run twice: as shipped, and under numbadask.accelerate() (ci/accelerate_plugin.py),
# which routes dask.array's reductions, and xarray's groupby/resample reductions through
# flox.xarray's groupby_reduce, to numbadask.  Fails when a test that passes without
# accelerate() fails with it.  Usage: ci/test_xarray_suite.sh [pytest args...]
# Writes $OUT_DIR (default build/xarray-suite): plain.xml, accelerated.xml,
# regressions.txt, regressions-errors.txt; ci/peer_suite.sh runs and compares.
# xarray's tests/conftest.py and tests/__init__.py apply; its repository's root
# conftest.py and pytest config are not in the wheel (their marks, such as
# xfail_with_dask_array, are ignored as unknown).  Tests needing what is not installed
# skip, as xarray's own requires_* marks decide (cftime: 74 of them here).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
xarray_dir="$("$python" -c 'import xarray, os; print(os.path.dirname(xarray.__file__))')"
OUT_DIR="${OUT_DIR:-$here/../build/xarray-suite}" exec bash "$here/peer_suite.sh" \
    "xarray's test_groupby.py" "$xarray_dir/tests/test_groupby.py" "$xarray_dir" "$@"
