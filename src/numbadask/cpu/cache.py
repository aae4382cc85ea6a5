"""Where numbadask's compiled Numba code lives on disk, and when it is stale.

Numba's ``cache=True`` writes a kernel's machine code into the ``__pycache__`` beside its
source file.  In a regular install that is ``site-packages/numbadask/__pycache__``, which
pip does not list in the install's RECORD: uninstalling leaves it behind, and the
leftover ``numbadask/`` directory then imports as a namespace package that shadows a
later editable install (``cannot import name '__version__' from 'numbadask'``).  Numba
also stamps each cached kernel with its own source file only, so after an edit to a
module the kernel calls (``llvm_minmax.py``) it would load stale machine code.

:func:`install` (run first thing by ``import numbadask``) makes Numba cache numbadask's
kernels under ``cache_root() / "numba"`` instead, stamped with :func:`kernel_stamp`: a
hash of every source file of the layer the kernel lives in and the layers below it
(``numbadask/cpu/`` for the CPU kernels: the layering test guarantees they import
nothing else), so any edit to code a kernel may call recompiles it, and an edit
anywhere else (the graphs, the CLI, the tests) recompiles nothing.  The folders are
named by that stamp and Numba's version, not by where the source lies, so a fresh
clone or another checkout of the same kernels finds them compiled, and two checkouts
of different kernels never overwrite each other's.  The cache is safe to delete at any
time; each kind of folder keeps its :data:`KEEP` most recent stamps, and the folders
of the naming before stamps are removed when a new stamp is made.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from numba.core import caching, config

from numbadask.cpu import notice

# Numba internals.  Numba has no public hook for where one library's ``cache=True``
# functions are cached: NUMBA_CACHE_DIR (``config.CACHE_DIR``) is the user's and applies to
# every library, and NUMBA_CACHE_LOCATOR_CLASSES (numba 0.68) is an environment variable
# too.  So a locator is put first in ``CacheImpl._locator_classes``, the list that
# ``CacheImpl.__init__`` asks in turn (the first ``from_function`` that returns a locator
# wins), subclassing ``_CacheLocator`` for ``ensure_cache_path`` and
# ``get_suitable_cache_subpath``.  Checked against numba 0.59.0 (the oldest pyproject
# allows) and 0.68.1: both names and both methods are there.  Where they are not,
# install() does nothing and Numba caches as it always did.
_CacheLocator = getattr(caching, "_CacheLocator", None)
_CacheImpl = getattr(caching, "CacheImpl", None)
_HOOKABLE = isinstance(_CacheLocator, type) and isinstance(getattr(_CacheImpl, "_locator_classes", None), list)

#: Subfolder of :func:`cache_root` for modules that numbadask generates and Numba caches.
GENERATED = "reductions"

#: Stamped folders kept per source folder: older ones (other checkouts, earlier edits)
#: are removed when a new one is made.
KEEP = 8


def cache_root() -> Path:
    """The folder numbadask caches compiled code in, created if missing.

    ``$NUMBADASK_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/numbadask``, else
    ``~/.cache/numbadask``.  When that folder cannot be created or written, a private
    folder in the temporary directory (``numbadask-<uid>``).  Deleting it is always safe:
    the kernels are compiled again.

    Returns
    -------
    pathlib.Path
        The folder; Numba's files go under ``cache_root() / "numba"``.

    Examples
    --------
    >>> root = cache_root()
    >>> root.is_dir()
    True
    """
    chosen = os.environ.get("NUMBADASK_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    try:
        if chosen:
            root = Path(chosen).expanduser()
        else:
            root = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "numbadask"
    except RuntimeError:  # "~" with no home directory to be found
        root = None
    if root is not None and _writable(root):
        return root
    return _private_temp_dir()


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _private_temp_dir() -> Path:
    """``<tmp>/numbadask-<uid>``, or a fresh folder where another user owns that name.

    Cached kernels are pickles, so a shared folder someone else controls must not be read.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    folder = Path(tempfile.gettempdir()) / f"numbadask-{getpass.getuser() if uid is None else uid}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if uid is None or folder.stat().st_uid == uid:
            return folder
    except OSError:
        return folder  # unwritable: the locator then declines, and Numba decides
    return Path(tempfile.mkdtemp(prefix="numbadask-"))


@functools.lru_cache(maxsize=None)
def _package_dirs() -> tuple[Path, Path]:
    """numbadask's package folder and ``numbadask.cuda_kernels``'s, without importing it.

    In a source tree they are ``src/numbadask`` and ``cuda_kernels`` (pyproject maps the
    subpackage); installed, ``numbadask`` and ``numbadask/cuda_kernels``.
    """
    package = Path(__file__).resolve().parent.parent  # this file is numbadask/cpu/cache.py
    spec = importlib.util.find_spec("numbadask.cuda_kernels")  # imports numbadask only
    if spec is not None and spec.origin:
        return package, Path(spec.origin).resolve().parent
    return package, package / "cuda_kernels"


