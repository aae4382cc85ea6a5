#!/usr/bin/env bash
# The one place CI calls pytest.  Usage: ci/pytest.sh "STEP NAME" [pytest args...]
# Prints the step's name, runs pytest quietly with the interpreter $PYTHON (default
# python) on every core (pytest-xdist: PYTEST_WORKERS, default auto; 0 for one process,
# or pass -p no:xdist), then the step's time, whether it passed or not; exits with
# pytest's status.  The kernel cache (~/.cache/numbadask, or NUMBADASK_CACHE_DIR) is
# shared by every step and every worker: a kernel compiled once is loaded afterwards.
set -uo pipefail
step="$1"
shift
python="${PYTHON:-python}"
workers=()
if [[ " $* " != *" -p no:xdist "* ]] && "$python" -c "import xdist" 2>/dev/null; then
    workers=(-n "${PYTEST_WORKERS:-auto}")
fi
echo "=== $step ($(date +%T))"
start=$SECONDS
"$python" -m pytest -q -p no:cacheprovider "${workers[@]}" "$@"
status=$?
echo "=== $step: $((SECONDS - start)) s, exit $status"
exit "$status"
