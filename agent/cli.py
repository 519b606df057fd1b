"""``byod-agent``: the staff-facing command line. The tray drives the same core functions."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from agent import __version__, exitcodes, logsetup
from agent.commands.tray import should_start_tray

Handler = Callable[[argparse.Namespace], int]

# Each module registers its subcommand(s); order is the order of --help.
COMMAND_MODULES: tuple[str, ...] = (
    "agent.commands.check",
    "agent.commands.policy",
    "agent.commands.connect",
    "agent.commands.diag",
    "agent.commands.cert",
    "agent.commands.tray",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2, as documented
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="byod-agent", description="BYOD Agent: checks this PC and opens the "
                     "city's approved remote session.")
    parser.add_argument("--version", action="version", version=f"byod-agent {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _prepare_stdout() -> None:
    # A Japanese console (cp932) or a pipe with an odd encoding must not crash the report.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def _setup_logging() -> None:
    # Logs go to the per-user file the help desk receives in a bundle, never to the console.
    try:
        logsetup.setup()
    except OSError:  # an unwritable profile must not stop a check
        logging.getLogger("agent").addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    _prepare_stdout()
    _setup_logging()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:  # no subcommand: tray on a desktop, else the table
        default = "tray" if should_start_tray(os.environ) else "check"
        args = parser.parse_args([default, *argv])
    return int(args.handler(args))
