"""Windows that never reach past the screen's available area (taskbar excluded), title bar included.

Before the window manager has framed a window its frame is unknown, so a typical title bar is
assumed (``fit_to_screen``); once shown, ``keep_on_screen`` corrects with the real frame. The status
window and ``diag view`` share this (tests/gui/test_screens.py, test_diag_view.py at 1366x768).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

SCREEN_MARGIN = 16  # px kept free around the window on a small screen
ASSUMED_FRAME = QSize(8, 38)  # borders and title bar until the window manager says


def fit_to_screen(window: QWidget, preferred: QSize) -> None:
    """Resize to ``preferred``, or less where the available area is smaller."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    area = screen.availableGeometry()
    frame = window.frameGeometry().size() - window.geometry().size()
    if frame.height() <= 0:
        frame = ASSUMED_FRAME
    window.resize(QSize(min(preferred.width(), area.width() - SCREEN_MARGIN - frame.width()),
                        min(preferred.height(), area.height() - SCREEN_MARGIN - frame.height())))


def keep_on_screen(window: QWidget) -> None:
    """With the real frame known: shrink what still overflows and move the frame inside."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None or not window.isVisible():
        return
    area = screen.availableGeometry()
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    width = min(window.width(), area.width() - extra_w)
    height = min(window.height(), area.height() - extra_h)
    if (width, height) != (window.width(), window.height()):
        window.resize(QSize(width, height))
    x = min(max(frame.x(), area.x()), area.x() + area.width() - width - extra_w)
    y = min(max(frame.y(), area.y()), area.y() + area.height() - height - extra_h)
    if (x, y) != (frame.x(), frame.y()):
        window.move(x, y)  # move() places the frame's top-left corner


def keep_on_screen_while_placed(window: QWidget) -> None:
    """The window manager frames and places a new window over a few hundred ms: follow it."""
    for delay in (0, 150, 600):  # the window as context: no call after it is deleted
        QTimer.singleShot(delay, window, lambda: keep_on_screen(window))
