"""The tray icon, its menu and the re-check cycle. Posture runs on the thread pool, never here."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtNetwork import QNetworkInformation
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from agent.core import i18n
from agent.keystore import Keystore, Status
from agent.posture.context import current_os
from agent.posture.model import Report
from agent.presentation import notify
from agent.presentation import recheck as tray_recheck
from agent.presentation.session_view import Kind, Phase, SessionEvent
from agent.presentation.status_view import (
    DecisionInfo,
    StatusView,
    TrayState,
    build,
    checking,
    failed,
)
from agent.session.clients import needs_credentials
from agent.settings.autostart import Autostart
from ui import prefs as prefs_mod
from ui import worker
from ui.cert_dialog import CertDialog
from ui.credentials_dialog import CredentialsDialog
from ui.dialogs import AboutDialog, SettingsDialog
from ui.icons import icon
from ui.session import SessionProcess
from ui.status_window import StatusWindow
from ui.wake import WakeWatcher

log = logging.getLogger(__name__)

RunFn = Callable[[], Report]
DecideFn = Callable[[Report], DecisionInfo | None]

_NOTIFY_ICON = {notify.Level.CRITICAL: QSystemTrayIcon.MessageIcon.Critical,
                notify.Level.WARNING: QSystemTrayIcon.MessageIcon.Warning,
                notify.Level.INFO: QSystemTrayIcon.MessageIcon.Information}


def resolve_language(override: str | None, pref: str) -> str:
    if override in i18n.LANGS:
        return str(override)
    if pref in i18n.LANGS:
        return pref
    return i18n.detect_language()


class TrayController(QObject):
    view_changed = Signal(object)  # StatusView, after it is painted
    notified = Signal(object)  # agent.presentation.notify.Notice, as shown

    def __init__(self, run: RunFn, *, decide: DecideFn | None = None,
                 lang_override: str | None = None, prefs_path: Path | None = None,
                 autostart: Autostart | None = None, recheck_ms: int = 15 * 60 * 1000,
                 tray_retries: int = 10, tray_retry_ms: int = 1000,
                 state_file: Path | None = None, autostart_argv: list[str] | None = None,
                 session: SessionProcess | None = None, wake: WakeWatcher | None = None,
                 cert_store: Callable[[], Keystore] | None = None,
                 today: Callable[[], date] = date.today,
                 ask_credentials: bool | None = None,
                 tray_icon: QSystemTrayIcon | None = None) -> None:
        super().__init__()
        self._run = run
        self._decide = decide or (lambda _report: None)
        self.prefs_path = prefs_path or prefs_mod.default_path()
        self.prefs = prefs_mod.load(self.prefs_path)
        self._lang_override = lang_override
        self.lang = resolve_language(lang_override, self.prefs.language)
        self.autostart = autostart
        # In a PyInstaller build sys.executable is byod-agent itself (no "-m agent").
        self.autostart_argv = autostart_argv or (
            [sys.executable, "tray"] if getattr(sys, "frozen", False)
            else [sys.executable, "-m", "agent", "tray"])
        self.state_file = state_file
        self.view: StatusView = checking(self.lang)
        self.last_final: TrayState | None = None
        self.running = False
        self.report: Report | None = None
        self._job: object | None = None  # keeps the signals object alive while a run is queued
        self.tray = tray_icon or QSystemTrayIcon()  # app.py shows one before the imports
        self.tray.setIcon(icon(TrayState.CHECKING))
        self.tray.activated.connect(self._on_activated)
        self.menu = QMenu()
        self.menu.setToolTipsVisible(True)
        self.tray.setContextMenu(self.menu)
        self.window = StatusWindow(self.lang)
        self.window.recheck_requested.connect(self.recheck)
        self.timer = QTimer(self)
        self.timer.setInterval(recheck_ms)
        self.timer.timeout.connect(self.recheck)
        self._tray_retries = tray_retries
        self._tray_retry = QTimer(self)
        self._tray_retry.setInterval(tray_retry_ms)
        self._tray_retry.timeout.connect(self._try_show_tray)
        self._geometry_poll = QTimer(self)
        self._geometry_poll.setInterval(100)
        self._geometry_poll.timeout.connect(self._write_state)
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(5000)
        self._soon.timeout.connect(self.recheck)
        self._last_result = 0.0  # monotonic time of the last finished run
        self.actions: dict[str, QAction] = {}
        self.notices: list[notify.Notice] = []
        self._stopped = False
        self._cert_store = cert_store or Keystore.default
        # FreeRDP (Linux) needs the office PC credentials from us; mstsc/Windows App ask.
        self._ask_credentials = (needs_credentials(current_os()) if ask_credentials is None
                                 else ask_credentials)
        self.credentials_dialog: CredentialsDialog | None = None
        self._today = today
        self._cert_job: object | None = None
        self.session = session or SessionProcess(parent=self)
        self.session.event_received.connect(self._on_session_event)
        self.session.finished.connect(self._on_session_finished)
        self.session.phase_changed.connect(self._on_session_phase)
        self.window.connect_requested.connect(self.connect_to)
        self.window.disconnect_requested.connect(self.end_session)
        self.wake = wake or WakeWatcher(parent=self)
        self.wake.woke.connect(self._on_wake)
        self._build_menu()

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        self._try_show_tray()
        self.timer.start()
        self._watch_network()
        self.wake.start(int(self.window.winId()) if sys.platform == "win32" else None)
        self.recheck()

    def stop(self) -> None:
        """Timers and watchers off, a running session ended (Quit, tests)."""
        self._stopped = True
        for t in (self.timer, self._soon, self._tray_retry, self._geometry_poll):
            t.stop()
        self.wake.stop()
        self.session.stop()

    def _on_wake(self, reason: str) -> None:
        log.info("re-checking after %s", reason)
        self._soon.start()  # debounced: resume, unlock and a clock gap often come together

    def _watch_network(self) -> None:
        """Re-check after a network change where the platform reports one (Qt's backend)."""
        if not QNetworkInformation.loadDefaultBackend():
            return
        info = QNetworkInformation.instance()
        if info is not None:
            # Debounced: a change usually comes as a burst of signals.
            info.reachabilityChanged.connect(lambda _r: self._soon.start())

    def _try_show_tray(self) -> None:
        """The shell may start after us at login: retry before falling back to a window."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._tray_retry.stop()
            self.tray.show()
            self._geometry_poll.start()
            return
        if self._tray_retries > 0:
            self._tray_retries -= 1
            if not self._tray_retry.isActive():
                self._tray_retry.start()
            return
        self._tray_retry.stop()
        log.warning("no system tray: showing the status window instead")
        self.window.show_no_tray()
        self.show_status()

    # -- menu -------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        t = self.lang
        self.menu.clear()
        self.actions = {}

        def add(name: str, text: str, slot: Callable[[], object] | None = None,
                why_not: str | None = None) -> QAction:
            if why_not:
                text = i18n.text("ui.menu.disabled", t, label=text, reason=why_not)
            action = self.menu.addAction(text)
            action.setObjectName(name)
            if why_not or slot is None:
                action.setEnabled(False)
                action.setToolTip(why_not or text)
            else:
                action.triggered.connect(slot)
            self.actions[name] = action
            return action

        add("status", self._status_text())
        add("open_status", i18n.text("ui.menu.open_status", t), self.show_status)
        self.menu.addSeparator()
        self._add_connect_items(add)
        add("recheck", i18n.text("ui.menu.recheck", t), self.recheck)
        self.menu.addSeparator()
        add("certificate", i18n.text("ui.menu.certificate", t), self.open_certificate)
        add("export", i18n.text("ui.menu.export", t), self.open_export)
        add("settings", i18n.text("ui.menu.settings", t), self.open_settings)
        add("about", i18n.text("ui.menu.about", t), self.open_about)
        self.menu.addSeparator()
        add("quit", i18n.text("ui.menu.quit", t), QApplication.quit)
        self.actions["recheck"].setEnabled(not self.running)

    def _add_connect_items(self, add: Callable[..., QAction]) -> None:
        """One entry per approved target; "Disconnect" while a session runs."""
        t = self.lang
        tracker = self.session.tracker
        if self.session.active and tracker is not None:
            name = self._target_name(tracker.target_id)
            if tracker.phase is Phase.STOPPING:
                add("disconnect", i18n.text("ui.menu.disconnecting", t, target=name))
            else:
                add("disconnect", i18n.text("ui.menu.disconnect", t, target=name),
                    self.end_session)
            return
        if not self.view.targets:
            add("connect", i18n.text("ui.menu.connect", t),
                why_not=self.view.connect_reason or i18n.text("ui.connect.no_targets", t))
            return
        for target in self.view.targets:
            label = i18n.text("ui.menu.connect_to", t, target=target.name)
            add(f"connect:{target.id}", label,
                (lambda _checked=False, tid=target.id: self.connect_to(tid))
                if target.enabled else None,
                why_not=target.why_not or None)

    def _target_name(self, target_id: str) -> str:
        return next((x.name for x in self.view.targets if x.id == target_id), target_id)

    def _status_text(self) -> str:
        state = i18n.text(f"ui.state.{self.view.state.value}", self.lang)
        return i18n.text("ui.menu.status", self.lang, state=state)

    # -- checking ---------------------------------------------------------------------------
    def recheck(self) -> None:
        if self.running:
            return
        self.running = True
        self._apply(checking(self.lang, self.view if self.view.rows else None))
        self._job = worker.start(self._run, self._on_result, self._on_error, self._on_done)

    def _on_result(self, report: object) -> None:
        if not isinstance(report, Report):
            self._on_error(f"unexpected result {type(report).__name__}")
            return
        self.report = report
        try:
            decision = self._decide(report)
            view = build(report, self.lang, decision)
        except Exception as exc:  # a bad decision must show, not leave the tray "checking"
            log.exception("could not build the status view")
            view = failed(self.lang, f"{type(exc).__name__}: {exc}")
        self._finish(view)

    def _on_error(self, error: str) -> None:
        self.report = None
        self._finish(failed(self.lang, error))

    def _on_done(self) -> None:
        self.running = False
        self._job = None
        self.actions["recheck"].setEnabled(True)
        self.window.recheck_button.setEnabled(True)

    def _finish(self, view: StatusView) -> None:
        previous = self.last_final
        self.last_final = view.state
        self.running = False
        self._last_result = time.monotonic()
        if view.recheck_minutes is not None:  # the signed policy's interval
            ms = tray_recheck.interval_ms(view.recheck_minutes)
            if ms != self.timer.interval():
                self.timer.start(ms)
        self._apply(view)
        notice = notify.state_change(previous, view.state, self.lang)
        if notice is not None:
            self.show_notice(notice)
        self._check_certificate()

    def show_notice(self, notice: notify.Notice) -> None:
        self.notices.append(notice)
        log.info("notification %s", notice.key)
        if self.tray.isVisible():
            self.tray.showMessage(notice.title, notice.body, _NOTIFY_ICON[notice.level], 8000)
        self.notified.emit(notice)

    # -- certificate expiry -----------------------------------------------------------------
    def _check_certificate(self) -> None:
        """The keyring may be slow or prompt: ask it on the pool, never here."""
        if self._cert_job is not None:
            return
        store = self._cert_store
        self._cert_job = worker.start(lambda: store().status(), self._on_cert_status,
                                      lambda err: log.warning("certificate status: %s", err),
                                      self._cert_done)

    def _cert_done(self) -> None:
        self._cert_job = None

    def _on_cert_status(self, status: object) -> None:
        if not isinstance(status, Status):
            return
        notice, record = notify.cert_expiry(status.warning, self._today(),
                                            self.prefs.cert_notified, self.lang)
        if record != self.prefs.cert_notified:
            self.prefs.cert_notified = record
            prefs_mod.save(self.prefs_path, self.prefs)
        if notice is not None:
            self.show_notice(notice)

    # -- session ----------------------------------------------------------------------------
    def connect_to(self, target_id: str) -> bool:
        """Start the session in the core CLI; refused (with the reason shown) when not allowed.

        Where the RDP client cannot ask for credentials itself (FreeRDP on Linux), a dialog asks
        first; cancelling it starts nothing."""
        target = next((x for x in self.view.targets if x.id == target_id), None)
        if target is None or not target.enabled or self.session.active:
            return False
        if not self._ask_credentials:
            return self.session.start(target_id)
        dialog = CredentialsDialog(self.lang, self._target_name(target_id),
                                   self.prefs.last_user)
        self.credentials_dialog = dialog

        def go() -> None:
            user, password = dialog.values()
            if user != self.prefs.last_user:
                self.prefs.last_user = user
                prefs_mod.save(self.prefs_path, self.prefs)
            self.session.start(target_id, (user, password))
            dialog.password.clear()

        dialog.accepted.connect(go)
        dialog.open()  # window-modal, the event loop keeps running
        return True

    def end_session(self) -> None:
        self.session.stop()

    def _session_target(self) -> str:
        tracker = self.session.tracker
        return self._target_name(tracker.target_id) if tracker is not None else ""

    def _on_session_event(self, ev: object) -> None:
        if not isinstance(ev, SessionEvent):
            return
        if ev.kind in (Kind.BLOCKED, Kind.ERROR, Kind.ENDED):
            return  # told once, when the process is gone (_on_session_finished)
        notice = notify.session_event(ev, self.lang, self._session_target())
        if notice is not None:
            self.show_notice(notice)

    def _on_session_finished(self, final: object) -> None:
        if isinstance(final, SessionEvent):
            notice = notify.session_event(final, self.lang, self._session_target())
            if notice is not None:
                self.show_notice(notice)
            if not self._stopped and (final.kind is not Kind.ENDED
                                      or final.reason == "noncompliant"):
                self._soon.start()  # the core saw something change: show it here too

    def _on_session_phase(self) -> None:
        self._build_menu()
        self.window.set_session(self._session_line())

    def _session_line(self) -> str | None:
        tracker = self.session.tracker
        if tracker is None or not tracker.active:
            return None
        name = self._target_name(tracker.target_id)
        if tracker.phase is Phase.NONCOMPLIANT and tracker.remaining_seconds is not None:
            return i18n.text("ui.session.line.noncompliant", self.lang, target=name,
                             seconds=tracker.remaining_seconds)
        return i18n.text(f"ui.session.line.{tracker.phase.value}", self.lang, target=name)

    def _apply(self, view: StatusView) -> None:
        self.view = view
        self.tray.setIcon(icon(view.state))
        self.tray.setToolTip(view.tooltip)
        self._build_menu()  # Connect entries follow each decision
        self.window.show_view(view)
        self._write_state()
        self.view_changed.emit(view)

    # -- windows ----------------------------------------------------------------------------
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_status()

    def show_status(self) -> None:
        # Opening the window re-checks when the result is over a minute old, so a fix the
        # user just made shows at once.
        if not self.running and time.monotonic() - self._last_result > 60:
            self.recheck()
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        self._write_state()

    def open_settings(self) -> SettingsDialog | None:
        if self.autostart is None:  # this OS and user
            self.autostart = Autostart(current_os(), Path.home(), dict(os.environ))
        dialog = SettingsDialog(self.lang, self.prefs.language, self.autostart)
        dialog.accepted.connect(lambda: self._apply_settings(dialog))
        # Right after the window closes (saved or not): the user may have fixed something
        # in the OS settings meanwhile.
        dialog.finished.connect(lambda _r: self.recheck())
        dialog.open()
        self._dialog = dialog
        return dialog

    def _apply_settings(self, dialog: SettingsDialog) -> None:
        dialog.apply_autostart(self.autostart_argv)
        self.prefs.language = dialog.chosen_language()
        prefs_mod.save(self.prefs_path, self.prefs)
        self.set_language(resolve_language(self._lang_override if self.prefs.language == "auto"
                                           else None, self.prefs.language))

    def set_language(self, lang: str) -> None:
        self.lang = lang
        self.window.set_lang(lang)
        self._build_menu()
        if self.report is not None:
            self._apply(build(self.report, lang, self._decide(self.report)))
        else:
            self._apply(self.view)

    def open_export(self) -> QObject:
        """The consent dialog for a help-desk diagnostic file (it checks and saves off-thread)."""
        from ui.export_dialog import ExportDialog  # noqa: PLC0415 (loaded when first used)

        dialog = ExportDialog(self.lang)
        dialog.open()
        self._export = dialog
        return dialog

    def open_certificate(self) -> CertDialog:
        dialog = CertDialog(self.lang, self._cert_store)
        dialog.changed.connect(self.recheck)  # a new certificate may change the decision
        dialog.open()
        self._cert_dialog = dialog
        return dialog

    def open_about(self) -> AboutDialog:
        dialog = AboutDialog(self.lang)
        dialog.open()
        self._about = dialog
        return dialog

    # -- automation hook --------------------------------------------------------------------
    def _write_state(self) -> None:
        """With BYOD_AGENT_UI_STATE_FILE set, publish what is on screen (for the real-tray test
        and for support scripts): state, tray icon geometry, status window geometry."""
        if self.state_file is None:
            return
        g = self.tray.geometry()
        w = self.window.frameGeometry()
        data = {"state": self.view.state.value, "lang": self.lang,
                "tray_visible": self.tray.isVisible(),
                "tray_geometry": [g.x(), g.y(), g.width(), g.height()],
                "window_visible": self.window.isVisible(),
                "window_geometry": [w.x(), w.y(), w.width(), w.height()],
                "rows": [[r.check_id, r.status.value] for r in self.view.rows]}
        if g.x() > 0:
            self._geometry_poll.setInterval(1000)  # placed: no need to poll fast any more
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.state_file)
