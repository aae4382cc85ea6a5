"""The main job tells the truth (issue 26, item 4): ``numbadask stats`` times the
reduction, not Numba compiling, not a process pool starting.

Each test runs the command in a fresh Python process with an empty
``NUMBADASK_CACHE_DIR`` (a cold Numba cache, as on a fresh install), listens to
Numba's ``numba:compile`` events in every process that runs tasks, and notes when the
timed part (:func:`numbadask.main.timing.timed`) starts and ends.  No compile may start
inside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

#: Records every Numba compile in this process as "pid monotonic-time function" lines
#: in $COMPILE_LOG; imported at start-up by every process of the test (PYTHONPATH),
#: the spawned workers of a process pool included.
SITECUSTOMIZE = """
import os
if os.environ.get("COMPILE_LOG"):
    import time
    from numba.core import event

    class _Log(event.Listener):
        def on_start(self, ev):
            d = ev.data["dispatcher"]
            name = getattr(getattr(d, "py_func", None), "__qualname__", repr(d))
            what = f"{name}{ev.data['args']}".replace("\\n", " ")
            with open(os.environ["COMPILE_LOG"], "a") as f:
                f.write(f"{os.getpid()} {time.monotonic()!r} {what}\\n")

        def on_end(self, ev):
            pass

    event.register("numba:compile", _Log())
"""

#: Runs ``numbadask`` once per argv in one process, writing the timed parts'
#: (start, end) monotonic times to $TIMED_LOG.
RUNNER = """
import json, os, sys, time
import numbadask.main.timing as timing
from numbadask.main import cli

original = timing.timed

def timed(func):
    start = time.monotonic()
    try:
        return original(func)
    finally:
        with open(os.environ["TIMED_LOG"], "a") as f:
            f.write(f"{os.getpid()} {start!r} {time.monotonic()!r}\\n")

timing.timed = timed
for argv in json.loads(sys.argv[1]):
    status = cli.main(argv)
    assert status == 0, (argv, status)
"""


def cold_runs(tmp_path: Path, *argvs: list[str]) -> tuple[list[tuple[int, float, str]], list[tuple[float, float]], int, str]:
    """Run each ``numbadask`` argv, in order, in one new process on a cold cache:
    (compiles as (pid, time, function), timed parts as (start, end), that process's
    pid, stdout)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    compile_log, timed_log = tmp_path / "compiles.log", tmp_path / "timed.log"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(
        NUMBADASK_CACHE_DIR=str(tmp_path / "cache"),
        COMPILE_LOG=str(compile_log),
        TIMED_LOG=str(timed_log),
        PYTHONPATH=os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])]),
    )
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(list(argvs))], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    compiles = []
    for line in compile_log.read_text().splitlines():
        pid, when, name = line.split(" ", 2)
        compiles.append((int(pid), float(when), name))
    lines = [line.split() for line in timed_log.read_text().splitlines()]
    assert len(lines) == len(argvs)
    return compiles, [(float(a), float(b)) for _, a, b in lines], int(lines[0][0]), out.stdout


def compiled_inside(compiles: list[tuple[int, float, str]], timed: list[tuple[float, float]]) -> list[str]:
    return [f"pid {pid}: {name}" for pid, when, name in compiles if any(start <= when <= end for start, end in timed)]


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "data.npy"
    data = np.random.default_rng(0).standard_normal((300, 70))
    data[5, 7] = np.nan
    np.save(path, data)
    return path


@pytest.mark.extended
def test_a_cold_cache_run_compiles_nothing_while_timed(tmp_path, npy):
    """`numbadask stats data.npy` on a fresh cache: the .npy reader hands read-only
    memory-mapped chunks, which the warm-up must compile for (it compiled for writable
    arrays, so the first run timed 12 s of compiling as the reduction)."""
    compiles, timed, _, stdout = cold_runs(
        tmp_path,
        ["stats", str(npy)],
        # strided chunks (a column split), several of them (merges), arg-reductions
        # over each layout, the generic path (count), the nan-versions
        ["stats", str(npy), "--chunks", "64x30", "--stats", "count,argmax,var", "--axis", "0", "--skipna"],
        ["stats", str(npy), "--chunks", "64x30", "--stats", "argmin,max", "--axis", "1"],
        ["stats", str(npy), "--chunks", "64x30", "--stats", "argmax"],
    )
    assert len(compiles) > 10, "the cache was not cold: nothing compiled"
    assert compiled_inside(compiles, timed) == []
    assert stdout.count("GB/s") == 4


@pytest.mark.extended
def test_the_process_pool_is_started_and_warmed_before_the_timer(tmp_path):
    """`--scheduler processes`: the pool's processes are started, and the kernels
    compiled in each, before the timer starts (it timed the pool's start and, on a
    fresh cache, every worker's compile)."""
    compiles, timed, client, stdout = cold_runs(
        tmp_path, ["stats", "random:1000x1000", "--stats", "mean", "--scheduler", "processes", "--persist"]
    )
    assert {pid for pid, _, _ in compiles} - {client}, "no worker process compiled anything: the cache was not cold"
    assert compiled_inside(compiles, timed) == []
    assert "scheduler processes" in stdout


# ------------------------------------------------------- what the command prints and exits


def test_gb_per_second_never_reads_zero_for_a_nonzero_rate():
    """`0.00 GB/s` for a small or slow run: three significant digits instead."""
    from numbadask.main import cli

    assert [cli.format_rate(r) for r in (0.0381, 0.0012, 5.0, 44.13, 1683.2)] == ["0.0381", "0.00120", "5.00", "44.1", "1683"]
    for rate in np.logspace(-7, 4, 45):
        text = cli.format_rate(float(rate))
        assert float(text) == pytest.approx(rate, rel=0.006), (rate, text)


