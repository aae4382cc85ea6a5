"""Compiling ahead of time (``numbadask warm``, issue 26) and the one-line compile notice.

What is asserted is what the cache holds and whether a process compiles, never wall time
(bench/bench_first_call.py measures that)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numba
import numpy as np
import pytest

from numbadask.cpu import cache as numba_cache
from numbadask.cpu import notice as compile_notice
from numbadask.cpu.notice import CompileNotice
from numbadask.main import warm

# A new process's first mean and std over axis 0 (contiguous chunks, float64): prints how
# many of numbadask's functions Numba compiled (its numba:compile event fires for real
# compiles only, not for loads from the cache) and how many kernels came from the cache.
FIRST_CALLS = """
import json, sys
from numba.core import event
from numbadask.cpu.notice import is_numbadask_function
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        if is_numbadask_function(ev.data["dispatcher"].py_func):
            compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
import numpy as np, dask.array as da, numbadask
from numbadask.cpu import moments as cpu_moments, sums as cpu_sums
x = da.from_array(np.random.default_rng(0).random((40, 30)), chunks=(10, 30))
assert abs(float(numbadask.mean(x).compute()) - float(x.compute().mean())) < 1e-12
np.testing.assert_allclose(numbadask.std(x, axis=0).compute(), x.compute().std(axis=0), rtol=1e-12)
walkers = (cpu_sums._walk_sum, cpu_moments._walk_moments)
hits = sum(sum(d.stats.cache_hits.values()) for w in walkers for d in w.dispatchers.values())
print(json.dumps({"compiled": compiled, "hits": hits}))
"""


def run_python(code: str, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBADASK_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CACHE_DIR", None)  # the user's choice would take the kernels elsewhere
    return subprocess.run([sys.executable, *args, *(["-c", code] if code else [])], env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.extended  # a cold cache: compiles for tens of seconds
def test_warm_fills_the_cache_so_a_new_process_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    cold = run_python("", cache, "-m", "numbadask.main.cli", "warm", "--dtypes", "float64", "--functions", "mean,std", "--layouts", "contiguous", "--json")
    assert cold.returncode == 0, cold.stderr[-3000:]
    assert cold.stderr == ""  # no compile notice: warm prints its own report
    report = json.loads(cold.stdout)["local"]
    assert [(r["dtype"], r["function"]) for r in report] == [("float64", "mean"), ("float64", "std")]
    assert all(r["compiled"] > 0 for r in report)
    assert any((cache / "numba").rglob("*walk_sum_rows*.nbi")) and any((cache / "numba").rglob("*walk_moments_columns*.nbc"))

    first = run_python(FIRST_CALLS, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    counts = json.loads(first.stdout.splitlines()[-1])
    assert counts["compiled"] == [] and counts["hits"] >= 2  # mean's walk (rows), std's (columns)

    again = run_python("", cache, "-m", "numbadask.main.cli", "warm", "--dtypes", "float64", "--functions", "mean,std", "--layouts", "contiguous", "--json")
    assert [r["compiled"] for r in json.loads(again.stdout)["local"]] == [0, 0]


@pytest.mark.extended  # a cold cache: compiles for tens of seconds
def test_without_warm_the_first_calls_compile(tmp_path):
    # the control of the test above: the same process on an empty cache compiles
    first = run_python(FIRST_CALLS, tmp_path / "cache")
    assert first.returncode == 0, first.stderr[-3000:]
    compiled = json.loads(first.stdout.splitlines()[-1])["compiled"]
    assert "walk_sum_rows" in compiled and "walk_moments_columns" in compiled
    # one case of each walk, not all of them
    assert not any(name.startswith(("walk_sum_tiles", "walk_moments_tiles", "walk_sum_across")) for name in compiled)


def test_warm_names_are_checked():
    assert warm.parse_dtypes("f8,int32") == ("float64", "int32")
    assert warm.parse_names(None, warm.LAYOUTS, "layout") == warm.LAYOUTS
    for bad in ("complex64", "nonsense"):
        with pytest.raises(warm.WarmError):
            warm.parse_dtypes(bad)
    with pytest.raises(warm.WarmError, match="unknown layout 'diagonal'"):
        warm.parse_names("contiguous,diagonal", warm.LAYOUTS, "layout")


def test_sample_arrays_walk_every_case():
    """The warm-up's chunks reach every case of the CPU walk."""
    import dask

    from numbadask.cpu.layout import plan_walk
    from numbadask.cpu.walker import CASES, walk_case

    seen = set()

    def note(block):
        for axes in ((0, 1), (0,), (1,)):
            w = plan_walk(block, axes, reduced_inward=True)
            seen.add(walk_case(w.sizes, w.strides, w.out_strides))
        return block

    arrays = warm.sample_arrays("float32")
    dask.compute(*(x.map_blocks(note, dtype=x.dtype) for x in arrays.values()), scheduler="sync")
    assert seen == set(CASES)


