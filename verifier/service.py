"""The verifier's decisions as plain functions: nonce, attest, enforce. Routes only call these.

Order of the attest checks (docs/verifier-protocol.md): size, JSON, depth, fields, client
certificate (chain, validity, CRL), enrolled key, signature, nonce (single use), policy id and
serial, report age, then re-evaluation under the verifier's own signed policy with the server's
clock. Every outcome, refusals included, is stored and logged with its reason code.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from agent.attest import wire
from agent.policy.decision import new_correlation_id
from verifier import evaluate, messages, ocsp, tpm
from verifier.config import VerifierConfig
from verifier.db import Store
from verifier.gateway import Gateway
from verifier.pki import (
    CertRefused,
    PostureCA,
    check_user_certificate,
    common_name,
    fingerprint,
    load_certs,
    load_crls,
    pem,
)

log = logging.getLogger("verifier")
Clock = Callable[[], dt.datetime]

STATUS = {
    "too_large": 413, "bad_json": 400, "too_deep": 400, "bad_request": 400, "bad_version": 400,
    "bad_report": 400, "no_client_cert": 401, "cert_unknown_ca": 403, "cert_expired": 403,
    "cert_revoked": 403, "cert_key_type": 403, "crl_missing": 403, "crl_invalid": 403,
    "crl_stale": 403, "key_not_enrolled": 403, "bad_signature": 403, "nonce_unknown": 409,
    "nonce_replayed": 409, "nonce_expired": 409, "policy_unknown": 409, "stale_serial": 409,
    "policy_newer": 409, "report_stale": 409, "report_future": 409, "not_compliant": 403,
    "no_assignment": 403, "policy_unavailable": 503, "internal": 500,
    "key_attestation_invalid": 403, "key_not_hardware": 403,
    "ocsp_unreachable": 503, "ocsp_invalid": 403, "ocsp_unknown": 403, "ocsp_stale": 403,
}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Refusals that end a live session at once. The certificate ones are raised only after the
# certificate was found to chain to the city CA, so its CN is the user's (a foreign certificate
# naming someone else can never cut their session).
CUT_AT_ONCE = ("not_compliant", "cert_revoked", "cert_expired")


class Refused(Exception):
    def __init__(self, code: str, detail: str, *, user: str | None = None,
                 **params: str | int) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.user = user  # set only where the certificate is the city's (see CUT_AT_ONCE)
        self.params = params


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    code: str = "ok"


@dataclass
class Context:
    """What one attestation learnt so far (for the stored record, refusals included)."""

    correlation_id: str = field(default_factory=new_correlation_id)
    user: str | None = None
    cert_fp: str | None = None
    request: wire.AttestRequest | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    key: dict[str, Any] | None = None  # the key_protection entry (verifier/tpm.py), once known


class Verifier:
    def __init__(self, cfg: VerifierConfig, store: Store, gateway: Gateway,
                 clock: Clock = utc_now) -> None:
        self.cfg = cfg
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.city_cas = load_certs(cfg.city_ca)
        self.crls = load_crls(cfg.crl_files)
        self._crl_mtimes = self._crl_stamp()
        self.ocsp = ocsp.OcspChecker(cfg.ocsp) if cfg.ocsp is not None else None
        for secret in (cfg.posture_ca_key, cfg.posture_ca_key_passphrase_file):
            if secret is not None and secret.stat().st_mode & 0o077:
                raise ValueError(f"{secret} must be readable by its owner only (chmod 600)")
        passphrase = None
        if cfg.posture_ca_key_passphrase_file is not None:
            lines = cfg.posture_ca_key_passphrase_file.read_text(encoding="utf-8").splitlines()
            passphrase = (lines[0] if lines else "").encode("utf-8")
        self.posture_ca = PostureCA.load(cfg.posture_ca_cert, cfg.posture_ca_key, passphrase)
        self._lock = threading.Lock()
        self.policy = evaluate.load_server_policy(cfg.policy_file, cfg.trust_dir, clock())
        store.raise_serial(self.policy.policy.id, self.policy.policy.serial)

    # -- timing ---------------------------------------------------------------------------------
    @property
    def recheck_seconds(self) -> int:
        return self.cfg.recheck_seconds or self.policy.policy.recheck_interval_minutes * 60

    @property
    def grace_seconds(self) -> int:
        g = self.cfg.grace_seconds
        return self.policy.policy.session_grace_seconds if g is None else g

    def _crl_stamp(self) -> tuple[float, ...]:
        out = []
        for p in self.cfg.crl_files:
            try:
                out.append(p.stat().st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def reload_crls(self) -> None:
        """A CRL file IT replaces is read again on the next request (no restart)."""
        stamp = self._crl_stamp()
        if stamp != self._crl_mtimes:
            self.crls = load_crls(self.cfg.crl_files)
            self._crl_mtimes = stamp
            log.info("CRLs loaded: %s", [str(p) for p in self.cfg.crl_files])

    # -- helpers -------------------------------------------------------------------------------
    def refusal(self, code: str, ctx: Context | None, detail: str,
                 params: dict[str, str | int] | None = None) -> Outcome:
        status = STATUS.get(code, 400)
        ja, en = messages.refusal(code, **(params or {}))
        body = wire.Refusal(code, status, ja, en, ctx.correlation_id if ctx else None).to_json()
        return Outcome(status, body, code)

    def _client_cert(self, peer_der: bytes | None) -> tuple[x509.Certificate, str, str]:
        if not peer_der:
            raise Refused("no_client_cert", "no client certificate on the connection")
        cert = x509.load_der_x509_certificate(peer_der)
        try:
            self.reload_crls()
        except (OSError, ValueError) as exc:  # keep the CRLs in hand; a broken file is logged
            log.error("cannot read a CRL: %s", exc)
        try:
            check_user_certificate(cert, self.city_cas, self.crls, self.clock())
        except CertRefused as exc:
            issued_by_city = exc.code in ("cert_revoked", "cert_expired")
            raise Refused(exc.code, exc.detail,
                          user=common_name(cert) if issued_by_city else None) from None
        user = common_name(cert)
        if not messages.USER_RE.fullmatch(user):
            raise Refused("cert_unknown_ca", "certificate CN is not a valid user name")
        self._check_ocsp(cert, user)
        return cert, user, fingerprint(cert)

    def _check_ocsp(self, cert: x509.Certificate, user: str) -> None:
        """After the chain and the CRL (the certificate is the city's, so its CN is the user):
        revoked -> cert_revoked (cuts at once); unknown, unreachable, invalid or stale -> its own
        ocsp_* code, refused unless ``soft_fail`` lets an unreachable responder pass."""
        if self.ocsp is None:
            return
        try:
            verdict = self.ocsp.status(cert, self.city_cas, self.clock())
        except ocsp.OcspError as exc:
            raise Refused(exc.code, exc.detail) from None
        if verdict is not None and verdict.status == "revoked":
            when = verdict.revoked_at.isoformat() if verdict.revoked_at else "?"
            raise Refused("cert_revoked", f"OCSP: serial {cert.serial_number:x} revoked {when}",
                          user=user)

    # -- nonce ---------------------------------------------------------------------------------
    def nonce(self, peer_der: bytes | None, raw: bytes) -> Outcome:
        try:
            if len(raw) > 1024:
                raise Refused("too_large", f"{len(raw)} bytes for a nonce request")
            _cert, user, fp = self._client_cert(peer_der)
        except Refused as exc:
            log.warning("nonce refused code=%s detail=%s", exc.code, exc.detail)
            if exc.code in CUT_AT_ONCE and exc.user is not None:
                self.cut(exc.user, exc.code)
            return self.refusal(exc.code, None, exc.detail)
        now = self.clock().timestamp()
        value = secrets.token_urlsafe(wire.NONCE_BYTES)
        self.store.add_nonce(value, fp, now, self.cfg.nonce_seconds)
        log.info("nonce issued user=%s", user)
        return Outcome(200, wire.NonceResponse(value, now + self.cfg.nonce_seconds).to_json())

    # -- attest --------------------------------------------------------------------------------
    def attest(self, peer_der: bytes | None, raw: bytes) -> Outcome:
        ctx = Context()
        try:
            outcome = self._attest(ctx, peer_der, raw)
        except Refused as exc:
            ctx.user = ctx.user or exc.user
            outcome = self.refusal(exc.code, ctx, exc.detail, exc.params)
            self._record(ctx, allowed=False, code=exc.code, detail=exc.detail)
            log.warning("attest refused %s user=%s code=%s detail=%s", ctx.correlation_id,
                        ctx.user, exc.code, exc.detail)
            if exc.code in CUT_AT_ONCE and ctx.user is not None:
                self.cut(ctx.user, exc.code)
        except Exception as exc:  # never a traceback on the wire; the log has it
            log.exception("attest failed %s user=%s", ctx.correlation_id, ctx.user)
            outcome = self.refusal("internal", ctx, type(exc).__name__)
            self._record(ctx, allowed=False, code="internal", detail=type(exc).__name__)
        return outcome

    def _record(self, ctx: Context, *, allowed: bool, code: str | None,
                detail: str | None) -> None:
        r = ctx.request
        try:
            self.store.record_attestation(
                at=self.clock().timestamp(), user=ctx.user, cert_fp=ctx.cert_fp,
                policy_id=r.policy_id if r else None, policy_serial=r.policy_serial if r else None,
                agent_version=r.agent_version if r else None, target=r.target if r else None,
                allowed=allowed, correlation_id=ctx.correlation_id,
                checks=ctx.checks + ([ctx.key] if ctx.key is not None else []),
                refused_code=code, refused_detail=detail)
        except Exception:  # the refusal still goes out; the log says the store failed
            log.exception("cannot store attestation %s", ctx.correlation_id)

    def _attest(self, ctx: Context, peer_der: bytes | None, raw: bytes) -> Outcome:
        try:
            doc = wire.parse_body(raw)
            req = wire.AttestRequest.parse(doc)
        except wire.WireError as exc:
            raise Refused(exc.code, exc.detail) from None
        ctx.request = req
        cert, ctx.user, ctx.cert_fp = self._client_cert(peer_der)
        enrolled = cert.public_key()
        if not isinstance(enrolled, ec.EllipticCurvePublicKey):  # _client_cert refused others
            raise Refused("cert_key_type", "device key must be EC P-256")
        if req.public_key_pem.strip() != wire.public_key_pem(enrolled).strip():
            raise Refused("key_not_enrolled", "public_key is not the client certificate's key")
        try:
            req.verify(enrolled)
        except wire.WireError as exc:
            raise Refused(exc.code, exc.detail) from None
        self.store.see_device(ctx.cert_fp, ctx.user, req.public_key_pem, self.clock().timestamp())
        problem = self.store.use_nonce(req.nonce, ctx.cert_fp, self.clock().timestamp())
        if problem is not None:
            raise Refused(problem, "nonce not usable")
        now = self.clock()
        loaded = self._policy(now)
        policy = loaded.policy
        self._key_protection(ctx, req, enrolled, policy.verifier.key_protection
                             if policy.verifier is not None else "any")
        if req.policy_id != policy.id:
            raise Refused("policy_unknown", f"policy {req.policy_id[:64]} is not {policy.id}",
                          policy=policy.id)
        highest = max(self.store.highest_serial(policy.id), policy.serial)
        if req.policy_serial < highest:
            raise Refused("stale_serial", f"serial {req.policy_serial} < {highest}",
                          serial=req.policy_serial, highest=highest)
        if req.policy_serial > policy.serial:
            raise Refused("policy_newer", f"serial {req.policy_serial} > {policy.serial} (ours)",
                          serial=req.policy_serial, highest=policy.serial)
        try:
            report = evaluate.parse_report(req.report)
        except evaluate.ReportError as exc:
            raise Refused(exc.code, exc.detail) from None
        generated = evaluate.parse_instant(report.generated_at)
        age = (now - generated).total_seconds()
        if age > self.recheck_seconds:
            raise Refused("report_stale", f"report is {int(age)} s old > {self.recheck_seconds}",
                          age=int(age), limit=self.recheck_seconds)
        if -age > self.cfg.max_future_skew_seconds:
            raise Refused("report_future", f"report is {int(-age)} s in the future",
                          age=int(-age))
        report = evaluate.with_server_checks(report, policy, req.agent_version)
        decision = evaluate.decide_report(report, policy, now, ctx.correlation_id)
        ctx.checks = evaluate.decision_checks_json(report, decision)
        if not decision.allowed:
            raise Refused("not_compliant", "blocked: " + ",".join(
                c["id"] for c in ctx.checks if c["outcome"] == "block"))
        assignment = self.store.assignment(ctx.user)
        if assignment is None:
            raise Refused("no_assignment", f"no office PC assigned to {ctx.user}",
                          user=ctx.user)
        lifetime = dt.timedelta(minutes=self.cfg.credential_minutes)
        cred = self.posture_ca.issue(enrolled, ctx.user, assignment.pc_id, now, lifetime)
        not_after = cred.not_valid_after_utc.timestamp()
        self.store.record_credential(f"{cred.serial_number:x}", ctx.user, assignment.pc_id,
                                     issued_at=now.timestamp(), not_after=not_after,
                                     correlation_id=ctx.correlation_id)
        deadline = now.timestamp() + self.recheck_seconds + self.grace_seconds
        with self._lock:
            self.store.admit(ctx.user, assignment.pc_id, now.timestamp(), deadline)
            self.gateway.admit(ctx.user, assignment.pc_id, self.store.live_sessions())
        self._record(ctx, allowed=True, code=None, detail=None)
        log.info("attest allowed %s user=%s pc=%s policy=%s/%d credential=%x until %s",
                 ctx.correlation_id, ctx.user, assignment.pc_id, policy.id, policy.serial,
                 cred.serial_number, cred.not_valid_after_utc.isoformat())
        return Outcome(200, wire.Credential(pem(cred).decode("ascii"), not_after, ctx.user,
                                            assignment.pc_id, ctx.correlation_id,
                                            self.recheck_seconds).to_json())

    @staticmethod
    def _key_protection(ctx: Context, req: wire.AttestRequest, enrolled: ec.EllipticCurvePublicKey,
                        required: str) -> None:
        """Where the device key lives (issue 22): TPM evidence checked over this nonce, the level
        recorded with the attestation, and ``[verifier] key_protection = "hardware"`` enforced."""
        try:
            found = tpm.check_key_attestation(req.key_attestation, enrolled,
                                              wire.nonce_bytes(req.nonce))
        except tpm.TpmEvidenceError as exc:
            ctx.key = tpm.key_check("fail", "block", tpm.KeyAttestation(
                "software", detail=exc.detail[:200]))
            raise Refused("key_attestation_invalid", exc.detail) from None
        if found.level == "hardware":
            ctx.key = tpm.key_check("pass", "ok", found)
        elif required == "hardware":
            ctx.key = tpm.key_check("fail", "block", found)
            raise Refused("key_not_hardware", "the policy requires a TPM-protected device key")
        else:
            ctx.key = tpm.key_check("warn", "report", found)

    def _policy(self, now: dt.datetime) -> evaluate.LoadedServerPolicy:
        if now >= self.policy.policy.expires:
            raise Refused("policy_unavailable", "the verifier's policy has expired")
        return self.policy

    # -- enforcement ---------------------------------------------------------------------------
    def cut(self, user: str, reason: str) -> bool:
        """End the user's live session at the gateway and withdraw admission. Idempotent."""
        now = self.clock().timestamp()
        with self._lock:
            session = self.store.session(user)
            moved = self.store.mark_cut(user, now, reason)
            pc = session.pc_id if session is not None else None
            if pc is not None:
                self.gateway.revoke(user, pc, self.store.live_sessions())
        if moved:
            log.warning("session cut user=%s pc=%s reason=%s", user, pc, reason)
        return moved

    def enforce_once(self) -> Sequence[str]:
        """Cut every live session whose deadline (last allowed attest + recheck + grace) passed."""
        now = self.clock().timestamp()
        cut = []
        for s in self.store.live_sessions():
            if now > s.deadline and self.cut(s.user, "no_reattest"):
                cut.append(s.user)
        return cut
