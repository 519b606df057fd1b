"""Shared helpers for the live platform tests: run the real CLI and check its JSON contract."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from agent.posture.model import CHECK_IDS, Status

BROKEN_PROBE_KEYS = ("probe.crashed", "probe.parse_error")


def run_check_json(timeout: float = 120) -> dict[str, Any]:
    """``byod-agent check --json`` as staff would run it; exit 0 (compliant) or 1 (not)."""
    exe = shutil.which("byod-agent")
    argv = [exe, "check", "--json"] if exe else [sys.executable, "-m", "agent", "check", "--json"]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")  # a cp932/cp1252 pipe would mangle Japanese
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, check=False)
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr.decode(errors="replace"))
    report: dict[str, Any] = json.loads(proc.stdout.decode("utf-8"))
    return report


def assert_report_contract(report: dict[str, Any], os_name: str) -> None:
    assert report["schema"] == 1
    assert report["host"]["os"] == os_name
    assert isinstance(report["compliant"], bool)
    assert [c["id"] for c in report["checks"]] == list(CHECK_IDS)
    statuses = {s.value for s in Status}
    broken = {}
    for c in report["checks"]:
        assert c["status"] in statuses, c
        assert set(c["summary"]) >= {"ja", "en"} and c["summary"]["ja"] and c["summary"]["en"]
        assert isinstance(c["evidence"], dict) and isinstance(c["duration_ms"], int)
        if c["summary_key"] in BROKEN_PROBE_KEYS:
            broken[c["id"]] = (c["summary_key"], c["evidence"])
    assert broken == {}, "a probe broke on this real OS"
    assert report["compliant"] == all(c["status"] in ("pass", "warn") for c in report["checks"])
