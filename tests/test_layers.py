"""The package's folders are its layers: every import points down them, none in a circle.

Layers, bottom to top (each folder's ``__init__`` docstring says what lives there):
``numbadask.cpu`` (the njit kernels), ``numbadask.cuda_kernels`` (the CUDA kernels),
``numbadask.engine`` (the Dask side), ``numbadask.reductions`` (the public families),
``numbadask.integrations`` (accelerate, xarray), ``numbadask.main`` (the command line);
the package root (``numbadask/__init__.py`` and the public modules beside it,
``numbadask.xarray`` and ``numbadask.examples``) sits on top of them all.

Every import counts: at module level, inside functions (lazy imports), under
``TYPE_CHECKING`` and through ``importlib.import_module("numbadask....")``.  A module
may import its own layer and the layers below; the modules of one layer may not import
each other in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = {"numbadask": REPO / "src" / "numbadask", "numbadask.cuda_kernels": REPO / "cuda_kernels"}
LAYERS = ("numbadask.cpu", "numbadask.cuda_kernels", "numbadask.engine", "numbadask.reductions", "numbadask.integrations", "numbadask.main")
#: Modules over this many lines are too long to read in one sitting (DESIGN.md).
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if package == "numbadask" and name.startswith("numbadask.cuda_kernels"):
                continue
            found[name] = path
    return found


def layer(module: str) -> int:
    """The layer's height (0 at the bottom); the root and its public modules on top."""
    for height, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return height
    return len(LAYERS)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The numbadask modules ``module`` imports (``from pkg import name`` counts
    ``pkg.name`` when that is a module, else ``pkg``)."""
    out = set()
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module" and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                out.add(name.value)
            elif isinstance(name, ast.JoinedStr) and name.values and isinstance(name.values[0], ast.Constant):
                out.add(str(name.values[0].value).rstrip("."))  # f"numbadask.main.{x}": the package it reads
    return {m for m in out if m == "numbadask" or m.startswith("numbadask.")} - {module}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {m for m in imports_of(name, path, known) if m in known} for name, path in found.items()}


def test_every_import_points_down_the_layers(graph: dict[str, set[str]]) -> None:
    upward = sorted(
        f"{module} (layer {LAYERS[layer(module)] if layer(module) < len(LAYERS) else 'root'}) imports {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(target) > layer(module) or (layer(target) == len(LAYERS) and layer(module) < len(LAYERS))
    )
    assert not upward, "imports running up the layers:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_ancestor(a: str, b: str) -> bool:
    return b.startswith(a + ".")


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # A package's __init__ is run before any of its modules: a module importing its own
    # package (or an ancestor) only waits for what that __init__ imports, so the edges
    # from a module to its ancestors are left out; everything else counts.
    edges = {m: {t for t in ts if not _is_ancestor(t, m)} for m, ts in graph.items()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_an_upward_import_is_seen(tmp_path: Path) -> None:
    module = tmp_path / "kernel.py"
    module.write_text(
        "def f(name):\n    from numbadask.reductions import sums\n    import importlib\n"
        "    importlib.import_module('numbadask.main.cli')\n    importlib.import_module(f'numbadask.integrations.{name}')\n"
    )
    found = imports_of("numbadask.cpu.kernel", module, {"numbadask.reductions.sums", "numbadask.main.cli"})
    assert found == {"numbadask.reductions.sums", "numbadask.main.cli", "numbadask.integrations"}
    assert all(layer(t) > layer("numbadask.cpu.kernel") for t in found)


def test_every_layer_folder_says_what_it_holds_and_may_import() -> None:
    found = modules()
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse(found[name].read_text()))
        assert doc and "import" in doc, f"{name}/__init__.py must say what lives there and what it may import"


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_longer_than_a_sitting(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by what it owns"


def readme_tree() -> set[str]:
    """The files README's "Layout" tree names under ``src/numbadask/`` and
    ``cuda_kernels/`` (a name ending in ``.py`` at the start of an entry, its folder
    given by the indentation: two spaces a level)."""
    text = (REPO / "README.md").read_text()
    block = text[text.index("## Layout") :]
    block = block[block.index("```\n") + 4 :]
    block = block[: block.index("```")]
    named, folders = set(), []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        entry = line.strip().split(" ")[0]
        if not entry:
            continue
        del folders[depth:]
        if entry.endswith("/"):
            folders.append(entry)
        elif entry.endswith(".py") and folders and folders[0] in ("src/numbadask/", "cuda_kernels/"):
            named.add("".join(folders) + entry)
    return named


def test_the_readme_tree_is_the_package() -> None:
    files = {p.relative_to(REPO).as_posix() for folder in SOURCES.values() for p in folder.rglob("*.py")}
    files = {f for f in files if not f.endswith("__init__.py") or f == "src/numbadask/__init__.py"}
    named = readme_tree()
    assert sorted(files - named) == [], "modules README's Layout does not name"
    assert sorted(named - files) == [], "README's Layout names modules that do not exist"
