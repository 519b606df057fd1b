"""Pure certificate logic: parse PEM/DER/PKCS#7, check a client certificate, expiry warnings.

Nothing here touches the disk or the keyring, so every rule is tested on bytes made in the test.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.core.messages import msg
from agent.keystore.errors import KeyState, KeystoreError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
ALLOWED_CURVES = ("secp256r1", "secp384r1")
MIN_RSA_BITS = 2048
WARN_DAYS: tuple[int, ...] = (30, 7, 1)


def _invalid(key: str, **params: str | int) -> KeystoreError:
    return KeystoreError(KeyState.INVALID_INPUT, msg(key, **params))


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates from PEM, DER, PKCS#7 (PEM or DER) or base64 PKCS#7 (an EST reply body)."""
    loaders = (
        x509.load_pem_x509_certificates,
        lambda b: [x509.load_der_x509_certificate(b)],
        pkcs7.load_pem_pkcs7_certificates,
        pkcs7.load_der_pkcs7_certificates,
    )
    for loader in loaders:
        try:
            certs = list(loader(data))
        except ValueError:
            continue
        if certs:
            return certs
    try:  # RFC 7030 replies are base64 DER PKCS#7, possibly wrapped over many lines
        der = base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if der:
        try:
            certs = list(pkcs7.load_der_pkcs7_certificates(der))
        except ValueError:
            certs = []
        if certs:
            return certs
    raise _invalid("cert.error.no_certificate")


def public_key_bytes(key: object) -> bytes:
    """A comparable encoding of a public key (or of a private key's public half)."""
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        key = key.public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return b""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    return public_key_bytes(cert.public_key()) == public_key_bytes(key)


def check_key_strength(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise _invalid("cert.error.weak_key", detail=f"RSA {key.key_size}")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise _invalid("cert.error.weak_key", detail=key.curve.name)
        return key
    raise _invalid("cert.error.weak_key", detail=type(key).__name__)


def check_client_certificate(cert: x509.Certificate, now: dt.datetime) -> None:
    """The rules every certificate we store must meet: usable now, for TLS client auth."""
    if now < cert.not_valid_before_utc:
        raise _invalid("cert.error.not_yet_valid", not_before=cert.not_valid_before_utc.date()
                       .isoformat())
    if now >= cert.not_valid_after_utc:
        raise _invalid("cert.error.expired", not_after=cert.not_valid_after_utc.date().isoformat())
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _invalid("cert.error.no_client_auth") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise _invalid("cert.error.no_client_auth")
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if ca:
        raise _invalid("cert.error.ca_certificate")


def order_chain(key: PrivateKey, certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The certificate for ``key`` first, the rest (intermediates) after it."""
    leaves = [c for c in certs if matches(c, key)]
    if not leaves:
        raise KeystoreError(KeyState.KEY_MISMATCH, msg("cert.error.key_mismatch"))
    leaf = leaves[0]
    return [leaf, *(c for c in certs if c is not leaf)]


def chain_pem(chain: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertInfo:
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        )

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now) // dt.timedelta(days=1)


@dataclass(frozen=True)
class ExpiryWarning:
    threshold: int  # the smallest of WARN_DAYS that has been crossed; 0 once expired
    days_left: int


def expiry_warning(not_after: dt.datetime, now: dt.datetime,
                   thresholds: Sequence[int] = WARN_DAYS) -> ExpiryWarning | None:
    """What the tray should say about expiry: nothing, or the tightest threshold crossed."""
    left = not_after - now
    days = left // dt.timedelta(days=1)
    if left <= dt.timedelta(0):
        return ExpiryWarning(0, min(days, 0))
    crossed = [t for t in thresholds if left <= dt.timedelta(days=t)]
    return ExpiryWarning(min(crossed), days) if crossed else None


def renewal_due(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    """Renew once two thirds of the lifetime have passed (leaves a third to retry in)."""
    return now >= not_before + (not_after - not_before) * 2 / 3
