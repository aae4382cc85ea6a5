"""The README's CPU quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_cpu_quickstart_runs():
    first = python_blocks()[0]
    assert "numbadask.mean(x)" in first and "cupy" not in first
    exec(compile(first, str(README), "exec"), {})


def test_user_defined_reductions_example_runs():
    (block,) = [b for b in python_blocks() if "@numbadask.reduction" in b]
    exec(compile(block, str(README), "exec"), {})


def test_two_commands_match_ci():
    """.ci/run runs the README's first two commands, in order and verbatim: a regular
    install then an editable one is the fresh clone's sequence (issue 15)."""
    bash = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    install_and_run, install_and_test = (b.strip().splitlines()[-1] for b in bash[:2])
    assert install_and_run == "python -m pip install . && numbadask"
    assert install_and_test == 'python -m pip install -e ".[test]" && bash ci/test_python.sh'
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert ci[:1] == ["#!/usr/bin/env bash"] and "set -euo pipefail" in ci and 'cd "$(dirname "$0")/.."' in ci
    steps = [line for line in ci[ci.index('cd "$(dirname "$0")/.."') + 1 :] if line.strip()]
    # `|| exit`: under `set -e`, a failing `pip install .` (before the last `&&`) would
    # not stop the script, and command 2 would run on whatever was installed before.
    assert steps == [install_and_run + " || exit", install_and_test]


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
