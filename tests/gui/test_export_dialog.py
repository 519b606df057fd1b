"""The tray's consent dialog driving the real core export (this PC's posture, the demo policy)
into tmp_path, with the pseudonym mapping kept in a real Secret Service."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from agent.diagnostics import export
from agent.diagnostics.mapping import MappingStore
from agent.diagnostics.reader import open_bundle
from agent.settings.autostart import Autostart
from tests.conftest import require
from tests.integration import secret_service
from ui.export_dialog import ExportDialog

pytestmark = pytest.mark.gui
USER = "yamada.taro"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[secret_service.SecretService]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    with secret_service.running(tmp_path / "home" / USER) as ss:
        for k, v in ss.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("USER", USER)
        monkeypatch.setenv("LOGNAME", USER)
        log_dir = ss.home / ".local" / "state" / "byod-agent" / "log"
        log_dir.mkdir(parents=True)
        (log_dir / "agent.log").write_text(
            f"ERROR {USER} password=hunter2 from 198.51.100.20\n", encoding="utf-8")
        yield ss


def _dialog(qtbot, ss: secret_service.SecretService, out: Path,  # type: ignore[no-untyped-def]
            threads: list[str]) -> ExportDialog:
    from keyring.backends.SecretService import Keyring

    store = MappingStore(ss.home / "maps", backend=Keyring())

    def save(prepared: export.Prepared, folder: Path) -> export.Saved:
        threads.append(threading.current_thread().name)
        return export.save(prepared, folder, store=store)

    dialog = ExportDialog("ja", save=save, folder=out)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.prepared is not None, timeout=90_000)
    return dialog


def _select(dialog: ExportDialog, name: str) -> str:
    for row in range(dialog.files.count()):
        if dialog.files.item(row).data(Qt.ItemDataRole.UserRole) == name:
            dialog.files.setCurrentRow(row)
            return dialog.shown_text()
    raise AssertionError(f"{name} not listed")


def test_consent_preview_and_save(qtbot, home: secret_service.SecretService,  # type: ignore[no-untyped-def]
                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    threads: list[str] = []
    d = _dialog(qtbot, home, out, threads)
    consent = d.consent.text()
    assert consent.startswith("目的") and "渡す先" in consent and "30日" in consent
    names = {d.files.item(r).data(Qt.ItemDataRole.UserRole) for r in range(d.files.count())}
    assert {"summary.txt", "posture.json", "connectivity.json", "logs/agent.log"} <= names
    for name in names:  # every file browsable, exactly as redacted
        shown = _select(d, name)
        assert shown == d.prepared.preview.files[name].decode("utf-8")
        assert USER not in shown and "hunter2" not in shown and "198.51.100.20" not in shown
    assert "ip-" in _select(d, "logs/agent.log")

    assert not d.save_button.isEnabled()  # no consent yet
    d.agree.setChecked(True)
    assert d.save_button.isEnabled()
    d.ticket.setText("a b;rm")
    assert not d.save_button.isEnabled() and not d.ticket_error.isHidden()
    d.ticket.setText("INC-0042")
    d.level.setCurrentIndex(d.level.findData("strict"))
    first_id = d.prepared.preview.bundle_id
    assert not any(n.startswith("logs/") for n in d.prepared.preview.files)
    assert d.prepared.preview.bundle_id == first_id  # same ID while the user decides

    with qtbot.waitSignal(d.saved, timeout=60_000) as saved:
        qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    result: export.Saved = saved.args[0]
    assert threads and threads[0] != threading.main_thread().name  # not on the UI thread
    assert result.path.parent == out and result.mapping_path is not None
    assert result.bundle_id in d.status.text() and not d.save_button.isEnabled()
    bundle = open_bundle(result.path.read_bytes())
    assert bundle.manifest["ticket"] == "INC-0042"
    assert bundle.manifest["redaction_level"] == "strict"
    assert bundle.verification.hashes_ok
    assert MappingStore(home.home / "maps").reveal(result.bundle_id).entries  # kept, readable


def test_the_tray_menu_opens_the_dialog(qtbot, home: secret_service.SecretService,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    from ui.tray import TrayController, TrayOptions

    c = TrayController(TrayOptions(lambda: None, lang_override="ja",  # type: ignore[arg-type,return-value]
                       prefs_path=tmp_path / "ui.json", tray_retries=0,
                       autostart=Autostart("linux", tmp_path, {})))
    qtbot.addWidget(c.window)
    action = c.actions["export"]
    assert action.isEnabled()
    action.trigger()
    dialog = c._dialogs["export"]  # type: ignore[attr-defined]
    assert isinstance(dialog, ExportDialog) and dialog.isVisible()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=90_000)
    assert dialog.prepared is not None, dialog.status.text()
    dialog.reject()
    c.tray.hide()


def test_a_failing_collection_is_shown_not_hidden(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def boom() -> export.Collected:
        raise RuntimeError("posture engine exploded")

    d = ExportDialog("en", collect=boom, save=functools.partial(export.save), folder=tmp_path)
    qtbot.addWidget(d)
    qtbot.waitUntil(lambda: "exploded" in d.status.text(), timeout=10_000)
    d.agree.setChecked(True)
    assert not d.save_button.isEnabled() and list(tmp_path.iterdir()) == []
