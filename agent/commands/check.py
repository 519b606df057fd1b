"""``byod-agent check``: run the checks the signed policy asks for and print the decision.

Exit codes follow the decision: 0 allowed, 1 not allowed, 2 the policy was refused (the reason is
printed). Without ``--policy`` the installed policy (or the last good update) is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from agent import __version__
from agent.core import exitcodes, i18n, paths
from agent.core.errors import ProbeError
from agent.policy.checks import posture_settings, selected_checks
from agent.policy.decision import decide, decision_to_json, policy_to_json
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import evaluate, policy_for_checks
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState
from agent.posture import replay
from agent.posture.engine import utc_now
from agent.presentation.report import render_table, report_to_json


def policy_refused(args: argparse.Namespace, exc: PolicyRefused, lang: str) -> int:
    if args.json:
        print(json.dumps({
            "schema": 1, "agent_version": __version__, "compliant": False, "checks": [],
            "decision": None,
            "policy": {"status": "refused", "path": args.policy, "reason_key": exc.message.key,
                       "reason": i18n.both(exc.message), "detail": exc.detail},
        }, ensure_ascii=False, indent=2))
    else:
        print(i18n.render(exc.message, lang), file=sys.stderr)
        print(i18n.text("policy.check_refused", lang), file=sys.stderr)
    return exitcodes.USAGE


def _replay(args: argparse.Namespace, lang: str) -> int:
    """``--replay SNAPSHOT.json``: the policy in force today, the checks on the recorded PC."""
    try:
        now = replay.parse_time(args.now) if args.now else None
        if args.now and now is None:
            print(i18n.text("replay.bad_now", lang, value=args.now[:40]), file=sys.stderr)
            return exitcodes.USAGE
        rec = replay.load(Path(args.replay), now)
    except ProbeError as exc:
        print(i18n.render(exc.message, lang), file=sys.stderr)
        return exitcodes.USAGE
    try:
        loaded, _, _ = policy_for_checks(
            PolicyState(paths.state_dir()), load_trust_anchors(None), utc_now(),
            policy_path=Path(args.policy) if args.policy else None, update=False)
    except PolicyRefused as exc:
        return policy_refused(args, exc, lang)
    report = replay.run(rec, posture_settings(loaded.policy), selected_checks(loaded.policy))
    decision = decide(report, loaded.policy, rec.now)
    if args.json:
        data = report_to_json(report)
        data["compliant"] = decision.allowed
        data["decision"] = decision_to_json(decision)
        data["policy"] = policy_to_json(loaded)
        data["replay"] = rec.to_json()
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        when = (rec.collected_at or rec.now).astimezone(datetime.now().astimezone().tzinfo)
        print(i18n.text("replay.banner", lang, path=rec.path,
                        collected_at=when.strftime("%Y-%m-%d %H:%M"),
                        now=rec.now.date().isoformat()))
        print(render_table(report, lang, decision, demo_policy=loaded.demo))
    return exitcodes.OK if decision.allowed else exitcodes.NOT_COMPLIANT


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    if getattr(args, "replay", None):
        return _replay(args, lang)
    try:
        result = evaluate(Path(args.policy) if args.policy else None)
    except PolicyRefused as exc:
        return policy_refused(args, exc, lang)
    report, decision, loaded = result.report, result.decision, result.loaded
    if args.json:
        data = report_to_json(report)
        data["compliant"] = decision.allowed  # the policy decides, as the contract promised
        data["decision"] = decision_to_json(decision)
        data["policy"] = policy_to_json(loaded)
        data["policy"]["notices"] = [{"level": n.level, "key": n.message.key,
                                      **i18n.both(n.message)} for n in result.notices]
        if result.update is not None:
            data["policy"]["update"] = result.update.result
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(render_table(report, lang, decision, demo_policy=loaded.demo))
        for n in result.notices:  # expiry / offline grace (docs/policy.md)
            print(i18n.text("policy.show.notice", lang, text=i18n.render(n.message, lang)))
    return exitcodes.OK if decision.allowed else exitcodes.NOT_COMPLIANT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="cli.check.help", description="cli.check.help",
                       epilog="cli.check.exit")
    p.add_argument("--json", action="store_true", help="cli.check.json")
    p.add_argument("--policy", metavar="PATH", help="cli.check.policy")
    p.add_argument("--replay", metavar="SNAPSHOT.json", help="cli.check.replay")
    p.add_argument("--now", metavar="ISO", help="cli.check.now")
    p.set_defaults(handler=run)
