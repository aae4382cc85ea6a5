"""pytest plugin: the whole session under ``numbadask.accelerate()``.

Loaded by ci/test_dask_suite.sh as ``-p accelerate_plugin`` (ci/ on PYTHONPATH) to run
Dask's own reduction tests with dask.array's reductions routed to numbadask.  At the
end it prints how many calls numbadask computed and how many it handed to dask.array,
over every pytest-xdist worker (each worker runs the session under its own
``accelerate()`` and sends its counts to the controller when it finishes).
"""

from __future__ import annotations

from collections import Counter

import pytest

import numbadask

_handle = None
_from_workers = {"routed": Counter(), "declined": Counter()}


def pytest_configure(config):  # noqa: ARG001 - pytest's hook signature
    global _handle
    _handle = numbadask.accelerate()


def pytest_unconfigure(config):  # noqa: ARG001
    if _handle is not None:
        _handle.restore()


def pytest_sessionfinish(session):
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: its counts go to the controller
        output["numbadask_routed"] = dict(numbadask.accelerate.routed())
        output["numbadask_declined"] = dict(numbadask.accelerate.declined())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # noqa: ARG001 - xdist's hook: a worker finished
    output = getattr(node, "workeroutput", {})
    _from_workers["routed"].update(output.get("numbadask_routed", {}))
    _from_workers["declined"].update(output.get("numbadask_declined", {}))


def pytest_terminal_summary(terminalreporter):
    routed = _from_workers["routed"] + Counter(numbadask.accelerate.routed())
    declined = _from_workers["declined"] + Counter(numbadask.accelerate.declined())
    terminalreporter.write_line(
        f"numbadask.accelerate: {sum(routed.values())} calls computed by numbadask {dict(sorted(routed.items()))}; "
        f"{sum(declined.values())} handed to dask.array {dict(sorted(declined.items()))}"
    )
