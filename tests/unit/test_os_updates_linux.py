"""os_updates on Linux: apt/dnf parsers on recorded outputs and the decision, with fake roots."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.errors import ParseError, ToolMissing, Unsupported
from agent.posture.checks.os_supported.check import parse_os_release
from agent.posture.checks.os_updates import check as os_updates
from agent.posture.checks.os_updates.apt import (
    apt_command,
    is_security_origin,
    parse_apt_simulation,
)
from agent.posture.checks.os_updates.dnf import parse_dnf_check_update
from agent.posture.checks.os_updates.linux import choose_manager
from agent.posture.model import Status
from agent.posture.settings import PostureSettings
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx

FIX = FIXTURES / "os_updates"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=43\n'
ALMA = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="10.1"\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="22"\n'


def _read(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


# --- apt parser ---------------------------------------------------------------------------------

def test_debian12_recorded_simulation_counts_security_by_origin() -> None:
    sim = parse_apt_simulation(_read("debian12_bookworm_dist_upgrade.txt"))
    assert len(sim.packages) == 138
    assert len(sim.security) == 83
    by_name = {p.name: p for p in sim.packages}
    assert by_name["libssl3"].security and by_name["libssl3"].installed == "3.0.19-1~deb12u2"
    # Both a point-release and a security origin: still a security fix.
    assert by_name["libgcrypt20"].origins == ("Debian:12.15/oldstable",
                                              "Debian-Security:12/oldstable-security")
    assert by_name["libgcrypt20"].security
    assert not by_name["base-files"].security  # Debian:12.15/oldstable only


def test_ubuntu_new_package_without_installed_version() -> None:
    sim = parse_apt_simulation(_read("ubuntu2204_install_curl.txt"))
    assert [(p.name, p.installed, p.security) for p in sim.packages] == [
        ("libcurl4", "7.81.0-1ubuntu1.17", True), ("curl", None, True)]


def test_apt_28_summary_wording_is_accepted() -> None:
    sim = parse_apt_simulation(_read("apt28_summary_new_wording.txt"))
    assert sim.security == ("git",)


@pytest.mark.parametrize("origin, security", [
    ("Debian-Security:12/oldstable-security", True),
    ("Ubuntu:22.04/jammy-security", True),
    ("UbuntuESMApps:22.04/jammy-apps-security", True),
    ("Ubuntu:22.04/jammy-updates", False),
    ("Debian:12.15/oldstable", False),
    ("security-tools-ppa:1.0/jammy", False),  # a name is not a pocket
])
def test_security_origin(origin: str, security: bool) -> None:
    assert is_security_origin(origin) is security


@pytest.mark.parametrize("text", [
    "", "Reading package lists...\n",
    "Inst libssl3 [1] (2 Debian-Security:12/oldstable-security [amd64])\n"])
def test_output_without_summary_is_not_nothing_to_do(text: str) -> None:
    with pytest.raises(ParseError):
        parse_apt_simulation(text)


def test_unexpected_inst_line_fails_closed() -> None:
    with pytest.raises(ParseError):
        parse_apt_simulation("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
                             "Inst garbled\n")


def test_apt_command_uses_the_test_root_as_apt_root(tmp_path: Path) -> None:
    assert apt_command(Path("/")) == ["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"]
    argv = apt_command(tmp_path)
    assert f"Dir={tmp_path}/" in argv and argv[-1] == "dist-upgrade"


# --- dnf parser ---------------------------------------------------------------------------------

def test_dnf_rows_wrapped_obsoleted_and_kernel_note() -> None:
    found = parse_dnf_check_update(_read("el10_dnf_check_update_security.txt"), 100)
    assert found.packages == (
        "almalinux-gpg-keys.x86_64", "c-ares.x86_64", "cloud-init.noarch", "coreutils.x86_64",
        "dracut.x86_64", "python-bugzilla-develdashboardfixes.noarch", "python3-pip.noarch")
    assert found.kernel_reboot_pending


def test_dnf_exit_codes_must_agree_with_rows() -> None:
    assert parse_dnf_check_update("", 0).packages == ()
    with pytest.raises(ParseError):
        parse_dnf_check_update("", 100)
    with pytest.raises(ParseError):
        parse_dnf_check_update("openssl.x86_64  1:3.2.2-16.el10  baseos\n", 0)
    with pytest.raises(ParseError):
        parse_dnf_check_update("\x00\xff garbage {[\n", 0)
    with pytest.raises(ParseError):
        parse_dnf_check_update("", 1)


# --- manager choice -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, tools, manager", [
    (DEBIAN, {"apt-get": True, "dnf": False}, "apt"),
    (MINT, {"apt-get": True, "dnf": False}, "apt"),
    (FEDORA, {"apt-get": False, "dnf": True}, "dnf"),
    (ALMA, {"apt-get": False, "dnf": True}, "dnf"),
    ('ID=someos\n', {"apt-get": False, "dnf": True}, "dnf"),
])
def test_choose_manager(text: str, tools: dict[str, bool], manager: str) -> None:
    assert choose_manager(parse_os_release(text), tools) == manager


def test_choose_manager_missing_tool_or_unknown_family() -> None:
    with pytest.raises(ToolMissing):
        choose_manager(parse_os_release(DEBIAN), {"apt-get": False, "dnf": True})
    with pytest.raises(Unsupported):
        choose_manager(parse_os_release("ID=arch\n"), {"apt-get": False, "dnf": False})


# --- the whole Linux check on a fake root -------------------------------------------------------

def _root(tmp: Path, os_release: str = DEBIAN, lists_age_days: float | None = 1,
          reboot: bool = False) -> Path:
    (tmp / "etc").mkdir(parents=True)
    (tmp / "etc/os-release").write_text(os_release)
    if lists_age_days is not None:
        lists = tmp / "var/lib/apt/lists"
        lists.mkdir(parents=True)
        for name in ("deb.debian.org_debian_dists_bookworm_InRelease",
                     "deb.debian.org_debian-security_dists_bookworm-security_InRelease"):
            (lists / name).write_text("x")
        stamp = (NOW - timedelta(days=lists_age_days)).timestamp()
        os.utime(lists / "deb.debian.org_debian-security_dists_bookworm-security_InRelease",
                 (stamp, stamp))
        os.utime(lists / "deb.debian.org_debian_dists_bookworm_InRelease",
                 (stamp - 86400 * 100, stamp - 86400 * 100))  # the newest file counts
    if reboot:
        (tmp / "var/run").mkdir(parents=True)
        (tmp / "var/run/reboot-required").write_text("*** System restart required ***\n")
        (tmp / "var/run/reboot-required.pkgs").write_text("linux-image-6.1.0-41-amd64\nlibc6\n")
    return tmp


def _apt(stdout: str) -> FakeRunner:
    return FakeRunner({("apt-get",): Recorded(stdout.encode())})


UP_TO_DATE = "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
ONLY_POINT = ("1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
              "Inst tzdata [2025b-0+deb12u1] (2025b-0+deb12u2 Debian:12.15/oldstable [all])\n")


def test_recorded_debian_fails_with_security_count(tmp_path: Path) -> None:
    ctx = make_ctx("linux", runner=_apt(_read("debian12_bookworm_dist_upgrade.txt")),
                   root=_root(tmp_path), now=NOW)
    f = os_updates.check(ctx)
    assert f.status is Status.FAIL and f.remediation == "os_updates.linux"
    assert f.evidence["pending_security"] == 83 and f.evidence["pending_total"] == 138
    assert f.evidence["security_packages"][:2] == ["libgcrypt20-dev", "libgcrypt20"]
    assert f.summary.params["count"] == 83


def test_up_to_date_passes(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("linux", runner=_apt(UP_TO_DATE), root=_root(tmp_path), now=NOW))
    assert f.status is Status.PASS and f.summary.key == "os_updates.linux.up_to_date"
    assert f.evidence["metadata_age_days"] == 1


def test_only_non_security_updates_pass(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("linux", runner=_apt(ONLY_POINT), root=_root(tmp_path), now=NOW))
    assert f.status is Status.PASS and f.summary.params["total"] == 1


def test_security_within_policy_limit_warns(tmp_path: Path) -> None:
    ctx = make_ctx("linux", runner=_apt(_read("ubuntu2204_install_curl.txt")),
                   root=_root(tmp_path), now=NOW,
                   settings=PostureSettings(max_pending_security_updates=5))
    f = os_updates.check(ctx)
    assert f.status is Status.WARN and f.summary.key == "os_updates.linux.security_within_limit"


def test_stale_lists_make_a_clean_result_unknown(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("linux", runner=_apt(UP_TO_DATE),
                                  root=_root(tmp_path, lists_age_days=60), now=NOW))
    assert f.status is Status.UNKNOWN and f.remediation == "os_updates.linux_refresh"
    assert f.summary.params == {"days": 60, "limit": 40}


def test_stale_lists_with_known_security_updates_still_fail(tmp_path: Path) -> None:
    ctx = make_ctx("linux", runner=_apt(_read("debian12_bookworm_dist_upgrade.txt")),
                   root=_root(tmp_path, lists_age_days=60), now=NOW)
    f = os_updates.check(ctx)
    assert f.status is Status.FAIL
    assert f.evidence["issues"] == ["os_updates.linux.security_pending",
                                    "os_updates.linux.lists_stale"]


def test_never_downloaded_lists_are_unknown(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("linux", runner=_apt(UP_TO_DATE),
                                  root=_root(tmp_path, lists_age_days=None), now=NOW))
    assert f.status is Status.UNKNOWN and f.summary.key == "os_updates.linux.lists_missing"


def test_reboot_required_warns_with_packages(tmp_path: Path) -> None:
    f = os_updates.check(make_ctx("linux", runner=_apt(UP_TO_DATE),
                                  root=_root(tmp_path, reboot=True), now=NOW))
    assert f.status is Status.WARN and f.remediation == "os_updates.reboot"
    assert f.evidence["reboot_packages"] == ["linux-image-6.1.0-41-amd64", "libc6"]


def test_apt_error_exit_is_unknown_not_pass(tmp_path: Path) -> None:
    runner = FakeRunner({("apt-get",): Recorded(b"", 100, b"E: Unmet dependencies.\n")})
    from agent.posture.engine import run_one
    r = run_one("os_updates", os_updates.check,
                make_ctx("linux", runner=runner, root=_root(tmp_path), now=NOW))
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.command_failed"


# --- dnf through the check ----------------------------------------------------------------------

def _dnf_root(tmp: Path, age_days: float = 1) -> Path:
    root = _root(tmp, os_release=ALMA, lists_age_days=None)
    repomd = root / "var/cache/dnf/baseos-0123456789abcdef/repodata/repomd.xml"
    repomd.parent.mkdir(parents=True)
    repomd.write_text("<repomd/>")
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(repomd, (stamp, stamp))
    return root


def test_dnf_pending_security_fails_and_notes_the_kernel(tmp_path: Path) -> None:
    runner = FakeRunner({
        ("dnf",): Recorded(_read("el10_dnf_check_update_security.txt").encode(), 100),
        ("needs-restarting",): Recorded(b"Reboot is required to fully utilize these updates.\n", 1),
    })
    f = os_updates.check(make_ctx("linux", runner=runner, root=_dnf_root(tmp_path), now=NOW))
    assert f.status is Status.FAIL and f.evidence["pending_security"] == 7
    assert f.evidence["reboot_required"] is True and f.evidence["pending_total"] is None
    assert ("dnf", "-q", "-C", "check-update", "--security") in runner.calls


def test_dnf_nothing_pending_passes(tmp_path: Path) -> None:
    runner = FakeRunner({("dnf",): Recorded(b"", 0)})  # needs-restarting not installed
    f = os_updates.check(make_ctx("linux", runner=runner, root=_dnf_root(tmp_path), now=NOW))
    assert f.status is Status.PASS


def test_dnf_error_is_unknown(tmp_path: Path) -> None:
    runner = FakeRunner({("dnf",): Recorded(b"", 1, b"Error: Cache-only enabled but no cache\n")})
    from agent.posture.engine import run_one
    r = run_one("os_updates", os_updates.check,
                make_ctx("linux", runner=runner, root=_dnf_root(tmp_path), now=NOW))
    assert r.status is Status.UNKNOWN
