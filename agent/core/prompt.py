"""Questions asked at a terminal: a closed input or Ctrl-D is an answer, not a traceback.

``ask`` and ``ask_secret`` raise ``Cancelled`` (exit 5) when the person closes the input (Ctrl-D,
EOF) and ``AgentError`` naming the option to use (exit 2) when there is no terminal to ask at, so
a script never hangs and never gets Python's own English warning from ``getpass``. Ctrl-C stays a
KeyboardInterrupt: agent/core/clirun.py turns it into a quiet exit 130. The prompt goes to
stderr, so a command's stdout stays clean for a pipe.
"""

from __future__ import annotations

import getpass
import select
import sys

from agent.core.errors import AgentError, Cancelled
from agent.core.messages import msg


def _interactive() -> bool:
    stdin = sys.stdin
    return stdin is not None and not stdin.closed and stdin.isatty()


def _wait_readable(fd: int) -> None:
    """Wait for input in short slices, so Ctrl-C is seen even when another thread got SIGINT.

    A blocking read in the main thread is not interrupted when the kernel hands the signal to one
    of the agent's worker threads (the posture engine's pool); Python then runs the handler only
    once the read returns, i.e. never. Polling gives it a chance every 0.2 s.
    """
    while not select.select([fd], [], [], 0.2)[0]:
        pass


def _read_line_posix(prompt: str, secret: bool) -> str:
    import termios  # noqa: PLC0415 - POSIX only

    stdin = sys.stdin
    fd = stdin.fileno()
    old = termios.tcgetattr(fd) if secret else None
    if old is not None:  # echo off before the prompt shows, so nothing typed after it is lost
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO  # lflags: no echo, still a line at a time with Ctrl-C/Ctrl-D
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        _wait_readable(fd)
        line = stdin.readline()
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSANOW, old)
            sys.stderr.write("\n")
    if not line:  # Ctrl-D at the start of a line
        raise EOFError
    return line.rstrip("\r\n")


def _read_line(prompt: str, secret: bool) -> str:
    if sys.platform == "win32":  # msvcrt reads the console; Ctrl-C works there as it is
        return getpass.getpass(prompt) if secret else input(prompt)
    return _read_line_posix(prompt, secret)


def _asked(prompt: str, option: str, secret: bool) -> str:
    if not _interactive():
        raise AgentError(msg("cli.prompt.no_terminal", option=option),
                         f"no terminal to ask at; {option} needed")
    try:
        return _read_line(prompt, secret)
    except EOFError:
        print(file=sys.stderr)  # end the prompt's line before the message
        raise Cancelled() from None


def ask(prompt: str, option: str = "--yes") -> str:
    """One line typed at the terminal (``option`` is what a script passes instead)."""
    return _asked(prompt, option, secret=False)


def ask_secret(prompt: str, option: str) -> str:
    """A secret typed at the terminal without echo (``option`` is how a script passes it)."""
    return _asked(prompt, option, secret=True)


def read_stdin_line() -> str:
    """The first line of stdin without its line end (``--password-stdin``); "" at EOF."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return ""
    line = stdin.readline()
    return line.rstrip("\r\n")
