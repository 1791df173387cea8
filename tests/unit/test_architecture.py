"""The house rules the layer contract (lint-imports) does not cover: no import cycle anywhere,
every document the code points to is in the repository, and no machine-specific path."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "vaelab"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """vaelab modules ``path`` imports, at module level or inside functions (lazy imports count)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found |= {t for t in targets if t in modules}
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, modules) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_vaelab_modules():
    graph = import_graph()
    assert len(graph) > 40 and graph["vaelab.runs.pipeline"]  # the graph is really built
    # a package's __init__ importing its own modules is its job; a cycle through it is not
    assert cycles({m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}) == []


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


DOC_REFERENCE = re.compile(r"\bdocs/[\w./-]+\.md")


def test_every_document_the_code_refers_to_is_in_the_repository():
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "conf").rglob("*.yaml"), *(REPO / "benchmarks").rglob("*.py"), REPO / "README.md"]
    referenced = {ref for path in sources for ref in DOC_REFERENCE.findall(path.read_text())}
    assert referenced, "no docs/ reference found: the pattern is broken"
    assert sorted(ref for ref in referenced if not (REPO / ref).is_file()) == []
    # the design briefs outside the repository (shared/design/NOTES.md, ARCHITECTURE.md) are never the reference
    pattern = re.compile(r"\b(NOTES|ARCHITECTURE)\.md|shared/design")
    outside = [str(p.relative_to(REPO)) for p in sources if pattern.search(p.read_text())]
    assert outside == [], "design documents are referred to by their docs/ path"


def test_no_machine_specific_paths_in_the_repository():
    tracked = [*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "conf").rglob("*.yaml"), REPO / ".ci" / "run"]
    offenders = [str(p.relative_to(REPO)) for p in tracked if p != Path(__file__) and re.search(r"/work/|/root/|/home/\w", p.read_text())]
    assert offenders == []
