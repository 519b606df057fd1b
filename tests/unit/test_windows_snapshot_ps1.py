"""windows_snapshot.ps1 is valid PowerShell (parsed on Linux with the tree-sitter PowerShell
grammar, no pwsh needed), a broken copy is caught, and every section the script emits has a
fixture of what it emits, which the real checks read without a parse error."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.posture import registry, windows_snapshot
from agent.posture.engine import run_checks
from agent.posture.model import Status
from tests.conftest import FIXTURES
from tests.fakes import make_ctx

tree_sitter = pytest.importorskip("tree_sitter")
tsp = pytest.importorskip("tree_sitter_powershell")

SECTIONS = FIXTURES / "windows" / "sections"


def syntax_errors(script: str) -> list[str]:
    """Every ERROR or MISSING node of the parse, as 'line:col text'."""
    parser = tree_sitter.Parser(tree_sitter.Language(tsp.language()))
    data = script.encode("utf-8")
    tree = parser.parse(data)
    out: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            out.append(f"{row + 1}:{col + 1} {data[node.start_byte:node.end_byte][:60]!r}")
        stack.extend(node.children)
    return out


def test_the_script_parses_as_shipped_and_as_sent() -> None:
    source = windows_snapshot.script_source()
    assert syntax_errors(source) == []
    assert syntax_errors(windows_snapshot.compact(source)) == []  # what -EncodedCommand carries


@pytest.mark.parametrize("breakage", [
    ("$snap.firewall = Get-Section 'firewall' {", "$snap.firewall = Get-Section 'firewall' {{"),
    ("try { $r = (& $Body) }", "try { $r = (& $Body) "),
    ("[ordered]@{ error = [string]$_.Exception.Message }",
     "[ordered]@{ error = [string]$_.Exception.Message"),
], ids=["extra-brace", "unclosed-try", "unclosed-hashtable"])
def test_a_broken_copy_fails(breakage: tuple[str, str]) -> None:
    old, new = breakage
    source = windows_snapshot.script_source()
    assert old in source
    assert syntax_errors(source.replace(old, new, 1)) != []


def _section_names() -> list[str]:
    return re.findall(r"Get-Section '([a-z_]+)'", windows_snapshot.script_source())


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SECTIONS / f"{name}.json").read_text("utf-8"))
    assert data["_source"] and data["section"] == name
    return data


def test_every_section_of_the_script_has_a_fixture() -> None:
    names = _section_names()
    assert set(names) == {"os", "updates", "bitlocker", "antivirus", "defender", "firewall",
                          "screen_lock"}
    for name in [*names, "trailer"]:
        _fixture(name)


def test_the_fixtures_carry_every_key_the_script_writes() -> None:
    script = windows_snapshot.script_source()
    trailer = _fixture("trailer")["emits"]
    for key in re.findall(r"^\$snap\.([a-z_]+) = (?!Get-Section)", script, re.MULTILINE):
        assert key in trailer, key
    for key in ("schema", "collected_at", "elevated"):
        assert key in trailer
    av = _fixture("antivirus")["emits"]
    assert all("exe_exists" in p for p in av["products"])
    fw = _fixture("firewall")["emits"]
    assert {"profiles", "current_profile_types", "products"} <= set(fw)
    assert set(_fixture("updates")["emits"]) >= {"wuauserv_start", "no_auto_update",
                                                  "reboot_required", "history"}


def test_the_section_fixtures_feed_the_real_checks() -> None:
    snap: dict[str, Any] = dict(_fixture("trailer")["emits"])
    for name in ("os", "updates", "bitlocker", "antivirus", "firewall", "screen_lock"):
        snap[name] = _fixture(name)["emits"]
    snap["antivirus"] = {**snap["antivirus"], "defender": _fixture("defender")["emits"]}
    ctx = make_ctx("windows", snapshot=snap, now=datetime(2025, 3, 12, 2, 0, tzinfo=UTC))
    results = run_checks(ctx, list(registry.CHECKS))
    broken = ("probe.parse_error", "probe.crashed", "probe.source_missing")
    for r in results:
        assert r.summary.key not in broken, r
    assert {r.id: r.status for r in results}["firewall"] is Status.PASS
