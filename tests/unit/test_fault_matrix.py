"""Every probe x every fault -> unknown with a reason, never pass; the run ends within its timeout.

Faults reach probes the way real ones do: through the runner (missing tool, timeout, non-zero exit,
garbage, truncated or empty output, a crash), through the files they read (missing or garbage),
through the process list and through the Windows snapshot.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.core.errors import ProbeTimeout
from agent.posture import registry
from agent.posture.context import ProcInfo
from agent.posture.engine import run_checks, run_one
from agent.posture.model import Status
from tests.fakes import FaultRunner, make_ctx

RUNNER_FAULTS = ["missing", "timeout", "exit", "garbage", "truncated", "empty", "exception"]
OSES = ["linux", "windows", "macos"]
GARBAGE = b"\x00\xff garbage {[ \xfe\nKEY=\n[section\n"

# Processes a probe might look for, so the fault reaches the tools it would query next.
PROCS = [ProcInfo(4242, name, f"/usr/sbin/{name}", (f"/usr/sbin/{name}",)) for name in
         ("clamd", "wdavdaemon", "firewalld", "gnome-shell", "MsMpEng.exe")]


def _sources() -> set[str]:
    paths: set[str] = set()
    for check_id, _fn in registry.CHECKS:
        module = __import__(f"agent.posture.checks.{check_id}.check", fromlist=["SOURCES"])
        paths.update(getattr(module, "SOURCES", ()))
    return paths


def _garbage_root(tmp: Path) -> Path:
    for absolute in _sources():
        p = tmp / absolute.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(GARBAGE)
    return tmp


def _snapshot_for(fault: str) -> object:
    def raising() -> object:
        if fault == "timeout":
            raise ProbeTimeout("powershell", 12)
        raise RuntimeError("injected crash")

    return {
        "missing": {},  # every section missing
        "timeout": raising,
        "exception": raising,
        "exit": {name: {"error": "Access denied"} for name in
                 ("os", "updates", "bitlocker", "antivirus", "firewall", "screen_lock")},
        "garbage": {name: {"x": "\x00garbage", "CurrentBuildNumber": "x"} for name in
                    ("os", "updates", "bitlocker", "antivirus", "firewall", "screen_lock")},
        "truncated": {name: {} for name in
                      ("os", "updates", "bitlocker", "antivirus", "firewall", "screen_lock")},
        "empty": {},
    }[fault]


@pytest.mark.parametrize("os_name", OSES)
@pytest.mark.parametrize("fault", RUNNER_FAULTS)
@pytest.mark.parametrize("files", ["absent", "garbage"])
@pytest.mark.parametrize("check_id", [c for c, _ in registry.CHECKS])
def test_fault_is_unknown(check_id: str, files: str, fault: str, os_name: str,
                          tmp_path: Path) -> None:
    fn = dict(registry.CHECKS)[check_id]

    def processes() -> list[ProcInfo]:
        if fault == "exception":
            raise RuntimeError("process list crashed")
        return PROCS

    root = _garbage_root(tmp_path) if files == "garbage" else tmp_path / "empty"
    ctx = make_ctx(os_name, runner=FaultRunner(fault), root=root, home=root / "home/staff",
                   processes=processes, snapshot=_snapshot_for(fault),  # type: ignore[arg-type]
                   env={"XDG_CURRENT_DESKTOP": "GNOME", "DISPLAY": ":0"})
    result = run_one(check_id, fn, ctx)
    assert result.status is Status.UNKNOWN, (result.status, result.summary, result.evidence)
    assert result.summary.key, "an unknown result must say why"


def test_hanging_probe_ends_within_the_run_timeout(tmp_path: Path) -> None:
    """A probe stuck far past the deadline does not hold the report."""
    ctx = make_ctx("linux", runner=FaultRunner("hang", delay=5.0), root=tmp_path,
                   processes=lambda: PROCS)
    slow = [(cid, fn) for cid, fn in registry.CHECKS] + [
        ("stuck", lambda _ctx: time.sleep(30) or None)]  # type: ignore[func-returns-value]
    start = time.monotonic()
    results = run_checks(ctx, slow, timeout=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 2.5
    assert {r.id for r in results} == {c for c, _ in slow}
    assert all(r.status is not Status.PASS for r in results if r.id != "os_supported")
    stuck = next(r for r in results if r.id == "stuck")
    assert stuck.status is Status.UNKNOWN and stuck.summary.key == "probe.timeout"
