"""``byod-agent evaluate --wire``: the tray's evaluation worker (one short-lived process per run).

It does the tray's periodic maintenance first (pseudonym mappings past their retention, the
certificate's automatic EST renewal when due), then one evaluation (agent/presentation/
evaluate_worker.py), and prints exactly one line: ``EvaluationResult.to_wire()``. People use
``byod-agent check``; this exists so the resident tray never loads the policy, posture, keystore,
cryptography and keyring code (docs/tray.md "The evaluation worker").

Exit codes: 0 the message was printed (whatever it says; the tray reads the state from it);
2 without ``--wire``, or a bad ``--tray-started`` (said on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from agent.core import exitcodes, i18n

log = logging.getLogger(__name__)


def parse_started(value: str | None) -> datetime | None:
    """``--tray-started``: an ISO 8601 time with its offset, at most 40 characters."""
    if value is None:
        return None
    if len(value) > 40:
        raise ValueError("too long")
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError("no UTC offset")
    return t.astimezone(UTC)


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    if not args.wire:
        print(i18n.text("cli.evaluate.use_check", lang), file=sys.stderr)
        return exitcodes.USAGE
    try:
        started = parse_started(args.tray_started)
    except ValueError:
        print(i18n.text("cli.evaluate.bad_started", lang, value=str(args.tray_started)[:40]),
              file=sys.stderr)
        return exitcodes.USAGE
    from agent.presentation.evaluate_worker import evaluate_once  # noqa: PLC0415

    try:
        from agent.diagnostics.mapping import purge_expired  # noqa: PLC0415

        purge_expired()  # retention runs even when no bundle is exported
    except Exception:  # a broken mapping store must not hide the posture
        log.exception("purging expired pseudonym mappings failed")
    from agent.presentation.last_evaluation import remember  # noqa: PLC0415

    result = evaluate_once(started_at=started, remember=remember)  # the export may reuse it
    sys.stdout.write(result.to_wire() + "\n")
    sys.stdout.flush()
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evaluate", help="cli.evaluate.help", description="cli.evaluate.help",
                       epilog="cli.evaluate.exit")
    p.add_argument("--wire", action="store_true", help="cli.evaluate.wire")
    p.add_argument("--tray-started", metavar="ISO", help="cli.evaluate.tray_started")
    p.set_defaults(handler=run)