def test_the_table_shows_a_small_runs_rate(capsys, monkeypatch):
    from numbadask.main import cli, stats

    monkeypatch.setattr(stats.StatsResult, "gbps", property(lambda self: 0.00042))
    assert cli.main(["stats", "random:30x20", "--stats", "mean"]) == 0
    assert "0.000420 GB/s" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["stats", "random:10x10", "--axis", "x"], "--axis takes an integer"),
        (["stats", "random:10x10", "--chunks", "banana"], "--chunks takes 'auto'"),
        (["stats", "random:10x10", "--ddof", "abc"], "--ddof"),
        (["stats", "random:10x10", "--ddof", "nan"], "--ddof"),
        (["stats", "random:10x10", "--stats", "mean,median"], "unknown stat 'median'"),
        (["stats", "random:10x10", "--stats", ","], "--stats is empty"),
        (["bench", "--functions", "mean,median"], "bench cannot time 'median'"),
        (["stast", "data.npy"], "unknown command 'stast'; did you mean 'stats'?"),
        (["--debug", "ifno"], "unknown command 'ifno'; did you mean 'info'?"),
    ],
)
def test_every_usage_error_exits_2(capsys, argv, words):
    """argparse's convention, which the README states: usage errors exit 2 (some
    exited 1, --ddof abc 2), with the usage and the reason on stderr."""
    from numbadask.main import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and words in err and "usage:" in err, err


def test_errors_found_while_running_still_exit_1(capsys, tmp_path):
    from numbadask.main import cli

    assert cli.main(["stats", "random:10x10", "--axis", "5"]) == 1  # the array has no axis 5
    assert cli.main(["stats", str(tmp_path / "missing.npy")]) == 1
    assert cli.main(["stats", "random:10x10", "--chunks", "5x5x5"]) == 1  # 3 sizes for 2 axes
    assert capsys.readouterr().err.count("numbadask: error: ") == 3


def test_a_source_alone_still_means_stats(capsys, npy):
    from numbadask.main import cli

    assert cli.main([str(npy), "--stats", "max"]) == 0
    assert f"stats of {npy}" in capsys.readouterr().out


def test_moments_with_other_stats_is_its_seven_statistics_among_them(capsys, npy):
    """`--stats mean,moments` said "unknown stat 'moments' ... (or moments)"."""
    from numbadask.main import cli

    assert cli.main(["stats", str(npy), "--stats", "argmax,moments,mean", "--skipna", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["stats"]
    assert list(got) == ["nanargmax", "count", "nansum", "nanmean", "nanvar", "nanstd", "nanmin", "nanmax"]
    data = np.load(npy)
    assert got["nanmean"] == pytest.approx(np.nanmean(data)) and got["count"] == data.size - 1


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize(
    "shape, chunks",
    [((300, 70), (300, 70)), ((300, 70), (64, 30)), ((300, 70), (64, 70)), ((300, 70), (300, 35)), ((301, 70), (100, 70)), ((6, 5, 4), (2, 5, 3)), ((9,), (4,))],
)
def test_the_warm_up_walks_every_case_the_real_chunks_walk(shape, chunks, order):
    """The tiny array of the warm-up, chunked by `tiny_chunks`, as views and as copies,
    walks (per reduced axes) every case of the CPU walk that the real chunks do, as
    views of the file or as fresh arrays: nothing is left to compile in the timed
    compute (the per-layout walk compiles each case apart).  "F": a Fortran-ordered
    .npy file, whose views the warm-up mirrors in that order (sources.memory_order)."""
    import itertools

    import dask.array as da

    from numbadask.cpu.layout import plan_walk
    from numbadask.cpu.walker import walk_case
    from numbadask.main.warmup import tiny_chunks

    def cases(array, chunks, axes):
        edges = [np.cumsum((0, *c)) for c in chunks]
        found = set()
        for block in itertools.product(*(zip(e[:-1], e[1:]) for e in edges)):
            view = array[tuple(slice(a, b) for a, b in block)]
            for chunk in {id(view): view, 0: np.ascontiguousarray(view)}.values():
                w = plan_walk(chunk, axes, reduced_inward=True)
                found.add(walk_case(w.sizes, w.strides, w.out_strides))
        return found

    real_chunks = da.empty(shape, chunks=chunks).chunks
    pattern = tiny_chunks(real_chunks)
    tiny = np.ones(tuple(sum(c) for c in pattern), order=order)
    for k in range(1, len(shape) + 1):
        for axes in itertools.combinations(range(len(shape)), k):
            # (the warm-up runs the copies only where views are not contiguous: else they are the views)
            assert cases(np.ones(shape, order=order), real_chunks, axes) <= cases(tiny, pattern, axes), (axes, pattern)


def test_the_memory_order_of_a_source(tmp_path):
    from numbadask.main.sources import memory_order

    np.save(tmp_path / "c.npy", np.ones((4, 3)))
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((4, 3))))
    np.save(tmp_path / "one.npy", np.ones(5))
    (tmp_path / "bad.npy").write_text("not an array")
    assert [memory_order(str(tmp_path / n)) for n in ("c.npy", "f.npy", "one.npy", "bad.npy", "missing.npy")] == ["C", "F", "C", "C", "C"]
    assert memory_order("random:4x3") == "C"
