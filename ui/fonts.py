"""One Japanese UI font for the whole string.

Qt's default sans font on Linux (often DejaVu Sans) has no Japanese glyphs, so Japanese comes
from a fallback font while digits and Latin letters stay in the default one, at a visibly
different size and weight ("6項目中3項目" with small digits). Setting a font that has both for
the whole application renders mixed text in one face: Noto Sans CJK JP (Debian fonts-noto-cjk)
or another installed Japanese font on Linux, Yu Gothic UI on Windows, Hiragino Sans on macOS.
The size stays the platform's own (DPI and accessibility settings).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from PySide6.QtGui import QFontDatabase, QGuiApplication

log = logging.getLogger(__name__)

CANDIDATES: dict[str, tuple[str, ...]] = {
    "win32": ("Yu Gothic UI", "Meiryo UI", "Meiryo", "MS UI Gothic"),
    "darwin": ("Hiragino Sans", "Hiragino Kaku Gothic ProN", "Noto Sans CJK JP"),
    "linux": ("Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP", "IPAexGothic",
              "IPAPGothic", "VL PGothic", "TakaoPGothic"),
}


def pick_family(available: Iterable[str], platform: str = sys.platform) -> str | None:
    """The first Japanese UI font of this OS that is installed (pure; tested directly)."""
    installed = {f.casefold(): f for f in available}
    key = "win32" if platform.startswith("win") else "darwin" if platform == "darwin" \
        else "linux"
    for name in CANDIDATES[key]:
        if name.casefold() in installed:
            return installed[name.casefold()]
    return None


def apply(app: QGuiApplication) -> str | None:
    """Use the Japanese UI font for everything; the family used, or None (Qt's default kept)."""
    family = pick_family(QFontDatabase.families())
    if family is None:
        log.info("no Japanese UI font found; Qt's default font is used")
        return None
    font = app.font()
    font.setFamily(family)
    app.setFont(font)
    return family
