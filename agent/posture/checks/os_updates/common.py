"""Shared pieces of the os_updates probes: one finding out of several observations, and ages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.core.messages import Message
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

# A fact that fails outranks one we could not establish: a PC with known missing patches is not
# "unknown" just because another source was unreadable.
_SEVERITY = {Status.FAIL: 3, Status.UNKNOWN: 2, Status.WARN: 1, Status.PASS: 0}


@dataclass(frozen=True)
class Issue:
    status: Status
    message: Message
    remediation: str


def conclude(issues: Sequence[Issue], ok: Message, evidence: Evidence) -> Finding:
    """The most severe issue (first one wins a tie) speaks for the check; all are in evidence."""
    evidence["issues"] = [i.message.key for i in issues]
    if not issues:
        return Finding(Status.PASS, ok, evidence)
    worst = max(issues, key=lambda i: _SEVERITY[i.status])
    return Finding(worst.status, worst.message, evidence, worst.remediation)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes from plistlib and file stamps are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def age_days(then: datetime, now: datetime) -> int:
    """Whole days elapsed; a timestamp in the future (clock skew) counts as zero."""
    return max(0, (as_utc(now) - as_utc(then)).days)


def newest_mtime(ctx: ProbeContext, directory: str, patterns: Iterable[str]) -> datetime | None:
    """Newest modification time of the files matching ``patterns`` in ``directory``."""
    base = ctx.path(directory)
    newest: float | None = None
    for pattern in patterns:
        try:
            matches = list(base.glob(pattern))
        except OSError:
            continue
        for p in matches:
            try:
                stamp = p.stat().st_mtime
            except OSError:
                continue
            newest = stamp if newest is None or stamp > newest else newest
    return None if newest is None else datetime.fromtimestamp(newest, UTC)


def short_list(names: Sequence[str], limit: int = 5) -> str:
    """'a, b, c' for a message; the full list stays in evidence."""
    shown = ", ".join(names[:limit])
    return shown + (", …" if len(names) > limit else "")
