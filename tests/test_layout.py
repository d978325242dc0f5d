"""The package's layering: an acyclic import graph, dependencies pointing inwards only.

method core <- pipelines <- api <- batch engine (runner) / evaluation <- CLI and web app. Every module
under src/attentive_eraser is parsed with ``ast``; its imports (module-level and inside functions,
relative ones resolved; those under ``if TYPE_CHECKING:`` are not run, so not counted) are its edges. A
package's ``__init__`` importing its submodules (a re-export) is an edge like any other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "attentive_eraser"

#: the inner layers, which must never reach the command line or the web app
INNER = (
    "runner",
    "evaluation",
    "settings",
    "imaging",
    "runtime",
    "core",
    "families",
    "pipelines",
    "removal",
    "api",
)
#: what the method core and the image functions must not reach
OUTER = ("api", "cli", "app", "runner", "evaluation", "demo", "training")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        if "demo_model" not in path.parts
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (anywhere in the module), skipping ``if TYPE_CHECKING:`` bodies."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """``(package modules, third-party top-level names)`` that module ``name`` imports."""
    inner, outer = set(), set()
    is_package = path.name == "__init__.py"
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from pkg import sub`` imports the submodule ``pkg.sub``; ``from pkg import name`` imports pkg
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                # ``import a.b.c`` of a name that is no module (an attribute): its nearest module
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    inner.add(target)
            else:
                outer.add(target.split(".")[0])
    return inner, outer


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    edges, external = {}, {}
    for name, path in modules.items():
        edges[name], external[name] = _imports(name, path, modules)
    return edges, external


def _in(module: str, layers: tuple[str, ...]) -> bool:
    return any(module == f"{PACKAGE}.{layer}" or module.startswith(f"{PACKAGE}.{layer}.") for layer in layers)


def _path(edges: dict[str, set[str]], start: str, goal: object) -> list[str] | None:
    """The shortest import chain from ``start`` to a module for which ``goal(module)`` holds, if any."""
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(edges.get(module, ())):
            if goal(target):  # type: ignore[operator]
                chain = [target, module]
                while parents[chain[-1]] is not None:
                    chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            if target not in parents:
                parents[target] = module
                queue.append(target)
    return None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    cycles = []
    for component in components:
        members = set(component)
        inside = {module: edges[module] & members for module in component}
        first = component[0]
        cycles.append(_path(inside, first, lambda module, first=first: module == first) or component)
    return cycles


def test_the_graph_covers_the_package(graph: tuple[dict[str, set[str]], dict[str, set[str]]]) -> None:
    edges, _ = graph
    assert {f"{PACKAGE}.cli", f"{PACKAGE}.runner", f"{PACKAGE}.api", f"{PACKAGE}.core.attention"} <= set(
        edges
    )
    assert f"{PACKAGE}.cli.options" in edges[f"{PACKAGE}.cli.remove"]
    assert f"{PACKAGE}.api" in edges[f"{PACKAGE}.runner.run"]  # a function-level import counts


def test_no_import_cycle(graph: tuple[dict[str, set[str]], dict[str, set[str]]]) -> None:
    edges, _ = graph
    cycles = _cycles(edges)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_inner_layers_never_reach_the_cli_or_the_app(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    edges, _ = graph
    offending = []
    for module in sorted(edges):
        if _in(module, INNER):
            chain = _path(edges, module, lambda target: _in(target, ("cli", "app")))
            if chain is not None:
                offending.append(" -> ".join(chain))
    assert not offending, "inner layers importing the CLI or the app: " + "; ".join(offending)


def test_core_and_imaging_import_no_outer_layer(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    edges, _ = graph
    offending = []
    for module in sorted(edges):
        if _in(module, ("core", "imaging")):
            chain = _path(edges, module, lambda target: _in(target, OUTER))
            if chain is not None:
                offending.append(" -> ".join(chain))
    assert not offending, "core/imaging importing an outer layer: " + "; ".join(offending)


#: what each middle layer may not reach (core <- families <- pipelines <- removal <- api)
BELOW = {
    "families": ("pipelines", "removal", "api", "runner", "selection"),
    "removal": ("api", "runner", "evaluation"),
    "pipelines": ("removal", "api", "runner", "selection"),
}


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_the_removal_path_and_the_family_seam_point_inwards(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]], layer: str
) -> None:
    edges, _ = graph
    assert any(_in(module, (layer,)) for module in edges), f"no module of {layer} in the graph"
    offending = []
    for module in sorted(edges):
        if _in(module, (layer,)):
            chain = _path(edges, module, lambda target: _in(target, BELOW[layer]))
            if chain is not None:
                offending.append(" -> ".join(chain))
    assert not offending, f"{layer} reaching an outer layer: " + "; ".join(offending)


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


@pytest.mark.parametrize(
    ("layers", "forbidden"),
    [(("imaging",), "torch"), (("runner", "evaluation", "settings", "runtime", "imaging"), "click")],
)
def test_third_party_imports_stay_out_of_a_layer(
    layers: tuple[str, ...], forbidden: str, graph: tuple[dict[str, set[str]], dict[str, set[str]]]
) -> None:
    edges, external = graph
    offending = [
        f"{module} (via {' -> '.join(_path(edges, start, lambda target, m=module: target == m) or [start])})"
        for start in sorted(edges)
        if _in(start, layers)
        for module in sorted(_reachable(edges, start))
        if forbidden in external[module]
    ]
    assert not offending, f"{forbidden} imported by: " + "; ".join(offending)


@pytest.mark.slow
def test_importing_the_batch_engine_loads_no_click_and_no_torch() -> None:
    code = "import sys, attentive_eraser.runner; print(sorted({'click', 'torch'} & set(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
