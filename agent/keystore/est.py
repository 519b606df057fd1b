"""Enrollment over Secure Transport (RFC 7030) client: /cacerts, /simpleenroll, /simplereenroll.

The new key is made in memory and stored together with the issued certificate only when the
server's answer checked out, so a refused code or a bad reply leaves the keystore as it was.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from agent.core import netdeadline
from agent.core.messages import msg
from agent.keystore import certs
from agent.keystore import tls as tlsclient
from agent.keystore.certs import CertInfo
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.providers import csr as csrmod
from agent.keystore.providers import tpm2
from agent.keystore.store import EstConfig, Keystore, new_key_and_csr

WELL_KNOWN = "/.well-known/est"
TIMEOUT = (10.0, 30.0)  # connect, and each read
TOTAL_DEADLINE_S = 60.0  # the whole exchange, wall clock (a trickling server is cut here)
MAX_REPLY_BYTES = 256 * 1024  # a certs-only PKCS#7 is a few KB
MAX_CERTS = 20
SessionFactory = Callable[..., requests.Session]


def _fail(key: str, **params: str | int) -> KeystoreError:
    return KeystoreError(KeyState.ENROLL_FAILED, msg(key, **params))


def base_url(url: str) -> str:
    """``https://host[:port][/.well-known/est[/label]]`` -> the EST base without a trailing /."""
    url = url.rstrip("/")
    if not url.lower().startswith("https://"):
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.est_url", url=url))
    return url if WELL_KNOWN in url else url + WELL_KNOWN


def parse_certs_only(body: bytes) -> list[x509.Certificate]:
    """An application/pkcs7-mime certs-only reply: base64 DER PKCS#7 (RFC 7030 §4.1.3, §4.2.3)."""
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
        found = list(pkcs7.load_der_pkcs7_certificates(der))
    except ValueError:
        raise _fail("cert.error.est_bad_reply") from None
    if not found or len(found) > MAX_CERTS:
        raise _fail("cert.error.est_bad_reply")
    return found


def _read_capped(resp: requests.Response) -> bytes:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise _fail("cert.error.est_bad_reply")
    body = bytearray()
    for chunk in resp.iter_content(16 * 1024):
        body += chunk
        if len(body) > MAX_REPLY_BYTES:  # a certs-only reply is a few KB
            raise _fail("cert.error.est_bad_reply")
    return bytes(body)


def _request(sess: requests.Session, method: str, url: str, **kwargs: Any) -> bytes:
    """One EST exchange: wall-clock deadline (a trickling server is cut), no redirects, the
    reply capped at MAX_REPLY_BYTES. Returns the body of a 200 certs-only reply."""
    with netdeadline.Deadline(TOTAL_DEADLINE_S) as guard:
        netdeadline.guard_session(sess, guard)
        try:
            with netdeadline.reading(guard):
                resp = sess.request(method, url, timeout=TIMEOUT, allow_redirects=False,
                                    stream=True, **kwargs)
                with resp:
                    _check_status(resp)
                    body = _read_capped(resp)
        except KeystoreError:
            if not guard.fired:
                raise
            raise _fail("cert.error.est_timeout", url=url, seconds=int(TOTAL_DEADLINE_S)) \
                from None  # what was cut short is not the server's answer
        except netdeadline.DeadlineExceeded:
            raise _fail("cert.error.est_timeout", url=url, seconds=int(TOTAL_DEADLINE_S)) \
                from None
        except requests.exceptions.SSLError:
            raise _fail("cert.error.est_tls", url=url) from None
        except requests.RequestException:
            raise _fail("cert.error.est_connect", url=url) from None
    return body


def _check_status(resp: requests.Response) -> None:
    if resp.status_code in (401, 403):
        raise _fail("cert.error.est_refused", status=resp.status_code)
    if resp.status_code == 202:
        raise _fail("cert.error.est_pending", retry=resp.headers.get("Retry-After", "?")[:40])
    if resp.status_code != 200:  # 3xx too: redirects are never followed
        raise _fail("cert.error.est_http", status=resp.status_code)
    if "pkcs7-mime" not in resp.headers.get("Content-Type", ""):
        raise _fail("cert.error.est_bad_reply")


