"""Shared fixtures and the skip rules for the `gpu` and `cuda_kernels` markers.

* ``gpu``: needs a real NVIDIA GPU and CuPy; skipped elsewhere (and under the simulator).
* ``cuda_kernels``: runs the CUDA kernels; on a real GPU, or in Numba's simulator when
  the suite runs with ``NUMBA_ENABLE_CUDASIM=1`` (see ``ci/test_extended.sh``).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import settings

from numbadask.engine import dispatch


def _real_gpu() -> bool:
    if dispatch.simulator_enabled() or importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # any CUDA failure means: no usable GPU here
        return False


# Example budgets, picked by HYPOTHESIS_PROFILE: "default" (60 per property test) for a
# plain `pytest` and the extended tier; "fast" for the fast tier (ci/test_fast.sh), whose
# properties the extended tier's slow tests run again with larger budgets; "gpu" for the
# simulator and a lent GPU's minutes (every new dtype/layout compiles a CUDA kernel there).
settings.register_profile("default", max_examples=60, deadline=None)
settings.register_profile("fast", max_examples=60, deadline=None)
settings.register_profile("gpu", max_examples=15, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

HAS_GPU = _real_gpu()
CAN_RUN_CUDA_KERNELS = HAS_GPU or dispatch.simulator_enabled()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a real NVIDIA GPU with CuPy")
    skip_kernels = pytest.mark.skip(reason="needs a GPU or NUMBA_ENABLE_CUDASIM=1")
    for item in items:
        if item.get_closest_marker("gpu") and not HAS_GPU:
            item.add_marker(skip_gpu)
        if item.get_closest_marker("cuda_kernels") and not CAN_RUN_CUDA_KERNELS:
            item.add_marker(skip_kernels)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
