"""Automatic policy updates: the scheduler's decision (agent.policy.schedule) applied.

``refresh`` is what ``byod-agent check``, ``policy update`` and the tray (through
agent.policy.evaluate, on its re-check timer, at start, after wake and after a network change)
call: it resolves the policy in force, asks the update server when the plan says so (or always,
with ``force``), and resolves again when a newer policy arrived. It never raises for an offline
server or a refused download: those are recorded and reported in the result; the policy in force
stays. The clock, the network fingerprint and the fetcher are injected (tests use a fixed clock and
a real local HTTPS server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agent.core.messages import Message, msg
from agent.policy import fetch, schedule
from agent.policy.errors import FetchFailed, PolicyRefused
from agent.policy.loader import Resolution, resolve_active
from agent.policy.signing import TrustAnchor
from agent.policy.state import PolicyState

log = logging.getLogger(__name__)

Fetcher = Callable[..., fetch.FetchResult]


def network_now() -> str:
    """Fingerprint of this PC's current addresses (psutil; no address leaves the PC)."""
    try:
        import psutil  # noqa: PLC0415 - only when an update is considered

        addrs = [a.address for nics in psutil.net_if_addrs().values() for a in nics
                 if a.address and not a.address.startswith(("127.", "::1", "fe80"))]
    except (OSError, RuntimeError, ImportError) as exc:  # no answer: no change detected
        log.debug("no network fingerprint: %s", exc)
        return ""
    return schedule.network_fingerprint(addrs)


@dataclass
class Refresh:
    resolution: Resolution
    attempted: bool = False
    result: str = "skipped"  # skipped | updated | not_modified | offline | refused | no_source
    reason: Message | None = None  # why offline / refused / nothing to ask
    plan: schedule.Plan | None = None
    status: schedule.UpdateStatus = field(default_factory=schedule.UpdateStatus)


def refresh(state: PolicyState, anchors: Sequence[TrustAnchor], *, now: datetime,
            installed: Path | None = None, force: bool = False, woke: bool = False,
            started_at: datetime | None = None, network: str | None = None,
            fetcher: Fetcher = fetch.fetch_update) -> Refresh:
    """The policy in force after an update that was due (or forced) has been tried."""
    resolution = resolve_active(state, anchors, now=now, installed=installed)
    status = fetch.read_status(state)
    out = Refresh(resolution, status=status)
    source = resolution.update
    if source is None:
        if resolution.loaded is None or force:
            out.result = "no_source"
            out.reason = msg("policy.fetch.no_update_url")
        return out
    net = network_now() if network is None else network
    # A policy past its offline grace is as good as none: ask at every chance (with spacing).
    in_force = resolution.loaded is not None and not any(
        n.level == "block" for n in schedule.lifetime_notices(resolution.loaded.policy, now,
                                                              status))
    out.plan = schedule.plan(now, status.with_jitter(), source.interval_hours, network=net,
                             woke=woke, started_at=started_at, policy_in_force=in_force)
    if not (force or out.plan.due):
        return out
    out.attempted = True
    try:
        got = fetcher(source, state, anchors, now=now, conditional=in_force, network=net)
    except FetchFailed as exc:
        out.result, out.reason = "offline", exc.message
        log.info("policy update: offline (%s)", exc.detail)
    except PolicyRefused as exc:
        out.result, out.reason = "refused", exc.message
        log.warning("policy update refused: %s", exc.detail)
    except OSError as exc:  # the state directory could not be written
        out.result = "offline"
        out.reason = msg("policy.fetch.unreachable", url=source.url)
        log.warning("policy update: %s", exc)
    else:
        out.result = "updated" if got.changed else "not_modified"
        if got.changed:
            out.resolution = resolve_active(state, anchors, now=now, installed=installed)
    out.status = fetch.read_status(state)
    return out
