"""``byod-agent diag view``: a bundle's digest (what ``diag show`` prints) in a window.

Every value comes from a bundle that may be hostile, so nothing here is ever interpreted as rich
text: labels are forced to plain text, the table and text panes are plain by construction.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n
from agent.diagnostics.render import integrity_line

_COLUMNS = ("status", "check", "summary", "evidence", "fix")
MAX_CELL = 4000  # a hostile field must not make the table unusable


def plain_label(text: str) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)  # "<b>" stays "<b>": never rich text
    label.setText(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _s(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:MAX_CELL]


def _pane(lines: list[str]) -> QPlainTextEdit:
    pane = QPlainTextEdit()
    pane.setReadOnly(True)
    pane.setPlainText("\n".join(_s(x) for x in lines))
    return pane


class DiagView(QDialog):
    def __init__(self, digest: dict[str, Any], lang: str, title: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("diag-view")
        t = lang
        self.setWindowTitle(i18n.text("diag.view.title", t, bundle_id=_s(digest.get("bundle_id")))
                            + (f" - {title}" if title else ""))
        lay = QVBoxLayout(self)
        header = [
            i18n.text("diag.view.bundle", t, bundle_id=_s(digest.get("bundle_id")),
                      created=_s(digest.get("created_at")),
                      version=_s(digest.get("agent_version"))),
            i18n.text("diag.view.integrity", t, line=_s(integrity_line(digest))),
            i18n.text("diag.view.ticket", t, ticket=_s(digest.get("ticket") or "-"),
                      correlation=_s(digest.get("correlation_id") or "-")),
            i18n.text("diag.view.redaction", t, level=_s(digest.get("redaction_level")),
                      compliant=_s(digest.get("compliant"))),
        ]
        self.labels = [plain_label(line) for line in header]
        verified = bool(digest.get("verification", {}).get("verified"))
        self.labels[1].setObjectName("integrity")
        self.labels[1].setStyleSheet("" if verified else "color: #a00000; font-weight: bold")
        for label in self.labels:
            lay.addWidget(label)
        lay.addWidget(plain_label(i18n.text("diag.view.checks", t)))
        self.table = self._checks_table(digest.get("checks") or [], t)
        lay.addWidget(self.table, 3)
        lay.addWidget(plain_label(i18n.text("diag.view.connectivity", t)))
        self.connectivity = _pane(list(digest.get("connectivity") or []))
        lay.addWidget(self.connectivity, 1)
        lay.addWidget(plain_label(i18n.text("diag.view.logs", t)))
        self.logs = _pane(list(digest.get("log_excerpts") or []))
        lay.addWidget(self.logs, 2)
        buttons = QDialogButtonBox()
        close = buttons.addButton(i18n.text("diag.view.close", t),
                                  QDialogButtonBox.ButtonRole.RejectRole)
        close.setAccessibleName(close.text())
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(1000, 720)

    @staticmethod
    def _checks_table(checks: list[Any], lang: str) -> QTableWidget:
        table = QTableWidget(len(checks), len(_COLUMNS))
        table.setHorizontalHeaderLabels([i18n.text(f"diag.view.col.{c}", lang) for c in _COLUMNS])
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(True)
        for row, item in enumerate(checks):
            c = item if isinstance(item, dict) else {}
            raw = c.get("summary")
            summary: dict[str, Any] = raw if isinstance(raw, dict) else {}
            text = "\n".join(_s(summary.get(k, "")) for k in ("ja", "en") if summary.get(k))
            cells = (c.get("status"), c.get("id"), text, c.get("evidence"),
                     c.get("remediation") or "")
            for col, value in enumerate(cells):
                table.setItem(row, col, QTableWidgetItem(_s(value)))  # items are plain text
        header = table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        table.resizeRowsToContents()
        return table


def main(digest: dict[str, Any], lang: str, title: str | None = None) -> int:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    view = DiagView(digest, lang, title)
    view.show()
    view.raise_()
    app.exec()
    return 0
