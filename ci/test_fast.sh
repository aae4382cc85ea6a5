#!/usr/bin/env bash
# The fast tier (README command 2): every public behaviour on the CPU kernels, the
# doctests, packaging and the layering test, on every core.  What it leaves out (marked
# `slow` or `extended`, the CUDA kernels, Dask's suite, the floors) is the extended
# tier, ci/test_extended.sh; README's "Tests" says which tier runs what.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-fast}" bash ci/pytest.sh "fast tier: the tests and doctests on the CPU kernels" \
    tests src/numbadask -m "not slow and not extended and not cuda_static"
echo "=== fast tier: $((SECONDS - start)) s"
