"""When to ask the update server for a newer policy, and how long a PC may stay offline.

Pure functions of an injected clock and a small persisted record (``UpdateStatus``, kept in
``policy-update.json`` next to the policy state); the I/O (the HTTPS request) is in
agent.policy.fetch and the glue in agent.policy.auto. Nothing here imports Qt: the tray,
``byod-agent check`` and the tests all decide through these functions.

Rules (docs/policy.md, "Automatic updates"):

- due ``interval_hours`` after the last attempt, minus a per-PC jitter of up to 25 % of the
  interval (the jitter is a random number drawn once per PC and kept): 2,000 PCs that were all
  switched on at 08:30 spread their next requests over a quarter of the interval, and every PC
  asks at least once per interval;
- right after the agent starts, a PC whose update is due waits a per-PC delay of up to
  ``START_SPREAD`` (so a building's worth of PCs booting together do not arrive in the same
  second; ``byod-agent check`` run by hand does not wait);
- a failed attempt (offline, server error) is retried after 5, 10, 20... minutes (jittered), never
  later than the interval, and at once (after ``MIN_SPACING``) when the network changed or the PC
  woke up: that is when a laptop that was offline typically comes back;
- a wall clock that went backwards past the last attempt makes the update due (a PC whose clock
  was wrong must not wait for the wrong clock to catch up);
- no policy in force: due at every chance (with ``MIN_SPACING``), because only an update can help.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core.messages import Message, msg
from agent.policy.model import Policy

JITTER_FRACTION = 0.25
START_SPREAD = timedelta(minutes=10)
RETRY_FIRST = timedelta(minutes=5)
MIN_SPACING = timedelta(seconds=60)
CLOCK_BACK_TOLERANCE = timedelta(minutes=5)


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class UpdateStatus:
    """What the agent remembers about its update server (one record per user)."""

    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: datetime | None = None
    last_contact: datetime | None = None  # the server answered 200 or 304 (it was reached)
    last_change: datetime | None = None  # a newer policy was downloaded and accepted
    last_result: str = "never"  # never | updated | not_modified | offline | refused
    last_reason_key: str | None = None  # the message key of an offline/refused result
    last_reason_params: dict[str, str | int | float] = field(default_factory=dict)
    failures: int = 0  # consecutive failed attempts
    since: datetime | None = None  # first time this PC had this URL (offline days count from it)
    jitter: float = -1.0  # per PC, in [0, 1); negative: not drawn yet
    network: str = ""  # fingerprint of the network at the last attempt

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.astimezone(UTC).replace(microsecond=0).isoformat().replace(
                    "+00:00", "Z")
        return out

    @staticmethod
    def from_json(doc: Any) -> UpdateStatus:
        if not isinstance(doc, dict):
            return UpdateStatus()
        s = UpdateStatus()

        def text(key: str) -> str | None:
            v = doc.get(key)
            return v[:2000] if isinstance(v, str) else None

        failures = doc.get("failures")
        jitter = doc.get("jitter")
        params = doc.get("last_reason_params")
        return replace(
            s, url=text("url"), etag=text("etag"), last_modified=text("last_modified"),
            last_attempt=_dt(doc.get("last_attempt")),
            # "fetched_at" is what agents before the scheduler wrote
            last_contact=_dt(doc.get("last_contact")) or _dt(doc.get("fetched_at")),
            last_change=_dt(doc.get("last_change")),
            last_result=text("last_result") or s.last_result,
            last_reason_key=text("last_reason_key"),
            last_reason_params={k: v for k, v in params.items()
                                if isinstance(k, str) and isinstance(v, str | int | float)
                                and not isinstance(v, bool)} if isinstance(params, dict) else {},
            failures=failures if isinstance(failures, int) and 0 <= failures < 10**6 else 0,
            since=_dt(doc.get("since")),
            jitter=float(jitter) if isinstance(jitter, float | int) and 0 <= jitter < 1
            else -1.0,
            network=text("network") or "")

    def with_jitter(self) -> UpdateStatus:
        return self if self.jitter >= 0 else replace(self, jitter=secrets.randbelow(10**6) / 10**6)

    @property
    def last_reason(self) -> Message | None:
        return Message(self.last_reason_key, dict(self.last_reason_params)) \
            if self.last_reason_key else None


def dumps(status: UpdateStatus) -> bytes:
    return (json.dumps(status.to_json(), ensure_ascii=False, indent=1) + "\n").encode()


def network_fingerprint(addresses: list[str]) -> str:
    """A short digest of this PC's addresses: it changes when the PC joins another network."""
    return hashlib.sha256("\n".join(sorted(set(addresses))).encode()).hexdigest()[:16]


