"""``byod-agent check`` end to end on this machine, as staff and the help desk run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.posture.model import CHECK_IDS
from tests.conftest import REPO

# Checks whose Linux probe needs an external program (or a daemon found through one).
NEEDS_TOOL = {"os_updates", "firewall", "screen_lock"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = dict(os.environ)
    if env is not None:
        base.update(env)
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, cwd=REPO, env=base, timeout=60, check=False)


def _root_source() -> str:
    """The device mounted at / as the kernel reports it (here: /dev/vda)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if fields[0].split()[4] == "/":
            return fields[1].split()[1]
    raise AssertionError("no / in mountinfo")


@pytest.fixture(scope="module")
def report() -> tuple[dict[str, Any], int, float]:
    start = time.monotonic()
    proc = run_cli("check", "--json")
    elapsed = time.monotonic() - start
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout), proc.returncode, elapsed


def test_json_contract(report: tuple[dict[str, Any], int, float]) -> None:
    data, _, _ = report
    assert data["schema"] == 1
    assert set(data) >= {"schema", "agent_version", "generated_at", "host", "compliant", "checks"}
    assert data["generated_at"].endswith("Z")
    assert data["host"]["os"] in ("linux", "windows", "macos")
    # The six foundation checks come first; the policy may add its own after them.
    assert [c["id"] for c in data["checks"]][: len(CHECK_IDS)] == list(CHECK_IDS)
    for c in data["checks"]:
        assert c["status"] in ("pass", "warn", "fail", "unknown")
        assert set(c["summary"]) == {"ja", "en"} and all(c["summary"].values())
        assert isinstance(c["evidence"], dict)
        assert isinstance(c["duration_ms"], int)
        if c["status"] != "pass":
            assert c["remediation"] is not None, c["id"]
            assert c["remediation"]["ja"]["steps"] and c["remediation"]["en"]["steps"]
        assert c["summary_key"] != "probe.crashed", c


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="facts of the Linux CI machine")
def test_this_machine_is_not_compliant_and_says_why(
        report: tuple[dict[str, Any], int, float]) -> None:
    """The root disk here is a plain /dev/vda and no antivirus runs: the agent must say so."""
    data, code, elapsed = report
    assert code == 1
    assert data["compliant"] is False
    checks = {c["id"]: c for c in data["checks"]}
    disk = checks["disk_encryption"]
    assert disk["status"] == "fail"
    assert _root_source() in json.dumps(disk["evidence"])
    assert checks["antivirus"]["status"] == "fail"
    del elapsed  # speed is measured in bench/ (posture_vs_slowest_probe), not asserted here


def test_empty_path_never_passes_a_tool_check() -> None:
    proc = run_cli("check", "--json", env={"PATH": ""})
    data = json.loads(proc.stdout)
    assert proc.returncode == 1
    for c in data["checks"]:
        if c["id"] in NEEDS_TOOL:
            assert c["status"] != "pass", c


def test_table_in_both_languages() -> None:
    ja = run_cli("check", "--lang", "ja")
    en = run_cli("check", "--lang", "en")
    assert ja.returncode == en.returncode == 1
    assert "ディスクの暗号化" in ja.stdout and "直し方" in ja.stdout
    assert "Disk encryption" in en.stdout and "How to fix" in en.stdout


def test_no_subcommand_prints_the_table() -> None:
    proc = run_cli(env={"BYOD_AGENT_LANG": "en"})
    assert "Disk encryption" in proc.stdout


def test_usage_error_exits_2() -> None:
    proc = run_cli("check", "--no-such-flag", env={"BYOD_AGENT_LANG": "en"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: byod-agent check ")
    proc = run_cli("check", "--no-such-flag", env={"BYOD_AGENT_LANG": "ja"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("使い方: byod-agent check ")
    assert "認識できない引数です: --no-such-flag" in proc.stderr
