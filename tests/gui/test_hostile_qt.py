"""Issue 18 class 8: rich text from outside in Qt labels. A certificate whose subject is HTML
(``<b>``, ``<img>``, a link) is shown as the text it is, on the real keystore and dialog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from agent.keystore import Keystore
from testkit.pki import CA, issue, p12
from tests.conftest import require
from tests.integration import secret_service
from ui.cert_dialog import CertDialog

pytestmark = pytest.mark.gui
HOSTILE_CN = "<b>Yamada</b><img src='file:///etc/passwd'><a href='x'>y</a>"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Keystore]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    from keyring.backends.SecretService import Keyring

    with secret_service.running(tmp_path / "home") as ss:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ss.bus_address)
        yield Keystore(ss.home / ".local/share/byod-agent/keystore",
                       Keyring())  # type: ignore[no-untyped-call]


def test_html_in_a_certificate_subject_stays_text(qtbot, store: Keystore,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    p12_file = tmp_path / "hostile.p12"
    p12_file.write_bytes(p12(issue(CA, HOSTILE_CN), b"pw", extra=(CA.cert,)))
    d = CertDialog("en", lambda: store)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: not d.busy, timeout=10_000)
    d.p12_path.setText(str(p12_file))
    d.password.setText("pw")
    d.import_button.click()
    qtbot.waitUntil(lambda: not d.busy and any("Yamada" in lbl.text()
                                                for lbl in d.findChildren(QLabel)),
                    timeout=10_000)
    # RFC 4514 writes the subject with its "<" and ">" (escaped with a backslash): as text.
    labels = [lbl for lbl in d.findChildren(QLabel) if "Yamada" in lbl.text()]
    assert labels and any("<" in lbl.text() for lbl in labels)
    for lbl in labels:
        assert lbl.textFormat() is Qt.TextFormat.PlainText, lbl.text()
