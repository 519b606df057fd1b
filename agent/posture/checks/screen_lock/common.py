"""screen_lock: what the platform settings amount to, and the one decision over them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status


@dataclass(frozen=True)
class LockConfig:
    """What the platform settings amount to: is there a password lock, and after how long idle."""

    locks: bool  # a password is required once the lock engages
    lock_after_s: int | None  # idle seconds until locked; None = never
    facts: Mapping[str, Any] = field(default_factory=dict)  # raw values, for evidence


def evaluate(cfg: LockConfig, remediation: str, ctx: ProbeContext) -> Finding:
    limit = ctx.settings.max_screen_lock_idle_s
    evidence: Evidence = {**cfg.facts, "locks": cfg.locks, "lock_after_s": cfg.lock_after_s,
                          "max_idle_s": limit}
    if not cfg.locks:
        return Finding(Status.WARN, msg("screen_lock.off"), evidence, remediation)
    if cfg.lock_after_s is None:
        return Finding(Status.WARN, msg("screen_lock.never"), evidence, remediation)
    # Minutes are for people; the decision uses seconds. Round up a delay that is too long so
    # "16 minutes; should be within 15" never reads as "15; should be within 15".
    if cfg.lock_after_s > limit:
        return Finding(Status.WARN, msg("screen_lock.too_long",
                                        minutes=math.ceil(cfg.lock_after_s / 60),
                                        max_minutes=limit // 60), evidence, remediation)
    return Finding(Status.PASS, msg("screen_lock.ok", minutes=max(1, round(cfg.lock_after_s / 60))),
                   evidence)
