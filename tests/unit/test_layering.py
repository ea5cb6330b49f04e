"""The package's shape, checked from the imports themselves (DESIGN.md, "Layout").

Why a test: the layers are what lets a newcomer follow a run (cli -> fleet -> aws) and a
publication (ingest -> summarize -> documents -> write) one way. An import that points
back compiles and passes every other test, so only a check of the import graph keeps the
shape from eroding. Imports under `if TYPE_CHECKING:` count too: they are dependencies of
the code's meaning even when they cost nothing at run time.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "src" / "instbench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every `instbench...` (and third-party top-level) name imported by one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


AGENT = ("instbench.agent", "instbench.benchmarks")
"""One unit: the zipapp that runs on instances (DESIGN.md: they import each other only)."""

MODULES = {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _unit(module: str) -> str | None:
    """The layer a module belongs to: `instbench.X` for a subpackage or top-level module."""
    parts = module.split(".")
    if parts[0] != "instbench" or len(parts) < 2:
        return None
    candidate = ".".join(parts[:2])
    if candidate in AGENT:
        return "instbench.agent+benchmarks"
    known = any(m == candidate or m.startswith(candidate + ".") for m in MODULES)
    return candidate if known else None


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imported in MODULES.items():
        src = _unit(module)
        if src is None:
            continue
        graph[src]
        for name in imported:
            dst = _unit(name)
            if dst is not None and dst != src:
                graph[src].add(dst)
    return graph


def _importers(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, imported in MODULES.items()
        if module == prefix or module.startswith(prefix + ".")
        for name in imported
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_aws_imports_neither_fleet_nor_analysis_nor_report() -> None:
    forbidden = ("instbench.fleet", "instbench.analysis", "instbench.report", "instbench.cli")
    assert _importers("instbench.aws", forbidden) == []


def test_the_fleet_never_sees_the_sdk() -> None:
    assert _importers("instbench.fleet", ("boto3", "botocore", "instbench.analysis")) == []


def test_only_the_session_builds_clients() -> None:
    users = {m.split(" imports ")[0] for m in _importers("instbench", ("boto3",))}
    assert users <= {"instbench.aws.session"}


def test_nothing_imports_the_cli() -> None:
    outside = [
        line
        for line in _importers("instbench", ("instbench.cli",))
        if not line.startswith("instbench.cli")
    ]
    assert outside == []


def test_no_package_imports_another_in_a_circle() -> None:
    graph = _unit_graph()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"import circle between packages: {' -> '.join(exc.args[1])}")


def test_no_module_imports_another_in_a_circle() -> None:
    graph = {
        module: {n for n in imported if n in MODULES and n != module}
        for module, imported in MODULES.items()
    }
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:  # pragma: no cover
        pytest.fail(f"import circle between modules: {' -> '.join(exc.args[1])}")


def test_the_agent_imports_only_the_standard_library_and_itself() -> None:
    import sys

    allowed = (*AGENT, "__future__", "instbench.__version__")
    bad = [
        f"{module} imports {name}"
        for module, imported in MODULES.items()
        if module.startswith(("instbench.agent", "instbench.benchmarks"))
        for name in imported
        if not name.startswith(allowed)
        and name.split(".")[0] not in sys.stdlib_module_names
        and name != "instbench"
    ]
    assert bad == []


PUBLICATION_STAGES = (
    ("instbench.analysis.ingest", "instbench.analysis.previous"),
    ("instbench.analysis.summarize", "instbench.analysis.aggregate", "instbench.analysis.windows"),
    ("instbench.analysis.documents",),
    ("instbench.analysis.write",),
    ("instbench.analysis.publish",),
)
"""A publication's stages in the order they run (publish.py runs them)."""


def test_a_publication_runs_one_way() -> None:
    """No stage imports a later one: each takes the previous one's result, never calls back."""
    back = []
    for i, stage in enumerate(PUBLICATION_STAGES):
        later = tuple(m for s in PUBLICATION_STAGES[i + 1 :] for m in s)
        for prefix in stage:
            back += _importers(prefix, later)
    assert back == []
