"""The policy state machine (docs/policy.md, "Which policy is in force") and the update scheduler.

Every transition of the table in docs/policy.md has a test here, including the stranded sequence
of issue 16 (city serial 2, a DEMO build run once, the city build again). The scheduler is pure:
times are injected, the per-PC jitter is given.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.messages import msg
from agent.core.paths import resources_dir
from agent.policy import schedule
from agent.policy.auto import refresh
from agent.policy.errors import FetchFailed, PolicyRefused
from agent.policy.evaluate import policy_for_checks
from agent.policy.fetch import FetchResult, read_status, write_status
from agent.policy.loader import resolve_active
from agent.policy.model import UpdateSource
from agent.policy.schema import parse_policy
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState
from tests.unit.test_policy_support import NOW, Signer, policy_text, state_in

CITY = Signer("city-example")
OTHER = Signer("other")
DEMO_ANCHORS = load_trust_anchors(resources_dir() / "trust")
DEMO_DIR = resources_dir() / "policy"
UPDATE = """
[update]
url = "https://policy.city.example.lg.jp/byod/policy.toml"
ca = '''{ca}'''
interval_hours = 24
"""


def _ca() -> str:
    from cryptography.hazmat.primitives import serialization

    from tests.integration.test_policy_fetch import _ca as make_ca

    return make_ca("policy CA")[1].public_bytes(serialization.Encoding.PEM).decode()


CA_PEM = _ca()


def city_text(serial: int, *, extra: str = "", expires: str = "2027-01-01T00:00:00+09:00") -> str:
    return policy_text(serial, expires=expires, extra=UPDATE.format(ca=CA_PEM) + extra)


def installed_city(tmp: Path, serial: int = 1, **kw: str) -> Path:
    d = tmp / "city-install"
    d.mkdir(exist_ok=True)
    CITY.write(d / "city.toml", city_text(serial, **kw))
    return d


class FakeServer:
    """Stands in for fetch_update where the HTTPS part is not the point (the integration test
    tests/integration/test_policy_fetch.py uses a real HTTPS server)."""

    def __init__(self, serial: int | None = None, offline: bool = False) -> None:
        self.serial = serial
        self.offline = offline
        self.calls: list[dict[str, object]] = []

    def __call__(self, update: UpdateSource, state: PolicyState, anchors: object, *,
                 now: datetime, **kw: object) -> FetchResult:
        self.calls.append({"now": now, **kw})
        status = read_status(state).with_jitter()
        if self.offline or self.serial is None:
            write_status(state, schedule.after_attempt(status, now, "offline", url=update.url))
            raise FetchFailed(msg("policy.fetch.unreachable", url=update.url), "down")
        data = city_text(self.serial).encode()
        state.record_accepted("test-city", self.serial, CITY.anchor.key_id)
        state.store_last_good(data, CITY.sign(data), CITY.anchor.key_id, "test-city")
        write_status(state, schedule.after_attempt(status, now, "updated", url=update.url))
        return FetchResult(True, None)


# -- the state machine ----------------------------------------------------------------------
def test_installed_policy_in_force_and_kept_per_anchor(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path))
    assert res.loaded is not None and res.loaded.source == "installed"
    assert state.cache_policy(CITY.anchor.key_id, "test-city").is_file()
    assert res.update is not None and res.update.url.startswith("https://policy.")


def test_stranded_sequence_from_issue_16_ends_with_city_serial_2(tmp_path: Path) -> None:
    """City build (installed serial 1) fetches serial 2; the DEMO build runs once for the same
    user; the city build runs again: city serial 2 is in force, nothing was replaced."""
    state = state_in(tmp_path)
    city_install = installed_city(tmp_path, 1)
    server = FakeServer(serial=2)
    first = refresh(state, [CITY.anchor], now=NOW, installed=city_install, force=True,
                    fetcher=server, network="")
    assert first.result == "updated"
    assert first.resolution.loaded is not None and first.resolution.loaded.policy.serial == 2
    demo = resolve_active(state, DEMO_ANCHORS, now=NOW, installed=DEMO_DIR)  # the DEMO build
    assert demo.loaded is not None and demo.loaded.demo
    assert demo.refused == []  # the city's copy is another build's: not judged, not replaced
    again = resolve_active(state, [CITY.anchor], now=NOW, installed=city_install)
    assert again.loaded is not None
    assert (again.loaded.policy.id, again.loaded.policy.serial, again.loaded.source) == (
        "test-city", 2, "cache")
    assert again.refused == []  # installed serial 1 is superseded, not news


def test_demo_policy_never_replaces_a_city_policy_even_when_both_are_trusted(
        tmp_path: Path) -> None:
    state = state_in(tmp_path)
    both = [CITY.anchor, *DEMO_ANCHORS]
    inst = installed_city(tmp_path, 1)
    for p in DEMO_DIR.glob("*.toml*"):  # a build that somehow carries both
        (inst / p.name).write_bytes(p.read_bytes())
    res = resolve_active(state, both, now=NOW, installed=inst)
    assert res.loaded is not None and not res.loaded.demo and res.loaded.policy.id == "test-city"


def test_demo_serial_does_not_raise_the_citys(tmp_path: Path) -> None:
    """A DEMO-signed policy with the city's id and a huge serial (the DEMO key is public)."""
    state = state_in(tmp_path)
    rogue = OTHER.write(tmp_path / "rogue.toml", policy_text(999))
    from agent.policy.loader import load_file

    load_file(rogue, [OTHER.anchor], state, now=NOW)
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path, 1))
    assert res.loaded is not None and res.loaded.policy.serial == 1


