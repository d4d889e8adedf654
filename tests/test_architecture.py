"""The layer rules of the architecture, checked on the import graph of the source tree.

Every ``import`` counts, including those inside functions: a function-level import is still
a dependency, it only hides it from a reader. The rules (``docs/architecture.md``):

- ``sheets/`` is a library: it imports nothing of ``portal``, ``jobs`` or Flask;
- ``portal/services/`` and ``portal/models/`` import no jobs, views, API or CLI
  (models import no services either); services announce events, jobs subscribe;
- ``jobs/`` imports no views or API;
- no import cycle between modules;
- no module outside models and migrations is over 600 lines; ruff's complexity rule is on.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("portal", "sheets", "jobs")
FRAMEWORKS = ("flask", "flask_appbuilder", "flask_sqlalchemy", "werkzeug")
MAX_MODULE_LINES = 600

# (importer prefix, forbidden import prefixes, why)
LAYER_RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("sheets", ("portal", "jobs", *FRAMEWORKS), "sheets/ is a library that knows no portal"),
    (
        "portal.services",
        ("jobs", "portal.views", "portal.api", "portal.cli", "portal.sync"),
        "services call no jobs, views, API, CLI or sync glue",
    ),
    (
        "portal.models",
        ("jobs", "portal.services", "portal.views", "portal.api", "portal.cli"),
        "models import no services, jobs, views, API or CLI",
    ),
    ("jobs", ("portal.views", "portal.api"), "jobs never import views or the API"),
)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages (and ``config``), by dotted name."""
    modules = {
        module_name(root, path): path
        for package in PACKAGES
        if (root / package).is_dir()
        for path in sorted((root / package).rglob("*.py"))
    }
    if (root / "config.py").exists():
        modules["config"] = root / "config.py"
    return modules


def _imported_names(tree: ast.AST, package: str) -> Iterable[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module, node.lineno
            for alias in node.names:
                yield f"{module}.{alias.name}", node.lineno


def import_graph(root: Path) -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    """``{module: {imported module or framework: line}}`` for the project's modules."""
    modules = source_modules(root)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, line in _imported_names(tree, package):
            top = target.split(".")[0]
            if top in FRAMEWORKS:
                edges.setdefault(top, line)
                continue
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph, modules


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_breaks(graph: Mapping[str, Mapping[str, int]], modules: Mapping[str, Path]) -> list[str]:
    return [
        f"{modules[importer]}:{line} imports {target} ({why})"
        for prefix, forbidden, why in LAYER_RULES
        for importer, edges in sorted(graph.items())
        if _under(importer, prefix)
        for target, line in sorted(edges.items())
        if any(_under(target, banned) for banned in forbidden)
    ]


def import_cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan, iterative).

    A package's ``__init__`` re-exporting its own children is not counted: a group needs two
    modules that are not package ``__init__`` files.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in graph:
                    continue
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))
    return [group for group in groups if len(group) > 1]


def real_cycles(
    graph: Mapping[str, Mapping[str, int]], modules: Mapping[str, Path]
) -> list[list[str]]:
    return [
        group
        for group in import_cycles(graph)
        if sum(modules[name].name != "__init__.py" for name in group) > 1
    ]


def oversized_modules(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} has {lines} lines"
        for name, path in source_modules(root).items()
        if not _under(name, "portal.models")
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]


def test_layers_point_one_way():
    graph, modules = import_graph(ROOT)
    assert layer_breaks(graph, modules) == []


def test_no_import_cycles():
    graph, modules = import_graph(ROOT)
    assert real_cycles(graph, modules) == []


def test_no_module_over_600_lines():
    assert oversized_modules(ROOT) == []


def test_complexity_rule_is_on_and_holds():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    lint = settings["lint"]
    assert "C901" in lint["select"] or "C90" in lint["select"]
    assert 10 <= lint["mccabe"]["max-complexity"] <= 15
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency (pip install -e '.[test]')"
    result = subprocess.run(
        [ruff, "check", "--select", "C901", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The checks themselves, on a small tree made here: each rule must notice its break.


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _write(
        tmp_path,
        {
            "portal/__init__.py": "",
            "portal/models.py": "",
            "portal/services/__init__.py": "",
            "portal/services/base.py": "from portal import models\n",
            "portal/services/orders.py": "from portal.services.base import x\n",
            "portal/views.py": "from portal.services import orders\n",
            "jobs/__init__.py": "",
            "jobs/notify.py": "from portal.services import orders\n",
            "sheets/__init__.py": "",
            "sheets/engine.py": "import json\n",
        },
    )
    return tmp_path


def test_a_clean_tree_passes(tree: Path):
    graph, modules = import_graph(tree)
    assert layer_breaks(graph, modules) == []
    assert real_cycles(graph, modules) == []


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        ("sheets/engine.py", "def f():\n    from portal import models\n", "sheets/engine.py:2"),
        ("sheets/engine.py", "import flask\n", "imports flask"),
        ("portal/services/orders.py", "def f():\n    import jobs.notify\n", "imports jobs"),
        ("portal/models.py", "from portal.services import base\n", "imports portal.services"),
        ("jobs/notify.py", "from portal import views\n", "imports portal.views"),
        ("portal/services/base.py", "from ..views import x\n", "imports portal.views"),
    ],
)
def test_each_layer_break_is_found(tree: Path, module: str, text: str, expected: str):
    _write(tree, {module: text})
    graph, modules = import_graph(tree)
    breaks = layer_breaks(graph, modules)
    assert any(expected in line for line in breaks), breaks


def test_a_cycle_through_a_function_level_import_is_found(tree: Path):
    _write(tree, {"portal/services/base.py": "def f():\n    from portal.services import orders\n"})
    graph, modules = import_graph(tree)
    assert real_cycles(graph, modules) == [["portal.services.base", "portal.services.orders"]]


def test_a_package_reexporting_its_children_is_no_cycle(tree: Path):
    _write(tree, {"sheets/__init__.py": "from sheets.engine import x\n"})
    _write(tree, {"sheets/engine.py": "import sheets\n"})
    graph, modules = import_graph(tree)
    assert real_cycles(graph, modules) == []


def test_a_long_module_is_found(tree: Path):
    _write(tree, {"jobs/notify.py": "x = 1\n" * 601, "portal/models.py": "y = 1\n" * 900})
    assert oversized_modules(tree) == ["jobs/notify.py has 601 lines"]
