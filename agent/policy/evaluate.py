"""One call for every front end (CLI, tray, bundle): policy in force -> checks -> decision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.core import paths
from agent.policy.checks import posture_settings, selected_checks
from agent.policy.decision import Decision, decide
from agent.policy.loader import policy_in_force
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


def evaluate(policy_path: Path | None = None, *, state_dir: Path | None = None,
             trust_dir: Path | None = None, installed: Path | None = None) -> Evaluation:
    """Raises PolicyRefused when no policy can be used; the reason names the problem."""
    state = PolicyState(state_dir or paths.state_dir())
    loaded = policy_in_force(state, load_trust_anchors(trust_dir), now=utc_now(),
                             path=policy_path, installed=installed)
    report = run_posture(default_context(posture_settings(loaded.policy)),
                         selected_checks(loaded.policy))
    return Evaluation(loaded, report, decide(report, loaded.policy, utc_now()))
