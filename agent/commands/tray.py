"""``byod-agent tray``: the tray application, and the choice made by a bare ``byod-agent``.

The tray lives in ui/ (PySide6). agent/ must never import Qt, not even transitively at import time
(tests/unit/test_architecture.py checks it statically and by importing every module), so this
command loads ``ui.app`` through importlib only when the tray is actually started.

Exit codes: 0 the tray ended normally; 2 PySide6 is not installed or there is no display (said
in the user's language before Qt could abort).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping

from agent.core import exitcodes, i18n

UI_MODULE = "ui.app"


def has_display(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """A desktop to show a tray on: always on Windows/macOS, X11 or Wayland elsewhere."""
    if platform.startswith("win") or platform == "darwin":
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def ui_installed() -> bool:
    return importlib.util.find_spec("PySide6") is not None


def should_start_tray(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """A bare ``byod-agent`` starts the tray only where it can run; the status table otherwise."""
    return has_display(env, platform) and ui_installed()


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    if not ui_installed():
        print(i18n.text("ui.cli.no_qt", lang), file=sys.stderr)
        return exitcodes.USAGE
    if not (has_display(os.environ) or os.environ.get("QT_QPA_PLATFORM")):
        print(i18n.text("cli.tray.no_display", lang), file=sys.stderr)  # Qt would abort (134)
        return exitcodes.USAGE
    # A bare `byod-agent` lands here on a desktop: say so, for whoever started it from a terminal.
    print(i18n.text("cli.tray.started", lang), file=sys.stderr)
    app = importlib.import_module(UI_MODULE)
    return int(app.main(lang=args.lang, open_status=args.open_status))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tray", help="cli.tray.help", description="cli.tray.help",
                       epilog="cli.tray.exit")
    p.add_argument("--open-status", action="store_true", help="cli.tray.open_status")
    p.set_defaults(handler=run)
