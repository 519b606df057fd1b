"""``diag view``: a hostile bundle's fields are shown as text, never interpreted as markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from agent.diagnostics import render
from agent.diagnostics.reader import open_bundle
from tests.conftest import REPO
from tests.unit.test_bundle_reader import _good, _with_manifest, _zip
from ui.diag_view import DiagView

pytestmark = pytest.mark.gui
SHORT = "<b>x</b><img src=x onerror=1>"  # fits the manifest's 20/40-character fields
EVIL = "<script>alert(1)</script><b>bold</b><img src=x onerror=alert(2)>"  # <= 80 (schema)


def _hostile_digest() -> dict:  # type: ignore[type-arg]
    # The structure is what the reader's schema accepts (agent/diagnostics/schema.py refuses
    # wrong types as hostile); the hostile part is the text in every free-text field.
    posture = {"host": {"os": EVIL}, "compliant": False, "checks": [
        {"id": EVIL, "status": "fail", "summary": {"ja": EVIL, "en": EVIL},
         "evidence": {EVIL: EVIL}, "remediation": {"en": {"title": EVIL}}},
        {"id": "x", "status": "fail", "evidence": [1, [2, [3]]]}]}
    conn = {"targets": [{"target": EVIL, "endpoint": EVIL, "dns": {"status": EVIL[:40]},
                         "tls": {"status": "fail", "detail": EVIL}}]}
    files = [("posture.json", json.dumps(posture).encode()),
             ("decision.json", json.dumps({"correlation_id": EVIL}).encode()),
             ("connectivity.json", json.dumps(conn).encode()),
             ("logs/agent.log", f"ERROR {EVIL}\n".encode())]
    man = json.loads(dict(_with_manifest(files))["manifest.json"])
    # The manifest's fields are short by schema (agent/diagnostics/schema.py): short markup.
    man.update(bundle_id=SHORT[:20], ticket=SHORT, agent_version=SHORT, created_at=SHORT)
    entries = [*files, ("manifest.json", json.dumps(man).encode())]
    return render.digest(open_bundle(_zip(entries)))


def test_hostile_fields_stay_plain_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = DiagView(_hostile_digest(), "ja")
    qtbot.addWidget(view)
    view.show()
    labels = view.findChildren(QLabel)
    assert labels and all(lbl.textFormat() == Qt.TextFormat.PlainText for lbl in labels)
    assert any(EVIL in lbl.text() for lbl in labels)  # shown literally, not rendered
    assert any(SHORT[:20] in lbl.text() for lbl in labels)
    cells = [view.table.item(r, c).text() for r in range(view.table.rowCount())
             for c in range(view.table.columnCount())]
    assert EVIL in cells and any(EVIL in c for c in cells if c != EVIL)
    assert EVIL in view.logs.toPlainText() and EVIL in view.connectivity.toPlainText()
    assert "TAMPERED" not in view.labels[1].text()  # hashes match: it says unsigned instead
    assert "unsigned" in view.labels[1].text()


def test_a_real_bundle_in_english(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    digest = render.digest(open_bundle(_good(tmp_path, {"agent.log": "ERROR boom\n"})))
    view = DiagView(digest, "en", title="b.zip")
    qtbot.addWidget(view)
    assert view.table.rowCount() == 2 and view.table.item(0, 1).text() == "disk_encryption"
    assert "boom" in view.logs.toPlainText() and "b.zip" in view.windowTitle()


def test_the_command_refuses_a_hostile_file_before_any_window(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip([("../../etc/evil", b"x")]))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BYOD_AGENT_LANG": "en"}
    proc = subprocess.run([sys.executable, "-m", "agent", "diag", "view", str(evil)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "unsafe member name" in proc.stderr
