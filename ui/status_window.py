"""The status window: every check with its result, the plain reason and the steps to fix it.

It only paints an ``agent.presentation.status_view.StatusView``; what a result means is decided
in agent/.
"""

from __future__ import annotations

import json
from datetime import datetime

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
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
from agent.posture.model import Status
from agent.presentation.status_view import CheckRow, StatusView
from ui.icons import icon

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
        # Rows keep their natural height; the stretch below them takes any spare space.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
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
        self.resize(QSize(860, 960))
        outer = QVBoxLayout(self)
        head = QHBoxLayout()
        self.state_icon = QLabel()
        self.state_icon.setFixedSize(56, 56)
        head.addWidget(self.state_icon, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        self.headline = _wrap("")
        self.headline.setObjectName("headline")
        self.meta = _wrap("")
        texts.addWidget(self.headline)
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
        enabled = [x for x in (self.view.targets if self.view else ()) if x.enabled]
        if len(enabled) == 1:
            self.connect_requested.emit(enabled[0].id)
        elif enabled:  # several approved targets: the user picks one
            self.connect_menu.popup(self.connect_button.mapToGlobal(
                self.connect_button.rect().bottomLeft()))

    def _paint_connect(self, view: StatusView) -> None:
        t = self.lang
        self.connect_menu.clear()
        for target in view.targets:
            action = self.connect_menu.addAction(target.name)
            action.setObjectName(f"connect:{target.id}")
            action.setEnabled(target.enabled)
            action.triggered.connect(lambda _c=False, tid=target.id:
                                     self.connect_requested.emit(tid))
        if self.session_text is not None:
            self.connect_button.setText(i18n.text("ui.status.disconnect", t))
            self.connect_button.setEnabled(True)
            self.connect_reason.hide()
        else:
            enabled = [x for x in view.targets if x.enabled]
            label = (i18n.text("ui.status.connect_to", t, target=enabled[0].name)
                     if len(enabled) == 1 else i18n.text("ui.status.connect", t))
            self.connect_button.setText(label)
            allowed = view.connect_allowed and bool(enabled)
            self.connect_button.setEnabled(allowed)
            reason = "" if allowed else (view.connect_reason or
                                         i18n.text("ui.connect.no_targets", t))
            self.connect_reason.setText(_esc(reason))
            self.connect_reason.setVisible(bool(reason))
            self.connect_button.setToolTip(reason)
        self.connect_button.setAccessibleName(self.connect_button.text())

    def show_view(self, view: StatusView) -> None:
        """Paint a view; Connect is on only when the decision allows it."""
        self.view = view
        t = self.lang
        self.state_icon.setPixmap(icon(view.state).pixmap(QSize(56, 56)))
        self.state_icon.setAccessibleName(i18n.text(f"ui.state.{view.state.value}", t))
        self.headline.setText(f"<span style='font-size:15pt'><b>{_esc(view.headline)}</b></span>")
        meta = []
        if view.generated_at:
            meta.append(i18n.text("ui.status.checked_at", t, time=_local_time(view.generated_at)))
        meta.append(i18n.text("ui.status.correlation", t, id=view.correlation_id)
                    if view.correlation_id else i18n.text("ui.status.no_policy", t))
        self.meta.setText("<br>".join(_esc(m) for m in meta))
        self.error_label.setVisible(view.error is not None)
        if view.error is not None:
            self.error_label.setText(_esc(i18n.text("ui.status.error", t, error=view.error)))
        for w in self.row_widgets:
            w.setParent(None)
            w.deleteLater()
        self.row_widgets = [CheckRowWidget(r, t) for r in view.rows]
        while self.rows_layout.count():
            self.rows_layout.takeAt(0)
        for w in self.row_widgets:
            self.rows_layout.addWidget(w)
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
