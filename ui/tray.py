"""The tray application's controller: it wires a few parts with one job each and opens windows.

- ``ui.tray_checks.CheckScheduler``: when to re-check, the run on the thread pool -> StatusView
- ``ui.tray_menu.TrayMenu``: the icon's menu (Connect entries from agent.presentation.connect_gate)
- ``ui.tray_session.SessionControl``: the remote session (credentials, child process, its events)
- ``ui.tray_notify.Notifier``: notifications, where a click leads, certificate expiry
- ``ui.tray_icon.TrayIconHost``: showing the icon once a tray exists; the state-file hook
- ``ui.status_window.StatusWindow``: the window (it only paints a view)

Nothing here decides what a result means (agent/presentation does).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QDialog, QSystemTrayIcon

from agent.core import i18n
from agent.core.osname import current_os
from agent.presentation import notify
from agent.presentation.status_view import StatusView, TrayState
from agent.settings import store as settings_store
from agent.settings.autostart import Autostart
from agent.update import state as update_state
from ui import prefs as prefs_mod
from ui.dialogs import AboutDialog, SettingsDialog
from ui.evaluation_task import TIMEOUT_MS
from ui.icons import icon
from ui.session import SessionProcess
from ui.tray_checks import CheckScheduler, DecideFn, RunFn
from ui.tray_icon import TrayIconHost
from ui.tray_menu import TrayMenu
from ui.tray_notify import Notifier
from ui.tray_session import SessionControl
from ui.wake import WakeWatcher

if TYPE_CHECKING:  # loaded when the certificate dialog opens (cryptography, keyring)
    from agent.keystore import Keystore
    from ui.cert_dialog import CertDialog
    from ui.status_window import StatusWindow

log = logging.getLogger(__name__)

__all__ = ["TrayController", "TrayOptions", "resolve_language"]


def _default_cert_store() -> Keystore:
    from agent.keystore import Keystore  # noqa: PLC0415 (only when the dialog is opened)

    return Keystore.default()


def _needs_credentials(platform: str) -> bool:
    """FreeRDP (Linux) has no credential dialog: the tray asks (agent.session.clients says the
    same; not imported here because it loads the policy model)."""
    return platform == "linux"


def resolve_language(override: str | None, pref: str) -> str:
    if override in i18n.LANGS:
        return str(override)
    if pref in i18n.LANGS:
        return pref
    return i18n.detect_language()


def _default_autostart_argv() -> list[str]:
    # In a PyInstaller build sys.executable is byod-agent itself (no "-m agent").
    if getattr(sys, "frozen", False):
        return [sys.executable, "tray"]
    return [sys.executable, "-m", "agent", "tray"]


@dataclass
class TrayOptions:
    """Everything the tray can be given; tests replace the parts that touch the OS.

    ``run=None`` (the real tray, ui/app.py): each evaluation is a ``byod-agent evaluate --wire``
    child (``worker_argv``, killed after ``worker_timeout_ms``); tests pass ``run``/``decide``
    and evaluate in-process on the thread pool."""

    run: RunFn | None = None
    decide: DecideFn | None = None
    lang_override: str | None = None
    prefs_path: Path | None = None
    autostart: Autostart | None = None
    autostart_argv: list[str] = field(default_factory=_default_autostart_argv)
    update_checks: bool = False  # the real tray (ui/app.py) runs scheduled self-update checks
    recheck_ms: int = 15 * 60 * 1000
    tray_retries: int = 10
    tray_retry_ms: int = 1000
    state_file: Path | None = None
    session: SessionProcess | None = None
    wake: WakeWatcher | None = None
    cert_store: Callable[[], Keystore] = _default_cert_store
    today: Callable[[], date] = date.today
    ask_credentials: bool | None = None  # None: FreeRDP (Linux) needs them, mstsc asks itself
    tray_icon: QSystemTrayIcon | None = None  # app.py shows one before the heavy imports
    worker_argv: list[str] | None = None  # None: ui.evaluation_task.evaluate_argv()
    worker_timeout_ms: int = TIMEOUT_MS


class TrayController(QObject):
    view_changed = Signal(object)  # StatusView, after it is painted
    notified = Signal(object)  # agent.presentation.notify.Notice, as shown

    def __init__(self, options: TrayOptions) -> None:
        super().__init__()
        o = options
        self.options = o
        self.prefs_path = o.prefs_path or prefs_mod.default_path()
        self.prefs = prefs_mod.load(self.prefs_path)
        self.lang = resolve_language(o.lang_override, self.prefs.language)
        self.autostart = o.autostart
        self.tray = o.tray_icon or QSystemTrayIcon()
        self.tray.setIcon(icon(TrayState.CHECKING))
        self.tray.activated.connect(self._on_activated)
        self._window: StatusWindow | None = None  # built on first use: the ``window`` property
        self.checks = CheckScheduler(o.run, o.decide, lambda: self.lang, wake=o.wake,
                                     recheck_ms=o.recheck_ms, worker_argv=o.worker_argv,
                                     worker_timeout_ms=o.worker_timeout_ms, parent=self)
        self.menu_ctl = TrayMenu(self)
        self.tray.setContextMenu(self.menu_ctl.menu)
        self.notifier = Notifier(self.tray, lambda: self.lang, prefs=self.prefs,
                                 save_prefs=self._save_prefs, cert_store=o.cert_store,
                                 today=o.today, parent=self)
        ask = _needs_credentials(current_os()) if o.ask_credentials is None \
            else o.ask_credentials
        self.sessions = SessionControl(o.session or SessionProcess(parent=self),
                                       lambda: self.view, lambda: self.lang, prefs=self.prefs,
                                       save_prefs=self._save_prefs, ask_credentials=ask,
                                       parent=self)
        self.icon_host = TrayIconHost(self.tray, retries=o.tray_retries,
                                      retry_ms=o.tray_retry_ms, state_file=o.state_file,
                                      window=lambda: self._window, state=self._state,
                                      parent=self)
        self._dialogs: dict[str, QDialog] = {}  # kept alive while open
        self._last_state: TrayState | None = None  # of the last finished run
        self._wire()
        self._paint_menu()

    def _wire(self) -> None:
        c, m, s, n = self.checks, self.menu_ctl, self.sessions, self.notifier
        c.checking.connect(self._apply)
        c.finished.connect(self._on_finished)
        c.task.done.connect(self._on_run_done)
        m.open_status.connect(self.show_status)
        m.connect_to.connect(self.connect_to)
        m.disconnect_requested.connect(s.end)
        m.recheck.connect(c.recheck)
        m.certificate.connect(self.open_certificate)
        m.export.connect(self.open_export)
        m.settings.connect(self.open_settings)
        m.about.connect(self.open_about)
        m.quit.connect(QApplication.quit)
        s.changed.connect(self._on_session_phase)
        s.notice.connect(n.show)
        s.recheck_soon.connect(c.recheck_soon)
        n.shown.connect(self.notified.emit)
        n.open_requested.connect(self._open_notice)
        self.icon_host.no_tray.connect(self._no_tray)

    @property
    def window(self) -> StatusWindow:
        """The status window, built the first time it is needed (opened, or the tray missing):
        a tray that is never opened does not hold its widgets (bench/README.md "Tray"). It is
        then brought up to date: language, the last view, the session line."""
        if self._window is None:
            from ui.status_window import StatusWindow  # noqa: PLC0415

            w = StatusWindow(self.lang)
            w.recheck_requested.connect(self.checks.recheck)
            w.connect_requested.connect(self.connect_to)
            w.disconnect_requested.connect(self.sessions.end)
            w.show_view(self.view)
            w.set_session(self.sessions.line())
            self._window = w
        return self._window

    # -- what tests and app.py read ---------------------------------------------------------
    @property
    def view(self) -> StatusView:
        return self.checks.view

    @property
    def running(self) -> bool:
        return self.checks.running

    @property
    def session(self) -> SessionProcess:
        return self.sessions.session

    @property
    def actions(self) -> dict[str, Any]:
        return self.menu_ctl.actions

    @property
    def notices(self) -> list[notify.Notice]:
        return self.notifier.notices

    # -- start and stop ---------------------------------------------------------------------
    def start(self) -> None:
        self.icon_host.try_show()
        self.checks.start(int(self.window.winId()) if sys.platform == "win32" else None)
        if self.options.update_checks:
            from ui.update_task import UpdateScheduler  # noqa: PLC0415

            self.updates = UpdateScheduler(self)
            self.updates.start()

    def stop(self) -> None:
        """Timers and watchers off, a running session ended (Quit, tests)."""
        self.sessions.stopped = True
        self.checks.stop()
        if getattr(self, "updates", None) is not None:
            self.updates.stop()
        self.icon_host.stop()
        self.sessions.end()

    def recheck(self) -> None:
        self.checks.recheck()

    def connect_to(self, target_id: str) -> bool:
        return self.sessions.connect_to(target_id)

    def end_session(self) -> None:
        self.sessions.end()

    # -- the view ---------------------------------------------------------------------------
    def _on_finished(self, view: object) -> None:
        if not isinstance(view, StatusView):
            return
        previous = self._last_state
        self._last_state = view.state
        self._apply(view)
        self.notifier.show_if(notify.state_change(previous, view, self.lang))
        if not self.checks.in_worker:
            self.notifier.check_certificate()  # in-process runs: ask the keystore here
        elif self.checks.result is not None and self.checks.result.cert_read:
            self.notifier.cert_warning(self.checks.result.cert_warning)  # the worker read it

    def _on_run_done(self) -> None:
        self.menu_ctl.set_running(False)
        if self._window is not None:
            self._window.recheck_button.setEnabled(True)

    def _apply(self, view: object) -> None:
        if not isinstance(view, StatusView):
            return
        self.tray.setIcon(icon(view.state))
        self.tray.setToolTip(view.tooltip)
        self._paint_menu()  # Connect entries follow each decision
        if self._window is not None:
            self._window.show_view(view)
        self.icon_host.write_state()
        self.view_changed.emit(view)

    def _paint_menu(self) -> None:
        self.menu_ctl.rebuild(self.view, self.lang, self.session.tracker, self.running,
                              self.sessions.target_name)

    def _on_session_phase(self) -> None:
        self._paint_menu()
        if self._window is not None:
            self._window.set_session(self.sessions.line())

    def _state(self) -> dict[str, Any]:
        return {"state": self.view.state.value, "lang": self.lang,
                "rows": [[r.check_id, r.status.value] for r in self.view.rows]}

    # -- windows ----------------------------------------------------------------------------
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_status()

    def _no_tray(self) -> None:
        self.window.show_no_tray()
        self.show_status()

    def show_status(self, check_id: str | None = None) -> None:
        """The window to the front; a result over a minute old is checked again so a fix the
        user just made shows at once. ``check_id``: open that item (a notification's click)."""
        self.checks.recheck_if_stale()
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        if check_id is not None:
            self.window.focus_check(check_id)
        self.icon_host.write_state()

    def _open_notice(self, notice: object) -> None:
        if not isinstance(notice, notify.Notice):
            return
        if notice.action is notify.Action.CERTIFICATE:
            self.open_certificate()
        else:
            self.show_status(notice.check_id)

    def _keep(self, name: str, dialog: QDialog) -> None:
        self._dialogs[name] = dialog
        dialog.open()

    def open_settings(self) -> SettingsDialog:
        if self.autostart is None:  # this OS and user
            self.autostart = Autostart(current_os(), Path.home(), dict(os.environ))
        dialog = SettingsDialog(self.lang, self.prefs.language, self.autostart,
                                managed=settings_store.current(current_os())[0])
        dialog.accepted.connect(lambda: self._apply_settings(dialog))
        # Right after the window closes (saved or not): the user may have fixed something
        # in the OS settings meanwhile.
        dialog.finished.connect(lambda _r: self.checks.recheck())
        self._keep("settings", dialog)
        return dialog

    def _apply_settings(self, dialog: SettingsDialog) -> None:
        dialog.apply_autostart(self.options.autostart_argv)
        self.prefs.language = dialog.chosen_language()
        self._save_prefs()
        override = self.options.lang_override if self.prefs.language == "auto" else None
        self.set_language(resolve_language(override, self.prefs.language))

    def set_language(self, lang: str) -> None:
        self.lang = lang
        if self._window is not None:
            self._window.set_lang(lang)
        self._apply(self.checks.rebuild())

    def open_export(self) -> QDialog:
        """The consent dialog for a help-desk diagnostic file (it checks and saves off-thread)."""
        from ui.export_dialog import ExportDialog  # noqa: PLC0415 (loaded when first used)

        dialog = ExportDialog(self.lang)
        self._keep("export", dialog)
        return dialog

    def open_certificate(self) -> CertDialog:
        # The dialog, the keystore, cryptography and keyring load here, the first time the user
        # opens it, and stay loaded (bench/README.md measures what that costs).
        from ui.cert_dialog import CertDialog  # noqa: PLC0415

        dialog = CertDialog(self.lang, self.options.cert_store)
        dialog.changed.connect(self.checks.recheck)  # a new certificate may change the decision
        self._keep("certificate", dialog)
        return dialog

    def open_about(self) -> AboutDialog:
        _, values = settings_store.current(current_os())
        dialog = AboutDialog(self.lang, update_lines=update_state.about_lines(
            self.lang, channel=str(values["UpdateChannel"]),
            status=update_state.load(update_state.status_path())))
        self._keep("about", dialog)
        return dialog

    def _save_prefs(self) -> None:
        prefs_mod.save(self.prefs_path, self.prefs)