def _stamp_of(dirs: Iterable[Path]) -> str:
    """sha256 (hex) over the relative path and content of every ``.py`` file in ``dirs``.

    Files are taken in order of ``<folder name>/<path inside it>``; each path and each
    content is hashed with its length first, so no two trees give the same stream.
    """
    files = sorted((f"{d.name}/{p.relative_to(d).as_posix()}", p) for d in dirs for p in Path(d).rglob("*.py"))
    digest = hashlib.sha256()
    for name, path in files:
        for part in (name.encode(), path.read_bytes()):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def package_stamp() -> str:
    """The stamp of the whole package: a sha256 (hex) over the path and content of every
    ``.py`` file of the installed package and of ``numbadask.cuda_kernels``, computed
    once per process (the stamp of kernels outside the kernel layers).

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> stamp = package_stamp()
    >>> len(stamp), stamp == package_stamp()
    (64, True)
    """
    return _stamp_of(_package_dirs())


@functools.lru_cache(maxsize=None)
def _stamp_of_dirs(dirs: tuple[Path, ...]) -> str:
    return _stamp_of(dirs)


def _layers_below(path: Path) -> tuple[Path, ...] | None:
    """The folders whose code a kernel in ``path`` may call: its own layer and the ones
    below it (``tests/test_layers.py`` holds the layers to that)."""
    package, kernels = _package_dirs()
    cpu = package / "cpu"
    if path.is_relative_to(cpu):
        return (cpu,)
    if path.is_relative_to(kernels):
        return (cpu, kernels)
    if path.is_relative_to(package):
        return (package, kernels)
    return None


def kernel_stamp(py_file: str) -> str | None:
    """The freshness stamp of the kernels of a numbadask source file or a generated
    module: the sha256 of its layers (:func:`_layers_below`), or of the generated file;
    None for files that are neither.

    Examples
    --------
    >>> from numbadask.cpu import sums
    >>> kernel_stamp(sums.__file__) == kernel_stamp(__file__) != package_stamp()
    True
    """
    try:
        path = Path(py_file).resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_file():  # "<string>", "<ipython-...>"
        return None
    layers = _layers_below(path)
    if layers is not None:
        return _stamp_of_dirs(layers)
    if path.is_relative_to((cache_root() / GENERATED).resolve()):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def _stamped_folder(py_file: str, stamp: str) -> str:
    """The cache folder of a source file's kernels: its folder's name, the stamp and
    Numba's version (``cpu-1a2b...-numba0.61.2``); where the source lies plays no part."""
    import numba

    return f"{Path(py_file).resolve().parent.name}-{stamp[:16]}-numba{numba.__version__}"


#: The folders of numbadask before 0.1's stamps (``<folder>_<sha1 of its path>``): never
#: read by this version, removed with the oldest stamped ones.
_OLD_FORMAT = re.compile(r"[A-Za-z0-9_]+_[0-9a-f]{40}")


def _prune(folder: Path) -> None:
    """Remove the oldest siblings of a new stamped ``folder`` beyond :data:`KEEP`, and
    every folder of the old naming (:data:`_OLD_FORMAT`)."""
    prefix = folder.name.split("-", 1)[0] + "-"
    siblings = sorted((p for p in folder.parent.glob(prefix + "*") if p.is_dir() and p != folder), key=lambda p: p.stat().st_mtime)
    old_format = [p for p in folder.parent.iterdir() if p.is_dir() and _OLD_FORMAT.fullmatch(p.name)]
    for old in siblings[: max(0, len(siblings) + 1 - KEEP)] + old_format:
        shutil.rmtree(old, ignore_errors=True)


class NumbadaskCacheLocator(_CacheLocator if _HOOKABLE else object):  # type: ignore[misc]
    """Numba cache locator for numbadask's kernels and its generated modules.

    It claims a ``cache=True`` function whose source file lies in the numbadask package,
    in ``numbadask.cuda_kernels`` or under ``cache_root() / "reductions"``, unless the
    user set ``NUMBA_CACHE_DIR`` (Numba's own locator then serves it).  Its files go to
    ``cache_root() / "numba" / <folder name>-<stamp>-numba<version>``, stamped with
    :func:`kernel_stamp`.

    Examples
    --------
    >>> import json
    >>> NumbadaskCacheLocator.from_function(json.dumps, json.__file__) is None
    True
    """

    def __init__(self, py_func: Callable, py_file: str, stamp: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._stamp = stamp
        self._cache_path = str(cache_root() / "numba" / _stamped_folder(py_file, stamp))

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        return self._stamp

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Callable, py_file: str) -> NumbadaskCacheLocator | None:
        if config.CACHE_DIR:
            return None
        stamp = kernel_stamp(py_file)
        if stamp is None:
            return None
        self = cls(py_func, py_file, stamp)
        new = not os.path.isdir(self._cache_path)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        if new:
            _prune(Path(self._cache_path))
        return self


def install() -> None:
    """Make Numba cache numbadask's ``cache=True`` kernels under ``cache_root() / "numba"``,
    and announce a first compile on a terminal (:mod:`numbadask.cpu.notice`).

    Puts :class:`NumbadaskCacheLocator` first among Numba's cache locators; a second call
    changes nothing.  Numba picks a function's locator when ``@numba.njit(cache=True)``
    runs, so this runs before any kernel module is imported (first thing in
    ``numbadask/__init__.py``).  Without the Numba internals it relies on, it does
    nothing.

    Examples
    --------
    >>> install()
    >>> install()  # idempotent
    """
    notice.register()
    if not _HOOKABLE:
        return
    classes = _CacheImpl._locator_classes
    if NumbadaskCacheLocator not in classes:
        classes.insert(0, NumbadaskCacheLocator)
