"""Verifier helpers shared by tests/verifier and bench/verifier.py: reports and demo users."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from agent.keystore import Identity
from agent.keystore.certs import CertInfo
from agent.posture.model import CHECK_IDS
from verifier import pki
from verifier.demo import Layout


def report(statuses: dict[str, str] | None = None, *, generated_at: dt.datetime | None = None,
           compliant: bool = True, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `byod-agent check --json` report (docs/report-schema.md); every check passes unless
    ``statuses`` says otherwise."""
    when = (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    statuses = statuses or {}
    return {
        "schema": 1, "agent_version": "0.1.0",
        "generated_at": when.isoformat().replace("+00:00", "Z"),
        "host": {"os": "linux", "os_version": "Debian 12", "hostname": "home-pc", "arch": "x86_64"},
        "compliant": compliant,
        "checks": [{"id": c, "status": statuses.get(c, "pass"),
                    "summary": {"ja": "テスト", "en": "test"}, "summary_key": f"{c}.test",
                    "evidence": {"source": "test"}, "remediation": None, "duration_ms": 1}
                   for c in CHECK_IDS if c not in drop],
    }


@dataclass(frozen=True)
class User:
    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    identity: Identity

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def load_user(lay: Layout, name: str, work: Path) -> User:
    """A demo user's .p12 as the keystore would hold it: encrypted key, passphrase in memory."""
    info = lay.users[name]
    password = Path(info["password_file"]).read_text(encoding="utf-8").strip().encode()
    key, cert, _ = pkcs12.load_key_and_certificates(Path(info["p12"]).read_bytes(), password)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert is None:
        raise ValueError(f"{info['p12']}: not an EC key and certificate")
    passphrase = secrets.token_urlsafe(16).encode()
    cert_path, key_path = work / f"{name}.crt", work / f"{name}.enc.key"
    cert_path.write_bytes(pki.pem(cert))
    pki.write_private(key_path, pki.key_pem(key, passphrase))
    return User(name, cert, key, Identity(cert_path, key_path, passphrase, CertInfo.of(cert)))
