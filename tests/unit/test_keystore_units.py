"""Pure parts of the keystore: backend acceptance, staged writes, EST parsing, CLI rendering."""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from agent.commands import cert as cert_cmd
from agent.core import i18n
from agent.keystore import CertStatus, KeyState, Keystore, KeystoreError, backends, est, files
from agent.keystore.certs import CertInfo, ExpiryWarning
from testkit.pki import CA, DAY, NOW, issue


def _named(module: str, name: str) -> object:
    return type(name, (), {"__module__": module})()


@pytest.mark.parametrize(("module", "name", "accepted"), [
    ("keyring.backends.SecretService", "Keyring", True),
    ("keyring.backends.Windows", "WinVaultKeyring", True),
    ("keyring.backends.macOS", "Keyring", True),
    ("keyrings.alt.file", "PlaintextKeyring", False),
    ("keyrings.alt.file", "EncryptedKeyring", False),
    ("keyring.backends.null", "Keyring", False),
    ("keyring.backends.fail", "Keyring", False),
])
def test_backend_acceptance(module: str, name: str, accepted: bool) -> None:
    backend = _named(module, name)
    if accepted:
        assert backends.choose(backend) is backend
    else:
        with pytest.raises(KeystoreError) as err:
            backends.choose(backend)
        assert err.value.state is KeyState.BACKEND_REFUSED


def test_chainer_is_unwrapped_to_its_real_keystore() -> None:
    real = _named("keyring.backends.SecretService", "Keyring")
    # keyring computes ChainerBackend.backends from the installed backends: stand in for it.
    chain = type("ChainerBackend", (), {"__module__": "keyring.backends.chainer", "backends": [
        _named("keyrings.alt.file", "PlaintextKeyring"), real]})()
    assert backends.choose(chain) is real
    only_plain = type("ChainerBackend", (), {"__module__": "keyring.backends.chainer",
                                             "backends": [_named("keyrings.alt.file",
                                                                 "PlaintextKeyring")]})()
    with pytest.raises(KeystoreError):
        backends.choose(only_plain)


def test_keyring_errors_become_states() -> None:
    from keyring import errors

    def locked() -> None:
        raise errors.KeyringLocked("locked")

    def gone() -> None:
        raise errors.InitError("Failed to create the collection: Prompt dismissed..")

    for fn, state in ((locked, KeyState.KEYRING_LOCKED), (gone, KeyState.KEYRING_UNAVAILABLE)):
        with pytest.raises(KeystoreError) as err:
            backends.call(fn)
        assert err.value.state is state


def test_staged_files_are_private_and_vanish_on_failure(tmp_path: Path) -> None:
    d = files.private_dir(tmp_path / "ks")
    with pytest.raises(RuntimeError), files.staged(d, {"a": b"1", "b": b"2"}):
        raise RuntimeError("keyring said no")
    assert list(d.iterdir()) == []
    with files.staged(d, {"a": b"1"}) as temps:
        files.commit(d, temps)
    assert (d / "a").read_bytes() == b"1"
    assert [p.name for p in d.iterdir()] == ["a"]
    if sys.platform != "win32":
        assert stat.S_IMODE((d / "a").stat().st_mode) == 0o600
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


@pytest.mark.skipif(sys.platform != "win32", reason="Windows ACLs")
def test_windows_acl_grants_only_the_owner(tmp_path: Path) -> None:
    d = files.private_dir(tmp_path / "ks")
    with files.staged(d, {"k": b"x"}) as temps:
        files.commit(d, temps)
    script = ("(Get-Acl -LiteralPath $args[0]).Access | ForEach-Object { "
              "$_.IdentityReference.Translate([Security.Principal.SecurityIdentifier]).Value }")
    sids = subprocess.run(["powershell", "-NoProfile", "-Command", script, str(d / "k")],
                          capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert sids == [files._current_sid()]


def test_est_reply_parsing() -> None:
    leaf = issue(CA, "Yamada Taro")
    body = base64.encodebytes(pkcs7.serialize_certificates([leaf.cert],
                                                           serialization.Encoding.DER))
    assert est.parse_certs_only(body)[0] == leaf.cert
    for bad in (b"", b"!!!", base64.b64encode(b"\x30\x03\x02\x01\x00"), leaf.cert_pem):
        with pytest.raises(KeystoreError) as err:
            est.parse_certs_only(bad)
        assert err.value.message.key == "cert.error.est_bad_reply"


def test_est_base_url() -> None:
    assert est.base_url("https://ca.example.jp/") == "https://ca.example.jp/.well-known/est"
    assert (est.base_url("https://ca.example.jp:8443/.well-known/est/city")
            == "https://ca.example.jp:8443/.well-known/est/city")
    with pytest.raises(KeystoreError):
        est.base_url("http://ca.example.jp")


def test_show_renders_every_state_in_both_languages() -> None:
    info = CertInfo.of(issue(CA, "Yamada Taro").cert)
    for state in KeyState:
        status = CertStatus(state, "keyring.backends.SecretService.Keyring", info, None,
                        ExpiryWarning(7, 5))
        for lang in i18n.LANGS:
            text = cert_cmd.render_status(status, lang, NOW)
            assert f"cert.state.{state.value}" not in text
            assert "{" not in text
    data = CertStatus(KeyState.OK, "x", info).to_json(NOW + 10 * DAY)
    assert json.loads(json.dumps(data))["days_left"] in (354, 355)


def test_cli_reports_errors_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from keyring.backends import fail

    p12_file = tmp_path / "x.p12"
    p12_file.write_bytes(b"junk")
    args = argparse.Namespace(cert_command="import", file=str(p12_file), password_stdin=True,
                              lang="ja")

    def factory() -> Keystore:
        return Keystore(tmp_path / "ks", fail.Keyring())

    sys_stdin = sys.stdin
    try:
        import io

        sys.stdin = io.StringIO("pw\n")
        assert cert_cmd.run(args, factory) == 2
    finally:
        sys.stdin = sys_stdin
    assert "エラー" in capsys.readouterr().err
    missing = argparse.Namespace(cert_command="install", file=str(tmp_path / "nope"), lang="en")
    assert cert_cmd.run(missing, factory) == 2
    assert "could not be read" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "ks")
