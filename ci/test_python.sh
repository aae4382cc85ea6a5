#!/usr/bin/env bash
# CPU CI: the normal suite (CPU kernels, API, packaging, doctests), then the CUDA kernels
# end to end in Numba's simulator, then Dask's own reduction tests without and with
# numbadask.accelerate(). The one place CI's pytest runs start from on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "=== normal suite (gpu tests skip without a GPU)"
NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 python -m pytest tests src/numbadask -q

echo "=== CUDA kernels in Numba's simulator (NUMBA_ENABLE_CUDASIM=1)"
NUMBA_ENABLE_CUDASIM=1 python -m pytest tests -q -m cuda_kernels

echo "=== Dask's test_reductions.py without and with accelerate(): no test may pass only without it"
bash ci/test_dask_suite.sh
