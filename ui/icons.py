"""State icons drawn from the SVGs in resources/icons (crisp at any scale and DPI).

In a high-contrast theme the ``*-hc.svg`` set is used: the same shapes, drawn only in the theme's
own text colour on its window colour (black #000000 in the file stands for the text colour,
white #ffffff for the window colour), so they follow "High Contrast Black" as well as "White".
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from agent.core.paths import resources_dir
from agent.presentation.recheck import is_high_contrast
from agent.presentation.status_view import TrayState

_SIZES = (16, 20, 22, 24, 32, 48, 64, 128)


def icon_path(state: TrayState, high_contrast: bool = False) -> str:
    suffix = "-hc" if high_contrast else ""
    return str(resources_dir() / "icons" / f"{state.value}{suffix}.svg")


def hc_svg(state: TrayState, fg: str, bg: str) -> bytes:
    text = Path(icon_path(state, True)).read_text(encoding="utf-8")
    text = text.replace("#000000", "@FG@").replace("#ffffff", "@BG@")
    return text.replace("@FG@", fg).replace("@BG@", bg).encode()


@cache
def _hc_icon(state: TrayState, fg: str, bg: str) -> QIcon:
    renderer = QSvgRenderer(QByteArray(hc_svg(state, fg, bg)))
    out = QIcon()
    for size in _SIZES:
        pix = QPixmap(QSize(size, size))
        pix.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pix)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        out.addPixmap(pix)
    return out


@cache
def _plain_icon(state: TrayState) -> QIcon:
    return QIcon(icon_path(state))


def high_contrast_now() -> bool:
    """Qt's contrast preference (Windows/macOS/GNOME report it), else the palette's look."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    pref: str | None = None
    hints = QGuiApplication.styleHints()
    access = getattr(hints, "accessibility", None)  # Qt >= 6.10
    if access is not None:
        value = access().contrastPreference()
        pref = "high" if value == Qt.ContrastPreference.HighContrast else None
    pal = QGuiApplication.palette()
    win, txt = pal.color(QPalette.ColorRole.Window), pal.color(QPalette.ColorRole.WindowText)
    return is_high_contrast(pref, (win.red(), win.green(), win.blue()),
                            (txt.red(), txt.green(), txt.blue()))


def icon(state: TrayState, high_contrast: bool | None = None) -> QIcon:
    if high_contrast is None:
        high_contrast = high_contrast_now()
    if not high_contrast:
        return _plain_icon(state)
    pal = QGuiApplication.palette()
    return _hc_icon(state, pal.color(QPalette.ColorRole.WindowText).name(),
                    pal.color(QPalette.ColorRole.Window).name())
