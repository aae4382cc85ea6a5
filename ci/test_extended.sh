#!/usr/bin/env bash
# The extended tier (.ci/run runs it after README's two commands): what the fast tier
# leaves out, step by step, each printing its own time.  Every step runs even when an
# earlier one failed; the script fails if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
failed=()
step() {  # step "NAME" command...: run it, remember a failure
    "${@:2}" || failed+=("$1")
}

step "slow and extended tests" env HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-default}" \
    bash ci/pytest.sh "the tests marked slow or extended (larger budgets, processes, clusters)" \
    tests -m "(slow or extended) and not cuda_static and not cuda_kernels"

# One process: its module fixture compiles each kernel once in child processes (one per
# core); under xdist each worker would compile them all (xdist's loadgroup does not group
# on pytest 9.2, pytest-xdist#1386).
step "static CUDA compile" env NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 \
    bash ci/pytest.sh "every CUDA kernel compiled for sm_80 and sm_90 (NVVM + ptxas)" tests/test_cuda_static.py -p no:xdist

# Hypothesis' `gpu` budget (15 examples per property): one Python thread per CUDA
# thread makes each example ~100x slower here; the kernel contracts run their full tables.
step "simulator" env NUMBA_ENABLE_CUDASIM=1 HYPOTHESIS_PROFILE=gpu \
    bash ci/pytest.sh "CUDA kernels in Numba's simulator (NUMBA_ENABLE_CUDASIM=1)" tests -m cuda_kernels

# dask.array lacks var, std, ptp and the arg-reductions there: those hand-off tests skip
# (tests/cases.py: legacy_dask_only); NumPy stays the reference.
step "query planning" env DASK_ARRAY__QUERY_PLANNING=True HYPOTHESIS_PROFILE=gpu \
    bash ci/pytest.sh "API tests on Dask's query-planning Arrays" -m "not slow" \
    tests/test_api.py tests/test_handoff.py tests/test_bad_input.py tests/test_accelerate.py tests/test_groupby.py

step "dask suite" bash ci/test_dask_suite.sh
step "xarray suite" bash ci/test_xarray_suite.sh
step "floors" bash ci/test_floors.sh

echo "=== extended tier: $((SECONDS - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "=== extended tier FAILED: ${failed[*]}"
    exit 1
fi