def test_legacy_shared_copy_of_another_build_is_ignored(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    state.directory.mkdir(parents=True)
    data = (DEMO_DIR / "demo-policy.toml").read_bytes()
    state.legacy_cache.write_bytes(data)
    state.legacy_cache.with_name(state.legacy_cache.name + ".sig").write_bytes(
        (DEMO_DIR / "demo-policy.toml.sig").read_bytes())
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path))
    assert res.loaded is not None and res.refused == []


def test_legacy_copy_of_the_same_anchor_still_counts(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    state.directory.mkdir(parents=True)
    CITY.write(state.legacy_cache, city_text(7))
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path, 1))
    assert res.loaded is not None and res.loaded.policy.serial == 7
    assert state.cache_policy(CITY.anchor.key_id, "test-city").is_file()  # migrated


def test_rolled_back_installed_with_no_copy_still_names_its_update_server(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    state.record_accepted("test-city", 2, CITY.anchor.key_id)
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path, 1))
    assert res.loaded is None and res.refused[0].message.key == "policy.refused.rollback"
    assert res.update is not None  # the way out: the installed policy's own server


def test_expired_installed_policy_still_names_its_update_server(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    inst = installed_city(tmp_path, 1, expires="2026-11-01T00:00:00+09:00")
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=inst)
    assert res.loaded is None and res.refused[0].message.key == "policy.refused.expired"
    assert res.update is not None


