"""agent_version: is this agent at least the version the policy asks for?"""

from __future__ import annotations

import re

from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.posture.dispatch import version_tuple
from agent.posture.model import Finding, Status

SOURCES: tuple[str, ...] = ()
_RELEASE = re.compile(r"\d+(?:\.\d+)*")


def release_tuple(version: str) -> tuple[int, ...]:
    """'1.2.3rc1+local' -> (1, 2, 3): the release part decides (a pre-release counts as it)."""
    m = _RELEASE.match(version.strip())
    if m is None:
        raise ParseError("agent version", version[:40])
    return version_tuple(m.group(0))


def _padded(v: tuple[int, ...], n: int) -> tuple[int, ...]:
    return v + (0,) * (n - len(v))


def check_version(current: str, minimum: str) -> Finding:
    have, want = release_tuple(current), version_tuple(minimum)
    n = max(len(have), len(want))
    evidence = {"agent_version": current, "min_version": minimum}
    if _padded(have, n) < _padded(want, n):
        return Finding(Status.FAIL, msg("agent_version.too_old", version=current,
                                        minimum=minimum), evidence, "agent_version.update")
    return Finding(Status.PASS, msg("agent_version.ok", version=current), evidence)
