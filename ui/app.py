"""Entry point of the tray application (``byod-agent tray``): one instance per user."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QIcon
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from agent.core.paths import resources_dir

if TYPE_CHECKING:
    from ui.tray import TrayController

log = logging.getLogger(__name__)


def instance_name() -> str:
    # Per user: two staff members on one PC each get their own agent.
    return f"byod-agent-{getpass.getuser()}"


def ask_running_instance(name: str, message: bytes = b"show") -> bool:
    """True when another instance answered; it brings its status window forward."""
    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(500):
        return False
    sock.write(QByteArray(message + b"\n"))
    sock.flush()
    sock.waitForBytesWritten(500)
    sock.disconnectFromServer()
    return True


def listen(name: str, controller: TrayController) -> QLocalServer:
    server = QLocalServer()
    QLocalServer.removeServer(name)  # a stale socket left by a crash
    if not server.listen(name):
        log.warning("single-instance listener failed: %s", server.errorString())

    def on_connection() -> None:
        conn = server.nextPendingConnection()
        if conn is None:
            return

        def on_message() -> None:
            conn.readAll()  # the only message is "show"
            controller.show_status()

        conn.readyRead.connect(on_message)
        conn.disconnected.connect(conn.deleteLater)

    server.newConnection.connect(on_connection)
    return server


def main(lang: str | None = None, open_status: bool = False) -> int:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # closing the status window leaves the tray running
    app.setApplicationName("byod-agent")
    name = instance_name()
    if ask_running_instance(name):
        return 0
    # The icon first, in its "checking" state, then the rest of the agent (policy, keystore,
    # posture, dialogs: ~0.3 s of imports): staff see at once that the agent has started.
    early = QSystemTrayIcon(QIcon(str(resources_dir() / "icons" / "checking.svg")))
    if QSystemTrayIcon.isSystemTrayAvailable():
        early.show()
        app.processEvents()
    from agent.core import i18n  # noqa: PLC0415
    from agent.diagnostics.mapping import purge_expired  # noqa: PLC0415
    from agent.presentation.status_view import PolicyEvaluator  # noqa: PLC0415
    from ui.tray import TrayController, resolve_language  # noqa: PLC0415

    state_file = os.environ.get("BYOD_AGENT_UI_STATE_FILE")
    evaluator = PolicyEvaluator()  # the same policy decision as `byod-agent check`
    controller = TrayController(evaluator.run, decide=evaluator.decide, lang_override=lang,
                                state_file=Path(state_file) if state_file else None,
                                tray_icon=early)
    app.setApplicationDisplayName(i18n.text("ui.app_name", resolve_language(
        lang, controller.prefs.language)))
    server = listen(name, controller)
    purge_expired()  # pseudonym mappings past their retention go, even if no bundle is exported
    controller.start()
    if open_status:
        controller.show_status()
    code = app.exec()
    controller.stop()
    controller.session.shutdown()  # Quit ends a running session cleanly (no orphaned tunnel)
    server.close()
    return int(code)
