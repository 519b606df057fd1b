"""The first-run window: shown once, at the first tray start, in plain Japanese (or English).

What the agent is, what it reads on this PC (the same list as About/Privacy) and what it never
reads or sends, and whether it now starts at sign-in. Remembered in the user's ui.json
(``Prefs.first_run_shown``, ui/prefs.py) as soon as it is shown, so a crash or a logout while it
is open does not bring it back; a damaged ui.json gives the defaults, so it may then be shown
once more (preferences are never worth a crash).

Start at login is turned on here for installed builds (agent.settings.autostart
.first_run_default): only for a fresh user (no ui.json yet: nobody has chosen anything), never
over IT's lock and never over a Windows "off" in Task Manager ("blocked").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from agent.core import i18n
from agent.core.osname import current_os
from agent.settings import store as settings_store
from agent.settings.autostart import Autostart, first_run_default
from agent.settings.managed import ManagedSettings
from ui import prefs as prefs_mod

if TYPE_CHECKING:
    from ui.tray import TrayController

log = logging.getLogger(__name__)


def installed_build() -> bool:
    """A PyInstaller build (what the MSI, the .deb and the .app carry), not ``python -m agent``."""
    return bool(getattr(sys, "frozen", False))


def _label(text: str, *, bold: bool = False) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(True)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


class FirstRunDialog(QDialog):
    def __init__(self, lang: str, autostart_state: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("first-run")
        self.setWindowTitle(i18n.text("ui.first_run.title", lang))
        lay = QVBoxLayout(self)
        self.sections: list[tuple[str, str, bool]] = [  # title, body, a list?
            ("ui.first_run.what_title", "ui.first_run.what", False),
            ("ui.about.reads_title", "ui.about.reads", True),
            ("ui.first_run.never_title", "ui.first_run.never", True),
        ]
        for title, body, bullets in self.sections:
            lay.addWidget(_label(i18n.text(title, lang), bold=True))
            items = [x for x in i18n.text(body, lang).splitlines() if x.strip()]
            lay.addWidget(_label("\n".join(f"・{x}" if bullets else x for x in items)))
        self.autostart_note: QLabel | None = None
        if autostart_state in ("on", "off", "blocked"):
            self.autostart_note = _label(i18n.text(f"ui.first_run.autostart_{autostart_state}",
                                                   lang))
            lay.addWidget(self.autostart_note)
        buttons = QDialogButtonBox()
        ok = buttons.addButton(i18n.text("ui.first_run.ok", lang),
                               QDialogButtonBox.ButtonRole.AcceptRole)
        ok.setDefault(True)
        ok.setAccessibleName(ok.text())
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)
        self.ok_button = ok
        self.setMinimumWidth(560)
        self.resize(640, 560)


def apply_autostart_default(autostart: Autostart, argv: Sequence[str], lang: str, *,
                            installed: bool, fresh: bool, managed: ManagedSettings) -> str | None:
    """Turn start at login on where that is the default; returns the state to tell the user
    (None when it could not be read: then nothing is said about it)."""
    try:
        state = autostart.state()
        if fresh and first_run_default(installed=installed, state=state,
                                       locked=managed.is_locked("StartAtLogin")):
            autostart.enable(argv, i18n.text("ui.app_name", lang),
                             i18n.text("ui.autostart.comment", lang))
            state = autostart.state()
        return state
    except (OSError, ValueError) as exc:  # a registry or file problem: say nothing, log it
        log.warning("start at login at first run: %s", exc)
        return None


def maybe_show(prefs: prefs_mod.Prefs, prefs_path: Path, lang: str, *, fresh: bool,
               autostart: Autostart | None, autostart_argv: Sequence[str],
               managed: ManagedSettings, installed: bool | None = None,
               save: Callable[[Path, prefs_mod.Prefs], None] = prefs_mod.save,
               ) -> FirstRunDialog | None:
    """Show the window once (non-modal; the tray keeps working behind it)."""
    if prefs.first_run_shown:
        return None
    state = None
    if autostart is not None:
        state = apply_autostart_default(
            autostart, autostart_argv, lang, fresh=fresh, managed=managed,
            installed=installed_build() if installed is None else installed)
    prefs.first_run_shown = True
    try:
        save(prefs_path, prefs)
    except OSError as exc:  # shown again next time rather than never
        log.warning("could not remember the first-run window: %s", exc)
    dialog = FirstRunDialog(lang, state)
    dialog.show()
    dialog.raise_()
    return dialog


def for_tray(controller: TrayController, *, fresh: bool) -> FirstRunDialog | None:
    """The tray's first start (ui/app.py): this user's prefs, OS entry and IT's locks."""
    os_name = current_os()
    autostart = controller.autostart or Autostart(os_name, Path.home(), dict(os.environ))
    try:
        managed = settings_store.current(os_name)[0]
    except (OSError, ValueError) as exc:
        log.warning("managed settings unreadable at first run: %s", exc)
        managed = ManagedSettings()
    dialog = maybe_show(controller.prefs, controller.prefs_path, controller.lang, fresh=fresh,
                        autostart=autostart, autostart_argv=controller.options.autostart_argv,
                        managed=managed)
    controller.autostart = autostart
    return dialog
