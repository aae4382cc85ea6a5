#!/usr/bin/env bash
# CPU CI: the normal suite (CPU kernels, API, packaging, doctests), then the CUDA kernels
# end to end in Numba's simulator, then the API tests again on Dask's query-planning
# Arrays, then Dask's own reduction tests without and with numbadask.accelerate(), then
# the API tests at the dependency floors. The one place CI's pytest runs start from on a
# CPU machine.
#
# Each run uses every core (pytest-xdist; PYTEST_WORKERS=0 for one process), but the
# static compile of the CUDA kernels (tests/test_cuda_static.py): it runs alone, in one
# process whose module fixture compiles every kernel once in its own child processes
# (one per core). Under xdist each worker would compile them all, and xdist's
# `--dist loadgroup` does not group tests under pytest 9.2 (pytest-xdist#1386).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTEST_WORKERS="${PYTEST_WORKERS:-auto}"
parallel=(-n "$PYTEST_WORKERS")

echo "=== normal suite (gpu tests skip without a GPU), less the static CUDA compile"
python -m pytest tests src/numbadask -q -m "not cuda_static" "${parallel[@]}"

echo "=== every CUDA kernel compiled for sm_80 and sm_90 (NVVM + ptxas; one process)"
NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 python -m pytest tests/test_cuda_static.py -q -p no:xdist

echo "=== CUDA kernels in Numba's simulator (NUMBA_ENABLE_CUDASIM=1)"
# 15 Hypothesis examples per property test, not 60 (the normal suite runs 60 through
# the same API on the CPU kernels): one Python thread per CUDA thread makes each
# example ~100x slower here; the kernel contract tests run their full case tables.
NUMBA_ENABLE_CUDASIM=1 HYPOTHESIS_PROFILE=gpu python -m pytest tests -q -m cuda_kernels "${parallel[@]}"

echo "=== API tests on Dask's query-planning Arrays (DASK_ARRAY__QUERY_PLANNING=True)"
# dask.array lacks var, std, ptp and the arg-reductions there: tests of those hand-offs
# skip (tests/cases.py: legacy_dask_only); NumPy stays the reference.  The smaller
# example budget keeps this step at a few minutes.
DASK_ARRAY__QUERY_PLANNING=True HYPOTHESIS_PROFILE=gpu python -m pytest -q -m "not slow" "${parallel[@]}" \
    tests/test_api.py tests/test_handoff.py tests/test_bad_input.py tests/test_accelerate.py

echo "=== Dask's test_reductions.py without and with accelerate(): no test may pass only without it"
bash ci/test_dask_suite.sh -n "$PYTEST_WORKERS"

echo "=== API tests at the dependency floors (a fresh venv at pyproject's lowest versions)"
bash ci/test_floors.sh
