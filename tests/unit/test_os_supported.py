"""os_supported on recorded registry values, SystemVersion.plist files and os-release files."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.posture.checks.os_supported import check as os_supported
from agent.posture.model import Status
from tests.conftest import FIXTURES
from tests.fakes import make_ctx

F = FIXTURES / "os_supported"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _windows(name: str, now: datetime = NOW) -> os_supported.Finding:
    section = json.loads((F / name).read_text(encoding="utf-8"))
    return os_supported.check(make_ctx("windows", snapshot={"os": section}, now=now))


@pytest.mark.parametrize(("fixture", "status", "release"), [
    ("windows-11-25h2-home.json", Status.PASS, "Windows 11 25H2"),
    # 24H2 Home/Pro left support on 2026-10-13: ProductName still says "Windows 10 Pro".
    ("windows-11-24h2-pro.json", Status.FAIL, "Windows 11 24H2"),
    # 23H2 Enterprise ended 2026-11-10, three weeks before NOW.
    ("windows-11-23h2-enterprise.json", Status.FAIL, "Windows 11 23H2"),
    ("windows-10-22h2-home.json", Status.FAIL, "Windows 10 22H2"),
    ("windows-insider-canary.json", Status.PASS, None),
    ("windows-insider-beta.json", Status.UNKNOWN, None),
])
def test_windows_releases(fixture: str, status: Status, release: str | None) -> None:
    f = _windows(fixture)
    assert f.status is status
    assert f.evidence["windows"] == ("11" if json.loads((F / fixture).read_text())[
        "CurrentBuildNumber"] >= "22000" else "10")
    if release:
        assert f.summary.params["name"] == release


def test_windows_build_decides_not_product_name() -> None:
    f = _windows("windows-11-25h2-home.json")
    assert f.evidence["product_name_registry"] == "Windows 10 Home"
    assert f.evidence["windows"] == "11"
    assert f.evidence["version"] == "10.0.26200.7171"


def test_enterprise_edition_follows_the_longer_timeline() -> None:
    before = datetime(2026, 11, 1, tzinfo=UTC)
    assert _windows("windows-11-23h2-enterprise.json", before).status is Status.WARN
    assert _windows("windows-11-24h2-pro.json", before).status is Status.FAIL


def test_windows_garbage_build_is_unknown_not_pass() -> None:
    from agent.posture.engine import run_one

    ctx = make_ctx("windows", snapshot={"os": {"CurrentBuildNumber": "abc"}})
    assert run_one("os_supported", os_supported.check, ctx).status is Status.UNKNOWN


def _linux(tmp_path: Path, fixture: str) -> os_supported.Finding:
    (tmp_path / "etc").mkdir()
    shutil.copy(F / fixture, tmp_path / "etc/os-release")
    return os_supported.check(make_ctx("linux", root=tmp_path))


@pytest.mark.parametrize(("fixture", "status"), [
    ("os-release.debian12", Status.PASS),
    ("os-release.ubuntu2404", Status.PASS),
    ("os-release.rocky94", Status.PASS),  # 9.4 matches the "9" line
    ("os-release.ubuntu2004", Status.FAIL),
    ("os-release.debian-testing", Status.FAIL),  # no VERSION_ID: a rolling release
])
def test_linux_releases(tmp_path: Path, fixture: str, status: Status) -> None:
    assert _linux(tmp_path, fixture).status is status


def test_linux_falls_back_to_usr_lib_os_release(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    shutil.copy(F / "os-release.ubuntu2404", tmp_path / "usr/lib/os-release")
    f = os_supported.check(make_ctx("linux", root=tmp_path))
    assert f.status is Status.PASS and f.evidence["version_id"] == "24.04"


def test_unknown_distribution_fails_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=gentoo\nPRETTY_NAME="Gentoo Linux"\n')
    f = os_supported.check(make_ctx("linux", root=tmp_path))
    assert f.status is Status.FAIL and f.summary.params["name"] == "Gentoo Linux"


@pytest.mark.parametrize(("version", "status"), [
    ("15.1", Status.PASS), ("26.1", Status.PASS), ("14.7", Status.FAIL), ("10.15.7", Status.FAIL),
])
def test_macos_versions(tmp_path: Path, version: str, status: Status) -> None:
    target = tmp_path / "System/Library/CoreServices"
    target.mkdir(parents=True)
    shutil.copy(F / f"SystemVersion-{version}.plist", target / "SystemVersion.plist")
    f = os_supported.check(make_ctx("macos", root=tmp_path))
    assert f.status is status
    assert f.evidence["product_version"] == version


def test_macos_newer_than_table_passes() -> None:
    ctx = make_ctx("macos")
    assert os_supported.evaluate_macos("27.0", ctx).status is Status.PASS


def test_real_host_os_release() -> None:
    """This machine is Debian 12, supported until mid-2028."""
    if not Path("/etc/os-release").exists():
        pytest.skip("not a Linux host")
    f = os_supported.check(make_ctx("linux", root=Path("/")))
    assert f.evidence["id"]
    if (f.evidence["id"], f.evidence["version_id"]) == ("debian", "12"):
        assert f.status is Status.PASS
        assert f.evidence["end_of_support"] == "2028-06-30"


# --- issue 17, finding 5: LTSC, IoT LTSC and Server have their own end dates -------------------

@pytest.mark.parametrize(("fixture", "status", "name", "end"), [
    ("windows-10-ltsc-2021-enterprise.json", Status.PASS, "Windows 10 Enterprise LTSC 2021",
     "2027-01-12"),
    ("windows-10-iot-ltsc-2021.json", Status.PASS, "Windows 10 IoT Enterprise LTSC 2021",
     "2032-01-13"),
    ("windows-10-ltsc-2019-enterprise.json", Status.PASS, "Windows 10 Enterprise LTSC 2019",
     "2029-01-09"),
    ("windows-server-2025-standard.json", Status.PASS, "Windows Server 2025", "2034-11-14"),
])
def test_long_term_editions(fixture: str, status: Status, name: str, end: str) -> None:
    f = _windows(fixture)
    assert f.status is status, f.summary
    assert f.summary.params["name"] == name
    assert f.evidence["end_of_support"] == end


def test_ltsc_2021_ends_before_its_iot_sibling() -> None:
    later = datetime(2027, 2, 1, tzinfo=UTC)
    assert _windows("windows-10-ltsc-2021-enterprise.json", later).status is Status.FAIL
    assert _windows("windows-10-iot-ltsc-2021.json", later).status is Status.PASS


def test_unknown_long_term_build_is_unknown_not_a_ga_date() -> None:
    ctx = make_ctx("windows", snapshot={"os": {
        "CurrentBuildNumber": "20348", "UBR": 1, "EditionID": "EnterpriseS",
        "InstallationType": "Client"}}, now=NOW)
    assert os_supported.check(ctx).status is Status.UNKNOWN
