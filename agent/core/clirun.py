"""Run a command-line ``main`` so that no Python traceback ever reaches a person.

- ``AgentError``: its localized message on stderr, its ``exit_code`` (2; ``Cancelled`` is 5);
- Ctrl-C: one localized line, exit 130; EOF at a prompt that did not handle it: exit 5;
- the reader of stdout went away (``… | head``): quiet, exit 141, stdout pointed at the null
  device so the interpreter's own flush at exit cannot complain (the recipe in the Python docs,
  "Note on SIGPIPE"; SIGPIPE itself stays ignored because the tunnel writes to sockets);
- anything else: the full traceback in the log file only, one localized line naming that file on
  stderr, exit 70.

The exit codes are in agent/core/exitcodes.py and README.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.core import exitcodes, i18n
from agent.core.errors import AgentError, Cancelled

log = logging.getLogger("agent.cli")


def lang_from_argv(argv: Sequence[str], env_lang: str | None = None) -> str:
    """The ``--lang`` given anywhere on the command line (valid values only), else the OS's."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = None
        if arg == "--lang" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--lang="):
            value = arg.split("=", 1)[1]
        if value in i18n.LANGS:
            return value
    return env_lang or i18n.detect_language()


def say(text: str) -> None:
    """One line on stderr; a closed stderr is not worth a traceback either."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def _stdout_is_gone() -> bool:
    """Whether the reader of stdout closed it (a pipe with no reader polls as an error)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # Windows has no poll(): trust the error
        return True


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def guarded(body: Callable[[], int], lang: str, log_file: Path | None,
            logger: logging.Logger = log) -> int:
    """``body()``'s exit code, or the documented code of whatever stopped it."""
    try:
        code = int(body())
        sys.stdout.flush()  # a closed pipe shows here, inside the guard
        return code
    except SystemExit:  # argparse's --help, --version and usage errors
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return exitcodes.PIPE_CLOSED
        except (OSError, ValueError):
            pass
        raise
    except AgentError as exc:
        logger.info("stopped: %s (%s)", exc.detail or exc.message.key, type(exc).__name__)
        say(i18n.render(exc.message, lang))
        return exc.exit_code
    except KeyboardInterrupt:
        say(i18n.text("cli.interrupted", lang))
        return exitcodes.INTERRUPTED
    except EOFError:
        say(i18n.render(Cancelled().message, lang))
        return exitcodes.CANCELLED
    except BrokenPipeError:
        if _stdout_is_gone():
            _silence_stdout()
            return exitcodes.PIPE_CLOSED
        return _internal(lang, log_file, logger)
    except Exception:
        return _internal(lang, log_file, logger)


def _internal(lang: str, log_file: Path | None, logger: logging.Logger) -> int:
    logger.exception("unexpected error")  # the traceback goes to the log file only
    if log_file is not None:
        say(i18n.text("cli.internal_error", lang, log=str(log_file)))
    else:
        say(i18n.text("cli.internal_error_nolog", lang))
    return exitcodes.INTERNAL
