"""The keystore against a real Secret Service (gnome-keyring on a private D-Bus session).

After every test the scratch HOME is scanned: no private key may be readable without a password,
and the passphrase must not appear in any file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.keystore import KeyState, Keystore, KeystoreError, store
from testkit.pki import CA, DAY, NOW, issue, p12
from tests.conftest import require
from tests.integration import secret_service

pytestmark = pytest.mark.real
PASSWORD = b"p12-pass"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _check_home_is_clean(home: Path, backend: object) -> None:
    assert secret_service.plaintext_private_keys(home) == []
    secret = backend.get_password(store.SERVICE, store.PASSPHRASE_NAME)  # type: ignore[attr-defined]
    if secret:
        assert not any(secret.encode() in p.read_bytes() for p in _files(home))


@pytest.fixture
def ks(ss: secret_service.SecretService, backend: object) -> Iterator[Keystore]:
    keystore = Keystore(ss.home / ".local" / "share" / "byod-agent" / "keystore", backend)
    yield keystore
    _check_home_is_clean(ss.home, backend)


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "3des"])
@pytest.mark.parametrize("kind", ["ec256", "ec384", "rsa2048"])
def test_import_then_load(ks: Keystore, legacy: bool, kind: str) -> None:
    key = {"ec256": lambda: ec.generate_private_key(ec.SECP256R1()),
           "ec384": lambda: ec.generate_private_key(ec.SECP384R1()),
           "rsa2048": lambda: rsa.generate_private_key(65537, 2048)}[kind]()
    user = issue(CA, "Yamada Taro", key=key)
    info = ks.import_pkcs12(p12(user, PASSWORD, legacy=legacy, extra=(CA.cert,)), PASSWORD)
    assert info.subject == user.cert.subject.rfc4514_string()
    ident = ks.load_identity()
    assert ident.passphrase and ident.passphrase not in ident.key_path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in ident.key_path.read_bytes()
    assert stat.S_IMODE(ident.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ks.directory.stat().st_mode) == 0o700
    loaded = serialization.load_pem_private_key(ident.key_path.read_bytes(), ident.passphrase)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == user.cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    status = ks.status()
    assert status.state is KeyState.OK
    assert status.backend == "keyring.backends.SecretService.Keyring"
    assert status.to_json(NOW)["days_left"] in (363, 364, 365)
    assert ident.passphrase.decode() not in repr(ident)


def _bad_p12s() -> list[tuple[str, bytes, bytes | None, str]]:
    user = issue(CA, "Yamada Taro")
    return [
        ("wrong password", p12(user, PASSWORD), b"nope", "cert.error.p12_unreadable"),
        ("not pkcs12", b"garbage" * 20, PASSWORD, "cert.error.p12_unreadable"),
        ("ca only", p12(None, PASSWORD, extra=(CA.cert,)), PASSWORD, "cert.error.p12_no_key"),
        ("expired", p12(issue(CA, "old", not_before=NOW - 400 * DAY, not_after=NOW - DAY),
                        PASSWORD), PASSWORD, "cert.error.expired"),
        ("server usage", p12(issue(CA, "srv", usages=(ExtendedKeyUsageOID.SERVER_AUTH,)),
                             PASSWORD), PASSWORD, "cert.error.no_client_auth"),
        ("rsa1024", p12(issue(CA, "weak", key=rsa.generate_private_key(65537, 1024)),  # noqa: S505
                        PASSWORD), PASSWORD, "cert.error.weak_key"),
        ("p521", p12(issue(CA, "p521", key=ec.generate_private_key(ec.SECP521R1())), PASSWORD),
         PASSWORD, "cert.error.weak_key"),
    ]


@pytest.mark.parametrize(("data", "password", "key"),
                         [c[1:] for c in _bad_p12s()], ids=[c[0] for c in _bad_p12s()])
def test_bad_pkcs12_writes_nothing(ks: Keystore, backend: object, data: bytes,
                                   password: bytes | None, key: str) -> None:
    home = ks.directory.parents[3]
    before = _files(home)
    with pytest.raises(KeystoreError) as err:
        ks.import_pkcs12(data, password)
    assert err.value.message.key == key
    assert _files(home) == before
    assert not ks.directory.exists()
    assert backend.get_password(store.SERVICE, store.PASSPHRASE_NAME) is None  # type: ignore[attr-defined]


def test_broken_states_are_reported_not_repaired(ks: Keystore, backend: object) -> None:
    user = issue(CA, "Yamada Taro")
    ks.import_pkcs12(p12(user, PASSWORD), PASSWORD)
    key_file = ks.directory / store.KEY_FILE
    cert_file = ks.directory / store.CERT_FILE
    good_key, good_cert = key_file.read_bytes(), cert_file.read_bytes()

    cert_file.write_bytes(issue(CA, "Someone Else").cert_pem)
    assert ks.status().state is KeyState.KEY_MISMATCH
    cert_file.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert ks.status().state is KeyState.CERT_CORRUPT
    cert_file.write_bytes(good_cert)

    key_file.write_bytes(good_key[:100])
    assert ks.status().state is KeyState.KEY_CORRUPT
    key_file.unlink()
    assert ks.status().state is KeyState.KEY_MISSING
    key_file.write_bytes(good_key)

    secret = backend.get_password(store.SERVICE, store.PASSPHRASE_NAME)  # type: ignore[attr-defined]
    backend.delete_password(store.SERVICE, store.PASSPHRASE_NAME)  # type: ignore[attr-defined]
    status = ks.status()
    assert status.state is KeyState.PASSPHRASE_MISSING
    assert status.info is not None  # still shows which certificate it is
    assert key_file.read_bytes() == good_key  # not silently re-created
    backend.set_password(store.SERVICE, store.PASSPHRASE_NAME, secret)  # type: ignore[attr-defined]
    assert ks.status().state is KeyState.OK

    later = Keystore(ks.directory, backend, clock=lambda: NOW + 400 * DAY)
    assert later.status().state is KeyState.EXPIRED


def test_reimport_keeps_the_passphrase_and_replaces_the_key(ks: Keystore, backend: object) -> None:
    ks.import_pkcs12(p12(issue(CA, "First"), PASSWORD), PASSWORD)
    secret = backend.get_password(store.SERVICE, store.PASSPHRASE_NAME)  # type: ignore[attr-defined]
    info = ks.import_pkcs12(p12(issue(CA, "Second"), PASSWORD), PASSWORD)
    assert backend.get_password(store.SERVICE, store.PASSPHRASE_NAME) == secret  # type: ignore[attr-defined]
    assert ks.load_identity().info == info
    assert sorted(p.name for p in ks.directory.iterdir()) == [store.CERT_FILE, store.KEY_FILE]


def test_request_then_install(ks: Keystore) -> None:
    csr = x509.load_pem_x509_csr(ks.create_request("CN=Yamada Taro,O=Example City"))
    assert csr.is_signature_valid
    assert ks.status().state is KeyState.PENDING
    pending = ks.directory / store.PENDING_KEY_FILE
    assert b"ENCRYPTED PRIVATE KEY" in pending.read_bytes()
    wrong = issue(CA, "Yamada Taro")
    with pytest.raises(KeystoreError) as err:
        ks.install(wrong.cert_pem)
    assert err.value.state is KeyState.KEY_MISMATCH
    # The CA signs the CSR's public key: build the certificate for exactly that key.
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(CA.cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 90 * DAY)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(CA.key, hashes.SHA256()))
    info = ks.install(pkcs7.serialize_certificates([CA.cert, cert], serialization.Encoding.DER))
    assert info.subject == "CN=Yamada Taro,O=Example City"
    assert not pending.exists()
    assert ks.status().state is KeyState.OK


def test_remove(ks: Keystore, backend: object) -> None:
    ks.import_pkcs12(p12(issue(CA, "Yamada Taro"), PASSWORD), PASSWORD)
    assert ks.remove() is True
    assert list(ks.directory.iterdir()) == []
    assert backend.get_password(store.SERVICE, store.PASSPHRASE_NAME) is None  # type: ignore[attr-defined]
    assert ks.status().state is KeyState.NOT_ENROLLED


def test_locked_keyring_is_a_clear_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login keyring that exists but is locked (daemon started without --unlock, no prompter)."""
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    from keyring.backends.SecretService import Keyring

    home = tmp_path / "home"
    directory = home / "keystore"
    with secret_service.running(home) as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.bus_address)
        Keystore(directory, Keyring()).import_pkcs12(p12(issue(CA, "Yamada Taro"), PASSWORD),
                                                     PASSWORD)
    with secret_service.running(home, unlock=False) as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.bus_address)
        locked = Keystore(directory, Keyring())
        status = locked.status()
        assert status.state is KeyState.KEYRING_LOCKED, status
        assert status.info is not None
        with pytest.raises(KeystoreError) as err:
            locked.import_pkcs12(p12(issue(CA, "Other"), PASSWORD), PASSWORD)
        assert err.value.state is KeyState.KEYRING_LOCKED
    assert secret_service.plaintext_private_keys(home) == []


