"""Report + policy -> decision: staged block_after, on_unknown both ways, report-only, off."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

import pytest

from agent.core.messages import msg
from agent.policy.checks import posture_settings, selected_checks
from agent.policy.decision import Outcome, decide, decide_one, decision_to_json
from agent.policy.model import CheckRule, Enforce, OnUnknown
from agent.policy.schema import parse_policy
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.posture.settings import PostureSettings
from tests.unit.test_policy_support import NOW, policy_text

BEFORE = datetime(2026, 11, 30, 14, 59, tzinfo=UTC)  # 23:59 JST on 30 Nov
AFTER = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 00:00 JST on 1 Dec


def report(**statuses: Status) -> Report:
    checks = tuple(CheckResult(cid, s, msg("probe.unsupported", what=cid), {}, None, 1)
                   for cid, s in statuses.items())
    return Report("2026-11-27T03:00:00Z", HostInfo("linux", "x", "h", "x86_64"), checks)


STAGED = CheckRule(Enforce.BLOCK, OnUnknown.BLOCK, AFTER, date(2026, 12, 1))


def test_staged_block_after_warns_before_and_blocks_after() -> None:
    before = decide_one("disk_encryption", Status.FAIL, STAGED, BEFORE)
    assert before.outcome is Outcome.WARN and before.blocks_from == date(2026, 12, 1)
    assert before.reason is not None and before.reason.key == "decision.blocks_from"
    assert dict(before.reason.params)["date"] == "2026-12-01"
    after = decide_one("disk_encryption", Status.FAIL, STAGED, AFTER)
    assert after.outcome is Outcome.BLOCK and after.blocks_from is None
    # a pass is a pass either way
    assert decide_one("disk_encryption", Status.PASS, STAGED, BEFORE).outcome is Outcome.OK


@pytest.mark.parametrize(("on_unknown", "enforce", "expected"), [
    (OnUnknown.BLOCK, Enforce.BLOCK, Outcome.BLOCK),
    (OnUnknown.WARN, Enforce.BLOCK, Outcome.WARN),
    (OnUnknown.BLOCK, Enforce.WARN, Outcome.WARN),
    (OnUnknown.WARN, Enforce.WARN, Outcome.WARN),
    (OnUnknown.BLOCK, Enforce.REPORT, Outcome.REPORT),
])
def test_on_unknown(on_unknown: OnUnknown, enforce: Enforce, expected: Outcome) -> None:
    d = decide_one("antivirus", Status.UNKNOWN, CheckRule(enforce, on_unknown), NOW)
    assert d.outcome is expected


@pytest.mark.parametrize(("status", "enforce", "expected"), [
    (Status.FAIL, Enforce.REPORT, Outcome.REPORT),
    (Status.FAIL, Enforce.WARN, Outcome.WARN),
    (Status.FAIL, Enforce.BLOCK, Outcome.BLOCK),
    (Status.FAIL, Enforce.OFF, Outcome.OFF),
    (Status.WARN, Enforce.BLOCK, Outcome.WARN),  # a raw warning never blocks
    (Status.PASS, Enforce.BLOCK, Outcome.OK),
])
def test_enforce_levels(status: Status, enforce: Enforce, expected: Outcome) -> None:
    assert decide_one("firewall", status, CheckRule(enforce), NOW).outcome is expected


def test_report_only_checks_never_change_the_verdict() -> None:
    text = policy_text().replace('enforce = "warn"\non_unknown = "warn"',
                                 'enforce = "report"\non_unknown = "block"')
    p = parse_policy(text.encode())
    r = report(os_supported=Status.PASS, os_updates=Status.PASS, disk_encryption=Status.PASS,
               antivirus=Status.PASS, firewall=Status.PASS, screen_lock=Status.FAIL)
    d = decide(r, p, NOW)
    assert d.allowed
    assert next(c for c in d.checks if c.id == "screen_lock").outcome is Outcome.REPORT
    # the raw status stays in the report: fail is still fail
    assert r.by_id()["screen_lock"].status is Status.FAIL


def test_decision_from_policy_and_json(caplog: pytest.LogCaptureFixture) -> None:
    p = parse_policy(policy_text().encode())
    r = report(os_supported=Status.PASS, os_updates=Status.FAIL, disk_encryption=Status.FAIL,
               antivirus=Status.PASS, firewall=Status.UNKNOWN)  # screen_lock missing
    with caplog.at_level(logging.INFO, logger="agent.policy.decision"):
        d = decide(r, p, BEFORE)
    assert not d.allowed
    outcomes = {c.id: c.outcome for c in d.checks}
    assert outcomes == {"os_supported": Outcome.OK, "os_updates": Outcome.BLOCK,
                        "disk_encryption": Outcome.WARN, "antivirus": Outcome.OK,
                        "firewall": Outcome.BLOCK, "screen_lock": Outcome.WARN}
    assert re.fullmatch(r"[A-Z2-7]{8}", d.correlation_id)
    assert d.correlation_id in caplog.text  # logged, so the help desk can find it
    doc = decision_to_json(d)
    disk = next(c for c in doc["checks"] if c["id"] == "disk_encryption")
    assert disk["blocks_from"] == "2026-12-01"
    assert "2026-12-01" in disk["reason"]["ja"] and "Disk encryption" in disk["reason"]["en"]
    assert len(doc["reasons"]) == 4 and doc["allowed"] is False
    assert decide(r, p, AFTER).checks[2].outcome is Outcome.BLOCK


def test_thresholds_fill_posture_settings() -> None:
    p = parse_policy(policy_text().encode())
    s = posture_settings(p)
    defaults = PostureSettings()
    assert s.max_days_since_update == 30 and s.windows_min_ubr == {26100: 4946}
    assert s.max_screen_lock_idle_s == 600
    assert s.max_av_signature_age_days == defaults.max_av_signature_age_days


def test_selected_checks_follow_the_policy() -> None:
    text = policy_text().replace('[checks.screen_lock]\nenforce = "warn"',
                                 '[checks.screen_lock]\nenforce = "off"')
    extra = ('[checks.agent_version]\nenforce = "report"\nmin_version = "0.1"\n'
             '[checks.forbidden_software]\n[[checks.forbidden_software.software]]\n'
             'name = "Winny"\nprocesses = ["Winny.exe"]\n')
    ids = [cid for cid, _ in selected_checks(parse_policy(text.replace(
        "[[targets]]", extra + "\n[[targets]]").encode()))]
    assert "screen_lock" not in ids
    assert ids[-2:] == ["forbidden_software", "agent_version"]
