"""screen_lock: placeholder until its probes land; reports unknown, never pass."""

from __future__ import annotations

from agent.posture.context import ProbeContext
from agent.posture.errors import Unsupported
from agent.posture.model import Finding


def check(ctx: ProbeContext) -> Finding:
    raise Unsupported("screen_lock")
