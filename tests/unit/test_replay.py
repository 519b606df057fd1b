"""``byod-agent check --replay``: a recorded Windows snapshot evaluated on this (Linux) machine
exactly as the agent would on that PC; the report says it is a replay; missing data never passes.
The CLI runs for real, with its own HOME/XDG dirs so no state of this machine is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.posture import replay
from agent.posture.model import Status
from tests.conftest import FIXTURES, REPO

SNAP = FIXTURES / "windows" / "snapshot_windows11_pro_ja.json"
FAILING = FIXTURES / "os_updates" / "win11_24h2_ja_cu_failing_dotnet_ok.json"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    agent = str(Path(sys.executable).parent / "byod-agent")
    return subprocess.run([agent, "check", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_json_says_it_is_a_replay_and_uses_the_snapshot_time(tmp_path: Path) -> None:
    r = _cli(tmp_path, "--replay", str(FAILING), "--json")
    assert r.returncode == 1, r.stderr  # not compliant: the cumulative updates failed
    data: dict[str, Any] = json.loads(r.stdout)
    assert data["replay"]["collected_at"] == "2026-01-05T01:00:00Z"
    assert data["replay"]["now"] == "2026-01-05T01:00:00Z"
    assert data["host"]["os"] == "windows" and data["host"]["os_version"] == "10.0.26100.6584"
    status = {c["id"]: c["status"] for c in data["checks"]}
    assert status["os_updates"] == "fail" and status["os_supported"] == "pass"
    # The fixture holds no bitlocker/antivirus/firewall/screen_lock sections: never a pass.
    assert {status[c] for c in ("disk_encryption", "antivirus", "firewall", "screen_lock")} \
        == {"unknown"}


def test_table_has_the_replay_line_in_japanese(tmp_path: Path) -> None:
    r = _cli(tmp_path, "--replay", str(SNAP), "--lang", "ja")
    assert r.returncode in (0, 1), r.stderr
    assert r.stdout.splitlines()[0].startswith("【再現】")
    assert "Traceback" not in r.stdout + r.stderr


def test_now_overrides_the_snapshot_time(tmp_path: Path) -> None:
    r = _cli(tmp_path, "--replay", str(SNAP), "--json", "--now", "2027-01-01T00:00:00Z")
    data = json.loads(r.stdout)
    assert data["replay"]["now"] == "2027-01-01T00:00:00Z"
    os_supported = next(c for c in data["checks"] if c["id"] == "os_supported")
    assert os_supported["status"] == "fail"  # 24H2 Pro ended 2026-10-13


@pytest.mark.parametrize("content", [b"{not json", b'{"schema": 2}', b"[]"])
def test_bad_snapshot_is_a_message_not_a_traceback(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    r = _cli(tmp_path, "--replay", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip()


def test_replay_context_can_run_nothing() -> None:
    rec = replay.load(SNAP)
    ctx = replay.context(rec)
    assert ctx.os == "windows" and ctx.now == rec.collected_at
    report = replay.run(rec, checks=[("os_supported", lambda c: __import__(
        "agent.posture.checks.os_supported.check", fromlist=["check"]).check(c)),
        ("forbidden_software", lambda c: (_ for _ in ()).throw(AssertionError("ran")))])
    by = report.by_id()
    assert by["forbidden_software"].status is Status.UNKNOWN
    assert by["forbidden_software"].summary.key == "replay.not_in_snapshot"