def test_tampered_installed_policy_names_no_update_server(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    inst = installed_city(tmp_path, 1)
    (inst / "city.toml").write_bytes((inst / "city.toml").read_bytes().replace(b"30", b"31"))
    res = resolve_active(state, [CITY.anchor], now=NOW, installed=inst)
    assert res.loaded is None and res.update is None  # an unsigned URL is never followed


def test_stranded_pc_recovers_through_its_update_server(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    state.record_accepted("test-city", 2, CITY.anchor.key_id)
    inst = installed_city(tmp_path, 1)
    server = FakeServer(serial=3)
    out = refresh(state, [CITY.anchor], now=NOW, installed=inst, fetcher=server, network="")
    assert out.attempted and out.result == "updated"
    assert server.calls[0]["conditional"] is False  # a 304 could not help a stranded PC
    assert out.resolution.loaded is not None and out.resolution.loaded.policy.serial == 3


def test_stranded_pc_offline_reports_the_reason(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    state.record_accepted("test-city", 2, CITY.anchor.key_id)
    out = refresh(state, [CITY.anchor], now=NOW, installed=installed_city(tmp_path, 1),
                  fetcher=FakeServer(offline=True), network="")
    assert out.resolution.loaded is None and out.result == "offline"
    assert out.reason is not None and out.reason.key == "policy.fetch.unreachable"


def test_no_policy_and_no_update_server(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = refresh(state_in(tmp_path), [CITY.anchor], now=NOW, installed=empty, network="")
    assert out.result == "no_source" and out.resolution.loaded is None


def test_refused_download_keeps_the_policy_in_force(tmp_path: Path) -> None:
    def refusing(*_a: object, **_k: object) -> FetchResult:
        raise PolicyRefused(msg("policy.refused.unknown_signer", key_id="x"), "x")

    out = refresh(state_in(tmp_path), [CITY.anchor], now=NOW, installed=installed_city(tmp_path),
                  force=True, fetcher=refusing, network="")
    assert out.result == "refused"
    assert out.resolution.loaded is not None and out.resolution.loaded.policy.serial == 1


# -- the scheduler --------------------------------------------------------------------------
def _status(**kw: object) -> schedule.UpdateStatus:
    return replace(schedule.UpdateStatus(url="u", jitter=0.5, network="n1"), **kw)  # type: ignore[arg-type]


def test_first_attempt_is_due_at_once() -> None:
    assert schedule.plan(NOW, _status(), 24).why == "first"


@pytest.mark.parametrize("jitter", [0.0, 0.3, 0.999999])
def test_due_within_the_interval_and_jitter_in_bounds(jitter: float) -> None:
    st = _status(last_attempt=NOW, jitter=jitter)
    at = schedule.due_at(st, 24)
    assert at is not None
    assert NOW + timedelta(hours=18) <= at <= NOW + timedelta(hours=24)
    assert not schedule.plan(at - timedelta(seconds=1), st, 24).due
    assert schedule.plan(at, st, 24).due


def test_jitter_spreads_2000_pcs() -> None:
    pcs = [schedule.UpdateStatus().with_jitter() for _ in range(2000)]
    dues = sorted(schedule.due_at(replace(p, last_attempt=NOW), 24) or NOW for p in pcs)
    assert all(0 <= p.jitter < 1 for p in pcs)
    assert dues[-1] - dues[0] > timedelta(hours=5)  # spread over most of the 6-hour window
    per_hour: dict[int, int] = {}
    for d in dues:
        per_hour[d.hour] = per_hour.get(d.hour, 0) + 1
    assert max(per_hour.values()) < 600  # no hour gets more than ~30 % of them


def test_failed_attempt_backs_off_then_retries() -> None:
    st = _status(last_attempt=NOW, failures=1, jitter=0.0)
    assert not schedule.plan(NOW + timedelta(minutes=4), st, 24).due
    assert schedule.plan(NOW + timedelta(minutes=5), st, 24).why == "retry"
    st3 = replace(st, failures=3)
    assert not schedule.plan(NOW + timedelta(minutes=19), st3, 24).due
    assert schedule.retry_delay(30, timedelta(hours=24)) == timedelta(hours=24)


def test_network_change_or_wake_retries_a_failed_update_soon() -> None:
    st = _status(last_attempt=NOW, failures=2)
    assert not schedule.plan(NOW + timedelta(seconds=30), st, 24, network="n2").due
    assert schedule.plan(NOW + timedelta(seconds=61), st, 24, network="n2").why == "network"
    assert schedule.plan(NOW + timedelta(seconds=61), st, 24, woke=True).why == "woke"
    ok = _status(last_attempt=NOW)  # a successful one waits for its interval
    assert not schedule.plan(NOW + timedelta(minutes=2), ok, 24, network="n2").due


def test_start_spread_delays_a_due_update_per_pc() -> None:
    st = _status(last_attempt=NOW - timedelta(days=2), jitter=0.5)
    p = schedule.plan(NOW, st, 24, started_at=NOW)
    assert not p.due and p.at == NOW + timedelta(minutes=5)
    assert schedule.plan(NOW + timedelta(minutes=5), st, 24, started_at=NOW).due


def test_clock_set_back_makes_it_due() -> None:
    st = _status(last_attempt=NOW + timedelta(days=3))
    assert schedule.plan(NOW, st, 24).why == "clock_back"


def test_no_policy_in_force_asks_at_every_chance() -> None:
    st = _status(last_attempt=NOW, failures=5)
    assert not schedule.plan(NOW + timedelta(seconds=10), st, 24, policy_in_force=False).due
    assert schedule.plan(NOW + timedelta(seconds=60), st, 24, policy_in_force=False).due


def test_after_attempt_records_contact_and_failures() -> None:
    st = schedule.UpdateStatus(jitter=0.1)
    a = schedule.after_attempt(st, NOW, "offline", url="u")
    assert (a.failures, a.last_contact, a.since) == (1, None, NOW)
    b = schedule.after_attempt(a, NOW + timedelta(hours=1), "not_modified", url="u")
    assert (b.failures, b.last_contact, b.since) == (0, NOW + timedelta(hours=1), NOW)
    assert schedule.UpdateStatus.from_json(b.to_json()) == b
    assert schedule.UpdateStatus.from_json({"failures": "x", "jitter": 7}) == \
        schedule.UpdateStatus()


# -- the expiry safety net ------------------------------------------------------------------
LIFE = """
[lifetime]
warn_before_expiry_days = 10
offline_warn_days = 3
offline_block_days = 7
"""


def test_expiry_warning_n_days_before() -> None:
    pol = parse_policy(city_text(1, extra=LIFE, expires="2026-12-05T00:00:00+09:00").encode())
    st = schedule.UpdateStatus()
    assert schedule.lifetime_notices(pol, NOW - timedelta(days=5), st) == []
    notes = schedule.lifetime_notices(pol, NOW, st)
    assert [n.message.key for n in notes] == ["policy.lifetime.expires_soon"]
    assert notes[0].message.params["days"] == 7


def test_offline_grace_timeline_warns_then_blocks() -> None:
    pol = parse_policy(city_text(1, extra=LIFE).encode())
    assert pol.update is not None
    st = schedule.UpdateStatus(url=pol.update.url, last_contact=NOW)
    assert schedule.lifetime_notices(pol, NOW + timedelta(days=2), st) == []
    warn = schedule.lifetime_notices(pol, NOW + timedelta(days=4), st)
    assert [n.level for n in warn] == ["warn", "warn"]
    assert warn[1].message.params["days"] == 3  # blocks in 3 days
    block = schedule.lifetime_notices(pol, NOW + timedelta(days=7), st)
    assert [n.level for n in block] == ["block"]


def test_offline_block_refuses_the_policy_with_its_reason(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    inst = installed_city(tmp_path, 1, extra=LIFE)
    write_status(state, schedule.UpdateStatus(
        url="https://policy.city.example.lg.jp/byod/policy.toml", last_contact=NOW,
        last_attempt=NOW + timedelta(days=8), failures=9, jitter=0.2))
    with pytest.raises(PolicyRefused) as info:
        policy_for_checks(state, [CITY.anchor], NOW + timedelta(days=8, seconds=30),
                          installed=inst, fetcher=FakeServer(offline=True))
    assert info.value.message.key == "policy.lifetime.offline_block"
    # back online: the update succeeds and the policy is usable again
    loaded, refreshed, _ = policy_for_checks(state, [CITY.anchor],
                                             NOW + timedelta(days=8, minutes=30),
                                             installed=inst, fetcher=FakeServer(serial=2))
    assert refreshed is not None and refreshed.result == "updated" and loaded.policy.serial == 2


@pytest.mark.parametrize("bad", [
    "[lifetime]\noffline_block_days = 2\noffline_warn_days = 3\n",
    "[lifetime]\nwarn_before_expiry_days = 400\n",
    "[lifetime]\nsurprise = 1\n",
])
def test_lifetime_schema_refuses_nonsense(bad: str) -> None:
    with pytest.raises(PolicyRefused):
        parse_policy(city_text(1, extra=bad).encode())


def test_offline_block_needs_an_update_server() -> None:
    with pytest.raises(PolicyRefused):
        parse_policy(policy_text(1, extra="[lifetime]\noffline_block_days = 9\n").encode())


def test_state_dir_is_created_on_demand(tmp_path: Path) -> None:
    st = PolicyState(tmp_path / "new")
    st.store_last_good(b"x", b"y", "abcd", "p")
    assert st.cached_copies({"abcd"}) == [tmp_path / "new" / "last-good" / "abcd" / "p.toml"]
    assert st.cached_copies({"ffff"}) == []
    assert NOW.tzinfo is UTC
