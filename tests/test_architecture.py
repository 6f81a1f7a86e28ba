"""The layout (issues 10 and 21): layers import one way, no cycles, the app above the engine, no UI libraries below.

Layers of ``zest_core``, bottom to top (a module may import its own layer and the layers below it):

    errors, _shared → cache → pipeline → sources, methods → explain → zoo → studies, hub → figures → cli

Above the engine:

- ``dashboard/`` imports the engine's public API only: ``zest_core`` and its subpackages
  (``zest_core.explain``, ``zest_core.zoo``, ...), never a module inside one, never a private one;
- ``pages/`` import ``dashboard`` and that public API, never each other;
- nothing in ``zest_core`` imports ``dashboard``, ``pages`` or ``app``.

The import graph is read from the source with ``ast``: every import, function-level ones included,
and those under ``if TYPE_CHECKING:`` too (a type-only cycle is a cycle in the design, and the day an
annotation is evaluated, a runtime one). ``from P import name`` is an edge to the module ``P.name``
when there is one, else to ``P`` itself, whose ``__init__`` must have run: an edge to one's own
parent package is kept, since a name read from a package's ``__init__`` while that package is
importing you is a runtime cycle.

Streamlit is imported only by ``dashboard/``, ``pages/`` and ``app.py``; Plotly only by
``zest_core.figures`` and those.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = "zest_core"
APP = ("dashboard", "pages", "app")
LAYERS = {
    "errors": 0, "_shared": 0, "cache": 1, "pipeline": 2, "sources": 3, "methods": 3,
    "explain": 4, "zoo": 5, "studies": 6, "hub": 6, "figures": 7, "cli": 8, "__init__": 9,
}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a module or package of the graph), at ``line``; ``type_only`` under TYPE_CHECKING."""

    source: str
    target: str
    line: int
    type_only: bool

    def __str__(self) -> str:
        return f"{self.source} imports {self.target} (line {self.line}{', type-only' if self.type_only else ''})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules_under(root: Path) -> dict[str, Path]:
    """Every Python module of the project at ``root``: the engine, the dashboard, the pages and app.py."""
    files = [*(root / ENGINE).rglob("*.py"), *(root / "dashboard").rglob("*.py"), *(root / "pages").glob("*.py")]
    if (root / "app.py").is_file():
        files.append(root / "app.py")
    return {module_name(path, root): path for path in files if "__pycache__" not in path.parts}


def imports_of(path: Path, root: Path, modules: dict[str, Path]) -> list[Edge]:
    """Every import of ``path`` that names a module or package of ``modules``, resolved as the docstring says."""
    tree = ast.parse(path.read_text())
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    type_only = {
        id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
        and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)
    }
    edges: list[Edge] = []

    def add(target: str, node: ast.AST) -> None:
        while target and target not in modules:  # `import a.b.c` of a name inside a module: the module
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.append(Edge(name, target, node.lineno, id(node) in type_only))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                # A package's __init__ that binds the name (``from .audit import audit``) gives that
                # object, not the submodule of the same name.
                is_module = submodule in modules and alias.name not in bound_names(modules.get(target))
                add(submodule if is_module else target, node)
    return edges


def bound_names(path: Path | None) -> set[str]:
    """The names a package's ``__init__`` binds at its top level (imports, assignments, definitions)."""
    if path is None or path.name != "__init__.py":
        return set()
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            continue  # `from . import reuse`: the name is the submodule itself
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def import_graph(root: Path) -> list[Edge]:
    modules = modules_under(root)
    return [edge for path in modules.values() for edge in imports_of(path, root, modules)]


def top(module: str) -> str:
    return module.split(".")[0]


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


# --- the rules, each a list of what breaks it (empty: kept) ------------------------------------------------


def upward_imports(root: Path) -> list[str]:
    return [str(e) for e in import_graph(root)
            if top(e.source) == ENGINE and top(e.target) == ENGINE and layer_of(e.target) > layer_of(e.source)]


def engine_imports_of_the_app(root: Path) -> list[str]:
    return [str(e) for e in import_graph(root) if top(e.source) == ENGINE and top(e.target) in APP]


def is_public(module: str) -> bool:
    """``zest_core`` or one of its subpackages, not private: the API the app may use."""
    parts = module.split(".")
    return parts[0] == ENGINE and len(parts) <= 2 and not any(p.startswith("_") for p in parts[1:])


def dashboard_violations(root: Path) -> list[str]:
    return [str(e) for e in import_graph(root) if top(e.source) == "dashboard" and (
        (top(e.target) == ENGINE and not is_public(e.target)) or top(e.target) in ("pages", "app"))]


def page_violations(root: Path) -> list[str]:
    return [str(e) for e in import_graph(root) if top(e.source) == "pages" and (
        (top(e.target) == ENGINE and not is_public(e.target)) or top(e.target) in ("pages", "app"))]


