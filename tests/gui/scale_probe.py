"""Child process for test_accessibility.py: the Japanese status window at QT_SCALE_FACTOR (set by
the parent before Qt starts), laid out offscreen; prints every clipped text as JSON."""

from __future__ import annotations

import json
import sys

from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from agent.posture.checks.disk_encryption import check as disk_encryption
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.presentation.status_view import DecisionInfo, TargetInfo, build
from ui.status_window import StatusWindow


def clipped(window: QWidget) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for w in window.findChildren(QWidget):
        if not w.isVisibleTo(window) or not isinstance(w, (QLabel, QAbstractButton)):
            continue
        if not w.text():
            continue
        hint = w.minimumSizeHint()
        need_h = (w.heightForWidth(w.width()) if isinstance(w, QLabel) and w.wordWrap()
                  else hint.height())
        if w.width() < hint.width() or w.height() < need_h:
            out.append({"text": w.text()[:60], "size": [w.width(), w.height()],
                        "needs": [hint.width(), need_h]})
    return out


def main() -> int:
    app = QApplication(sys.argv[:1])
    report = run_posture(default_context(), [("os_supported", os_supported.check),
                                             ("disk_encryption", disk_encryption.check)])
    decision = DecisionInfo(False, "AB12CD34", targets=(
        TargetInfo("office-pc-demo", "庁内PC（デモ）", "Office PC (DEMO)"),))
    window = StatusWindow("ja")
    window.show_view(build(report, "ja", decision))
    window.show()
    for w in window.row_widgets:
        w.details_button.setChecked(True)  # evidence open too
    for _ in range(5):
        app.processEvents()
    print(json.dumps({"ratio": window.devicePixelRatio(), "clipped": clipped(window),
                      "labels": len(window.findChildren(QLabel))}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
