"""Obtain a posture credential from the city's verifier (docs/verifier-protocol.md).

nonce -> sign (report, policy id/serial, agent version, target, nonce) with the enrolled device
key -> short-lived posture certificate for the same key. Mutual TLS with the user certificate
(agent.keystore.tls: only the verifier CA the policy names, never the system store). No Qt. The
credential lives in memory; ``credential_files`` writes it to a 0600 temp file for the tunnel
and deletes it afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.attest import wire
from agent.core import i18n, netdeadline
from agent.core.errors import AgentError
from agent.core.messages import msg
from agent.keystore import Identity, KeystoreError
from agent.keystore.providers import Signer, tpm2
from agent.keystore.tls import client_context

Evidence = Callable[[bytes], dict[str, Any]]  # nonce bytes -> key_attestation
TIMEOUT_S = 10.0
TOTAL_DEADLINE_S = 20.0  # one request and its answer, wall clock
MAX_ANSWER = 64 * 1024


class VerifierError(AgentError):
    """The verifier could not be asked, or said no. ``code`` is the protocol's refusal code
    (``unreachable``, ``tls``, ``protocol``, ``key`` on our side)."""

    def __init__(self, code: str, message_ja: str, message_en: str, detail: str = "", *,
                 status: int = 0, correlation_id: str | None = None) -> None:
        super().__init__(msg(f"verifier.refused.{code}") if status else
                         msg(f"verifier.error.{code}", detail=detail[:120]), detail or code)
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en
        self.status = status
        self.correlation_id = correlation_id


def _local(code: str, detail: str) -> VerifierError:
    key = f"verifier.error.{code}"
    return VerifierError(code, i18n.text(key, "ja", detail=detail[:120]),
                         i18n.text(key, "en", detail=detail[:120]), detail)


@dataclass(frozen=True)
class VerifierEndpoint:
    url: str  # https://host:port
    ca_pem: str  # the CA the verifier's server certificate chains to


def _post(endpoint: VerifierEndpoint, ctx: ssl.SSLContext, path: str,
          body: bytes) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(endpoint.url)
    if parts.scheme != "https" or not parts.hostname:
        raise _local("protocol", f"verifier URL must be https: {endpoint.url[:80]}")
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=ctx,
                                       timeout=TIMEOUT_S)
    guard = netdeadline.Deadline(TOTAL_DEADLINE_S)  # wall clock: a trickling verifier is cut
    netdeadline.guard_connection(conn, guard)
    try:
        with guard, netdeadline.reading(guard):
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER + 1)
            status = resp.status
    except netdeadline.DeadlineExceeded as exc:
        raise _local("unreachable", str(exc)) from None
    except ssl.SSLCertVerificationError as exc:
        raise _local("tls", exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:  # e.g. the verifier refused our certificate in the handshake
        raise _local("tls", exc.reason or str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _local("unreachable", f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if len(raw) > MAX_ANSWER:
        raise _local("protocol", "answer too large")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _local("protocol", f"HTTP {status}, not JSON") from None
    if not isinstance(doc, dict):
        raise _local("protocol", f"HTTP {status}, not an object")
    if status != 200:
        code = str(doc.get("error", "internal"))[:64]
        raise VerifierError(code, str(doc.get("message_ja", ""))[:500],
                            str(doc.get("message_en", ""))[:500], f"HTTP {status} {code}",
                            status=status, correlation_id=doc.get("correlation_id"))
    return status, doc


def load_device_key(identity: Identity) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(identity.key_path.read_bytes(),
                                                 password=identity.passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise _local("key", type(exc).__name__) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _local("key", "the device key is not an EC key")
    return key


def device_signer(identity: Identity) -> Signer:
    """The enrolled key as a signer: the TPM key for a hardware identity, else the software key."""
    if identity.protection != "hardware":
        return load_device_key(identity)
    try:
        return tpm2.TpmKey(identity.key_path.read_bytes())
    except (OSError, KeystoreError) as exc:
        raise _local("key", type(exc).__name__) from None


def _tpm_evidence(identity: Identity) -> Evidence | None:
    if identity.protection != "hardware":
        return None
    signer = device_signer(identity)
    return getattr(signer, "key_evidence", None)


def obtain_credential(endpoint: VerifierEndpoint, identity: Identity,
                      report: Mapping[str, Any], *, policy_id: str, policy_serial: int,
                      agent_version: str, target: str,
                      key: Signer | None = None,
                      context: ssl.SSLContext | None = None,
                      evidence: Evidence | None = None) -> wire.Credential:
    """One attestation. ``key`` defaults to the identity's own key (tests pass another one to
    prove the verifier refuses it). A hardware identity adds the TPM's key attestation over the
    verifier's nonce (``evidence`` replaces it in tests). Raises VerifierError with the
    verifier's own ja/en text."""
    try:
        ctx = context or client_context(endpoint.ca_pem, identity)
    except KeystoreError as exc:
        raise _local("key", exc.message.key) from None
    signer = key or device_signer(identity)
    make_evidence = evidence or _tpm_evidence(identity)
    _, doc = _post(endpoint, ctx, wire.NONCE_PATH, b'{"v":1}')
    try:
        nonce = wire.NonceResponse.parse(doc)
    except wire.WireError as exc:
        raise _local("protocol", exc.detail) from None
    enrolled = device_signer(identity).public_key() if key is not None else signer.public_key()
    try:
        attestation = (make_evidence(wire.nonce_bytes(nonce.nonce))
                       if make_evidence is not None else None)
    except KeystoreError as exc:
        raise _local("key", exc.message.key) from None
    request = wire.AttestRequest(nonce.nonce, report, policy_id, policy_serial, agent_version,
                                 target, wire.public_key_pem(enrolled),
                                 key_attestation=attestation).sign(signer)
    _, answer = _post(endpoint, ctx, wire.ATTEST_PATH, wire.canonical_json(request.to_json()))
    try:
        return wire.Credential.parse(answer)
    except wire.WireError as exc:
        raise _local("protocol", exc.detail) from None


@contextlib.contextmanager
def credential_files(credential: wire.Credential) -> Iterator[Path]:
    """The posture certificate as a 0600 temp file for a TLS client, deleted on exit."""
    fd, name = tempfile.mkstemp(prefix="byod-posture-", suffix=".pem")
    path = Path(name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(credential.certificate_pem)
        yield path
    finally:
        path.unlink(missing_ok=True)


def gateway_context(credential_path: Path, identity: Identity, gateway_ca_pem: str,
                    ) -> ssl.SSLContext:
    """TLS towards the gateway with the posture credential and the same device key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=gateway_ca_pem)
    if identity.protection == "hardware":  # the TPM signs the handshake (tpm2-openssl)
        tpm2.enable_openssl_provider()
    passphrase = identity.passphrase
    ctx.load_cert_chain(str(credential_path), str(identity.key_path), password=lambda: passphrase)
    return ctx
