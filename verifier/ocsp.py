"""OCSP for the user certificate, where ``[ocsp]`` is configured in verifier.toml (RFC 6960).

Split as everywhere else: :func:`build_request` and :func:`check_response` are pure (bytes in,
a verdict or :class:`OcspError` out; tested on responses from a real ``openssl ocsp`` responder
and on reconstructed ones), :func:`fetch` is the only I/O (HTTP POST, wall-clock deadline from
``agent.core.netdeadline``, body capped), and :class:`OcspChecker` ties them together with a cache
of *good* answers until their nextUpdate.

What a response must prove before it counts: status ``successful``; a BasicOCSPResponse whose
single response is for *this* certificate (serial, issuer name and key hash); a signature by the
city CA itself or by a delegated responder certificate the city CA issued directly with the
OCSP-signing EKU, valid now; our nonce, when the responder echoes one (a responder that echoes a
different one is refused); thisUpdate not in the future (beyond a small skew), nextUpdate not
passed, and, without nextUpdate, thisUpdate no older than ``max_age_seconds``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.core import netdeadline

log = logging.getLogger("verifier")

MAX_RESPONSE_BYTES = 64 * 1024
CACHE_MAX = 20_000
SKEW = dt.timedelta(minutes=5)
NONCE_BYTES = 16


class OcspError(Exception):
    """``code`` is the refusal code: ocsp_unreachable, ocsp_invalid, ocsp_unknown, ocsp_stale."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class OcspConfig:
    url: str
    timeout_seconds: float = 3.0
    soft_fail: bool = False
    nonce: bool = True
    max_age_seconds: int = 3600
    tls_ca: str | None = None  # CA file for an https:// responder; None: the system store


@dataclass(frozen=True)
class Verdict:
    status: str  # "good" | "revoked"
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked_at: dt.datetime | None = None


