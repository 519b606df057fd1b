"""From a policy to what the posture engine runs: thresholds and the list of checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.policy import agent_version, clock, software
from agent.policy.model import Enforce, Policy
from agent.posture import registry
from agent.posture.context import ProbeContext
from agent.posture.model import Finding
from agent.posture.settings import PostureSettings

CheckFn = Callable[[ProbeContext], Finding]


def posture_settings(policy: Policy, base: PostureSettings | None = None) -> PostureSettings:
    """The policy's thresholds over the built-in defaults; one it omits keeps the default."""
    t = policy.thresholds
    changes: dict[str, Any] = {
        "max_pending_security_updates": t.max_pending_security_updates,
        "max_days_since_update": t.max_days_since_update,
        "max_av_signature_age_days": t.max_av_signature_age_days,
        "max_xprotect_age_days": t.max_xprotect_age_days,
        "max_screen_lock_idle_s": t.max_screen_lock_idle_s,
        "windows_min_ubr": dict(t.windows_min_ubr) if t.windows_min_ubr is not None else None,
        "macos_min_version": (dict(t.macos_min_version) if t.macos_min_version is not None
                              else None),
    }
    return dataclasses.replace(base or PostureSettings(),
                               **{k: v for k, v in changes.items() if v is not None})


def selected_checks(policy: Policy, clock_probe: clock.ClockProbe = clock.https_date,
                    version: str = __version__) -> list[tuple[str, CheckFn]]:
    """The built-in checks the policy does not switch off, then the checks it adds."""
    out: list[tuple[str, CheckFn]] = [
        (cid, fn) for cid, fn in registry.CHECKS if policy.rule(cid).enforce is not Enforce.OFF]

    def wanted(cid: str) -> bool:
        return cid in policy.rules and policy.rules[cid].enforce is not Enforce.OFF

    if wanted("forbidden_software"):
        rules = policy.forbidden_software
        out.append(("forbidden_software", lambda ctx: software.check_forbidden(ctx, rules)))
    if wanted("required_software"):
        req = policy.required_software
        out.append(("required_software", lambda ctx: software.check_required(ctx, req)))
    if wanted("clock_skew") and policy.clock_skew is not None:
        skew = policy.clock_skew
        out.append(("clock_skew", lambda ctx: clock.check_clock(ctx, skew, clock_probe)))
    if wanted("agent_version") and policy.agent_min_version is not None:
        minimum = policy.agent_min_version
        out.append(("agent_version", lambda _ctx: agent_version.check_version(version, minimum)))
    return out
