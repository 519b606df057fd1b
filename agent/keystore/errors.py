"""Keystore states and the one exception type the keystore raises."""

from __future__ import annotations

from enum import StrEnum

from agent.core.errors import AgentError
from agent.core.messages import Message


class KeyState(StrEnum):
    """Every state the user certificate can be in. Only OK lets a connection use it."""

    OK = "ok"
    NOT_ENROLLED = "not_enrolled"          # nothing stored yet
    PENDING = "pending"                    # key made by `cert request`, certificate not installed
    BACKEND_REFUSED = "backend_refused"    # plaintext/null/fail keyring: we will not use it
    KEYRING_UNAVAILABLE = "keyring_unavailable"
    KEYRING_LOCKED = "keyring_locked"
    PASSPHRASE_MISSING = "passphrase_missing"  # noqa: S105 (a state name)
    KEY_MISSING = "key_missing"
    KEY_CORRUPT = "key_corrupt"
    CERT_MISSING = "cert_missing"
    CERT_CORRUPT = "cert_corrupt"
    KEY_MISMATCH = "key_mismatch"
    EXPIRED = "expired"
    INVALID_INPUT = "invalid_input"        # a file or password the user gave us is not usable
    ENROLL_FAILED = "enroll_failed"
    WRITE_FAILED = "write_failed"          # the data directory could not be written


class KeystoreError(AgentError):
    """A clear, translatable reason; the CLI prints it and exits 2, the tray shows it."""

    def __init__(self, state: KeyState, message: Message) -> None:
        super().__init__(message, f"{state.value}: {message.key} {dict(message.params)}")
        self.state = state
