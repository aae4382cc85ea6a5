"""Where numbadask's compiled kernels are cached (issue 15): under the cache root, never
inside the package, where a regular install's leftovers shadow a later editable one."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numba
import pytest

from numbadask.cpu import cache as numba_cache
from numbadask.cpu.cache import NumbadaskCacheLocator

ROOT = Path(__file__).resolve().parents[1]

# Computes mean and min, then prints the cache hits and misses of every numbadask kernel
# (found generically: any CPU dispatcher in any loaded numbadask module, and the
# dispatchers of the walk's layout cases that each Walker made).
COMPUTE = """
import json, sys
import dask.array as da, numba, numbadask
from numbadask.cpu.walker import Walker
x = da.arange(1000, chunks=300) * 0.5
assert float(numbadask.mean(x).compute()) == 249.75
assert float(numbadask.min(x).compute()) == 0.0
hits = misses = 0
for name, module in list(sys.modules.items()):
    if name == "numbadask" or name.startswith("numbadask."):
        for value in vars(module).values():
            for d in value.dispatchers.values() if isinstance(value, Walker) else [value]:
                if isinstance(d, numba.core.registry.CPUDispatcher):
                    hits += sum(d.stats.cache_hits.values())
                    misses += sum(d.stats.cache_misses.values())
print(json.dumps({"file": numbadask.__file__, "hits": hits, "misses": misses}))
"""


def compute(cache: Path, **env: str) -> dict:
    """Run COMPUTE in a fresh process caching into ``cache``; its printed counts."""
    env = {**os.environ, "NUMBADASK_CACHE_DIR": str(cache), **env}
    env.pop("NUMBA_CACHE_DIR", None)  # the user's choice would take the kernels elsewhere
    out = subprocess.run([sys.executable, "-c", COMPUTE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def numba_files(*dirs: Path) -> set[Path]:
    return {p for d in dirs for pattern in ("*.nbi", "*.nbc") for p in d.rglob(pattern)}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A cold run, then a warm one, into one empty cache, with the package's Numba files
    before and after (older trees may hold some from before the locator)."""
    cache = tmp_path_factory.mktemp("cache")
    package_dirs = numba_cache._package_dirs()
    before = numba_files(*package_dirs)
    cold, warm = compute(cache), compute(cache)
    return cache, before, numba_files(*package_dirs), cold, warm


@pytest.mark.extended
def test_kernels_are_cached_under_the_cache_root_not_in_the_package(two_runs):
    cache, before, after, cold, _ = two_runs
    assert cold["misses"] > 0 and cold["hits"] == 0
    assert any((cache / "numba").rglob("*.nbi")) and any((cache / "numba").rglob("*.nbc"))
    assert after == before, f"written into the package: {sorted(after - before)}"


@pytest.mark.extended
def test_a_second_process_loads_the_kernels_from_the_cache(two_runs):
    _, _, _, cold, warm = two_runs
    # a loaded kernel brings the kernels it calls with it: fewer hits than cold misses
    assert 0 < warm["hits"] <= cold["misses"] and warm["misses"] == 0


def test_kernel_stamps_change_with_the_layers_a_kernel_may_call(tmp_path):
    package, kernels = numba_cache._package_dirs()
    skip = shutil.ignore_patterns("__pycache__")
    copies = [shutil.copytree(d, tmp_path / d.name, ignore=skip) for d in (package, kernels)]
    cpu = copies[0] / "cpu"
    # the stamp depends on the files' names and contents, not on where the tree lies
    assert numba_cache._stamp_of(copies) == numba_cache._stamp_of([package, kernels]) == numba_cache.package_stamp()
    assert numba_cache._stamp_of([cpu]) == numba_cache.kernel_stamp(numba_cache.__file__)
    original, whole = numba_cache._stamp_of([cpu]), numba_cache._stamp_of(copies)
    called = cpu / "llvm_minmax.py"  # not a kernel's own file: Numba's stamp misses it
    text = called.read_text()
    called.write_text(text + "\n# edited\n")
    assert numba_cache._stamp_of([cpu]) != original
    called.write_text(text)
    assert numba_cache._stamp_of([cpu]) == original
    (cpu / "new.py").write_text("")
    assert numba_cache._stamp_of([cpu]) != original
    (cpu / "new.py").unlink()
    # code above the CPU kernels (which they cannot import) leaves their stamp alone
    (copies[0] / "engine" / "graph.py").write_text("# edited\n")
    assert numba_cache._stamp_of([cpu]) == original and numba_cache._stamp_of(copies) != whole


