"""State icons drawn from the SVGs in resources/icons (crisp at any scale and DPI)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from agent.paths import resources_dir
from agent.statusview import TrayState


def icon_path(state: TrayState) -> str:
    return str(resources_dir() / "icons" / f"{state.value}.svg")


@cache
def icon(state: TrayState) -> QIcon:
    return QIcon(icon_path(state))
