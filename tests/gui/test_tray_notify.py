"""The tray's re-check triggers and notifications: wake signals, settings closed, the policy
interval, certificate expiry told once per threshold per day (remembered across restarts)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agent.keystore import CertStatus, KeyState
from agent.keystore.certs import CertInfo, expiry_warning
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.posture.model import Report
from agent.presentation.status_view import DecisionInfo, TrayState
from ui.tray import TrayController, TrayOptions
from ui.wake import ClockJumpDetector, WakeWatcher

pytestmark = pytest.mark.gui
TODAY = dt.date(2026, 3, 1)


def _report() -> Report:
    return run_posture(default_context(), [("os_supported", os_supported.check)])


class _ExpiringStore:
    """Stands in for Keystore.default(): a real CertStatus for a certificate 5 days from expiry."""

    def status(self) -> CertStatus:
        now = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
        info = CertInfo("CN=Yamada Taro", "CN=Example City CA", "1", now - dt.timedelta(days=360),
                        now + dt.timedelta(days=5, hours=2), "AA")
        return CertStatus(KeyState.OK, "keyring.backends.SecretService.Keyring", info, None,
                      expiry_warning(info.not_after, now))


def _make(qtbot, tmp_path: Path, wake: WakeWatcher | None = None) -> TrayController:  # type: ignore[no-untyped-def]
    c = TrayController(TrayOptions(
                       _report, decide=lambda _r: DecisionInfo(True, "C", recheck_minutes=2),
                       lang_override="ja", prefs_path=tmp_path / "ui.json", tray_retries=0,
                       wake=wake or WakeWatcher(platform=False),
                       cert_store=_ExpiringStore,  # type: ignore[arg-type]
                       today=lambda: TODAY))
    qtbot.addWidget(c.window)
    return c


def test_certificate_expiry_is_told_once_a_day_across_restarts(qtbot, tmp_path: Path) -> None:
    c = _make(qtbot, tmp_path)
    c.start()
    qtbot.waitUntil(lambda: any(n.key == "cert.7" for n in c.notices), timeout=15_000)
    notice = next(n for n in c.notices if n.key == "cert.7")
    assert "あと 5 日" in notice.body and notice.level.value == "warning"
    assert json.loads((tmp_path / "ui.json").read_text())["cert_notified"] == {"7": "2026-03-01"}
    c.recheck()
    qtbot.waitUntil(lambda: not c.running and not c.notifier.cert_task.running, timeout=15_000)
    c.stop()
    again = _make(qtbot, tmp_path)  # a restart the same day
    again.start()
    qtbot.waitUntil(lambda: not again.running and not again.notifier.cert_task.running,
                    timeout=15_000)
    qtbot.wait(200)
    again.stop()
    assert [n.key for n in c.notices + again.notices].count("cert.7") == 1
    assert c.checks.timer.interval() == 2 * 60_000  # the policy's interval, not the 15 min default


def test_wake_and_settings_close_trigger_a_recheck(qtbot, tmp_path: Path) -> None:
    now = [1000.0]
    clock = ClockJumpDetector(interval_ms=50, tolerance_s=5, wall=lambda: now[0],
                              mono=lambda: 0.0)
    c = _make(qtbot, tmp_path, WakeWatcher(clock, platform=False))
    c.checks.soon.setInterval(10)
    c.start()
    qtbot.waitUntil(lambda: not c.running, timeout=15_000)
    first = c.checks.last_result
    now[0] += 3600  # the wall clock moved an hour while the monotonic clock did not: resumed
    qtbot.waitUntil(lambda: c.checks.last_result > first and not c.running, timeout=15_000)

    second = c.checks.last_result
    dialog = c.open_settings()
    assert dialog is not None
    dialog.reject()  # closed without saving: still re-checks (a fix may have been made)
    qtbot.waitUntil(lambda: c.checks.last_result > second and not c.running, timeout=15_000)

    third = c.checks.last_result
    c.checks.wake.woke.emit("unlock")
    qtbot.waitUntil(lambda: c.checks.last_result > third and not c.running, timeout=15_000)
    assert c.view.state is not TrayState.ERROR
    c.stop()
