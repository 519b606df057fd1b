"""One call for every front end (CLI, tray, bundle): policy in force -> checks -> decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.core import paths
from agent.policy import auto, fetch, schedule, signing
from agent.policy.checks import posture_settings, selected_checks
from agent.policy.decision import Decision, decide
from agent.policy.errors import PolicyRefused
from agent.policy.loader import policy_in_force, refusal_error
from agent.policy.model import LoadedPolicy
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState
from agent.posture.context import default_context
from agent.posture.engine import run_posture, utc_now
from agent.posture.model import Report


@dataclass(frozen=True)
class Evaluation:
    loaded: LoadedPolicy
    report: Report
    decision: Decision
    update: auto.Refresh | None = None  # the automatic update tried before the checks
    notices: tuple[schedule.Notice, ...] = ()  # expiry / offline warnings (docs/policy.md)


def policy_for_checks(state: PolicyState, anchors: Sequence[signing.TrustAnchor], now: datetime,
                      *,
                      policy_path: Path | None = None, installed: Path | None = None,
                      update: bool = True, woke: bool = False,
                      started_at: datetime | None = None, fetcher: auto.Fetcher | None = None,
                      ) -> tuple[LoadedPolicy, auto.Refresh | None, tuple[schedule.Notice, ...]]:
    """The policy in force after a due update, its lifetime notices; PolicyRefused otherwise.

    The offline grace timeline ends in a refusal (fail closed, with the reason), like expiry.
    """
    if policy_path is not None or not update:
        loaded = policy_in_force(state, anchors, now=now, path=policy_path, installed=installed)
        refreshed = None
    else:
        refreshed = auto.refresh(state, anchors, now=now, installed=installed, woke=woke,
                                 started_at=started_at, fetcher=fetcher or fetch.fetch_update)
        if refreshed.resolution.loaded is None:
            raise refusal_error(refreshed.resolution)
        loaded = refreshed.resolution.loaded
    status = refreshed.status if refreshed else fetch.read_status(state)
    notices = tuple(schedule.lifetime_notices(loaded.policy, now, status))
    blocking = [n for n in notices if n.level == "block"]
    if blocking and policy_path is None:
        raise PolicyRefused(blocking[0].message, "offline grace period over")
    return loaded, refreshed, notices


def evaluate(policy_path: Path | None = None, *, state_dir: Path | None = None,
             trust_dir: Path | None = None, installed: Path | None = None,
             update: bool = True, woke: bool = False, started_at: datetime | None = None,
             fetcher: auto.Fetcher | None = None) -> Evaluation:
    """Raises PolicyRefused when no policy can be used; the reason names the problem.

    Without ``policy_path`` an update that is due is tried first (agent.policy.auto).
    """
    state = PolicyState(state_dir or paths.state_dir())
    loaded, refreshed, notices = policy_for_checks(
        state, load_trust_anchors(trust_dir), utc_now(), policy_path=policy_path,
        installed=installed, update=update, woke=woke, started_at=started_at, fetcher=fetcher)
    report = run_posture(default_context(posture_settings(loaded.policy)),
                         selected_checks(loaded.policy))
    return Evaluation(loaded, report, decide(report, loaded.policy, utc_now()), refreshed,
                      notices)
