"""``byod-agent connect``: the approved remote session, only while the policy allows it.

Exit codes: 0 the session ran (or, with --dry-run, the plan was printed and the PC is allowed);
2 configuration (unknown target, refused policy, missing certificate or client, invalid value);
3 the policy does not allow a session now (the reasons are printed, in ja/en).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent import exitcodes, i18n
from agent.commands import usage_error
from agent.commands.check import policy_refused
from agent.keystore.errors import KeystoreError
from agent.keystore.store import Keystore
from agent.policy.decision import decision_to_json, render_reason
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import evaluate
from agent.policy.model import Target
from agent.posture.context import current_os
from agent.runner import SubprocessRunner
from agent.session.clients import find_client
from agent.session.launch import LaunchPlan, SessionConfigError, plan


def _pick(targets: tuple[Target, ...], wanted: str | None) -> Target | None:
    if wanted is None:
        return targets[0] if len(targets) == 1 else None
    return next((t for t in targets if t.id == wanted), None)


def _print_plan(p: LaunchPlan, decision: dict[str, Any], as_json: bool, lang: str) -> None:
    if as_json:
        print(json.dumps({**p.to_json(), "decision": decision}, ensure_ascii=False, indent=2))
        return
    print(i18n.text("session.plan.header", lang, target=p.target_id, mode=p.mode,
                    platform=p.platform))
    print("  " + " ".join(p.argv))
    if p.rdp_properties:
        for k, v in p.rdp_properties.items():
            print(f"    {k}:{v}")
    off = ", ".join(p.redirections)
    print(i18n.text("session.plan.redirections_off", lang, names=off))


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    try:
        result = evaluate()
    except PolicyRefused as exc:
        return policy_refused(args, exc, lang)
    policy = result.loaded.policy
    target = _pick(policy.targets, args.target)
    if target is None:
        ids = ", ".join(t.id for t in policy.targets) or "-"
        return usage_error(lang, "session.error.unknown_target", target=args.target or "-", ids=ids)
    platform = args.platform or current_os()
    here = platform == current_os()
    if target.mode == "tunnel" and here:
        try:
            Keystore.default().load_identity()
        except KeystoreError as exc:
            return usage_error(lang, "session.error.no_certificate",
                         reason=i18n.render(exc.message, lang))
    client = find_client(platform, SubprocessRunner() if here else None)
    if client is None:
        return usage_error(lang, "session.error.no_client")
    try:
        launch = plan(target, platform, client)
    except SessionConfigError as exc:
        return usage_error(lang, "session.error.config", field=exc.field, detail=exc.detail)
    decision = result.decision
    if args.dry_run:
        _print_plan(launch, decision_to_json(decision), args.json, lang)
    if not decision.allowed:
        print(i18n.text("session.blocked", lang, id=decision.correlation_id), file=sys.stderr)
        for c in decision.reasons:
            if c.reason is not None:
                print(f"  - {render_reason(c.reason, lang)}", file=sys.stderr)
        return exitcodes.BLOCKED
    if args.dry_run:
        return exitcodes.OK
    return usage_error(lang, "session.error.launch_not_ready")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("connect", help="open the approved remote session (screen transfer)")
    p.add_argument("target", nargs="?", help="target id from the policy (default: the only one)")
    p.add_argument("--dry-run", action="store_true", help="print the launch plan and stop")
    p.add_argument("--json", action="store_true", help="the plan as JSON (with --dry-run)")
    p.add_argument("--platform", choices=("windows", "macos", "linux"),
                   help="plan for another OS (what staff there will get)")
    p.add_argument("--lang", choices=i18n.LANGS)
    p.set_defaults(handler=run)
