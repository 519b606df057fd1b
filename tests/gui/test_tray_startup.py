"""The tray never dies silently: no display is said in the OS language (exit 2, not Qt's abort
134), an uncaught exception or a critical Qt message is logged and shown as a short dialog with
no traceback on screen, and the Japanese UI font is chosen per OS."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMessageLogContext, Qt, QtMsgType
from PySide6.QtWidgets import QApplication, QMessageBox

from ui import crash, fonts
from ui.app import display_problem

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "BYOD_AGENT_LANG")}
    return {**env, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO),
            "XDG_RUNTIME_DIR": str(tmp_path), **extra}


@pytest.mark.skipif(sys.platform != "linux", reason="a display always exists on Windows/macOS")
@pytest.mark.parametrize(("extra", "lang", "needle"), [
    # Without DISPLAY the command itself says so (agent/commands/tray.py) before ui/ loads.
    ({"LANG": "ja_JP.UTF-8"}, "ja", "画面"),
    ({"LANG": "en_US.UTF-8"}, "en", "byod-agent check"),
    # DISPLAY set but no X server there: ui/app.py's probe, before any QApplication.
    ({"LANG": "ja_JP.UTF-8", "DISPLAY": ":199"}, "ja", "画面（デスクトップ）が見つからない"),
])
def test_tray_without_a_display_says_so_and_exits_2(tmp_path: Path, extra: dict[str, str],
                                                    lang: str, needle: str) -> None:
    out = subprocess.run([sys.executable, "-m", "agent", "tray"], env=_env(tmp_path, **extra),
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert needle in out.stderr
    assert "Traceback" not in out.stderr and "xcb" not in out.stderr


def test_display_problem_rules(tmp_path: Path) -> None:
    assert not display_problem({}, "win32") and not display_problem({}, "darwin")
    assert display_problem({}, "linux")
    assert not display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux")  # the user's choice
    assert display_problem({"DISPLAY": ":199"}, "linux")  # nothing listens there
    assert display_problem({"DISPLAY": "garbage"}, "linux")
    (tmp_path / "wayland-0").touch()
    assert not display_problem({"WAYLAND_DISPLAY": "wayland-0",
                                "XDG_RUNTIME_DIR": str(tmp_path)}, "linux")


def test_an_uncaught_exception_is_logged_and_shown_without_a_traceback(
        qtbot, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    crash.install(lambda: "ja")
    try:
        raise ValueError("boom in a slot")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, logger="ui.crash"):
            crash.excepthook(ValueError, exc, exc.__traceback__)
    assert "Traceback" in caplog.text and "boom in a slot" in caplog.text  # the log has it all
    err = capsys.readouterr().err
    assert "Traceback" not in err and "BYOD エージェント" in err  # one short line only
    box = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "crash-dialog")
    assert isinstance(box, QMessageBox)
    qtbot.addWidget(box)
    assert box.textFormat() is Qt.TextFormat.PlainText
    assert "予期しないエラー" in box.text() and "boom" not in box.text()
    assert "agent.log" in box.text()
    box.close()


def test_qt_messages_are_logged_critical_ones_shown(qtbot,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="ui.qt"):
        crash.qt_message(QtMsgType.QtWarningMsg, QMessageLogContext(), "a harmless warning")
        crash.qt_message(QtMsgType.QtCriticalMsg, QMessageLogContext(), "a critical one")
    assert "a harmless warning" in caplog.text and "a critical one" in caplog.text
    box = crash.show_error_dialog()  # the one already open is reused, never a second
    assert box is not None and box.isVisible()
    qtbot.addWidget(box)
    box.close()


CHILD = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from ui import crash
crash.install(lambda: "en")
app = QApplication(sys.argv[:1])
def bad():
    raise RuntimeError("slot exploded")
QTimer.singleShot(0, bad)
QTimer.singleShot(800, app.quit)
sys.exit(app.exec())
"""


def test_an_exception_in_a_slot_keeps_the_app_alive_and_off_the_terminal(tmp_path: Path) -> None:
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen", LANG="en_US.UTF-8")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr  # the event loop kept running to its quit
    assert "Traceback" not in out.stderr and "slot exploded" not in out.stderr
    assert "BYOD Agent: error" in out.stderr


def test_one_japanese_font_per_os() -> None:
    installed = ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK KR"]
    assert fonts.pick_family(installed, "linux") == "Noto Sans CJK JP"
    assert fonts.pick_family(["Arial", "Yu Gothic UI", "Meiryo"], "win32") == "Yu Gothic UI"
    assert fonts.pick_family(["Meiryo", "Arial"], "win32") == "Meiryo"
    assert fonts.pick_family(["Hiragino Sans", "Helvetica"], "darwin") == "Hiragino Sans"
    assert fonts.pick_family(["DejaVu Sans"], "linux") is None  # Qt's default is kept
