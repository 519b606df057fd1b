"""The tray's consent dialog for a help-desk diagnostic file.

Japanese first: purpose, recipient and retention, then every file that will be inside, each
readable exactly as the help desk will see it (already redacted), a ticket number, the level and
where to save. Nothing is written until the user ticks the consent box and presses Save. The slow
parts (checking the PC, writing the file) run on the thread pool (ui/worker.py); the decisions
(what is collected, how it is redacted, what the consent says) live in agent/diagnostics/export.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import platformdirs
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from agent.core import i18n
from agent.diagnostics import export
from agent.diagnostics.bundle import BundleError
from ui import worker

log = logging.getLogger(__name__)

CollectFn = Callable[[], export.Collected]
SaveFn = Callable[[export.Prepared, Path], export.Saved]
MAX_SHOWN = 512 * 1024  # the viewer shows the start of a very long log; the file holds it all


def default_folder() -> Path:
    desktop = Path(platformdirs.user_desktop_dir())
    return desktop if desktop.is_dir() else Path.home()


def _label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


class ExportDialog(QDialog):
    prepared_changed = Signal()  # a new preview is on screen
    saved = Signal(object)  # export.Saved
    failed = Signal(str)

    def __init__(self, lang: str, *, collect: CollectFn = export.collect,
                 save: SaveFn = export.save, folder: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("export-dialog")
        self.lang = lang
        self._collect_fn = collect
        self._save_fn = save
        self.collected: export.Collected | None = None
        self.prepared: export.Prepared | None = None
        self._jobs: list[object] = []  # keeps worker signal objects alive until done
        self._saving = False
        t = lang
        self.setWindowTitle(i18n.text("diag.dialog.title", t))
        lay = QVBoxLayout(self)
        self.consent = _label(i18n.text("diag.dialog.preparing", t))
        self.consent.setObjectName("consent")
        lay.addWidget(self.consent)

        lay.addWidget(_label(i18n.text("diag.dialog.files", t)))
        split = QSplitter()
        self.files = QListWidget()
        self.files.setAccessibleName(i18n.text("diag.dialog.files", t))
        self.files.currentItemChanged.connect(self._show_file)
        self.viewer = QPlainTextEdit()
        self.viewer.setReadOnly(True)
        self.viewer.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        split.addWidget(self.files)
        split.addWidget(self.viewer)
        split.setSizes([260, 640])
        lay.addWidget(split, 1)
        self.replaced = _label()
        lay.addWidget(self.replaced)

        form = QFormLayout()
        self.ticket = QLineEdit()
        self.ticket.setMaxLength(40)
        self.ticket.setAccessibleName(i18n.text("diag.dialog.ticket", t))
        self.ticket.editingFinished.connect(self._refresh)
        self.ticket.textChanged.connect(self._update_buttons)
        self.ticket_error = _label(i18n.text("diag.dialog.ticket_invalid", t))
        self.ticket_error.hide()
        form.addRow(_label(i18n.text("diag.dialog.ticket", t)), self.ticket)
        form.addRow(self.ticket_error)
        self.level = QComboBox()
        for value in export.LEVELS:
            self.level.addItem(i18n.text(f"diag.dialog.level.{value}", t), value)
        self.level.setAccessibleName(i18n.text("diag.dialog.level", t))
        self.level.currentIndexChanged.connect(self._refresh)
        form.addRow(_label(i18n.text("diag.dialog.level", t)), self.level)
        row = QHBoxLayout()
        self.folder = QLineEdit(str(folder or default_folder()))
        self.folder.setAccessibleName(i18n.text("diag.dialog.location", t))
        browse = QPushButton(i18n.text("diag.dialog.browse", t))
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow(_label(i18n.text("diag.dialog.location", t)), row)
        lay.addLayout(form)

        self.agree = QCheckBox(i18n.text("diag.dialog.agree", t))
        self.agree.setAccessibleName(self.agree.text())
        self.agree.toggled.connect(self._update_buttons)
        lay.addWidget(self.agree)
        self.status = _label()
        self.status.setObjectName("status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.status)
        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton(i18n.text("diag.dialog.save", t),
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = buttons.addButton(i18n.text("diag.dialog.cancel", t),
                                               QDialogButtonBox.ButtonRole.RejectRole)
        for b in (self.save_button, self.cancel_button):
            b.setAccessibleName(b.text())
        self.save_button.clicked.connect(self.start_save)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(980, 760)
        self._update_buttons()
        self._start(self._collect_fn, self._on_collected)

    # -- background work --------------------------------------------------------------------
    def _start(self, fn: Callable[[], object], on_result: Callable[[object], None]) -> None:
        holder: list[object] = []

        def done() -> None:
            for h in holder:
                self._jobs.remove(h)

        job = worker.start(fn, on_result, self._on_error, done)
        holder.append(job)
        self._jobs.append(job)

    def busy(self) -> bool:
        return bool(self._jobs)

    def _on_error(self, error: str) -> None:
        key = "diag.dialog.save_failed" if self._saving else "diag.dialog.prepare_failed"
        self._saving = False
        self.status.setText(i18n.text(key, self.lang, error=error))
        self._update_buttons()
        self.failed.emit(error)

    def _on_collected(self, value: object) -> None:
        if not isinstance(value, export.Collected):
            self._on_error(f"unexpected result {type(value).__name__}")
            return
        self.collected = value
        # Japanese first; staff who chose English get it too, above the Japanese original.
        ja = export.consent_text(value, "ja")
        self.consent.setText(ja if self.lang == "ja"
                             else f"{export.consent_text(value, self.lang)}\n\n{ja}")
        self._refresh()

    # -- preview ----------------------------------------------------------------------------
    def _ticket(self) -> str | None:
        text = self.ticket.text().strip()
        return text or None

    def _ticket_ok(self) -> bool:
        ticket = self._ticket()
        return ticket is None or bool(export.TICKET.match(ticket))

    def _refresh(self) -> None:
        """Redact again for the current level and ticket (fast; the same bundle ID)."""
        if self.collected is None or self._saving:
            return
        if not self._ticket_ok():
            self._update_buttons()
            return
        keep_id = self.prepared.preview.bundle_id if self.prepared else None
        try:
            self.prepared = export.preview(self.collected, level=str(self.level.currentData()),
                                           ticket=self._ticket(), bundle_id=keep_id)
        except BundleError as exc:
            self.prepared = None
            self.status.setText(i18n.text("diag.dialog.prepare_failed", self.lang, error=str(exc)))
            self._update_buttons()
            return
        current = self.files.currentItem()
        shown = current.data(Qt.ItemDataRole.UserRole) if current else "summary.txt"
        self.files.clear()
        for name, data in sorted(self.prepared.preview.files.items()):
            item = QListWidgetItem(i18n.text("diag.dialog.file_item", self.lang, name=name,
                                             size=f"{len(data):,}"))
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.files.addItem(item)
            if name == shown:
                self.files.setCurrentItem(item)
        if self.files.currentItem() is None and self.files.count():
            self.files.setCurrentRow(0)
        replaced = ", ".join(f"{k}: {n}" for k, n in sorted(
            self.prepared.preview.replaced.items())) or "-"
        self.replaced.setText(i18n.text("diag.dialog.replaced", self.lang, replaced=replaced))
        self._update_buttons()
        self.prepared_changed.emit()

    def _show_file(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        if item is None or self.prepared is None:
            self.viewer.clear()
            return
        data = self.prepared.preview.files.get(item.data(Qt.ItemDataRole.UserRole), b"")
        self.viewer.setPlainText(data[:MAX_SHOWN].decode("utf-8", errors="replace"))

    def shown_text(self) -> str:
        return self.viewer.toPlainText()

    def _update_buttons(self) -> None:
        ok = self._ticket_ok()
        self.ticket_error.setVisible(not ok)
        self.save_button.setEnabled(self.prepared is not None and self.agree.isChecked() and ok
                                    and not self._saving)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, i18n.text("diag.dialog.location",
                                                                  self.lang), self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    # -- saving -----------------------------------------------------------------------------
    def start_save(self) -> None:
        self._refresh()  # the ticket typed last is in the file
        if self.prepared is None or not self.agree.isChecked() or not self._ticket_ok():
            return
        prepared = self.prepared
        folder = Path(self.folder.text()).expanduser()
        self._saving = True
        self._update_buttons()
        self.status.setText(i18n.text("diag.dialog.saving", self.lang))
        self._start(lambda: self._save_fn(prepared, folder), self._on_saved)

    def _on_saved(self, value: object) -> None:
        self._saving = False
        if not isinstance(value, export.Saved):
            self._on_error(f"unexpected result {type(value).__name__}")
            return
        text = i18n.text("diag.dialog.saved", self.lang, bundle_id=value.bundle_id,
                         path=str(value.path))
        if value.mapping_problem is not None:
            text += "\n" + i18n.text("diag.mapping.not_kept_note", self.lang,
                                     reason=i18n.render(value.mapping_problem, self.lang))
        self.status.setText(text)
        self.save_button.setEnabled(False)
        self.cancel_button.setText(i18n.text("diag.dialog.close", self.lang))
        log.info("diagnostic bundle %s saved", value.bundle_id)
        self.saved.emit(value)
