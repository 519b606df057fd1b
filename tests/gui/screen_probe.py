"""Child process for test_screens.py: the Japanese status window on a real X display (Xvfb with
a window manager, set up by the parent), placed as a staff member would see it. Prints, as JSON,
the screen's available area, the window's frame and every button's rectangle on screen, and
saves a screenshot of the whole screen (the window with its title bar).

The report comes from the real checks on this machine (Debian 12 here: no disk encryption,
pending updates, no firewall), so the window shows real failures with their real fix steps.
"""

from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractButton, QApplication

from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.presentation.status_view import DecisionInfo, TargetInfo, build
from ui import fonts
from ui.status_window import StatusWindow


def rect(x: int, y: int, w: int, h: int) -> list[int]:
    return [x, y, w, h]


def main() -> int:
    shot = sys.argv[1]
    app = QApplication(sys.argv[:1])
    family = fonts.apply(app)
    report = run_posture(default_context())
    decision = DecisionInfo(False, "AB12CD34", targets=(
        TargetInfo("office-pc-demo", "庁内PC（デモ）", "Office PC (DEMO)"),))
    window = StatusWindow("ja")
    window.show_view(build(report, "ja", decision))
    window.show()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the WM maps, decorates and places the window
        app.processEvents()
        time.sleep(0.05)
        if window.isVisible() and window.frameGeometry().height() > window.height():
            break
    settle = time.monotonic() + 1.0  # the window's own corrections (showEvent timers)
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.02)
    screen = window.screen()
    area = screen.availableGeometry()
    frame = window.frameGeometry()
    buttons = []
    for b in window.findChildren(QAbstractButton):
        if not b.isVisibleTo(window) or b.window() is not window:
            continue
        if not window.scroll_area.isAncestorOf(b):  # the fixed bar, outside the scroll area
            top_left = b.mapToGlobal(QPoint(0, 0))
            buttons.append({"text": b.text(), "rect": rect(top_left.x(), top_left.y(),
                                                           b.width(), b.height())})
    screen.grabWindow(0).save(shot)
    print(json.dumps({
        "screen": rect(area.x(), area.y(), area.width(), area.height()),
        "frame": rect(frame.x(), frame.y(), frame.width(), frame.height()),
        "buttons": buttons, "font": family, "summary": window.summary.text(),
        "first_row": window.row_widgets[0].row.check_id if window.row_widgets else None,
        "first_row_status": window.row_widgets[0].row.status.value if window.row_widgets
        else None,
        "scrolls": window.scroll_area.verticalScrollBar().maximum() > 0,
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
