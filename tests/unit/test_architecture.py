"""House rules read from the real import graph (docs/architecture.md).

The graph includes ``importlib.import_module("...")`` calls whose argument is a string literal or
a module-level string constant, so late-bound imports are edges like any other. The rules:
no import cycles between modules; agent/ never imports Qt; no forbidden edge between layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("agent", "ui", "admin", "verifier")
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6")

# (importer prefix, imported prefix, why it must never be)
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("agent", "ui", "the core never reaches the Qt front end"),
    ("agent", "admin", "the staff build leaves IT's tooling out"),
    ("agent", "verifier", "the staff build leaves the city's server out"),
    ("ui", "admin", "the staff build leaves IT's tooling out"),
    ("ui", "verifier", "the staff build leaves the city's server out"),
    ("agent.core", "agent.", "core is the ground floor: it imports nothing else of the agent"),
    ("agent.posture", "agent.policy", "checks report facts; the policy judges them"),
    ("agent.posture", "agent.session", "checks never open sessions"),
    ("agent.posture", "agent.presentation", "checks never format for people"),
    ("agent.posture", "agent.diagnostics", "checks never export"),
    ("agent.policy", "agent.session", "the policy decides; it never launches"),
    ("agent.policy", "agent.presentation", "decisions are not display"),
    ("agent.keystore", "agent.posture", "the keystore knows nothing of posture"),
    ("agent.keystore", "agent.policy", "the keystore knows nothing of the policy"),
    ("agent.presentation", "agent.commands", "view models do not call the CLI"),
)
# The two front ends a command starts; loaded only when that command runs (see the Qt test below).
LATE_UI_EDGES = {("agent.commands.tray", "ui.app"), ("agent.commands.diag", "ui.diag_view")}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.update({t.id: value.value for t in targets if isinstance(t, ast.Name)})
    return out


def imports_of(name: str, tree: ast.Module, is_package: bool) -> set[str]:
    """Every module ``name`` imports: statements anywhere in the file and import_module strings."""
    consts = _constants(tree)
    found: set[str] = set()
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[: len(base) - node.level + 1]
                mod = ".".join(head + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # ``from pkg import module``
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
              == "import_module" and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in consts:
                found.add(consts[arg.id])
    # A module's own parent packages are loaded before it anyway: not an edge of the design.
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return found - ancestors


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    files: dict[str, tuple[Path, bool]] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else []:
            files[module_name(root, path)] = (path, path.name == "__init__.py")
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = {m for m in imports_of(name, tree, is_pkg) if m in files and m != name}
    return graph


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _within(module: str, prefix: str) -> bool:
    return module == prefix.rstrip(".") or module.startswith(prefix if prefix.endswith(".")
                                                             else prefix + ".")


def forbidden_edges(graph: Mapping[str, set[str]]) -> list[str]:
    bad = []
    for src, dsts in graph.items():
        for dst in dsts:
            if (src, dst) in LATE_UI_EDGES:
                continue
            for a, b, why in FORBIDDEN:
                if _within(src, a) and _within(dst, b) and not _within(dst, a):
                    bad.append(f"{src} -> {dst}: {why}")
    return sorted(bad)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO, PACKAGES)


def test_the_import_graph_has_no_cycle(graph: dict[str, set[str]]) -> None:
    assert find_cycles(graph) == []


def test_no_forbidden_edge(graph: dict[str, set[str]]) -> None:
    assert forbidden_edges(graph) == []


def test_the_late_ui_edges_are_seen(graph: dict[str, set[str]]) -> None:
    # import_module strings are part of the graph: the allow-list is not silently empty.
    assert {(s, d) for s, dsts in graph.items() for d in dsts if d.startswith("ui")
            and s.startswith("agent")} == LATE_UI_EDGES


def test_a_cycle_added_on_purpose_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "house"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from house.core import b\n")
    (pkg / "core" / "b.py").write_text("import importlib\nM = 'house.c'\n"
                                      "def f():\n    importlib.import_module(M)\n")
    (pkg / "c.py").write_text("from .core.a import x\n")
    g = import_graph(tmp_path, ["house"])
    assert find_cycles(g) == [["house.c", "house.core.a", "house.core.b"]]


def test_a_forbidden_edge_added_on_purpose_is_found() -> None:
    g = {"agent.posture.engine": {"agent.policy.model"}, "agent.core.i18n": {"agent.core.paths"},
         "agent.core.paths": {"agent.keystore.store"}}
    assert forbidden_edges(g) == [
        "agent.core.paths -> agent.keystore.store: core is the ground floor: it imports nothing "
        "else of the agent",
        "agent.posture.engine -> agent.policy.model: checks report facts; the policy judges them"]


def test_agent_sources_never_import_qt() -> None:
    offenders = []
    for path in sorted((REPO / "agent").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for m in imports_of(module_name(REPO, path), tree, path.name == "__init__.py"):
            if m.split(".")[0] in QT_MODULES:
                offenders.append(f"{path.relative_to(REPO)}: {m}")
    assert offenders == []


def test_every_folder_says_what_lives_there() -> None:
    missing = []
    for pkg in PACKAGES:
        for init in sorted((REPO / pkg).rglob("__init__.py")) if (REPO / pkg).is_dir() else []:
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            if not doc or doc.strip() == "TODO":
                missing.append(str(init.relative_to(REPO)))
    assert missing == []


def test_importing_the_whole_core_loads_no_qt() -> None:
    code = ("import pkgutil, importlib, sys, agent\n"
            "for m in pkgutil.walk_packages(agent.__path__, 'agent.'):\n"
            "    if m.name != 'agent.__main__': importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'ui',"
            " 'admin', 'verifier')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
