"""os_updates on macOS: Software Update's plist (XML and binary) and SystemVersion.plist."""

from __future__ import annotations

import plistlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.core.errors import ParseError
from agent.posture.checks.os_updates import check as os_updates
from agent.posture.checks.os_updates.macos import (
    SOFTWARE_UPDATE_PLIST,
    SYSTEM_VERSION_PLIST,
    parse_software_update_plist,
)
from agent.posture.engine import run_one
from agent.posture.model import Finding, Status
from agent.posture.settings import PostureSettings
from tests.conftest import FIXTURES
from tests.fakes import make_ctx

FIX = FIXTURES / "os_updates"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _root(tmp: Path, software_update: str, system_version: str) -> Path:
    for rel, name in ((SOFTWARE_UPDATE_PLIST, software_update), (SYSTEM_VERSION_PLIST,
                                                                  system_version)):
        target = tmp / rel.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIX / name, target)
    return tmp


def _check(tmp: Path, su: str, sv: str, now: datetime = NOW,
           settings: PostureSettings | None = None) -> Finding:
    return os_updates.check(make_ctx("macos", root=_root(tmp, su, sv), now=now,
                                     settings=settings))


def test_recorded_xml_plist_parses() -> None:
    facts = parse_software_update_plist((FIX / "macos13_softwareupdate_no_updates.plist")
                                        .read_bytes())
    assert facts.automatic_check and facts.critical_update_install  # absent key: Apple default
    assert facts.last_successful == datetime(2023, 5, 4, 21, 40, 12, tzinfo=UTC)
    assert facts.recommended_count == 0


def test_recorded_plist_checked_recently_passes(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos13_softwareupdate_no_updates.plist",
               "macos13_3_1_SystemVersion.plist", now=datetime(2023, 5, 10, tzinfo=UTC))
    assert f.status is Status.PASS and f.summary.params["version"] == "13.3.1"


def test_recorded_plist_checked_long_ago_fails(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos13_softwareupdate_no_updates.plist",
               "macos13_3_1_SystemVersion.plist")
    assert f.status is Status.FAIL and f.summary.key == "os_updates.macos.check_stale"


def test_counter_without_list_still_fails(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos13_softwareupdate_one_update_counter_only.plist",
               "macos13_3_1_SystemVersion.plist", now=datetime(2023, 5, 10, tzinfo=UTC))
    assert f.status is Status.FAIL and f.summary.params["count"] == 1


def test_binary_plist_with_pending_updates_fails_and_names_them(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos26_softwareupdate_pending_binary.plist",
               "macos26_6_1_SystemVersion.plist")
    assert f.status is Status.FAIL and f.summary.key == "os_updates.macos.pending"
    assert "macOS Tahoe 26.6.2" in str(f.summary.params["names"])
    assert f.remediation == "os_updates.macos"
    assert "os_updates.macos.security_responses_off" in f.evidence["issues"]
    assert f.evidence["automatically_install_macos_updates"] is False


def test_current_mac_passes(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos26_softwareupdate_current_binary.plist",
               "macos26_6_2_SystemVersion.plist")
    assert f.status is Status.PASS and f.evidence["days_since_check"] == 1


def test_below_policy_minimum_fails(tmp_path: Path) -> None:
    f = _check(tmp_path, "macos26_softwareupdate_current_binary.plist",
               "macos26_6_1_SystemVersion.plist",
               settings=PostureSettings(macos_min_version={26: "26.6.2"}))
    assert f.status is Status.FAIL and f.summary.key == "os_updates.macos.below_min"


def _custom(tmp: Path, **changes: object) -> Path:
    data = plistlib.loads((FIX / "macos26_softwareupdate_current_binary.plist").read_bytes())
    data.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    _root(tmp, "macos26_softwareupdate_current_binary.plist", "macos26_6_2_SystemVersion.plist")
    (tmp / SOFTWARE_UPDATE_PLIST.lstrip("/")).write_bytes(plistlib.dumps(data))
    return tmp


def test_security_responses_off_warns(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("macos", root=_custom(tmp_path, CriticalUpdateInstall=False),
                                  now=NOW))
    assert f.status is Status.WARN and f.remediation == "os_updates.macos_auto"


def test_automatic_check_off_warns(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("macos", root=_custom(tmp_path, AutomaticCheckEnabled=0),
                                  now=NOW))
    assert f.status is Status.WARN and f.summary.key == "os_updates.macos.auto_check_off"


def test_never_checked_is_unknown(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("macos", root=_custom(tmp_path, LastSuccessfulDate=None),
                                  now=NOW))
    assert f.status is Status.UNKNOWN and f.summary.key == "os_updates.macos.never_checked"


@pytest.mark.parametrize("data", [b"", b"\x00\xffgarbage", plistlib.dumps(["a list"]),
                                  plistlib.dumps({"LastSuccessfulDate": "yesterday"}),
                                  plistlib.dumps({"CriticalUpdateInstall": "yes"}),
                                  plistlib.dumps({"RecommendedUpdates": ["x"]})])
def test_malformed_plist_raises(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_software_update_plist(data)


def test_missing_plist_is_unknown(tmp_path: Path) -> None:
    r = run_one("os_updates", os_updates.check, make_ctx("macos", root=tmp_path, now=NOW))
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.source_missing"
