"""When the tray re-checks the PC, and the run itself (on the thread pool, never here).

Triggers: the policy's interval (``recheck.interval_ms``), a debounced "soon" after waking,
unlocking, a network change or a session that ended on a change, and the user (menu, window,
a dialog that closed). One run at a time: a trigger during a run is dropped, the run in progress
answers it. The scheduler produces a ``StatusView`` (agent.presentation.status_view.build);
what a view means is decided there, not here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QNetworkInformation

from agent.posture.model import Report
from agent.presentation import recheck as tray_recheck
from agent.presentation.status_view import DecisionInfo, StatusView, build, checking, failed
from ui.task import Task
from ui.wake import WakeWatcher

log = logging.getLogger(__name__)

RunFn = Callable[[], Report]
DecideFn = Callable[[Report], DecisionInfo | None]
SOON_MS = 5000  # resume, unlock and a clock gap often come together: one run for the burst
STALE_S = 60.0  # opening the window re-checks a result older than this


class CheckScheduler(QObject):
    checking = Signal(object)  # StatusView while the run is in progress
    finished = Signal(object)  # StatusView of the finished run (or of its failure)

    def __init__(self, run: RunFn, decide: DecideFn | None, lang: Callable[[], str], *,
                 wake: WakeWatcher | None, recheck_ms: int,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._decide = decide or (lambda _report: None)
        self._lang = lang
        self.view: StatusView = checking(lang())
        self.report: Report | None = None
        self.last_result = 0.0  # monotonic time of the last finished run
        self.task = Task(run, self)
        self.task.result.connect(self._on_result)
        self.task.error.connect(self._on_error)
        self.timer = QTimer(self)
        self.timer.setInterval(recheck_ms)
        self.timer.timeout.connect(self.recheck)
        self.soon = QTimer(self)
        self.soon.setSingleShot(True)
        self.soon.setInterval(SOON_MS)
        self.soon.timeout.connect(self.recheck)
        self.wake = wake or WakeWatcher(parent=self)
        self.wake.woke.connect(self._on_wake)

    @property
    def running(self) -> bool:
        return self.task.running

    def start(self, window_id: int | None) -> None:
        self.timer.start()
        self._watch_network()
        self.wake.start(window_id)
        self.recheck()

    def stop(self) -> None:
        self.timer.stop()
        self.soon.stop()
        self.wake.stop()

    def recheck(self) -> None:
        if self.task.start():
            self.checking.emit(checking(self._lang(), self.view if self.view.rows else None))

    def recheck_soon(self) -> None:
        self.soon.start()

    def recheck_if_stale(self) -> None:
        if not self.running and time.monotonic() - self.last_result > STALE_S:
            self.recheck()

    def rebuild(self) -> StatusView:
        """The same result in the current language (after a language change)."""
        if self.report is not None:
            self.view = build(self.report, self._lang(), self._decide(self.report))
        return self.view

    def _on_wake(self, reason: str) -> None:
        log.info("re-checking after %s", reason)
        self.soon.start()

    def _watch_network(self) -> None:
        """Re-check after a network change where the platform reports one (Qt's backend)."""
        if not QNetworkInformation.loadDefaultBackend():
            return
        info = QNetworkInformation.instance()
        if info is not None:  # debounced: a change usually comes as a burst of signals
            info.reachabilityChanged.connect(lambda _r: self.soon.start())

    def _on_result(self, report: object) -> None:
        if not isinstance(report, Report):
            self._on_error(f"unexpected result {type(report).__name__}")
            return
        self.report = report
        lang = self._lang()
        try:
            view = build(report, lang, self._decide(report))
        except Exception as exc:  # a bad decision must show, not leave the tray "checking"
            log.exception("could not build the status view")
            view = failed(lang, f"{type(exc).__name__}: {exc}")
        self._finish(view)

    def _on_error(self, error: str) -> None:
        self.report = None
        self._finish(failed(self._lang(), error))

    def _finish(self, view: StatusView) -> None:
        self.last_result = time.monotonic()
        if view.recheck_minutes is not None:  # the signed policy's interval
            ms = tray_recheck.interval_ms(view.recheck_minutes)
            if ms != self.timer.interval():
                self.timer.start(ms)
        self.view = view
        self.finished.emit(view)
