"""Numba's CUDA simulator as the CUDA kernels' tests run it (``cuda_kernels.launch``)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.cuda_kernels


def test_shared_arrays_are_one_per_block_under_thread_switches():
    """The simulator makes a block's ``cuda.shared.array`` on first use, unlocked; at
    a short switch interval two threads could each make one (a CI run saw stale
    partials).  After a launch, the lookup is locked: 64 threads let loose at once all
    get the same array."""
    simulator = pytest.importorskip("numba.cuda.simulator.kernelapi")
    from numbadask.cuda_kernels import launch

    if not launch.simulator():
        pytest.skip("the simulator's shared arrays (NUMBA_ENABLE_CUDASIM=1)")
    with launch.serialized():
        pass  # installs the locked lookup
    shared = simulator.FakeCUDAShared(0)
    start, got = threading.Barrier(64), []

    def allocate() -> None:
        start.wait()
        got.append(shared.array(256, np.float64))  # one source line: one allocation

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=allocate) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert len(got) == 64 and all(a is got[0] for a in got)
