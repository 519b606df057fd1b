"""Connect from the tray: per-target entries, the session child over the events protocol, the
notifications it causes, Disconnect (SIGTERM, then kill), and the real ``connect --events``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from keyring.backends import fail

from agent.keystore import Keystore
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.posture.model import Report
from agent.presentation.session_view import Kind, SessionEvent
from agent.presentation.status_view import DecisionInfo, TargetInfo
from tests.conftest import REPO
from ui.session import SessionProcess
from ui.tray import TrayController, TrayOptions
from ui.wake import WakeWatcher

pytestmark = pytest.mark.gui
FAKE = Path(__file__).with_name("fake_connect.py")
TARGETS = (TargetInfo("office-pc-demo", "庁内PC（デモ）", "Office PC (DEMO)"),
           TargetInfo("office-pc-rdgw-demo", "庁内PC（RDゲートウェイ）", "Office PC via RDGW"))


def _report() -> Report:
    return run_posture(default_context(), [("os_supported", os_supported.check)])


def _controller(qtbot, tmp_path: Path, scenario: str, allowed: bool = True,  # type: ignore[no-untyped-def]
                grace_ms: int = 5000) -> TrayController:
    session = SessionProcess(lambda tid: [sys.executable, str(FAKE), scenario, tid],
                             stop_grace_ms=grace_ms)
    decision = DecisionInfo(allowed, "CID12345", targets=TARGETS, recheck_minutes=5)
    c = TrayController(TrayOptions(_report, decide=lambda _r: decision, lang_override="ja",
                       prefs_path=tmp_path / "ui.json", tray_retries=0, session=session,
                       wake=WakeWatcher(platform=False),
                       cert_store=lambda: Keystore(tmp_path / "ks", fail.Keyring()),
                       ask_credentials=scenario.startswith("credentials:")))
    qtbot.addWidget(c.window)
    c.start()
    qtbot.waitUntil(lambda: not c.running, timeout=15_000)
    return c


def test_freerdp_credentials_go_to_the_child_by_stdin_and_only_the_user_is_kept(
        qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record = tmp_path / "handed.json"
    c = _controller(qtbot, tmp_path, f"credentials:{record}")
    try:
        assert c.connect_to("office-pc-demo")
        dialog = c.sessions.credentials_dialog
        assert dialog is not None and not c.session.active  # nothing starts before OK
        assert not dialog._ok.isEnabled()
        dialog.user.setText("yamada.t")
        dialog.password.setText("庁内-Pass-1")
        dialog.accept()
        qtbot.waitUntil(record.exists, timeout=10_000)
        qtbot.waitUntil(lambda: record.stat().st_size > 0, timeout=5_000)
        import json
        handed = json.loads(record.read_text(encoding="utf-8"))
        assert handed == {"argv": ["--user", "yamada.t", "--password-stdin"],
                          "stdin": "庁内-Pass-1\n"}
        assert dialog.password.text() == ""
        prefs_text = (tmp_path / "ui.json").read_text(encoding="utf-8")
        assert "yamada.t" in prefs_text and "Pass" not in prefs_text
        c.end_session()
        qtbot.waitUntil(lambda: not c.session.active, timeout=10_000)
        # cancel starts nothing; the user name is offered again
        assert c.connect_to("office-pc-demo")
        assert c.sessions.credentials_dialog is not None
        assert c.sessions.credentials_dialog.user.text() == "yamada.t"
        c.sessions.credentials_dialog.reject()
        assert not c.session.active
    finally:
        c.stop()


def _keys(c: TrayController) -> list[str]:
    return [n.key for n in c.notices if n.key.startswith("session.")]


def test_one_entry_per_target_session_notices_and_disconnect(qtbot, tmp_path: Path) -> None:
    c = _controller(qtbot, tmp_path, "session")
    try:
        assert c.checks.timer.interval() == 5 * 60 * 1000  # the policy's re-check interval
        a = c.actions["connect:office-pc-demo"]
        assert a.isEnabled() and a.text() == "庁内PC（デモ） に接続"
        assert c.actions["connect:office-pc-rdgw-demo"].isEnabled()
        a.trigger()
        qtbot.waitUntil(lambda: "session.recovered" in _keys(c), timeout=10_000)
        assert _keys(c) == ["session.started", "session.noncompliant", "session.countdown",
                            "session.recovered"]
        noncompliant = c.notices[-3]
        assert "ディスクが暗号化されていません" in noncompliant.body and "0:30" in noncompliant.body
        assert "0:20" in c.notices[-2].body
        assert "disconnect" in c.actions and "connect:office-pc-demo" not in c.actions
        assert c.actions["disconnect"].text() == "庁内PC（デモ） から切断"
        assert c.window.connect_button.text() == "切断"
        assert "接続中" in c.window.session_line.text()
        assert not c.connect_to("office-pc-rdgw-demo")  # one session at a time

        started = time.monotonic()
        c.actions["disconnect"].trigger()
        qtbot.waitUntil(lambda: "session.ended.stopped" in _keys(c), timeout=10_000)
        assert time.monotonic() - started < 4  # SIGTERM was enough: no kill needed
        assert c.notices[-1].body == "切断しました。"
        assert c.actions["connect:office-pc-demo"].isEnabled()
        assert not c.session.active and not c.window.session_line.isVisible()
    finally:
        c.stop()


def test_disconnect_kills_a_child_that_ignores_sigterm(qtbot, tmp_path: Path) -> None:
    c = _controller(qtbot, tmp_path, "stubborn", grace_ms=700)
    try:
        c.connect_to("office-pc-demo")
        qtbot.waitUntil(lambda: "session.recovered" in _keys(c), timeout=10_000)
        c.end_session()
        assert c.actions["disconnect"].text().endswith("切断しています…")
        assert not c.actions["disconnect"].isEnabled()
        qtbot.waitUntil(lambda: not c.session.active, timeout=5000)
        assert _keys(c)[-1] == "session.ended.stopped"
    finally:
        c.stop()


@pytest.mark.parametrize(("scenario", "key", "needle"), [
    ("blocked", "session.blocked", "ディスクが暗号化されていません"),
    ("error", "session.error.tls", "サーバー確認の段階"),  # the step's own sentence
    ("silent_crash", "session.error.client_failed", "途中で止まりました"),
    ("ends_noncompliant", "session.ended.noncompliant", "直し方"),
])
def test_session_outcomes_are_told(qtbot, tmp_path: Path, scenario: str, key: str,
                                   needle: str) -> None:
    c = _controller(qtbot, tmp_path, scenario)
    try:
        c.window.connect_menu.actions()[0].trigger()  # the status window's Connect, first target
        qtbot.waitUntil(lambda: not c.session.active and any(
            n.key == key for n in c.notices), timeout=10_000)
        assert needle in c.notices[-1].body
        assert c.notices[-1].level.value == "critical"
        # the core saw something change: the tray checks again soon
        assert c.checks.soon.isActive()
    finally:
        c.stop()


def test_status_window_connect_button_and_blocked_targets(qtbot, tmp_path: Path) -> None:
    c = _controller(qtbot, tmp_path, "blocked", allowed=False)
    try:
        a = c.actions["connect:office-pc-demo"]
        assert not a.isEnabled()
        assert "不可" in a.text() and a.toolTip()
        assert "上の" not in a.text()  # nothing is marked in a menu
        assert not c.window.connect_button.isEnabled()
        assert c.window.connect_reason.isVisible()
        assert not c.connect_to("office-pc-demo")  # refused in code, not only greyed out
    finally:
        c.stop()
    one = TrayController(TrayOptions(
                         _report, decide=lambda _r: DecisionInfo(True, "X", targets=TARGETS[:1]),
                         lang_override="en", prefs_path=tmp_path / "ui2.json", tray_retries=0,
                         session=SessionProcess(lambda tid: [sys.executable, str(FAKE),
                                                             "session", tid]),
                         wake=WakeWatcher(platform=False),
                         cert_store=lambda: Keystore(tmp_path / "ks", fail.Keyring()),
                         ask_credentials=False))
    qtbot.addWidget(one.window)
    try:
        one.start()
        qtbot.waitUntil(lambda: not one.running, timeout=15_000)
        button = one.window.connect_button
        assert button.isEnabled() and button.text() == "Connect to Office PC (DEMO)"
        button.click()
        qtbot.waitUntil(lambda: "session.started" in _keys(one), timeout=10_000)
        assert one.notices[-1].title == "BYOD Agent: Office PC (DEMO)"
        one.window.connect_button.click()  # now "Disconnect"
        qtbot.waitUntil(lambda: not one.session.active, timeout=10_000)
    finally:
        one.stop()


def test_real_connect_events_without_a_certificate(qtbot, tmp_path: Path) -> None:
    """The real core CLI in a scratch HOME with no certificate: an error event, step certificate."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache"),
           "PYTHONPATH": str(REPO)}
    session = SessionProcess(env=env)
    events: list[SessionEvent] = []
    finals: list[SessionEvent] = []
    session.event_received.connect(events.append)
    session.finished.connect(finals.append)
    assert session.start("office-pc-demo")
    qtbot.waitUntil(lambda: bool(finals), timeout=120_000)
    final = finals[0]
    assert events and events[-1] == final  # the core said it, the tray did not make it up
    assert final.kind is Kind.ERROR and final.step == "certificate", (events, final)
    assert final.message is not None and final.message.ja and final.message.en
