"""``byod-agent check``: run the posture checks and print the table or the JSON report."""

from __future__ import annotations

import argparse
import json

from agent import exitcodes, i18n
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.report import render_table, report_to_json


def run(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    report = run_posture(default_context())
    if args.json:
        print(json.dumps(report_to_json(report), ensure_ascii=False, indent=2))
    else:
        print(render_table(report, lang))
    return exitcodes.OK if report.compliant else exitcodes.NOT_COMPLIANT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="check this PC and print the result")
    p.add_argument("--json", action="store_true", help="print the JSON report (schema 1)")
    p.add_argument("--lang", choices=i18n.LANGS, help="output language (default: OS language)")
    p.set_defaults(handler=run)
