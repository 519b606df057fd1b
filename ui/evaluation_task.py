"""One evaluation in a short-lived child process: ``byod-agent evaluate --wire`` (QProcess).

The same shape as ``ui.task.Task`` (``start``, ``running``, signals ``result``/``error``/``done``),
so ``ui.tray_checks.CheckScheduler`` drives either. The child does the posture checks, the policy
and the certificate; the tray keeps only the answer (agent/presentation/evaluation.py), so none of
that code stays in the tray's memory (docs/tray.md "The evaluation worker", bench/README.md).

Failures are the tray's error state with a reason, never a result: the child does not answer in
``timeout_ms`` (killed), crashes, cannot be started, exits without its line, or prints something
``EvaluationResult.from_wire`` refuses. Each is logged with the child's exit code and the tail of
its stderr (the child's own log has the traceback). Nothing here waits on the UI thread.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from agent.core.messages import Message, msg
from agent.presentation.evaluation import MAX_WIRE_BYTES, EvaluationResult, WireError

log = logging.getLogger(__name__)
TIMEOUT_MS = 120_000  # posture budget (12 s per check by default) + policy fetch + EST renewal
STDERR_TAIL = 2000


def evaluate_argv(tray_started: datetime | None = None) -> list[str]:
    """The worker's command line; in a PyInstaller build ``sys.executable`` is byod-agent."""
    base = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "agent"]
    extra = ["--tray-started", tray_started.isoformat()] if tray_started is not None else []
    return [*base, "evaluate", "--wire", *extra]


class WorkerTask(QObject):
    result = Signal(object)  # EvaluationResult
    error = Signal(object)  # agent.core.messages.Message: why there is no result
    done = Signal()

    def __init__(self, argv: Sequence[str], timeout_ms: int = TIMEOUT_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._argv = list(argv)
        self._timeout_ms = timeout_ms
        self._proc: QProcess | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._why: Message | None = None  # set when the tray itself ended the child
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self) -> bool:
        """Start one child; False (nothing started) while the previous one still runs."""
        if self._proc is not None:
            return False
        self._out.clear()
        self._err.clear()
        self._why = None
        proc = QProcess(self)
        proc.setProgram(self._argv[0])
        proc.setArguments(self._argv[1:])
        proc.setStandardInputFile(QProcess.nullDevice())
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self._proc = proc
        self._timer.start(self._timeout_ms)
        proc.start()
        return True

    def stop(self) -> None:
        """Quit: end a running child (bounded wait) without reporting a result."""
        proc = self._proc
        if proc is None:
            return
        self._timer.stop()
        proc.finished.disconnect(self._on_finished)
        proc.errorOccurred.disconnect(self._on_process_error)
        proc.kill()
        proc.waitForFinished(3000)
        self._proc = None
        proc.deleteLater()

    @property
    def pid(self) -> int | None:
        return int(self._proc.processId()) if self._proc is not None else None

    # -- the child's output ------------------------------------------------------------------
    def _on_stdout(self) -> None:
        if self._proc is None:
            return
        self._out += bytes(self._proc.readAllStandardOutput().data())
        if len(self._out) > MAX_WIRE_BYTES and self._why is None:
            self._why = msg("ui.worker.too_large", limit=MAX_WIRE_BYTES // (1024 * 1024))
            self._proc.kill()

    def _on_stderr(self) -> None:
        if self._proc is None:
            return
        data = bytes(self._proc.readAllStandardError().data())
        self._err = (self._err + data)[-STDERR_TAIL:]

    def _on_timeout(self) -> None:
        if self._proc is not None and self._why is None:
            self._why = msg("ui.worker.timeout", seconds=max(1, round(self._timeout_ms / 1000)))
            log.warning("evaluation worker %s did not answer in %d ms: killed",
                        self._proc.processId(), self._timeout_ms)
            self._proc.kill()

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart and self._proc is not None:
            log.error("evaluation worker could not start: %s (%s)", self._proc.errorString(),
                      self._argv[0])
            self._end(error=msg("ui.worker.no_start"))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self._proc is None:
            return
        self._on_stdout()
        self._on_stderr()
        tail = self._err.decode("utf-8", "replace").strip()[-500:]
        if self._why is not None:
            self._end(error=self._why)
            return
        if status is QProcess.ExitStatus.CrashExit:
            log.error("evaluation worker crashed (exit %s); stderr: %s", code, tail)
            self._end(error=msg("ui.worker.crashed"))
            return
        try:
            result = EvaluationResult.from_wire(bytes(self._out))
        except WireError as exc:
            log.error("evaluation worker's answer refused (exit %s): %s; stderr: %s",
                      code, exc, tail)
            key = "ui.worker.no_answer" if not self._out.strip() else "ui.worker.unreadable"
            self._end(error=msg(key))
            return
        if code != 0:
            log.warning("evaluation worker exited %s after its answer; stderr: %s", code, tail)
        self._end(result=result)

    def _end(self, *, result: EvaluationResult | None = None,
             error: Message | None = None) -> None:
        self._timer.stop()
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.deleteLater()
        if result is not None:
            self.result.emit(result)
        else:
            self.error.emit(error or msg("ui.worker.no_answer"))
        self.done.emit()
