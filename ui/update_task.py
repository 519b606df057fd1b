"""The scheduled self-update check: at start and then when agent/update/model.py says it is due,
``byod-agent update check`` runs as a child process (QProcess: never on the UI thread, and a
crash of the check cannot take the tray down). The decision, the download, the verification and
the install are all in agent/update; this only starts it."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from PySide6.QtCore import QObject, QProcess, QTimer

from agent.update import model, state

log = logging.getLogger(__name__)
POLL_MS = 15 * 60 * 1000
MAX_RUN_MS = 15 * 60 * 1000  # a check that hangs longer is ended


def due(*, at_start: bool) -> bool:
    """``agent.update.service.due`` without importing it: service loads the TUF client (tuf,
    securesystemslib, requests), which only the ``update check`` child needs."""
    status = state.load(state.status_path())
    return model.check_due(datetime.now(UTC), status.last_check_time(), status.failed,
                           at_start=at_start)


def check_argv() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, "update", "check"]
    return [sys.executable, "-m", "agent", "update", "check"]


class UpdateScheduler(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(lambda: self._maybe_run(at_start=False))
        self._proc: QProcess | None = None
        self._started_ms = 0

    def start(self) -> None:
        self._maybe_run(at_start=True)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            self._proc.kill()
            self._proc.waitForFinished(3000)

    def _maybe_run(self, *, at_start: bool) -> None:
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            return
        try:
            if not due(at_start=at_start):
                return
        except OSError as exc:
            log.warning("update schedule unreadable: %s", exc)
            return
        argv = check_argv()
        proc = QProcess(self)
        proc.finished.connect(lambda code, _status: log.info("update check ended: %s", code))
        proc.start(argv[0], argv[1:])
        QTimer.singleShot(MAX_RUN_MS, proc.kill)
        self._proc = proc
