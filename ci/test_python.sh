#!/usr/bin/env bash
# CPU CI: the normal suite (CPU kernels, API, packaging, doctests), then the CUDA kernels
# end to end in Numba's simulator. The one place that calls pytest on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "=== normal suite (gpu tests skip without a GPU)"
NUMBADASK_REQUIRE_CUDA_TOOLCHAIN=1 python -m pytest tests src/numbadask -q

echo "=== CUDA kernels in Numba's simulator (NUMBA_ENABLE_CUDASIM=1)"
NUMBA_ENABLE_CUDASIM=1 python -m pytest tests -q -m cuda_kernels
