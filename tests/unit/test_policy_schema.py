"""The policy reader refuses anything but the documented schema, and names the field."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.paths import resources_dir
from agent.policy.errors import PolicyRefused
from agent.policy.model import Enforce, OnUnknown
from agent.policy.schema import MAX_POLICY_BYTES, parse_host_port, parse_policy, valid_host
from tests.unit.test_policy_support import policy_text


def refused(text: str | bytes) -> PolicyRefused:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(PolicyRefused) as info:
        parse_policy(data)
    return info.value


def test_valid_policy_reads_into_typed_values() -> None:
    p = parse_policy(policy_text(7).encode())
    assert (p.id, p.serial, p.recheck_interval_minutes) == ("test-city", 7, 30)
    assert p.not_before == datetime(2025, 12, 31, 15, 0, tzinfo=UTC)
    assert p.values["checks.os_updates"]["max_days_since_update"] == 30
    assert p.values["checks.os_updates"]["windows_min_ubr"] == {26100: 4946}
    assert p.values["checks.screen_lock"]["max_idle_seconds"] == 600
    rule = p.rule("disk_encryption")
    assert rule.enforce is Enforce.BLOCK and rule.block_from_date == date(2026, 12, 1)
    assert rule.block_from == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # midnight JST
    assert p.rule("screen_lock").on_unknown is OnUnknown.WARN
    # a check the policy does not mention is required, fail-closed
    assert p.rule("firewall").enforce is Enforce.BLOCK
    assert p.rule("firewall").on_unknown is OnUnknown.BLOCK
    assert p.targets[0].host == "pc-01.city.example.lg.jp" and p.targets[0].mode == "direct"


def test_demo_policy_is_valid_and_documented_example_too() -> None:
    demo = parse_policy((resources_dir() / "policy" / "demo-policy.toml").read_bytes())
    assert demo.id == "demo-city"
    assert {t.mode for t in demo.targets} == {"tunnel", "rdgateway"}
    assert all(demo.rule(c).enforce is Enforce.BLOCK for c in (
        "os_supported", "os_updates", "disk_encryption", "antivirus", "firewall", "screen_lock"))


@pytest.mark.parametrize(("change", "reason", "field"), [
    (lambda t: "enforse = \"warn\"\n" + t, "unknown_field", "enforse"),
    (lambda t: t.replace("[checks.os_updates]", "[checks.os_updates]\nenforse = \"off\""),
     "unknown_field", "checks.os_updates.enforse"),
    (lambda t: t.replace("[checks.screen_lock]", "[checks.screen_locks]"), "unknown_field",
     "checks.screen_locks"),
    (lambda t: t.replace("serial = 1", "serial = \"1\""), "wrong_type", "serial"),
    (lambda t: t.replace("serial = 1", "serial = true"), "wrong_type", "serial"),
    (lambda t: t.replace("serial = 1", "serial = 1.0"), "wrong_type", "serial"),
    (lambda t: t.replace("serial = 1", "serial = 0"), "out_of_range", "serial"),
    (lambda t: t.replace("serial = 1\n", ""), "missing_field", "serial"),
    (lambda t: t.replace("max_days_since_update = 30", "max_days_since_update = 9999"),
     "out_of_range", "checks.os_updates.max_days_since_update"),
    (lambda t: t.replace("enforce = \"warn\"", "enforce = \"maybe\""), "invalid_value",
     "checks.screen_lock.enforce"),
    (lambda t: t.replace("recheck_interval_minutes = 30", "recheck_interval_minutes = 0"),
     "out_of_range", "recheck_interval_minutes"),
    (lambda t: t.replace("2027-01-01T00:00:00+09:00", "2027-01-01T00:00:00"), "invalid_value",
     "expires"),
    (lambda t: t.replace("2027-01-01T00:00:00+09:00", "2025-01-01T00:00:00+09:00"),
     "invalid_value", "expires"),
    (lambda t: t.replace("\"26100\" = 4946", "\"build\" = 4946"), "invalid_value",
     "checks.os_updates.windows_min_ubr.build"),
    (lambda t: t.replace("pc-01.city.example.lg.jp", "pc 01;calc.exe"), "invalid_value",
     "targets[0].host"),
    (lambda t: t.replace("pc-01.city.example.lg.jp", "pc-01\\r\\nfull address:s:evil"),
     "control_character", "targets[0].host"),
    (lambda t: t.replace("庁内PC", "庁内\\u202ePC"), "control_character", "targets[0].name_ja"),
    (lambda t: t.replace("port = 3389", "port = 70000"), "out_of_range", "targets[0].port"),
    (lambda t: t.replace("mode = \"direct\"", "mode = \"tunnel\""), "missing_field",
     "targets[0].gateway"),
    (lambda t: t.replace("mode = \"direct\"", "mode = \"rdgateway\"\ngateway = \"gw:99999\""),
     "out_of_range", "targets[0].gateway"),
    (lambda t: t.replace("protocol", "x") + "\n", None, None),  # no protocol key: default rdp
    (lambda t: t.replace("id = \"office\"", "id = \"Office PC\""), "invalid_value",
     "targets[0].id"),
    (lambda t: t.replace("enforce = \"block\"\nblock_after", "enforce = \"warn\"\nblock_after"),
     "invalid_value", "checks.disk_encryption.block_after"),
])
def test_schema_refusals_name_the_field(change: object, reason: str | None,
                                        field: str | None) -> None:
    text = change(policy_text(1))  # type: ignore[operator]
    if reason is None:
        parse_policy(text.encode())
        return
    exc = refused(text)
    assert exc.reason == reason, exc.detail
    assert exc.message.params.get("field") == field


def test_tunnel_target_needs_a_real_gateway_ca() -> None:
    extra = ('[[targets]]\nid = "t"\nname_ja = "庁内"\nname_en = "T"\nmode = "tunnel"\n'
             'host = "h.example.jp"\ngateway = "gw.example.jp:443"\n'
             'gateway_ca = "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----"\n')
    exc = refused(policy_text(extra=extra))
    assert exc.reason == "invalid_value" and exc.message.params["field"] == "targets[1].gateway_ca"


def test_update_url_must_be_https() -> None:
    exc = refused(policy_text(extra='[update]\nurl = "http://x.example.jp/p.toml"\nca = "x"\n'))
    assert exc.reason == "invalid_value" and exc.message.params["field"] == "update.url"


def test_helpdesk_key_accepts_an_age_recipient_only_if_well_formed() -> None:
    good = "age1" + "q" * 58
    p = parse_policy(policy_text(extra=f'[diagnostics]\nhelpdesk_public_key = "{good}"\n').encode())
    assert p.diagnostics.helpdesk_public_key == good
    exc = refused(policy_text(extra='[diagnostics]\nhelpdesk_public_key = "age1short"\n'))
    assert exc.message.params["field"] == "diagnostics.helpdesk_public_key"


def test_duplicate_keys_and_tables_are_refused() -> None:
    # tomllib itself refuses both; we rely on it and prove it here.
    assert refused("serial = 2\n" + policy_text()).reason == "toml"
    assert refused(policy_text().replace("serial = 1", "serial = 1\nserial = 1")).reason == "toml"
    assert refused(policy_text() + "\n[checks.os_updates]\nenforce = \"warn\"\n").reason == "toml"
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("a = 1\na = 1\n")


def test_non_utf8_and_oversized_are_refused() -> None:
    exc = refused(policy_text().encode("utf-8").replace("庁内".encode(), "庁内".encode("cp932")))
    assert exc.reason == "not_utf8"
    padded = policy_text().encode() + b"#" * MAX_POLICY_BYTES
    assert refused(padded).reason == "too_large"


@pytest.mark.parametrize(("name", "ok"), [
    ("pc-01.city.example.lg.jp", True), ("10.0.0.5", True), ("2001:db8::1", True),
    ("localhost", True), ("-bad.example", False), ("a..b", False), ("a b", False),
    ("x" * 64 + ".jp", False), ("host.123", False), ("", False), ("host.", False),
])
def test_host_names(name: str, ok: bool) -> None:
    assert valid_host(name) is ok


def test_host_port() -> None:
    assert parse_host_port("g", "gw.example.jp:443") == ("gw.example.jp", 443)
    assert parse_host_port("g", "[2001:db8::1]:8443") == ("2001:db8::1", 8443)
    for bad in ("gw.example.jp", "gw:0", "gw:x", ":443", "a b:1"):
        with pytest.raises(PolicyRefused):
            parse_host_port("g", bad)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_text_is_a_policy_or_a_named_refusal(data: st.DataObject) -> None:
    """Whatever the bytes, the reader answers with a Policy or a PolicyRefused, never a crash."""
    raw = bytearray(policy_text().encode())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        parse_policy(bytes(raw))
    except PolicyRefused as exc:
        assert exc.message.key.startswith("policy.refused.")
