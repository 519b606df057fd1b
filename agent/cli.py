"""``byod-agent``: the staff-facing command line. The tray drives the same core functions.

Usage, help and errors are in the user's language (agent/core/cliparse.py); ``--lang`` is accepted
before or after any subcommand; every run goes through agent/core/clirun.py, so an error ends with
its documented exit code (agent/core/exitcodes.py, README.md) and never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import agent
from agent.commands.tray import should_start_tray
from agent.core import cliparse, clirun, exitcodes, i18n, logsetup

# Each module registers its subcommand; order is the order of --help. A run imports only the
# module of the command it runs (the tray starts ~0.2 s sooner: bench/startup.py).
COMMANDS: dict[str, str] = {
    "check": "agent.commands.check",
    "policy": "agent.commands.policy",
    "connect": "agent.commands.connect",
    "diag": "agent.commands.diag",
    "cert": "agent.commands.cert",
    "tray": "agent.commands.tray",
    "settings": "agent.commands.settings",
    "update": "agent.commands.update",
    "evaluate": "agent.commands.evaluate",  # the tray's worker (docs/tray.md)
}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS.values())


class _LazyVersion(argparse._VersionAction):
    """``--version``: the version is read only when asked for (agent/__init__.py: the tray, which
    builds this parser at every start, then never loads importlib.metadata)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        self.version = f"byod-agent {agent.__version__}"
        super().__call__(parser, namespace, values, option_string)


def _add_lang(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--lang`` on every (sub)parser; below the top it must not reset what the top parsed."""
    if any("--lang" in a.option_strings for a in parser._actions):
        return
    parser.add_argument("--lang", choices=i18n.LANGS, help="cli.opt.lang",
                        default=None if top else argparse.SUPPRESS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _add_lang(sub, top=False)


def build_parser(only: str | None = None, lang: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand (for --help and errors), or only ``only`` when it is known."""
    lang = lang or i18n.detect_language()
    parser = cliparse.LocalizedParser(prog="byod-agent", description="cli.description",
                                      epilog="cli.epilog", lang=lang)
    parser.add_argument("--version", action=_LazyVersion, help="cli.opt.version")
    sub = parser.add_subparsers(dest="command", title="cli.commands")
    names = [COMMANDS[only]] if only in COMMANDS else COMMAND_MODULES
    for name in names:
        importlib.import_module(name).register(sub)
    _add_lang(parser, top=True)
    cliparse.name_subcommands(parser)
    return parser


def _command_index(argv: Sequence[str]) -> int | None:
    """The subcommand's index (skipping ``--lang X``); None when an option or nothing is first."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--lang":
            i += 2
        elif arg.startswith("--lang="):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return i
    return None


def _only_lang(argv: Sequence[str]) -> bool:
    """Nothing but ``--lang X`` / ``--lang=X`` (or nothing at all) on the command line."""
    i = 0
    while i < len(argv):
        if argv[i] == "--lang" and i + 1 < len(argv):
            i += 2
        elif argv[i].startswith("--lang="):
            i += 1
        else:
            return False
    return True


def _prepare_stdout() -> None:
    # A Japanese console (cp932) or a pipe with an odd encoding must not crash the report.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def _setup_logging() -> Path | None:
    # Logs go to the per-user file the help desk receives in a bundle, never to the console.
    try:
        return logsetup.setup()
    except OSError:  # an unwritable profile must not stop a check
        logging.getLogger("agent").addHandler(logging.NullHandler())
        return None


def _run(argv: list[str], lang: str) -> int:
    at = _command_index(argv)
    if at is None and _only_lang(argv):
        # no subcommand: the tray on a desktop, else the status table
        argv = [*argv, "tray" if should_start_tray(os.environ) else "check"]
        at = len(argv) - 1
    only = argv[at] if at is not None else None
    args = build_parser(only, lang).parse_args(argv)
    if getattr(args, "handler", None) is None:
        build_parser(only, lang).print_help()
        return exitcodes.USAGE
    return int(args.handler(args))


def main(argv: Sequence[str] | None = None) -> int:
    _prepare_stdout()
    log_file = _setup_logging()
    args = list(sys.argv[1:] if argv is None else argv)
    lang = clirun.lang_from_argv(args)
    return clirun.guarded(lambda: _run(args, lang), lang, log_file)