def test_cache_folders_are_named_by_stamp_not_place(tmp_path):
    a, b = tmp_path / "one" / "cpu" / "sums.py", tmp_path / "two" / "cpu" / "sums.py"
    for f in (a, b):
        f.parent.mkdir(parents=True)
        f.write_text("")
    assert numba_cache._stamped_folder(str(a), "ab" * 32) == numba_cache._stamped_folder(str(b), "ab" * 32)
    assert numba_cache._stamped_folder(str(a), "ab" * 32) != numba_cache._stamped_folder(str(a), "cd" * 32)
    assert numba_cache._stamped_folder(str(a), "ab" * 32).startswith("cpu-abababab")


def test_old_stamped_folders_are_pruned(tmp_path):
    folders = []
    for i in range(numba_cache.KEEP + 3):
        folder = tmp_path / f"cpu-{i:016d}-numba0"
        folder.mkdir()
        os.utime(folder, (i, i))
        folders.append(folder)
    (tmp_path / "reductions-0-numba0").mkdir()
    # the naming before stamps (folder_<sha1 of its path>): never read again, removed
    for name in ("cpu_" + "7" * 40, "numbadask_" + "a1" * 20, "reductions_" + "0" * 40):
        (tmp_path / name).mkdir()
    (tmp_path / "mine_not_a_hash").mkdir()
    numba_cache._prune(folders[-1])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f.name for f in folders[-numba_cache.KEEP :]] + ["reductions-0-numba0", "mine_not_a_hash"])


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBADASK_CACHE_DIR", str(tmp_path / "root"))
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", "")
    return tmp_path / "root"


def function_in(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("def f(x):\n    return x + 1\n")
    spec = importlib.util.spec_from_file_location(f"_numba_cache_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


def test_the_locator_claims_package_kernels_only(cache_root, tmp_path):
    kernel = numba_cache._stamp_of  # any function of a package file will do
    mine = NumbadaskCacheLocator.from_function(kernel, numba_cache.__file__)
    assert mine.get_source_stamp() == numba_cache.kernel_stamp(numba_cache.__file__)
    assert Path(mine.get_cache_path()).parent == cache_root / "numba"
    assert mine.get_disambiguator() == str(kernel.__code__.co_firstlineno)
    elsewhere = tmp_path / "user" / "mod.py"
    assert NumbadaskCacheLocator.from_function(function_in(elsewhere), str(elsewhere)) is None
    assert NumbadaskCacheLocator.from_function(kernel, "<string>") is None
    assert list(cache_root.rglob("user*")) == []


def test_the_locator_stamps_generated_modules_by_their_content(cache_root):
    generated = cache_root / "reductions" / "gen.py"
    locator = NumbadaskCacheLocator.from_function(function_in(generated), str(generated))
    assert locator.get_source_stamp() == hashlib.sha256(generated.read_bytes()).hexdigest()
    assert Path(locator.get_cache_path()).parent == cache_root / "numba"


def test_numba_cache_dir_wins(cache_root, monkeypatch):
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(cache_root / "user-choice"))
    assert NumbadaskCacheLocator.from_function(numba_cache._stamp_of, numba_cache.__file__) is None


def test_install_puts_the_locator_first_once(monkeypatch):
    numba_cache.install()
    classes = numba.core.caching.CacheImpl._locator_classes
    assert classes[0] is NumbadaskCacheLocator and classes.count(NumbadaskCacheLocator) == 1
    # a Numba without the internals it relies on: nothing changes, silently
    numbas_own = [c for c in classes if c is not NumbadaskCacheLocator]
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", list(numbas_own))
    monkeypatch.setattr(numba_cache, "_HOOKABLE", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        numba_cache.install()
    assert numba.core.caching.CacheImpl._locator_classes == numbas_own


@pytest.mark.slow
def test_regular_install_leaves_nothing_in_site_packages(tmp_path):
    """README command 1's situation: a regular (wheel) install runs kernels; its package
    folder must hold no Numba file, or uninstalling it leaves a namespace package."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "--target", str(site), str(ROOT)],
        check=True,
        capture_output=True,
    )
    got = compute(tmp_path / "cache", PYTHONPATH=str(site))
    assert Path(got["file"]).is_relative_to(site)
    assert numba_files(site / "numbadask") == set()
    assert any((tmp_path / "cache" / "numba").rglob("*.nbi"))
