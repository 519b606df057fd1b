"""The mutual-TLS client against a real nginx with ``ssl_verify_client on``.

nginx answers a missing, foreign or expired client certificate with HTTP 400 (not a TLS alert);
the client itself refuses a server whose name does not match. The client identity comes from the
keystore under a real Secret Service, so the key is only ever decrypted in memory.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.keystore import KeyState, Keystore, KeystoreError
from agent.keystore import tls as tlsclient
from testkit.gateway import free_port, running_nginx
from testkit.pki import DAY, NOW, Pair, issue, make_ca, p12
from tests.conftest import require, require_tool
from tests.integration import secret_service

pytestmark = pytest.mark.real
CA = make_ca("Example City Gateway CA")
FOREIGN_CA = make_ca("Somewhere Else CA")


@dataclass(frozen=True)
class Nginx:
    port: int

    def url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}/"


def _nginx_conf(root: Path, port: int) -> str:
    return f"""daemon off;
master_process on;
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        ssl_client_certificate {root}/client-ca.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "hello $ssl_client_s_dn\\n"; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    require_tool("nginx")
    root = tmp_path_factory.mktemp("nginx")
    # Named localhost only (no IP SAN), so https://127.0.0.1 is a wrong host name.
    server = issue(CA, "localhost", dns=("localhost",), usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    (root / "server.pem").write_bytes(server.cert_pem + CA.cert_pem)
    (root / "server.key").write_bytes(server.key_pem())  # the test server's key, outside HOME
    (root / "server.key").chmod(0o600)
    (root / "client-ca.pem").write_bytes(CA.cert_pem)
    port = free_port()
    (root / "nginx.conf").write_text(_nginx_conf(root, port))
    with running_nginx(root, port):
        yield Nginx(port)


@pytest.fixture
def keystore_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[Keystore, Path]]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    from keyring.backends.SecretService import Keyring

    with secret_service.running(tmp_path / "home") as ss:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ss.bus_address)
        yield Keystore(ss.home / "keystore", Keyring()), ss.home
        assert secret_service.plaintext_private_keys(ss.home) == []


def _load(ks: Keystore, user: Pair) -> None:
    ks.import_pkcs12(p12(user, b"pw"), b"pw")


CA_PEM = CA.cert_pem.decode()


def test_mutual_tls_success_with_requests_and_a_raw_socket(
        nginx: Nginx, keystore_for: tuple[Keystore, Path]) -> None:
    ks, _ = keystore_for
    _load(ks, issue(CA, "Yamada Taro"))
    ctx = tlsclient.client_context(CA_PEM, ks.load_identity())
    with tlsclient.session(ctx) as s:
        resp = s.get(nginx.url(), timeout=10)
    assert resp.status_code == 200
    assert "CN=Yamada Taro" in resp.text
    # The session tunnel uses the same context on a plain socket.
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")


def test_no_client_certificate_gets_400(nginx: Nginx) -> None:
    with tlsclient.session(tlsclient.client_context(CA_PEM)) as s:
        assert s.get(nginx.url(), timeout=10).status_code == 400


def test_client_certificate_from_a_foreign_ca_gets_400(
        nginx: Nginx, keystore_for: tuple[Keystore, Path]) -> None:
    ks, _ = keystore_for
    _load(ks, issue(FOREIGN_CA, "Intruder"))
    with tlsclient.session(tlsclient.client_context(CA_PEM, ks.load_identity())) as s:
        assert s.get(nginx.url(), timeout=10).status_code == 400


def test_expired_client_certificate(nginx: Nginx, keystore_for: tuple[Keystore, Path]) -> None:
    ks, _ = keystore_for
    user = issue(CA, "Yamada Taro", not_before=NOW - 100 * DAY, not_after=NOW - DAY)
    back_then = Keystore(ks.directory, ks._raw_backend, clock=lambda: NOW - 50 * DAY)
    _load(back_then, user)
    with pytest.raises(KeystoreError) as err:  # today the agent itself will not use it ...
        ks.load_identity()
    assert err.value.state is KeyState.EXPIRED
    # ... and if it did (a wrong PC clock), the gateway refuses it.
    with tlsclient.session(tlsclient.client_context(CA_PEM, back_then.load_identity())) as s:
        assert s.get(nginx.url(), timeout=10).status_code == 400


def test_wrong_server_name_is_refused(nginx: Nginx, keystore_for: tuple[Keystore, Path]) -> None:
    ks, _ = keystore_for
    _load(ks, issue(CA, "Yamada Taro"))
    ctx = tlsclient.client_context(CA_PEM, ks.load_identity())
    with tlsclient.session(ctx) as s, pytest.raises(requests.exceptions.SSLError):
        s.get(nginx.url("127.0.0.1"), timeout=10)
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="portal.example.jp")


def test_server_from_another_ca_is_refused_even_with_a_system_bundle(
        nginx: Nginx, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """REQUESTS_CA_BUNDLE naming the gateway CA must not widen an explicit trust anchor."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(CA.cert_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with tlsclient.session(tlsclient.client_context(FOREIGN_CA.cert_pem.decode())) as s:
        with pytest.raises(requests.exceptions.SSLError):
            s.get(nginx.url(), timeout=10)
        with pytest.raises(ValueError, match="cannot be turned off"):
            s.get(nginx.url(), timeout=10, verify=False)
        with pytest.raises(requests.exceptions.InvalidURL):
            s.get(f"http://127.0.0.1:{nginx.port}/", timeout=10)