def _issuer_hashes(cert: x509.Certificate, issuer: x509.Certificate,
                   algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of the CertID, computed by cryptography's own builder."""
    req = ocsp.load_der_ocsp_request(
        ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
        .public_bytes(serialization.Encoding.DER))
    return req.issuer_name_hash, req.issuer_key_hash


def build_request(cert: x509.Certificate, issuer: x509.Certificate,
                  nonce: bytes | None) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(
        cert, issuer, hashes.SHA1())  # noqa: S303 - CertID hash, RFC 5019 §2.1.1 requires SHA-1
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def _verify_signature(signer: x509.Certificate, resp: ocsp.OCSPResponse) -> bool:
    pub = signer.public_key()
    algorithm = resp.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _names_signer(cert: x509.Certificate, resp: ocsp.OCSPResponse) -> bool:
    if resp.responder_name is not None:
        return cert.subject == resp.responder_name
    # byKey: SHA-1 of the subjectPublicKey bits, which is RFC 5280's key identifier method 1
    key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return key_id == resp.responder_key_hash


def _check_signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> None:
    if _names_signer(issuer, resp):
        if not _verify_signature(issuer, resp):
            raise OcspError("ocsp_invalid", "response signature by the CA does not verify")
        return
    for cand in resp.certificates:
        if not _names_signer(cand, resp):
            continue
        try:
            cand.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise OcspError("ocsp_invalid", "responder certificate is not the city CA's") from None
        if not cand.not_valid_before_utc <= now < cand.not_valid_after_utc:
            raise OcspError("ocsp_invalid", "responder certificate is not valid now")
        try:
            eku = cand.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise OcspError("ocsp_invalid", "responder certificate lacks the OCSP-signing EKU")
        if not _verify_signature(cand, resp):
            raise OcspError("ocsp_invalid", "response signature does not verify")
        return
    raise OcspError("ocsp_invalid", "response is not signed by the CA or a delegated responder")


def check_response(der: bytes, cert: x509.Certificate, issuer: x509.Certificate, *,
                   nonce: bytes | None, now: dt.datetime, max_age_seconds: int) -> Verdict:
    """The responder's answer about ``cert``, once proven (module docstring). Raises OcspError."""
    if len(der) > MAX_RESPONSE_BYTES:
        raise OcspError("ocsp_invalid", f"response of {len(der)} bytes")
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise OcspError("ocsp_invalid", "not a DER OCSP response") from None
    status = resp.response_status
    if status in (ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.INTERNAL_ERROR):
        raise OcspError("ocsp_unreachable", f"responder answered {status.name}")
    if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError("ocsp_invalid", f"responder answered {status.name}")
    _check_signer(resp, issuer, now)
    try:
        echoed = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if nonce is not None and echoed is not None and echoed != nonce:
        raise OcspError("ocsp_invalid", "the response's nonce is not ours")
    single = None
    for r in resp.responses:
        name_hash, key_hash = _issuer_hashes(cert, issuer, r.hash_algorithm)
        if (r.serial_number == cert.serial_number and r.issuer_name_hash == name_hash
                and r.issuer_key_hash == key_hash):
            single = r
            break
    if single is None:
        raise OcspError("ocsp_invalid", "the response is not about this certificate")
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > now + SKEW:
        raise OcspError("ocsp_stale", f"thisUpdate {this_update.isoformat()} is in the future")
    if next_update is not None and now > next_update:
        raise OcspError("ocsp_stale", f"nextUpdate {next_update.isoformat()} has passed")
    if next_update is None and (now - this_update).total_seconds() > max_age_seconds:
        raise OcspError("ocsp_stale", f"thisUpdate {this_update.isoformat()} is older than "
                                      f"{max_age_seconds} s")
    cs = single.certificate_status
    if cs == ocsp.OCSPCertStatus.GOOD:
        return Verdict("good", this_update, next_update)
    if cs == ocsp.OCSPCertStatus.REVOKED:
        return Verdict("revoked", this_update, next_update, single.revocation_time_utc)
    raise OcspError("ocsp_unknown", "the responder does not know this certificate")


def fetch(cfg: OcspConfig, request_der: bytes) -> bytes:
    """POST the request (RFC 6960 A.1) within one wall-clock deadline; OcspError on any failure."""
    verify: bool | str = cfg.tls_ca if cfg.tls_ca is not None else True
    with netdeadline.Deadline(cfg.timeout_seconds) as deadline, requests.Session() as s:
        netdeadline.guard_session(s, deadline)
        try:
            with netdeadline.reading(deadline):
                r = s.post(cfg.url, data=request_der, verify=verify, stream=True,
                           timeout=cfg.timeout_seconds, allow_redirects=False,
                           headers={"Content-Type": "application/ocsp-request",
                                    "Accept": "application/ocsp-response"})
                with r:
                    if r.status_code != 200:
                        raise OcspError("ocsp_unreachable", f"HTTP {r.status_code}")
                    body = b""
                    for chunk in r.iter_content(8192):
                        body += chunk
                        if len(body) > MAX_RESPONSE_BYTES:
                            raise OcspError("ocsp_invalid", "response too large")
                        deadline.check()
        except OcspError:
            raise
        except (OSError, netdeadline.DeadlineExceeded) as exc:
            raise OcspError("ocsp_unreachable", type(exc).__name__) from None
    return body


class OcspChecker:
    """Ask the responder about a user certificate; good answers are cached until nextUpdate."""

    def __init__(self, cfg: OcspConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._cache: dict[tuple[bytes, int], Verdict] = {}

    def _cached(self, key: tuple[bytes, int], now: dt.datetime) -> Verdict | None:
        with self._lock:
            v = self._cache.get(key)
            if v is not None and (v.next_update is None or now > v.next_update):
                del self._cache[key]
                return None
            return v

    def status(self, cert: x509.Certificate, issuers: Sequence[x509.Certificate],
               now: dt.datetime) -> Verdict | None:
        """``good``/``revoked``; None when soft_fail let an unreachable responder pass.
        Raises OcspError (fail closed)."""
        issuer = next((ca for ca in issuers if ca.subject == cert.issuer), None)
        if issuer is None:
            raise OcspError("ocsp_invalid", "no issuer for the certificate")
        key = (issuer.fingerprint(hashes.SHA256()), cert.serial_number)
        hit = self._cached(key, now)
        if hit is not None:
            return hit
        nonce = os.urandom(NONCE_BYTES) if self.cfg.nonce else None
        try:
            der = fetch(self.cfg, build_request(cert, issuer, nonce))
            verdict = check_response(der, cert, issuer, nonce=nonce, now=now,
                                     max_age_seconds=self.cfg.max_age_seconds)
        except OcspError as exc:
            if exc.code == "ocsp_unreachable" and self.cfg.soft_fail:
                log.warning("OCSP soft fail serial=%x: %s", cert.serial_number, exc.detail)
                return None
            raise
        if verdict.status == "good" and verdict.next_update is not None:
            with self._lock:
                if len(self._cache) >= CACHE_MAX:
                    self._cache.clear()
                self._cache[key] = verdict
        return verdict
