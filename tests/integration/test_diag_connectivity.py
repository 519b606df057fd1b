"""connectivity.json against a real nginx ``stream`` gateway with mutual TLS, and a closed port."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.diagnostics import bundle, connectivity
from agent.diagnostics.redact import Redactor
from agent.keystore import CertInfo, Identity
from agent.policy.model import Target
from testkit.gateway import Gateway, echo_server, nginx_gateway
from testkit.pki import Pair, issue, make_ca, server_pair
from tests.unit.test_bundle_reader import _report

pytestmark = pytest.mark.real
CA = make_ca("Example City Gateway CA")
FOREIGN = make_ca("Somewhere Else CA")
OFFICE = "pc-0123.office.city.example"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gw")
    server = server_pair(CA, "localhost")
    with echo_server() as echo_port, nginx_gateway(
            root, server_chain_pem=server.cert_pem + CA.cert_pem,
            server_key_pem=server.key_pem(), client_ca_pem=CA.cert_pem,
            routes={OFFICE: echo_port}, default_port=1) as gw:
        yield gw


def _identity(tmp: Path, user: Pair) -> Identity:
    """As the keystore hands it out: an encrypted PKCS#8 key on disk and its passphrase."""
    password = secrets.token_urlsafe(16).encode()
    (tmp / "user.pem").write_bytes(user.cert_pem)
    (tmp / "user.key").write_bytes(user.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password)))
    return Identity(tmp / "user.pem", tmp / "user.key", password, CertInfo.of(user.cert))


def _target(port: int, ca: Pair = CA, host: str = "localhost") -> Target:
    return Target("office", "庁内PC", "Office PC", "rdp", "tunnel", OFFICE, 3389, host, port,
                  ca.cert_pem.decode())


def _run(target: Target, identity: Identity | None, timeout: float = 3.0) -> dict:  # type: ignore[type-arg]
    out = connectivity.check_targets((target,), connectivity.tunnel_context_factory(identity),
                                     with_cert=identity is not None, timeout=timeout)
    [result] = out["targets"]
    return result  # type: ignore[no-any-return]


def test_with_the_enrolled_certificate_the_gateway_accepts(gateway: Gateway,
                                                          tmp_path: Path) -> None:
    r = _run(_target(gateway.port), _identity(tmp_path, issue(CA, "Yamada Taro")))
    assert r["dns"]["status"] == "ok" and "127.0.0.1" in r["dns"]["addresses"]
    assert r["tcp"]["status"] == "ok" and isinstance(r["tcp"]["ms"], int)
    assert r["tls"]["status"] == "ok", r
    assert r["tls"]["client_certificate"] is True and r["tls"]["protocol"].startswith("TLSv1")


def test_without_a_certificate_the_gateway_says_certificate_required(gateway: Gateway) -> None:
    r = _run(_target(gateway.port), None)
    assert r["tcp"]["status"] == "ok"
    assert r["tls"]["status"] == "refused", r
    assert r["tls"]["client_certificate"] is False
    assert r["tls"]["detail"].startswith("certificate required")


def test_a_certificate_from_another_ca_is_refused(gateway: Gateway, tmp_path: Path) -> None:
    r = _run(_target(gateway.port), _identity(tmp_path, issue(FOREIGN, "Intruder")))
    assert r["tls"]["status"] == "refused", r


def test_a_gateway_the_policy_ca_does_not_vouch_for_fails(gateway: Gateway) -> None:
    r = _run(_target(gateway.port, ca=FOREIGN), None)
    assert r["tls"]["status"] == "failed" and "not trusted" in r["tls"]["detail"]


def test_an_unreachable_port_and_an_unknown_name(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    start = time.monotonic()
    r = _run(_target(closed, host="127.0.0.1"), None)
    assert r["dns"]["status"] == "ok"
    assert r["tcp"]["status"] == "failed" and r["tls"]["status"] == "skipped"
    r = _run(_target(443, host="no-such-gateway.invalid"), None)
    assert r["dns"]["status"] in ("failed", "timeout") and r["tcp"]["status"] == "skipped"
    assert time.monotonic() - start < 10


def test_a_silent_address_times_out_within_the_limit() -> None:
    # 192.0.2.0/24 (TEST-NET-1) is never routed: the connect hangs until our timeout.
    start = time.monotonic()
    r = _run(_target(443, host="192.0.2.1"), None, timeout=1.0)
    assert r["tcp"]["status"] in ("timeout", "failed")
    assert time.monotonic() - start < 5


def test_addresses_are_pseudonymized_in_the_bundle() -> None:
    result = {"targets": [{"target": "office", "endpoint": "gw.city.example:443",
                           "dns": {"status": "ok", "addresses": ["203.0.113.7", "2001:db8::7"]},
                           "tcp": {"status": "ok", "address": "203.0.113.7"}}]}
    pre = bundle.prepare(_report(), Redactor(), extra={"connectivity": result},
                         facts=lambda: {})
    text = pre.files["connectivity.json"].decode()
    assert "203.0.113.7" not in text and "2001:db8::7" not in text
    assert text.count("ip-1") == 2 and "ip-2" in text and "gw.city.example" in text
