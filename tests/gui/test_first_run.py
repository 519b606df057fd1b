"""The first-run window: shown once per user, plain Japanese, remembered in ui.json; start at
login turned on for installed builds only when nobody has chosen; Windows "blocked" explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from agent.core import i18n
from agent.settings.autostart import Autostart, first_run_default
from agent.settings.managed import Locked, ManagedSettings, Source
from tests.gui.test_tray_app import _real_checks, make_controller  # noqa: F401 (fixture)
from tests.unit.test_autostart import DictApprovedKey, DictRunKey
from ui import first_run
from ui import prefs as prefs_mod
from ui.dialogs import SettingsDialog

pytestmark = pytest.mark.gui
ARGV = ["/opt/byod-agent/byod-agent", "tray"]


def _linux(tmp_path: Path) -> Autostart:
    return Autostart("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                                         "XDG_CONFIG_DIRS": str(tmp_path / "no-system")})


def _show(qtbot, tmp_path: Path, autostart: Autostart | None, *,  # type: ignore[no-untyped-def]
          installed: bool = True, fresh: bool = True,
          managed: ManagedSettings | None = None) -> first_run.FirstRunDialog | None:
    path = tmp_path / "ui.json"
    dialog = first_run.maybe_show(prefs_mod.load(path), path, "ja", fresh=fresh,
                                  autostart=autostart, autostart_argv=ARGV,
                                  managed=managed or ManagedSettings(), installed=installed)
    if dialog is not None:
        qtbot.addWidget(dialog)
    return dialog


def test_shown_once_and_remembered(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _show(qtbot, tmp_path, _linux(tmp_path))
    assert first is not None and first.isVisible()
    assert prefs_mod.load(tmp_path / "ui.json").first_run_shown  # remembered at once
    assert _show(qtbot, tmp_path, _linux(tmp_path)) is None  # the next start: not again
    first.ok_button.click()
    assert not first.isVisible()


def test_plain_japanese_what_it_reads_and_never_sends(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = _show(qtbot, tmp_path, _linux(tmp_path))
    assert dialog is not None
    labels = dialog.findChildren(QLabel)
    assert all(lbl.textFormat() == Qt.TextFormat.PlainText for lbl in labels)
    text = "\n".join(lbl.text() for lbl in labels)
    assert dialog.windowTitle() == "BYOD エージェントへようこそ"
    for heading in ("このアプリについて", "このPCで確認する内容", "読まないもの・送らないもの"):
        assert heading in text
    assert "パスワード" in text and "自分から情報を送ることはありません" in text
    assert "ディスクが暗号化されているかどうか" in text  # the About/Privacy list, verbatim


def test_installed_fresh_user_gets_start_at_login(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _linux(tmp_path)
    dialog = _show(qtbot, tmp_path, a)
    assert a.state() == "on" and (tmp_path / "cfg" / "autostart" / "byod-agent.desktop").is_file()
    assert dialog is not None and dialog.autostart_note is not None
    assert dialog.autostart_note.text() == i18n.text("ui.first_run.autostart_on", "ja")


@pytest.mark.parametrize(("installed", "fresh", "locked"), [
    (False, True, False),  # python -m agent: a developer's run never writes an entry
    (True, False, False),  # ui.json existed: someone may have switched it off on purpose
    (True, True, True),  # IT locked StartAtLogin: the lock decides
])
def test_start_at_login_left_alone(qtbot, tmp_path: Path, installed: bool, fresh: bool,  # type: ignore[no-untyped-def]
                                   locked: bool) -> None:
    a = _linux(tmp_path)
    managed = ManagedSettings({"StartAtLogin": Locked(False, Source.PLATFORM)} if locked else {})
    dialog = _show(qtbot, tmp_path, a, installed=installed, fresh=fresh, managed=managed)
    assert a.state() == "off"
    assert dialog is not None and dialog.autostart_note is not None
    assert dialog.autostart_note.text() == i18n.text("ui.first_run.autostart_off", "ja")


def test_windows_blocked_is_respected_and_explained(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run, approved = DictRunKey(), DictApprovedKey()
    run.values["jp.lg.byod-agent"] = '"C:\\byod\\byod-agent.exe" tray'  # what the MSI writes
    approved.values["jp.lg.byod-agent"] = bytes([3]) + bytes(3) + bytes(range(1, 9))  # off
    a = Autostart("windows", tmp_path, {}, run_key=run, approved_key=approved)
    dialog = _show(qtbot, tmp_path, a)
    assert a.state() == "blocked"  # the user's own "off" in Task Manager is not undone
    assert dialog is not None and dialog.autostart_note is not None
    assert "タスク マネージャー" in dialog.autostart_note.text()
    settings = SettingsDialog("ja", "auto", a, managed=ManagedSettings())
    qtbot.addWidget(settings)
    settings.show()
    assert settings.autostart_blocked.isVisible() and not settings.start_at_login.isChecked()
    assert "「有効にする」" in settings.autostart_blocked.text()
    assert settings.autostart_blocked.textFormat() == Qt.TextFormat.PlainText
    settings.start_at_login.setChecked(True)  # what the label tells them to do
    assert settings.apply_autostart(ARGV) and a.state() == "on"
    on = SettingsDialog("ja", "auto", a, managed=ManagedSettings())
    qtbot.addWidget(on)
    on.show()
    assert not on.autostart_blocked.isVisible()


def test_the_rule() -> None:
    assert first_run_default(installed=True, state="off", locked=False)
    assert not first_run_default(installed=True, state="blocked", locked=False)
    assert not first_run_default(installed=True, state="on", locked=False)


def test_the_tray_shows_it_once(qtbot, tmp_path: Path, make_controller) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    c = make_controller(_real_checks)
    welcome = first_run.for_tray(c, fresh=True)
    assert welcome is not None
    qtbot.addWidget(welcome)
    assert first_run.for_tray(c, fresh=True) is None
    assert prefs_mod.load(tmp_path / "ui.json").first_run_shown
