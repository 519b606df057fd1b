"""``byod-agent connect``: the approved remote session, only while the policy allows it.

Exit codes: 0 the session ran and ended normally (or, with --dry-run, the plan was printed and the
PC is allowed); 2 configuration (unknown or unnamed target, refused policy, missing certificate,
client or credentials, invalid value); 3 the policy does not allow a session now, or the session
was ended because the PC fell out of compliance; 4 the session could not be opened or its client
failed (the failing step is named); 5 the user closed a prompt (Ctrl-D).

``--dry-run`` prints the plan and the decision even when something a real connect needs is missing
(the certificate, the RDP client): it names what is missing, then exits 3 when the policy blocks,
2 when something is missing, 0 when a real connect would go ahead.

``--events`` prints one JSON object per line on stdout for the tray (docs/session.md); otherwise
the same events are printed as sentences in the user's language on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.attest import VerifierError
from agent.attest.session import SessionAttester, reevaluator, report_payload
from agent.commands import usage_error
from agent.commands.check import policy_refused
from agent.core import exitcodes, i18n, logsetup, prompt, textsafe
from agent.core.subprocess_runner import SubprocessRunner
from agent.keystore.errors import KeystoreError
from agent.keystore.store import Keystore
from agent.keystore.tls import client_context
from agent.policy.decision import Decision, decision_to_json, reasons_both, render_reason
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import evaluate
from agent.policy.model import Target
from agent.posture.context import current_os
from agent.session import events
from agent.session.clients import find_client
from agent.session.controller import Session, SessionRequest, install_stop_signals
from agent.session.events import SessionEvent, Step
from agent.session.launch import LaunchPlan, SessionConfigError, check_username, plan

NEEDS_PASSWORD = ("xfreerdp2", "xfreerdp3")  # mstsc and Windows App ask for it themselves


def _seconds(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 86400:
        raise argparse.ArgumentTypeError("1..86400")
    return n


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


class EventPrinter:
    """Prints each session event (agent.session.events): a protocol line on stdout for the tray
    (with the sentence in both languages), or the sentence in ``lang`` on stderr for people."""

    def __init__(self, as_json: bool, lang: str) -> None:
        self.as_json = as_json
        self.lang = lang

    def __call__(self, event: SessionEvent) -> None:
        event = events.with_message(event)
        if self.as_json:
            print(events.encode(event), flush=True)
            return
        print(events.sentence(event, self.lang), file=sys.stderr, flush=True)
        for reason in event.reasons:
            print(f"  - {reason.get(self.lang)}", file=sys.stderr, flush=True)


def _credentials(args: argparse.Namespace, lang: str) -> tuple[str | None, str | None]:
    """User name and password for FreeRDP: from --user/--password-stdin, or asked at a terminal.

    The password stays in memory: it reaches the client through its stdin, never argv or disk.
    """
    user = args.user
    password = None
    if args.password_stdin:
        password = prompt.read_stdin_line()
    elif sys.stdin is not None and sys.stdin.isatty():
        if user is None:
            user = prompt.ask(i18n.text("session.prompt.user", lang), "--user").strip()
        password = prompt.ask_secret(i18n.text("session.prompt.password", lang),
                                     "--password-stdin")
    return user, password


def _print_targets(targets: tuple[Target, ...], lang: str) -> int:
    """``connect`` without a target when the policy has several: which ones there are."""
    print(i18n.text("session.choose_target", lang), file=sys.stderr)
    for t in targets:
        name = textsafe.field(t.name_ja if lang == "ja" else t.name_en)  # policy text
        print(f"  {t.id:<24} {name}", file=sys.stderr)
    print(i18n.text("session.choose_target_hint", lang, example=targets[0].id), file=sys.stderr)
    return exitcodes.USAGE


def _print_decision(decision: Decision, lang: str) -> None:
    if decision.allowed:
        print(i18n.text("session.plan.allowed", lang, id=decision.correlation_id))
        return
    print(i18n.text("session.plan.blocked", lang, id=decision.correlation_id))
    for c in decision.reasons:
        if c.reason is not None:
            print(f"  - {render_reason(c.reason, lang)}")


def _verifier_failed(exc: VerifierError, emit: EventPrinter, as_events: bool, lang: str) -> int:
    """No credential, no tunnel (fail closed): the step says whether the verifier could not be
    asked or said no; people also read the verifier's own reason."""
    step = Step.VERIFIER_REFUSED if exc.status else Step.VERIFIER_UNREACHABLE
    emit(events.error(step, f"{exc.code}: {exc.message_en}"[:300]))
    if not as_events:
        said = exc.message_ja if lang == "ja" else exc.message_en  # the verifier's own text
        print(f"  - {textsafe.field(said)}", file=sys.stderr)
        if exc.correlation_id:
            print("  " + i18n.text("decision.correlation", lang, id=exc.correlation_id),
                  file=sys.stderr)
    return exitcodes.BLOCKED if exc.status else exitcodes.SESSION_FAILED


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    emit = EventPrinter(args.events, lang)
    if args.events and not args.dry_run:
        emit(events.checking(args.target or ""))
    try:
        result = evaluate()
    except PolicyRefused as exc:
        return policy_refused(args, exc, lang)
    policy = result.loaded.policy
    if args.target is None and len(policy.targets) > 1:
        return _print_targets(policy.targets, lang)
    target = _pick(policy.targets, args.target)
    if target is None:
        ids = ", ".join(t.id for t in policy.targets) or "-"
        return usage_error(lang, "session.error.unknown_target", target=args.target or "-", ids=ids)
    platform = args.platform or current_os()
    here = platform == current_os()
    identity = None
    missing: list[str] = []  # what a real connect would stop at (--dry-run names it)
    if target.mode == "tunnel" and here:
        try:
            identity = Keystore.default().load_identity()
        except KeystoreError as exc:
            if args.events:
                emit(events.error(Step.CERTIFICATE, i18n.render(exc.message, "en")))
            if not args.dry_run:
                return usage_error(lang, "session.error.no_certificate",
                                   reason=i18n.render(exc.message, lang))
            missing.append(i18n.text("session.error.no_certificate", lang,
                                     reason=i18n.render(exc.message, lang)))
    client = find_client(platform, SubprocessRunner() if here else None)
    if client is None:
        if args.events:
            emit(events.error(Step.CLIENT_MISSING, platform))
        return usage_error(lang, "session.error.no_client")
    try:
        if args.user is not None:
            check_username(args.user)
        launch = plan(target, platform, client, username=args.user)
    except SessionConfigError as exc:
        return usage_error(lang, "session.error.config", field=exc.field, detail=exc.detail)
    decision = result.decision
    if args.dry_run:
        _print_plan(launch, decision_to_json(decision), args.json, lang)
        if not args.json:
            _print_decision(decision, lang)
        for what in missing:
            print(i18n.text("session.plan.missing", lang, what=what), file=sys.stderr)
        if decision.allowed and missing:
            return exitcodes.USAGE
    if not decision.allowed:
        if args.events:
            emit(events.blocked(decision.correlation_id, events.texts(reasons_both(decision))))
        elif not (args.dry_run and not args.json):  # a text dry run printed them already
            print(i18n.text("session.blocked", lang, id=decision.correlation_id),
                  file=sys.stderr)
            for c in decision.reasons:
                if c.reason is not None:
                    print(f"  - {render_reason(c.reason, lang)}", file=sys.stderr)
        return exitcodes.BLOCKED
    if args.dry_run:
        return exitcodes.OK
    if not here:
        return usage_error(lang, "session.error.platform_plan_only")
    user, password = (None, None)
    if client.flavor in NEEDS_PASSWORD:
        user, password = _credentials(args, lang)
        if not user or password is None:
            return usage_error(lang, "session.error.credentials")
        try:
            check_username(user)
        except SessionConfigError as exc:
            return usage_error(lang, "session.error.config", field=exc.field, detail=exc.detail)
    context = None
    attester = None
    if identity is not None and target.gateway_ca_pem and policy.verifier is not None:
        # [verifier]: a posture credential from the city's verifier before the tunnel opens
        # (docs/verifier.md); the device key is the same, the certificate is the credential.
        attester = SessionAttester(policy.verifier, identity, target.gateway_ca_pem,
                                   policy_id=policy.id, policy_serial=policy.serial,
                                   target_id=target.id)
        try:
            context = attester.attest(report_payload(result))
        except VerifierError as exc:
            return _verifier_failed(exc, emit, args.events, lang)
        context.check_hostname = False  # the tunnel checks the gateway's name itself (SNI)
    elif identity is not None and target.gateway_ca_pem:
        context = client_context(target.gateway_ca_pem, identity)
        context.check_hostname = False  # the tunnel checks the gateway's name itself (SNI)
    recheck = policy.recheck_interval_minutes * 60.0
    if args.recheck_seconds is not None:
        recheck = min(recheck, float(args.recheck_seconds))  # may only check more often
    logsetup.set_correlation_id(decision.correlation_id)
    session = Session(SessionRequest(target, platform, client, decision.correlation_id,
                                     recheck, float(policy.session_grace_seconds), context,
                                     user, password, verifier=policy.verifier is not None),
                      reevaluate=reevaluator(evaluate, attester), emit=emit)
    install_stop_signals(session)
    return session.run()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("connect", help="cli.connect.help", description="cli.connect.help",
                       epilog="cli.connect.exit")
    p.add_argument("target", nargs="?", help="cli.connect.target")
    p.add_argument("--dry-run", action="store_true", help="cli.connect.dry_run")
    p.add_argument("--json", action="store_true", help="cli.connect.json")
    p.add_argument("--events", action="store_true", help="cli.connect.events")
    p.add_argument("--platform", choices=("windows", "macos", "linux"), help="cli.connect.platform")
    p.add_argument("--user", help="cli.connect.user")
    p.add_argument("--password-stdin", action="store_true", help="cli.connect.password_stdin")
    p.add_argument("--recheck-seconds", type=_seconds, metavar="N", help="cli.connect.recheck")
    p.set_defaults(handler=run)
