"""The status window is built the first time it is needed (issue 20 item 1: a tray that is never
opened does not hold its widgets), and then shows exactly what an eagerly built one would: the
last result, the chosen language, the session line. Offscreen, the real posture engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backends import fail

from agent.core import i18n
from agent.keystore import Keystore
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.presentation.status_view import TrayState
from agent.settings.autostart import Autostart
from ui.tray import TrayController, TrayOptions
from ui.wake import WakeWatcher

pytestmark = pytest.mark.gui


def _controller(tmp_path: Path) -> TrayController:
    return TrayController(TrayOptions(
        lambda: run_posture(default_context(), [("os_supported", os_supported.check)]),
        lang_override="ja", prefs_path=tmp_path / "ui.json",
        autostart=Autostart("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}),
        tray_retries=100, tray_retry_ms=60_000,  # offscreen has no tray: no stand-in window
        autostart_argv=["/usr/bin/byod-agent", "tray"],
        wake=WakeWatcher(platform=False),
        cert_store=lambda: Keystore(tmp_path / "ks", fail.Keyring()),
        state_file=tmp_path / "state.json"))


def test_the_window_is_built_on_first_open_with_the_last_result(qtbot, tmp_path: Path) -> None:
    c = _controller(tmp_path)
    try:
        c.start()
        qtbot.waitUntil(lambda: c.view.state is not TrayState.CHECKING, timeout=15_000)
        c.set_language("en")  # before the window exists: it must open in English
        assert c._window is None  # a result and a language change built nothing
        c.icon_host.write_state()  # the test hook copes with no window
        assert (tmp_path / "state.json").exists()
        c.show_status()
        w = c._window
        assert w is not None
        qtbot.addWidget(w)
        assert w.isVisible() and w.lang == "en"
        assert w.view == c.view  # the last result, not the "checking" placeholder
        assert w.windowTitle() == i18n.text("ui.status.title", "en")
        assert w.recheck_button.isEnabled()
        assert c.window is w  # built once
    finally:
        c.stop()
        c.tray.hide()
