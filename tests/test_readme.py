"""The README's CPU quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_cpu_quickstart_runs():
    (first,) = [b for b in python_blocks() if "NumPy-backed Dask array" in b]
    assert "numbadask.mean(x)" in first and "cupy" not in first
    exec(compile(first, str(README), "exec"), {})


def test_user_defined_reductions_example_runs():
    (block,) = [b for b in python_blocks() if "@numbadask.reduction" in b]
    exec(compile(block, str(README), "exec"), {})


def test_grouped_reductions_example_runs():
    pytest.importorskip("xarray")
    pytest.importorskip("flox")
    (block,) = [b for b in python_blocks() if "numbadask.groupby_reduce(" in b]
    scope: dict = {}
    exec(compile(block, str(README), "exec"), scope)
    assert scope["climatology"].shape == (90, 180, 12) and scope["monthly"].sizes["month"] == 12


def test_two_commands_match_ci():
    """.ci/run runs the README's first two commands, in order and verbatim: a regular
    install then an editable one is the fresh clone's sequence (issue 15); then the
    extended tier (issue 26)."""
    bash = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    install_and_run, install_and_test = (b.strip().splitlines()[-1] for b in bash[:2])
    assert install_and_run == "python -m pip install . && numbadask"
    assert install_and_test == 'python -m pip install -e ".[test]" && bash ci/test_fast.sh'
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert ci[:1] == ["#!/usr/bin/env bash"] and "set -euo pipefail" in ci and 'cd "$(dirname "$0")/.."' in ci
    steps = [line for line in ci if line.startswith(("python", "bash"))]
    # `|| exit`: under `set -e`, a failing `pip install .` (before the last `&&`) would
    # not stop the script, and command 2 would run on whatever was installed before.
    assert steps == [install_and_run + " || exit", install_and_test + " || exit", "bash ci/test_extended.sh"]


def test_documented_commands_parse():
    """Every `numbadask ...` command line in the README is one the CLI accepts."""
    import shlex

    from numbadask.main import cli

    bash = "\n".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL))
    lines = [line.split("#")[0].strip() for line in bash.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("numbadask ")]
    assert len(commands) >= 6
    parser = cli.build_parser()
    for argv in commands:
        parser.parse_args(cli._with_default_command(argv))


#: One small Dask array of each dtype the kernels do not reduce, by the word the README uses.
UNSUPPORTED = {
    "complex": np.array([1 + 1j, 3 + 3j]),
    "datetime": np.array(["2020-01-01", "2020-01-03"], dtype="M8[D]"),
    "timedelta": np.array([1, 3], dtype="m8[s]"),
    "object": np.array([1, 3], dtype=object),
    "string": np.array(["a", "b"]),
}


def _outcome(func, x):
    """What a call gives: ("answer", its repr) or ("error", the exception's type)."""
    try:
        result = func(x)
        return "answer", repr(result.compute() if hasattr(result, "compute") else result)
    except Exception as exc:
        return "error", type(exc)


def _claims_about_unsupported_dtypes() -> list[str]:
    """Each README sentence, bullet sentence or table row that says what complex,
    datetime or timedelta input does (it names TypeError, "refused" or "handed")."""
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.DOTALL)
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.strip() or line.startswith(("|", "#", "- ", "**")):
            blocks.append([])
        blocks[-1].append(line)
    claims = []
    for block in blocks:
        joined = " ".join(" ".join(block).split())
        claims += [joined] if joined.startswith("|") else re.split(r"(?<=[.])\s+(?=[A-Z*`])", joined)
    return [
        c for c in claims
        if re.search(r"complex|datetime|timedelta", c, flags=re.IGNORECASE) and re.search(r"TypeError|refused|handed", c)
    ]


def test_readme_says_what_unsupported_dtypes_do():
    """The README said in three places that complex, object, string and datetime input
    raises TypeError; the code hands it to dask.array (issue 26).  Every statement it
    makes about that input now runs here, for each dtype it names."""
    import warnings

    import dask.array as da

    import numbadask
    from numbadask import examples

    claims = _claims_about_unsupported_dtypes()
    assert len(claims) >= 3, claims
    for claim in claims:
        named = [w for w in UNSUPPORTED if w in claim.lower()]
        for word in named:
            x = da.from_array(UNSUPPORTED[word], chunks=1)
            if "numbadask.reduction" in claim or "user-defined" in claim:
                with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
                    examples.sum_of_squares(x)
                continue
            for name in ("sum", "mean", "min", "std", "argmax"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ours, theirs = _outcome(getattr(numbadask, name), x), _outcome(getattr(da, name), x)
                if "handed" in claim:
                    assert ours == theirs, (claim, word, name)
                else:  # "refused" / "raise TypeError naming the dtype"
                    assert ours == ("error", TypeError) or (ours[0] == "error" and issubclass(ours[1], TypeError)), (claim, word, name, ours)


CLUSTER_START = re.compile(r"LocalCUDACluster\(|LocalCluster\(|numbadask\.cluster\(")


def test_cluster_examples_have_the_script_guard():
    """A script that starts a local cluster must do it under `if __name__ ==
    "__main__":` (each worker process starts by importing the script: without the guard,
    hundreds of lines of Nanny errors)."""
    blocks = [b for b in python_blocks() if CLUSTER_START.search(b)]
    assert len(blocks) >= 2  # numbadask.cluster() and LocalCUDACluster
    for block in blocks:
        compile(block, str(README), "exec")
        assert '\nif __name__ == "__main__":' in "\n" + block, block
        for line in block.splitlines():
            if CLUSTER_START.search(line.split("#")[0]):
                assert line.startswith(" "), f"a cluster started at the top level of a script: {line!r}"


def test_cluster_example_runs_as_a_script(tmp_path):
    import subprocess
    import sys

    (block,) = [b for b in python_blocks() if "numbadask.cluster(" in b]
    script = tmp_path / "example.py"
    script.write_text(block)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.split()[-1]) == pytest.approx(0.5, abs=0.01)
