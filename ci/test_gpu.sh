#!/usr/bin/env bash
# On a lent GPU machine (no internet), from the repo root, with ./.whl carried along
# (made here by `../shared/tools/gpu-wheels numpy==2.4.6`: numba-cuda 0.30.4 cannot
# compile on the machine's NumPy 2.5, which removed np.row_stack): install, show the GPU, run the whole suite
# on the real GPU (no simulator), the main job and the GPU benchmark. Everything lands
# in $OUT (default ./gpu-results). Exits non-zero if any step failed, after all ran.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NUMBA_ENABLE_CUDASIM=0
status=0
step() { echo "=== $*"; }

step install
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH

step nvidia-smi
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || status=1
python3 -c "import numbadask, numba, numba_cuda, cupy, dask, distributed, dask_cuda as dc
print('numbadask', numbadask.__version__, numbadask.__file__)
print('numba', numba.__version__, 'numba-cuda', numba_cuda.__version__, 'cupy', cupy.__version__)
print('dask', dask.__version__, 'distributed', distributed.__version__, 'dask-cuda', dc.__version__)" 2>&1 | tee "$OUT/versions.txt" || status=1

# Benchmark first: a slow or failing test must not cost the numbers. Each step has a
# time limit so the whole script fits a lent machine's minutes.
step "GPU benchmark"
timeout 180 python3 bench/bench_gpu.py --out "$OUT" 2>&1 | tee "$OUT/bench.txt" || status=1

step "main job on the GPU"
timeout 30 python3 -m numbadask.cli info 2>&1 | tee "$OUT/info.txt" || status=1
timeout 45 python3 -m numbadask.cli stats --device gpu 2>&1 | tee "$OUT/main-job.txt" || status=1

step "tests on the GPU"
per_test=$(python3 -c 'import pytest_timeout' 2>/dev/null && echo --timeout=90 || true)
HYPOTHESIS_PROFILE=gpu timeout 240 python3 -m pytest tests -q -p no:cacheprovider -rs $per_test \
  --deselect tests/test_package.py::test_wheel_ships_cuda_kernels_inside_the_package \
  --deselect tests/test_cli.py::test_console_script_is_installed \
  --junitxml="$OUT/pytest.xml" 2>&1 | tee "$OUT/pytest.txt" || status=1

echo "=== done (status $status)"
exit "$status"
