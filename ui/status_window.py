"""The status window: every check with its result, the plain reason and the steps to fix it.

It only paints an ``agent.presentation.status_view.StatusView``; what a result means is decided
in agent/. Layout (docs/tray.md): headline and a summary line ("6項目中3項目に対応が必要です") at
the top, the items that need attention first, the passing ones folded behind one button, all of
it in a scroll area; the buttons sit below the scroll area, so they stay on screen at any height.
The window never opens taller or wider than the screen's available area.
"""

from __future__ import annotations

import json
from datetime import datetime

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n
from agent.core.status import Status
from agent.presentation.connect_gate import connect_gate
from agent.presentation.status_view import CheckRow, StatusView, needs_attention
from ui import screen_fit
from ui.icons import icon

PREFERRED = QSize(860, 900)  # shrunk to the screen's available area (taskbar excluded)

# Colour is a second cue only: every status also has its own mark (✔ ▲ ✖ ?) and word.
_CHIP_COLOURS = {Status.PASS: ("#1e7e34", "#ffffff"), Status.WARN: ("#f0ad00", "#1a1a1a"),
                 Status.FAIL: ("#c62828", "#ffffff"), Status.UNKNOWN: ("#5f6368", "#ffffff")}


class CheckRowWidget(QFrame):
    """One check: name and status, reason, fix steps, "open settings", evidence on demand."""

    def __init__(self, row: CheckRow, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = row
        self.lang = lang
        self.setObjectName(f"check-{row.check_id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # Preferred, not Maximum: a Maximum height is the unwrapped sizeHint and clips wrapped
        # text in a narrow window (200 % on a small screen); the stretch below takes spare space.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setAccessibleName(i18n.text("ui.status.row_name", lang, name=row.name,
                                         status=row.status_label))
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        bg, fg = _CHIP_COLOURS[row.status]
        self.chip = QLabel(f"{row.mark} {row.status_label}")
        self.chip.setStyleSheet(f"background:{bg}; color:{fg}; padding:2px 8px;"
                                "border-radius:4px; font-weight:bold;")
        self.chip.setAccessibleName(row.status_label)
        name = QLabel(f"<b>{_esc(row.name)}</b>")
        top.addWidget(self.chip)
        top.addWidget(name, 1)
        lay.addLayout(top)
        self.reason = _wrap(_esc(row.reason))
        lay.addWidget(self.reason)
        if row.blocks_from:
            lay.addWidget(_wrap(f"<i>{_esc(row.blocks_from)}</i>"))
        self.fix: QLabel | None = None
        if row.fix_title:
            steps = "".join(f"<li>{_esc(s)}</li>" for s in row.fix_steps)
            self.fix = _wrap(f"<b>{_esc(i18n.text('ui.status.how_to_fix', lang))}: "
                             f"{_esc(row.fix_title)}</b><ol style='margin-top:2px'>{steps}</ol>")
            self.fix.setAccessibleName(f"{i18n.text('ui.status.how_to_fix', lang)}: "
                                       f"{row.fix_title}")
            lay.addWidget(self.fix)
        buttons = QHBoxLayout()
        self.settings_button: QPushButton | None = None
        if row.settings_uri:
            self.settings_button = QPushButton(i18n.text("ui.status.open_settings", lang))
            self.settings_button.setAccessibleName(
                f"{i18n.text('ui.status.open_settings', lang)}: {row.name}")
            self.settings_button.clicked.connect(self._open_settings)
            buttons.addWidget(self.settings_button)
        self.details_button = QPushButton(i18n.text("ui.status.details", lang))
        self.details_button.setCheckable(True)
        self.details_button.setAccessibleName(f"{i18n.text('ui.status.details', lang)}: "
                                              f"{row.name}")
        self.details_button.toggled.connect(self._toggle_details)
        buttons.addWidget(self.details_button)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        self.details = QPlainTextEdit(json.dumps(row.evidence, ensure_ascii=False, indent=2,
                                                 default=str))
        self.details.setReadOnly(True)
        self.details.setAccessibleName(i18n.text("ui.status.details", lang))
        self.details.setMaximumHeight(140)
        self.details.hide()
        lay.addWidget(self.details)
        self.open_error = _wrap("")
        self.open_error.hide()
        lay.addWidget(self.open_error)

    def _toggle_details(self, on: bool) -> None:
        self.details.setVisible(on)
        key = "ui.status.details_hide" if on else "ui.status.details"
        self.details_button.setText(i18n.text(key, self.lang))

    def _open_settings(self) -> None:
        uri = self.row.settings_uri or ""
        if not QDesktopServices.openUrl(QUrl(uri)):
            self.open_error.setText(_esc(i18n.text("ui.status.open_failed", self.lang, uri=uri)))
            self.open_error.show()



