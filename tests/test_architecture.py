"""The layering rules of README's "Layout", checked on the static import graph (every ``import`` in the tree).

Layers from the bottom; an import only points down (or within its own layer):

    kernel     mecopt.core, mecopt.schema, mecopt.spec, mecopt.registry, mecopt.tables, mecopt.cluster
    problems   mecopt.problems.*
    kernels    solvers.kernels.*          (numpy-only algorithms shared by envs, exact and heuristics)
    envs       mecopt.envs.*              (problems + kernels only)
    solvers    solvers.exact.*, solvers.heuristics.*, solvers.pyomo_backend, solvers (package)
    learners   learners.*
    front      mecopt.methods, mecopt.cli, mecopt.__main__, mecopt.sweep
    bench      bench.*

A test that walks the graph keeps these true; it also fails on any import cycle among the project's modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mecopt", "solvers", "learners", "bench")
LAYERS = ["kernel", "problems", "kernels", "envs", "solvers", "learners", "front", "bench"]
#: Layers that may import each other although they are side by side in the list (none today).
SIDEWAYS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


KERNEL = ("mecopt", "mecopt.core", "mecopt.schema", "mecopt.spec", "mecopt.registry", "mecopt.tables", "mecopt.cluster")
FRONT = ("mecopt.methods", "mecopt.cli", "mecopt.__main__", "mecopt.sweep")


def layer(mod: str) -> str:
    if mod in KERNEL:
        return "kernel"
    if mod.startswith("mecopt.problems"):
        return "problems"
    if mod.startswith("solvers.kernels"):
        return "kernels"
    if mod.startswith("mecopt.envs"):
        return "envs"
    if mod == "solvers" or mod.startswith("solvers."):
        return "solvers"
    if mod.startswith("learners"):
        return "learners"
    if mod in FRONT:
        return "front"
    if mod.startswith("bench"):
        return "bench"
    raise AssertionError(f"module {mod} has no layer: add it to tests/test_architecture.py and README's Layout")


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[module_name(path)] = path
    return out


def imports_of(path: Path, mod: str, known: set[str]) -> set[str]:
    """Every project module that ``path`` imports (top-level or inside functions; ``from a import b`` counts b if
    b is a module, else a)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg_parts = package.split(".")
                pkg_parts = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                base = ".".join([*pkg_parts, base] if base else pkg_parts)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != mod:
                found.add(n)
    return found


def third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


MODULES = project_modules()
GRAPH = {m: imports_of(p, m, set(MODULES)) for m, p in MODULES.items()}


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_point_down(mod: str) -> None:
    me = LAYERS.index(layer(mod))
    bad = [
        f"{mod} ({layer(mod)}) imports {dep} ({layer(dep)})"
        for dep in sorted(GRAPH[mod])
        if LAYERS.index(layer(dep)) > me and (layer(mod), layer(dep)) not in SIDEWAYS
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    # package __init__ files are imported implicitly by their submodules; a cycle through them is a real cycle too,
    # but "package imports its own submodule" (solvers -> solvers.x) is not an edge back unless x imports solvers.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if layer(m) in ("kernel", "problems", "kernels", "envs")))
def test_low_layers_pull_in_no_backend(mod: str) -> None:
    """Problems, kernels and envs import no solver back-end (Pyomo), no solver layer and no learner."""
    third = third_party_imports(MODULES[mod])
    assert "pyomo" not in third and "pyscipopt" not in third and "highspy" not in third, f"{mod} imports a back-end"
    assert "torch" not in third, f"{mod} imports torch"
    ups = [d for d in GRAPH[mod] if layer(d) in ("solvers", "learners", "front", "bench")]
    assert not ups, f"{mod} imports {ups}"


def test_kernels_are_numpy_only() -> None:
    allowed = {"numpy", "math", "dataclasses", "typing", "__future__", "collections", "functools", "itertools", "heapq"}
    for mod, path in MODULES.items():
        if layer(mod) == "kernels":
            extra = third_party_imports(path) - allowed - {"mecopt", "solvers"}
            assert not extra, f"{mod} imports {extra}"


def test_heuristics_never_import_exact() -> None:
    for mod in MODULES:
        if mod.startswith("solvers.heuristics"):
            bad = [d for d in GRAPH[mod] if d.startswith("solvers.exact")]
            assert not bad, f"{mod} imports {bad}"


def test_the_graph_sees_imports() -> None:
    """Guard against a walker that finds nothing (a test that cannot fail is a defect)."""
    assert "mecopt.core" in GRAPH["mecopt.schema"]
    assert "mecopt.spec" in GRAPH["solvers"]
    assert any(d.startswith("learners") for d in GRAPH["mecopt.methods"])
    fake = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(AssertionError, match="cycle"):
        saved = dict(GRAPH)
        try:
            GRAPH.clear()
            GRAPH.update(fake)
            test_no_import_cycle()
        finally:
            GRAPH.clear()
            GRAPH.update(saved)
