"""The reference app: the smallest PySide6 tray icon, for the startup, idle and .deb baselines.

Kept deliberately bare (one icon, one menu, no timers) so every cost above it is the agent's own.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon


def main() -> int:
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor("#2e7d32"))
    tray = QSystemTrayIcon(QIcon(pixmap))
    menu = QMenu()
    quit_action = QAction("Quit", menu)
    quit_action.triggered.connect(app.quit)
    menu.addAction(quit_action)
    tray.setContextMenu(menu)
    tray.setToolTip("minimal tray")
    tray.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
