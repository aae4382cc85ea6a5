"""Packaging: what `import numbadask` pulls in, and where cuda_kernels ships."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_load_gpu_or_cluster_modules():
    code = (
        "import sys, numbadask\n"
        "heavy = ['cupy', 'numba.cuda', 'numba_cuda', 'distributed', 'dask_cuda', 'dask.array']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cuda_kernels_import_as_a_subpackage():
    code = "import numbadask.cuda_kernels as k; print(k.__name__, callable(k.sum_float64))"
    env_code = f"import os; os.environ['NUMBA_ENABLE_CUDASIM'] = '1'; exec({code!r})"
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numbadask.cuda_kernels", "True"]


def test_wheel_ships_cuda_kernels_inside_the_package(tmp_path):
    """A regular (non-editable) install gets cuda_kernels/ as numbadask/cuda_kernels/."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("numbadask-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"numbadask/cuda_kernels/__init__.py", "numbadask/cuda_kernels/sum.py", "numbadask/reductions/registry.py"} <= names
    # Every module of the source tree, in every layer folder (pyproject lists the packages).
    source = {f"numbadask/{p.relative_to(ROOT / 'src' / 'numbadask').as_posix()}" for p in (ROOT / "src" / "numbadask").rglob("*.py")}
    source |= {f"numbadask/cuda_kernels/{p.name}" for p in (ROOT / "cuda_kernels").glob("*.py")}
    assert sorted(source - names) == []
    assert "numbadask/py.typed" in names  # PEP 561: type checkers read numbadask's annotations


def test_regular_install_imports_cuda_kernels(tmp_path):
    """Install the wheel into a folder (no editable mapping) and import from there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "--target", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    code = (
        "import os; os.environ['NUMBA_ENABLE_CUDASIM'] = '1'\n"
        "import numbadask, numbadask.cuda_kernels as k\n"
        "print(numbadask.__file__.startswith(os.environ['TARGET']), k.__file__.startswith(os.environ['TARGET']))\n"
    )
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TARGET": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["True", "True"]
