"""Server-side posture attestation: the agent's half (docs/verifier-protocol.md). No Qt."""

from agent.attest.client import (
    VerifierEndpoint,
    VerifierError,
    credential_files,
    gateway_context,
    obtain_credential,
)
from agent.attest.wire import Credential

__all__ = ["Credential", "VerifierEndpoint", "VerifierError", "credential_files",
           "gateway_context", "obtain_credential"]
