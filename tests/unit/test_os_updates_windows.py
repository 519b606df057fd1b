"""os_updates on Windows: the snapshot's "updates" and "os" sections, Japanese titles included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.posture.checks.os_updates import check as os_updates
from agent.posture.checks.os_updates.windows import last_windows_patch, parse_updates_section
from agent.posture.engine import run_one
from agent.posture.model import Status
from agent.posture.settings import PostureSettings
from tests.conftest import FIXTURES
from tests.fakes import make_ctx

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _snap(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "os_updates" / name).read_text("utf-8"))
    return data


# These fixtures (November 2026) are judged by their history alone: no patch table. The table's
# own tests below use the build.UBR of windows_patches.py at a date it covers.
HISTORY_ONLY = PostureSettings(windows_patches=())


def _check(name: str, settings: PostureSettings | None = None) -> Any:
    return os_updates.check(make_ctx("windows", snapshot=_snap(name), now=NOW,
                                     settings=settings or HISTORY_ONLY))


def test_current_pc_passes_and_ignores_defender_msrt_and_drivers() -> None:
    f = _check("win11_25h2_ja_current.json")
    assert f.status is Status.PASS, f.summary
    assert f.evidence["last_update"]["kbs"] == ["KB5071001"]
    assert f.evidence["days_since_update"] == 15
    assert f.evidence["version"] == "10.0.26200.7171"


def test_title_kb_numbers_are_read_from_japanese_titles() -> None:
    facts = parse_updates_section(_snap("win11_25h2_ja_current.json")["updates"])
    kbs = [e.kbs for e in facts.history]
    assert ("KB2267602",) in kbs and ("KB890830",) in kbs and ("KB4052623",) in kbs
    assert () in kbs  # the driver has no KB
    last = last_windows_patch(facts.history)
    assert last is not None and "累積更新プログラム" in last.title


def test_failed_november_update_leaves_september_as_last_and_fails() -> None:
    f = _check("win11_25h2_ja_stale_reboot.json")
    assert f.status is Status.FAIL and f.summary.key == "os_updates.windows.stale"
    assert f.summary.params["date"] == "2026-09-10" and f.summary.params["days"] == 78
    assert f.remediation == "os_updates.windows"
    assert f.evidence["issues"] == ["os_updates.windows.stale",
                                    "os_updates.windows.auto_update_off",
                                    "os_updates.reboot_required"]


def test_disabled_service_fails_first() -> None:
    f = _check("win11_25h2_ja_service_disabled.json")
    assert f.status is Status.FAIL and f.remediation == "os_updates.service_disabled"


def test_below_policy_minimum_ubr_fails() -> None:
    settings = PostureSettings(windows_min_ubr={26200: 7300}, windows_patches=())
    f = _check("win11_25h2_ja_current.json", settings)
    assert f.status is Status.FAIL and f.summary.key == "os_updates.windows.below_min"
    assert f.summary.params == {"version": "26200.7171", "required": "26200.7300"}
    # A minimum for another build does not apply.
    assert _check("win11_25h2_ja_current.json",
                  PostureSettings(windows_min_ubr={26100: 9999}, windows_patches=())
                  ).status is Status.PASS


def test_auto_update_off_alone_warns() -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"]["no_auto_update"] = 1
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.WARN and f.remediation == "os_updates.auto_update_off"


def test_reboot_alone_warns() -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"]["reboot_required"] = True
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.WARN and f.remediation == "os_updates.reboot"


def test_no_history_is_unknown() -> None:
    f = _check("win11_25h2_ja_no_history.json")
    assert f.status is Status.UNKNOWN and f.summary.key == "os_updates.windows.no_history"


def test_defender_only_history_short_window_is_unknown() -> None:
    f = _check("win11_25h2_ja_defender_only_33d.json")
    assert f.status is Status.UNKNOWN
    assert f.summary.key == "os_updates.windows.history_too_short"


def test_defender_only_history_past_the_limit_fails() -> None:
    f = _check("win11_25h2_ja_defender_only_50d.json")
    assert f.status is Status.FAIL and f.summary.key == "os_updates.windows.none_since"


@pytest.mark.parametrize("updates", [
    {"wuauserv_start": 3, "no_auto_update": None, "reboot_required": False},  # no history
    {"wuauserv_start": "4", "no_auto_update": None, "reboot_required": False, "history": []},
    {"wuauserv_start": 3, "no_auto_update": None, "reboot_required": "no", "history": []},
    {"wuauserv_start": 3, "no_auto_update": None, "reboot_required": False,
     "history": [{"date": "yesterday", "operation": 1, "result_code": 2, "title": "x"}]},
    {"error": "Exception from HRESULT: 0x80240024"},
])
def test_malformed_sections_are_unknown(updates: dict[str, Any]) -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"] = updates
    r = run_one("os_updates", os_updates.check, make_ctx("windows", snapshot=snap, now=NOW))
    assert r.status is Status.UNKNOWN


def test_shared_snapshot_fixture_of_the_windows_script() -> None:
    """The snapshot fixture recorded for the PowerShell script (tests/fixtures/windows)."""
    snap = json.loads((FIXTURES / "windows" / "snapshot_windows11_pro_ja.json").read_text("utf-8"))
    f = os_updates.check(make_ctx("windows", snapshot=snap,
                                  now=datetime(2025, 3, 20, tzinfo=UTC)))
    assert f.status is Status.PASS and f.evidence["last_update"]["kbs"] == ["KB5053598"]
    assert os_updates.check(make_ctx("windows", snapshot=snap, now=NOW)).status is Status.FAIL


def test_history_query_error_is_unknown_but_a_disabled_service_still_fails() -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"]["history"] = None
    snap["updates"]["history_error"] = "Exception from HRESULT: 0x8024001E"
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.UNKNOWN and f.summary.key == "os_updates.windows.history_unreadable"
    assert f.evidence["history_error"].endswith("0x8024001E")
    snap["updates"]["wuauserv_start"] = 4
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.FAIL and f.remediation == "os_updates.service_disabled"


# --- issue 17, finding 1: the patch level is build.UBR, not "some KB succeeded lately" -----------

JAN_2026 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def _failing(**changes: Any) -> Any:
    snap = _snap("win11_24h2_ja_cu_failing_dotnet_ok.json")
    settings = PostureSettings(**changes) if changes else None
    return os_updates.check(make_ctx("windows", snapshot=snap, now=JAN_2026, settings=settings))


def test_failing_cumulative_updates_fail_although_dotnet_and_platform_updates_succeed() -> None:
    f = _failing()
    assert f.status is Status.FAIL, f.summary
    assert f.summary.key == "os_updates.windows.behind"
    # December's release (9 December) is past its 10-day grace period on 5 January.
    assert f.summary.params["required"] == "26100.7462"
    assert f.summary.params["kb"] == "KB5072033"
    assert f.evidence["patch_table"] == "used"
    # The failed cumulative updates are a finding of their own, listed in the evidence.
    assert "os_updates.windows.cumulative_failed" in f.evidence["issues"]
    failed = {e["kb"] for e in f.evidence["failed_updates"]}
    assert {"KB5066835", "KB5068861", "KB5072033"} <= failed
    # The Windows Security platform update does not count as a Windows patch.
    assert f.evidence["last_update"]["kbs"] != ["KB5007651"]


def test_current_ubr_passes_by_the_table() -> None:
    snap = _snap("win11_24h2_ja_cu_failing_dotnet_ok.json")
    snap["os"]["UBR"] = 7462
    snap["updates"]["history"] = snap["updates"]["history"][:2]
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=JAN_2026))
    assert f.status is Status.PASS, f.summary
    assert f.summary.key == "os_updates.windows.ok_patch_level"


def test_a_later_success_of_the_same_kb_clears_its_failure() -> None:
    snap = _snap("win11_24h2_ja_cu_failing_dotnet_ok.json")
    snap["os"]["UBR"] = 7462
    snap["updates"]["history"].insert(0, {
        "date": "2026-01-04T23:00:00Z", "operation": 1, "result_code": 2,
        "title": "2025-12 x64 ベース システム用 Windows 11 Version 24H2 の累積更新プログラム "
                 "(KB5072033)"})
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=JAN_2026))
    assert f.status is Status.PASS, f.summary
    assert "KB5072033" not in {e["kb"] for e in f.evidence["failed_updates"]}


def test_an_out_of_date_table_warns_and_leaves_the_history_to_decide() -> None:
    snap = _snap("win11_24h2_ja_cu_failing_dotnet_ok.json")
    later = datetime(2026, 6, 1, tzinfo=UTC)
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=later))
    assert f.evidence["patch_table"] == "out of date"
    assert "os_updates.windows.table_stale" in f.evidence["issues"]


def test_the_policy_table_replaces_the_shipped_one() -> None:
    from datetime import date

    from agent.posture.checks.os_updates.windows_patches import WindowsPatch
    table = (WindowsPatch(26100, 6584, date(2025, 9, 9), "KB5065426"),
             WindowsPatch(26100, 9000, date(2025, 12, 20), "KB9999999"))
    f = _failing(windows_patches=table)
    assert f.status is Status.FAIL and f.summary.params["kb"] == "KB9999999"


# --- issue 17, finding 2: a null date is data, not a crash ----------------------------------------


def test_history_entry_with_null_date_is_kept_and_does_not_crash() -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"]["history"].append({"date": None, "operation": 1, "result_code": 2,
                                       "title": "Intel - System - 1.2.3.4"})
    f = run_one("os_updates", os_updates.check,
                make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.PASS, f.summary
    facts = parse_updates_section(snap["updates"])
    assert facts.history is not None and facts.history[-1].date is None


def test_history_of_only_undated_entries_is_unknown_not_a_crash() -> None:
    snap = _snap("win11_25h2_ja_current.json")
    snap["updates"]["history"] = [{"date": None, "operation": 1, "result_code": 2,
                                   "title": "x (KB5000001)"}]
    f = run_one("os_updates", os_updates.check,
                make_ctx("windows", snapshot=snap, now=NOW, settings=HISTORY_ONLY))
    assert f.status is Status.UNKNOWN and f.summary.key == "os_updates.windows.no_history"
