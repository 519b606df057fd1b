"""Asks for the office PC user name and password before a FreeRDP session (Linux).

mstsc and Windows App ask for credentials themselves; FreeRDP has no dialog of its own, so the
tray asks and hands the password to ``connect --password-stdin``. The password lives only in
this dialog and the child's stdin pipe: never in argv, prefs, logs or disk. The user name is
remembered (it is not a secret) so staff type it once.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n


class CredentialsDialog(QDialog):
    def __init__(self, lang: str, target_name: str, user: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t = lang
        self.setWindowTitle(i18n.text("ui.credentials.title", t))
        layout = QVBoxLayout(self)
        intro = QLabel(i18n.text("ui.credentials.intro", t, target=target_name))
        intro.setWordWrap(True)
        intro.setTextFormat(intro.textFormat().PlainText)
        layout.addWidget(intro)
        form = QFormLayout()
        self.user = QLineEdit(user)
        self.user.setAccessibleName(i18n.text("ui.credentials.user", t))
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName(i18n.text("ui.credentials.password", t))
        form.addRow(i18n.text("ui.credentials.user", t), self.user)
        form.addRow(i18n.text("ui.credentials.password", t), self.password)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(i18n.text("ui.credentials.connect", t))
        ok.setAccessibleName(ok.text())
        cancel = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setText(i18n.text("ui.credentials.cancel", t))
        cancel.setAccessibleName(cancel.text())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._ok = ok
        self.user.textChanged.connect(self._update)
        self.password.textChanged.connect(self._update)
        (self.password if user else self.user).setFocus()
        self._update()

    def _update(self) -> None:
        self._ok.setEnabled(bool(self.user.text().strip()) and bool(self.password.text()))

    def values(self) -> tuple[str, str]:
        return self.user.text().strip(), self.password.text()

    def done(self, result: int) -> None:
        super().done(result)
        if result != QDialog.DialogCode.Accepted:
            self.password.clear()
