"""The library is a one-way stack: no import cycle (function-local imports included), no UI imports."""

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "eipviz"
# Where an import inside a function is the point: the CLI imports per command so light commands start
# fast; quiet.py imports Keras while stderr is silenced; data.py needs Keras only for its download
# fallback (the CLI's parser imports it); the zoo imports its Keras builders only to build a model, so that
# reading a spec (submitting a run) needs no Keras; backend-only modules load on their backend.
LOCAL_IMPORTS_ALLOWED = {"eipviz.cli", "eipviz.quiet", ("eipviz.data", "keras"),
                         ("eipviz.zoo", "eipviz.zoo.architectures")}
BACKEND_ONLY = {"tensorflow", "jax", "torch"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, imported inside a function) for every import statement in the file.

    ``from package import submodule`` counts as importing the submodule (its package's ``__init__``
    runs first in any case, so an edge to the package would be a cycle by definition).
    """
    found = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        local = node not in tree.body
        if isinstance(node, ast.Import):
            found += [(alias.name, local) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule if submodule in MODULES else node.module, local))
    return found


def graph() -> dict[str, set[str]]:
    return {name: {imported for imported, _ in imports_of(path) if imported in MODULES and imported != name}
            for name, path in MODULES.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, trail + [nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_library_has_no_import_cycle_even_through_function_local_imports():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()) or [])


def test_imports_sit_at_the_top_except_where_start_up_time_or_the_backend_needs_them():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for imported, local in imports_of(path):
            allowed = (name in LOCAL_IMPORTS_ALLOWED or (name, imported) in LOCAL_IMPORTS_ALLOWED
                       or name.startswith("eipviz.cli."))  # each command imports per command, like the package
            if local and not allowed and imported.split(".")[0] not in BACKEND_ONLY:
                offenders.append(f"{name} imports {imported} inside a function")
    assert not offenders, offenders


def test_the_library_never_imports_streamlit():
    users = [module_name(p) for p in PACKAGE.rglob("*.py") if any(
        imported.split(".")[0] == "streamlit" for imported, _ in imports_of(p))]
    assert not users, users


def test_the_shipping_pipeline_is_not_imported_at_run_time():
    """Reading shipped weights must not pull in the maintainers' pipeline (it evaluates and writes)."""
    runtime = {name: edges for name, edges in graph().items()
               if name != "eipviz.shipping" and not name.startswith("eipviz.cli")}
    assert not [name for name, edges in runtime.items() if "eipviz.shipping" in edges]
