#!/usr/bin/env bash
# CPU CI: the normal suite (CPU kernels, API, packaging, doctests), then the CUDA kernels
# end to end in Numba's simulator, then the API tests again on Dask's query-planning
# Arrays, then Dask's own reduction tests without and with numbadask.accelerate(). The
# one place CI's pytest runs start from on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "=== normal suite (gpu tests skip without a GPU)"
NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 python -m pytest tests src/numbadask -q

echo "=== CUDA kernels in Numba's simulator (NUMBA_ENABLE_CUDASIM=1)"
NUMBA_ENABLE_CUDASIM=1 python -m pytest tests -q -m cuda_kernels

echo "=== API tests on Dask's query-planning Arrays (DASK_ARRAY__QUERY_PLANNING=True)"
# dask.array lacks var, std, ptp and the arg-reductions there: tests of those hand-offs
# skip (tests/cases.py: legacy_dask_only); NumPy stays the reference.  The smaller
# example budget keeps this step at a few minutes.
DASK_ARRAY__QUERY_PLANNING=True HYPOTHESIS_PROFILE=gpu python -m pytest -q -m "not slow" \
    tests/test_api.py tests/test_handoff.py tests/test_bad_input.py tests/test_accelerate.py

echo "=== Dask's test_reductions.py without and with accelerate(): no test may pass only without it"
bash ci/test_dask_suite.sh
