"""The tray's notifications: show a ``Notice`` (agent.presentation.notify decides what it says),
open the place it names when it is clicked, and the daily certificate-expiry check (the
evaluation worker reads the certificate in the real tray: ``cert_warning``; in-process test runs
ask the keystore on the pool: ``check_certificate``).

A click on a notification (``QSystemTrayIcon.messageClicked``) refers to the last one shown, so
the last notice is kept and ``open_requested`` tells the controller where to go (the status
window at the failing item, or the certificate dialog).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from agent.presentation import notify
from ui import prefs as prefs_mod
from ui.task import Task

if TYPE_CHECKING:
    from agent.keystore import Keystore

log = logging.getLogger(__name__)

_ICON = {notify.Level.CRITICAL: QSystemTrayIcon.MessageIcon.Critical,
         notify.Level.WARNING: QSystemTrayIcon.MessageIcon.Warning,
         notify.Level.INFO: QSystemTrayIcon.MessageIcon.Information}
SHOW_MS = 8000


class Notifier(QObject):
    shown = Signal(object)  # notify.Notice, as shown
    open_requested = Signal(object)  # notify.Notice the user clicked

    def __init__(self, tray: QSystemTrayIcon, lang: Callable[[], str], *,
                 prefs: prefs_mod.Prefs, save_prefs: Callable[[], None],
                 cert_store: Callable[[], Keystore], today: Callable[[], date],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tray = tray
        self._lang = lang
        self._prefs = prefs
        self._save_prefs = save_prefs
        self._today = today
        self.notices: list[notify.Notice] = []
        self.last: notify.Notice | None = None
        self.cert_task = Task(lambda: cert_store().status(), self)
        self.cert_task.result.connect(self._on_cert_status)
        self.cert_task.error.connect(lambda err: log.warning("certificate status: %s", err))
        tray.messageClicked.connect(self.clicked)

    def show(self, notice: notify.Notice) -> None:
        self.notices.append(notice)
        self.last = notice
        log.info("notification %s", notice.key)
        if self._tray.isVisible():
            self._tray.showMessage(notice.title, notice.body, _ICON[notice.level], SHOW_MS)
        self.shown.emit(notice)

    def show_if(self, notice: notify.Notice | None) -> None:
        if notice is not None:
            self.show(notice)

    def clicked(self) -> None:
        """The user clicked the last notification: go where it says."""
        if self.last is not None and self.last.action is not notify.Action.NONE:
            self.open_requested.emit(self.last)

    def check_certificate(self) -> None:
        """The keyring may be slow or prompt: ask it on the pool, never here."""
        self.cert_task.start()

    def _on_cert_status(self, status: object) -> None:
        from agent.keystore import CertStatus  # noqa: PLC0415 (cert_store already loaded it)

        if isinstance(status, CertStatus):
            self.cert_warning(status.warning)

    def cert_warning(self, warning: notify.ExpiryWarning | None) -> None:
        """The certificate's expiry warning (None: not close to expiry): a notice at most once
        per threshold per day."""
        notice, record = notify.cert_expiry(warning, self._today(),
                                            self._prefs.cert_notified, self._lang())
        if record != self._prefs.cert_notified:
            self._prefs.cert_notified = record
            self._save_prefs()
        self.show_if(notice)
