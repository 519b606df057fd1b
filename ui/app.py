"""Entry point of the tray application (``byod-agent tray``): one instance per user.

Before any QApplication exists: the crash hooks (ui/crash.py) and the display check. Without a
display Qt aborts the process (exit 134, English text about xcb-cursor); ``display_problem``
finds that first, and the tray says so in the OS language and exits 2 (docs/tray.md).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QIcon
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from agent.core import exitcodes
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


_X_DISPLAY = re.compile(r"^(?P<host>[^:/]*)(?:/unix)?:(?P<num>\d+)(?:\.\d+)?$")
PROBE_TIMEOUT_S = 1.0


def _x_reachable(display: str) -> bool:
    """Whether an X server answers at ``display`` (a socket connect only, bounded)."""
    m = _X_DISPLAY.match(display)
    if m is None:
        return False
    host, num = m.group("host"), int(m.group("num"))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{num}"  # noqa: S108 (the X server's socket, only connected to)
        for address in (f"\0{path}", path):  # Linux abstract socket first, then the file
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(PROBE_TIMEOUT_S)
                sock.connect(address)
                return True
        return False
    with contextlib.suppress(OSError), socket.create_connection(
            (host, 6000 + num), timeout=PROBE_TIMEOUT_S):
        return True
    return False


def display_problem(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """True when Qt would find no display to open (Linux/BSD; Windows and macOS always have one).

    An explicit QT_QPA_PLATFORM (offscreen in tests, wayland, xcb) is the user's choice: Qt is
    then left to try it."""
    if platform.startswith("win") or platform == "darwin" or env.get("QT_QPA_PLATFORM"):
        return False
    wayland = env.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = env.get("XDG_RUNTIME_DIR", "")
        if Path(wayland).is_absolute() or Path(runtime, wayland).exists():
            return False
    display = env.get("DISPLAY")
    return not (display and _x_reachable(display))


DEBUG_MODULES_ENV = "BYOD_AGENT_DEBUG_MODULES_FILE"


def _debug_modules_hook(app: QApplication) -> None:
    """Tests: with BYOD_AGENT_DEBUG_MODULES_FILE set, write the names of the modules this process
    has loaded there (a JSON list), once a second, so a test can hold that the resident tray never
    loads the policy, posture, keystore, cryptography or keyring code."""
    target = os.environ.get(DEBUG_MODULES_ENV)
    if not target:
        return
    import json  # noqa: PLC0415

    from PySide6.QtCore import QTimer  # noqa: PLC0415

    def dump() -> None:
        tmp = Path(target + ".tmp")
        tmp.write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")
        tmp.replace(target)

    timer = QTimer(app)
    timer.setInterval(1000)
    timer.timeout.connect(dump)
    timer.start()
    dump()


def main(lang: str | None = None, open_status: bool = False) -> int:
    from agent.core import i18n  # noqa: PLC0415
    from ui import crash, fonts  # noqa: PLC0415

    existing = QApplication.instance()
    if not isinstance(existing, QApplication) and display_problem(os.environ):
        print(i18n.text("ui.cli.no_display", lang or i18n.detect_language()), file=sys.stderr)
        return exitcodes.USAGE
    crash.install(lambda: lang or i18n.detect_language())
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    fonts.apply(app)
    app.setQuitOnLastWindowClosed(False)  # closing the status window leaves the tray running
    app.setApplicationName("byod-agent")
    name = instance_name()
    if ask_running_instance(name):
        return 0
    # The icon first, in its "checking" state, then the rest of the tray (its windows and parts;
    # no policy, posture or keystore code: those run in the evaluation worker): staff see at
    # once that the agent has started.
    early = QSystemTrayIcon(QIcon(str(resources_dir() / "icons" / "checking.svg")))
    if QSystemTrayIcon.isSystemTrayAvailable():
        early.show()
        app.processEvents()
    from datetime import UTC, datetime  # noqa: PLC0415

    from ui import first_run  # noqa: PLC0415
    from ui.evaluation_task import evaluate_argv  # noqa: PLC0415
    from ui.prefs import default_path as prefs_path  # noqa: PLC0415
    from ui.tray import TrayController, TrayOptions, resolve_language  # noqa: PLC0415

    fresh = not prefs_path().exists()  # nobody has chosen anything yet (first_run.py)
    state_file = os.environ.get("BYOD_AGENT_UI_STATE_FILE")
    # No evaluation in this process: each run is a `byod-agent evaluate --wire` child (the same
    # policy decision as `byod-agent check`), which also purges expired pseudonym mappings and
    # renews the certificate when due (docs/tray.md "The evaluation worker").
    controller = TrayController(TrayOptions(
        None, lang_override=lang, state_file=Path(state_file) if state_file else None,
        tray_icon=early, update_checks=True,
        worker_argv=evaluate_argv(tray_started=datetime.now(UTC))))
    crash.install(lambda: controller.lang)  # the dialog follows the tray's language
    app.setApplicationDisplayName(i18n.text("ui.app_name", resolve_language(
        lang, controller.prefs.language)))
    server = listen(name, controller)
    _debug_modules_hook(app)
    controller.start()
    welcome = first_run.for_tray(controller, fresh=fresh)  # once per user; kept alive here
    if open_status:
        controller.show_status()
    code = app.exec()
    del welcome
    controller.stop()
    controller.session.shutdown()  # Quit ends a running session cleanly (no orphaned tunnel)
    server.close()
    return int(code)
