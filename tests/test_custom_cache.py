"""User-defined reductions load their kernels from disk in a second process, never
stale: another function's code, or another value of a global it reads, compiles anew.

Each test runs fresh interpreters with their own ``NUMBADASK_CACHE_DIR``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MODULE = '''
import numbadask

SCALE = {scale}


@numbadask.reduction(merge=lambda a, b: (a[0] + b[0], a[1] + b[1]), identity=(0.0, 0.0), finalize=lambda s: s[0] / s[1])
def scaled_mean(x):
    return ({body}, 1.0)
'''

RUN = textwrap.dedent(
    """
    import json, numpy as np, dask.array as da
    from user_reduction import scaled_mean
    x = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
    value = scaled_mean(x, axis=0).compute().tolist()
    kernels = scaled_mean.kernels("cpu")
    # the walk's dispatchers: one per layout case it met (numbadask.cpu.walker.Walker)
    dispatchers = [*kernels._walk.dispatchers.values(), kernels.module.raw_map, kernels.module.merge_columns]
    hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    print(json.dumps({"value": value, "hits": hits, "misses": misses}))
    """
)


def _write(folder: Path, scale: float = 1.0, body: str = "x * SCALE") -> None:
    (folder / "user_reduction.py").write_text(MODULE.format(scale=scale, body=body))


def _start(folder: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "NUMBADASK_CACHE_DIR": str(cache), "PYTHONPATH": str(folder)}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.Popen([sys.executable, "-c", RUN], env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _run(folder: Path, cache: Path) -> dict:
    return _result(_start(folder, cache))


@pytest.mark.slow
def test_second_process_loads_the_kernels_and_code_changes_recompile(tmp_path):
    cache = tmp_path / "cache"
    _write(tmp_path)
    first = _run(tmp_path, cache)
    assert first["value"] == [4.0, 5.0, 6.0, 7.0] and first["misses"] > 0
    assert list((cache / "reductions").glob("numbadask_reduction_*.py"))
    second = _run(tmp_path, cache)
    assert second["value"] == first["value"]
    assert second["misses"] == 0 and second["hits"] > 0
    # Another value of a global the function reads: Numba froze the old one into the
    # machine code, so it must not be loaded.
    _write(tmp_path, scale=2.0)
    changed = _run(tmp_path, cache)
    assert changed["value"] == [8.0, 10.0, 12.0, 14.0] and changed["misses"] > 0
    # Other code.
    _write(tmp_path, body="x * SCALE + 1.0")
    assert _run(tmp_path, cache)["value"] == [5.0, 6.0, 7.0, 8.0]


@pytest.mark.slow
def test_processes_compiling_at_once_agree(tmp_path):
    cache = tmp_path / "cache"
    _write(tmp_path)
    procs = [_start(tmp_path, cache) for _ in range(3)]
    results = [_result(p) for p in procs]
    assert all(r["value"] == [4.0, 5.0, 6.0, 7.0] for r in results)
    assert _run(tmp_path, cache)["misses"] == 0
