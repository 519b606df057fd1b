"""Run core work on the thread pool and report back by signals, so the UI thread never waits.

A QRunnable cannot own signals, so a small QObject carries them. Errors are sent on their own
signal (never only printed): the tray shows them to the user.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

log = logging.getLogger(__name__)


class JobSignals(QObject):
    result = Signal(object)
    error = Signal(str)
    done = Signal()


class Job(QRunnable):
    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = JobSignals()
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            value = self.fn()
        except Exception as exc:  # shown to the user by the receiver
            log.error("background job failed\n%s", traceback.format_exc())
            self.signals.error.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.done.emit()


def start(fn: Callable[[], object], on_result: Callable[[object], None],
          on_error: Callable[[str], None], on_done: Callable[[], None] | None = None,
          pool: QThreadPool | None = None) -> JobSignals:
    """Queue ``fn``; receivers are connected before it starts, so no signal can be missed.

    The receivers run on the thread that called ``start`` (queued connections). The caller keeps
    the returned object until ``done`` so Python does not collect it mid-flight.
    """
    job = Job(fn)
    # Queued: the receivers run on the thread the signals object lives in (the caller's), never
    # on the pool thread, even for plain functions that have no QObject of their own.
    queued = Qt.ConnectionType.QueuedConnection
    job.signals.result.connect(on_result, queued)
    job.signals.error.connect(on_error, queued)
    if on_done is not None:
        job.signals.done.connect(on_done, queued)
    (pool or QThreadPool.globalInstance()).start(job)
    return job.signals
