"""The session's moving parts with real processes and sockets: grace countdown, process-tree
termination, the loopback peer check and the runner's events (a stand-in RDP client that is a
real child process; the real xfreerdp/xrdp run is tests/integration/test_session_e2e.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.core import exitcodes
from agent.policy.decision import Decision
from agent.policy.model import Target
from agent.session.controller import Session, SessionRequest, private_rdp_file
from agent.session.events import to_wire
from agent.session.launch import ClientInfo
from agent.session.monitor import ComplianceWatch, Transition, clock_jumped
from agent.session.peer import PeerCheck, owner_pid
from agent.session.procs import is_in_tree, terminate_tree

DIRECT = Target("office", "庁内PC", "Office PC", "rdp", "direct", "pc-01.city.example", 3389)


def test_grace_countdown_recovery_and_expiry() -> None:
    w = ComplianceWatch(60)
    assert w.observe(True, 0) is None
    assert w.observe(False, 10) is Transition.NONCOMPLIANT
    assert w.remaining(10) == 60 and w.remaining(45.5) == 25
    assert w.observe(False, 30) is None  # still counting down from the first failure
    assert w.observe(True, 40) is Transition.RECOVERED and w.remaining(40) is None
    assert w.observe(False, 50) is Transition.NONCOMPLIANT  # a new failure: a full new grace
    assert w.tick(109.9) is None and w.tick(110) is Transition.EXPIRED
    assert ComplianceWatch(0).observe(False, 0) is Transition.EXPIRED  # grace 0: at once


def test_clock_jump_means_the_pc_slept() -> None:
    assert clock_jumped(3600.5, 0.5) and not clock_jumped(1.0, 0.5)


TREE = textwrap.dedent("""
    import subprocess, sys, time, signal
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a client that ignores the polite request
    print(child.pid, flush=True)
    time.sleep(60)
""")


def test_terminate_tree_ends_children_and_kills_the_stubborn() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert is_in_tree(child, proc.pid) and not is_in_tree(proc.pid, child)
    killed = terminate_tree(proc.pid, timeout=1.0)
    assert killed == 1  # the parent ignored SIGTERM; the child did not
    proc.wait(timeout=5)  # (psutil reaped it already; Popen then reports 0)
    assert not psutil.pid_exists(proc.pid)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_peer_check_serves_only_the_launched_client() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    check = PeerCheck(strict=True)
    check.listen_port = port
    ours = socket.create_connection(("127.0.0.1", port))
    peer = ours.getsockname()
    assert owner_pid(peer, port) == psutil.Process().pid
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        check.set_client(other.pid)  # the "client" is another process: we are not it
        assert check(peer) is False
        check.set_client(psutil.Process().pid)
        assert check(peer) is True
    finally:
        other.kill()
        other.wait()
        ours.close()
        server.close()
    assert PeerCheck(strict=False)(("127.0.0.1", 1)) is True  # macOS open -a: first one


def test_rdp_file_is_private_and_removed(tmp_path: Path) -> None:
    with private_rdp_file("full address:s:x\r\n") as path:
        assert path.read_bytes() == b"full address:s:x\r\n"
        if sys.platform != "win32":
            assert path.stat().st_mode & 0o777 == 0o600
            assert path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.exists() and not path.parent.exists()


FAKE_CLIENT = textwrap.dedent("""
    import sys, time
    line = sys.stdin.readline()
    with open({out!r}, "w") as fh:
        fh.write(repr(sys.argv[1:]) + "\\n" + line)
    time.sleep(float({sleep!r}))
    sys.exit(int({code!r}))
""")


def _decision(allowed: bool) -> Decision:
    return Decision(allowed, "ABCDEFGH", "p", 1, datetime.now(UTC), ())


def _session(tmp_path: Path, *, sleep: float, code: int = 0, decisions: list[bool],
             grace: float = 1.0) -> tuple[Session, list[dict[str, Any]]]:
    script = tmp_path / "client.py"
    script.write_text(FAKE_CLIENT.format(out=str(tmp_path / "client.out"), sleep=sleep,
                                         code=code))
    launcher = tmp_path / "xfreerdp"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    launcher.chmod(0o755)
    events: list[dict[str, Any]] = []
    answers = iter(decisions)
    req = SessionRequest(DIRECT, "linux", ClientInfo("xfreerdp", "xfreerdp2", str(launcher)),
                         "ABCDEFGH", recheck_seconds=0.3, grace_seconds=grace,
                         username="yamada", password="秘密-pass")
    return Session(req, reevaluate=lambda: _decision(next(answers, decisions[-1])),
                   emit=lambda ev: events.append(to_wire(ev))), events


@pytest.mark.skipif(sys.platform == "win32", reason="shell launcher")
def test_runner_ends_a_noncompliant_session_after_the_grace(tmp_path: Path) -> None:
    session, events = _session(tmp_path, sleep=60, decisions=[True, False])
    t0 = time.monotonic()
    assert session.run() == exitcodes.BLOCKED
    assert time.monotonic() - t0 < 10
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and "noncompliant" in kinds and kinds[-1] == "ended"
    assert events[-1]["reason"] == "noncompliant"
    assert session.proc is not None and session.proc.poll() is not None
    argv, stdin = (tmp_path / "client.out").read_text().splitlines()
    assert stdin == "秘密-pass" and "秘密-pass" not in argv and "/u:yamada" in argv


@pytest.mark.skipif(sys.platform == "win32", reason="shell launcher")
def test_runner_recovers_and_reports_the_client_exit(tmp_path: Path) -> None:
    session, events = _session(tmp_path, sleep=2.5, decisions=[False, True], grace=30)
    assert session.run() == exitcodes.OK
    kinds = [e["event"] for e in events]
    assert kinds == ["started", "noncompliant", "recovered", "ended"]
    assert events[-1] == {"event": "ended", "reason": "client_exit",
                          "correlation_id": "ABCDEFGH"}


@pytest.mark.skipif(sys.platform == "win32", reason="shell launcher")
def test_runner_names_a_failing_or_missing_client(tmp_path: Path) -> None:
    session, events = _session(tmp_path, sleep=0, code=131, decisions=[True])
    assert session.run() == exitcodes.SESSION_FAILED
    assert {"event": "error", "step": "client_failed", "detail": "exit code 131"} in events
    missing = Session(replace(session.req, client=ClientInfo("xfreerdp", "xfreerdp2",
                                                             str(tmp_path / "nope"))),
                      reevaluate=lambda: _decision(True),
                      emit=lambda ev: events.append(to_wire(ev)))
    assert missing.run() == exitcodes.SESSION_FAILED
    assert events[-1]["step"] == "client_missing"


def test_runner_stops_on_request(tmp_path: Path) -> None:
    if sys.platform == "win32":
        return
    session, events = _session(tmp_path, sleep=60, decisions=[True])
    session.request_stop()
    assert session.run() == exitcodes.OK
    assert events[-1]["reason"] == "stopped"