def cacerts(sess: requests.Session, base: str) -> list[x509.Certificate]:
    return parse_certs_only(_request(sess, "GET", base + "/cacerts"))


def _post_csr(sess: requests.Session, url: str, csr_pem: bytes,
              auth: tuple[str, str] | None) -> list[x509.Certificate]:
    der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    headers = {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}
    return parse_certs_only(_request(sess, "POST", url, data=base64.encodebytes(der),
                                     headers=headers, auth=auth))


def _issued_by_one_of(issued: list[x509.Certificate], cas: list[x509.Certificate]) -> None:
    for ca in cas:
        try:
            issued[0].verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    raise _fail("cert.error.est_wrong_issuer")


def _hardware_key_and_csr(subject: str) -> tuple[bytes, Any, bytes]:
    """A new TPM key (its wrapped blob), its public key, and a CSR the TPM signed."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        name = x509.Name([])
    if not name.rdns:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.bad_subject", subject=subject))
    blob = tpm2.create_key()
    key = tpm2.TpmKey(blob)
    return blob, key.public_key(), csrmod.build_csr(name, key)


def enroll(store: Keystore, url: str, trust_anchor_pem: str, *, subject: str, code: str,
           user: str = "", session_factory: SessionFactory = tlsclient.session,
           provider: str = "auto") -> CertInfo:
    """First enrollment with a one-time code (sent as the HTTP Basic password, RFC 7030 §3.2.3).
    ``provider="tpm2"``: the key is made in the TPM and the CSR signed there (issue 22);
    ``"auto"`` (default) does so when this PC has a usable TPM, without asking staff anything."""
    base = base_url(url)
    if provider == "auto":
        provider = "tpm2" if tpm2.usable() else "software"
    sess = session_factory(tlsclient.client_context(trust_anchor_pem))
    with sess:
        cas = cacerts(sess, base)
        if provider == "tpm2":
            blob, public, csr = _hardware_key_and_csr(subject)
        else:
            key, csr = new_key_and_csr(subject)
        issued = _post_csr(sess, base + "/simpleenroll", csr, (user, code))
    _issued_by_one_of(issued, cas)
    info = (store.adopt_hardware(blob, public, issued) if provider == "tpm2"
            else store.adopt(key, issued))
    store.save_est_config(EstConfig(base, trust_anchor_pem))
    return info


def renew(store: Keystore, session_factory: SessionFactory = tlsclient.session) -> CertInfo:
    """/simplereenroll over mutual TLS with the current certificate, for a fresh key."""
    config = store.est_config()
    if config is None:
        raise _fail("cert.error.est_not_configured")
    identity = store.load_identity()
    sess = session_factory(tlsclient.client_context(config.trust_anchor_pem, identity))
    with sess:
        cas = cacerts(sess, config.url)
        if identity.protection == "hardware":  # a hardware key is renewed by a hardware key
            blob, public, csr = _hardware_key_and_csr(identity.info.subject)
        else:
            key, csr = new_key_and_csr(identity.info.subject)
        issued = _post_csr(sess, config.url + "/simplereenroll", csr, None)
    _issued_by_one_of(issued, cas)
    if identity.protection == "hardware":
        return store.adopt_hardware(blob, public, issued)
    return store.adopt(key, issued)


def renew_if_due(store: Keystore, now: dt.datetime,
                 session_factory: SessionFactory = tlsclient.session) -> CertInfo | None:
    """For the agent's timer: renew at two thirds of the lifetime when EST is configured."""
    if store.est_config() is None:
        return None
    info = store.load_identity().info
    if not certs.renewal_due(info.not_before, info.not_after, now):
        return None
    return renew(store, session_factory)