class FakeStderr(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def compile_event(func, *args):
    return SimpleNamespace(data={"dispatcher": SimpleNamespace(py_func=func), "args": args})


@pytest.mark.parametrize("terminal", [True, False])
def test_the_notice_is_one_line_on_a_terminal_only(monkeypatch, terminal):
    notice = CompileNotice()
    stderr = FakeStderr(terminal)
    monkeypatch.setattr(sys, "stderr", stderr)
    ours = numba_cache.cache_root  # any numbadask function

    def users_own(x):
        return x

    notice.on_start(compile_event(users_own, numba.float32[:]))
    assert stderr.getvalue() == ""  # the user's own @njit compiles are not announced
    notice.on_start(compile_event(ours, numba.int64, numba.float32[:]))
    notice.on_start(compile_event(ours, numba.float64[:]))
    if terminal:
        assert stderr.getvalue() == "numbadask: compiling kernels for float32 (first use; cached afterwards)...\n"
    else:
        assert stderr.getvalue() == ""


def test_the_notice_can_be_turned_off(monkeypatch):
    notice = CompileNotice()
    stderr = FakeStderr(True)
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(compile_notice, "NOTICE", notice)
    assert compile_notice.set_compile_notice(False) is True
    notice.on_start(compile_event(numba_cache.cache_root, numba.float64[:]))
    assert stderr.getvalue() == "" and not notice.shown
    compile_notice.set_compile_notice(True)
    notice.on_start(compile_event(numba_cache.cache_root, numba.uint8[:]))
    assert stderr.getvalue() == "numbadask: compiling kernels for bool/uint8 (first use; cached afterwards)...\n"


def test_a_real_compile_on_a_terminal_prints_the_notice_once(monkeypatch):
    """Through Numba's own event: two walks of a new plug-in compile two layout cases,
    and the registered notice prints one line."""
    from numbadask.cpu.layout import plan_walk
    from numbadask.cpu.walker import instantiate, run

    @numba.njit
    def count_row(state, o, buf, start, n, step, params):
        state[0][o] += n

    @numba.njit
    def count_across(state, o, out_step, buf, start, n, step, params):
        for j in range(n):
            state[0][o + j * out_step] += 1

    stderr = FakeStderr(True)
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(compile_notice.NOTICE, "shown", False)
    monkeypatch.setattr(compile_notice.NOTICE, "enabled", True)
    walker = instantiate("walk_count_notice_test", fold_row=count_row, fold_across=count_across, cache=False)
    a = np.ones((3, 4), dtype=np.float32)
    for axes in ((0,), (1,)):
        w = plan_walk(a, axes, reduced_inward=True)
        (out,) = run(walker, w, (np.zeros(w.out_size, dtype=np.int64),))
        assert out.sum() == a.size
    assert len(walker.dispatchers) == 2
    assert stderr.getvalue() == "numbadask: compiling kernels for float32 (first use; cached afterwards)...\n"


@pytest.mark.extended  # a cold cache
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_cli_announces_a_first_compile_on_a_terminal_but_not_with_json(tmp_path):
    """stderr on a pseudo-terminal, as in an interactive shell: one notice line with an
    empty cache, none with --json, none once the cache is warm."""

    def stderr_of(cache: str, *args: str) -> str:
        main, terminal = os.openpty()
        env = {**os.environ, "NUMBADASK_CACHE_DIR": str(tmp_path / cache)}
        env.pop("NUMBA_CACHE_DIR", None)
        try:
            done = subprocess.run([sys.executable, "-m", "numbadask.main.cli", "stats", "random:60x50", "--stats", "sum", *args], env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=600)
            assert done.returncode == 0
            os.close(terminal)
            chunks = []
            while True:
                try:
                    data = os.read(main, 4096)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode()
        finally:
            os.close(main)

    assert stderr_of("a", "--json") == ""
    first = stderr_of("b")
    assert first.count("numbadask: compiling kernels for float64 (first use; cached afterwards)...") == 1
    assert first.count("numbadask:") == 1
    assert stderr_of("b") == ""


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--dtypes", "complex64"], "numbadask reduces bool, integer and float arrays"),
        (["--functions", "median"], "unknown function 'median'"),
        (["--layouts", "diagonal"], "unknown layout 'diagonal'"),
        (["--scheduler", "localhost"], "tcp://HOST:PORT"),
    ],
)
def test_the_warm_command_refuses_bad_names_as_usage_errors(capsys, argv, words):
    from numbadask.main import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["warm", *argv])
    assert stop.value.code == 2
    assert words in capsys.readouterr().err


def test_the_warm_command_reports_what_it_compiled(capsys):
    from numbadask.main import cli

    assert cli.main(["warm", "--dtypes", "float64", "--functions", "sum", "--layouts", "contiguous", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["local"]
    assert report["dtype"] == "float64" and report["function"] == "sum" and report["compiled"] >= 0
    assert cli.main(["warm", "--dtypes", "float64", "--functions", "sum", "--layouts", "contiguous"]) == 0
    assert "1 function/dtype pairs in" in capsys.readouterr().out
