"""Timing helpers for ``numbadask bench``: contenders timed in turn, medians kept.

A shared machine's speed drifts; timing each contender once per round, round after
round, lets the drift reach every contender alike (the method of ``bench/common.py``,
which the installed package cannot import).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def interleaved_times(funcs: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Seconds of each function in each of ``runs`` rounds, after one warm-up round.

    Examples
    --------
    >>> times = interleaved_times({"a": lambda: None, "b": lambda: None}, runs=3)
    >>> sorted(times), len(times["a"])
    (['a', 'b'], 3)
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for round_ in range(runs + 1):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def median_ratio(slow: list[float], fast: list[float]) -> float:
    """The median of per-round ratios ``slow / fast`` (how many times faster ``fast`` is).

    Examples
    --------
    >>> median_ratio([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])
    3.0
    """
    return statistics.median(s / f for s, f in zip(slow, fast))


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, func())``.

    Examples
    --------
    >>> seconds, value = timed(lambda: 42)
    >>> value, seconds >= 0
    (42, True)
    """
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value
