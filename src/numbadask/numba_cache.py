"""Where numbadask's compiled Numba code lives on disk.

Numba's ``cache=True`` writes a kernel's machine code into the ``__pycache__`` beside its
source file.  In a regular install that is ``site-packages/numbadask/__pycache__``, which
pip does not list in the install's RECORD: uninstalling leaves it behind, and the
leftover ``numbadask/`` directory then imports as a namespace package that shadows a
later editable install (``cannot import name '__version__' from 'numbadask'``).  Numba
also stamps each cached kernel with its own source file only, so after an edit to a
module the kernel calls (``llvm_minmax.py``) it would load stale machine code.

:func:`install` (run first thing by ``import numbadask``) makes Numba cache numbadask's
kernels under ``cache_root() / "numba"`` instead, stamped with :func:`package_stamp`: a
hash of every source file of the package, so any edit recompiles them all.  The cache
is safe to delete at any time.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from numba.core import caching, config

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
    package = Path(__file__).resolve().parent
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
    """The freshness stamp of every numbadask kernel cached on disk.

    A sha256 (hex) over the path and content of every ``.py`` file of the installed
    package and of ``numbadask.cuda_kernels``, computed once per process.  Numba's own
    stamp is the jitted function's file only, so an edit to a module a kernel calls
    (``llvm_minmax.py``) would otherwise load stale machine code.

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


def _stamp_for(py_file: str) -> str | None:
    """The stamp of a numbadask source file or a generated module, or None for others."""
    try:
        path = Path(py_file).resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_file():  # "<string>", "<ipython-...>"
        return None
    if any(path.is_relative_to(d) for d in _package_dirs()):
        return package_stamp()
    if path.is_relative_to((cache_root() / GENERATED).resolve()):
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


class NumbadaskCacheLocator(_CacheLocator if _HOOKABLE else object):  # type: ignore[misc]
    """Numba cache locator for numbadask's kernels and its generated modules.

    It claims a ``cache=True`` function whose source file lies in the numbadask package,
    in ``numbadask.cuda_kernels`` or under ``cache_root() / "reductions"``, unless the
    user set ``NUMBA_CACHE_DIR`` (Numba's own locator then serves it).  Its files go to
    ``cache_root() / "numba" / <folder name>_<sha1 of the folder path>`` (as Numba names
    its folders, so two installs never share one), stamped with :func:`package_stamp`
    for package files and with the sha256 of the file for generated modules.

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
        self._cache_path = str(cache_root() / "numba" / self.get_suitable_cache_subpath(py_file))

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
        stamp = _stamp_for(py_file)
        if stamp is None:
            return None
        self = cls(py_func, py_file, stamp)
        try:
            self.ensure_cache_path()
        except OSError:
            return None
        return self


def install() -> None:
    """Make Numba cache numbadask's ``cache=True`` kernels under ``cache_root() / "numba"``.

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
    if not _HOOKABLE:
        return
    classes = _CacheImpl._locator_classes
    if NumbadaskCacheLocator not in classes:
        classes.insert(0, NumbadaskCacheLocator)
