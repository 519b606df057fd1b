"""Issue 18 classes 6, 7 and 8 (policy): strict validation, bounded TOML, an older policy.

Before issue 18: ``check_username("alice\\n")`` passed (``$`` matches before a trailing newline),
``fe80::1%x,ignore`` was a valid host (Python's ipaddress accepts any zone text) and went into
FreeRDP's comma-separated ``/cert:deny,name:...`` option, a ticket "ABC\\n" passed, and a signed
policy with deeply nested arrays raised RecursionError (a traceback) instead of a refusal.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core import textsafe, validate
from agent.diagnostics import export
from agent.policy.errors import PolicyRefused
from agent.policy.loader import resolve_active
from agent.policy.schema import parse_policy, valid_host
from agent.session import launch
from agent.session.launch import ClientInfo, SessionConfigError, check_host, check_username
from tests.unit.test_policy_support import NOW, Signer, policy_text, state_in

ZONES = ["fe80::1%x,ignore", "fe80::1%eth0", "fe80::1%25eth0", "[fe80::1]", "::ffff:1.2.3.4%1"]


@pytest.mark.parametrize("value", ["alice\n", "alice\r\n", "-alice", "a b", "a,b", "a\x00",
                                   "ａｌｉｃｅ\n", ""])
def test_user_names_are_full_matched(value: str) -> None:
    with pytest.raises(SessionConfigError):
        check_username(value)


@pytest.mark.parametrize("value", [*ZONES, "host.example\n", "a..b", "-a.example", "a_b.example",
                                   "1.2.3.4.5", "999.1.1.1", "host,ignore", "x.example.",
                                   "例え.jp"])
def test_hosts_outside_the_strict_grammar(value: str) -> None:
    with pytest.raises(SessionConfigError):
        check_host("host", value)
    assert not valid_host(value)  # the policy schema refuses them too


def test_good_hosts_and_users_still_pass() -> None:
    assert check_host("host", "pc-01.city.example.lg.jp") == "pc-01.city.example.lg.jp"
    assert check_host("host", "2001:DB8::1") == "2001:db8::1"
    assert check_host("host", "192.0.2.7") == "192.0.2.7"
    for user in ("yamada", "CITY\\yamada", "yamada@city.example.lg.jp", "y.taro_01"):
        assert check_username(user) == user


def test_zone_identifier_never_reaches_the_cert_option() -> None:
    from agent.policy.model import Target

    target = Target("office", "庁内", "Office", "rdp", "direct", "fe80::1%x,ignore", 3389)
    with pytest.raises(SessionConfigError):
        launch.plan(target, "linux", ClientInfo("xfreerdp", "xfreerdp2"))


SAFE = set(string.ascii_letters + string.digits + "._@\\-")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_accepted_user_name_is_plain(value: str) -> None:
    if validate.username(value) is not None:
        assert set(value) <= SAFE and not value.startswith("-") and textsafe.is_clean(value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"[0-9a-f:.%,]{2,40}", fullmatch=True)))
def test_any_accepted_host_has_no_separator_of_an_option(value: str) -> None:
    checked = validate.host(value)
    if checked is not None:
        assert not set(checked) & set("%,;/ \t\r\n[]\\\"'=:") or ":" in checked
        assert "%" not in checked and "," not in checked and textsafe.is_clean(checked)


@pytest.mark.parametrize("ticket", ["ABC-1\n", "ABC\r", "", "x" * 41, "a b"])
def test_ticket_is_full_matched(ticket: str) -> None:
    assert not export.TICKET.match(ticket)


@pytest.mark.parametrize("nested", ["x = " + "[" * 5000 + "]" * 5000,
                                    "x = " + "{a = " * 3000 + "1" + "}" * 3000,
                                    "x = " + "[" * 20 + "]" * 20])
def test_deeply_nested_toml_is_refused_not_a_traceback(nested: str) -> None:
    text = policy_text(extra="").replace("recheck_interval_minutes = 30",
                                         "recheck_interval_minutes = 30\n" + nested)
    with pytest.raises(PolicyRefused) as caught:
        parse_policy(text.encode())
    assert "nested deeper" in caught.value.detail


def test_brackets_inside_strings_do_not_count() -> None:
    text = ('a = "[[[[[[[[[[[[[[[[[[[[[[[[" # [[[[[[[[[[[[[[[[[[[[[[[\n'
            "b = '''{{{{{{{{{{{{{{{{{{{'''")
    assert validate.toml_nesting_depth(text) == 0
    assert validate.toml_nesting_depth('x = [[1], {a = [2]}]') == 3


def test_an_older_policy_with_another_id_does_not_become_active(tmp_path: Path) -> None:
    """An update server (or anyone who can drop a file in the state folder) offering an older,
    still valid policy of the same city key under another id: while the installed policy's own
    line is valid it stays in force; the other id is never preferred because its serial is
    higher."""
    signer = Signer()
    installed = tmp_path / "installed"
    installed.mkdir()
    signer.write(installed / "policy.toml", policy_text(3))
    state = state_in(tmp_path)
    old = policy_text(99, not_before="2025-01-01T00:00:00+09:00").replace(
        'id = "test-city"', 'id = "test-city-old"').replace('max_idle_seconds = 600',
                                                           'max_idle_seconds = 14400')
    cache = state.cache_policy(signer.anchor.key_id, "test-city-old")
    cache.parent.mkdir(parents=True, exist_ok=True)
    signer.write(cache, old)
    res = resolve_active(state, [signer.anchor], now=NOW, installed=installed)
    assert res.loaded is not None and res.loaded.policy.id == "test-city"
    assert res.loaded.policy.serial == 3


def test_an_older_policy_with_another_id_does_not_replace_a_lapsed_one(tmp_path: Path) -> None:
    """The installed policy (and its line) expired: an older policy of another id, issued
    before it, must not take over as "the newest kept copy" (it would bring back old rules)."""
    signer = Signer()
    installed = tmp_path / "installed"
    installed.mkdir()
    signer.write(installed / "policy.toml", policy_text(
        3, not_before="2026-06-01T00:00:00+09:00", expires="2026-11-01T00:00:00+09:00"))
    state = state_in(tmp_path)
    old = policy_text(99, not_before="2025-01-01T00:00:00+09:00").replace(
        'id = "test-city"', 'id = "test-city-old"').replace('max_idle_seconds = 600',
                                                           'max_idle_seconds = 14400')
    cache = state.cache_policy(signer.anchor.key_id, "test-city-old")
    cache.parent.mkdir(parents=True, exist_ok=True)
    signer.write(cache, old)
    assert parse_policy(old.encode()).id == "test-city-old"  # a valid policy, not a refusal
    res = resolve_active(state, [signer.anchor], now=NOW, installed=installed)
    assert res.loaded is None or res.loaded.policy.id == "test-city"
