"""Questions asked at a terminal: a closed input or Ctrl-D is an answer, not a traceback.

``ask`` and ``ask_secret`` raise ``Cancelled`` (exit 5) when the person closes the input (Ctrl-D,
EOF) and ``AgentError`` naming the option to use (exit 2) when there is no terminal to ask at, so
a script never hangs and never gets Python's own English warning from ``getpass``. Ctrl-C stays a
KeyboardInterrupt: agent/core/clirun.py turns it into a quiet exit 130.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from agent.core.errors import AgentError, Cancelled
from agent.core.messages import msg


def _interactive() -> bool:
    stdin = sys.stdin
    return stdin is not None and not stdin.closed and stdin.isatty()


def _asked(read: Callable[[str], str], prompt: str, option: str) -> str:
    if not _interactive():
        raise AgentError(msg("cli.prompt.no_terminal", option=option),
                         f"no terminal to ask at; {option} needed")
    try:
        return read(prompt)
    except EOFError:
        print(file=sys.stderr)  # end the prompt's line before the message
        raise Cancelled() from None


def ask(prompt: str, option: str = "--yes") -> str:
    """One line typed at the terminal (``option`` is what a script passes instead)."""
    return _asked(input, prompt, option)


def ask_secret(prompt: str, option: str) -> str:
    """A secret typed at the terminal without echo (``option`` is how a script passes it)."""
    return _asked(getpass.getpass, prompt, option)


def read_stdin_line() -> str:
    """The first line of stdin without its line end (``--password-stdin``); "" at EOF."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return ""
    line = stdin.readline()
    return line.rstrip("\r\n")