def retry_delay(failures: int, interval: timedelta) -> timedelta:
    """5, 10, 20, ... minutes after consecutive failures, never more than the interval."""
    if failures <= 0:
        return interval
    delay: timedelta = RETRY_FIRST * int(2 ** min(failures - 1, 20))
    return min(interval, delay)


def due_at(status: UpdateStatus, interval_hours: int) -> datetime | None:
    """When the next request is due (None: now). Always within one interval of the last try."""
    if status.last_attempt is None:
        return None
    interval = timedelta(hours=interval_hours)
    jitter = max(0.0, status.jitter)
    wait = retry_delay(status.failures, interval) if status.failures else interval
    return status.last_attempt + wait * (1 - JITTER_FRACTION * jitter)


@dataclass(frozen=True)
class Plan:
    due: bool
    at: datetime | None  # when it will be due (None: now)
    # first | interval | retry | network | woke | clock_back | no_policy | not_yet | start_spread
    why: str


def plan(now: datetime, status: UpdateStatus, interval_hours: int, *, network: str = "",
         woke: bool = False, started_at: datetime | None = None,
         policy_in_force: bool = True) -> Plan:
    """Should the agent ask the update server now? ``started_at``: the tray's start (spread)."""
    last = status.last_attempt
    spaced = last is None or now - last >= MIN_SPACING or now < last
    if not policy_in_force:
        return Plan(spaced, None if spaced else last + MIN_SPACING if last else None,
                    "no_policy" if spaced else "not_yet")
    if last is not None and last - now > CLOCK_BACK_TOLERANCE:
        return Plan(True, None, "clock_back")
    if status.failures and spaced and (woke or (network and status.network
                                                and network != status.network)):
        return Plan(True, None, "woke" if woke else "network")
    at = due_at(status, interval_hours)
    if started_at is not None:
        spread_end = started_at + START_SPREAD * max(0.0, status.jitter)
        if now < spread_end and (at is None or at <= spread_end):
            return Plan(False, spread_end, "start_spread")
    if at is None:
        return Plan(True, None, "first")
    if now >= at:
        return Plan(True, None, "retry" if status.failures else "interval")
    return Plan(False, at, "not_yet")


def after_attempt(status: UpdateStatus, now: datetime, result: str, *,
                  reason: Message | None = None, network: str = "", url: str | None = None,
                  etag: str | None = None, last_modified: str | None = None) -> UpdateStatus:
    """The record after one attempt. ``result``: updated | not_modified | offline | refused."""
    reached = result in ("updated", "not_modified", "refused")  # a refusal came from the server
    ok = result in ("updated", "not_modified")
    changed_url = url is not None and url != status.url
    return replace(
        status, url=url or status.url,
        etag=etag if result == "updated" else (None if changed_url else status.etag),
        last_modified=last_modified if result == "updated" else (
            None if changed_url else status.last_modified),
        last_attempt=now, last_contact=now if reached else status.last_contact,
        last_change=now if result == "updated" else status.last_change, last_result=result,
        last_reason_key=reason.key if reason and not ok else None,
        last_reason_params=dict(reason.params) if reason and not ok else {},
        failures=0 if ok else status.failures + 1,
        since=status.since if status.since and not changed_url else now,
        network=network or status.network)


# -- expiry and offline grace ---------------------------------------------------------------
@dataclass(frozen=True)
class Notice:
    level: str  # warn | block
    message: Message


def _days(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 86400))


def lifetime_notices(policy: Policy, now: datetime, status: UpdateStatus) -> list[Notice]:
    """Warnings before the policy expires, and the offline grace timeline (docs/policy.md)."""
    out: list[Notice] = []
    life = policy.lifetime
    left = policy.expires - now
    if left <= timedelta(days=life.warn_before_expiry_days):
        out.append(Notice("warn", msg("policy.lifetime.expires_soon", days=_days(left),
                                      expires=policy.expires.date().isoformat())))
    if policy.update is None:
        return out
    reference = status.last_contact or status.since
    if reference is None or status.url not in (None, policy.update.url):
        return out
    offline = now - reference
    if life.offline_block_days is not None and offline >= timedelta(days=life.offline_block_days):
        out.append(Notice("block", msg("policy.lifetime.offline_block", days=_days(offline),
                                       limit=life.offline_block_days)))
    elif offline >= timedelta(days=life.offline_warn_days):
        left_msg = (msg("policy.lifetime.offline_block_in",
                        days=max(0, life.offline_block_days - _days(offline)))
                    if life.offline_block_days is not None else None)
        out.append(Notice("warn", msg("policy.lifetime.offline_warn", days=_days(offline))))
        if left_msg is not None:
            out.append(Notice("warn", left_msg))
    return out
