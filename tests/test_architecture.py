"""The package's shape, checked: no import circles, no two things with one name, a light `sweep`.

docs/architecture.md promises one-way layers and `sweep --help` that loads no statistics stack;
these tests hold the code to it. They read the source with ``ast`` (no project module is imported
in this process), so they take well under a second apart from one short interpreter start.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lightning_app", "analyses")

# Each command's module has its own `main` and `build_parser`, by convention (commands.py
# dispatches to them); a package's entry module is `command.py` in every package.
SHARED_BY_CONVENTION = {"main", "build_parser"}
MODULES_BY_CONVENTION = {"__init__", "__main__", "command"}


def _modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module `name` imports at any depth (functions too), except under TYPE_CHECKING."""
    is_package = path.name == "__init__.py"

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
                continue
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from walk([c for c in children if isinstance(c, ast.stmt)])
                    for handler in children:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from walk(handler.body)

    yield from walk(ast.parse(path.read_text()).body)


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(imported: str) -> str | None:
        while imported and imported not in modules:
            imported = imported.rpartition(".")[0]
        return imported or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {owner(i) for i in _imports(name, path)}
        # A module importing its own package (or a package its submodule) is not a circle
        # between two modules; Python resolves it by package initialisation order.
        graph[name] = {
            t
            for t in targets
            if t and t != name and not name.startswith(t + ".") and not t.startswith(name + ".")
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_two_classes_functions_or_modules_share_a_name() -> None:
    classes: dict[str, list[str]] = defaultdict(list)
    functions: dict[str, list[str]] = defaultdict(list)
    stems: dict[str, list[str]] = defaultdict(list)
    for name, path in _modules((*PACKAGES, "bench")).items():
        stems[path.stem].append(name)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                classes[node.name].append(name)
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                functions[node.name].append(name)
    twice = {
        f"{kind} {key}: {where}"
        for kind, table in (("class", classes), ("function", functions), ("module", stems))
        for key, where in table.items()
        if len(where) > 1
        and not (kind == "module" and key in MODULES_BY_CONVENTION)
        and not (kind == "function" and key in SHARED_BY_CONVENTION)
    }
    assert sorted(twice) == []


def test_sweep_help_loads_no_statistics_stack() -> None:
    """`sweep --help` (and a sweep's start) must not pay for pandas and scipy (about a second)."""
    code = (
        "import sys\n"
        "from lightning_app.sweeps.command import build_parser\n"
        "build_parser().format_help()\n"
        "print(' '.join(sorted(m for m in ('pandas', 'scipy', 'statsmodels', 'matplotlib')"
        " if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
