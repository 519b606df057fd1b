"""The posture report: what each check found, in a shape every front end shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.core.messages import Message
from agent.core.status import Status as Status  # noqa: PLC0414 (re-exported for the checks)

CHECK_IDS: tuple[str, ...] = (
    "os_supported",
    "os_updates",
    "disk_encryption",
    "antivirus",
    "firewall",
    "screen_lock",
)

Evidence = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """What a check concluded, before the engine adds its id and timing."""

    status: Status
    summary: Message
    evidence: Evidence = field(default_factory=dict)
    remediation: str | None = None  # key into the remediation catalogue


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    summary: Message
    evidence: Evidence
    remediation: str | None
    duration_ms: int


@dataclass(frozen=True)
class HostInfo:
    os: str  # windows | macos | linux | other
    os_version: str
    hostname: str
    arch: str


@dataclass(frozen=True)
class Report:
    generated_at: str  # ISO-8601 UTC
    host: HostInfo
    checks: tuple[CheckResult, ...]

    def by_id(self) -> Mapping[str, CheckResult]:
        return {c.id: c for c in self.checks}

    @property
    def compliant(self) -> bool:
        """Until a signed policy decides, every check is required and unknown is not compliant."""
        return all(c.status in (Status.PASS, Status.WARN) for c in self.checks)
