"""Opening SOURCEs as Dask arrays: real .npy, Zarr (v2, v3) and HDF5 files made here."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import numbadask
from numbadask.main import sources
from numbadask.main.sources import MissingExtraError, SourceError, open_source


@pytest.fixture
def data(rng) -> np.ndarray:
    return rng.standard_normal((240, 50))


def test_npy_is_memory_mapped_per_chunk(tmp_path, data):
    path = tmp_path / "a.npy"
    np.save(path, np.asfortranarray(data))
    x = open_source(str(path), chunks=(60, 25))
    assert x.numblocks == (4, 2) and x.dtype == data.dtype
    # The graph carries the path, not the data (a pickled np.memmap would carry it all).
    assert len(pickle.dumps(dict(x.dask))) < 20_000
    assert isinstance(next(v for v in x.dask.values() if isinstance(v, sources.NpyReader)), sources.NpyReader)
    np.testing.assert_array_equal(x.compute(), data)
    assert float(numbadask.mean(x).compute()) == pytest.approx(data.mean(), rel=1e-12)


def test_zarr_v2_v3_and_arrays_in_groups(tmp_path, data):
    zarr = pytest.importorskip("zarr")
    for fmt in (2, 3):
        z = zarr.create_array(tmp_path / f"v{fmt}.zarr", shape=data.shape, chunks=(40, 50), dtype=data.dtype, zarr_format=fmt)
        z[:] = data
        x = open_source(str(tmp_path / f"v{fmt}.zarr"))
        assert x.chunks[0][0] % 40 == 0  # "auto" keeps the store's chunk boundaries
        np.testing.assert_array_equal(x.compute(), data)
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("inner/x", shape=data.shape, dtype=data.dtype, chunks=(40, 50))[:] = data
    np.testing.assert_array_equal(open_source(f"{tmp_path / 'g.zarr'}:/inner/x").compute(), data)
    np.testing.assert_array_equal(open_source(str(tmp_path / "g.zarr")).compute(), data)  # its only array
    group.create_array("y", shape=(3,), dtype="f8")
    with pytest.raises(SourceError, match="holds 2 arrays"):
        open_source(str(tmp_path / "g.zarr"))
    with pytest.raises(SourceError, match="no Zarr array"):
        open_source(f"{tmp_path / 'g.zarr'}:/nope")


def test_hdf5_dataset_read_in_tasks(tmp_path, data):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "f.hdf5", "w") as f:
        f.create_dataset("/a/b", data=data, chunks=(30, 50))
    x = open_source(f"{tmp_path / 'f.hdf5'}:/a/b")
    assert x.chunks[0][0] % 30 == 0
    np.testing.assert_array_equal(x.compute(scheduler="processes"), data)  # pickles as a path
    np.testing.assert_array_equal(open_source(str(tmp_path / "f.hdf5")).compute(), data)  # the only dataset
    with pytest.raises(SourceError, match="no dataset '/a/c'"):
        open_source(f"{tmp_path / 'f.hdf5'}:/a/c")
    with pytest.raises(SourceError, match="is a group, not a dataset"):
        open_source(f"{tmp_path / 'f.hdf5'}:/a")


def test_random_is_lazy_and_repeatable():
    x = open_source("random:3000x2000:float32", chunks=(1000, 1000))
    assert x.shape == (3000, 2000) and x.dtype == np.float32 and x.numblocks == (3, 2)
    assert len(x.dask) < 20  # a task per chunk, no data
    y = open_source("random:50x4:int16")
    assert y.dtype == np.int16 and 0 <= int(y.min().compute()) and int(y.max().compute()) < 1000
    np.testing.assert_array_equal(open_source("random:20").compute(), open_source("random:20").compute())
    assert open_source("random:30:bool").dtype == bool


@pytest.mark.parametrize(
    "source, message",
    [
        ("{tmp}/missing.npy", "no such file or directory"),
        ("random:10y3", "sizes joined by 'x'"),
        ("random:10:complex64", "bool, integer or float"),
        ("random:10:nonsense", "unknown dtype 'nonsense'"),
        ("{tmp}", "not a Zarr store"),
        ("{tmp}/notes.txt", "cannot tell the format"),
        ("{tmp}/a.npy:/x", "a .npy file holds one array"),
        ("", "SOURCE must be"),
    ],
)
def test_bad_sources_name_the_rule(tmp_path, source, message):
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(SourceError, match=message):
        open_source(source.format(tmp=tmp_path))


def test_chunks_spelling():
    assert sources.parse_chunks("100x-1") == (100, -1)
    assert sources.parse_chunks("auto") == "auto" and sources.parse_chunks("8MiB") == "8MiB"
    for bad in ("0x5", "lots"):
        with pytest.raises(SourceError, match="chunk"):
            sources.parse_chunks(bad)
    with pytest.raises(SourceError, match="gives 3 sizes for an array of 2"):
        open_source("random:10x10", chunks=(5, 5, 5))


def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "s.zarr").mkdir()
    real_import = sources.importlib.import_module

    def no_zarr(name, *args):
        if name == "zarr":
            raise ImportError("No module named 'zarr'")
        return real_import(name, *args)

    monkeypatch.setattr(sources.importlib, "import_module", no_zarr)
    with pytest.raises(MissingExtraError, match=r"pip install 'numbadask\[io\]'"):
        open_source(str(tmp_path / "s.zarr"))
