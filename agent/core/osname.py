"""The running OS as the agent names it: windows, macos, linux, other (no import of the posture
engine, so the tray can ask it; ``agent.posture.context`` re-exports it)."""

from __future__ import annotations

import sys


def current_os() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("linux"):
        return "linux"
    return "other"
