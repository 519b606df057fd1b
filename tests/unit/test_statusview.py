"""The Qt-free view model: state, tooltip and localized rows from a posture report."""

from __future__ import annotations

from datetime import date

from agent.core.messages import msg
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.presentation.connect_gate import MENU_MAX, connect_gate
from agent.presentation.status_view import (
    CheckVerdict,
    DecisionInfo,
    Effect,
    TargetInfo,
    TrayState,
    build,
    checking,
    failed,
)


def _report(*statuses: tuple[str, Status], os_name: str = "windows") -> Report:
    checks = tuple(
        CheckResult(cid, st, msg("probe.unsupported", what=cid), {"device": "/dev/vda"},
                    None if st is Status.PASS else f"{cid}.unknown", 5)
        for cid, st in statuses)
    return Report("2026-11-27T12:00:00Z", HostInfo(os_name, "11", "pc", "x86_64"), checks)


def test_all_pass_is_compliant_and_connect_allowed() -> None:
    view = build(_report(("os_supported", Status.PASS), ("firewall", Status.PASS)), "ja")
    assert view.state is TrayState.COMPLIANT
    assert view.connect_allowed and view.connect_reason == ""
    assert all(r.fix_title is None and r.fix_steps == () for r in view.rows)
    assert "0" in view.tooltip and "2" in view.tooltip


def test_unknown_blocks_by_default_and_says_why() -> None:
    view = build(_report(("os_supported", Status.PASS), ("firewall", Status.UNKNOWN)), "ja")
    assert view.state is TrayState.BLOCKED
    assert not view.connect_allowed
    assert view.connect_reason == "上の印のついた項目を直すまで、接続はできません。"
    row = view.rows[0]  # what needs attention comes first
    assert (row.name, row.status_label, row.mark) == ("ファイアウォール", "確認できず", "?")
    assert row.fix_title and row.fix_steps  # the unknown remediation is shown
    assert "ファイアウォール" in view.tooltip


def test_warn_only_is_warning() -> None:
    view = build(_report(("os_supported", Status.PASS), ("screen_lock", Status.WARN)), "en")
    assert view.state is TrayState.WARNING and view.connect_allowed


def test_settings_uri_follows_the_os() -> None:
    r = _report(("disk_encryption", Status.FAIL))
    object.__setattr__(r.checks[0], "remediation", "disk_encryption")
    assert build(r, "en").rows[0].settings_uri == "ms-settings:deviceencryption"


def test_policy_decision_seam_staged_and_correlation() -> None:
    report = _report(("os_supported", Status.PASS), ("disk_encryption", Status.FAIL))
    decision = DecisionInfo(allowed=True, correlation_id="7F3K-Q2",
                            verdicts={"os_supported": CheckVerdict(Effect.OK),
                                      "disk_encryption": CheckVerdict(Effect.STAGED,
                                                                      date(2027, 4, 1))})
    view = build(report, "ja", decision)
    assert view.state is TrayState.WARNING
    assert view.correlation_id == "7F3K-Q2"
    assert view.rows[0].blocks_from == (
        "2027-04-01 から必須になります。それまでは注意の表示だけです。")
    assert view.connect_allowed


def test_policy_refusal_reason_is_shown() -> None:
    report = _report(("os_supported", Status.PASS))
    decision = DecisionInfo(allowed=False, correlation_id="X",
                            reason=msg("ui.connect.error"))
    view = build(report, "en", decision)
    assert view.state is TrayState.BLOCKED
    assert view.connect_reason == "Connect is off because the check failed."


def test_checking_keeps_previous_rows_and_failed_shows_the_error() -> None:
    prev = build(_report(("firewall", Status.FAIL)), "en")
    view = checking("en", prev)
    assert view.state is TrayState.CHECKING and view.rows == prev.rows
    assert not view.connect_allowed
    err = failed("ja", "RuntimeError: boom")
    assert err.state is TrayState.ERROR and err.error == "RuntimeError: boom"
    assert "RuntimeError: boom" in err.tooltip


