"""Open a data source named on the command line as a lazy Dask array.

A SOURCE is one of

* ``path/to/file.npy``: memory-mapped, each chunk read by the task that reduces it;
* a Zarr store (format 2 or 3), a directory; ``store.zarr:/group/array`` picks an
  array inside a group;
* ``file.h5:/path/to/dataset``: an HDF5 dataset (the path may be left out when the
  file holds exactly one dataset);
* ``random:SHAPE[:DTYPE]``, e.g. ``random:20000x20000:float32``: random numbers made
  by Dask chunk by chunk where the chunks are reduced, never in the client.

No array is read whole into the client: every reader here is a small picklable object
that opens its file inside the task, so the same graph runs on threads, processes and
distributed workers on other machines (that see the same path).
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da

#: What to pip-install for each optional reader (the ``io`` extra holds them all).
EXTRAS = {"zarr": "numbadask[io]", "h5py": "numbadask[io]"}

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FORMATS = ".npy file, Zarr store (directory), HDF5 'file.h5:/dataset' or 'random:SHAPE[:DTYPE]'"


class SourceError(ValueError):
    """A SOURCE that names no readable array: missing file, wrong dataset, bad spec."""


class MissingExtraError(ImportError):
    """An optional reader (zarr, h5py) is needed but not installed."""


def require(module: str) -> Any:
    """Import an optional reader, or say which extra installs it.

    Examples
    --------
    >>> require("numpy").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module, module)
        raise MissingExtraError(
            f"reading this source needs the {module!r} package, which is not installed: "
            f"pip install '{extra}'"
        ) from exc


def parse_shape(text: str) -> tuple[int, ...]:
    """``"20000x20000"`` -> ``(20000, 20000)``; each size a non-negative integer.

    Examples
    --------
    >>> parse_shape("3x4x5")
    (3, 4, 5)
    """
    if not re.fullmatch(r"\d+(x\d+)*", text.strip()):
        raise SourceError(f"a shape is sizes joined by 'x', such as 1000x2000; got {text!r}")
    return tuple(int(n) for n in text.strip().split("x"))


def parse_chunks(text: str | None) -> Any:
    """``--chunks`` as Dask takes it: ``"1000x500"`` (``-1``: the whole axis) -> a
    tuple; ``"auto"``, ``"64MiB"`` -> as given (Dask sizes the chunks); None -> "auto".

    Examples
    --------
    >>> parse_chunks("1000x-1"), parse_chunks("64MiB"), parse_chunks(None)
    ((1000, -1), '64MiB', 'auto')
    """
    if text is None:
        return "auto"
    text = text.strip()
    if re.fullmatch(r"-?\d+(x-?\d+)*", text):
        chunks = tuple(int(n) for n in text.split("x"))
        if any(c == 0 or c < -1 for c in chunks):
            raise SourceError(f"chunk sizes must be positive (or -1 for a whole axis); got {text!r}")
        return chunks
    from dask.utils import parse_bytes

    if text != "auto":
        try:
            parse_bytes(text)
        except ValueError:
            raise SourceError(f"--chunks takes 'auto', a size such as 64MiB, or sizes such as 1000x500; got {text!r}") from None
    return text


def _check_chunks(chunks: Any, ndim: int) -> None:
    if isinstance(chunks, tuple) and len(chunks) != ndim:
        raise SourceError(f"--chunks gives {len(chunks)} sizes for an array of {ndim} dimensions")


