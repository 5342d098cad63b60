"""Imports point down and never in a circle: stepmail (Lambda code) <- infra <- producer <- twin.

The CLI lives in the producer and reaches the twin's commands only through the ``stepmail.commands``
entry point group (importlib.metadata), so it is held to the producer's layer like the rest.
Every import counts: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Each layer may import the layers listed before it, never one after it.  Within stepmail, the pure
#: core is under everything; handlers sit on the adapters and the settings.
LAYERS = (
    ("stepmail.core",),
    ("stepmail.settings", "stepmail.adapters"),
    ("stepmail.handlers", "stepmail"),
    ("infra", "app"),
    ("producer",),
    ("twin",),
)
#: Where each package's source is.
SOURCES = {
    "stepmail": ROOT / "functions" / "stepmail",
    "infra": ROOT / "infra",
    "producer": ROOT / "producer",
}
SOURCES |= {"twin": ROOT / "twin", "app": ROOT / "app.py"}


def layer_of(module: str) -> int | None:
    """The index of ``module``'s layer (the longest matching prefix wins), None when not ours."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    return best[0] if best else None


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT / "functions" if path.is_relative_to(ROOT / "functions") else ROOT)
    parts = list(relative.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for source in SOURCES.values():
        for path in [source] if source.is_file() else sorted(source.rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports(source: str, module: str, known: Iterable[str]) -> set[str]:
    """The project modules ``source`` (the text of ``module``) imports, resolved against ``known``."""
    known, found = set(known), set()
    package = module if module in known and _is_package(module, known) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_owner(alias.name, known) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                found.add(_owner(f"{base}.{alias.name}", known) or _owner(base, known))
    return {name for name in found if name and name != module}


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _owner(name: str, known: set[str]) -> str:
    """The longest known module that ``name`` is or lies in ("" when none)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports(path.read_text(encoding="utf-8"), name, modules) for name, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import of a module from a layer above the importer's."""
    return [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if (layer_of(target) or 0) > (layer_of(module) or 0)
    ]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph_of(sources: dict[str, str]) -> dict[str, set[str]]:
    return {name: imports(text, name, sources) for name, text in sources.items()}


MODULES = project_modules()
GRAPH = import_graph(MODULES)


def test_every_package_is_read() -> None:
    assert {
        "stepmail.core.message",
        "infra.stack",
        "producer.cli",
        "twin.twin",
        "twin.console.app",
        "app",
    } <= set(MODULES)
    assert "producer.deployment" in GRAPH["producer.client"]


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports(GRAPH) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circles(GRAPH) == []


def test_the_cli_reaches_the_twin_only_through_the_entry_point() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'twin = "twin.commands:register"' in pyproject
    assert not any(target.startswith("twin") for target in GRAPH["producer.cli"])


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"producer.cli": "from twin.twin import LocalTwin", "twin.twin": ""}, ["producer.cli -> twin.twin"]),
        (
            {"infra.stack": "import producer.client", "producer.client": ""},
            ["infra.stack -> producer.client"],
        ),
        (
            {
                "stepmail.core.lock": "def f():\n    from stepmail.adapters import s3",
                "stepmail.adapters.s3": "",
            },
            ["stepmail.core.lock -> stepmail.adapters.s3"],
        ),
        ({"twin.console": "from producer import client", "producer.client": ""}, []),
    ],
)
def test_the_layer_check_catches_an_upward_import(sources: dict[str, str], expected: list[str]) -> None:
    # Given modules whose imports cross (or respect) the layers, Then the checker says which cross
    assert upward_imports(_graph_of(sources)) == expected


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            {
                "twin.twin": "from twin import console",
                "twin.console": "from twin.console.app import x",
                "twin.console.app": "if TYPE_CHECKING:\n    from twin.twin import LocalTwin",
            },
            [["twin.console", "twin.console.app", "twin.twin"]],
        ),
        ({"twin.a": "from . import b", "twin.b": "from .a import f"}, [["twin.a", "twin.b"]]),
        ({"twin.a": "from twin import b", "twin.b": "import json"}, []),
    ],
)
def test_the_circle_check_catches_a_loop(sources: dict[str, str], expected: list[list[str]]) -> None:
    # Given modules that import each other (or do not), Then the checker finds each loop
    assert circles(_graph_of(sources)) == expected
