"""The shape of the code: imports run one way without cycles, and every list of chain families derives
from the one registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portfolio", "chains")


def _parse(path: Path) -> ast.Module:
    """``ast.parse`` of a file. CPython 3.11 keeps the AST converter's recursion depth in
    shared state, so a parse running at the same time in another thread of the test process (a live
    server or an in-process worker of an earlier test) can fail this one with "AST constructor
    recursion depth mismatch" (gh-106905); such a parse is simply run again."""
    for attempt in range(3):
        try:
            return ast.parse(path.read_text(), str(path))
        except SystemError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports, counting imports inside functions too (a local import is
    still a dependency; it only hides a cycle)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(_parse(path)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _import_graph()
    # A package's __init__ re-exporting its children is not a dependency of the children on it.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_services_and_views_never_import_the_tasks():
    graph = _import_graph()
    importers = sorted(name for name, targets in graph.items() if "portfolio.tasks" in targets)
    assert importers == [], importers


def test_chains_never_imports_django():
    for path in (ROOT / "chains").rglob("*.py"):
        tree = _parse(path)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "django" or n.startswith(("django.", "portfolio")) for n in names), path


def test_every_task_sent_by_name_is_a_registered_task():
    from celery import current_app

    from portfolio import jobs

    current_app.loader.import_default_modules()  # as jobs.enqueue does in a web process
    missing = [name for name in jobs.ALL if name not in current_app.tasks]
    assert missing == []


def test_every_list_of_families_derives_from_the_registry():
    from pydantic import TypeAdapter, ValidationError

    from chains.registry import FAMILIES
    from devnet.run import devnets
    from portfolio.celery import app
    from portfolio.models import Chain, Wallet
    from portfolio.schemas import Family

    families = set(FAMILIES)
    assert {v for v, _ in Chain._meta.get_field("family").choices} == families
    assert {v for v, _ in Wallet._meta.get_field("family").choices} == families
    assert {q.name for q in app.conf.task_queues} == families | {"default", "history"}
    assert set(devnets()) == families
    for family in families:
        assert TypeAdapter(Family).validate_python(family) == family
    with pytest.raises(ValidationError):
        TypeAdapter(Family).validate_python("cosmos")
