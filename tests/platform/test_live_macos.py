"""Live on a macOS runner: the real CLI and the real tools its checks read.

A platform test cannot run anywhere else, so this module skips off macOS (the macOS CI job
runs it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin",
                                reason="macOS-only: runs on the macOS CI runner")

from agent.posture.checks.os_supported.check import parse_system_version_plist  # noqa: E402
from tests.platform.live import assert_report_contract, run_check_json  # noqa: E402


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"})


def test_system_version_plist_parses() -> None:
    data = Path("/System/Library/CoreServices/SystemVersion.plist").read_bytes()
    version = parse_system_version_plist(data)
    assert int(version.split(".")[0]) >= 11, version


def test_fdesetup_answers() -> None:
    # fdesetup isactive: exit 0 = FileVault on, 1 = off (fdesetup(8)); anything else is a fault.
    proc = _run("/usr/bin/fdesetup", "isactive")
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
    assert proc.stdout.strip() in ("true", "false"), proc.stdout


def test_socketfilterfw_answers() -> None:
    proc = _run("/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate")
    assert proc.returncode == 0, proc.stderr
    assert "State = " in proc.stdout or "Firewall is" in proc.stdout, proc.stdout


def test_spctl_answers() -> None:
    proc = _run("/usr/sbin/spctl", "--status")
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
    assert "assessments" in (proc.stdout + proc.stderr), (proc.stdout, proc.stderr)


def test_byod_agent_check_json_on_macos() -> None:
    assert_report_contract(run_check_json(), "macos")
