"""Settings (language, start at login) and About/Privacy dialogs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

import agent
from agent.core import i18n
from agent.settings.autostart import Autostart
from agent.settings.managed import ManagedSettings


class SettingsDialog(QDialog):
    """Language override and start at login. Applied by the caller on accept."""

    def __init__(self, lang: str, language_pref: str, autostart: Autostart,
                 parent: QWidget | None = None, managed: ManagedSettings | None = None) -> None:
        super().__init__(parent)
        self.managed = managed or ManagedSettings()
        self.setObjectName("settings-dialog")
        self.setWindowTitle(i18n.text("ui.settings.title", lang))
        self.autostart = autostart
        form = QFormLayout()
        self.layout_form = form
        self.language = QComboBox()
        for value in ("auto", *i18n.LANGS):
            self.language.addItem(i18n.text(f"ui.settings.lang.{value}", lang), value)
        self.language.setCurrentIndex(max(0, self.language.findData(language_pref)))
        self.language.setAccessibleName(i18n.text("ui.settings.language", lang))
        label = QLabel(i18n.text("ui.settings.language", lang))
        label.setBuddy(self.language)
        form.addRow(label, self.language)
        self.start_at_login = QCheckBox(i18n.text("ui.settings.autostart", lang))
        self.start_at_login.setAccessibleName(i18n.text("ui.settings.autostart", lang))
        try:
            self.start_at_login.setChecked(autostart.is_enabled())
        except OSError:
            self.start_at_login.setChecked(False)
        form.addRow(self.start_at_login)
        # Windows: our Run entry is there but Task Manager switched it off. Say so, and how to
        # turn it back on (ticking the box and saving re-approves it: Autostart.enable).
        self.autostart_blocked = QLabel(i18n.text("ui.settings.autostart_blocked", lang))
        self.autostart_blocked.setObjectName("autostart-blocked")
        self.autostart_blocked.setTextFormat(Qt.TextFormat.PlainText)
        self.autostart_blocked.setWordWrap(True)
        try:
            blocked = autostart.state() == "blocked"
        except OSError:
            blocked = False
        self.autostart_blocked.setVisible(blocked)
        form.addRow(self.autostart_blocked)
        self._show_locked(lang)
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.hide()
        buttons = QDialogButtonBox()
        save = buttons.addButton(i18n.text("ui.settings.save", lang),
                                 QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(i18n.text("ui.settings.cancel", lang),
                                   QDialogButtonBox.ButtonRole.RejectRole)
        save.setDefault(True)
        for b in (save, cancel):
            b.setAccessibleName(b.text())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.lang = lang

    def _show_locked(self, lang: str) -> None:
        """Settings IT locked (agent/settings/managed.py): their value, greyed out, and why."""
        tip = i18n.text("ui.settings.locked_tip", lang)
        if self.managed.is_locked("Language"):
            self.language.setCurrentIndex(max(0, self.language.findData(
                self.managed.value("Language"))))
            self.language.setEnabled(False)
            self.language.setToolTip(tip)
        if self.managed.is_locked("StartAtLogin"):
            self.start_at_login.setChecked(bool(self.managed.value("StartAtLogin")))
            self.start_at_login.setEnabled(False)
            self.start_at_login.setToolTip(tip)
        if self.managed.locked:
            self.locked_note = QLabel(i18n.text("ui.settings.locked_note", lang))
            self.locked_note.setWordWrap(True)
            self.layout_form.addRow(self.locked_note)

    def chosen_language(self) -> str:
        if self.managed.is_locked("Language"):
            return str(self.managed.value("Language"))
        return str(self.language.currentData())

    def apply_autostart(self, argv: list[str]) -> bool:
        """Write or remove the OS entry; on failure say why and keep the dialog open."""
        try:
            wanted = self.start_at_login.isChecked()
            if self.managed.is_locked("StartAtLogin"):  # the lock wins over the widget
                wanted = bool(self.managed.value("StartAtLogin"))
            if wanted:
                self.autostart.enable(argv, i18n.text("ui.app_name", self.lang),
                                      i18n.text("ui.autostart.comment", self.lang))
            else:
                self.autostart.disable()
        except (OSError, ValueError) as exc:
            self.error.setText(i18n.text("ui.settings.autostart_failed", self.lang,
                                         error=str(exc)))
            self.error.show()
            return False
        return True


class AboutDialog(QDialog):
    """Exactly what the agent reads here, and what leaves the PC, when and to whom."""

    def __init__(self, lang: str, parent: QWidget | None = None,
                 update_lines: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("about-dialog")
        self.setWindowTitle(i18n.text("ui.about.title", lang))
        lay = QVBoxLayout(self)
        parts = [f"<h3>{_esc(i18n.text('ui.about.version', lang, version=agent.__version__))}</h3>"]
        # channel and last update check (agent/update/state.py about_lines)
        parts += [f"<p>{_esc(line)}</p>" for line in update_lines or ()]
        for section in ("reads", "leaves"):
            items = "".join(f"<li>{_esc(line)}</li>" for line in
                            i18n.text(f"ui.about.{section}", lang).splitlines() if line.strip())
            parts.append(f"<h4>{_esc(i18n.text(f'ui.about.{section}_title', lang))}</h4>"
                         f"<ul>{items}</ul>")
        self.body = QLabel("".join(parts))
        self.body.setWordWrap(True)
        self.body.setAccessibleName(i18n.text("ui.about.title", lang))
        lay.addWidget(self.body)
        buttons = QDialogButtonBox()
        close = buttons.addButton(i18n.text("ui.about.close", lang),
                                  QDialogButtonBox.ButtonRole.RejectRole)
        close.setAccessibleName(close.text())
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(640, 520)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
