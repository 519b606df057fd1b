"""The verifier in a session: a credential before the tunnel opens, a re-attestation at every
re-check. For ``connect`` and the tray (through agent.session); no Qt.

The gateway TLS context is built once and its certificate replaced in place at each
re-attestation (``SSLContext.load_cert_chain`` again), so a reconnect of the RDP client inside a
long session presents the newest credential. The credential file exists only while OpenSSL reads
it (0600, deleted at once).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agent import __version__
from agent.attest.client import (
    VerifierEndpoint,
    VerifierError,
    credential_files,
    gateway_context,
    obtain_credential,
)
from agent.attest.wire import Credential
from agent.core.messages import msg
from agent.keystore import Identity
from agent.policy.decision import (
    CheckDecision,
    Decision,
    Outcome,
    decision_to_json,
    policy_to_json,
)
from agent.policy.model import Enforce, OnUnknown, VerifierRef
from agent.posture.model import Status
from agent.presentation.report import report_to_json

log = logging.getLogger(__name__)
Obtain = Callable[..., Credential]


class SessionAttester:
    def __init__(self, ref: VerifierRef, identity: Identity, gateway_ca_pem: str, *,
                 policy_id: str, policy_serial: int, target_id: str,
                 agent_version: str = __version__, obtain: Obtain = obtain_credential) -> None:
        self.endpoint = VerifierEndpoint(ref.url, ref.ca_pem)
        self.identity = identity
        self.gateway_ca_pem = gateway_ca_pem
        self.policy_id = policy_id
        self.policy_serial = policy_serial
        self.target_id = target_id
        self.agent_version = agent_version
        self._obtain = obtain
        self.context: ssl.SSLContext | None = None
        self.credential: Credential | None = None

    def attest(self, report: Mapping[str, Any]) -> ssl.SSLContext:
        """Attest now; the gateway context presents the new credential from now on.
        Raises agent.attest.VerifierError (``status`` 0: not reachable; else refused)."""
        cred = self._obtain(self.endpoint, self.identity, report, policy_id=self.policy_id,
                            policy_serial=self.policy_serial, agent_version=self.agent_version,
                            target=self.target_id)
        with credential_files(cred) as path:
            if self.context is None:
                self.context = gateway_context(path, self.identity, self.gateway_ca_pem)
            else:
                passphrase = self.identity.passphrase
                self.context.load_cert_chain(str(path), str(self.identity.key_path),
                                             password=lambda: passphrase)
        self.credential = cred
        log.info("posture credential for %s until %.0f (%s)", cred.pc, cred.not_after,
                 cred.correlation_id)
        return self.context


def refusal_decision(local: Decision, exc: VerifierError) -> Decision:
    """The local decision, turned into a block by the verifier's answer (fail closed): the
    session's grace countdown then ends it, as the gateway does on its side."""
    key = (f"verifier.refused.{exc.code}" if exc.status
           else "verifier.error.unreachable")
    reason = msg(key, detail=exc.detail[:120])
    verdict = CheckDecision("verifier", Status.FAIL, Enforce.BLOCK, OnUnknown.BLOCK,
                            Outcome.BLOCK, None, reason)
    return replace(local, allowed=False, checks=(*local.checks, verdict))


def reevaluator(evaluate: Callable[[], Any], attester: SessionAttester | None, *,
                payload: Callable[[Any], dict[str, Any]] | None = None,
                ) -> Callable[[], Decision]:
    """The session's re-check: the local evaluation, then (when it allows and the policy names a
    verifier) a re-attestation with that very report."""
    def again() -> Decision:
        result = evaluate()
        decision: Decision = result.decision
        if attester is None or not decision.allowed:
            return decision
        try:
            attester.attest((payload or report_payload)(result))
        except VerifierError as exc:
            log.warning("re-attestation failed: %s (%s)", exc.code, exc.detail)
            return refusal_decision(decision, exc)
        return decision
    return again


def report_payload(evaluation: Any) -> dict[str, Any]:
    """What ``byod-agent check --json`` prints, for an ``agent.policy.evaluate.Evaluation``."""
    data = report_to_json(evaluation.report)
    data["compliant"] = evaluation.decision.allowed
    data["decision"] = decision_to_json(evaluation.decision)
    data["policy"] = policy_to_json(evaluation.loaded)
    return data
