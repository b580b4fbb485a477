"""The import graph of src/pid: layers in one direction, no cycles, no framework below them.

core at the ground; vision and export on core; pipeline, db and storage above; tasks and api
on top; synth, eval and bench are tools above the runtime that nothing in it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pid"
FRAMEWORKS = ("celery", "kombu", "fastapi", "starlette", "sqlalchemy", "httpx", "redis", "aioboto3")
#: What each package may import of pid (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "vision": {"core"},
    "export": {"core"},
    "storage": {"core", "settings"},
    "db": {"core", "settings"},
    "settings": {"core"},
    "pipeline": {"core", "vision", "export", "db", "storage", "settings"},
    "tasks": {"core", "vision", "export", "db", "storage", "settings", "pipeline"},
    "api": {"core", "vision", "export", "db", "storage", "settings", "pipeline", "tasks"},
    "synth": {"core", "vision", "export"},
    "eval": {"core", "vision", "export"},
}
TOOLS = ("synth", "eval", "bench")


def _module(path: Path) -> str:
    parts = ["pid", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> list[tuple[str, str, bool]]:
    """(importer, imported, at module level) for every import in src/pid."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            found.extend((_module(path), name, id(node) in top) for name in names)
    return found


def _package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


IMPORTS = _imports()


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = sorted(
        f"{importer} imports {name}"
        for importer, name, _ in IMPORTS
        if _package(importer) == package
        and name.startswith("pid.")
        and _package(name) not in ALLOWED[package] | {package}
    )
    assert wrong == []


@pytest.mark.parametrize("package", ["core", "vision", "export", "synth", "eval", "pipeline"])
def test_plain_libraries_import_no_framework(package: str) -> None:
    # pipeline may use SQLAlchemy (its repositories' sessions) but never Celery.
    banned = ("celery", "kombu") if package == "pipeline" else FRAMEWORKS
    wrong = sorted(
        f"{importer} imports {name}"
        for importer, name, _ in IMPORTS
        if _package(importer) == package and name.split(".")[0] in banned
    )
    assert wrong == []


def test_the_runtime_never_imports_the_tools() -> None:
    wrong = sorted(
        f"{importer} imports {name}"
        for importer, name, _ in IMPORTS
        if _package(importer) not in (*TOOLS, "cli")
        and name.startswith("pid.")
        and _package(name) in TOOLS
    )
    assert wrong == []


def test_no_import_cycles_not_even_through_imports_inside_functions() -> None:
    graph = nx.DiGraph()
    modules = {_module(path) for path in SRC.rglob("*.py")}
    for importer, name, _ in IMPORTS:
        target = name if name in modules else name.rsplit(".", 1)[0]
        if target in modules and target != importer and not importer.startswith(target + "."):
            graph.add_edge(importer, target)
    cycles = list(nx.simple_cycles(graph))
    assert cycles == []


def test_celery_is_imported_only_in_tasks_and_the_benchmarks() -> None:
    wrong = sorted(
        f"{importer} imports {name}"
        for importer, name, _ in IMPORTS
        if name.split(".")[0] in ("celery", "kombu")
        and _package(importer) not in ("tasks", "bench")
    )
    assert wrong == []
