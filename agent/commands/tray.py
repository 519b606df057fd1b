"""``byod-agent tray``: the tray application, and the choice made by a bare ``byod-agent``.

The tray lives in ui/ (PySide6). agent/ must never import Qt, not even transitively at import time
(tests/unit/test_architecture.py checks it statically and by importing every module), so this
command loads ``ui.app`` through importlib only when the tray is actually started.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
    if not ui_installed():
        print(i18n.text("ui.cli.no_qt", args.lang or i18n.detect_language()), file=sys.stderr)
        return exitcodes.USAGE
    app = importlib.import_module(UI_MODULE)
    return int(app.main(lang=args.lang, open_status=args.open_status))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tray", help="start the tray application")
    p.add_argument("--lang", choices=i18n.LANGS, help="language (default: setting, then OS)")
    p.add_argument("--open-status", action="store_true", help="open the status window at start")
    p.set_defaults(handler=run)
