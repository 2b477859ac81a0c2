"""The layout's rules, read from the source: the core never imports Ray, no module imports
itself back through others, and the store sits below every area (docs/architecture.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("hcp", "actors", "serve_apps", "hcp_cli")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, lazily or not; ``from pkg import sub`` names ``pkg.sub``."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if _exists(sub) else base


def _exists(module: str) -> bool:
    p = ROOT.joinpath(*module.split("."))
    return p.is_dir() or p.with_suffix(".py").is_file()


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for tree in TREES:
        for path in (ROOT / tree).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # frozen; tests/unit/test_migrations.py holds them to importing nothing
            mod = _module(path)
            graph[mod] = {t for t in _imports(path) if t.split(".")[0] in TREES and t != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    assert len(graph) > 250  # the walk read the trees
    assert _cycles(graph) == []


def test_the_core_never_imports_ray() -> None:
    offenders = sorted(
        f"{_module(p)} -> {t}"
        for p in (ROOT / "hcp").rglob("*.py")
        for t in _imports(p)
        if t.split(".")[0] == "ray"
    )
    assert offenders == []


def test_the_store_sits_below_every_area() -> None:
    """The store holds the engine, the models and the migrations; each area owns its
    repository, so the store imports no area (the fleet's repository is hcp.fleet.repository)."""
    graph = _graph()
    # The PostgreSQL breaker guards the engine's connections (hcp.store.db).
    allowed = {"hcp.clock", "hcp.errors", "hcp.resilience.registry"}
    above = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m == "hcp.store" or m.startswith("hcp.store.")
        for t in targets
        if not (t == "hcp.store" or t.startswith("hcp.store.") or t in allowed)
    )
    assert above == []
