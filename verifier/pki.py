"""Certificates for the verifier: check a user certificate against the city CA and its CRLs,
issue short-lived posture credentials, and build the demo PKI (``byod-verifier demo``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PC_URN_PREFIX = "urn:byod:pc:"
DAY = dt.timedelta(days=1)


class CertRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_crls(paths: Sequence[Path]) -> list[x509.CertificateRevocationList]:
    out = []
    for p in paths:
        data = p.read_bytes()
        out.append(x509.load_pem_x509_crl(data) if b"-----BEGIN" in data
                   else x509.load_der_x509_crl(data))
    return out


def check_user_certificate(cert: x509.Certificate, cas: Sequence[x509.Certificate],
                           crls: Sequence[x509.CertificateRevocationList],
                           now: dt.datetime) -> None:
    """The TLS layer already checked the chain; this repeats it with our clock and adds the CRL,
    so a refusal has a reason code. Raises CertRefused."""
    issuer = next((ca for ca in cas if ca.subject == cert.issuer), None)
    if issuer is None:
        raise CertRefused("cert_unknown_ca", "issuer is not the city CA")
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise CertRefused("cert_unknown_ca", "not signed by the city CA") from None
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise CertRefused("cert_expired", f"valid {cert.not_valid_before_utc.isoformat()} .. "
                                          f"{cert.not_valid_after_utc.isoformat()}")
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP256R1):
        raise CertRefused("cert_key_type", "device key must be EC P-256")
    mine = [c for c in crls if c.issuer == issuer.subject]
    if crls and not mine:
        raise CertRefused("crl_missing", "no CRL for the city CA")
    for crl in mine:
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise CertRefused("crl_invalid", "CRL signature does not verify")
        nxt = crl.next_update_utc
        if nxt is not None and now > nxt:
            raise CertRefused("crl_stale", f"CRL expired {nxt.isoformat()}")
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise CertRefused("cert_revoked", f"serial {cert.serial_number:x} is revoked")


@dataclass(frozen=True)
class PostureCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, cert_path: Path, key_path: Path, passphrase: bytes | None) -> PostureCA:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=passphrase)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("posture CA key must be EC")
        return cls(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)

    def issue(self, public_key: ec.EllipticCurvePublicKey, user: str, pc: str,
              now: dt.datetime, lifetime: dt.timedelta) -> x509.Certificate:
        """CN = user, OU = the assigned office PC, SAN URI urn:byod:pc:<pc>; clientAuth only."""
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, pc),
                             x509.NameAttribute(NameOID.COMMON_NAME, user)])
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(seconds=30))
                .not_valid_after(now + lifetime)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(PC_URN_PREFIX + pc)]), critical=False)
                .sign(self.key, hashes.SHA256()))


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# -- the demo / test PKI -------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example City (DEMO)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue_leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, *,
               now: dt.datetime, server: bool = False,
               key: ec.EllipticCurvePrivateKey | None = None,
               not_after: dt.datetime | None = None,
               ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - DAY).not_valid_after(not_after or now + 365 * DAY)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def make_crl(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
             revoked: Sequence[int], now: dt.datetime) -> x509.CertificateRevocationList:
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now - dt.timedelta(minutes=5)).next_update(now + 30 * DAY))
    for serial in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now - dt.timedelta(minutes=5)).build())
    return b.sign(ca_key, hashes.SHA256())


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def p12(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
        ca: x509.Certificate, password: bytes) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, [ca], serialization.BestAvailableEncryption(password))


def write_private(path: Path, data: bytes) -> None:
    """Owner-only from the first byte (O_EXCL is not used: the demo may re-run in a new dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
