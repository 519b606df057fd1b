"""The tray icon's menu: rebuilt from the view and the session's phase, nothing decided here.

Whether a Connect entry is enabled, and the one short line that says why not, come from
agent.presentation.connect_gate; the menu only turns them into actions and says which entry was
chosen through its signals.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from agent.core import i18n
from agent.presentation.connect_gate import connect_gate
from agent.presentation.session_view import Phase, SessionTracker
from agent.presentation.status_view import StatusView


class TrayMenu(QObject):
    open_status = Signal()
    connect_to = Signal(str)  # target id
    disconnect_requested = Signal()
    recheck = Signal()
    certificate = Signal()
    export = Signal()
    settings = Signal()
    about = Signal()
    quit = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.menu = QMenu()
        self.menu.setToolTipsVisible(True)
        self.actions: dict[str, QAction] = {}

    def rebuild(self, view: StatusView, lang: str, tracker: SessionTracker | None,
                running: bool, target_name: Callable[[str], str]) -> None:
        t = lang
        self.menu.clear()
        self.actions = {}
        self._add("status", i18n.text("ui.menu.status", t,
                                      state=i18n.text(f"ui.state.{view.state.value}", t)))
        self._add("open_status", i18n.text("ui.menu.open_status", t), self.open_status.emit)
        self.menu.addSeparator()
        self._add_connect_items(view, t, tracker, target_name)
        self._add("recheck", i18n.text("ui.menu.recheck", t), self.recheck.emit)
        self.menu.addSeparator()
        self._add("certificate", i18n.text("ui.menu.certificate", t), self.certificate.emit)
        self._add("export", i18n.text("ui.menu.export", t), self.export.emit)
        self._add("settings", i18n.text("ui.menu.settings", t), self.settings.emit)
        self._add("about", i18n.text("ui.menu.about", t), self.about.emit)
        self.menu.addSeparator()
        self._add("quit", i18n.text("ui.menu.quit", t), self.quit.emit)
        self.set_running(running)

    def set_running(self, running: bool) -> None:
        if "recheck" in self.actions:
            self.actions["recheck"].setEnabled(not running)

    def _add(self, name: str, text: str, slot: Callable[[], object] | None = None, *,
             short: str = "", reason: str = "", lang: str = "ja") -> QAction:
        """An entry; disabled (with its one short reason, the full one as tooltip) when
        ``short`` is set or there is nothing to do."""
        if short:
            text = i18n.text("ui.menu.disabled", lang, label=text, reason=short)
        action = self.menu.addAction(text)
        action.setObjectName(name)
        if short or slot is None:
            action.setEnabled(False)
            action.setToolTip(reason or short or text)
        else:  # triggered(checked): never let the flag reach the slot's own arguments
            action.triggered.connect(lambda _checked=False, fn=slot: fn())
        self.actions[name] = action
        return action

    def _add_connect_items(self, view: StatusView, lang: str, tracker: SessionTracker | None,
                           target_name: Callable[[str], str]) -> None:
        """One entry per approved target; "Disconnect" while a session runs."""
        if tracker is not None and tracker.active:
            name = target_name(tracker.target_id)
            if tracker.phase is Phase.STOPPING:
                self._add("disconnect", i18n.text("ui.menu.disconnecting", lang, target=name))
            else:
                self._add("disconnect", i18n.text("ui.menu.disconnect", lang, target=name),
                          self.disconnect_requested.emit)
            return
        if not view.targets:
            gate = connect_gate(view, lang)
            self._add("connect", i18n.text("ui.menu.connect", lang), short=gate.short,
                      reason=gate.reason, lang=lang)
            return
        for target in view.targets:
            gate = connect_gate(view, lang, target_id=target.id)
            self._add(f"connect:{target.id}",
                      i18n.text("ui.menu.connect_to", lang, target=target.name),
                      self._connect_slot(target.id) if gate.enabled else None,
                      short=gate.short, reason=gate.reason, lang=lang)

    def _connect_slot(self, target_id: str) -> Callable[[], None]:
        def slot() -> None:
            self.connect_to.emit(target_id)
        return slot
