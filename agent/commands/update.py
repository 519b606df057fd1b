"""``byod-agent update check|status``: check for a new agent now, or say when the last check ran.

Exit codes: ``check`` 0 installed, up to date, deferred (a remote session runs), not configured,
switched off or left to the package manager; 2 refused (rollback, expired, tampered, bad
signature, install failed: the running version stays); 6 the update server could not be reached
or answered too slowly (a download passed its deadline).
"""

from __future__ import annotations

import argparse

from agent.core import exitcodes, i18n
from agent.posture.context import current_os
from agent.settings import store
from agent.update import service, state
from agent.update.model import FAILURES, Outcome


def check(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    _, values = store.current(current_os())
    result = service.check_now(current_os(), values)
    print(i18n.render(result.message, lang))
    if result.outcome in (Outcome.UNREACHABLE, Outcome.TOO_SLOW):
        return exitcodes.OFFLINE
    return exitcodes.USAGE if result.outcome in FAILURES else exitcodes.OK


def status(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    s = state.load(state.status_path())
    _, values = store.current(current_os())
    print(i18n.text("update.status.channel", lang, channel=str(values["UpdateChannel"])))
    if s.last_check is None or s.outcome is None:
        print(i18n.text("update.status.never", lang))
    else:
        print(i18n.text("update.status.last", lang, at=s.last_check,
                        outcome=i18n.text(f"update.outcome_short.{s.outcome}", lang)))
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("update", help="cli.update.help", description="cli.update.help",
                       epilog="cli.update.exit")
    usub = p.add_subparsers(dest="update_command", title="cli.commands")
    c = usub.add_parser("check", help="cli.update.check", description="cli.update.check")
    c.set_defaults(handler=check)
    s = usub.add_parser("status", help="cli.update.status", description="cli.update.status")
    s.set_defaults(handler=status)
    p.set_defaults(handler=status)
