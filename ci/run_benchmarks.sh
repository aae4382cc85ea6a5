#!/usr/bin/env bash
# CPU benchmark of numbadask.mean vs dask.array; writes bench/results/<machine>-mean.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[bench]"
python bench/bench_mean.py "$@"
