"""Child process for test_diag_view.py: ``diag view`` in Japanese on a real X display (Xvfb with
openbox, set up by the parent), as a help-desk operator on a 1366x768 laptop would see it.

The bundle is this machine's real export (tests/fixtures/diag/debian12_blocked_demo_policy.json)
read by the real reader. Prints, as JSON, the available area, the window's frame, the rectangle
of every button outside the scroll area (folded, then with every section unfolded) and whether
anything overflows sideways; saves a screenshot of the screen (folded state).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QAbstractButton, QApplication

from tests.unit.test_bundle_view import _digest
from ui import fonts
from ui.diag_view import DiagView, Fold


def _settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _state(view: DiagView) -> dict[str, Any]:
    area = view.screen().availableGeometry()
    frame = view.frameGeometry()
    buttons = []
    for b in view.findChildren(QAbstractButton):
        if b.isVisibleTo(view) and not view.scroll_area.isAncestorOf(b):
            p = b.mapToGlobal(QPoint(0, 0))
            buttons.append({"text": b.text(), "rect": [p.x(), p.y(), b.width(), b.height()]})
    content = view.scroll_area.widget()
    assert content is not None
    return {
        "screen": [area.x(), area.y(), area.width(), area.height()],
        "frame": [frame.x(), frame.y(), frame.width(), frame.height()],
        "buttons": buttons,
        "sideways": content.width() > view.scroll_area.viewport().width(),
        "scrolls": view.scroll_area.verticalScrollBar().maximum() > 0,
    }


def main() -> int:
    shot = sys.argv[1]
    app = QApplication(sys.argv[:1])
    family = fonts.apply(app)
    view = DiagView(_digest(), "ja", title="byod-diag-BB33XWBM-20261201T214237Z.zip")
    view.show()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the WM maps, decorates and places the window
        app.processEvents()
        time.sleep(0.05)
        if view.isVisible() and view.frameGeometry().height() > view.height():
            break
    _settle(app, 1.0)
    folded = _state(view)
    view.screen().grabWindow(0).save(shot)
    for fold in view.findChildren(Fold):
        fold.button.setChecked(True)
    _settle(app, 0.5)
    unfolded = _state(view)
    print(json.dumps({"folded": folded, "unfolded": unfolded, "font": family,
                      "summary": view.summary.text(), "decision": view.decision.text(),
                      "first": view.check_boxes[0].line.status if view.check_boxes else None},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
