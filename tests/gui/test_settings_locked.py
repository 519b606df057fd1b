"""The Settings dialog shows IT's locked settings as locked, and saving cannot change them; the
About dialog shows the version, the update channel and when the last update check ran."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from agent import __version__
from agent.settings import managed
from agent.settings.autostart import Autostart
from agent.update import state
from ui.dialogs import AboutDialog, SettingsDialog


def test_locked_settings_are_greyed_out_and_win_on_save(qtbot: QtBot, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    auto = Autostart("linux", tmp_path, env)
    locked = managed.merge({"StartAtLogin": True, "Language": "en"}, {})
    dialog = SettingsDialog("ja", "ja", auto, managed=locked)
    qtbot.addWidget(dialog)
    assert not dialog.start_at_login.isEnabled() and dialog.start_at_login.isChecked()
    assert not dialog.language.isEnabled() and dialog.language.currentData() == "en"
    assert "所属組織" in dialog.start_at_login.toolTip()
    assert "所属組織" in dialog.locked_note.text()
    dialog.start_at_login.setChecked(False)  # even if the widget were toggled somehow
    assert dialog.apply_autostart(["byod-agent", "tray"])
    assert auto.is_enabled()  # the lock wins: the entry is written
    assert dialog.chosen_language() == "en"


def test_unlocked_settings_stay_editable(qtbot: QtBot, tmp_path: Path) -> None:
    auto = Autostart("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    dialog = SettingsDialog("en", "auto", auto)
    qtbot.addWidget(dialog)
    assert dialog.start_at_login.isEnabled() and dialog.language.isEnabled()
    assert not hasattr(dialog, "locked_note")


def test_about_shows_version_channel_and_last_check(qtbot: QtBot) -> None:
    status = state.Status(last_check="2026-12-01T03:00:00+00:00", outcome="up_to_date")
    lines = state.about_lines("ja", channel="pilot", status=status)
    dialog = AboutDialog("ja", update_lines=lines)
    qtbot.addWidget(dialog)
    text = dialog.body.text()
    assert __version__ in text and "pilot" in text
    assert "2026-12-01 12:00 JST" in text and "最新" in text
    never = state.about_lines("en", channel="general", status=state.Status())
    assert never[1] == "Last update check: not yet"