def test_refused_backends_write_nothing(tmp_path: Path) -> None:
    from keyring.backends import fail, null

    class PlaintextKeyring:  # stands in for keyrings.alt.file.PlaintextKeyring (not installed)
        def get_password(self, service: str, username: str) -> None:
            return None

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    data = p12(issue(CA, "Yamada Taro"), PASSWORD)
    # A chainer holding only the null backend (its real list depends on what is installed).
    empty_chain = type("ChainerBackend", (), {"__module__": "keyring.backends.chainer",
                                              "backends": [null.Keyring()]})()
    for backend, key in ((fail.Keyring(), "cert.error.no_keystore"),
                         (null.Keyring(), "cert.error.no_keystore"),
                         (empty_chain, "cert.error.no_keystore"),
                         (PlaintextKeyring(), "cert.error.backend_refused")):
        ks = Keystore(tmp_path / "ks", backend)
        with pytest.raises(KeystoreError) as err:
            ks.import_pkcs12(data, PASSWORD)
        assert (err.value.state, err.value.message.key) == (KeyState.BACKEND_REFUSED, key)
        assert not (tmp_path / "ks").exists()
    assert os.listdir(tmp_path) == []


def test_a_failed_write_rolls_back_files_and_a_new_passphrase(ks: Keystore,
                                                              backend: object) -> None:
    # As root, permissions do not stop writes: a directory squatting on the certificate's
    # name makes the second rename fail after the key file was already renamed.
    (ks.directory / store.CERT_FILE / "squatter").mkdir(parents=True)
    with pytest.raises(KeystoreError) as err:
        ks.import_pkcs12(p12(issue(CA, "Yamada Taro"), PASSWORD), PASSWORD)
    assert err.value.state is KeyState.WRITE_FAILED
    assert not (ks.directory / store.KEY_FILE).exists()
    assert [p.name for p in ks.directory.iterdir()] == [store.CERT_FILE]
    assert backend.get_password(store.SERVICE, store.PASSPHRASE_NAME) is None  # type: ignore[attr-defined]

    # With an identity in place, the old key comes back when the certificate cannot be replaced.
    (ks.directory / store.CERT_FILE / "squatter").rmdir()
    (ks.directory / store.CERT_FILE).rmdir()
    ks.import_pkcs12(p12(issue(CA, "First"), PASSWORD), PASSWORD)
    old_key = (ks.directory / store.KEY_FILE).read_bytes()
    (ks.directory / store.CERT_FILE).unlink()
    (ks.directory / store.CERT_FILE / "squatter").mkdir(parents=True)
    with pytest.raises(KeystoreError):
        ks.import_pkcs12(p12(issue(CA, "Second"), PASSWORD), PASSWORD)
    assert (ks.directory / store.KEY_FILE).read_bytes() == old_key
    assert backend.get_password(store.SERVICE, store.PASSPHRASE_NAME)  # type: ignore[attr-defined]
