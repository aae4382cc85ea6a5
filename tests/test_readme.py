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
    bash = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    install_and_run, install_and_test = (b.strip().splitlines()[-1] for b in bash[:2])
    assert install_and_run == "python -m pip install . && numbadask"
    ci = (README.parent / ".ci" / "run").read_text()
    assert install_and_test in ci
