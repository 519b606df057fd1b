"""``byod-agent``: the staff-facing command line. The tray drives the same core functions."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from agent import __version__
from agent.commands.tray import should_start_tray
from agent.core import exitcodes, logsetup

Handler = Callable[[argparse.Namespace], int]

# Each module registers its subcommand; order is the order of --help. A run imports only the
# module of the command it runs (the tray starts ~0.2 s sooner: bench/startup.py).
COMMANDS: dict[str, str] = {
    "check": "agent.commands.check",
    "policy": "agent.commands.policy",
    "connect": "agent.commands.connect",
    "diag": "agent.commands.diag",
    "cert": "agent.commands.cert",
    "tray": "agent.commands.tray",
}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS.values())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2, as documented
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand (for --help and errors), or only ``only`` when it is known."""
    parser = _Parser(prog="byod-agent", description="BYOD Agent: checks this PC and opens the "
                     "city's approved remote session.")
    parser.add_argument("--version", action="version", version=f"byod-agent {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    names = [COMMANDS[only]] if only in COMMANDS else COMMAND_MODULES
    for name in names:
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("--lang"):  # no subcommand: tray on a desktop, else table
        argv = ["tray" if should_start_tray(os.environ) else "check", *argv]
    args = build_parser(argv[0]).parse_args(argv)
    if getattr(args, "handler", None) is None:
        args = build_parser("check").parse_args(["check", *argv])
    return int(args.handler(args))
