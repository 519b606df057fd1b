"""When the tray re-checks the PC, and the run itself (on the thread pool, never here).

Triggers: the policy's interval (``recheck.interval_ms``), a debounced "soon" after waking,
unlocking, a network change or a session that ended on a change, and the user (menu, window,
a dialog that closed). One run at a time: a trigger during a run is dropped, the run in progress
answers it. The scheduler produces a ``StatusView`` (agent.presentation.status_view.build);
what a view means is decided there, not here.

Two ways to run: the real tray gives no ``run`` and each evaluation is a short-lived
``byod-agent evaluate --wire`` child (ui/evaluation_task.py: the answer arrives as an
``EvaluationResult`` holding the view in every language, so this module never imports the policy
or posture code); tests give ``run``/``decide`` and the run goes to the thread pool in-process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QNetworkInformation

from agent.core import i18n
from agent.core.messages import Message
from agent.presentation import recheck as tray_recheck
from agent.presentation.evaluation import EvaluationResult
from agent.presentation.status_view import DecisionInfo, StatusView, checking, failed
from ui.evaluation_task import TIMEOUT_MS, WorkerTask
from ui.task import Task
from ui.wake import WakeWatcher

if TYPE_CHECKING:
    from agent.posture.model import Report

log = logging.getLogger(__name__)

RunFn = Callable[[], "Report"]
DecideFn = Callable[["Report"], "DecisionInfo | None"]
SOON_MS = 5000  # resume, unlock and a clock gap often come together: one run for the burst
STALE_S = 60.0  # opening the window re-checks a result older than this


class CheckScheduler(QObject):
    checking = Signal(object)  # StatusView while the run is in progress
    finished = Signal(object)  # StatusView of the finished run (or of its failure)

    def __init__(self, run: RunFn | None, decide: DecideFn | None, lang: Callable[[], str], *,
                 wake: WakeWatcher | None, recheck_ms: int,
                 worker_argv: Sequence[str] | None = None, worker_timeout_ms: int = TIMEOUT_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._decide = decide or (lambda _report: None)
        self._lang = lang
        self.view: StatusView = checking(lang())
        self.report: Report | None = None  # in-process runs only
        self.result: EvaluationResult | None = None  # worker runs: the last answer
        self._error: Message | str | None = None  # the last run's failure, re-rendered on rebuild
        self.last_result = 0.0  # monotonic time of the last finished run
        self.task: Task | WorkerTask
        if run is not None:
            self.task = Task(run, self)
            self.task.result.connect(self._on_result)
        else:
            from ui.evaluation_task import evaluate_argv  # noqa: PLC0415

            self.task = WorkerTask(worker_argv or evaluate_argv(), worker_timeout_ms, self)
            self.task.result.connect(self._on_message)
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

    @property
    def in_worker(self) -> bool:
        """Evaluations run in the worker process (the real tray), not in this one."""
        return isinstance(self.task, WorkerTask)

    def stop(self) -> None:
        self.timer.stop()
        self.soon.stop()
        self.wake.stop()
        if isinstance(self.task, WorkerTask):
            self.task.stop()

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
        if self._error is not None:
            self.view = failed(self._lang(), self._error_text())
        elif self.result is not None:
            self.view = self.result.view(self._lang())
        elif self.report is not None:
            from agent.presentation.status_view import build  # noqa: PLC0415 (in-process only)

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

    def _on_message(self, result: object) -> None:
        """The worker's answer: the view in every language, built where the policy ran."""
        if not isinstance(result, EvaluationResult):
            self._on_error(f"unexpected result {type(result).__name__}")
            return
        self.result = result
        self._error = None
        self._finish(result.view(self._lang()))

    def _on_result(self, report: object) -> None:
        from agent.posture.model import Report  # noqa: PLC0415 (in-process runs only)
        from agent.presentation.status_view import build  # noqa: PLC0415

        if not isinstance(report, Report):
            self._on_error(f"unexpected result {type(report).__name__}")
            return
        self.report = report
        self._error = None
        lang = self._lang()
        try:
            view = build(report, lang, self._decide(report))
        except Exception as exc:  # a bad decision must show, not leave the tray "checking"
            log.exception("could not build the status view")
            view = failed(lang, f"{type(exc).__name__}: {exc}")
        self._finish(view)

    def _on_error(self, error: object) -> None:
        """No result (a broken run, or a worker that timed out, crashed or said nothing): the
        error state with the reason, never the last good state."""
        self.report = None
        self.result = None
        self._error = error if isinstance(error, Message) else str(error)
        self._finish(failed(self._lang(), self._error_text()))

    def _error_text(self) -> str:
        e = self._error
        return i18n.render(e, self._lang()) if isinstance(e, Message) else str(e or "")

    def _finish(self, view: StatusView) -> None:
        self.last_result = time.monotonic()
        if view.recheck_minutes is not None:  # the signed policy's interval
            ms = tray_recheck.interval_ms(view.recheck_minutes)
            if ms != self.timer.interval():
                self.timer.start(ms)
        self.view = view
        self.finished.emit(view)
