"""Certificate dialog: details and expiry, import a .p12, enroll with a code, remove.

Every keystore call runs on the thread pool (the OS keyring may prompt or hang); results come
back as agent.presentation.cert_view.CertActionResult texts. The PKCS#12 password field is masked,
cleared after use and never logged.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n
from agent.keystore import Keystore
from agent.presentation import cert_view as tray_cert
from ui import worker

StoreFactory = Callable[[], Keystore]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _named(widget: QWidget, name: str) -> QWidget:
    widget.setAccessibleName(name)
    return widget


class CertDialog(QDialog):
    changed = Signal()  # the stored certificate changed (the tray re-checks)

    def __init__(self, lang: str, store: StoreFactory = Keystore.default,
                 now: Callable[[], dt.datetime] = _now, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self._store = store
        self._now = now
        self._jobs: list[object] = []
        self.busy = False

        def t(key: str) -> str:
            return i18n.text(key, lang)

        self.setObjectName("cert-dialog")
        self.setWindowTitle(t("ui.cert.title"))
        self.setAccessibleName(t("ui.cert.title"))
        lay = QVBoxLayout(self)

        box = QGroupBox(t("ui.cert.details"))
        self.details_form = QFormLayout(box)
        self.state_label = QLabel()
        self.state_label.setTextFormat(Qt.TextFormat.PlainText)  # certificate text: never rich
        self.state_label.setWordWrap(True)
        self.details_form.addRow(self.state_label)
        lay.addWidget(box)

        imp = QGroupBox(t("ui.cert.import"))
        form = QFormLayout(imp)
        self.p12_path = QLineEdit()
        _named(self.p12_path, t("ui.cert.p12_file"))
        self.browse_p12 = QPushButton(t("ui.cert.choose_file"))
        _named(self.browse_p12, t("ui.cert.choose_p12"))
        self.browse_p12.clicked.connect(self._choose_p12)
        row = QHBoxLayout()
        row.addWidget(self.p12_path, 1)
        row.addWidget(self.browse_p12)
        form.addRow(self._label("ui.cert.p12_file", self.p12_path), row)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        _named(self.password, t("ui.cert.password"))
        form.addRow(self._label("ui.cert.password", self.password), self.password)
        self.import_button = QPushButton(t("ui.cert.import_button"))
        _named(self.import_button, t("ui.cert.import_button"))
        self.import_button.clicked.connect(self.do_import)
        form.addRow(self.import_button)
        lay.addWidget(imp)

        enr = QGroupBox(t("ui.cert.enroll"))
        form = QFormLayout(enr)
        self.code = QLineEdit()
        _named(self.code, t("ui.cert.code"))
        form.addRow(self._label("ui.cert.code", self.code), self.code)
        self.est_url = QLineEdit()
        self.est_url.setPlaceholderText("https://est.example.lg.jp/.well-known/est")
        _named(self.est_url, t("ui.cert.est_url"))
        form.addRow(self._label("ui.cert.est_url", self.est_url), self.est_url)
        self.ca_path = QLineEdit()
        _named(self.ca_path, t("ui.cert.ca_file"))
        self.browse_ca = QPushButton(t("ui.cert.choose_file"))
        _named(self.browse_ca, t("ui.cert.choose_ca"))
        self.browse_ca.clicked.connect(self._choose_ca)
        row = QHBoxLayout()
        row.addWidget(self.ca_path, 1)
        row.addWidget(self.browse_ca)
        form.addRow(self._label("ui.cert.ca_file", self.ca_path), row)
        self.enroll_button = QPushButton(t("ui.cert.enroll_button"))
        _named(self.enroll_button, t("ui.cert.enroll_button"))
        self.enroll_button.clicked.connect(self.do_enroll)
        form.addRow(self.enroll_button)
        lay.addWidget(enr)
        self._stored_anchor: str | None = None

        self.outcome_label = QLabel()
        self.outcome_label.setTextFormat(Qt.TextFormat.PlainText)
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setAccessibleName(t("ui.cert.result"))
        self.outcome_label.hide()
        lay.addWidget(self.outcome_label)

        buttons = QDialogButtonBox()
        self.remove_button = buttons.addButton(t("ui.cert.remove"),
                                               QDialogButtonBox.ButtonRole.DestructiveRole)
        self.remove_button.setAccessibleName(t("ui.cert.remove"))
        self.remove_button.clicked.connect(self.ask_remove)
        close = buttons.addButton(t("ui.cert.close"), QDialogButtonBox.ButtonRole.RejectRole)
        close.setAccessibleName(t("ui.cert.close"))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.confirm: QMessageBox | None = None
        self._detail_rows: list[QWidget] = []
        self.refresh()

    def _label(self, key: str, buddy: QWidget) -> QLabel:
        label = QLabel(i18n.text(key, self.lang))
        label.setBuddy(buddy)
        return label

    # -- background work ---------------------------------------------------------------------
    def _run(self, fn: Callable[[], object], on_result: Callable[[object], None]) -> None:
        self._set_busy(True)

        def failed(error: str) -> None:
            self._show(tray_cert.CertActionResult(False, i18n.text("ui.cert.failed", self.lang,
                                                          error=error)))

        job = worker.start(fn, on_result, failed, lambda: self._done(job))
        self._jobs.append(job)

    def _done(self, job: object) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        self._set_busy(bool(self._jobs))

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for b in (self.import_button, self.enroll_button, self.remove_button, self.browse_p12,
                  self.browse_ca):
            b.setEnabled(not busy)

    def _show(self, outcome: object) -> None:
        if isinstance(outcome, tray_cert.CertActionResult):
            self.outcome_label.setText(outcome.text)
            self.outcome_label.setProperty("ok", outcome.ok)
            self.outcome_label.show()

    def _after_change(self, outcome: object) -> None:
        self._show(outcome)
        if isinstance(outcome, tray_cert.CertActionResult) and outcome.ok:
            self.changed.emit()
        self.refresh()

    # -- details -----------------------------------------------------------------------------
    def refresh(self) -> None:
        lang, now, store = self.lang, self._now(), self._store

        def load() -> tuple[tray_cert.CertDetails, tray_cert.EnrollDefaults | None]:
            ks = store()
            return tray_cert.details(ks.status(), lang, now), tray_cert.enroll_defaults(ks)

        self._run(load, self._paint)

    def _paint(self, value: object) -> None:
        details, defaults = value if isinstance(value, tuple) else (None, None)
        if not isinstance(details, tray_cert.CertDetails):
            return
        for w in self._detail_rows:
            self.details_form.removeRow(w)
        self._detail_rows = []
        line = i18n.text("ui.cert.state", self.lang, state=details.state)
        extra = [x for x in (details.problem, details.warning) if x]
        self.state_label.setText("\n".join([line, *extra]))
        self.state_label.setAccessibleName(self.state_label.text())
        for label, value_text in details.rows:
            field = QLabel(value_text)
            field.setTextFormat(Qt.TextFormat.PlainText)  # a subject "<b>x</b>" stays text
            field.setWordWrap(True)
            field.setAccessibleName(f"{label}: {value_text}")
            self.details_form.addRow(label, field)
            self._detail_rows.append(field)
        self.remove_button.setVisible(details.removable)
        if isinstance(defaults, tray_cert.EnrollDefaults):
            if not self.est_url.text():
                self.est_url.setText(defaults.url)
            self._stored_anchor = defaults.trust_anchor_pem
            self.ca_path.setPlaceholderText(i18n.text("ui.cert.ca_stored", self.lang))

    # -- actions -----------------------------------------------------------------------------
    def _choose_p12(self) -> None:
        dialog = QFileDialog(self, i18n.text("ui.cert.choose_p12", self.lang))
        dialog.setNameFilter(i18n.text("ui.cert.p12_filter", self.lang))
        dialog.fileSelected.connect(self.p12_path.setText)
        dialog.open()
        self._file_dialog = dialog

    def _choose_ca(self) -> None:
        dialog = QFileDialog(self, i18n.text("ui.cert.choose_ca", self.lang))
        dialog.setNameFilter(i18n.text("ui.cert.ca_filter", self.lang))
        dialog.fileSelected.connect(self.ca_path.setText)
        dialog.open()
        self._file_dialog = dialog

    def do_import(self) -> None:
        path, password = self.p12_path.text().strip(), self.password.text()
        self.password.clear()  # the password lives only in this call from here on
        if not path:
            self._show(tray_cert.CertActionResult(False, i18n.text("ui.cert.need_file", self.lang)))
            return
        lang, store = self.lang, self._store
        self._run(lambda: tray_cert.import_p12(store(), path, password, lang), self._after_change)

    def do_enroll(self) -> None:
        code, url = self.code.text(), self.est_url.text()
        anchor = self.ca_path.text().strip() or self._stored_anchor or ""
        if not code.strip() or not url.strip() or not anchor:
            self._show(tray_cert.CertActionResult(False,
                                                  i18n.text("ui.cert.need_enroll", self.lang)))
            return
        self.code.clear()  # one-time: never kept
        lang, store, subject = self.lang, self._store, f"CN={getpass.getuser()}"
        self._run(lambda: tray_cert.enroll(store(), url=url, anchor=anchor, code=code,
                                                 subject=subject, lang=lang),
                  self._after_change)

    def ask_remove(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, i18n.text("ui.cert.remove", self.lang),
                          i18n.text("ui.cert.remove_confirm", self.lang),
                          QMessageBox.StandardButton.NoButton, self)
        yes = box.addButton(i18n.text("ui.cert.remove_yes", self.lang),
                            QMessageBox.ButtonRole.DestructiveRole)
        no = box.addButton(i18n.text("ui.cert.remove_no", self.lang),
                           QMessageBox.ButtonRole.RejectRole)
        yes.setAccessibleName(yes.text())
        no.setAccessibleName(no.text())
        box.setDefaultButton(no)  # Enter must not delete the certificate
        box.buttonClicked.connect(lambda b: self._removal_answer(b is yes))
        box.open()
        self.confirm = box
        return box

    def _removal_answer(self, yes: bool) -> None:
        if not yes:
            return
        lang, store = self.lang, self._store
        self._run(lambda: tray_cert.remove(store(), lang), self._after_change)