def import_cycles(root: Path) -> list[str]:
    """Every cycle a depth-first search meets (each once), type-only edges included."""
    graph: dict[str, set[str]] = {name: set() for name in modules_under(root)}
    for edge in import_graph(root):
        graph[edge.source].add(edge.target)
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


# --- the project keeps them ---------------------------------------------------------------------------------


def test_every_subpackage_has_a_layer():
    for path in (ROOT / ENGINE).iterdir():
        if path.name.startswith(".") or path.name == "__pycache__":
            continue
        assert path.stem in LAYERS, f"{path}: add it to the layer table of this test and of the README"


def test_layers_import_only_downwards():
    wrong = upward_imports(ROOT)
    assert not wrong, "imports that run upwards:\n" + "\n".join(sorted(wrong))


def test_the_engine_never_imports_the_app():
    wrong = engine_imports_of_the_app(ROOT)
    assert not wrong, "engine imports of dashboard, pages or app:\n" + "\n".join(sorted(wrong))


def test_the_dashboard_uses_only_the_engines_public_api():
    wrong = dashboard_violations(ROOT)
    assert not wrong, "dashboard imports outside zest_core's public API:\n" + "\n".join(sorted(wrong))


def test_pages_use_only_the_dashboard_and_the_public_api():
    wrong = page_violations(ROOT)
    assert not wrong, "page imports outside dashboard and zest_core's public API:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_type_only_ones_included():
    cycles = import_cycles(ROOT)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("library, allowed", [
    ("streamlit", ("dashboard", "pages", "app.py")),
    ("plotly", ("dashboard", "pages", "app.py", "zest_core/figures")),
])
def test_ui_libraries_stay_out_of_the_engine(library, allowed):
    offenders = []
    for path in (ROOT / ENGINE).rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(allowed):
            continue
        tree = ast.parse(path.read_text())
        names = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if library in names:
            offenders.append(relative)
    assert not offenders, f"{library} imported by {offenders}"


# --- the checker itself: faults planted in a temporary tree are caught ----------------------------------


def plant(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("zest_core", "zest_core/pipeline", "zest_core/cache", "zest_core/zoo", "zest_core/studies",
                    "dashboard"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


CLEAN = {
    "zest_core/errors.py": "class ZestError(ValueError): ...\n",
    "zest_core/pipeline/__init__.py": "from .a import f\n",
    "zest_core/pipeline/a.py": "from ..errors import ZestError\n\ndef f():\n    return ZestError\n",
    "zest_core/zoo/build.py": "from ..pipeline import f\n",
    "dashboard/services.py": "from zest_core.pipeline import f\n",
    "pages/1_Page.py": "from dashboard import services\nfrom zest_core import errors\n",
}


def test_a_clean_planted_tree_passes_every_rule(tmp_path):
    root = plant(tmp_path, CLEAN)
    assert upward_imports(root) == engine_imports_of_the_app(root) == import_cycles(root) == []
    assert dashboard_violations(root) == page_violations(root) == []


def test_a_runtime_cycle_through_a_package_init_is_caught(tmp_path):
    # pipeline/__init__ imports a, and a reads a name that pipeline/__init__ defines: a real cycle.
    root = plant(tmp_path, {**CLEAN, "zest_core/pipeline/a.py": "from zest_core.pipeline import g\n",
                            "zest_core/pipeline/__init__.py": "from .a import f\ng = 1\n"})
    assert import_cycles(root) == ["zest_core.pipeline → zest_core.pipeline.a → zest_core.pipeline"]


def test_a_type_only_cycle_is_caught(tmp_path):
    root = plant(tmp_path, {
        **CLEAN,
        "zest_core/studies/p.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .q import Q\n",
        "zest_core/studies/q.py": "from .p import P\n",
    })
    assert import_cycles(root) == ["zest_core.studies.p → zest_core.studies.q → zest_core.studies.p"]


def test_an_upward_import_is_caught(tmp_path):
    root = plant(tmp_path, {**CLEAN, "zest_core/cache/store.py": "def load():\n    from ..zoo import build\n"})
    assert upward_imports(root) == ["zest_core.cache.store imports zest_core.zoo.build (line 2)"]


def test_an_engine_import_of_the_dashboard_is_caught(tmp_path):
    root = plant(tmp_path, {**CLEAN, "zest_core/pipeline/b.py": "import dashboard.services\n"})
    assert engine_imports_of_the_app(root) == ["zest_core.pipeline.b imports dashboard.services (line 1)"]


def test_the_app_reaching_inside_the_engine_is_caught(tmp_path):
    root = plant(tmp_path, {
        **CLEAN,
        "dashboard/services.py": "from zest_core.pipeline.a import f\n",
        "pages/2_Other.py": "from zest_core._shared import x\n",
    })
    (root / "zest_core" / "_shared").mkdir()
    (root / "zest_core" / "_shared" / "__init__.py").write_text("x = 1\n")
    assert dashboard_violations(root) == ["dashboard.services imports zest_core.pipeline.a (line 1)"]
    assert page_violations(root) == ["pages.2_Other imports zest_core._shared (line 1)"]
