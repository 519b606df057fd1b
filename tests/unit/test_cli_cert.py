"""``byod-agent cert``: the city CA check at import, plain words for the keyring, and a remove that
does not claim to delete what was never there."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent import cli
from agent.commands import cert
from agent.core import exitcodes, i18n
from agent.keystore import CertStatus, KeyState, KeystoreError, city_ca
from testkit.pki import CA, issue, make_ca, p12

PASSWORD = "市役所-test"
OTHER = make_ca("Some Other Authority")


def _pem(*certs: object) -> bytes:
    return b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in certs)  # type: ignore[attr-defined]


def test_a_certificate_from_the_city_ca_is_accepted_also_through_an_intermediate() -> None:
    inter = issue(CA, "City Issuing CA 2", is_ca=True, usages=None)
    user = issue(inter, "Yamada Taro")
    city_ca.check_issuer([issue(CA, "Sato").cert], [CA.cert])
    city_ca.check_issuer([user.cert, inter.cert], [CA.cert])
    assert not city_ca.issued_by_city([user.cert], [CA.cert])  # the intermediate is missing


def test_a_certificate_from_another_ca_is_refused_in_plain_words() -> None:
    with pytest.raises(KeystoreError) as info:
        city_ca.check_issuer([issue(OTHER, "Yamada Taro").cert], [CA.cert])
    assert info.value.state is KeyState.INVALID_INPUT
    ja = i18n.render(info.value.message, "ja")
    assert "市の認証局が発行したものではない" in ja and "Some Other Authority" in ja
    assert "Example City Test CA" in ja  # what was expected


def test_a_same_named_impostor_ca_does_not_pass() -> None:
    impostor = make_ca("Example City Test CA")  # the same subject, another key
    assert impostor.cert.subject == CA.cert.subject
    with pytest.raises(KeystoreError):
        city_ca.check_issuer([issue(impostor, "Yamada Taro").cert], [CA.cert])


def test_the_shipped_ca_file(tmp_path: Path) -> None:
    assert city_ca.city_cas(tmp_path / "absent.pem") == []  # demo/dev build: no check
    good = tmp_path / "city-ca.pem"
    good.write_bytes(_pem(CA, OTHER))
    assert len(city_ca.city_cas(good)) == 2
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with pytest.raises(KeystoreError) as info:  # there but unusable: never skip the check
        city_ca.city_cas(broken)
    assert "cannot be read" in i18n.render(info.value.message, "en")


def test_cert_import_refuses_a_file_from_another_ca_before_touching_the_keystore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "res" / "trust").mkdir(parents=True)
    (tmp_path / "res" / "trust" / "city-ca.pem").write_bytes(_pem(CA))
    monkeypatch.setattr(city_ca, "resources_dir", lambda: tmp_path / "res")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    wrong = tmp_path / "wrong.p12"
    wrong.write_bytes(p12(issue(OTHER, "Yamada Taro"), PASSWORD.encode()))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = cli.main(["cert", "import", str(wrong), "--password-stdin", "--lang", "en"])
    assert code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "was not issued by the city's certificate authority" in err
    assert "Some Other Authority" in err
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.pem"))


@pytest.mark.parametrize(("backend", "ja"), [
    ("keyring.backends.SecretService.Keyring", "GNOME キーリング"),
    ("keyring.backends.Windows.WinVaultKeyring", "Windows 資格情報マネージャー"),
    ("keyring.backends.macOS.Keyring", "キーチェーン"),
    ("keyring.backends.fail.Keyring", "安全なパスワードの保管場所を使えません"),
    ("keyrings.alt.file.PlaintextKeyring", "安全でないパスワードの保管場所"),
])
def test_cert_show_names_the_password_store_in_plain_words(backend: str, ja: str) -> None:
    text = cert.render_status(CertStatus(KeyState.NOT_ENROLLED, backend), "ja",
                              dt.datetime.now(dt.UTC))
    assert ja in text
    assert "keyring." not in text and "keyrings." not in text


class _EmptyStore:
    """A keystore directory with nothing in it, whose keyring cannot be reached."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def remove(self) -> bool:
        return False  # the keyring is unreachable: no passphrase could be deleted either


def test_cert_remove_with_nothing_stored_says_so(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser("cert", "en").parse_args(["cert", "remove", "--lang", "en"])
    code = cert.run(args, lambda: _EmptyStore(tmp_path))  # type: ignore[arg-type,return-value]
    out = capsys.readouterr().out
    assert code == exitcodes.OK
    assert "nothing was removed" in out and "were removed" not in out
