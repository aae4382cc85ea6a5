"""pytest plugin: the whole session under ``numbadask.accelerate()``.

Loaded by ci/peer_suite.sh (ci/test_dask_suite.sh, ci/test_xarray_suite.sh) as
``-p accelerate_plugin`` (ci/ on PYTHONPATH) to run Dask's own reduction tests and
xarray's groupby tests with dask.array's reductions (and flox.xarray's groupby_reduce)
routed to numbadask.  At the end it prints how many calls numbadask computed and how
many it handed to dask.array or flox, over every pytest-xdist worker (each worker runs
the session under its own ``accelerate()`` and sends its counts to the controller when
it finishes); running xarray's tests, also whether flox.xarray's groupby_reduce was
replaced, since accelerate() replaces it only when xarray is imported before it (here
by xarray's conftest, loaded before pytest_configure).
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest

import numbadask

_handle = None
_from_workers = {"routed": Counter(), "declined": Counter(), "grouped": Counter()}


def _grouped_state() -> str | None:
    """Whether xarray's groupby reductions route: None outside xarray's own tests."""
    if "xarray.tests" not in sys.modules:
        return None
    flox_xarray = sys.modules.get("flox.xarray")
    if flox_xarray is None:
        return "not routed (flox.xarray never imported: is flox installed?)"
    routed = hasattr(getattr(flox_xarray, "groupby_reduce", None), "__numbadask_original__")
    return "routed" if routed else "not routed (not replaced: xarray imported after accelerate()?)"


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
        output["numbadask_grouped"] = _grouped_state()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # noqa: ARG001 - xdist's hook: a worker finished
    output = getattr(node, "workeroutput", {})
    _from_workers["routed"].update(output.get("numbadask_routed", {}))
    _from_workers["declined"].update(output.get("numbadask_declined", {}))
    if output.get("numbadask_grouped") is not None:
        _from_workers["grouped"][output["numbadask_grouped"]] += 1


def pytest_terminal_summary(terminalreporter):
    routed = _from_workers["routed"] + Counter(numbadask.accelerate.routed())
    declined = _from_workers["declined"] + Counter(numbadask.accelerate.declined())
    terminalreporter.write_line(
        f"numbadask.accelerate: {sum(routed.values())} calls computed by numbadask {dict(sorted(routed.items()))}; "
        f"{sum(declined.values())} handed to dask.array {dict(sorted(declined.items()))}"
    )
    grouped = _from_workers["grouped"]
    if not grouped and _grouped_state() is not None:  # no xdist workers: this process ran the tests
        grouped[_grouped_state()] += 1
    for state, processes in sorted(grouped.items()):
        terminalreporter.write_line(
            f"numbadask.accelerate: xarray's groupby reductions (flox.xarray.groupby_reduce) {state} "
            f"in {processes} test process{'es' if processes > 1 else ''}"
        )
