"""The one registry of reductions: the public functions, the CLI, the family modules'
declarations and the tests' table of NumPy references must all name the same ones."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import numbadask
from cases import REFERENCES

from numbadask.main import stats
from numbadask.engine.definition import Reduction
from numbadask.reductions.registry import DECLARED, KERNELS, MOMENTS, REGISTRY, nan_version


def test_every_declared_reduction_is_registered_once():
    assert sorted(r.name for r in DECLARED) == sorted(REGISTRY)
    assert set(DECLARED) == set(REGISTRY.values())


def test_every_registered_reduction_is_a_public_function_of_its_name():
    for name in REGISTRY:
        func = getattr(numbadask, name)
        assert func.__name__ == name and name in numbadask.__all__
        assert inspect.signature(func).parameters["a"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_the_cli_and_the_tests_read_the_registry():
    assert stats.FAMILY == tuple(REGISTRY)
    assert set(REFERENCES) == set(REGISTRY)
    assert stats.MOMENT_FIELDS == numbadask.MomentsResult._fields


@pytest.mark.parametrize("name", list(REGISTRY))
def test_declarations_are_consistent(name):
    r = REGISTRY[name]
    assert isinstance(r, Reduction)
    if r.skipna:
        twin = REGISTRY[r.nan_twin]
        assert not twin.skipna and nan_version(twin.name) is r and name == "nan" + twin.name
        assert twin.kernel is not r.kernel or twin.state is r.state
    takes = inspect.signature(getattr(numbadask, name)).parameters
    assert ("ddof" in takes) == ("ddof" in r.options)
    assert ("dtype" in takes) == (r.integer_dtype is not None)
    for dtype in (np.bool_, np.int32, np.uint64, np.float16, np.float64):
        assert r.kernel(np.dtype(dtype)) in KERNELS


def test_nan_versions_of_names_without_one_are_themselves():
    assert nan_version("ptp") is REGISTRY["ptp"] and nan_version("count") is REGISTRY["count"]
    assert MOMENTS.name == "moments" and "moments" not in REGISTRY


def test_every_built_in_kernel_is_used():
    used = {r.kernel(np.dtype(d)) for r in (*REGISTRY.values(), MOMENTS) for d in (np.bool_, np.int64, np.float32)}
    assert used == set(KERNELS)
