"""``byod-agent connect`` on this (non-compliant) machine with the demo policy's targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_DATA_HOME": str(home / "data"), "BYOD_AGENT_LANG": "en"}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "agent", "connect", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120, check=False)


def test_dry_run_for_windows_shows_every_redirection_off_and_exit_3(tmp_path: Path) -> None:
    proc = _cli("office-pc-rdgw-demo", "--dry-run", "--json", "--platform", "windows",
                home=tmp_path)
    assert proc.returncode == 3, proc.stderr  # this PC is not compliant
    plan = json.loads(proc.stdout)
    assert plan["client"]["flavor"] == "mstsc" and plan["mode"] == "rdgateway"
    assert plan["redirections"] and not any(plan["redirections"].values())
    props = plan["rdp_properties"]
    assert props["redirectclipboard:i"] == "0" and props["redirectdrives:i"] == "0"
    assert props["gatewayhostname:s"] == "rdgw.demo.invalid:443"
    assert plan["decision"]["allowed"] is False and plan["decision"]["correlation_id"]
    assert "disk" in proc.stderr.lower()  # the reasons, in the user's language


def test_unknown_or_ambiguous_target_exits_2(tmp_path: Path) -> None:
    for args in (("no-such-target", "--dry-run"), ("--dry-run",)):  # the demo has two targets
        proc = _cli(*args, home=tmp_path)
        assert proc.returncode == 2
        assert "office-pc-demo" in proc.stderr


def test_tunnel_without_a_usable_certificate_exits_2(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        return
    proc = _cli("office-pc-demo", home=tmp_path)
    assert proc.returncode == 2
    assert "certificate" in proc.stderr


def test_dry_run_without_a_certificate_still_shows_the_plan_and_the_decision(
        tmp_path: Path) -> None:
    """README: ``connect office-pc-demo --dry-run`` works before any certificate is imported."""
    if not sys.platform.startswith("linux"):
        return
    proc = _cli("office-pc-demo", "--dry-run", home=tmp_path)
    assert "Connection plan for office-pc-demo" in proc.stdout or "office-pc-demo" in proc.stdout
    assert "Decision: " in proc.stdout
    assert "Missing for a real connection" in proc.stderr and "certificate" in proc.stderr
    # blocked on this VM (3), or allowed but the certificate is missing (2)
    assert proc.returncode == (3 if "not allowed now" in proc.stdout else 2), proc.stdout


def test_without_a_target_and_several_in_the_policy_lists_them(tmp_path: Path) -> None:
    proc = _cli(home=tmp_path)
    assert proc.returncode == 2
    assert "'-'" not in proc.stderr
    assert "office-pc-demo" in proc.stderr and "office-pc-rdgw-demo" in proc.stderr
    assert "byod-agent connect office-pc-demo" in proc.stderr
