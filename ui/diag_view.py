"""``byod-agent diag view``: a bundle's help-desk view (what ``diag show`` prints) in a window.

The content is agent.presentation.bundle_view (Qt-free, shared with ``diag show``): at the top,
outside the scroll area, the integrity line, the decision and the summary line; in the scroll
area the facts (policy and serial, 判定ID, ticket, ...), the checks that need attention first,
each with what the staff member was told and the fix, its evidence behind a "details" button;
the checks that are fine folded behind one button; connectivity and log lines in their own
folded section, left out entirely when the bundle has none. The Close button sits below the
scroll area, so it is on screen at any height (laid out for 1366x768, tests/gui/test_diag_view.py).

Every value comes from a bundle that may be hostile, so nothing here is ever interpreted as rich
text: labels are forced to plain text, the text panes are plain by construction.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QShowEvent, QTextOption
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n
from agent.presentation import bundle_view
from agent.presentation.bundle_view import BundleView, CheckLine
from ui import crash, fonts, screen_fit

PREFERRED = QSize(980, 860)
MAX_CELL = 4000  # a hostile field must not make the window unusable
_LONG_TOKEN = re.compile(r"\S{80}")
_COLOURS = {"fail": "#a00000", "unknown": "#6b4e00", "warn": "#8a5a00", "pass": "#1e6b1e"}


def _wrappable(text: str) -> str:
    # A label wraps only at spaces (and between CJK characters): a long run without either
    # would widen the whole window. A zero-width space every 80 characters lets it wrap.
    return _LONG_TOKEN.sub(lambda m: m.group(0) + "\u200b", text[:MAX_CELL])


def plain_label(text: str, *, bold: bool = False, name: str = "") -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)  # "<b>" stays "<b>": never rich text
    label.setText(_wrappable(text))
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    if name:
        label.setObjectName(name)
    return label


def _pane(lines: tuple[str, ...] | list[str], name: str) -> QPlainTextEdit:
    pane = QPlainTextEdit()
    pane.setObjectName(name)
    pane.setReadOnly(True)
    pane.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    pane.setPlainText("\n".join(x[:MAX_CELL] for x in lines))
    pane.setAccessibleName(name)
    line = pane.fontMetrics().lineSpacing()
    pane.setFixedHeight(min(14, max(3, len(lines) + 1)) * line + 12)
    return pane


class Fold(QWidget):
    """A button that shows and hides one section (folded at first)."""

    def __init__(self, show_text: str, hide_text: str, body: QWidget,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_text, self.hide_text, self.body = show_text, hide_text, body
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton(show_text)
        self.button.setCheckable(True)
        self.button.setAccessibleName(show_text)
        self.button.toggled.connect(self._toggled)
        row = QVBoxLayout()
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addLayout(row)
        lay.addWidget(body)
        body.setVisible(False)

    def _toggled(self, on: bool) -> None:
        self.body.setVisible(on)
        self.button.setText(self.hide_text if on else self.show_text)


class CheckBox(QFrame):
    """One check: mark, name, outcome; the finding, what the staff member was told, the fix;
    the evidence and fix steps folded."""

    def __init__(self, c: CheckLine, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.line = c
        self.setObjectName(f"check-{c.check_id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        head = f"{c.mark} {c.status_text}   {c.name}"
        if c.outcome_text:
            head += f"   ({c.outcome_text})"
        self.head = plain_label(head, bold=True)
        self.head.setStyleSheet(f"color: {_COLOURS.get(c.status, '#000000')}")
        lay.addWidget(self.head)
        if c.summary:
            lay.addWidget(plain_label(c.summary))
        for told in c.told:
            lay.addWidget(plain_label(i18n.text("diag.view.told_line", lang, text=told)))
        if c.fix_title and c.status != "pass":
            lay.addWidget(plain_label(i18n.text("diag.view.fix_line", lang, text=c.fix_title)))
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.setContentsMargins(12, 0, 0, 0)
        if c.fix_steps and c.status != "pass":
            inner.addWidget(plain_label(i18n.text("diag.view.fix_steps", lang), bold=True))
            inner.addWidget(plain_label("\n".join(f"{i + 1}. {s}"
                                                  for i, s in enumerate(c.fix_steps))))
        self.evidence = _pane(c.evidence or ("-",), f"evidence-{c.check_id}")
        inner.addWidget(self.evidence)
        self.fold = Fold(i18n.text("diag.view.show_details", lang),
                         i18n.text("diag.view.hide_details", lang), body)
        lay.addWidget(self.fold)


class DiagView(QDialog):
    def __init__(self, digest: dict[str, Any], lang: str, title: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("diag-view")
        self.view: BundleView = bundle_view.build(digest, lang)
        v, t = self.view, self.view.lang
        self.setWindowTitle(v.title + (f" - {title[:200]}" if title else ""))
        outer = QVBoxLayout(self)
        # The summary, outside the scroll area: always in view.
        self.integrity = plain_label(i18n.text("diag.view.integrity", t, line=v.integrity),
                                     bold=not v.verified, name="integrity")
        self.integrity.setStyleSheet("" if v.verified else "color: #a00000")
        self.decision = plain_label(v.decision, bold=True, name="decision")
        self.summary = plain_label(v.summary, name="summary")
        head_font = QFont(self.decision.font())
        head_font.setPointSizeF(head_font.pointSizeF() * 1.15)
        self.decision.setFont(head_font)
        for w in (self.integrity, self.decision, self.summary):
            outer.addWidget(w)
        # Everything else scrolls.
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget()
        lay = QVBoxLayout(content)
        facts = QFormLayout()
        facts.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for fact in v.facts:
            facts.addRow(plain_label(fact.label + ":"), plain_label(fact.value))
        lay.addLayout(facts)
        if v.told and t != bundle_view.STAFF_LANG:
            lay.addWidget(plain_label(i18n.text("diag.view.told", t), bold=True))
            lay.addWidget(plain_label("\n".join(v.told)))
        self.check_boxes = [CheckBox(c, t) for c in v.attention]
        for box in self.check_boxes:
            lay.addWidget(box)
        self.fine_fold: Fold | None = None
        if v.fine:
            fine = QWidget()
            fine_lay = QVBoxLayout(fine)
            fine_lay.setContentsMargins(0, 0, 0, 0)
            self.fine_boxes = [CheckBox(c, t) for c in v.fine]
            for box in self.fine_boxes:
                fine_lay.addWidget(box)
            self.fine_fold = Fold(i18n.text("diag.view.show_fine", t, count=len(v.fine)),
                                  i18n.text("diag.view.hide_fine", t), fine)
            self.fine_fold.setObjectName("fine")
            lay.addWidget(self.fine_fold)
        # Connectivity and log lines: folded, and absent when the bundle has none (no empty pane).
        self.connectivity: QPlainTextEdit | None = None
        self.logs: QPlainTextEdit | None = None
        self.more_fold: Fold | None = None
        if v.connectivity or v.logs:
            more = QWidget()
            more_lay = QVBoxLayout(more)
            more_lay.setContentsMargins(0, 0, 0, 0)
            if v.connectivity:
                more_lay.addWidget(plain_label(i18n.text("diag.view.connectivity", t),
                                               bold=True))
                self.connectivity = _pane(v.connectivity, "connectivity")
                more_lay.addWidget(self.connectivity)
            if v.logs:
                more_lay.addWidget(plain_label(i18n.text("diag.view.logs", t), bold=True))
                self.logs = _pane(v.logs, "logs")
                more_lay.addWidget(self.logs)
            self.more_fold = Fold(i18n.text("diag.view.more", t),
                                  i18n.text("diag.view.more", t), more)
            lay.addWidget(self.more_fold)
        lay.addStretch(1)
        self.scroll_area.setWidget(content)
        outer.addWidget(self.scroll_area, 1)
        buttons = QDialogButtonBox()
        close = buttons.addButton(i18n.text("diag.view.close", t),
                                  QDialogButtonBox.ButtonRole.RejectRole)
        close.setAccessibleName(close.text())
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.close_button = close
        self.labels = self.findChildren(QLabel)
        self.resize(PREFERRED)
        self._fitted = False

    def fit_to_screen(self) -> None:
        screen_fit.fit_to_screen(self, PREFERRED)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._fitted:
            self._fitted = True
            self.fit_to_screen()
        super().showEvent(event)
        screen_fit.keep_on_screen_while_placed(self)


def main(digest: dict[str, Any], lang: str, title: str | None = None) -> int:
    crash.install(lambda: lang)  # an uncaught error: logged, a short dialog, no traceback
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    fonts.apply(app)  # one Japanese UI font for the whole window (ui/fonts.py)
    view = DiagView(digest, lang, title)
    view.show()
    view.raise_()
    app.exec()
    return 0
