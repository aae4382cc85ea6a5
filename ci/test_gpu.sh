#!/usr/bin/env bash
# On a lent GPU machine (no internet), from the repo root, with ./.whl carried along
# (made here by `../shared/tools/gpu-wheels numpy==2.4.6`: numba-cuda 0.30.4 cannot
# compile on the machine's NumPy 2.5, which removed np.row_stack): install, show the GPU,
# run the GPU benchmark first, then the main job, then the whole suite on the real GPU (no
# simulator). Everything lands in $OUT (default ./gpu-results), at most 8 files, none in
# subfolders (what the device machine sends back):
#   env.txt        nvidia-smi, versions, `numbadask info`
#   bench.txt      the benchmark's log;  gpu-<device>.json, gpu-<device>.md  its results
#   main-job.txt   `numbadask stats --device gpu`
#   pytest.txt, pytest.xml
# Exits non-zero if any step failed, after all ran.
#
# Dry run on a CPU-only machine (rehearses every step that can run there):
#   DRY_RUN=1 PYTHON=/tmp/benchvenv/bin/python bash ci/test_gpu.sh
# skips the wheel install and nvidia-smi, runs the benchmark with --dry-run (Numba's CUDA
# simulator, NumPy for CuPy, KiB sizes; files named gpu-dry-run-*), the main job on a tiny
# random array, and the tests under NUMBA_ENABLE_CUDASIM=1 limited to `-m cuda_kernels` in
# $DRY_RUN_TESTS (default tests/test_cuda_factory.py; "tests" for all of them).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-results}
DRY_RUN=${DRY_RUN:-0}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
step() { echo "=== $* ($(date +%T))"; }
if [ "$DRY_RUN" = 1 ]; then
  export NUMBA_ENABLE_CUDASIM=1
  echo "=== DRY RUN: CPU only, Numba's CUDA simulator; nothing here is a GPU measurement"
else
  export NUMBA_ENABLE_CUDASIM=0
fi

step install
if [ "$DRY_RUN" = 1 ]; then
  echo "skipped (dry run): using $($PY -c 'import sys; print(sys.executable)')"
else
  { "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .; } || status=1
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi

step "environment"
{
  if [ "$DRY_RUN" = 1 ]; then echo "nvidia-smi: skipped (dry run)"; else nvidia-smi 2>&1 || echo "nvidia-smi failed"; fi
  echo "--- versions"
  "$PY" - <<'EOF'
import importlib
for name in ("numbadask", "numpy", "numba", "numba_cuda", "cupy", "dask", "distributed", "dask_cuda"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"), getattr(module, "__file__", ""))
    except Exception as error:  # the versions are a record, not a check
        print(name, "not importable:", type(error).__name__, error)
EOF
  echo "--- numbadask info"
  timeout 30 "$PY" -m numbadask.main.cli info 2>&1
} > "$OUT/env.txt" 2>&1 || status=1
cat "$OUT/env.txt"

# Benchmark first: a slow or failing test must not cost the numbers. Each step has a
# time limit so the whole script fits a lent machine's minutes (the benchmark keeps to
# its own --budget-s of 165 s, under this limit, and rewrites its results after each case;
# the dry run's simulator takes ~0.3 s a launch, so it gets 420 s of 450).
step "GPU benchmark"
bench_args=(--out "$OUT")
bench_limit=180
[ "$DRY_RUN" = 1 ] && bench_args+=(--dry-run) && bench_limit=450
timeout "$bench_limit" "$PY" bench/bench_gpu.py "${bench_args[@]}" ${BENCH_ARGS:-} > "$OUT/bench.txt" 2>&1 || status=1
grep -E '^(===|---)' "$OUT/bench.txt" | tail -40

step "main job on the GPU"
source_arg=()
[ "$DRY_RUN" = 1 ] && source_arg=(random:4096)
timeout 45 "$PY" -m numbadask.main.cli stats "${source_arg[@]}" --device gpu 2>&1 | tee "$OUT/main-job.txt" || status=1

step "tests on the GPU"
per_test=$("$PY" -c 'import pytest_timeout' 2>/dev/null && echo --timeout=90 || true)
if [ "$DRY_RUN" = 1 ]; then
  # shellcheck disable=SC2086
  timeout 240 "$PY" -m pytest ${DRY_RUN_TESTS:-tests/test_cuda_factory.py} -m cuda_kernels -q -p no:cacheprovider -rs $per_test \
    --junitxml="$OUT/pytest.xml" > "$OUT/pytest.txt" 2>&1 || status=1
else
  HYPOTHESIS_PROFILE=gpu timeout 240 "$PY" -m pytest tests -q -p no:cacheprovider -rs $per_test \
    --deselect tests/test_package.py::test_wheel_ships_cuda_kernels_inside_the_package \
    --deselect tests/test_cli.py::test_console_script_is_installed \
    --junitxml="$OUT/pytest.xml" > "$OUT/pytest.txt" 2>&1 || status=1
fi
tail -15 "$OUT/pytest.txt"

n_files=$(find "$OUT" -type f | wc -l)
if [ "$n_files" -gt 8 ]; then
  echo "=== warning: $n_files files under $OUT; only 8 come back from the device machine"
fi
echo "=== done (status $status, $n_files files in $OUT)"
exit "$status"
