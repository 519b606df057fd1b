"""From a policy to what the posture engine runs: its settings and the list of checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.policy import agent_version, clock, schema, software
from agent.policy.model import Enforce, Policy
from agent.posture import registry
from agent.posture.context import ProbeContext
from agent.posture.model import Finding
from agent.posture.settings import PostureSettings

CheckFn = Callable[[ProbeContext], Finding]


def posture_settings(policy: Policy, base: PostureSettings | None = None) -> PostureSettings:
    """The policy's values over the built-in defaults; a key it omits keeps the default.

    Which key sets which setting, and how (replace, per check, merged table), is the key's own
    definition in ``schema.SECTIONS``; nothing here names a key."""
    settings = base or PostureSettings()
    changes: dict[str, Any] = {}
    for path, values in policy.values.items():
        section = schema.SECTIONS[path]
        for key in section.keys:
            if key.setting is None or key.field.key not in values:
                continue
            value = values[key.field.key]
            if key.merge is not None:
                current = changes.get(key.setting, getattr(settings, key.setting))
                value = key.merge(current, value, section.check_id)
            changes[key.setting] = value
    return dataclasses.replace(settings, **changes)


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
