"""Starting and ending the remote session from the tray: the credentials dialog where the RDP
client cannot ask itself (FreeRDP on Linux), the child ``connect --events`` process
(ui/session.py), its events as notifications, and the line the status window shows.

Whether Connect may be pressed is agent.presentation.connect_gate's decision, asked again here at
the moment of the click (the view may have changed since the menu was built).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from agent.core import i18n
from agent.presentation import notify
from agent.presentation.connect_gate import connect_gate
from agent.presentation.session_view import Kind, Phase, SessionEvent
from agent.presentation.status_view import StatusView
from ui import prefs as prefs_mod
from ui.credentials_dialog import CredentialsDialog
from ui.session import SessionProcess


class SessionControl(QObject):
    changed = Signal()  # the phase changed: menu and window follow
    notice = Signal(object)  # notify.Notice to show
    recheck_soon = Signal()  # the core saw something change: show it here too

    def __init__(self, session: SessionProcess, view: Callable[[], StatusView],
                 lang: Callable[[], str], *, prefs: prefs_mod.Prefs,
                 save_prefs: Callable[[], None], ask_credentials: bool,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._view = view
        self._lang = lang
        self._prefs = prefs
        self._save_prefs = save_prefs
        self._ask_credentials = ask_credentials
        self.credentials_dialog: CredentialsDialog | None = None
        self.stopped = False  # the tray is quitting: no re-check after the end
        session.event_received.connect(self._on_event)
        session.finished.connect(self._on_finished)
        session.phase_changed.connect(self.changed.emit)

    @property
    def active(self) -> bool:
        return self.session.active

    def target_name(self, target_id: str) -> str:
        return next((x.name for x in self._view().targets if x.id == target_id), target_id)

    def connect_to(self, target_id: str) -> bool:
        """Start the session in the core CLI; refused when the gate says no (its reason is on
        screen already). Cancelling the credentials dialog starts nothing."""
        gate = connect_gate(self._view(), self._lang(), session_active=self.session.active,
                            target_id=target_id)
        if not gate.enabled:
            return False
        if not self._ask_credentials:
            return self.session.start(target_id)
        dialog = CredentialsDialog(self._lang(), self.target_name(target_id),
                                   self._prefs.last_user)
        self.credentials_dialog = dialog

        def go() -> None:
            user, password = dialog.values()
            if user != self._prefs.last_user:
                self._prefs.last_user = user
                self._save_prefs()
            self.session.start(target_id, (user, password))
            dialog.password.clear()

        dialog.accepted.connect(go)
        dialog.open()  # window-modal, the event loop keeps running
        return True

    def end(self) -> None:
        self.session.stop()

    def line(self) -> str | None:
        """"Connected to …" for the status window, None when no session runs."""
        tracker = self.session.tracker
        if tracker is None or not tracker.active:
            return None
        name = self.target_name(tracker.target_id)
        lang = self._lang()
        if tracker.phase is Phase.NONCOMPLIANT and tracker.remaining_seconds is not None:
            return i18n.text("ui.session.line.noncompliant", lang, target=name,
                             seconds=tracker.remaining_seconds)
        return i18n.text(f"ui.session.line.{tracker.phase.value}", lang, target=name)

    def _target(self) -> str:
        tracker = self.session.tracker
        return self.target_name(tracker.target_id) if tracker is not None else ""

    def _on_event(self, ev: object) -> None:
        if not isinstance(ev, SessionEvent):
            return
        if ev.kind in (Kind.BLOCKED, Kind.ERROR, Kind.ENDED):
            return  # told once, when the process is gone (_on_finished)
        found = notify.session_event(ev, self._lang(), self._target())
        if found is not None:
            self.notice.emit(found)

    def _on_finished(self, final: object) -> None:
        if not isinstance(final, SessionEvent):
            return
        found = notify.session_event(final, self._lang(), self._target())
        if found is not None:
            self.notice.emit(found)
        if not self.stopped and (final.kind is not Kind.ENDED or final.reason == "noncompliant"):
            self.recheck_soon.emit()
