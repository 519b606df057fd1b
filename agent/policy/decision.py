"""Report + policy -> decision: allowed or not, each check's outcome, reasons, a correlation ID.

A check's own status stays the raw finding; the policy's verdict lives here. Rules per check:
pass (or a raw warn) -> ok/warn; fail -> the check's ``enforce``; unknown -> ``on_unknown``
(block counts as a failure, warn only warns); ``report`` never affects the verdict; a ``block``
with ``block_after`` in the future only warns and says from when it will block.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from agent.core import i18n
from agent.core.messages import Message, msg
from agent.policy.model import CheckRule, Enforce, LoadedPolicy, OnUnknown, Policy
from agent.posture.model import Report, Status

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    OK = "ok"
    OFF = "off"  # the policy switched the check off
    REPORT = "report"  # failed, but the policy only reports it
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class CheckDecision:
    id: str
    status: Status  # raw
    enforce: Enforce
    on_unknown: OnUnknown
    outcome: Outcome
    blocks_from: date | None  # set when staged and not yet blocking
    reason: Message | None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    correlation_id: str
    policy_id: str
    serial: int
    decided_at: datetime
    checks: tuple[CheckDecision, ...]

    @property
    def reasons(self) -> tuple[CheckDecision, ...]:
        return tuple(c for c in self.checks if c.outcome in (Outcome.BLOCK, Outcome.WARN))


def new_correlation_id() -> str:
    """8 characters of base32 (40 random bits): short enough to read out over the phone."""
    return base64.b32encode(secrets.token_bytes(5)).decode("ascii")


def decide_one(check_id: str, status: Status, rule: CheckRule, now: datetime) -> CheckDecision:
    failing = status is Status.FAIL or (status is Status.UNKNOWN
                                        and rule.on_unknown is OnUnknown.BLOCK)
    if status is Status.PASS:
        outcome, reason = Outcome.OK, None
    elif rule.enforce is Enforce.OFF:
        outcome, reason = Outcome.OFF, None
    elif rule.enforce is Enforce.REPORT:
        outcome, reason = Outcome.REPORT, msg("decision.report_only", check=check_id)
    elif status is Status.WARN or not failing or rule.enforce is Enforce.WARN:
        key = "decision.unknown_warns" if status is Status.UNKNOWN else "decision.warns"
        outcome, reason = Outcome.WARN, msg(key, check=check_id)
    else:
        key = "decision.unknown_blocks" if status is Status.UNKNOWN else "decision.blocks"
        outcome, reason = Outcome.BLOCK, msg(key, check=check_id)
    blocks_from = None
    if outcome is Outcome.BLOCK and rule.block_from is not None and now < rule.block_from \
            and rule.block_from_date is not None:
        blocks_from = rule.block_from_date
        outcome = Outcome.WARN
        reason = msg("decision.blocks_from", check=check_id, date=blocks_from.isoformat())
    return CheckDecision(check_id, status, rule.enforce, rule.on_unknown, outcome, blocks_from,
                         reason)


def decide(report: Report, policy: Policy, now: datetime,
           correlation_id: str | None = None) -> Decision:
    found = report.by_id()
    decisions = []
    for c in report.checks:
        decisions.append(decide_one(c.id, c.status, policy.rule(c.id), now))
    # A check the policy requires but the report lacks is unknown (fail closed).
    for check_id, rule in policy.rules.items():
        if check_id not in found and rule.enforce is not Enforce.OFF:
            decisions.append(decide_one(check_id, Status.UNKNOWN, rule, now))
    allowed = all(d.outcome is not Outcome.BLOCK for d in decisions)
    decision = Decision(allowed, correlation_id or new_correlation_id(), policy.id, policy.serial,
                        now, tuple(decisions))
    log.info("decision %s: allowed=%s policy=%s serial=%d blocked=%s warned=%s",
             decision.correlation_id, allowed, policy.id, policy.serial,
             [d.id for d in decisions if d.outcome is Outcome.BLOCK],
             [d.id for d in decisions if d.outcome is Outcome.WARN])
    return decision


def render_reason(reason: Message, lang: str) -> str:
    """The check id in a reason becomes the check's name in that language."""
    params: dict[str, object] = dict(reason.params)
    if "check" in params:
        params["check"] = i18n.text(f"check.{params['check']}", lang)
    return i18n.text(reason.key, lang, **params)


def reasons_both(d: Decision) -> list[dict[str, str]]:
    """Why a decision blocks or warns, each reason in every language: {"ja": ..., "en": ...}."""
    return [{lang: render_reason(c.reason, lang) for lang in i18n.LANGS}
            for c in d.reasons if c.reason]


def decision_to_json(d: Decision) -> dict[str, Any]:
    return {
        "allowed": d.allowed,
        "correlation_id": d.correlation_id,
        "policy_id": d.policy_id,
        "policy_serial": d.serial,
        "decided_at": d.decided_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "summary": {lang: i18n.text("decision.allowed" if d.allowed else "decision.not_allowed",
                                    lang) for lang in i18n.LANGS},
        "checks": [{
            "id": c.id, "status": c.status.value, "enforce": c.enforce.value,
            "on_unknown": c.on_unknown.value, "outcome": c.outcome.value,
            "blocks_from": c.blocks_from.isoformat() if c.blocks_from else None,
            "reason": ({lang: render_reason(c.reason, lang) for lang in i18n.LANGS}
                       if c.reason else None),
        } for c in d.checks],
        "reasons": reasons_both(d),
    }


def policy_to_json(loaded: LoadedPolicy) -> dict[str, Any]:
    p = loaded.policy
    return {
        "status": "in_force",
        "id": p.id,
        "serial": p.serial,
        "demo": loaded.demo,
        "source": loaded.source,
        "path": loaded.path,
        "sha256": loaded.sha256,
        "signed_by": {"key_id": loaded.key_id, "anchor": loaded.signer},
        "not_before": p.not_before.isoformat().replace("+00:00", "Z"),
        "expires": p.expires.isoformat().replace("+00:00", "Z"),
        "recheck_interval_minutes": p.recheck_interval_minutes,
        "targets": [t.id for t in p.targets],
    }


def decision_lines(d: Decision, lang: str, *, demo: bool) -> list[str]:
    """The decision block under the check table: verdict, reasons, policy, reference code."""
    lines = [i18n.text("decision.allowed" if d.allowed else "decision.not_allowed", lang)]
    lines += [f"  - {render_reason(c.reason, lang)}" for c in d.checks
              if c.reason is not None and c.outcome in (Outcome.BLOCK, Outcome.WARN)]
    lines.append(i18n.text("decision.policy_line", lang, id=d.policy_id, serial=d.serial))
    if demo:
        lines.append(i18n.text("policy.show.demo", lang))
    lines.append(i18n.text("decision.correlation", lang, id=d.correlation_id))
    return lines
