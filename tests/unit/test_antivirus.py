"""antivirus check: one table of real situations per OS, read from tests/fixtures/antivirus/."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core import i18n
from agent.core.errors import ParseError
from agent.posture.checks.antivirus import check as antivirus
from agent.posture.checks.antivirus.parsers import parse_spctl_status
from agent.posture.context import ProcInfo
from agent.posture.engine import run_one
from agent.posture.model import CheckResult, Finding, Status
from agent.posture.security_center import decode_product_state
from agent.posture.settings import PostureSettings
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx

AV = FIXTURES / "antivirus"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _proc(name: str, *args: str, pid: int = 4242, exe: str | None = None) -> ProcInfo:
    exe = exe if exe is not None else f"/usr/sbin/{name}"
    return ProcInfo(pid, name, exe, (exe, *args))


def _run(os_name: str, **kw: Any) -> CheckResult:
    return run_one("antivirus", antivirus.check, make_ctx(os_name, **kw))


def _rendered(f: Finding | CheckResult) -> None:
    """Every summary renders in both languages and the evidence is plain JSON."""
    for lang in i18n.LANGS:
        text = i18n.render(f.summary, lang)
        assert "{" not in text and text != f.summary.key, text
    json.dumps(f.evidence)


# Linux ----------------------------------------------------------------------------------------


def _clamdscan(text: str) -> FakeRunner:
    return FakeRunner({("clamdscan", "--version"): Recorded(text.encode())})


def test_linux_nothing_running_fails() -> None:
    r = _run("linux", processes=lambda: [_proc("sshd")])
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.none", "antivirus.linux")
    _rendered(r)


def test_linux_clamd_fresh_via_clamdscan_fallback() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd")],
             runner=_clamdscan((AV / "linux/clamd_version_fresh.bin").read_bytes().decode()))
    assert r.status is Status.PASS, r
    assert r.summary.key == "antivirus.ok"
    ev = r.evidence["products"][0]
    assert ev["source"] == "clamdscan" and ev["database_version"] == 27500
    assert ev["signature_age_days"] == 0 and ev["on_access"] is False
    assert "socket_error" in ev  # why the socket was not used
    _rendered(r)


def test_linux_clamd_stale_names_the_date() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd")],
             runner=_clamdscan("ClamAV 1.4.6/27400/Tue Nov 10 08:00:00 2026\n"))
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.stale", "antivirus.linux_update")
    assert r.summary.params["date"] == "2026-11-10" and r.summary.params["max"] == 3
    _rendered(r)


def test_linux_threshold_comes_from_settings() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd")],
             settings=PostureSettings(max_av_signature_age_days=30),
             runner=_clamdscan("ClamAV 1.4.6/27400/Tue Nov 10 08:00:00 2026\n"))
    assert r.status is Status.PASS


def test_linux_clamd_without_database_date_is_unknown() -> None:
    text = (AV / "linux/clamdscan_version_no_daemon.txt").read_text()
    r = _run("linux", processes=lambda: [_proc("clamd")], runner=_clamdscan(text))
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.age_unreadable")
    _rendered(r)


def test_linux_clamd_without_socket_or_clamdscan_is_unknown() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd")], runner=FakeRunner())
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.source_missing"
    assert len(r.evidence["products"][0]["errors"]) == 2


def test_linux_database_dated_in_the_future_is_unknown() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd")],
             runner=_clamdscan("ClamAV 1.4.6/27600/Mon Dec  7 08:00:00 2026\n"))
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.date_in_future")


@pytest.fixture
def clamd_root(tmp_path: Path) -> Iterator[Path]:
    """A root whose clamd.conf names a socket that a thread answers like clamd 1.4.6 does."""
    (tmp_path / "etc/clamav").mkdir(parents=True)
    (tmp_path / "etc/clamav/clamd.conf").write_text(
        (AV / "linux/clamd.conf.debian12").read_text())
    sock_path = tmp_path / "var/run/clamav/clamd.ctl"
    sock_path.parent.mkdir(parents=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(sock_path))
    srv.listen(1)
    answer = (AV / "linux/clamd_version_fresh.bin").read_bytes()

    def loop() -> None:
        conn, _ = srv.accept()
        with conn:
            assert conn.recv(64) == b"zVERSION\0"
            conn.sendall(answer)

    threading.Thread(target=loop, daemon=True).start()
    yield tmp_path
    srv.close()


def test_linux_clamd_over_its_socket(clamd_root: Path) -> None:
    procs = [_proc("clamd", "--foreground=true", pid=700), _proc("clamonacc", pid=701)]
    r = _run("linux", processes=lambda: procs, root=clamd_root)
    assert r.status is Status.PASS, r
    ev = r.evidence["products"][0]
    assert ev["source"] == "socket" and ev["socket"] == "/var/run/clamav/clamd.ctl"
    assert ev["config"] == "/etc/clamav/clamd.conf"
    assert (ev["pid"], ev["on_access"], ev["version"]) == (700, True, "1.4.6")


def _mdatp(text: str) -> FakeRunner:
    return FakeRunner({("mdatp", "health", "--output", "json"): Recorded(text.encode())})


def test_linux_defender_for_endpoint() -> None:
    r = _run("linux", processes=lambda: [_proc("wdavdaemon", exe="/opt/microsoft/mdatp/sbin/"
                                                                 "wdavdaemon")],
             runner=_mdatp((AV / "linux/mdatp_health_ok.json").read_text()))
    assert r.status is Status.PASS and r.summary.params["product"] == antivirus.MDATP
    assert r.evidence["products"][0]["definitions_version"] == "1.441.215.0"


def test_linux_defender_for_endpoint_passive_fails() -> None:
    data = json.loads((AV / "linux/mdatp_health_ok.json").read_text())
    data["passiveModeEnabled"] = {"value": True, "scope": "local"}
    r = _run("linux", processes=lambda: [_proc("wdavdaemon")], runner=_mdatp(json.dumps(data)))
    assert (r.status, r.summary.key) == (Status.FAIL, "antivirus.off")


def test_linux_defender_minutes_ago_when_no_timestamp() -> None:
    data = json.loads((AV / "linux/mdatp_health_ok.json").read_text())
    del data["definitionsUpdated"]
    data["definitionsUpdatedMinutesAgo"] = 60 * 24 * 5
    r = _run("linux", processes=lambda: [_proc("wdavdaemon")], runner=_mdatp(json.dumps(data)))
    assert r.status is Status.FAIL and r.summary.params["age"] == 5


@pytest.mark.parametrize("proc", [
    _proc("sophos_threat_detector"), _proc("startd", exe="/opt/eset/efs/sbin/startd"),
    _proc("ds_am"), _proc("kesl"), _proc("mfetpd"), _proc("falcon-sensor")])
def test_linux_other_scanners_are_unknown(proc: ProcInfo) -> None:
    r = _run("linux", processes=lambda: [proc])
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.age_unreadable")
    _rendered(r)


def test_linux_one_protecting_product_is_enough() -> None:
    r = _run("linux", processes=lambda: [_proc("kesl"), _proc("clamd")],
             runner=_clamdscan((AV / "linux/clamd_version_fresh.bin").read_bytes().decode()))
    assert r.status is Status.PASS and r.evidence["protected_by"] == "ClamAV"


def test_linux_a_stale_product_beside_an_unreadable_one_is_unknown() -> None:
    r = _run("linux", processes=lambda: [_proc("clamd"), _proc("kesl")],
             runner=_clamdscan("ClamAV 1.4.6/27400/Tue Nov 10 08:00:00 2026\n"))
    assert r.status is Status.UNKNOWN


# Windows --------------------------------------------------------------------------------------


def _section(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((AV / "windows" / name).read_text(encoding="utf-8"))
    data.pop("_source")
    return data


def _win(section: dict[str, Any], **kw: Any) -> CheckResult:
    return _run("windows", snapshot={"antivirus": section}, **kw)


@pytest.mark.parametrize(("fixture", "status", "key", "product", "remediation"), [
    ("defender_win11_home.json", Status.PASS, "antivirus.ok", "Microsoft Defender", None),
    ("defender_passive_with_eset_ja.json", Status.PASS, "antivirus.ok_no_date", "ESET Security",
     None),
    ("trend_micro_stale_ja.json", Status.FAIL, "antivirus.stale_no_date",
     "ウイルスバスター クラウド", "antivirus.windows_update"),
    ("several_products_ja.json", Status.PASS, "antivirus.ok_no_date",
     "カスペルスキー スタンダード", None),
    ("server_no_security_center_defender_only.json", Status.PASS, "antivirus.ok",
     "Microsoft Defender", None),
    ("defender_stale.json", Status.FAIL, "antivirus.stale", "Microsoft Defender",
     "antivirus.windows_update"),
])
def test_windows_situations(fixture: str, status: Status, key: str, product: str,
                            remediation: str | None) -> None:
    r = _win(_section(fixture))
    assert (r.status, r.summary.key, r.summary.params.get("product"), r.remediation) == (
        status, key, product, remediation), r
    _rendered(r)


def test_windows_no_product_fails() -> None:
    r = _win(_section("no_product.json"))
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.none", "antivirus.windows")


def test_windows_stale_defender_names_date_and_age() -> None:
    r = _win(_section("defender_stale.json"))
    assert dict(r.summary.params) == {"product": "Microsoft Defender", "date": "2026-11-17",
                                      "age": 10, "max": 3}


def test_windows_several_products_keep_every_state_as_evidence() -> None:
    r = _win(_section("several_products_ja.json"))
    states = {p["product"]: p.get("state") for p in r.evidence["products"]}
    assert states["ノートン 360"] == "expired" and states["マカフィー リブセーフ"] == "snoozed"
    assert r.evidence["protected_by"] == "カスペルスキー スタンダード"


@pytest.mark.parametrize("mode", ["Passive Mode", "SxS Passive Mode", "EDR Block Mode",
                                  "Not running"])
def test_windows_defender_not_in_normal_mode_is_not_the_active_scanner(mode: str) -> None:
    section = _section("defender_win11_home.json")
    section["defender"]["AMRunningMode"] = mode
    r = _win(section)
    assert (r.status, r.summary.key, r.summary.params["mode"]) == (
        Status.FAIL, "antivirus.defender_not_active", mode)


def test_windows_defender_real_time_off_fails() -> None:
    section = _section("defender_win11_home.json")
    section["defender"]["RealTimeProtectionEnabled"] = False
    r = _win(section)
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.off", "antivirus.windows")


def test_windows_defender_age_only() -> None:
    section = _section("defender_stale.json")
    section["defender"]["AntivirusSignatureLastUpdated"] = None
    r = _win(section)
    assert r.status is Status.FAIL and r.summary.params["age"] == 10


def test_windows_defender_known_only_to_security_center_is_unknown() -> None:
    section = _section("defender_win11_home.json")
    section["defender"] = {"error": "Access denied"}
    r = _win(section)
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.age_unreadable")


def test_windows_one_product_as_object_not_list() -> None:
    section = _section("defender_passive_with_eset_ja.json")
    section["products"] = section["products"][1]  # ConvertTo-Json unwraps one-item arrays
    assert _win(section).status is Status.PASS


def test_windows_neither_source_is_unknown() -> None:
    r = _win({"products": {"error": "Invalid namespace"}, "defender": {"error": "Invalid class"}})
    assert r.status is Status.UNKNOWN


@pytest.mark.parametrize("section", [
    {"products": "garbage"}, {"products": [{"productState": 397568}]},
    {"products": [{"displayName": "X", "productState": "0xZZ"}]},
    {"defender": {"AMRunningMode": "Normal", "AntivirusEnabled": "yes"}},
    {"defender": {"AMRunningMode": "Normal", "AntivirusEnabled": True,
                  "RealTimeProtectionEnabled": True, "AntivirusSignatureLastUpdated": "gestern"}}])
def test_windows_malformed_sections_are_unknown(section: dict[str, Any]) -> None:
    assert _win(section).status is Status.UNKNOWN


@pytest.mark.parametrize(("value", "state", "microsoft", "up_to_date"), [
    (397568, "on", True, True),  # 0x061100 Defender on
    (393472, "off", True, True),  # 0x060100 Defender off
    (266240, "on", False, True),  # 0x041000 third party on
    (266256, "on", False, False),  # 0x041010 out of date
    (270336, "snoozed", False, True),  # 0x042000
    (0x43010, "expired", False, False),
    ("397584", "on", True, False),  # 0x061110, as a string
])
def test_product_state_bits(value: object, state: str, microsoft: bool, up_to_date: bool) -> None:
    s = decode_product_state(value)
    assert (s.state, s.microsoft, s.up_to_date) == (state, microsoft, up_to_date)


@pytest.mark.parametrize("value", [None, "x", -1, 1 << 30, 3.5j])
def test_product_state_garbage(value: object) -> None:
    with pytest.raises(ParseError):
        decode_product_state(value)


# macOS ----------------------------------------------------------------------------------------


def _mac_root(tmp: Path, bundles: dict[str, tuple[str, datetime]]) -> Path:
    for location, (fixture, modified) in bundles.items():
        p = tmp / location.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes((AV / "macos" / fixture).read_bytes())
        os.utime(p, (modified.timestamp(), modified.timestamp()))
    return tmp


def _spctl(name: str = "spctl_status_enabled.txt", code: int = 0) -> FakeRunner:
    return FakeRunner({("spctl", "--status"): Recorded((AV / "macos" / name).read_bytes(), code)})


def test_macos_sequoia_uses_the_new_location(tmp_path: Path) -> None:
    root = _mac_root(tmp_path, {
        antivirus.XPROTECT_NEW: ("xprotect_5322_info.plist", datetime(2026, 11, 20, tzinfo=UTC)),
        antivirus.XPROTECT_OLD: ("xprotect_5287_info.plist", datetime(2026, 8, 1, tzinfo=UTC))})
    r = _run("macos", root=root, runner=_spctl())
    assert (r.status, r.summary.key) == (Status.PASS, "antivirus.ok"), r
    ev = r.evidence["products"][0]
    assert (ev["version"], ev["signature_age_days"]) == ("5322", 7)
    assert r.evidence["gatekeeper"] is True and len(r.evidence["xprotect_bundles"]) == 2
    _rendered(r)


def test_macos_old_location_stale(tmp_path: Path) -> None:
    root = _mac_root(tmp_path, {
        antivirus.XPROTECT_OLD: ("xprotect_5287_info.plist", datetime(2026, 9, 1, tzinfo=UTC))})
    r = _run("macos", root=root, runner=_spctl())
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.stale", "antivirus.macos")
    assert r.summary.params["max"] == 30


def test_macos_gatekeeper_disabled_fails(tmp_path: Path) -> None:
    root = _mac_root(tmp_path, {
        antivirus.XPROTECT_OLD: ("xprotect_5322_info.plist", datetime(2026, 11, 25, tzinfo=UTC))})
    r = _run("macos", root=root, runner=_spctl("spctl_status_disabled.txt", code=1))
    assert (r.status, r.summary.key, r.remediation) == (
        Status.FAIL, "antivirus.gatekeeper_off", "antivirus.gatekeeper")


def test_macos_stale_xprotect_with_a_third_party_scanner_is_unknown(tmp_path: Path) -> None:
    root = _mac_root(tmp_path, {
        antivirus.XPROTECT_OLD: ("xprotect_5287_info.plist", datetime(2026, 9, 1, tzinfo=UTC))})
    r = _run("macos", root=root, runner=_spctl(),
             processes=lambda: [_proc("SophosScanD", exe="/Library/Sophos Anti-Virus/x")])
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.age_unreadable")


def test_macos_without_xprotect_is_unknown(tmp_path: Path) -> None:
    assert _run("macos", root=tmp_path, runner=_spctl()).status is Status.UNKNOWN


def test_spctl_lines() -> None:
    assert parse_spctl_status((AV / "macos/spctl_status_enabled.txt").read_text()) is True
    assert parse_spctl_status((AV / "macos/spctl_status_disabled.txt").read_text()) is False
    with pytest.raises(ParseError):
        parse_spctl_status("評価は有効です")


def test_windows_unreadable_defender_does_not_hide_a_protecting_product() -> None:
    section = _section("defender_passive_with_eset_ja.json")
    section["defender"] = {"AMRunningMode": None}
    r = _win(section)
    assert r.status is Status.PASS and r.evidence["protected_by"] == "ESET Security"
    assert any("error" in p for p in r.evidence["products"])


def test_windows_unreadable_defender_alone_is_unknown() -> None:
    section = _section("defender_win11_home.json")
    section["defender"]["AntivirusEnabled"] = "yes"
    assert _win(section).status is Status.UNKNOWN


def test_windows_server_reason_is_kept() -> None:
    r = _win({"products": None, "products_error": "Invalid namespace ",
              "defender": {"error": "Invalid class"}})
    assert r.status is Status.UNKNOWN and "Invalid namespace" in r.evidence["error"]


def test_windows_defender_without_any_signatures_fails() -> None:
    section = _section("defender_win11_home.json")
    section["defender"].update(AntivirusSignatureLastUpdated=None, AntivirusSignatureAge=65535)
    r = _win(section)
    assert (r.status, r.summary.key) == (Status.FAIL, "antivirus.stale_no_date")


# --- issue 17, finding 3: a stale Security Center entry never passes on its own ----------------

def test_uninstalled_antivirus_left_in_security_center_does_not_pass() -> None:
    r = _win(_section("stale_eset_entry_defender_passive_ja.json"))
    assert r.status is Status.UNKNOWN, r.summary
    assert r.summary.key == "antivirus.sc_program_missing"
    section = _section("stale_eset_entry_defender_passive_ja.json")
    del section["products"][1]["exe_exists"]  # a snapshot that could not check: still no pass
    r = _win(section)
    assert r.status is Status.UNKNOWN and r.summary.key == "antivirus.sc_program_unchecked"


def test_expired_antivirus_is_off() -> None:
    section = _section("defender_passive_with_eset_ja.json")
    section["products"][1]["productState"] = 0x043000
    r = _win(section)
    assert r.status is Status.FAIL and r.evidence["products"][-1]["state"] == "expired"


# --- issue 17, finding 10: XProtect on macOS 15+ where this user cannot read it ----------------

def test_macos_unreadable_new_location_says_so(tmp_path: Path) -> None:
    # As root a permission bit does not stop us, so an entry that cannot be read as a file
    # (a directory where Info.plist should be) stands for "Permission denied".
    (tmp_path / antivirus.XPROTECT_NEW.lstrip("/")).mkdir(parents=True)
    r = _run("macos", root=tmp_path, runner=_spctl())
    assert (r.status, r.summary.key) == (Status.UNKNOWN, "antivirus.xprotect_unreadable"), r
    assert r.summary.params["path"] == antivirus.XPROTECT_NEW
    _rendered(r)


def test_macos_unreadable_new_location_falls_back_to_the_old_copy(tmp_path: Path) -> None:
    root = _mac_root(tmp_path, {
        antivirus.XPROTECT_OLD: ("xprotect_5322_info.plist", datetime(2026, 11, 20, tzinfo=UTC))})
    (root / antivirus.XPROTECT_NEW.lstrip("/")).mkdir(parents=True)
    r = _run("macos", root=root, runner=_spctl())
    assert r.status is Status.PASS, r
    assert antivirus.XPROTECT_NEW in r.evidence["xprotect_unreadable"]
