"""House rules that keep the core reusable: agent/ never imports Qt."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "ui")


def test_agent_sources_never_import_qt() -> None:
    offenders = []
    for path in sorted((REPO / "agent").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in QT_MODULES]
    assert offenders == []


def test_importing_the_whole_core_loads_no_qt() -> None:
    code = ("import pkgutil, importlib, sys, agent\n"
            "for m in pkgutil.walk_packages(agent.__path__, 'agent.'):\n"
            "    if m.name != 'agent.__main__': importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
