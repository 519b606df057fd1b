"""The minimum agent version a signed policy demands: below it, warn with the date from which it
blocks, then block (the policy's common ``block_after`` on [checks.agent_version])."""

from __future__ import annotations

from datetime import UTC, date, datetime

from agent.policy.checks import selected_checks
from agent.policy.decision import Outcome, decide_one
from agent.policy.schema import parse_policy
from agent.posture.model import Status
from tests.unit.test_policy_support import policy_text

STAGED = ('[checks.agent_version]\nmin_version = "1.2.0"\nenforce = "block"\n'
          "block_after = 2026-12-01\n")


def _finding(version: str) -> Status:
    policy = parse_policy(policy_text(extra=STAGED).encode())
    [(_cid, fn)] = [c for c in selected_checks(policy, version=version) if c[0] == "agent_version"]
    return fn(None).status  # type: ignore[arg-type]


def test_below_the_minimum_warns_then_blocks_after_the_date() -> None:
    policy = parse_policy(policy_text(extra=STAGED).encode())
    rule = policy.rule("agent_version")
    assert _finding("1.1.9") is Status.FAIL and _finding("1.2.0") is Status.PASS
    before = decide_one("agent_version", Status.FAIL, rule, datetime(2026, 11, 30, 14, 59,
                                                                    tzinfo=UTC))
    assert before.outcome is Outcome.WARN and before.blocks_from == date(2026, 12, 1)
    after = decide_one("agent_version", Status.FAIL, rule, datetime(2026, 11, 30, 15, 0,
                                                                   tzinfo=UTC))
    assert after.outcome is Outcome.BLOCK
