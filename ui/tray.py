"""The tray icon, its menu and the re-check cycle. Posture runs on the thread pool, never here."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtNetwork import QNetworkInformation
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from agent import i18n
from agent.autostart import Autostart
from agent.posture.context import current_os
from agent.posture.model import Report
from agent.statusview import DecisionInfo, StatusView, TrayState, build, checking, failed
from ui import prefs as prefs_mod
from ui import worker
from ui.dialogs import AboutDialog, SettingsDialog
from ui.icons import icon
from ui.status_window import StatusWindow

log = logging.getLogger(__name__)

RunFn = Callable[[], Report]
DecideFn = Callable[[Report], DecisionInfo | None]

_NOTIFY_ICON = {TrayState.BLOCKED: QSystemTrayIcon.MessageIcon.Critical,
                TrayState.ERROR: QSystemTrayIcon.MessageIcon.Critical,
                TrayState.WARNING: QSystemTrayIcon.MessageIcon.Warning}


def resolve_language(override: str | None, pref: str) -> str:
    if override in i18n.LANGS:
        return str(override)
    if pref in i18n.LANGS:
        return pref
    return i18n.detect_language()


class TrayController(QObject):
    view_changed = Signal(object)  # StatusView, after it is painted

    def __init__(self, run: RunFn, *, decide: DecideFn | None = None,
                 lang_override: str | None = None, prefs_path: Path | None = None,
                 autostart: Autostart | None = None, recheck_ms: int = 15 * 60 * 1000,
                 tray_retries: int = 10, tray_retry_ms: int = 1000,
                 state_file: Path | None = None, autostart_argv: list[str] | None = None) -> None:
        super().__init__()
        self._run = run
        self._decide = decide or (lambda _report: None)
        self.prefs_path = prefs_path or prefs_mod.default_path()
        self.prefs = prefs_mod.load(self.prefs_path)
        self._lang_override = lang_override
        self.lang = resolve_language(lang_override, self.prefs.language)
        self.autostart = autostart
        self.autostart_argv = autostart_argv or [sys.executable, "-m", "agent", "tray"]
        self.state_file = state_file
        self.view: StatusView = checking(self.lang)
        self.last_final: TrayState | None = None
        self.running = False
        self.report: Report | None = None
        self._job: object | None = None  # keeps the signals object alive while a run is queued
        self.tray = QSystemTrayIcon(icon(TrayState.CHECKING))
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
        self._build_menu()

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        self._try_show_tray()
        self.timer.start()
        self._watch_network()
        self.recheck()

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
        # Targets come from the signed policy and sessions from agent/session; neither is here
        # yet, so Connect says why it is off instead of disappearing.
        add("connect", i18n.text("ui.menu.connect", t),
            why_not=i18n.text("ui.connect.unavailable", t))
        add("recheck", i18n.text("ui.menu.recheck", t), self.recheck)
        self.menu.addSeparator()
        add("certificate", i18n.text("ui.menu.certificate", t),
            why_not=i18n.text("ui.feature.certificate_missing", t))
        add("export", i18n.text("ui.menu.export", t),
            why_not=i18n.text("ui.feature.export_missing", t))
        add("settings", i18n.text("ui.menu.settings", t), self.open_settings)
        add("about", i18n.text("ui.menu.about", t), self.open_about)
        self.menu.addSeparator()
        add("quit", i18n.text("ui.menu.quit", t), QApplication.quit)
        self.actions["recheck"].setEnabled(not self.running)

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
        self._apply(view)
        if view.state != previous and (previous is not None or view.state in _NOTIFY_ICON):
            self.tray.showMessage(
                i18n.text("ui.notify.title", self.lang),
                i18n.text("ui.notify.changed", self.lang,
                          state=i18n.text(f"ui.state.{view.state.value}", self.lang)),
                _NOTIFY_ICON.get(view.state, QSystemTrayIcon.MessageIcon.Information), 8000)

    def _apply(self, view: StatusView) -> None:
        self.view = view
        self.tray.setIcon(icon(view.state))
        self.tray.setToolTip(view.tooltip)
        self.actions["status"].setText(self._status_text())
        self.actions["recheck"].setEnabled(not self.running)
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
