"""Accessibility: a name on every control, high-contrast icons that keep their shapes, and the
status window readable at 200 % scaling (no clipped text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from agent.keystore import Keystore
from agent.posture.checks.disk_encryption import check as disk_encryption
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.posture.model import Report
from agent.presentation.status_view import DecisionInfo, TargetInfo, TrayState
from tests.conftest import REPO
from ui import icons
from ui.cert_dialog import CertDialog
from ui.tray import TrayController, TrayOptions
from ui.wake import WakeWatcher

pytestmark = pytest.mark.gui
CONTROLS = (QAbstractButton, QLineEdit, QComboBox, QPlainTextEdit, QLabel)


def _report() -> Report:
    return run_posture(default_context(), [("os_supported", os_supported.check),
                                           ("disk_encryption", disk_encryption.check)])


def _unnamed(root: QWidget) -> list[str]:
    missing = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, CONTROLS) or not w.isVisibleTo(root):
            continue
        text = w.text() if isinstance(w, (QAbstractButton, QLabel, QLineEdit)) else ""
        if isinstance(w, QLabel) and not text and w.pixmap().isNull():
            continue  # an empty spacer label says nothing to anyone
        if not (w.accessibleName() or text):
            missing.append(f"{type(w).__name__} {w.objectName()!r}")
    return missing


def test_every_control_has_an_accessible_name(qtbot, tmp_path: Path) -> None:
    decision = DecisionInfo(True, "C", targets=(TargetInfo("a", "庁内PC", "Office PC"),
                                                TargetInfo("b", "庁内PC 2", "Office PC 2")))
    c = TrayController(TrayOptions(_report, decide=lambda _r: decision, lang_override="ja",
                       prefs_path=tmp_path / "ui.json", tray_retries=0,
                       wake=WakeWatcher(platform=False),
                       cert_store=lambda: Keystore(tmp_path / "ks", fail.Keyring())))
    qtbot.addWidget(c.window)
    c.start()
    qtbot.waitUntil(lambda: not c.running, timeout=15_000)
    for w in c.window.row_widgets:
        w.details_button.setChecked(True)
    settings = c.open_settings()
    about = c.open_about()
    cert = CertDialog("ja", lambda: Keystore(tmp_path / "ks", fail.Keyring()))
    for d in (settings, about, cert):
        assert d is not None
        qtbot.addWidget(d)
        d.show()
    qtbot.waitUntil(lambda: not cert.busy, timeout=10_000)
    for root in (c.window, settings, about, cert):
        assert root is not None
        assert _unnamed(root) == [], root.objectName()
    for a in c.menu_ctl.menu.actions():  # menu entries are read by their text
        assert a.isSeparator() or a.text()
    c.stop()


def _alpha_mask(state: TrayState, hc: bool) -> QImage:
    img = icons.icon(state, hc).pixmap(QSize(64, 64)).toImage()
    return img.convertToFormat(QImage.Format.Format_Alpha8)


def test_high_contrast_icons_follow_the_theme_and_keep_their_shapes(qtbot) -> None:
    app = QGuiApplication.instance()
    assert isinstance(app, QGuiApplication)
    saved = app.palette()
    pal = QPalette(saved)
    pal.setColor(QPalette.ColorRole.Window, QColor("#000000"))
    pal.setColor(QPalette.ColorRole.WindowText, QColor("#ffffff"))
    app.setPalette(pal)
    try:
        assert icons.high_contrast_now()  # "High Contrast Black" look
        for state in TrayState:
            img = icons.icon(state).pixmap(QSize(64, 64)).toImage()
            opaque = [img.pixelColor(x, y) for x in range(64) for y in range(64)
                      if img.pixelColor(x, y).alpha() == 255]
            # only the theme's black and white (and the anti-aliased greys between them)
            assert opaque and all(c.red() == c.green() == c.blue() for c in opaque), state
            assert "#ffffff" in {c.name() for c in opaque}, state  # drawn in the text colour
    finally:
        app.setPalette(saved)
    assert not icons.high_contrast_now()
    masks = {s: _alpha_mask(s, True) for s in TrayState}
    states = list(TrayState)
    for i, a in enumerate(states):  # shapes, not colours, tell the states apart
        for b in states[i + 1:]:
            differ = sum(1 for x in range(64) for y in range(64)
                         if (masks[a].pixelColor(x, y).alpha() > 127)
                         != (masks[b].pixelColor(x, y).alpha() > 127))
            assert differ > 200, (a, b, differ)


def test_status_window_at_200_percent_has_no_clipped_text() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2",
               PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("scale_probe.py"))],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ratio"] == 2.0
    assert result["labels"] > 5
    assert result["clipped"] == []
