"""The layout of zest_core (issue 10): layers import one way, no cycles, no UI libraries in the engine.

Layers, bottom to top (a module may import its own layer and the layers below it, never above):

    errors, _shared → cache → pipeline → sources, methods → explain → zoo → studies, hub → figures → cli

Streamlit is imported only by ``dashboard/`` and ``pages/``; Plotly only by ``zest_core.figures`` and
the dashboard.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zest_core"
LAYERS = {
    "errors": 0, "_shared": 0, "cache": 1, "pipeline": 2, "sources": 3, "methods": 3,
    "explain": 4, "zoo": 5, "studies": 6, "hub": 6, "figures": 7, "cli": 8, "__init__": 9,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every zest_core module ``path`` imports, function-level imports included (TYPE_CHECKING excluded)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    skipped = {
        id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
        and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("zest_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("zest_core"):
                continue
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def test_every_subpackage_has_a_layer():
    for path in PACKAGE.iterdir():
        if path.name.startswith(".") or path.name == "__pycache__":
            continue
        assert path.stem in LAYERS, f"{path}: add it to the layer table of this test and of the README"


def test_layers_import_only_downwards():
    modules = engine_modules()
    wrong = []
    for name, path in modules.items():
        for target in imports_of(path):
            if target not in modules:
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports that run upwards:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    modules = engine_modules()
    graph = {
        name: {t for t in imports_of(path) if t in modules and t != name and not name.startswith(t + ".")}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle; the modules under it must not
    # import the package back, which is what the graph keeps.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("library, allowed", [
    ("streamlit", ("dashboard", "pages", "app.py")),
    ("plotly", ("dashboard", "pages", "app.py", "zest_core/figures")),
])
def test_ui_libraries_stay_out_of_the_engine(library, allowed):
    offenders = []
    for path in [*PACKAGE.rglob("*.py")]:
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(allowed):
            continue
        tree = ast.parse(path.read_text())
        names = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        names |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if library in names:
            offenders.append(relative)
    assert not offenders, f"{library} imported by {offenders}"


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The checker itself: a pipeline module importing the zoo is caught."""
    fake = tmp_path / "zest_core" / "pipeline" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..zoo import build\n")
    global ROOT
    saved = ROOT
    try:
        ROOT = tmp_path
        assert "zest_core.zoo.build" in imports_of(fake)
        assert layer_of("zest_core.zoo.build") > layer_of(module_name(fake))
    finally:
        ROOT = saved
