"""A background task that owns its worker (STYLE.md "A task owns its worker").

One ``Task`` per kind of work (the posture run, the certificate status), parented to the object
that needs it: it queues the function on the thread pool (ui/worker.py), keeps the job alive until
it is done, refuses a second start while one runs, and reports on the UI thread through its own
signals. The controller no longer keeps ``_job`` attributes by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

from ui import worker


class Task(QObject):
    result = Signal(object)
    error = Signal(str)  # "Type: message", already logged with its traceback by the worker
    done = Signal()

    def __init__(self, fn: Callable[[], object], parent: QObject | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._pool = pool
        self._job: worker.JobSignals | None = None

    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self) -> bool:
        """Queue one run; False (and nothing queued) while the previous one is still going."""
        if self._job is not None:
            return False
        self._job = worker.start(self._fn, self.result.emit, self.error.emit, self._done,
                                 pool=self._pool)
        return True

    def _done(self) -> None:
        self._job = None
        self.done.emit()