def test_policy_decision_is_adapted_for_the_screen() -> None:
    """A staged check warns with its date, a blocking one blocks, report-only stays quiet."""
    from datetime import UTC, datetime

    from agent.policy.decision import decide
    from agent.policy.model import CheckRule, Enforce, Policy
    from agent.presentation.status_view import PolicyEvaluator, decision_info

    now = datetime(2026, 11, 27, tzinfo=UTC)
    policy = Policy("city", 3, now, now, 60, rules={
        "disk_encryption": CheckRule(Enforce.BLOCK, block_from=datetime(2026, 12, 1, tzinfo=UTC),
                                     block_from_date=date(2026, 12, 1)),
        "antivirus": CheckRule(Enforce.BLOCK),
        "firewall": CheckRule(Enforce.REPORT),
    })
    report = _report(("disk_encryption", Status.FAIL), ("antivirus", Status.FAIL),
                     ("firewall", Status.FAIL))
    decision = decide(report, policy, now)
    info = decision_info(decision)
    assert info.allowed is False and info.correlation_id == decision.correlation_id
    assert info.verdicts["disk_encryption"] == CheckVerdict(Effect.STAGED, date(2026, 12, 1))
    assert info.verdicts["antivirus"].effect is Effect.BLOCK
    assert info.verdicts["firewall"].effect is Effect.OK

    class _Eval:
        def __init__(self) -> None:
            self.report, self.decision = report, decision

    renewals: list[int] = []
    ev = PolicyEvaluator(_Eval, maintenance=lambda: renewals.append(1))  # type: ignore[arg-type]
    assert ev.decide(report) is None  # nothing evaluated yet
    got = ev.run()
    assert renewals == [1]  # the certificate renewal runs with every evaluation
    assert got is report and ev.decide(got) == info
    assert ev.decide(_report(("antivirus", Status.PASS))) is None  # a report it did not make


SIX = (("os_supported", Status.PASS), ("os_updates", Status.FAIL), ("disk_encryption", Status.FAIL),
       ("antivirus", Status.PASS), ("firewall", Status.WARN), ("screen_lock", Status.PASS))


def test_failing_items_first_by_urgency_and_a_summary_line() -> None:
    report = _report(*SIX)
    decision = DecisionInfo(False, "C", verdicts={
        "os_updates": CheckVerdict(Effect.STAGED, date(2027, 1, 1)),
        "disk_encryption": CheckVerdict(Effect.BLOCK), "firewall": CheckVerdict(Effect.WARN)})
    view = build(report, "ja", decision)
    assert [r.check_id for r in view.rows] == [
        "disk_encryption", "os_updates", "firewall", "os_supported", "antivirus", "screen_lock"]
    assert view.summary == "6項目中3項目に対応が必要です"
    assert build(report, "en", decision).summary == "3 of 6 items need attention"
    fine = build(_report(("os_supported", Status.PASS)), "ja")
    assert fine.summary == "1項目すべて問題ありません"
    assert checking("ja", view).summary == view.summary  # kept while re-checking


TWO = (TargetInfo("pc-a", "庁内PC A", "Office PC A"), TargetInfo("pc-b", "庁内PC B", "Office PC B"))


def test_connect_gate_is_the_one_rule() -> None:
    report = _report(*SIX)
    allowed = build(_report(("os_supported", Status.PASS)), "ja",
                    DecisionInfo(True, "C", targets=TWO))
    assert connect_gate(allowed, "ja").enabled
    assert connect_gate(allowed, "ja", target_id="pc-b").enabled
    assert not connect_gate(allowed, "ja", target_id="pc-z").enabled  # not in the policy
    running = connect_gate(allowed, "ja", session_active=True)
    assert not running.enabled and running.short == "接続中"
    wait = connect_gate(checking("ja", allowed), "ja")
    assert not wait.enabled and wait.short == "確認中です"
    broken = connect_gate(failed("ja", "boom"), "ja")
    assert not broken.enabled and "失敗" in broken.short
    none = build(_report(("os_supported", Status.PASS)), "en", DecisionInfo(True, "C"))
    assert connect_gate(none, "en").short == "no office PC registered"
    blocked = build(report, "ja", DecisionInfo(False, "C", targets=TWO, verdicts={
        "disk_encryption": CheckVerdict(Effect.BLOCK), "os_updates": CheckVerdict(Effect.WARN),
        "firewall": CheckVerdict(Effect.WARN)}))
    gate = connect_gate(blocked, "ja", target_id="pc-a")
    # The menu's line names the problem; it never points at "items marked above".
    assert not gate.enabled and gate.short == "ディスクの暗号化が必要です（ほか2件）"
    assert "上の" not in gate.short and len(gate.short) <= MENU_MAX
    assert gate.reason == "上の印のついた項目を直すまで、接続はできません。"  # the window's


def test_policy_refusal_without_rows_gives_a_short_line_too() -> None:
    view = build(_report(("os_supported", Status.PASS)), "en",
                 DecisionInfo(False, "X", reason=msg("ui.connect.error")))
    gate = connect_gate(view, "en")
    assert not gate.enabled and gate.short == "Connect is off because the check failed."
