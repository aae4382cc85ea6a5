#!/usr/bin/env bash
# The dependency floors (issue 17 item 5): a fresh venv with numpy, numba, dask and
# distributed at the lowest versions pyproject.toml's [project] dependencies declare
# (read from there, `>=` turned into `==`, so this never drifts), then the API tests.
#
# What it installs: the repo (`pip install -e .`, no extras) at the floor pins, plus the
# test runners only (pytest, hypothesis, psutil, pytest-xdist). Not the `test` extra: its numba-cuda
# needs a newer numba than the floor (pip would move numba up, or fail), and its CUDA
# toolchain wheels (nvidia-cuda-nvcc/nvrtc) only serve tests/test_cuda_static.py, which
# is not run here. zarr/h5py (CLI tests) are left out likewise: the floors are about the
# core reductions. The CUDA kernels are tested at current versions by ci/test_extended.sh.
#
# Env: PYTHON, the venv's interpreter (default python3.11; pyproject is read by python3,
# which needs tomllib: >= 3.11); FLOORS_VENV, where the venv goes (default: a temporary
# folder, removed at exit).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${FLOORS_VENV:-$(mktemp -d)/floors}"
[[ -n "${FLOORS_VENV:-}" ]] || trap 'rm -rf "$(dirname "$VENV")"' EXIT

"$PYTHON" -m venv "$VENV"
PINS_LINE=$(python3 - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for dep in deps:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+(?:\[[^\]]*\])?)\s*>=\s*([^,;\s]+)", dep).groups()
    print(f"{name}=={floor}", end=" ")
EOF
)
read -ra PINS <<<"$PINS_LINE"  # an array: "dask[array]" is never globbed
echo "=== floors: ${PINS[*]}"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . "${PINS[@]}" pytest hypothesis psutil pytest-xdist
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(numpy|numba|llvmlite|dask|distributed) '

# conftest's smaller Hypothesis budget (15 examples, not 60): at the floors every kernel
# compiles afresh (Numba's cache is per Numba version), and compiling is most of the time.
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-gpu}" PYTHON="$VENV/bin/python" bash ci/pytest.sh "API tests at the floors" \
    tests/test_api.py tests/test_handoff.py tests/test_bad_input.py tests/test_graph.py
