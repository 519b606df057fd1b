"""The Linux antivirus probe against a real clamd: found through psutil, asked over its socket."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.subprocess_runner import SubprocessRunner
from agent.posture.checks.antivirus import check as antivirus
from agent.posture.context import ProbeContext, ProcInfo, list_processes
from agent.posture.engine import run_one
from agent.posture.model import CheckResult, Status
from tests.conftest import require
from tests.fakes import FakeRunner
from tests.integration import clamd_daemon

pytestmark = pytest.mark.real

SCANNERS = {"clamd", "clamonacc", "wdavdaemon"}


def _processes(ours: int | None) -> list[ProcInfo]:
    """The real process list, minus scanners some other test on this host may have started."""
    return [p for p in list_processes() if p.name not in SCANNERS or p.pid == ours]


def _check(ours: int | None, runner: object | None = None) -> CheckResult:
    ctx = ProbeContext(os="linux", runner=runner or FakeRunner(),  # type: ignore[arg-type]
                       root=Path("/"), processes=lambda: _processes(ours))
    return run_one("antivirus", antivirus.check, ctx)


@pytest.fixture(autouse=True)
def _tools() -> None:
    require(clamd_daemon.available(), f"needs {', '.join(clamd_daemon.TOOLS)}")


def test_fresh_database_passes_then_stopped_daemon_fails() -> None:
    with clamd_daemon.running_clamd(27500) as (daemon, proc):
        r = _check(daemon.pid)  # FakeRunner: no clamdscan, so the socket must answer
        assert r.status is Status.PASS, r
        ev = r.evidence["products"][0]
        assert (ev["pid"], ev["socket"], ev["config"]) == (
            daemon.pid, str(daemon.socket), str(daemon.config))
        assert (ev["source"], ev["database_version"], ev["signature_age_days"]) == (
            "socket", 27500, 0)
        assert ev["on_access"] is False and ev["version"]
        clamd_daemon.stop(proc)
        r = _check(daemon.pid)
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.none", "antivirus.linux")


def test_stale_database_fails_naming_its_date() -> None:
    built = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    with clamd_daemon.running_clamd(27400, built_at=built) as (daemon, _proc):
        r = _check(daemon.pid)
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.stale", "antivirus.linux_update"), r
    local_day = built.astimezone().date().isoformat()  # clamd prints its local time
    assert r.summary.params["date"] == local_day
    assert r.summary.params["age"] in (9, 10)
    assert r.evidence["products"][0]["database_version"] == 27400


def test_clamdscan_fallback_reads_the_same_daemon() -> None:
    """With the socket unreachable to the probe, the real clamdscan asks the daemon instead."""
    with clamd_daemon.running_clamd(27500) as (daemon, _proc):
        # The probe reads the config through its root: an empty root hides it, so the socket is
        # unknown to the probe, while the real clamdscan, given the same config, still answers.
        runner = SubprocessRunner(dict(os.environ), default_timeout=10)
        ctx = ProbeContext(os="linux", runner=runner, root=daemon.directory / "empty-root",
                           processes=lambda: _processes(daemon.pid))
        r = run_one("antivirus", antivirus.check, ctx)
    assert r.status is Status.PASS, r
    ev = r.evidence["products"][0]
    assert ev["source"] == "clamdscan" and ev["database_version"] == 27500
    assert "socket_error" in ev