@dataclass(frozen=True)
class _FileBlocks:
    """An array in a file, read block by block in the tasks (pickles as its path)."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def as_dask(self, chunks: Any, name: str, previous: tuple | None = None) -> da.Array:
        """The Dask array of these blocks; "auto" chunks as multiples of the file's
        own (``previous``) where it has them."""
        import dask.array as da

        _check_chunks(chunks, self.ndim)
        if previous and chunks == "auto":
            from dask.array.core import normalize_chunks

            chunks = normalize_chunks("auto", self.shape, dtype=self.dtype, previous_chunks=previous)
        meta = np.empty((0,) * self.ndim, dtype=self.dtype)
        return da.from_array(self, chunks=chunks, name=name, meta=meta)


@dataclass(frozen=True)
class NpyReader(_FileBlocks):
    """A ``.npy`` file that reads a block through ``np.load(mmap_mode="r")`` each time
    (a pickled ``np.memmap`` would carry all its data)."""

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")[key]


@dataclass(frozen=True)
class HDF5Reader(_FileBlocks):
    """One HDF5 dataset, opened in the task that reads a block (h5py handles do not
    pickle, and a handle opened in the client would be useless on a worker)."""

    dataset: str = ""

    def __getitem__(self, key: Any) -> np.ndarray:
        h5py = require("h5py")
        with h5py.File(self.path, "r") as f:
            return f[self.dataset][key]


def _token(path: Path, *parts: Any) -> str:
    """A name for the array that changes when the file does."""
    from dask.base import tokenize

    stat = path.stat()
    return tokenize(str(path.resolve()), stat.st_mtime_ns, stat.st_size, *parts)


def open_npy(path: Path, chunks: Any) -> da.Array:
    """A ``.npy`` file as a Dask array, memory-mapped, never read whole."""

    try:
        mm = np.load(path, mmap_mode="r")
    except ValueError as exc:  # not a .npy file, or pickled objects
        raise SourceError(f"{str(path)!r} is not a readable .npy file: {exc}") from None
    reader = NpyReader(str(path.resolve()), tuple(mm.shape), mm.dtype)
    del mm
    return reader.as_dask(chunks, f"npy-{_token(path)}")


def _pick_member(kind: str, path: Path, members: list[str]) -> str:
    """The only array in a group/file, or an error listing the choices."""
    if len(members) == 1:
        return members[0]
    listing = ", ".join(members[:10]) or "none"
    raise SourceError(f"{str(path)!r} holds {len(members)} {kind}s ({listing}): name one as '{path}:/NAME'")


def _zarr_arrays(group: Any, prefix: str = "") -> list[str]:
    """Paths of every array in a Zarr group and its subgroups."""
    names = [f"{prefix}/{name}" for name, _ in group.arrays()]
    for name, sub in group.groups():
        names += _zarr_arrays(sub, f"{prefix}/{name}")
    return sorted(names)


def open_zarr(path: Path, inner: str | None, chunks: Any) -> da.Array:
    """A Zarr array (format 2 or 3) as a Dask array."""
    import dask.array as da

    zarr = require("zarr")
    try:
        node = zarr.open(str(path), mode="r")
        if inner:
            node = node[inner.strip("/")]
    except (FileNotFoundError, KeyError) as exc:
        where = f"{path}:{inner}" if inner else str(path)
        raise SourceError(f"no Zarr array at {where!r} ({type(exc).__name__}: {exc})") from None
    if not hasattr(node, "dtype"):  # a group: take its only array
        node = node[_pick_member("array", path, _zarr_arrays(node)).lstrip("/")]
    _check_chunks(chunks, node.ndim)
    # "auto" chunks are multiples of the store's own (dask passes them as previous_chunks).
    return da.from_zarr(node, chunks=chunks, name=f"zarr-{_token(path, inner)}")


def open_hdf5(path: Path, dataset: str | None, chunks: Any) -> da.Array:
    """An HDF5 dataset as a Dask array, each block read in its own task."""

    h5py = require("h5py")
    try:
        with h5py.File(path, "r") as f:
            if not dataset:
                names: list[str] = []
                f.visititems(lambda name, obj: names.append("/" + name) if isinstance(obj, h5py.Dataset) else None)
                dataset = _pick_member("dataset", path, names)
            node = f.get(dataset)
            if node is None:
                raise SourceError(f"no dataset {dataset!r} in HDF5 file {str(path)!r}")
            if not isinstance(node, h5py.Dataset):
                raise SourceError(f"{dataset!r} in HDF5 file {str(path)!r} is a {type(node).__name__.lower()}, not a dataset")
            reader = HDF5Reader(str(path.resolve()), tuple(node.shape), node.dtype, dataset=dataset)
            previous = node.chunks
    except OSError as exc:
        raise SourceError(f"{str(path)!r} is not a readable HDF5 file: {exc}") from None
    return reader.as_dask(chunks, f"hdf5-{_token(path, dataset)}", previous)


def open_random(spec: str, chunks: Any) -> da.Array:
    """``SHAPE[:DTYPE]`` -> uniform random numbers (floats in [0, 1), integers in
    [0, 1000), bools half True) made lazily by Dask, seeded so runs repeat."""
    import dask.array as da

    shape_text, _, dtype_text = spec.partition(":")
    shape = parse_shape(shape_text)
    try:
        dtype = np.dtype(dtype_text or "float64")
    except TypeError:
        raise SourceError(f"unknown dtype {dtype_text!r} in 'random:{spec}'") from None
    _check_chunks(chunks, len(shape))
    rng = da.random.default_rng(0)
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return rng.random(shape, dtype=dtype, chunks=chunks)
    if dtype.kind == "f":  # float16: Generator.random makes float32/64 only
        return rng.random(shape, dtype=np.float32, chunks=chunks).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, min(1000, np.iinfo(dtype).max), size=shape, dtype=dtype, chunks=chunks)
    if dtype.kind == "b":
        return rng.random(shape, chunks=chunks) < 0.5
    raise SourceError(f"random sources make bool, integer or float arrays; got dtype {dtype}")


def memory_order(source: str) -> str:
    """"F" for a Fortran-ordered ``.npy`` file (its chunks are views of it, in that
    order), else "C" (the other sources' chunks are C-ordered arrays of their own).

    Examples
    --------
    >>> memory_order("random:10x10")
    'C'
    """
    path = Path(os.path.expanduser(source))
    if path.suffix.lower() != ".npy" or not path.is_file():
        return "C"
    try:
        flags = np.load(path, mmap_mode="r").flags
    except ValueError:
        return "C"
    return "F" if flags.f_contiguous and not flags.c_contiguous else "C"


def split_inner(source: str) -> tuple[str, str | None]:
    """``"file.h5:/a/b"`` -> ``("file.h5", "/a/b")``; no ``:/`` -> ``(source, None)``.

    Examples
    --------
    >>> split_inner("data.h5:/group/x"), split_inner("data.npy")
    (('data.h5', '/group/x'), ('data.npy', None))
    """
    head, sep, tail = source.rpartition(":/")
    if not sep or not head:
        return source, None
    return head, "/" + tail


def _is_zarr(path: Path) -> bool:
    markers = ("zarr.json", ".zarray", ".zgroup")
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in markers))


def _is_hdf5(path: Path) -> bool:
    if path.suffix.lower() in HDF5_SUFFIXES:
        return True
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def open_source(source: str, chunks: Any = "auto") -> da.Array:
    """The array named by SOURCE, lazily, chunked by ``chunks`` (Dask's spelling).

    Parameters
    ----------
    source : str
        A ``.npy`` file, a Zarr store (``store:/array`` inside a group), an HDF5
        ``file.h5:/dataset`` or ``random:SHAPE[:DTYPE]``.
    chunks : str or tuple, optional
        As :func:`dask.array.from_array` takes them; "auto" (default) follows the
        file's own chunks where it has them.

    Returns
    -------
    dask.array.Array

    Raises
    ------
    SourceError
        The file or dataset does not exist, or SOURCE is not one of the formats.
    MissingExtraError
        Zarr or HDF5 input without zarr/h5py installed (``pip install 'numbadask[io]'``).

    Examples
    --------
    >>> x = open_source("random:1000x300:float32", chunks=(250, 300))
    >>> x.shape, x.dtype.name, x.numblocks
    ((1000, 300), 'float32', (4, 1))
    """
    if not isinstance(source, str) or not source:
        raise SourceError(f"SOURCE must be a path or 'random:SHAPE[:DTYPE]'; got {source!r}")
    if source.startswith("random:"):
        return open_random(source.removeprefix("random:"), chunks)
    path_text, inner = split_inner(source)
    path = Path(os.path.expanduser(path_text))
    if not path.exists():
        raise SourceError(f"no such file or directory: {path_text!r}")
    if _is_zarr(path):
        return open_zarr(path, inner, chunks)
    if path.is_dir():
        raise SourceError(f"{path_text!r} is a directory but not a Zarr store (no zarr.json, .zarray or .zgroup)")
    if _is_hdf5(path):
        return open_hdf5(path, inner, chunks)
    if path.suffix.lower() == ".npy":
        if inner:
            raise SourceError(f"a .npy file holds one array; drop ':{inner}' from {source!r}")
        return open_npy(path, chunks)
    raise SourceError(f"cannot tell the format of {path_text!r}: expected a {FORMATS}")
