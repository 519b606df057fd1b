"""firewall: parsers on recorded outputs, the Linux source combination, Windows and macOS tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.core.errors import ParseError, ProbeTimeout
from agent.posture.checks.firewall import check as firewall
from agent.posture.checks.firewall import linux as fw_linux
from agent.posture.checks.firewall import macos as fw_macos
from agent.posture.checks.firewall import windows as fw_windows
from agent.posture.engine import run_one
from agent.posture.model import Status
from agent.presentation import remediation
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx

FW = FIXTURES / "firewall"


def _text(name: str) -> str:
    return (FW / name).read_text(encoding="utf-8")


def _bytes(name: str) -> bytes:
    return (FW / name).read_bytes()


# --- nftables -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "dropping"), [
    ("nft_empty_debian12_host.json", ()),
    ("nft_inet_policy_accept.json", ()),
    ("nft_inet_policy_drop.json", ("inet filter input",)),
    ("nft_ip_ends_with_reject.json", ("ip filter input",)),
    ("nft_policy_drop_but_accept_all_rule.json", ()),
    ("ufw_enabled_iptables_nft.json", ("ip filter INPUT", "ip6 filter INPUT")),
])
def test_nft_ruleset(fixture: str, dropping: tuple[str, ...]) -> None:
    assert fw_linux.parse_nft_ruleset(_text(fixture)).dropping_chains == dropping


def test_nft_output_and_forward_chains_do_not_count() -> None:
    data = {"nftables": [
        {"metainfo": {"json_schema_version": 1}},
        {"chain": {"family": "inet", "table": "t", "name": "out", "type": "filter",
                   "hook": "output", "prio": 0, "policy": "drop"}},
        {"chain": {"family": "bridge", "table": "t", "name": "in", "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
    ]}
    parsed = fw_linux.parse_nft_ruleset(json.dumps(data))
    assert parsed.dropping_chains == () and parsed.input_chains == ()


def test_conditional_drop_at_the_end_is_not_a_default_deny() -> None:
    data = {"nftables": [
        {"chain": {"family": "ip", "table": "f", "name": "in", "type": "filter",
                   "hook": "input", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "f", "chain": "in", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                       "right": 23}}, {"drop": None}]}},
    ]}
    assert fw_linux.parse_nft_ruleset(json.dumps(data)).dropping_chains == ()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"nftables": []}', '{"nftables": [1]}'])
def test_nft_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        fw_linux.parse_nft_ruleset(text)


# --- ufw ----------------------------------------------------------------------------------------

def test_ufw_conf_and_status_recorded() -> None:
    assert fw_linux.parse_ufw_conf(_text("ufw_conf_disabled_debian12.conf")) is False
    assert fw_linux.parse_ufw_conf(_text("ufw_conf_enabled.conf")) is True
    assert fw_linux.parse_ufw_status(_text("ufw_status_active.txt")) is True
    assert fw_linux.parse_ufw_status(_text("ufw_status_active_verbose.txt")) is True
    assert fw_linux.parse_ufw_status(_text("ufw_status_inactive.txt")) is False
    with pytest.raises(ParseError):
        fw_linux.parse_ufw_conf("LOGLEVEL=low\n")
    with pytest.raises(ParseError):
        fw_linux.parse_ufw_conf("ENABLED=maybe\n")
    with pytest.raises(ParseError):
        fw_linux.parse_ufw_status(_text("ufw_status_non_root.txt"))


# --- Linux: the sources together ----------------------------------------------------------------

NFT = ("nft", "-j", "list", "ruleset")
UFW = ("ufw", "status")
FIREWALLD = ("firewall-cmd", "--state")
DENIED_NFT = Recorded(b"", 1, b"")
DENIED_UFW = Recorded(b"", 1, b"")


def _root(tmp_path: Path, ufw_conf: str | None) -> Path:
    if ufw_conf is not None:
        conf = tmp_path / "etc/ufw/ufw.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(_text(ufw_conf))
    return tmp_path


def _linux(tmp_path: Path, answers: dict[tuple[str, ...], Any], ufw_conf: str | None = None):
    ctx = make_ctx("linux", runner=FakeRunner(answers), root=_root(tmp_path, ufw_conf))
    return run_one("firewall", firewall.check, ctx)


def _non_root() -> dict[tuple[str, ...], Any]:
    return {NFT: Recorded(b"", 1, _bytes("nft_stderr_non_root.txt")),
            UFW: Recorded(b"", 1, _bytes("ufw_status_non_root.txt"))}


def test_this_host_empty_ruleset_and_ufw_inactive_fails(tmp_path: Path) -> None:
    r = _linux(tmp_path, {NFT: Recorded(_bytes("nft_empty_debian12_host.json")),
                          UFW: Recorded(_bytes("ufw_status_inactive.txt"))},
               "ufw_conf_disabled_debian12.conf")
    assert r.status is Status.FAIL
    assert r.summary.key == "firewall.linux_off"
    assert r.remediation == "firewall.linux"
    assert r.evidence["sources"]["firewalld"]["state"] == "missing"


def test_root_sees_a_dropping_ruleset(tmp_path: Path) -> None:
    r = _linux(tmp_path, {NFT: Recorded(_bytes("nft_inet_policy_drop.json")),
                          UFW: Recorded(_bytes("ufw_status_inactive.txt"))},
               "ufw_conf_disabled_debian12.conf")
    assert r.status is Status.PASS and r.summary.params["sources"] == "nftables"


def test_non_root_relies_on_ufw_conf(tmp_path: Path) -> None:
    r = _linux(tmp_path, _non_root(), "ufw_conf_enabled.conf")
    assert r.status is Status.PASS
    assert r.evidence["sources"]["nftables"]["state"] == "denied"
    assert r.evidence["sources"]["ufw"] == {"state": "active", "detail": "/etc/ufw/ufw.conf"}


def test_non_root_with_ufw_off_fails_and_says_rules_were_not_visible(tmp_path: Path) -> None:
    r = _linux(tmp_path, _non_root(), "ufw_conf_disabled_debian12.conf")
    assert r.status is Status.FAIL
    assert r.summary.key == "firewall.linux_off_partial"


def test_ufw_status_wins_over_the_boot_setting(tmp_path: Path) -> None:
    r = _linux(tmp_path, {NFT: DENIED_NFT, UFW: Recorded(_bytes("ufw_status_inactive.txt"))},
               "ufw_conf_enabled.conf")
    assert r.evidence["sources"]["ufw"]["state"] == "inactive"
    assert r.status is Status.FAIL


def test_nothing_readable_is_unknown(tmp_path: Path) -> None:
    r = _linux(tmp_path, {})  # no tool on PATH, no ufw.conf
    assert r.status is Status.UNKNOWN
    assert r.summary.key == "firewall.linux_unreadable"
    assert r.remediation == "firewall.unknown"


def test_non_root_without_ufw_conf_is_unknown(tmp_path: Path) -> None:
    r = _linux(tmp_path, _non_root())
    assert r.status is Status.UNKNOWN
    assert r.evidence["sources"]["ufw"]["state"] == "denied"


@pytest.mark.parametrize(("answer", "state", "status"), [
    (Recorded(b"running\n"), "active", Status.PASS),
    (Recorded(b"", 252, b"not running\n"), "inactive", Status.FAIL),
    (Recorded(b"running\n", 1, b""), "error", Status.UNKNOWN),  # exit code decides, not text
    (Recorded(b"\x00garbage", 0), "error", Status.UNKNOWN),
])
def test_firewalld_state(tmp_path: Path, answer: Recorded, state: str, status: Status) -> None:
    r = _linux(tmp_path, {FIREWALLD: answer})
    assert r.evidence["sources"]["firewalld"]["state"] == state
    assert r.status is status


def test_a_timeout_in_one_source_leaves_the_others(tmp_path: Path) -> None:
    def slow(argv: Any) -> Recorded:
        raise ProbeTimeout("nft", 1.0)

    r = _linux(tmp_path, {NFT: slow}, "ufw_conf_enabled.conf")
    assert r.status is Status.PASS
    assert r.evidence["sources"]["nftables"]["state"] == "error"


def test_garbled_nft_output_is_not_readable(tmp_path: Path) -> None:
    r = _linux(tmp_path, {NFT: Recorded(b'{"nftables": [1, 2')})
    assert r.status is Status.UNKNOWN


# --- Windows ------------------------------------------------------------------------------------

def _win(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_text(name))
    assert data.pop("_source")
    return data


@pytest.mark.parametrize(("fixture", "status", "key"), [
    ("windows11_all_profiles_on.json", Status.PASS, "firewall.windows_all_on"),
    ("windows11_public_off_on_public_network.json", Status.FAIL, "firewall.windows_current_off"),
    ("windows11_domain_off_on_private_network.json", Status.WARN, "firewall.windows_other_off"),
    ("windows11_all_off_two_networks.json", Status.FAIL, "firewall.windows_current_off"),
    ("windows11_eset_firewall_on_windows_off.json", Status.PASS, "firewall.third_party_on"),
    ("windows11_eset_firewall_off_windows_off.json", Status.FAIL, "firewall.windows_current_off"),
])
def test_windows_table(fixture: str, status: Status, key: str) -> None:
    ctx = make_ctx("windows", snapshot={"firewall": _win(fixture)})
    r = run_one("firewall", firewall.check, ctx)
    assert (r.status, r.summary.key) == (status, key)
    if status in (Status.FAIL, Status.WARN):
        assert r.remediation == "firewall.windows"
        assert remediation.settings_uri(r.remediation, "windows") == "windowsdefender://network/"


def test_windows_profile_names_in_the_message() -> None:
    f = fw_windows.evaluate_windows(fw_windows.parse_windows_firewall(
        _win("windows11_all_off_two_networks.json")))
    assert f.summary.params["profiles"] == "Private, Public"
    assert f.evidence["current_profiles"] == ["Private", "Public"]


def test_windows_product_state_bit() -> None:
    assert fw_windows.ThirdPartyFirewall("x", 266240).enabled  # 0x041000
    assert fw_windows.ThirdPartyFirewall("x", 397568).enabled  # 0x061100
    assert not fw_windows.ThirdPartyFirewall("x", 262144).enabled  # 0x040000
    assert not fw_windows.ThirdPartyFirewall("x", 393472).enabled  # 0x060100


def test_windows_unreadable_profiles_are_unknown_unless_a_product_is_on() -> None:
    section = {"profiles": None, "current_profile_types": None,
               "profiles_error": "Class not registered", "products": []}
    r = run_one("firewall", firewall.check, make_ctx("windows", snapshot={"firewall": section}))
    assert r.status is Status.UNKNOWN and r.summary.key == "probe.source_missing"
    section["products"] = [{"displayName": "ESET インターネット セキュリティ",
                            "productState": 266240, "exe_exists": True}]
    r = run_one("firewall", firewall.check, make_ctx("windows", snapshot={"firewall": section}))
    assert r.status is Status.PASS


def test_windows_server_without_security_center() -> None:
    section = _win("windows11_all_profiles_on.json")
    section.update(products=None, products_error="Invalid namespace")
    assert fw_windows.evaluate_windows(fw_windows.parse_windows_firewall(section)).status \
        is Status.PASS


@pytest.mark.parametrize("section", [
    {"profiles": {"Domain": True, "Private": True}, "current_profile_types": 4},
    {"profiles": {"Domain": 1, "Private": 1, "Public": 1}, "current_profile_types": 4},
    {"profiles": {"Domain": True, "Private": True, "Public": True}, "current_profile_types": 0},
    {"profiles": {"Domain": True, "Private": True, "Public": True}, "current_profile_types": True},
    {"profiles": {"Domain": True, "Private": True, "Public": True}, "current_profile_types": 4,
     "products": [{"displayName": "x", "productState": "266240"}]},
])
def test_windows_malformed_is_a_parse_error(section: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        fw_windows.parse_windows_firewall(section)


# --- macOS --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "state", "status"), [
    ("socketfilterfw_state0_disabled.txt", 0, Status.FAIL),
    ("socketfilterfw_state1_enabled.txt", 1, Status.PASS),
    ("socketfilterfw_state2_enabled_bigsur.txt", 2, Status.PASS),
    ("socketfilterfw_state2_block_all_sequoia.txt", 2, Status.PASS),
])
def test_macos_table(fixture: str, state: int, status: Status) -> None:
    runner = FakeRunner({(fw_macos.SOCKETFILTERFW, "--getglobalstate"):
                         Recorded(_bytes(fixture))})
    r = run_one("firewall", firewall.check, make_ctx("macos", runner=runner))
    assert r.evidence.get("global_state") == state
    assert r.status is status
    if status is Status.FAIL:
        uri = remediation.settings_uri(r.remediation or "", "macos")
        assert uri is not None and uri.startswith("x-apple.systempreferences:")


@pytest.mark.parametrize("text", ["Firewall is enabled.", "(State = 7)", ""])
def test_macos_unreadable_state(text: str) -> None:
    with pytest.raises(ParseError):
        fw_macos.parse_socketfilterfw(text)


# --- issue 17, finding 3: one Security Center decoder; stale entries never pass alone ----------

def test_expired_third_party_firewall_is_not_on() -> None:
    """0x3000 in productState is *expired*; the old firewall decoder tested bit 0x1000 only."""
    r = run_one("firewall", firewall.check, make_ctx(
        "windows", snapshot={"firewall": _win("windows11_thirdparty_expired_0x3000.json")}))
    assert r.status is Status.FAIL, r.summary
    assert r.summary.key == "firewall.windows_current_off"
    assert r.evidence["third_party"][0]["state"] == "expired"
    assert not fw_windows.ThirdPartyFirewall("x", 0x043000).enabled


def test_firewall_and_antivirus_share_one_decoder() -> None:
    from agent.posture.security_center import decode_product_state
    for value in (0x041000, 0x043000, 0x042000, 0x040000, 0x061100, 0x060100):
        assert fw_windows.ThirdPartyFirewall("x", value).enabled is \
            decode_product_state(value).enabled


def test_uninstalled_product_left_in_security_center_does_not_pass() -> None:
    r = run_one("firewall", firewall.check, make_ctx(
        "windows",
        snapshot={"firewall": _win("windows11_stale_uninstalled_product_windows_off.json")}))
    assert r.status is Status.UNKNOWN, r.summary
    assert r.summary.key == "firewall.third_party_missing"
    assert r.evidence["third_party"][0]["program"] == "missing"
    # With Windows Firewall on, the stale entry does not matter.
    section = _win("windows11_stale_uninstalled_product_windows_off.json")
    section["profiles"] = {"Domain": True, "Private": True, "Public": True}
    r = run_one("firewall", firewall.check, make_ctx("windows", snapshot={"firewall": section}))
    assert r.status is Status.PASS
