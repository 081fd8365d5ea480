"""Layers run one way, read from the source's own imports (the `ast` of every file, so an import
inside a function counts as much as one at the top; nothing is imported to find out).

    gateway/    the edge and the kernel; imports `resolvers/` only in its composition roots,
                which assemble the schema and hand it to the app
    resolvers/  the GraphQL types and resolvers; import the kernel (gateway/kernel/) and the rest
                of `gateway/` they need
and no import circle spans `gateway/` and `resolvers/`, or joins modules of `gateway/events/`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "resolvers")
#: the only modules of gateway/ that may import resolvers/: they build the schema and the app
COMPOSITION_ROOTS = frozenset({"gateway.cli", "gateway.sandbox"})


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module of ours that `name` imports, at any depth of its code (`from a import b` is
    module `a.b` when that is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import gateway.events.bus as bus` and the like
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def describe(component: set[str], edges: dict[str, set[str]]) -> str:
    return "\n  ".join(f"{a} -> {b}" for a in sorted(component) for b in sorted(edges[a] & component))


def test_the_reader_sees_the_whole_tree() -> None:
    """Guards the other tests against passing on an empty or misread tree."""
    edges = graph()
    assert {"gateway.app", "gateway.cli", "gateway.sandbox", "gateway.events.ingress", "resolvers.facilities"} <= edges.keys()
    assert sum(map(len, edges.values())) > 200
    assert any(in_package(target, "gateway") for name in edges if in_package(name, "resolvers") for target in edges[name]), \
        "resolvers/ stand on gateway/"


def test_only_the_composition_roots_import_resolvers() -> None:
    edges = graph()
    wrong = sorted(f"{name} -> {target}" for name, targets in edges.items()
                   if in_package(name, "gateway") and name not in COMPOSITION_ROOTS
                   for target in targets if in_package(target, "resolvers"))
    assert not wrong, ("gateway/ imports resolvers/ only in its composition roots "
                       f"({', '.join(sorted(COMPOSITION_ROOTS))}); move what both need into gateway/kernel/:\n  "
                       + "\n  ".join(wrong))


def test_no_import_circle_between_gateway_and_resolvers() -> None:
    edges = graph()
    spanning = [c for c in circles(edges)
                if any(in_package(m, "gateway") for m in c) and any(in_package(m, "resolvers") for m in c)]
    assert not spanning, "import circles across gateway/ and resolvers/:\n  " + "\n\n  ".join(
        describe(c, edges) for c in spanning)


def test_no_import_circle_among_the_event_path() -> None:
    edges = graph()
    tangled = [c for c in circles(edges) if sum(in_package(m, "gateway.events") for m in c) > 1]
    assert not tangled, "import circles joining modules of gateway/events/:\n  " + "\n\n  ".join(
        describe(c, edges) for c in tangled)
