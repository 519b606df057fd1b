"""``byod-agent``: the staff-facing command line. The tray drives the same core functions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from agent import __version__, exitcodes, i18n
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.report import render_table, report_to_json

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep the code explicit
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def _add_lang(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=i18n.LANGS, help="output language (default: OS language)")


def cmd_check(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    report = run_posture(default_context())
    if args.json:
        print(json.dumps(report_to_json(report), ensure_ascii=False, indent=2))
    else:
        print(render_table(report, lang))
    return exitcodes.OK if report.compliant else exitcodes.NOT_COMPLIANT


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="byod-agent", description="BYOD Agent: checks this PC and opens the "
                     "city's approved remote session.")
    parser.add_argument("--version", action="version", version=f"byod-agent {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    p = sub.add_parser("check", help="check this PC and print the result")
    p.add_argument("--json", action="store_true", help="print the JSON report (schema 1)")
    _add_lang(p)
    p.set_defaults(handler=cmd_check)
    return parser


def _prepare_stdout() -> None:
    # A Japanese console (cp932) or a pipe with an odd encoding must not crash the report.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    _prepare_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:  # no subcommand: the status table (the tray takes this over once it exists)
        args = parser.parse_args(["check", *(argv or [])])
        handler = cmd_check
    return handler(args)
