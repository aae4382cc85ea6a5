"""pytest plugin: the whole session under ``numbadask.accelerate()``.

Loaded by ci/test_dask_suite.sh as ``-p accelerate_plugin`` (ci/ on PYTHONPATH) to run
Dask's own reduction tests with dask.array's reductions routed to numbadask.  At the
end it prints how many calls numbadask computed and how many it handed to dask.array.
"""

from __future__ import annotations

import numbadask

_handle = None


def pytest_configure(config):  # noqa: ARG001 - pytest's hook signature
    global _handle
    _handle = numbadask.accelerate()


def pytest_unconfigure(config):  # noqa: ARG001
    if _handle is not None:
        _handle.restore()


def pytest_terminal_summary(terminalreporter):
    routed = numbadask.accelerate.routed()
    declined = numbadask.accelerate.declined()
    terminalreporter.write_line(
        f"numbadask.accelerate: {sum(routed.values())} calls computed by numbadask {dict(sorted(routed.items()))}; "
        f"{sum(declined.values())} handed to dask.array {dict(sorted(declined.items()))}"
    )
