"""The certificate dialog on the real keystore code with a real Secret Service (gnome-keyring on a
private D-Bus), and EST enrollment against the RFC 7030 test peer over real TLS."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QLineEdit, QMessageBox

from agent.keystore import Keystore
from testkit.pki import CA, DAY, issue, make_ca, p12, server_pair
from tests.conftest import require
from tests.integration import secret_service
from tests.integration.est_server import EstState, serving
from ui.cert_dialog import CertDialog

pytestmark = pytest.mark.gui
PASSWORD = "市役所-p12-パスワード"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Keystore]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    from keyring.backends.SecretService import Keyring

    with secret_service.running(tmp_path / "home") as ss:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ss.bus_address)
        yield Keystore(ss.home / ".local/share/byod-agent/keystore", Keyring())
        assert secret_service.plaintext_private_keys(ss.home) == []


def _dialog(qtbot, store: Keystore, lang: str = "ja") -> CertDialog:  # type: ignore[no-untyped-def]
    d = CertDialog(lang, lambda: store)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: not d.busy, timeout=10_000)
    return d


def _texts(d: CertDialog) -> str:
    return "\n".join(lbl.text() for lbl in d.findChildren(QLabel))


def test_import_details_and_remove(qtbot, store: Keystore, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = issue(CA, "Yamada Taro", not_after=dt.datetime.now(dt.UTC) + 20 * DAY)
    p12_file = tmp_path / "yamada.p12"
    p12_file.write_bytes(p12(user, PASSWORD.encode(), extra=(CA.cert,)))
    d = _dialog(qtbot, store)
    assert "証明書はまだありません" in d.state_label.text()
    assert d.password.echoMode() is QLineEdit.EchoMode.Password

    d.p12_path.setText(str(p12_file))
    qtbot.keyClicks(d.password, "wrong")
    d.import_button.click()
    assert d.password.text() == ""  # cleared at once
    qtbot.waitUntil(lambda: not d.busy and d.outcome_label.isVisible(), timeout=10_000)
    assert "エラー" in d.outcome_label.text() and "パスワード" in d.outcome_label.text()

    changed: list[bool] = []
    d.changed.connect(lambda: changed.append(True))
    d.password.setText(PASSWORD)
    d.import_button.click()
    qtbot.waitUntil(lambda: bool(changed) and not d.busy and "Yamada Taro" in _texts(d),
                    timeout=10_000)
    text = _texts(d)
    assert "証明書を取り込みました" in d.outcome_label.text()
    assert "Example City Test CA" in text  # issuer
    assert "19 日" in text or "20 日" in text  # days left
    assert "有効期限" in text and "あと" in text  # the 30-day warning line
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text

    box = d.ask_remove()
    assert isinstance(box, QMessageBox)
    assert box.defaultButton().text() == "削除しない"  # Enter keeps the certificate
    box.defaultButton().click()
    qtbot.wait(200)
    assert store.status().state.value == "ok"
    box = d.ask_remove()
    yes = next(b for b in box.buttons() if b.text() == "削除する")
    yes.click()
    qtbot.waitUntil(lambda: not d.busy and store.status().state.value == "not_enrolled",
                    timeout=10_000)
    qtbot.waitUntil(lambda: "Yamada Taro" not in _texts(d), timeout=10_000)
    assert "削除しました" in d.outcome_label.text()


def test_enroll_with_a_code_over_est(qtbot, store: Keystore, tmp_path: Path) -> None:
    ca = make_ca("Example City Enrollment CA")
    server = server_pair(ca, "localhost")
    (tmp_path / "est").mkdir()
    anchor = tmp_path / "est-ca.pem"
    anchor.write_bytes(ca.cert_pem)
    state = EstState(ca, codes={"8F3K-22QX"})
    with serving(state, server, tmp_path / "est") as url:
        d = _dialog(qtbot, store, lang="en")
        d.enroll_button.click()  # nothing filled in: says what is needed, calls nobody
        assert "enrollment code" in d.outcome_label.text()
        d.code.setText("WRONG-CODE")
        d.est_url.setText(url)
        d.ca_path.setText(str(anchor))
        d.enroll_button.click()
        qtbot.waitUntil(lambda: not d.busy and d.outcome_label.isVisible(), timeout=20_000)
        assert d.outcome_label.text().startswith("Error:")
        assert d.code.text() == ""

        d.code.setText("8F3K-22QX")
        d.enroll_button.click()
        qtbot.waitUntil(lambda: not d.busy and "Enrollment CA" in _texts(d), timeout=20_000)
        assert store.status().state.value == "ok"
        # the next dialog knows the server: a re-enroll needs only a code
        again = _dialog(qtbot, store, lang="en")
        assert again.est_url.text() == url.rstrip("/") + "/.well-known/est"
        assert again.ca_path.placeholderText().startswith("Already stored")
