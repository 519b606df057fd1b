"""The remote session as a child process (``byod-agent connect TARGET --events``) via QProcess.

Non-blocking: QProcess reports output and exit through the event loop. This class only moves
bytes; parsing and state live in agent.presentation.session_view. Disconnect sends SIGTERM (the
core then
ends the client and the tunnel cleanly and says "ended: stopped") and kills after 5 s. On
Windows QProcess.terminate() posts WM_CLOSE, which a console process ignores, so there the kill
after the grace period is what ends it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from agent.presentation.session_view import (
    STOP_GRACE_MS,
    LineBuffer,
    SessionEvent,
    SessionTracker,
    connect_argv,
    parse_event,
)

log = logging.getLogger(__name__)

ArgvFn = Callable[[str], list[str]]


def default_argv(target_id: str) -> list[str]:
    return connect_argv(target_id, sys.executable, frozen=bool(getattr(sys, "frozen", False)))


class SessionProcess(QObject):
    event_received = Signal(object)  # SessionEvent, as it arrives
    finished = Signal(object)  # the SessionEvent that ends the attempt (ended, blocked or error)
    phase_changed = Signal()

    def __init__(self, argv: ArgvFn = default_argv, env: Mapping[str, str] | None = None,
                 stop_grace_ms: int = STOP_GRACE_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._argv = argv
        self._env = env
        self._grace = stop_grace_ms
        self.tracker: SessionTracker | None = None
        self.process: QProcess | None = None
        self._lines = LineBuffer()
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def active(self) -> bool:
        return self.tracker is not None and self.tracker.active

    def start(self, target_id: str, credentials: tuple[str, str] | None = None) -> bool:
        """``credentials`` (user, password) for FreeRDP: the user name as an option the CLI
        validates, the password through the child's stdin only."""
        if self.active:
            return False
        argv = self._argv(target_id)
        if credentials is not None:
            argv = [*argv, "--user", credentials[0], "--password-stdin"]
        proc = QProcess(self)
        if self._env is not None:
            env = QProcessEnvironment()
            for k, v in self._env.items():
                env.insert(k, v)
            proc.setProcessEnvironment(env)
        # stderr is the CLI's human text (and its log lines): read and logged, never parsed.
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.tracker = SessionTracker(target_id)
        self._lines = LineBuffer()
        self.process = proc
        log.info("starting session for %s: %s", target_id, argv[1:])
        proc.start(argv[0], argv[1:])
        if credentials is not None:
            proc.write(credentials[1].encode("utf-8") + b"\n")
            proc.closeWriteChannel()
        self.phase_changed.emit()
        return True

    def stop(self) -> None:
        """Disconnect: a clean end first, a kill if the child does not go within the grace."""
        if self.process is None or self.tracker is None or not self.tracker.active:
            return
        self.tracker.stopping()
        self.phase_changed.emit()
        self.process.terminate()
        self._kill_timer.start(self._grace)

    def shutdown(self) -> None:
        """The tray is quitting: end the session now, blocking at most the grace period."""
        proc = self.process
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        self.stop()
        if not proc.waitForFinished(self._grace):
            proc.kill()
            proc.waitForFinished(1000)

    def _kill(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            log.warning("session process ignored SIGTERM for %d ms: killing it", self._grace)
            self.process.kill()

    def _on_stdout(self) -> None:
        if self.process is None:
            return
        self._handle(self._lines.feed(bytes(self.process.readAllStandardOutput().data())))

    def _on_stderr(self) -> None:
        if self.process is not None:
            text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
            for line in text.splitlines():
                log.info("connect: %s", line)

    def _handle(self, lines: list[bytes]) -> None:
        for line in lines:
            try:
                ev = parse_event(line)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring a line the session protocol does not know (%s)", exc)
                continue
            if self.tracker is not None:
                self.tracker.on_event(ev)
            self.event_received.emit(ev)
            self.phase_changed.emit()

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error is QProcess.ProcessError.FailedToStart:
            self._finish(None, crashed=True)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_stdout()
        self._handle(self._lines.rest())
        self._finish(code, crashed=status is QProcess.ExitStatus.CrashExit)

    def _finish(self, code: int | None, crashed: bool) -> None:
        tracker = self.tracker
        if tracker is None or not tracker.active:
            return
        self._kill_timer.stop()
        final: SessionEvent = tracker.on_exit(code, crashed)
        log.info("session for %s over: %s (exit %s)", tracker.target_id, final.kind.value, code)
        if self.process is not None:
            self.process.deleteLater()
            self.process = None
        self.finished.emit(final)
        self.phase_changed.emit()