class StatusWindow(QWidget):
    recheck_requested = Signal()
    connect_requested = Signal(str)  # target id
    disconnect_requested = Signal()

    def __init__(self, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.view: StatusView | None = None
        self.no_tray_reason = False
        self.setObjectName("status-window")
        self.resize(PREFERRED)
        outer = QVBoxLayout(self)
        head = QHBoxLayout()
        self.state_icon = QLabel()
        self.state_icon.setFixedSize(56, 56)
        head.addWidget(self.state_icon, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        self.headline = _wrap("")
        self.headline.setObjectName("headline")
        self.summary = _wrap("")
        self.summary.setObjectName("summary")
        self.meta = _wrap("")
        texts.addWidget(self.headline)
        texts.addWidget(self.summary)
        texts.addWidget(self.meta)
        head.addLayout(texts, 1)
        outer.addLayout(head)
        self.banner = _wrap("")
        self.banner.setObjectName("banner")
        self.banner.hide()
        outer.addWidget(self.banner)
        self.error_label = _wrap("")
        self.error_label.hide()
        outer.addWidget(self.error_label)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.rows_host = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_host)
        self.scroll_area.setWidget(self.rows_host)
        outer.addWidget(self.scroll_area, 1)
        self.connect_reason = _wrap("")
        outer.addWidget(self.connect_reason)
        self.session_line = _wrap("")
        self.session_line.setObjectName("session-line")
        self.session_line.hide()
        outer.addWidget(self.session_line)
        bar = QHBoxLayout()
        self.recheck_button = QPushButton()
        self.recheck_button.clicked.connect(self.recheck_requested)
        self.connect_button = QPushButton()
        self.connect_button.clicked.connect(self._on_connect_clicked)
        self.connect_menu = QMenu(self)
        self.session_text: str | None = None
        self.close_button = QPushButton()
        self.close_button.clicked.connect(self.close)
        for b in (self.recheck_button, self.connect_button):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.close_button)
        outer.addLayout(bar)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.recheck_requested.emit)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)
        self.row_widgets: list[CheckRowWidget] = []
        self.passed_toggle = QPushButton()
        self.passed_toggle.setObjectName("passed-toggle")
        self.passed_toggle.setCheckable(True)
        self.passed_toggle.toggled.connect(self._show_passed)
        self._fitted = False
        self._retranslate()

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self._retranslate()

    def show_no_tray(self) -> None:
        self.no_tray_reason = True
        self._retranslate()

    def _retranslate(self) -> None:
        t = self.lang
        self.setWindowTitle(i18n.text("ui.status.title", t))
        self.setAccessibleName(i18n.text("ui.status.title", t))
        self.recheck_button.setText(i18n.text("ui.status.recheck", t))
        self.connect_button.setText(i18n.text("ui.status.connect", t))
        self.close_button.setText(i18n.text("ui.status.close", t))
        for b in (self.recheck_button, self.connect_button, self.close_button):
            b.setAccessibleName(b.text())
        if self.no_tray_reason:
            self.banner.setText(_esc(i18n.text("ui.status.no_tray", t)))
            self.banner.show()
        if self.view is not None:
            self.show_view(self.view)

    def set_session(self, line: str | None) -> None:
        """A running session turns Connect into Disconnect and says so in a line."""
        self.session_text = line
        self.session_line.setText(_esc(line or ""))
        self.session_line.setVisible(line is not None)
        if self.view is not None:
            self._paint_connect(self.view)

    def _on_connect_clicked(self) -> None:
        if self.session_text is not None:
            self.disconnect_requested.emit()
            return
        view = self.view
        if view is None or not connect_gate(view, self.lang).enabled:
            return
        if len(view.targets) == 1:
            self.connect_requested.emit(view.targets[0].id)
        else:  # several approved targets: the user picks one
            self.connect_menu.popup(self.connect_button.mapToGlobal(
                self.connect_button.rect().bottomLeft()))

    def _paint_connect(self, view: StatusView) -> None:
        t = self.lang
        gate = connect_gate(view, t)
        self.connect_menu.clear()
        for target in view.targets:
            action = self.connect_menu.addAction(target.name)
            action.setObjectName(f"connect:{target.id}")
            action.setEnabled(gate.enabled)
            action.triggered.connect(lambda _c=False, tid=target.id:
                                     self.connect_requested.emit(tid))
        if self.session_text is not None:
            self.connect_button.setText(i18n.text("ui.status.disconnect", t))
            self.connect_button.setEnabled(True)
            self.connect_reason.hide()
        else:
            label = (i18n.text("ui.status.connect_to", t, target=view.targets[0].name)
                     if len(view.targets) == 1 else i18n.text("ui.status.connect", t))
            self.connect_button.setText(label)
            self.connect_button.setEnabled(gate.enabled)
            self.connect_reason.setText(_esc(gate.reason))
            self.connect_reason.setVisible(bool(gate.reason))
            self.connect_button.setToolTip(gate.reason)
        self.connect_button.setAccessibleName(self.connect_button.text())

    def _passed(self) -> list[CheckRowWidget]:
        return [w for w in self.row_widgets if not needs_attention(w.row)]

    def _show_passed(self, on: bool) -> None:
        passed = self._passed()
        for w in passed:
            w.setVisible(on)
        key = "ui.status.passed_hide" if on else "ui.status.passed_show"
        self.passed_toggle.blockSignals(True)
        self.passed_toggle.setChecked(on)
        self.passed_toggle.blockSignals(False)
        self.passed_toggle.setText(i18n.text(key, self.lang, count=len(passed)))
        self.passed_toggle.setAccessibleName(self.passed_toggle.text())

    def focus_check(self, check_id: str) -> None:
        """Open one item (a notification's click): scrolled into view, its fix button focused."""
        for w in self.row_widgets:
            if w.row.check_id == check_id:
                if w in self._passed():
                    self._show_passed(True)
                self.scroll_area.ensureWidgetVisible(w)
                (w.settings_button or w.details_button).setFocus()
                return

    def fit_to_screen(self) -> None:
        screen_fit.fit_to_screen(self, PREFERRED)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._fitted:
            self._fitted = True
            self.fit_to_screen()
        super().showEvent(event)
        screen_fit.keep_on_screen_while_placed(self)

    def show_view(self, view: StatusView) -> None:
        """Paint a view; Connect follows agent.presentation.connect_gate."""
        self.view = view
        t = self.lang
        self.state_icon.setPixmap(icon(view.state).pixmap(QSize(56, 56)))
        self.state_icon.setAccessibleName(i18n.text(f"ui.state.{view.state.value}", t))
        self.headline.setText(f"<span style='font-size:15pt'><b>{_esc(view.headline)}</b></span>")
        self.summary.setText(f"<b>{_esc(view.summary)}</b>")
        self.summary.setVisible(bool(view.summary))
        meta = []
        if view.generated_at:
            meta.append(i18n.text("ui.status.checked_at", t, time=_local_time(view.generated_at)))
        meta.append(i18n.text("ui.status.correlation", t, id=view.correlation_id)
                    if view.correlation_id else i18n.text("ui.status.no_policy", t))
        self.meta.setText("<br>".join(_esc(m) for m in meta))
        self.error_label.setVisible(view.error is not None)
        if view.error is not None:
            self.error_label.setText(_esc(i18n.text("ui.status.error", t, error=view.error)))
        was_open = self.passed_toggle.isChecked()
        for w in self.row_widgets:
            w.setParent(None)
            w.deleteLater()
        while self.rows_layout.count():
            self.rows_layout.takeAt(0)
        self.row_widgets = [CheckRowWidget(r, t) for r in view.rows]
        passed = self._passed()
        for w in self.row_widgets:
            if w not in passed:
                self.rows_layout.addWidget(w)
        # The items that are fine, folded behind one button; open when nothing needs care.
        self.rows_layout.addWidget(self.passed_toggle)
        self.passed_toggle.setVisible(bool(passed))
        for w in passed:
            self.rows_layout.addWidget(w)
        self._show_passed(was_open or len(passed) == len(self.row_widgets))
        self.rows_layout.addStretch(1)
        self._paint_connect(view)
        self.recheck_button.setEnabled(view.state.value != "checking")


def _wrap(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.RichText)  # callers escape whatever is not markup
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _local_time(iso_utc: str) -> str:
    try:
        return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone().strftime(
            "%Y-%m-%d %H:%M")
    except ValueError:
        return iso_utc
