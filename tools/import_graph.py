"""Import graph of a package and its circles, read from the source (nothing is imported).

Every `import` and `from ... import` counts wherever it stands: at module level, inside a function (the lazy
imports that keep TensorFlow out of a command until it needs it) or under `if TYPE_CHECKING:`. A lazy circle is
still a circle: it only waits for the call that closes it. `from a.b import c` is an edge to the module `a.b.c`
when there is one, else to `a.b`. Importing a submodule also runs its parent package's `__init__`; that implied
edge is not counted (else every package whose `__init__` re-exports a submodule would be a circle).

    python tools/import_graph.py digits lpasrn            # modules: prints cycles, exit status 1 if any
    python tools/import_graph.py digits --packages        # the same at the level of sub-packages
    python tools/import_graph.py digits --edges           # every edge, for reading
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Edge:
    """`source` imports `target` at `line`; `lazy` when the import is inside a function or TYPE_CHECKING."""

    source: str
    target: str
    line: int
    lazy: bool


def module_names(package: str, root: Path = REPO_ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module of `package` (a package is named by its `__init__.py`)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import node with whether it runs lazily (in a function body, or under `if TYPE_CHECKING:`)."""

    def walk(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, lazy
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, True)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from walk(child, True)
            else:
                yield from walk(child, lazy)

    return walk(tree, False)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def module_edges(package: str, root: Path = REPO_ROOT) -> list[Edge]:
    """The imports between modules of `package`."""
    modules = module_names(package, root)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _absolute(node, module, path.name == "__init__.py")
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a non-module attribute path
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.append(Edge(module, target, node.lineno, lazy))
    return edges


def package_edges(edges: Iterable[Edge], depth: int = 2) -> list[Edge]:
    """The same edges between sub-packages (`digits.training`, ...; a top-level module is its own node)."""
    collapsed = []
    for edge in edges:
        source, target = ".".join(edge.source.split(".")[:depth]), ".".join(edge.target.split(".")[:depth])
        if source != target:
            collapsed.append(Edge(source, target, edge.line, edge.lazy))
    return collapsed


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one node (a self-import is not recorded as an edge)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(start: str, graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, set()) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start]


def circles(edges: Iterable[Edge]) -> list[list[str]]:
    """The modules of each circle (strongly connected component: each reaches every other), sorted."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    return _strongly_connected(graph)


def find_cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """One shortest cycle per circle, e.g. `[a, b, c, a]`; a circle can hold more modules than that cycle."""
    edges = list(edges)
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    return [_shortest_cycle(component[0], graph, set(component)) for component in circles(edges)]


def describe_cycle(cycle: list[str], edges: Iterable[Edge]) -> str:
    """`a -> b (line 3) -> c (line 9, lazy) -> a (...)`: where each import of the cycle stands."""
    first: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        first.setdefault((edge.source, edge.target), edge)
    parts = [cycle[0]]
    for source, target in zip(cycle, cycle[1:]):
        edge = first[(source, target)]
        parts.append(f"{target} (line {edge.line}{', lazy' if edge.lazy else ''})")
    return " -> ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+", help="top-level packages, e.g. digits lpasrn")
    parser.add_argument(
        "--packages",
        dest="by_package",
        action="store_true",
        help="collapse modules into their sub-packages (digits.training, ...)",
    )
    parser.add_argument("--edges", action="store_true", help="also print every edge")
    args = parser.parse_args(argv)
    found = 0
    for package in args.packages:
        edges = module_edges(package)
        if args.by_package:
            edges = package_edges(edges)
        if args.edges:
            for edge in sorted(edges, key=lambda e: (e.source, e.target)):
                print(f"  {edge.source} -> {edge.target}{' (lazy)' if edge.lazy else ''}")
        cycles, components = find_cycles(edges), circles(edges)
        found += len(cycles)
        nodes = {e.source for e in edges} | {e.target for e in edges}
        print(
            f"{package}: {len(nodes)} {'sub-packages' if args.by_package else 'modules'} with imports, "
            f"{len(edges)} imports, {len(cycles)} cycle(s)"
        )
        for cycle, members in zip(cycles, components):
            print(f"  {describe_cycle(cycle, edges)}")
            if len(members) > len(cycle) - 1:
                print(f"    the circle holds {len(members)} modules: {', '.join(members)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
