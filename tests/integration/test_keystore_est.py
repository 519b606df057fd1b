"""EST enrollment and renewal against the RFC 7030 test peer over real TLS, with a real keyring."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from agent.keystore import KeyState, Keystore, KeystoreError, est, store
from testkit.pki import make_ca, server_pair
from tests.conftest import REPO, require
from tests.integration import secret_service
from tests.integration.est_server import EstState, serving

pytestmark = pytest.mark.real
CA = make_ca("Example City Enrollment CA")
OTHER_CA = make_ca("Not The City CA")
SERVER = server_pair(CA, "localhost")
ANCHOR = CA.cert_pem.decode()
SUBJECT = "CN=Yamada Taro,O=Example City"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[secret_service.SecretService, Keystore]]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    from keyring.backends.SecretService import Keyring

    with secret_service.running(tmp_path / "home") as ss:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ss.bus_address)
        yield ss, Keystore(ss.home / ".local/share/byod-agent/keystore", Keyring())
        assert secret_service.plaintext_private_keys(ss.home) == []


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    d = tmp_path / "est"
    d.mkdir()
    return d


def test_enroll_with_a_one_time_code_then_renew(env: tuple[secret_service.SecretService, Keystore],
                                                server_dir: Path) -> None:
    _, ks = env
    state = EstState(CA, codes={"8F3K-22QX"})
    with serving(state, SERVER, server_dir) as url:
        info = est.enroll(ks, url, ANCHOR, subject=SUBJECT, code="8F3K-22QX")
        assert info.subject == SUBJECT
        assert ks.status().state is KeyState.OK
        first = ks.load_identity()
        first_key = first.key_path.read_bytes()

        with pytest.raises(KeystoreError) as err:  # the code was burnt
            est.enroll(ks, url, ANCHOR, subject=SUBJECT, code="8F3K-22QX")
        assert err.value.message.key == "cert.error.est_refused"
        assert ks.load_identity().info == first.info  # nothing changed

        assert est.renew_if_due(ks, dt.datetime.now(dt.UTC)) is None  # too early
        renewed = est.renew_if_due(ks, first.info.not_before + dt.timedelta(days=61))
        assert renewed is not None and renewed.serial != first.info.serial
        assert ks.directory.joinpath(store.KEY_FILE).read_bytes() != first_key  # fresh key
    assert [(p.rsplit("/", 1)[1], s) for p, s, _ in state.log] == [
        ("cacerts", 200), ("simpleenroll", 200), ("cacerts", 200), ("simpleenroll", 401),
        ("cacerts", 200), ("simplereenroll", 200)]
    assert state.log[-1][2] == SUBJECT  # renewal authenticated by the old certificate


def test_refused_code_writes_nothing(env: tuple[secret_service.SecretService, Keystore],
                                     server_dir: Path) -> None:
    ss, ks = env
    before = {p for p in ss.home.rglob("*") if p.is_file()}
    with serving(EstState(CA, codes={"right"}), SERVER, server_dir) as url, \
            pytest.raises(KeystoreError) as err:
        est.enroll(ks, url, ANCHOR, subject=SUBJECT, code="wrong")
    assert (err.value.state, err.value.message.key) == (KeyState.ENROLL_FAILED,
                                                        "cert.error.est_refused")
    assert {p for p in ss.home.rglob("*") if p.is_file()} == before
    assert not ks.directory.exists()


def test_malformed_pkcs7_reply_writes_nothing(env: tuple[secret_service.SecretService, Keystore],
                                              server_dir: Path) -> None:
    _, ks = env
    with serving(EstState(CA, accounts={"staff": "pw"}, malformed=True), SERVER,
                 server_dir) as url, pytest.raises(KeystoreError) as err:
        est.enroll(ks, url, ANCHOR, subject=SUBJECT, code="pw", user="staff")
    assert err.value.message.key == "cert.error.est_bad_reply"
    assert not ks.directory.exists()


def test_untrusted_server_is_refused(env: tuple[secret_service.SecretService, Keystore],
                                     server_dir: Path) -> None:
    _, ks = env
    state = EstState(CA, codes={"c"})
    with serving(state, SERVER, server_dir) as url:
        with pytest.raises(KeystoreError) as err:
            est.enroll(ks, url, OTHER_CA.cert_pem.decode(), subject=SUBJECT, code="c")
        with pytest.raises(KeystoreError) as plain:
            est.enroll(ks, url.replace("https", "http"), ANCHOR, subject=SUBJECT, code="c")
    assert err.value.message.key == "cert.error.est_tls"
    assert plain.value.message.key == "cert.error.est_url"
    assert state.codes == {"c"}  # the code never reached an unverified server
    assert not ks.directory.exists()


def test_reenroll_without_client_certificate_is_refused(server_dir: Path) -> None:
    from agent.keystore import tls as tlsclient

    with serving(EstState(CA), SERVER, server_dir) as url, \
            tlsclient.session(tlsclient.client_context(ANCHOR)) as s:
        reply = s.post(url + "/.well-known/est/simplereenroll", data=b"", timeout=10)
    assert reply.status_code == 401


def test_cli_enroll_show_and_renew(tmp_path: Path, server_dir: Path) -> None:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    anchor = tmp_path / "est-ca.pem"
    anchor.write_bytes(CA.cert_pem)
    state = EstState(CA, codes={"ONE-TIME"})
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}

    def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent", "cert", "--lang", "en", *args],
                              input=stdin, env={**base, **env}, cwd=REPO, capture_output=True,
                              text=True, timeout=60, check=False)

    with secret_service.running(tmp_path / "home") as ss, \
            serving(state, SERVER, server_dir) as url:
        env = ss.env()
        bad = cli(env, "enroll", "--est-url", url, "--code", "-", "--ca", str(anchor),
                  "--subject", SUBJECT, stdin="WRONG\n")
        assert bad.returncode == 2 and "refused" in bad.stderr
        ok = cli(env, "enroll", "--est-url", url, "--code", "-", "--ca", str(anchor),
                 "--subject", SUBJECT, stdin="ONE-TIME\n")
        assert ok.returncode == 0, ok.stderr
        before = json.loads(cli(env, "show", "--json").stdout)
        assert before["state"] == "ok" and before["subject"] == SUBJECT
        renewed = cli(env, "renew")
        assert renewed.returncode == 0, renewed.stderr
        after = json.loads(cli(env, "show", "--json").stdout)
        assert after["serial"] != before["serial"]
        assert x509.load_pem_x509_certificates(
            (ss.home / ".local/share/byod-agent/keystore/device-cert.pem").read_bytes()
        )[0].serial_number == int(after["serial"], 16)
        assert secret_service.plaintext_private_keys(ss.home) == []
