"""The tray icon itself: shown only once the desktop has a tray (retried, maestral-qt's habit),
and the automation hook that publishes what is on screen.

With ``BYOD_AGENT_UI_STATE_FILE`` set, the state, the icon's and the status window's geometry
are written to that file (for the real-tray test and support scripts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

log = logging.getLogger(__name__)


class TrayIconHost(QObject):
    no_tray = Signal()  # gave up waiting for a tray host: the window has to stand in

    def __init__(self, tray: QSystemTrayIcon, *, retries: int, retry_ms: int,
                 state_file: Path | None, window: Callable[[], QWidget | None],
                 state: Callable[[], dict[str, Any]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray = tray
        self._retries = retries
        self._state_file = state_file
        self._window = window
        self._state = state
        self._retry = QTimer(self)
        self._retry.setInterval(retry_ms)
        self._retry.timeout.connect(self.try_show)
        self._poll = QTimer(self)
        self._poll.setInterval(100)
        self._poll.timeout.connect(self.write_state)

    def try_show(self) -> None:
        """The shell may start after us at login: retry before falling back to a window."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._retry.stop()
            self.tray.show()
            self._poll.start()
            return
        if self._retries > 0:
            self._retries -= 1
            if not self._retry.isActive():
                self._retry.start()
            return
        self._retry.stop()
        log.warning("no system tray: showing the status window instead")
        self.no_tray.emit()

    def stop(self) -> None:
        self._retry.stop()
        self._poll.stop()

    def write_state(self) -> None:
        if self._state_file is None:
            return
        g = self.tray.geometry()
        window = self._window()  # None: the status window was never opened (built lazily)
        w = window.frameGeometry() if window is not None else None
        data = {**self._state(), "tray_visible": self.tray.isVisible(),
                "tray_geometry": [g.x(), g.y(), g.width(), g.height()],
                "window_visible": window is not None and window.isVisible(),
                "window_geometry": [w.x(), w.y(), w.width(), w.height()] if w else [0, 0, 0, 0]}
        if g.x() > 0:
            self._poll.setInterval(1000)  # placed: no need to poll fast any more
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self._state_file)
