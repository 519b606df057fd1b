"""Nothing in the tray dies silently: uncaught Python exceptions and Qt's own critical messages
are logged (agent.core.logsetup's file, traceback included) and shown as a short localized
dialog. No traceback ever reaches the screen or the terminal; the log has it for the help desk.

``install`` is called by ui/app.py and ui/diag_view.py before the QApplication exists (Qt's
message handler then also sees the platform plugin's start-up messages).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import QMessageLogContext, Qt, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QMessageBox

from agent.core import i18n, logsetup
from agent.core.paths import log_dir

log = logging.getLogger("ui.crash")
qt_log = logging.getLogger("ui.qt")

_state: dict[str, object] = {"lang": i18n.detect_language, "box": None}


def _lang() -> str:
    fn = _state["lang"]
    return str(fn()) if callable(fn) else i18n.detect_language()


def message(lang: str) -> tuple[str, str]:
    """The dialog's title and body: what happened, where the details are, whom to call."""
    body = i18n.text("ui.crash.body", lang) + "\n\n" + i18n.text(
        "ui.crash.where", lang, path=str(log_dir() / "agent.log"))
    return i18n.text("ui.crash.title", lang), body


def show_error_dialog() -> QMessageBox | None:
    """One dialog at a time, never modal to the tray's event loop; None without a GUI."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return None
    box = _state.get("box")
    if isinstance(box, QMessageBox) and box.isVisible():
        return box
    title, body = message(_lang())
    box = QMessageBox(QMessageBox.Icon.Critical, title, body)
    box.setObjectName("crash-dialog")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.show()
    _state["box"] = box
    return box


def excepthook(kind: type[BaseException], value: BaseException,
               tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):  # Ctrl+C at the terminal that started the tray
        app = QApplication.instance()
        if app is not None:
            app.quit()
        return
    log.error("uncaught exception\n%s", "".join(traceback.format_exception(kind, value, tb)))
    print(i18n.text("ui.crash.title", _lang()), file=sys.stderr)
    show_error_dialog()


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    log.error("uncaught exception in thread %s\n%s", getattr(args.thread, "name", "?"),
              "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                 args.exc_traceback)))


def qt_message(mode: QtMsgType, context: QMessageLogContext, text: str) -> None:
    """Qt's debug/warning lines go to the log; a critical or fatal one is also shown."""
    where = f" ({context.file}:{context.line})" if context.file else ""
    if mode in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg):
        qt_log.debug("%s%s", text, where)
    elif mode is QtMsgType.QtWarningMsg:
        qt_log.warning("%s%s", text, where)
    else:
        qt_log.error("Qt %s: %s%s", mode.name, text, where)
        if mode is QtMsgType.QtFatalMsg:  # Qt aborts when this returns: say so, briefly
            print(i18n.text("ui.crash.title", _lang()), file=sys.stderr)
        else:
            show_error_dialog()


def _ensure_log_file() -> None:
    """The traceback goes to the agent's log file, never to Python's last-resort stderr."""
    if logging.getLogger("ui").handlers:
        return
    try:
        logsetup.setup()
    except OSError as exc:  # no writable log directory: keep going, the dialog still shows
        logging.getLogger("ui").addHandler(logging.NullHandler())
        print(f"log: {exc.strerror or exc}", file=sys.stderr)


def install(lang: Callable[[], str] | None = None) -> None:
    if lang is not None:
        _state["lang"] = lang
    logging.raiseExceptions = False  # a broken log handler never prints its own traceback
    _ensure_log_file()
    sys.excepthook = excepthook
    threading.excepthook = _thread_hook
    qInstallMessageHandler(qt_message)
