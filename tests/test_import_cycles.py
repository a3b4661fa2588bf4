"""No import circle inside streamal: the modules form layers, not loops.

The graph has an edge from each module to every streamal module it imports at module
level (imports inside functions, and those under ``if TYPE_CHECKING:``, are left out:
they run later or never). Importing a submodule runs its package's ``__init__`` first,
so a module also depends on the packages above what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import streamal

ROOT = Path(streamal.__file__).parent


def _name(path: Path) -> str:
    parts = ["streamal", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(tree: ast.Module) -> list[str]:
    found: list[str] = []
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                body += node.body + node.orelse
        elif isinstance(node, ast.Try):
            body += node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                body += handler.body
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the streamal modules (and their packages) it imports at module level."""
    paths = {_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges: set[str] = set()
        for imported in _module_level_imports(ast.parse(path.read_text())):
            parts = imported.split(".")
            for i in range(2, len(parts) + 1):  # the packages on the way, then the module
                target = ".".join(parts[:i])
                if target in paths and target != name and not name.startswith(f"{target}."):
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path that ends where it starts, or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_streamal() -> None:
    graph = import_graph()
    assert "streamal.core.learner" in graph and graph["streamal.core.learner"]
    assert find_cycle(graph) == []
