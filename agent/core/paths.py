"""Where the agent finds its shipped resources and keeps per-user files."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

APP_NAME = "byod-agent"
APP_AUTHOR = "BYOD Agent"


def resources_dir() -> Path:
    """Shipped, read-only resources: beside the packages in a checkout, inside a PyInstaller build.

    They are not Python package data because IT replaces some of them (trust anchors, policy)
    when it builds its installer, and the installed copy must stay read-only.
    """
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME, APP_AUTHOR))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))
