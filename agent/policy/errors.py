"""Why a policy was refused. The message names the problem in Japanese and English."""

from __future__ import annotations

from typing import ClassVar

from agent.core import exitcodes
from agent.core.errors import AgentError
from agent.core.messages import Message


class PolicyRefused(AgentError):
    """A policy file failed a check; it is never used and never replaces the last good one."""

    def __init__(self, message: Message, detail: str) -> None:
        super().__init__(message, detail)

    @property
    def reason(self) -> str:
        """A stable short code ("bad_signature", "rollback"...): the last part of the key."""
        return self.message.key.rsplit(".", 1)[-1]


class FetchFailed(AgentError):
    """The update server could not be reached or answered badly; the cached policy stays (6)."""

    exit_code: ClassVar[int] = exitcodes.OFFLINE

    def __init__(self, message: Message, detail: str) -> None:
        super().__init__(message, detail)
